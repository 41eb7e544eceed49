from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tir_env.env import TIREnv
from tir_env.errors import InvalidActionError, InvalidParameterError
from tir_env.spaces import encode_call
from tir_env.tools.pool import SyncToolPool
from tir_env.types import ToolCall
from tir_env.wrappers import (
    ActionHistory,
    CatalogueAction,
    ClipAction,
    DropInfoHistory,
    MultiDiscreteAction,
    ResizeObservation,
    action_history,
    catalogue_actions,
    native_view,
    policy_image,
    sb3_env,
    tile_views,
)

KW = dict(patch_size=32, obs_size=32, max_steps=3, metrics=("psnr",))
CATALOGUE = (ToolCall("gamma_correction"), ToolCall("dct_denoise", {"strength": 2.0}))


def _env(**kw) -> TIREnv:
    return TIREnv(pool=SyncToolPool(), **{**KW, **kw})


@pytest.mark.parametrize("size", [36, 48])
def test_sb3_stack_passes_sb3_check_env_without_warnings(size):
    env = sb3_env(_env(obs_size=size), CATALOGUE, history_len=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env)
    assert env.action_space == gym.spaces.Discrete(3)
    assert env.observation_space["image"].shape == (3, size, size)
    assert env.observation_space["history"].shape == (4 * (1 + 3),)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_sb3_stack_passes_gymnasium_check_env():
    from gymnasium.utils.env_checker import check_env

    check_env(sb3_env(_env(), CATALOGUE), skip_render_check=True)


@pytest.mark.filterwarnings("ignore:Your observation history has an unconventional shape")
def test_multidiscrete_passes_sb3_check_env():  # the native K x F history stays 2-D here
    env = DropInfoHistory(MultiDiscreteAction(ResizeObservation(_env(obs_size=40)), levels=3))
    sb3_check_env(env)
    n_tools, p = len(env.unwrapped.tools), env.unwrapped.action_space["params"].shape[0]
    assert list(env.action_space.nvec) == [n_tools + 1] + [3] * p


def test_multidiscrete_maps_levels_to_the_grid():
    env = MultiDiscreteAction(_env(), levels=5)
    p = env.unwrapped.action_space["params"].shape[0]
    native = env.action(np.array([2] + [4] + [0] * (p - 1)))
    assert native["tool"] == 2
    assert native["params"][0] == 1.0 and np.all(native["params"][1:] == 0.0)
    with pytest.raises(InvalidActionError):
        env.action(np.array([99] + [0] * p))


def test_catalogue_action_maps_indices_to_tool_calls():
    env = CatalogueAction(_env(), CATALOGUE)
    tools = env.unwrapped.tools
    assert env.action(0)["tool"] == 0  # STOP
    for i, call in enumerate(CATALOGUE, start=1):
        expected = encode_call(call, tools)
        assert env.action(i)["tool"] == expected["tool"]
        np.testing.assert_array_equal(env.action(i)["params"], expected["params"])
    env.reset(seed=0)
    _, _, _, _, info = env.step(2)
    assert info["tool"] == str(ToolCall("dct_denoise", {"strength": 2.0, "step": 2.0}))
    _, _, terminated, _, _ = env.step(0)
    assert terminated
    with pytest.raises(InvalidActionError, match="out of range"):
        env.action(3)


def test_catalogue_default_is_every_tool_with_defaults():
    env = CatalogueAction(_env())
    assert env.action_space.n == len(env.unwrapped.tools) + 1


def test_catalogue_rejects_unknown_tools_and_bad_presets():
    with pytest.raises(InvalidActionError, match="not in this env's tools"):
        CatalogueAction(_env(tools=("gamma_correction",)), [ToolCall("dct_denoise")])
    with pytest.raises(InvalidParameterError):
        catalogue_actions([ToolCall("gamma_correction", {"gamma": 99.0})], ("gamma_correction",))


def test_clip_action_clips_instead_of_raising():
    env = ClipAction(_env())
    env.reset(seed=0)
    p = env.unwrapped.action_space["params"].shape[0]
    env.step({"tool": 1, "params": np.full(p, 2.0, dtype=np.float32)})
    with pytest.raises(InvalidActionError):
        env.unwrapped.step({"tool": 1, "params": np.full(p, 2.0, dtype=np.float32)})


