"""The darkness and haze cue study (benchmarks.perception_cues)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import perception_cues as pc
from tir_env import data
from tir_env.degradations.synthesis import add_haze


def _crop() -> np.ndarray:
    photo = data.bundled("test").load("coffee")
    return np.ascontiguousarray(photo[200:328, 200:328])


def test_a_shift_to_black_shows_in_the_black_share_and_the_maximum() -> None:
    clean = _crop()
    value = clean.max(axis=2, keepdims=True).astype(np.float32)
    shifted = np.clip(value - 40, 0, None)
    dark = np.round(clean * np.where(value > 0, shifted / np.maximum(value, 1), 0)).astype(np.uint8)
    before, after = pc.dark_cues(clean), pc.dark_cues(dark)
    names = list(pc.DARK_CUES)
    assert after[names.index("black share")] > before[names.index("black share")]
    assert after[names.index("V max")] <= before[names.index("V max")] - 39


def test_the_depth_proxys_haze_is_thicker_at_the_top() -> None:
    clean = (_crop() / np.float32(255)).astype(np.float32)
    hazy = (add_haze(clean, 0.9, 1.5) * 255 + 0.5).astype(np.uint8)
    names = list(pc.HAZE_CUES)
    cues = pc.haze_cues(hazy)
    assert cues[names.index("dark channel, top - bottom")] > 0.05


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), size=st.sampled_from([24, 48, 96]))
def test_cues_are_finite_on_any_image(seed: int, size: int) -> None:
    image = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    for names, fn in pc.CUES.values():
        values = fn(image)
        assert len(values) == len(names) and np.isfinite(values).all()


def test_oriented_auc_does_not_care_which_way_a_cue_points() -> None:
    truth = np.array([0, 0, 1, 1])
    assert pc.oriented_auc(truth, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert pc.oriented_auc(truth, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0


@pytest.mark.skipif(not pc.RESULTS.is_file(), reason="results not committed")
def test_the_doc_section_is_made_from_the_committed_results() -> None:
    text = pc.section()
    assert "## Cues of darkness and haze that add nothing" in text
    assert text in (pc.ROOT / "docs" / "perception.md").read_text()
