from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import given
from hypothesis import strategies as st

import tir_env  # noqa: F401
from tir_env.env import TIREnv
from tir_env.errors import InvalidActionError, TIRError
from tir_env.spaces import encode_call
from tir_env.tools.base import TOOLS, Tool, ToolInfo, make_tool
from tir_env.types import ToolCall

SMALL = dict(patch_size=32, obs_size=32, max_steps=3)


@pytest.fixture(scope="module")
def env() -> TIREnv:
    return TIREnv(**SMALL)


def test_make_and_check_env():
    env = gym.make("TIR-v0", **SMALL)
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(info) >= {"image_id", "degradations", "metrics", "history"}


def test_same_seed_same_actions_same_rollout():
    def rollout(seed: int) -> list:
        env = TIREnv(**SMALL)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = [obs]
        for _ in range(3):
            obs, reward, term, trunc, info = env.step(env.action_space.sample())
            out.append((obs, reward, term, trunc, info["metrics"]))
            if term or trunc:
                break
        return out

    a, b = rollout(7), rollout(7)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_equal(x, y)
    assert not np.array_equal(rollout(8)[0]["input"], a[0]["input"])


def test_stop_terminates_and_max_steps_truncates(env):
    env.reset(seed=1)
    _, reward, terminated, truncated, info = env.step(encode_call(None, env.tools))
    assert terminated and not truncated and reward == 0.0 and info["tool"] is None
    env.reset(seed=1)
    call = ToolCall(env.tools[0], {})
    for i in range(SMALL["max_steps"]):
        _, _, terminated, truncated, info = env.step(encode_call(call, env.tools))
        assert not terminated
        assert truncated == (i == SMALL["max_steps"] - 1)
    assert len(info["history"]) == SMALL["max_steps"]


def test_reward_is_psnr_gain(env):
    env.reset(seed=2, options={"degradations": ("noise",)})
    before = env.unwrapped._metrics["psnr"]
    denoiser = next(t for t in env.tools if make_tool(t).info.task == "denoising")
    _, reward, *_, info = env.step(encode_call(ToolCall(denoiser, {}), env.tools))
    assert reward == pytest.approx(info["metrics"]["psnr"] - before)
    assert info["reward_terms"]["psnr"] == pytest.approx(reward)


def test_super_resolution_restores_size_and_metrics_at_reference_size(env):
    env.reset(seed=3, options={"degradations": ("low_resolution",)})
    assert env.input_image().shape == (8, 8, 3)
    sr = next(t for t in env.tools if make_tool(t).info.task == "super_resolution")
    obs, *_ = env.step(encode_call(ToolCall(sr, {}), env.tools))
    assert env.current_image().shape == (32, 32, 3)
    assert obs["image"].shape == (32, 32, 3)
    env.step(encode_call(ToolCall(sr, {}), env.tools))  # a second x4 is capped at full size
    assert env.current_image().shape == (32, 32, 3)


@pytest.mark.parametrize(
    "action, match",
    [
        ({"tool": 10_000, "params": np.zeros(1)}, "out of range"),
        ({"tool": -1, "params": np.zeros(1)}, "out of range"),
        ({"tool": 1.5, "params": np.zeros(1)}, "integer"),
        ({"tool": 1, "params": np.full(99, 0.5)}, "shape"),
        ({"tool": 1, "params": None}, "numeric|shape"),
        ("denoise", "dict"),
    ],
)
def test_bad_actions_raise_named_errors(env, action, match):
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=match):
        env.step(action)


def test_out_of_range_params_raise(env):
    env.reset(seed=0)
    action = env.action_space.sample()
    action["params"] = np.full_like(action["params"], 1.5)
    action["tool"] = 1
    with pytest.raises(InvalidActionError, match=r"\[0, 1\]"):
        env.step(action)


class _Exploding(Tool):
    info = ToolInfo(name="test_exploding", task="denoising", description="always raises")

    def apply(self, batch, params):
        raise RuntimeError("boom")


class _NaNTool(Tool):
    info = ToolInfo(name="test_nan", task="denoising", description="returns NaN")

    def apply(self, batch, params):
        return torch.full_like(batch, float("nan"))


def test_lookahead_matches_step_and_leaves_the_episode_alone():
    TOOLS.add(_Exploding.info.name, _Exploding, overwrite=True)
    try:
        env = TIREnv(**SMALL, tools=("test_exploding", "gamma_correction", "bicubic_x4"))
        env.reset(seed=1, options={"degradations": ("low_resolution",)})
        start = env.current_batch()
        calls = [ToolCall(t, {}) for t in env.tools]
        boom, gamma, sr = env.lookahead(start, calls)
        assert boom is None and env.current_batch() is start and env.history == []
        assert sr is not None and sr.shape[-1] == 4 * start.shape[-1]
        assert env.lookahead(sr, [calls[2]])[0].shape == sr.shape  # bounded like a step
        env.step(encode_call(calls[1], env.tools))
        torch.testing.assert_close(env.current_batch(), gamma)
        assert env.has_reference
    finally:
        TOOLS.remove("test_exploding")


