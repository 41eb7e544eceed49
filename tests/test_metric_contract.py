"""Faulty custom metrics and rewards are named where they are computed; built-ins keep theirs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tir_env  # noqa: F401  (registers TIR-v0)
from tir_env.errors import MetricError, RewardError, UnknownNameError
from tir_env.metrics import METRICS, Metric, MetricInfo, make_metric
from tir_env.metrics.base import checked_scores
from tir_env.reward import REWARDS, Reward, RewardOutput, checked_reward, make_reward
from tir_env.spaces import encode_call
from tir_env.types import ToolCall

ENV: dict[str, Any] = {"patch_size": 32, "obs_size": 32}


def _raise(batch: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("metric kaboom")


#: name -> (what compute returns for a batch, what the error says)
FAULTY: dict[str, tuple[Callable[[torch.Tensor], Any], str]] = {
    "test_m_nan": (lambda b: torch.full((b.shape[0],), math.nan), "returned nan for image 0"),
    "test_m_inf": (lambda b: torch.full((b.shape[0],), math.inf), "returned inf for image 0"),
    "test_m_shape": (lambda b: torch.zeros(b.shape[0], 2), r"returned shape \(1, 2\)"),
    "test_m_numpy": (lambda b: np.zeros(b.shape[0]), "returned ndarray"),
    "test_m_raise": (_raise, "raised RuntimeError: metric kaboom"),
}


def _metric(name: str, compute: Callable[[torch.Tensor], Any]) -> type:
    info = MetricInfo(name=name, needs_reference=False, lower_better=False, range=(0.0, 1.0))
    return type(name, (Metric,), {"info": info, "compute": lambda s, b, r: compute(b)})


@pytest.fixture(scope="module")
def faulty_metrics() -> Iterator[None]:
    for name, (compute, _) in FAULTY.items():
        METRICS.register(_metric(name, compute))
    yield
    for name in FAULTY:
        METRICS.remove(name)
    make_metric.cache_clear()


@pytest.mark.parametrize("name", FAULTY)
def test_a_faulty_metric_is_named_when_called(faulty_metrics: None, name: str) -> None:
    with pytest.raises(MetricError, match=rf"metric '{name}' {FAULTY[name][1]}"):
        make_metric(name)(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("name", FAULTY)
def test_a_faulty_metric_is_named_by_the_env(faulty_metrics: None, name: str) -> None:
    env = gym.make("TIR-v0", metrics=("psnr", name), **ENV)
    with pytest.raises(MetricError, match=rf"metric '{name}'"):
        env.reset(seed=0)


def test_a_metric_that_raises_keeps_the_cause(faulty_metrics: None) -> None:
    with pytest.raises(MetricError) as caught:
        make_metric("test_m_raise")(torch.rand(1, 3, 16, 16))
    assert isinstance(caught.value.__cause__, RuntimeError)


SHAPES: dict[str, Callable[[int], tuple[int, ...]]] = {
    "flat": lambda n: (n,),
    "row": lambda n: (1, n),
    "column": lambda n: (n, 1),
    "nested": lambda n: (1, n, 1),
}


@given(st.integers(1, 6), st.sampled_from(sorted(SHAPES)))
def test_any_tensor_of_one_finite_score_per_image_is_accepted(n: int, shape: str) -> None:
    scores = torch.rand(SHAPES[shape](n), dtype=torch.float32)
    out = checked_scores("m", scores, n)
    assert out.shape == (n,) and out.dtype == torch.float64
    assert torch.equal(out, scores.reshape(n).double())


@given(st.integers(1, 6), st.integers(0, 12))
def test_a_wrong_number_of_scores_is_refused(n: int, m: int) -> None:
    if m == n:
        return
    with pytest.raises(MetricError, match=f"for a batch of {n} image"):
        checked_scores("m", torch.zeros(m), n)


@pytest.mark.parametrize(
    ("name", "value"),
    [("psnr", 80.0), ("psnr_pyiqa", 80.0), ("psnr_y", 100.0), ("ssim", 1.0), ("ms_ssim", 1.0)],
)
def test_builtins_keep_their_values_on_identical_images(name: str, value: float) -> None:
    """PSNR of identical images is capped (no Inf), so the contract leaves it as it was."""
    image = torch.rand(2, 3, 64, 64)
    assert make_metric(name)(image, image.clone()).tolist() == pytest.approx([value, value])


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_niqe_of_a_flat_image_is_its_worst_score_not_an_error(level: float) -> None:
    metric = make_metric("niqe")
    scores = metric(torch.full((1, 3, 128, 128), level))
    assert torch.isfinite(scores).all() and scores.item() <= metric.info.range[1]


# --------------------------------------------------------------------------- rewards


class _Constant(Reward):
    """A reward that always returns ``value``."""

    name = "test_constant"
    required_metrics = ("psnr",)
    value: Any = 0.0

    def step(self, before: Any, after: Any) -> RewardOutput:
        return RewardOutput(self.value, {})


@pytest.fixture
def constant_reward() -> Iterator[type[_Constant]]:
    REWARDS.register(_Constant)
    yield _Constant
    REWARDS.remove(_Constant.name)
    _Constant.value = 0.0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.5x", None])
def test_a_non_finite_reward_is_named_by_the_env(
    constant_reward: type[_Constant], value: Any
) -> None:
    constant_reward.value = value
    env = gym.make("TIR-v0", reward="test_constant", **ENV)
    env.reset(seed=0)
    call = encode_call(ToolCall("gamma_correction"), env.unwrapped.tools)  # type: ignore[attr-defined]
    with pytest.raises(RewardError, match=r"reward 'test_constant' .*_Constant\) returned .*psnr"):
        env.step(call)


def test_a_finite_reward_passes_through(constant_reward: type[_Constant]) -> None:
    constant_reward.value = np.float32(0.25)
    env = gym.make("TIR-v0", reward="test_constant", **ENV)
    env.reset(seed=0)
    call = encode_call(ToolCall("gamma_correction"), env.unwrapped.tools)  # type: ignore[attr-defined]
    assert env.step(call)[1] == pytest.approx(0.25)


def test_a_reward_must_return_a_reward_output() -> None:
    reward = make_reward("psnr")
    with pytest.raises(RewardError, match="reward 'psnr' .*returned 0.5; a reward must"):
        checked_reward(reward, 0.5)
    out = RewardOutput(1.5, {"psnr": 1.5})
    assert checked_reward(reward, out, {"psnr": 20.0}, {"psnr": 21.5}) is out


@pytest.mark.parametrize("reward", ["psnr", "static", "adaptive"])
def test_builtin_rewards_still_step(reward: str) -> None:
    env = gym.make("TIR-v0", reward=reward, **ENV)
    env.reset(seed=0)
    call = encode_call(ToolCall("gamma_correction"), env.unwrapped.tools)  # type: ignore[attr-defined]
    assert math.isfinite(env.step(call)[1])


# ------------------------------------------------------------ metric names at gym.make


def test_a_rewards_unknown_metric_is_refused_by_gym_make() -> None:
    cls = type(
        "TypoReward",
        (Reward,),
        {"name": "test_typo", "required_metrics": ("psnrr",), "step": lambda s, b, a: None},
    )
    REWARDS.register(cls)
    try:
        with pytest.raises(
            UnknownNameError,
            match="reward 'test_typo' requires metric 'psnrr'.*Did you mean 'psnr'",
        ):
            gym.make("TIR-v0", reward="test_typo", **ENV)
    finally:
        REWARDS.remove("test_typo")


def test_an_unknown_metric_in_the_config_is_refused_by_gym_make() -> None:
    with pytest.raises(UnknownNameError, match="unknown metric 'ssimm'. Did you mean 'ssim'"):
        gym.make("TIR-v0", metrics=("psnr", "ssimm"), **ENV)
