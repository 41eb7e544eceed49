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
from tir_env.perception import available as perception_available


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


def rgb_images(max_side: int) -> st.SearchStrategy[np.ndarray]:
    """Any uint8 RGB image with sides from 1 to ``max_side``."""
    side = st.integers(1, max_side)
    return hnp.arrays(np.uint8, st.tuples(side, side, st.just(3)), elements=st.integers(0, 255))


@given(rgb_images(max_side=80))
@settings(max_examples=30, deadline=None)
def test_the_level_is_a_finite_non_negative_number_on_any_image(image: np.ndarray) -> None:
    level = noise_level(image)
    assert math.isfinite(level) and level >= 0.0


def _reference_level(image: np.ndarray) -> float:
    """The estimator as first written (numpy's mean over the channels)."""
    import cv2

    from tir_env.noise_level import BLOCK, MASK, PERCENTILE

    grey = image.astype(np.float32).mean(axis=2)
    response = np.abs(cv2.filter2D(grey, -1, MASK))[1:-1, 1:-1]
    rows, cols = response.shape[0] // BLOCK, response.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        return 0.0
    blocks = response[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK)
    return float(np.percentile(blocks.mean(axis=(1, 3)), PERCENTILE) * math.sqrt(math.pi / 2) / 6)


@given(rgb_images(max_side=70))
@settings(max_examples=30, deadline=None)
def test_the_fast_level_is_the_reference_level(image: np.ndarray) -> None:
    # the same floats in, up to float32 rounding out (OpenCV's filter may take another
    # vector path for another buffer's alignment)
    assert math.isclose(noise_level(image), _reference_level(image), rel_tol=1e-5, abs_tol=1e-9)


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


# --- rule c1195e6: noise read from the flat blocks, denoised gently ---------------------------


def _noisy_flat(sigma: float, side: int = 320) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.clip(120 + rng.normal(0, sigma, (side, side, 3)), 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize(
    ("sigma", "clean", "read"),
    [(3.0, True, True), (0.0, True, False), (12.0, True, False), (3.0, False, False)],
)
def test_noise_is_read_on_a_clean_reading_whole_photo_in_the_level_band(
    sigma: float, clean: bool, read: bool
) -> None:
    """level in [1, 3], no type read | threshold 0; none, strong noise or a type read | kept"""
    from tir_env import photo_thresholds

    image = _noisy_flat(sigma)
    limits = {"noise": 0.9, "dark": 0.5}
    probs = {"noise": 0.1, "dark": 0.1 if clean else 0.7}
    out = photo_thresholds.adjusted(image, limits, probs)
    assert photo_thresholds.noise_by_level(out) is read
    assert out["noise"] == (0.0 if read else photo_thresholds.WHOLE_NOISE_THRESHOLD)
    assert not photo_thresholds.noise_by_level(photo_thresholds.adjusted(image, limits, None))
    crop = image[: photo_thresholds.WHOLE_MIN_SIDE - 1]
    assert photo_thresholds.adjusted(crop, limits, probs) == limits  # crops keep the record's


@given(st.floats(0.0, 20.0), st.integers(16, 64))
@settings(max_examples=25, deadline=None)
def test_the_gentle_denoiser_stays_in_its_range(sigma: float, side: int) -> None:
    from agents.tuned import GENTLE_TOOL, gentle_denoise
    from tir_env.tools.base import tool_info
    from tir_env.types import ToolCall

    call = ToolCall(GENTLE_TOOL, {"strength": 1.25, "step": 2.0})
    out = gentle_denoise(call, _noisy_flat(sigma, side))
    bounds = tool_info(GENTLE_TOOL).params["strength"]
    assert bounds.low <= out.params["strength"] <= bounds.high
    assert out.params["step"] == 2.0
    other = ToolCall("jpeg_tv", {"weight": 0.02})
    assert gentle_denoise(other, _noisy_flat(sigma, side)) is other


def test_the_gentle_strength_follows_the_flat_blocks_not_the_texture() -> None:
    """Same noise, texture on half the photo | a lower strength (sigma_hat rises, level not)"""
    from agents.tuned import GENTLE_TOOL, gentle_denoise
    from tir_env.types import ToolCall

    call = ToolCall(GENTLE_TOOL, {"strength": 1.25, "step": 2.0})
    flat = _noisy_flat(3.0)
    textured = flat.copy()
    stripes = (np.indices((320, 160)).sum(0) % 2 * 60).astype(np.uint8)[..., None]
    textured[:, :160] = np.clip(textured[:, :160].astype(int) + stripes, 0, 255).astype(np.uint8)
    assert (
        gentle_denoise(call, textured).params["strength"]
        < gentle_denoise(call, flat).params["strength"]
    )


def _noise_read_by_level(monkeypatch: pytest.MonkeyPatch, max_steps: int) -> Any:
    """A whole noisy photo whose noise perception reads from the flat blocks only."""
    from tir_env import photo_thresholds
    from tir_env.env import TIREnv

    monkeypatch.setattr(photo_thresholds, "reads_clean", lambda probs, limits: True)
    monkeypatch.setattr(photo_thresholds, "noise_level", lambda image: 2.0)  # in the band
    env = TIREnv(combos="mio-a", max_steps=max_steps, patch_size=None)
    env.reset(seed=1, options={"degradations": ("noise",)})
    return env


@pytest.mark.skipif(not perception_available(), reason="perception weights missing")
def test_fixed_denoises_gently_only_where_noise_was_read_from_the_flat_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.base import make_agent
    from agents.tuned import GENTLE_TOOL
    from tir_env import photo_thresholds

    env = _noise_read_by_level(monkeypatch, max_steps=5)

    def strength(**options: Any) -> float:
        agent = make_agent("fixed", **options)
        agent.reset(env, {})
        calls = [c for c in agent.plan if c.tool == GENTLE_TOOL]
        assert len(calls) == 1
        return float(calls[0].params["strength"])

    fitted = strength(whole_gentle_noise=False)
    assert strength() != fitted  # on by default (rule c1195e6)
    monkeypatch.setattr(photo_thresholds, "noise_level", lambda image: 9.0)  # above the band
    assert strength() == fitted  # the network's own reading: the fitted strength


@pytest.mark.skipif(not perception_available(), reason="perception weights missing")
def test_the_search_agents_try_the_denoiser_gently_where_fixed_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rule 7ca6475: exhaustive's preferred denoiser call follows fixed's gentle one."""
    from agents.base import make_agent
    from agents.tuned import GENTLE_TOOL, prior_call

    env = _noise_read_by_level(monkeypatch, max_steps=1)
    fitted = prior_call(GENTLE_TOOL, "tuned")
    fixed = make_agent("fixed")
    fixed.reset(env, {})
    gentle = next(c for c in fixed.plan if c.tool == GENTLE_TOOL)
    assert gentle != fitted
    for options, expected in (({}, gentle), ({"whole_gentle_noise": False}, fitted)):
        agent = make_agent("exhaustive", **options)
        agent.reset(env, {})
        assert agent.prior_call(GENTLE_TOOL) == expected


@pytest.mark.skipif(not perception_available(), reason="perception weights missing")
def test_tir_restore_says_where_the_noise_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.commands.restore import perception_line
    from tir_env import photo_thresholds

    image = _noisy_flat(3.0)
    monkeypatch.setattr(photo_thresholds, "reads_clean", lambda probs, limits: True)
    assert "read in the flattest blocks (level 1." in perception_line(image)
    monkeypatch.setattr(photo_thresholds, "noise_level", lambda image: 9.0)  # above the band
    assert "flattest blocks" not in perception_line(image)
