"""The near-miss study (benchmarks.near_miss): its nested cross-validation and tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import near_miss


def _row(fold: int, ratio: float, scored: float, gain: float, kind: str = "haze") -> dict:
    return {
        "fold": fold,
        "episode": 0,
        "type": kind,
        "ratio": ratio,
        "true": gain > 0,
        "psnr_without": 20.0,
        "psnr_with": 20.0 + gain,
        "tirqa_without": 20.0,
        "tirqa_with": 20.0 + scored,
    }


def test_a_rule_that_pays_on_the_other_folds_is_scored_on_the_held_out_one() -> None:
    # on every fold: near misses read close to the threshold and scored up help, others cost
    rows = [
        r
        for k in range(4)
        for r in (_row(k, 0.9, 10.0, 4.0), _row(k, 0.4, 10.0, -6.0), _row(k, 0.9, -1.0, -2.0))
    ]
    result = near_miss.nested_cv(rows, [10, 10, 10, 10])
    assert all(f["ratio"] >= 0.5 and f["margin"] >= 0 for f in result["per_fold"])
    assert result["per_episode"] == pytest.approx(0.4)  # one +4 dB add per 10 episodes


def test_a_rule_that_only_fits_the_other_folds_loses_on_the_held_out_one() -> None:
    # the same reading helps on folds 0, 2 and 3 and costs a lot on fold 1: chosen without
    # fold 1 the rule adds it there, and the held-out score must show the loss
    rows = [_row(k, 0.9, 10.0, -20.0 if k == 1 else 4.0) for k in range(4)]
    result = near_miss.nested_cv(rows, [10, 10, 10, 10])
    by_fold = {f["fold"]: f for f in result["per_fold"]}
    assert by_fold[1]["added"] == 1 and by_fold[1]["per_episode"] == pytest.approx(-2.0)
    assert all(by_fold[k]["added"] == 0 for k in (0, 2, 3))  # fold 1 in training: never adds
    assert result["per_episode"] == pytest.approx(-0.5)


def test_the_table_reads_the_committed_result(tmp_path: Path) -> None:
    rows = [_row(k, 0.9, 10.0, 4.0) for k in range(2)] + [_row(0, 0.9, 1.0, -3.0, "dark")]
    result = {
        "by_type": near_miss.by_type(rows),
        "nested_cv": near_miss.nested_cv(rows, [5, 5]),
    }
    path = tmp_path / "near_miss.json"
    path.write_text(json.dumps(result))
    lines = near_miss.markdown_table([path])
    assert lines[2].startswith("| dark | 1 | 0.00 | -3.00 | - | -3.00 |")
    assert lines[3].startswith("| haze | 2 | 1.00 | +4.00 | +4.00 | - |")
    assert "dB per episode" in lines[-1]