def test_resize_observation_is_policy_image_of_the_full_image():
    env = ResizeObservation(_env(patch_size=64, obs_size=64), size=32)
    obs, _ = env.reset(seed=3, options={"degradations": ("noise", "jpeg")})  # full-size input
    assert obs["image"].shape == (3, 32, 32) and obs["image"].dtype == np.uint8
    np.testing.assert_array_equal(
        obs["input"], policy_image(env.unwrapped.input_image(), 32, channels_first=True)
    )
    hwc = ResizeObservation(_env(), size=16, channels_first=False)
    assert hwc.reset(seed=0)[0]["image"].shape == (16, 16, 3)


@settings(max_examples=30, deadline=None)
@given(patch=st.sampled_from([16, 32, 64]), low_res=st.booleans(), seed=st.integers(0, 2**16))
def test_native_view_is_policy_image_on_the_training_sizes(patch, low_res, seed):
    side = patch // 4 if low_res else patch
    image = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        native_view(image, 32, patch, (patch, patch)), policy_image(image, 32)
    )


def test_native_view_keeps_the_pixels_of_a_larger_or_smaller_image():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    # A larger image: its centred training-size window, pixel for pixel (no resize).
    view = native_view(photo, 64, 64, channels_first=False)
    np.testing.assert_array_equal(view, photo[68:132, 118:182])
    # Its low-resolution input seen at the photo's size: the same window, upsampled.
    small = photo[::4, ::4]
    assert native_view(small, 64, 64, (200, 300)).shape == (3, 64, 64)
    # A smaller crop: padded by reflection around its unchanged pixels, never stretched.
    crop = photo[:48, :48]
    view = native_view(crop, 64, 64, channels_first=False)
    np.testing.assert_array_equal(view[8:56, 8:56], crop)
    np.testing.assert_array_equal(view[7, 8:56], crop[0])  # symmetric: the edge row again


def test_tile_views_cover_a_whole_photo_at_the_training_scale():
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (256, 384, 3), dtype=np.uint8)
    tiles = tile_views(photo, 64, 64, (256, 384), 2, channels_first=False)
    # centres at 1/4 and 3/4 of each side: windows at rows 32, 160 and columns 64, 256
    starts = [(r, c) for r in (32, 160) for c in (64, 256)]
    assert len(tiles) == 4
    for tile, (r, c) in zip(tiles, starts, strict=True):
        np.testing.assert_array_equal(tile, photo[r : r + 64, c : c + 64])
    # one tile is the centred native view; an image no larger than the crops has one view
    np.testing.assert_array_equal(
        tile_views(photo, 64, 64, (256, 384), 1)[0], native_view(photo, 64, 64)
    )
    crop = photo[:48, :48]
    assert len(tile_views(crop, 64, 64, (48, 48), 3)) == 1


@settings(max_examples=40, deadline=None)
@given(h=st.integers(8, 300), w=st.integers(8, 300), grid=st.integers(1, 4), low_res=st.booleans())
def test_tile_views_keep_every_window_inside_any_image(h, w, grid, low_res):
    image = np.zeros((max(1, h // 4), max(1, w // 4), 3) if low_res else (h, w, 3), np.uint8)
    views = tile_views(image, 32, 64, (h, w), grid)
    assert len(views) == (grid * grid if max(h, w) > 64 else 1)
    assert all(v.shape == (3, 32, 32) and v.dtype == np.uint8 for v in views)


def test_action_history_one_hot_and_reset():
    env = ActionHistory(CatalogueAction(_env(max_steps=5), CATALOGUE), rows=2)
    obs, _ = env.reset(seed=0)
    assert not obs["history"].any()
    for a in (1, 2, 1):
        obs, *_ = env.step(a)
    rows = obs["history"].reshape(2, 1 + 3)
    np.testing.assert_array_equal(rows, [[1, 0, 0, 1], [1, 0, 1, 0]])  # the last two: 2, 1
    assert not env.reset(seed=1)[0]["history"].any()
    np.testing.assert_array_equal(action_history([], 3, 2), np.zeros((2, 4), np.float32))


def test_action_history_needs_discrete_actions():
    with pytest.raises(TypeError, match="Discrete"):
        ActionHistory(_env())


def test_drop_info_history_and_determinism():
    a, b = sb3_env(_env(), CATALOGUE), sb3_env(_env(), CATALOGUE)
    (oa, ia), (ob, _) = a.reset(seed=5), b.reset(seed=5)
    assert "history" not in ia
    for key in oa:
        np.testing.assert_array_equal(oa[key], ob[key])
    assert "history" not in a.step(1)[-1]
