"""docs/acceptance.md: each issue's acceptance read from the records, never typed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.acceptance import (
    MIO,
    TYPES,
    Point,
    acceptance_markdown,
    checks_table,
    perception_points,
    restore_points,
)
from benchmarks.gen_docs import DOCS


def _crop(truth: list[str], found: list[str], suite: str = "mio-a") -> dict:
    return {"suite": suite, "truth": truth, "found": found}


def _limits(rows: list[dict]) -> dict:
    return {"command": "cmd", "sets": {"held-out": {"photos": 1, "rows": rows}}}


def test_the_page_is_what_the_records_say() -> None:
    assert (DOCS / "acceptance.md").read_text() == acceptance_markdown(), (
        "docs/acceptance.md is stale: python -m benchmarks.gen_docs"
    )


def test_perception_is_met_only_when_every_type_and_the_exact_set_clear_their_bars() -> None:
    perfect = [_crop([t], [t], suite) for t in TYPES for suite in MIO]
    f1, exact = perception_points(_limits(perfect))
    assert f1.met and exact.met
    # one rain crop read as clean: rain's F1 falls to 0.80 < 0.90; 23 of 24 crops exact (0.96)
    missed = [*perfect[:-1], _crop(["rain"], [], "mio-c")]
    f1, exact = perception_points(_limits(missed))
    assert not f1.met and "rain" in f1.measured and exact.met
    # rows of other suites (`single`) do not count
    single = [*perfect, *(_crop([t], [], "single") for t in TYPES)]
    assert all(p.met for p in perception_points(_limits(single)))


@pytest.mark.parametrize(
    ("clean_out", "noisy_out", "alone", "removed"),
    [(80.0, 30.0, True, True), (38.0, 30.0, False, True), (80.0, 21.0, True, False)],
)
def test_restore_points_read_each_photo(
    clean_out: float, noisy_out: float, alone: bool, removed: bool
) -> None:
    rows = [
        {"clean": {"psnr_out": 80.0}, "noisy": {"psnr_in": 22.0, "psnr_out": 34.0}},
        {"clean": {"psnr_out": clean_out}, "noisy": {"psnr_in": 22.0, "psnr_out": noisy_out}},
    ]
    left, noise = restore_points({"command": "cmd", "rows": rows})
    assert (left.met, noise.met) == (alone, removed)


def test_native_restore_points_name_the_size_and_wait_for_their_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    from benchmarks import acceptance

    rows = [{"clean": {"psnr_out": 80.0}, "noisy": {"psnr_in": 22.0, "psnr_out": 21.0}}]
    record = tmp_path / "native.json"
    monkeypatch.setattr(acceptance, "RESTORE_NATIVE", tmp_path / "missing.json")
    assert acceptance.native_restore_points() == []  # not run yet: no rows
    record.write_text(json.dumps({"command": "cmd", "rows": rows}))
    monkeypatch.setattr(acceptance, "RESTORE_NATIVE", record)
    left, noise = acceptance.native_restore_points()
    assert left.met and not noise.met
    assert all(p.asked.endswith("at the photos' own size") for p in (left, noise))


def test_a_point_row_says_its_verdict() -> None:
    assert "| not met |" in Point("a", "b", False, "c").row()
    assert "| partly |" in Point("a", "b", None, "c").row()


def test_checks_table_keeps_only_the_issues_rows() -> None:
    episodes = [
        {"suite": "mio-a", "image": f"{kind}/p{k}", "seed": k, "output": 22.0 + k, "input": 20.0}
        for kind in ("skimage", "lomiri")
        for k in range(2)
    ]
    result = {
        "versus": "fixed",
        "episodes": {a: episodes for a in ("fixed", "exhaustive", "greedy")},
    }
    lines = checks_table(result, "13")
    assert any("`fixed` - input" in line for line in lines)
    assert not any(line.startswith("| 15 |") for line in lines)
    assert "*corpus-only photos*:" in lines and "*bundled photos*:" in lines
    assert checks_table(result, "15") == []  # no ppo: none of issue 15's rows


def test_seeds_gain_averages_the_seeds_then_the_photos() -> None:
    from benchmarks.acceptance import seeds_gain

    def rows(outputs: list[float]) -> list[dict]:
        images = ["lomiri/a", "lomiri/a", "lomiri/b", "skimage/c"]
        return [
            {"suite": "mio-a", "image": i, "seed": k, "output": o, "input": 20.0}
            for k, (i, o) in enumerate(zip(images, outputs, strict=True))
        ]

    result = {
        "versus": "sft",
        "episodes": {
            "sft": rows([20.0, 20.0, 20.0, 20.0]),
            "s0": rows([21.0, 23.0, 20.0, 25.0]),
            "s1": rows([21.0, 21.0, 22.0, 25.0]),
        },
    }
    mean, se = seeds_gain(result, ["s0", "s1"], bundled=False)  # photos a (+1.5) and b (+1)
    assert mean == pytest.approx(4.0 / 3)  # the episodes' mean: +1, +2, +1
    assert se == pytest.approx(0.25)  # two photo means, 1.5 and 1.0: sd 0.354 / sqrt 2
    assert seeds_gain(result, ["s0"], bundled=True) == (pytest.approx(5.0), 0.0)  # one photo


def test_the_independent_set_is_its_own_block() -> None:
    from benchmarks.acceptance import ROUNDS, _read

    rounds = _read(ROUNDS)
    lines = checks_table(rounds, "13", independent=rounds)
    labels = [line for line in lines if line.startswith("*")]
    assert labels[-1] == "*the independent set (docs/independent.md)*:"
    assert len(labels) == len([x for x in checks_table(rounds, "13") if x.startswith("*")]) + 1


def test_the_independent_page_is_what_its_records_say() -> None:
    from benchmarks.independent import available, independent_markdown

    assert available(), "benchmarks/results/independent/ lacks a record"
    assert (DOCS / "independent.md").read_text() == independent_markdown(), (
        "docs/independent.md is stale: python -m benchmarks.gen_docs"
    )
