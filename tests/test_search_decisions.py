"""benchmarks.search_decisions: how a search plan departs from ``fixed``'s, and the table."""

from __future__ import annotations

import pytest

from benchmarks.search_decisions import KINDS, departure, summary_table

FIXED = ["dct_denoise", "gamma_correction"]  # denoising, then brightening


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        (FIXED, "same"),
        (["gamma_correction"], "dropped"),
        (["clahe"], "dropped+rival"),
        (["dct_denoise", "constant_shift"], "rival"),
        (["gamma_correction", "dct_denoise"], "reorder"),
        (["constant_shift", "dct_denoise"], "reorder+rival"),
        (["dct_denoise", "gamma_correction", "jpeg_tv"], "other"),
        ([], "dropped"),
    ],
)
def test_each_departure_is_named(agent: list[str], kind: str) -> None:
    assert departure(FIXED, agent) == kind
    assert kind in KINDS


def test_the_table_sums_each_kind_and_skips_kinds_never_seen() -> None:
    def row(kind: str, fixed: float, agent: float) -> dict:
        return {"departure": kind, "fixed_psnr": fixed, "agent_psnr": agent}

    rows = [
        row("same", 20, 20),
        row("dropped", 20, 23),
        row("dropped", 20, 19),
        row("rival", 20, 14),
    ]
    lines = summary_table(rows)
    assert lines[2] == "| same | 1 | +0.0 | +0.00 | 0 | 0 |"
    assert lines[3] == "| dropped | 2 | +2.0 | +1.00 | 1 | 1 |"
    assert lines[4] == "| rival | 1 | -6.0 | -6.00 | 1 | 0 |"
    assert lines[-1] == "| all | 4 | -4.0 | -1.000 | | |"
    assert len(lines) == 6
