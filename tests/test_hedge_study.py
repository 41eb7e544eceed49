"""The study of softer darkness and haze calls (benchmarks.hedge_study)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import hedge_study
from tir_env.env import TIREnv

torch.set_num_threads(1)


def _rows(judged: str, true: list[float], false: list[float]) -> list[dict[str, Any]]:
    """Probes of ``judged`` perception saw: every call's change on crops with and without it."""
    return [
        # a judge that rules the type in exactly where it is there
        *(
            {"type": judged, "seen": True, "true": True, "predicted_gain": 1.0, "change": c}
            for c in true
        ),
        *(
            {"type": judged, "seen": True, "true": False, "predicted_gain": -1.0, "change": c}
            for c in false
        ),
    ]


def test_the_summary_prices_each_call_where_the_type_is_there_and_where_not() -> None:
    # haze has no strength to turn down: its calls are the four blends, the full call last
    calls = [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 1.0, 4.0]]
    losses = [[-3.0, -2.0, -7.0, -8.0], [-3.0, -2.0, -1.0, -8.0]]
    out = hedge_study.summary(_rows("haze", calls, losses), "haze", seen=True, episodes=2)
    assert out["probes"] == 4 and out["share_true"] == pytest.approx(0.5)
    first, last = out["strengths"][0], out["strengths"][-1]
    assert first["call"] == "blend w=0.25" and last["call"] == "blend w=1"
    assert first["gain"] == pytest.approx(1.0) and first["loss"] == pytest.approx(3.0)
    assert first["gain_share"] == pytest.approx(0.25)
    assert first["loss_share"] == pytest.approx(0.375)
    assert first["break_even"] == pytest.approx(0.75)  # L / (G + L) = 3 / 4
    assert last["gain_share"] == pytest.approx(1.0) and last["break_even"] == pytest.approx(8 / 12)
    assert out["ruled_in"] == 2  # the judge's calls: the two crops with haze, over 2 episodes
    assert first["ruled_in_per_episode"] == pytest.approx(1.0)
    assert last["ruled_in_per_episode"] == pytest.approx(4.0)
    # a judge that rules exactly the crops with haze in: it separates them perfectly and its
    # full calls are the perfect calls (4 + 4 dB over 2 episodes)
    assert out["judge_auc"] == pytest.approx(1.0)
    assert out["judge_per_episode"] == out["perfect_per_episode"] == pytest.approx(4.0)


def test_a_summary_of_probes_all_true_has_no_break_even_to_report() -> None:
    out = hedge_study.summary(_rows("haze", [[1.0, 2.0, 3.0, 4.0]], []), "haze", True, 1)
    assert out["probes"] == 1 and out["strengths"] == []
    assert hedge_study.summary([], "dark", seen=False, episodes=1)["strengths"] == []


def test_the_softer_plan_turns_down_only_the_judged_types_tool() -> None:
    env = TIREnv(images="bundled:test", patch_size=32)
    env.reset(seed=0)
    plain = hedge_study.hedged_plan(env, ["dark", "noise"], "dark", None)
    softer = hedge_study.hedged_plan(env, ["dark", "noise"], "dark", 1.2)
    assert [c.tool for c in plain] == [c.tool for c in softer]
    changed = [(a, b) for a, b in zip(plain, softer, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].tool == "gamma_correction"
    assert changed[0][1].params["gamma"] == 1.2
    assert hedge_study.hedged_plan(env, ["haze"], "haze", 0.5) == hedge_study.hedged_plan(
        env, ["haze"], "haze", None
    )  # no strength to turn down: the plan as it is


def test_the_report_renders_a_row_per_call_and_never_overwrites(tmp_path: Path) -> None:
    rows = _rows("dark", [[1.0] * 9], [[-2.0] * 9])
    result = {
        "command": "python -m benchmarks.hedge_study",
        "images": "corpus:val@3",
        "episodes": 2,
        "probes": 2,
        "summaries": [hedge_study.summary(rows, "dark", seen=True, episodes=2)],
    }
    lines = hedge_study.markdown(result)
    calls = [line for line in lines if line.startswith("| dark |") and "| blend" in line]
    calls += [line for line in lines if line.startswith("| dark |") and "| gamma" in line]
    assert len(calls) == len(hedge_study.variants("dark"))  # a row per call
    assert sum(line.startswith("| dark |") for line in lines) == len(calls) + 1  # and decisions
    existing = tmp_path / "report.json"
    existing.write_text("{}")
    with pytest.raises(SystemExit):
        hedge_study.main(["--json", str(existing)])
    assert existing.read_text() == "{}"
