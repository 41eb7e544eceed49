"""Rewards for TIR-v0.

A reward turns the metrics of the image before and after a step into a scalar and a dict
of named terms (logged in ``info["reward_terms"]`` so every contribution is visible).

:class:`PSNRReward` is RL-Restore's reward: the per-step PSNR gain against the clean image,
``r_t = PSNR(x_t, y) - PSNR(x_{t-1}, y) - c``, so an episode's return is its total PSNR gain
minus ``c`` per call (Yu et al., CVPR 2018, ``dqn/utils.py: step_psnr_reward``).

Register a reward class with :func:`register_reward` (keyed on its ``name`` class variable);
build one with :func:`make_reward`. The built-ins live here and in
:mod:`tir_env.adaptive_reward`; third-party packages add rewards through the entry-point group
``tir.rewards`` (``docs/extending.md``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from tir_env.errors import RewardError, UnknownNameError
from tir_env.registry import Registry


@dataclass(frozen=True)
class RewardOutput:
    """A scalar reward and the named terms it is made of."""

    reward: float
    terms: dict[str, float] = field(default_factory=dict)


class Reward(ABC):
    """Base class of step rewards.

    Attributes:
        name: Registry name (``EnvConfig(reward=...)``).
        required_metrics: Metrics the env must compute for this reward.
        needs_reference: Whether the reward is undefined without the clean image.
    """

    name: ClassVar[str] = "reward"
    required_metrics: tuple[str, ...] = ()
    needs_reference: bool = True

    def __init__(self, step_cost: float = 0.0, failure_penalty: float = 1.0) -> None:
        self.step_cost = float(step_cost)
        self.failure_penalty = float(failure_penalty)

    def reset(self, seeded: bool = False) -> None:  # noqa: B027 - optional hook
        """Start of an episode; ``seeded`` when the env was reset with a seed.

        Stateless rewards ignore it; adaptive ones restart their statistics on seeded resets.
        """

    def failed(self) -> RewardOutput:
        """Reward of a call whose tool failed: ``-failure_penalty``."""
        return RewardOutput(-self.failure_penalty, {"failure": -self.failure_penalty})

    def stop(self, initial: Mapping[str, float], final: Mapping[str, float]) -> RewardOutput:
        """Reward of the STOP action (0 unless a subclass adds a terminal term)."""
        return RewardOutput(0.0, {})

    @abstractmethod
    def step(self, before: Mapping[str, float], after: Mapping[str, float]) -> RewardOutput:
        """Reward of a successful tool call."""


RewardFactory = Any
REWARDS: Registry[RewardFactory] = Registry(
    "reward",
    entry_point_group="tir.rewards",
    builtins=("tir_env.reward", "tir_env.adaptive_reward"),
)

_R = TypeVar("_R", bound=type[Reward])


def register_reward(cls: _R) -> _R:
    """Class decorator: register a :class:`Reward` subclass under ``cls.name``."""
    return REWARDS.register(cls)


@register_reward
class PSNRReward(Reward):
    """Per-step PSNR gain in dB minus a step cost (RL-Restore's reward)."""

    name: ClassVar[str] = "psnr"

    required_metrics = ("psnr",)

    def step(self, before: Mapping[str, float], after: Mapping[str, float]) -> RewardOutput:
        """``PSNR_after - PSNR_before - step_cost``."""
        gain = after["psnr"] - before["psnr"]
        return RewardOutput(gain - self.step_cost, {"psnr": gain, "step_cost": -self.step_cost})


def make_reward(name: str, **kwargs: Any) -> Reward:
    """Build the reward called ``name`` with keyword arguments."""
    reward: Reward = REWARDS.get(name)(**kwargs)
    return reward


def checked_reward(
    reward: Reward,
    out: object,
    before: Mapping[str, float] | None = None,
    after: Mapping[str, float] | None = None,
) -> RewardOutput:
    """``out``, what ``reward`` returned for one step, if it is a finite :class:`RewardOutput`.

    Args:
        reward: The reward that returned it (named in the error).
        out: Its return value.
        before: The metrics before the step (shown in the error: a NaN often comes from one).
        after: The metrics after the step.

    Raises:
        RewardError: ``out`` is not a ``RewardOutput`` whose ``reward`` is a finite number.
    """
    value = getattr(out, "reward", None) if isinstance(out, RewardOutput) else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(out, RewardOutput) and math.isfinite(number):
        return out
    got = f"RewardOutput(reward={value!r})" if isinstance(out, RewardOutput) else repr(out)
    raise RewardError(
        f"reward {reward.name!r} ({type(reward).__module__}.{type(reward).__qualname__}) "
        f"returned {got}; a reward must return a RewardOutput with a finite reward. "
        f"Metrics before the step: {dict(before or {})}, after: {dict(after or {})}"
    )


def env_metric_names(reward: Reward, metrics: Sequence[str]) -> tuple[str, ...]:
    """The metrics an env computes: ``metrics``, then those ``reward`` needs, each checked.

    Raises:
        UnknownNameError: a name is not a registered metric (with a did-you-mean hint; the
            reward is named when it is the one that asks for it).
    """
    from tir_env.metrics import METRICS

    names = tuple(dict.fromkeys((*metrics, *reward.required_metrics)))
    for name in names:
        try:
            METRICS.get(name)
        except UnknownNameError as err:
            if name in metrics:
                raise
            raise UnknownNameError(
                f"reward {reward.name!r} requires metric {name!r}: {err}"
            ) from err
    return names
