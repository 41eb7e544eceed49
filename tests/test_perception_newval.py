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
    monkeypatch.setattr(newval, "RESULTS_R4", tmp_path / "release4")
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


def _ab(mean: float) -> dict:
    summary = {"episodes": 800, "a": 21.0, "b": 21.0 + mean, "mean": mean, "se_photos": 0.05}
    return {"summary": {**summary, "better": 10, "worse": 5}}


@pytest.mark.parametrize(
    ("new_auc", "diffs", "verdict"),
    [
        (0.94, None, "corpus release stays for whatever is trained next."),
        (0.96, None, None),  # first step holds, the agents not run yet
        (0.96, (0.10, 0.05, 0.01), "it holds."),
        (0.96, (0.10, 0.10, -0.03), "it fails, so the shipped network stays."),
        (0.96, (0.04, 0.04, 0.04), "it fails, so the shipped network stays."),
    ],
)
def test_release_4_section_states_both_steps(
    tmp_path: Path, new_auc: float, diffs: tuple[float, ...] | None, verdict: str | None
) -> None:
    assert newval.section_r4(tmp_path) == []  # nothing measured yet
    (tmp_path / "shipped.json").write_text(json.dumps(_result(0.94, 0.2)))
    (tmp_path / "retrained_r4.json").write_text(json.dumps(_result(new_auc, 0.25)))
    for agent, diff in zip(newval.AGENTS_R4, diffs or (), strict=False):
        (tmp_path / f"ab_{agent}.json").write_text(json.dumps(_ab(diff)))
    text = "\n".join(newval.section_r4(tmp_path))
    assert f"| dark | 0.940 | {new_auc:.3f} |" in text
    if new_auc < 0.95:
        assert "the first step fails and nothing ships." in text
        assert text.rstrip().endswith(verdict)
        assert "ab_test" not in text
    elif verdict is None:
        assert text.rstrip().endswith("the first step holds.")
    else:
        assert text.rstrip().endswith(verdict)
        assert "| `fixed` | 800 |" in text
