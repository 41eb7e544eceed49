"""The exposure-aiming brightening study (benchmarks.bright_target)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bright_target import (
    END,
    OUT_JSON,
    START,
    VARIANTS,
    exposure_gamma,
    section,
    summary,
    utility,
)
from tir_env.tools import make_tool

torch.set_num_threads(1)
ROOT = OUT_JSON.parents[2]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.floats(0.05, 1.0),
    st.sampled_from([0.5, 0.6]),
    st.sampled_from([1.5, 2.0]),
)
def test_the_aimed_brightening_never_darkens_nor_passes_its_cap(
    seed: int, scale: float, target: float, cap: float
) -> None:
    rng = np.random.default_rng(seed)
    batch = torch.from_numpy(rng.random((2, 3, 12, 12)).astype(np.float32)) * scale
    out = exposure_gamma(batch, target, cap)
    value, brighter = batch.amax(1), out.amax(1)
    assert bool((brighter >= value - 1e-5).all())  # g >= 1: never darker
    assert bool((brighter <= value ** (1 / cap) + 1e-5).all())  # g <= cap
    bright = torch.full((1, 3, 8, 8), 0.9)  # mean V above any target: left as it is
    assert torch.allclose(exposure_gamma(bright, target, cap), bright, atol=1e-6)


def test_target_zero_is_gamma_correction_at_the_cap() -> None:
    batch = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    want = make_tool("gamma_correction").apply(batch, {"gamma": 1.5})
    assert torch.allclose(exposure_gamma(batch, 0.0, 1.5), want, atol=1e-6)


def _row(dark: bool, p: float, change: float) -> dict:
    return {"dark": dark, "p_dark": p, "change": dict.fromkeys((v[0] for v in VARIANTS), change)}


def test_utility_counts_only_the_crops_read_dark_and_summary_finds_the_best_threshold() -> None:
    rows = [_row(True, 0.9, 10.0), _row(False, 0.35, -6.0), _row(False, 0.05, -6.0)]
    label = VARIANTS[0][0]
    assert utility(rows, label, 0.3) == pytest.approx((10.0 - 6.0) / 3)
    assert utility(rows, label, 0.5) == pytest.approx(10.0 / 3)
    s = summary(rows)[label]
    assert s["right_call"] == pytest.approx(10.0) and s["false_call"] == pytest.approx(-6.0)
    assert float(s["best_threshold"]) >= 0.4 and s["told"] == pytest.approx(10.0 / 3)


def test_the_tools_doc_holds_the_stored_reports_section() -> None:
    report = json.loads(OUT_JSON.read_text())
    text = (ROOT / "docs" / "tools.md").read_text()
    stored = START + text.split(START, 1)[1].split(END, 1)[0] + END
    assert stored == section(report), "python -m benchmarks.bright_target --doc-only"
