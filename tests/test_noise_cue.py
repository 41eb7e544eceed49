"""The flat-block noise study (:mod:`benchmarks.noise_cue`): its estimator and its table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmarks import noise_cue
from tir_env.noise_level import noise_level


@pytest.mark.parametrize("sigma", [5.0, 10.0, 20.0])
def test_noise_on_a_flat_image_reads_a_little_under_sigma_over_root_three(sigma: float) -> None:
    rng = np.random.default_rng(0)
    flat = np.clip(120 + rng.normal(0, sigma, (256, 256, 3)), 0, 255).round().astype(np.uint8)
    share = noise_level(flat) / (sigma / math.sqrt(3))
    assert 0.8 < share < 1.0  # the flattest tenth of the blocks' means lies under their mean


def test_ramps_and_a_few_busy_blocks_read_no_noise() -> None:
    ramp = np.repeat(np.linspace(0, 255, 256, dtype=np.float32)[None, :], 256, axis=0)
    image = np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8)
    image[:48, :48] = np.random.default_rng(1).integers(0, 256, (48, 48, 3))  # texture: 9 blocks
    assert noise_level(image) < 0.5


@given(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 80), st.integers(1, 80), st.just(3)),
        elements=st.integers(0, 255),
    )
)
@settings(max_examples=30, deadline=None)
def test_the_level_is_a_finite_non_negative_number_on_any_image(image: np.ndarray) -> None:
    level = noise_level(image)
    assert math.isfinite(level) and level >= 0.0


def _row(kind: str, level: float, perceived: list[str], combo: list[str]) -> dict[str, Any]:
    return {"image": "a", "kind": kind, "combo": combo, "level": level, "perceived": perceived}


def test_the_table_counts_what_a_rule_on_perceived_clean_photos_would_read() -> None:
    rows = [
        _row("clean", 0.2, [], []),
        _row("phone", 1.8, [], []),  # perceived clean, level high: the rule's case
        _row("phone", 1.6, ["noise"], []),
        _row("protocol", 3.0, ["low_resolution"], ["low_resolution"]),
        _row("protocol", 2.0, [], ["rain"]),  # a false read the rule would make
    ]
    table = noise_cue.markdown(
        {"command": "c", "images": "x", "side": 1024, "photos": 1, "rows": rows}
    )
    assert any(
        line.startswith("| phone |") and line.endswith("| 2 | 1 | 2 | 1 |") for line in table
    )
    assert any(
        line.startswith("| protocol, no noise, rain |") and line.endswith("| 1 |") for line in table
    )
    assert not any(line.startswith("| jpeg |") for line in table)  # no rows: no line


def test_combinations_hold_as_many_with_noise_as_without() -> None:
    picked = noise_cue.combinations("corpus/photo", 3)
    assert picked == noise_cue.combinations("corpus/photo", 3)
    assert sum("noise" in c for c in picked) == 3 == sum("noise" not in c for c in picked)
