"""The kernel-fit perception option's scoring and its registered rule."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import perception_blind
from tir_env.degradations.protocols import AGENTICIR_TYPES


def test_scores_count_no_true_negatives() -> None:
    truth = np.zeros((4, 8), bool)
    truth[:2, 0] = True  # two crops with the first type, two clean
    probs = np.zeros((4, 8))
    probs[0, 0] = probs[2, 0] = 0.9  # one hit, one false alarm, one miss
    scores = perception_blind.per_type_scores(probs, truth, dict.fromkeys(AGENTICIR_TYPES, 0.5))
    first = scores["types"][AGENTICIR_TYPES[0]]
    assert first["precision"] == 0.5 and first["recall"] == 0.5 and first["f1"] == 0.5
    # a type never present nor said scores 0, not a perfect 1 from its true negatives
    assert scores["types"][AGENTICIR_TYPES[1]]["f1"] == 0.0
    assert scores["exact_set"] == pytest.approx(0.5)


def _val(motion: float, defocus: float, mean: float) -> dict:
    types = {t: {"f1": 0.5} for t in AGENTICIR_TYPES}
    types["motion_blur"], types["defocus_blur"] = {"f1": motion}, {"f1": defocus}
    return {"types": types, "mean_f1": mean}


@pytest.mark.parametrize(
    ("new", "holds"),
    [
        (_val(0.6, 0.6, 0.5), True),
        (_val(0.6, 0.5, 0.6), False),  # defocus not up
        (_val(0.6, 0.6, 0.49), False),  # mean down
    ],
)
def test_the_val_part_of_the_rule(new: dict, holds: bool) -> None:
    val = {"shipped": _val(0.5, 0.5, 0.5), "blind": new}
    assert perception_blind.verdict(val, None) == (holds, None)


def _run(outputs: dict[str, list[float]]) -> dict:
    def episodes(values: list[float]) -> list[dict]:
        return [
            {
                "suite": "mio-a",
                "image": f"p{i % 3}",
                "seed": i,
                "degradations": ["noise"],
                "output": v,
            }
            for i, v in enumerate(values)
        ]

    return {
        "a": "fixed",
        "b": "exhaustive",
        "episodes": {k: episodes(v) for k, v in outputs.items()},
    }


def test_network_differences_pair_episodes_and_judge_the_rule() -> None:
    old = _run({"a": [20.0] * 6, "b": [21.0] * 6})
    new = _run({"a": [21.0, 21.2, 20.8, 21.0, 21.1, 20.9], "b": [21.5] * 6})
    summary = perception_blind.network_differences(old, new)
    assert summary["fixed"]["mean"] == pytest.approx(1.0)
    assert summary["exhaustive"]["mean"] == pytest.approx(0.5)
    assert summary["pooled"]["episodes"] == 12 and summary["pooled"]["photos"] == 3
    assert perception_blind.ab_holds(summary)
    worse = _run({"a": [19.0] * 6, "b": [21.5] * 6})
    assert not perception_blind.ab_holds(perception_blind.network_differences(old, worse))
    fewer = _run({"a": [20.0] * 5, "b": [21.0] * 5})
    with pytest.raises(ValueError, match="different episodes"):
        perception_blind.network_differences(old, fewer)
