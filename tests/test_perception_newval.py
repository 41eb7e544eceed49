"""benchmarks.perception_newval: the release-3 comparison's doc section follows its records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import perception_newval as newval


def _result(auc: float, exact: float) -> dict:
    presence = {t: {"auc": auc, "f1": 0.5} for t in ("noise", "dark")}
    return {
        "crops_per_combination": 12,
        "presence": presence,
        "exact_set": {"mio-a": exact},
        "exact_set_mio": exact,
        "mean_auc": auc,
        "mean_f1": 0.5,
    }


@pytest.mark.parametrize(
    ("new_auc", "new_exact", "ships"),
    [(0.95, 0.3, True), (0.945, 0.3, False), (0.95, 0.1, False)],
)
def test_the_section_states_each_rules_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_auc: float, new_exact: float, ships: bool
) -> None:
    monkeypatch.setattr(newval, "RESULTS", tmp_path)
    assert newval.section() == []  # nothing measured yet
    (tmp_path / "shipped.json").write_text(json.dumps(_result(0.94, 0.2)))
    (tmp_path / "retrained_r3.json").write_text(json.dumps(_result(0.945, 0.25)))
    assert newval.section() == []  # the second network not measured yet
    (tmp_path / "retrained_r3_80k_listed.json").write_text(json.dumps(_result(new_auc, new_exact)))
    lines = newval.section()
    first, second = (next(x for x in lines if f"(rule {c})" in x) for c in ("cf7f51f", "2fa11f7"))
    assert first.endswith("not shipped.")
    assert second.endswith("replaces the shipped network." if ships else "not shipped.")
    assert "| dark | 0.940 | 0.945 |" in "\n".join(lines)


def test_threshold_lines_follow_the_records(tmp_path: Path) -> None:
    assert newval.threshold_lines(tmp_path) == []  # nothing measured
    for k, name in enumerate(newval.THRESHOLD_RUNS):
        (tmp_path / name).mkdir()
        for suite, psnr in (("mio-a", 20.0 + k), ("mio-b", 22.0 + k)):
            rows = [{"metrics_output": {"psnr": psnr}}, {"metrics_output": {"psnr": psnr + 1}}]
            text = "".join(json.dumps(r) + "\n" for r in rows)
            (tmp_path / name / f"{suite}__fixed.jsonl").write_text(text)
    table = "\n".join(newval.threshold_lines(tmp_path))
    assert "| T1, F0.5 (shipped) | 20.50 | 22.50 | **21.50** |" in table
    assert "| mio-a fixed | mio-b fixed | mean |" in table
