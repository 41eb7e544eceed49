"""Thresholds by a call's gain and cost (benchmarks.perception_utility)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.perception_utility import GRID, costs, utility_thresholds
from tir_env.degradations.protocols import AGENTICIR_TYPES

KEEP = dict.fromkeys(AGENTICIR_TYPES, 0.5)


def _table(gain: float, loss: float) -> dict[str, tuple[float, float]]:
    return dict.fromkeys(AGENTICIR_TYPES, (gain, loss))


def test_a_costly_false_alarm_raises_the_threshold() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((400, 8)) > 0.5
    probs = np.clip(truth * 0.3 + rng.random((400, 8)) * 0.7, 0, 1)
    cheap = utility_thresholds(probs, truth, _table(5.0, 0.1), KEEP)
    dear = utility_thresholds(probs, truth, _table(5.0, 50.0), KEEP)
    assert all(dear[t] >= cheap[t] for t in AGENTICIR_TYPES)
    assert any(dear[t] > cheap[t] for t in AGENTICIR_TYPES)


def test_a_type_that_gains_nothing_keeps_its_threshold() -> None:
    probs = np.random.default_rng(1).random((50, 8))
    truth = probs > 0.5
    assert utility_thresholds(probs, truth, _table(-0.5, 1.0), KEEP) == KEEP


@given(st.integers(0, 2**31 - 1))
def test_the_chosen_threshold_is_the_best_on_the_grid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs, truth = rng.random((60, 8)), rng.random((60, 8)) > 0.6
    chosen = utility_thresholds(probs, truth, _table(3.0, 2.0), KEEP)

    def value(j: int, t: float) -> float:
        hit = probs[:, j] >= t
        return float(3.0 * np.sum(hit & truth[:, j]) - 2.0 * np.sum(hit & ~truth[:, j]))

    for j, name in enumerate(AGENTICIR_TYPES):
        assert value(j, chosen[name]) == pytest.approx(max(value(j, t) for t in GRID))


def test_the_near_miss_table_has_every_type() -> None:
    assert set(costs()) == set(AGENTICIR_TYPES)