@pytest.mark.parametrize("bad_tool", [_Exploding, _NaNTool])
def test_failing_tool_does_not_end_episode(bad_tool):
    TOOLS.add(bad_tool.info.name, bad_tool, overwrite=True)
    try:
        env = TIREnv(**SMALL, tools=(bad_tool.info.name, "gamma_correction"))
        env.reset(seed=0)
        before = env.current_image()
        _, reward, terminated, truncated, info = env.step(
            encode_call(ToolCall(bad_tool.info.name, {}), env.tools)
        )
        assert not terminated and not truncated
        assert reward == -env.config.failure_penalty
        assert info["error"] and np.array_equal(env.current_image(), before)
        assert not info["history"][-1].ok
        env.step(encode_call(ToolCall("gamma_correction", {}), env.tools))  # still usable
    finally:
        TOOLS.remove(bad_tool.info.name)


def test_unknown_tool_name_in_config():
    with pytest.raises(KeyError, match="Did you mean"):
        TIREnv(**SMALL, tools=("gama",))


def test_step_before_reset():
    with pytest.raises(TIRError, match="reset"):
        TIREnv(**SMALL).step({"tool": 0, "params": np.zeros(1)})


def test_given_image_and_render(tmp_path: Path):
    env = TIREnv(**SMALL, render_mode="rgb_array")
    image = np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8)
    obs, info = env.reset(options={"image": image, "reference": image})
    assert info["metrics"]["psnr"] > 60
    frame = env.render()
    assert frame is not None and frame.dtype == np.uint8 and frame.ndim == 3
    with pytest.raises(TIRError, match="reference"):
        env.reset(options={"image": image})


@given(st.integers(0, 10_000))
def test_rewards_finite_for_any_seed_and_action(seed):
    env = TIREnv(**SMALL)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    _, reward, *_ = env.step(env.action_space.sample())
    assert np.isfinite(reward)


def test_env_doc_matches_docstring():
    doc = Path(__file__).parents[1] / "docs" / "env.md"
    from benchmarks.gen_docs import env_markdown

    assert doc.read_text() == env_markdown(), "run: python -m benchmarks.gen_docs"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_refused_at_build():
    """EnvConfig.device is read: 'cuda' on a CPU-only machine fails when the env is built."""
    with pytest.raises(ValueError, match="cuda"):
        TIREnv(images="test", patch_size=32, device="cuda")


def test_device_places_the_env_metrics(monkeypatch):
    import tir_env.metrics.scoring as scoring  # the env scores through score_images

    seen: list[str] = []
    real = scoring.metric_on

    def spy(name: str, device: str):
        seen.append(device)
        return real(name, device)

    monkeypatch.setattr(scoring, "metric_on", spy)
    env = TIREnv(images="test", patch_size=32, device="cpu", metrics=("psnr", "niqe"))
    env.reset(seed=0)
    assert seen and set(seen) == {"cpu"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_cuda_scores_on_the_gpu(monkeypatch):
    """The env's metrics get its images on the GPU and score them as on the CPU."""
    import tir_env.metrics.scoring as scoring

    seen: list[str] = []
    real = scoring.metric_on

    class Recording:  # the metric, noting where each batch it scores lives
        def __init__(self, metric):
            self.metric, self.info = metric, metric.info
            self.min_size = getattr(metric, "min_size", 1)

        def __call__(self, batch, reference=None):
            seen.append(batch.device.type)
            return self.metric(batch, reference)

    def spy(name: str, device: str):
        return Recording(real(name, device))

    monkeypatch.setattr(scoring, "metric_on", spy)
    scores = {}
    for device in ("cuda", "cpu"):
        env = TIREnv(images="test", patch_size=32, device=device, metrics=("psnr", "niqe"))
        env.reset(seed=0)
        scores[device] = env.score(env._current, ("psnr", "niqe"))
    assert "cuda" in seen
    assert scores["cuda"] == pytest.approx(scores["cpu"], rel=1e-4)


def test_perception_input_is_the_photo_an_input_was_cut_from(env: TIREnv) -> None:
    from tir_env.errors import ImageError, InvalidOptionError

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    cut = np.ascontiguousarray(photo[4:36, 8:40])
    env.reset(options={"image": cut, "reference": cut})
    image, size = env.perception_input()  # no photo: the input at its target size
    assert np.array_equal(image, cut) and size == (32, 32)
    env.reset(options={"image": cut, "reference": cut, "photo": photo})
    image, size = env.perception_input()  # the photo, at the input's restoration scale (1)
    assert np.array_equal(image, photo) and size == (40, 48)
    low = np.ascontiguousarray(cut[::4, ::4])  # a low-resolution cut: restored 4x
    env.reset(options={"image": low, "reference": cut, "photo": photo[::4, ::4].copy()})
    assert env.perception_input()[1] == (40, 48)
    env.reset(seed=0)  # a drawn episode forgets the photo
    assert env.perception_input()[0].shape == env.input_image().shape
    with pytest.raises(ImageError):
        env.reset(options={"image": cut, "reference": cut, "photo": photo.astype(np.float32)})
    with pytest.raises(InvalidOptionError, match="goes with options\\['image'\\]"):
        env.reset(options={"photo": photo})  # a photo alone is not a draw at random
