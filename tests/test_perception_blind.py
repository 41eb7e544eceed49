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
