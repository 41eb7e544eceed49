"""Multi-metric rewards: a static weighted sum, and the adaptive reward of TIR.

TIR-Agent (arXiv 2603.27742) reports that a *static* weighted sum of heterogeneous metrics
(PSNR, SSIM, CLIP-IQA, MUSIQ) lets a policy inflate one metric while the image gets worse,
and proposes a reward that "dynamically re-weights heterogeneous image quality metrics to
mitigate reward hacking". Its formula is not public; :class:`AdaptiveReward` is ours, built
from three published ideas: scale normalisation by the spread of improvements within a group
(DVAO, arXiv 2605.25604), relative improvement against the previous image (JarvisIR), and a
fidelity gate on perceptual terms. See ``docs/reward.md`` for the rationale and the
experiment that shows it resists a hackable tool where the static sum does not.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from tir_env.reward import Reward, RewardOutput, register_reward

if TYPE_CHECKING:
    from tir_env.metrics.base import MetricInfo

logger = logging.getLogger(__name__)


@functools.cache  # read on every step for every metric
def _info(name: str) -> MetricInfo:
    """The metric's declared metadata (direction, reference, step scale) from its registry."""
    from tir_env.metrics import metric_info

    return metric_info(name)


def signed_delta(name: str, before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """Improvement of metric ``name`` (positive = better), whatever its direction."""
    d = after[name] - before[name]
    return -d if _info(name).lower_better else d


@register_reward
class StaticReward(Reward):
    r"""A fixed weighted sum of metric improvements, OPERA-style (the hackable baseline).

    .. math:: r_t = \sum_k w_k \, \Delta_k / c_k - c_{step}

    where :math:`\Delta_k` is metric k's signed improvement and :math:`c_k` a fixed scale.
    OPERA uses ``psnr/9 + ssim/0.3 + 2 (-lpips/0.3 + clipiqa/0.1 + musiq/7.5)``.

    Args:
        weights: metric -> weight (default PSNR 1, SSIM 1, NIQE 2: fidelity and naturalness).
        scales: metric -> scale :math:`c_k` (default: each metric's ``info.step_scale``).
        step_cost: Cost per tool call.
        failure_penalty: Reward of a failed call is minus this.
    """

    name: ClassVar[str] = "static"

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        scales: Mapping[str, float] | None = None,
        step_cost: float = 0.0,
        failure_penalty: float = 1.0,
    ) -> None:
        super().__init__(step_cost, failure_penalty)
        self.weights = dict(weights or {"psnr": 1.0, "ssim": 1.0, "niqe": 2.0})
        self.scales = {k: (scales or {}).get(k, _info(k).step_scale) for k in self.weights}
        self.required_metrics = tuple(self.weights)
        self.needs_reference = any(_info(k).needs_reference for k in self.weights)

    def step(self, before: Mapping[str, float], after: Mapping[str, float]) -> RewardOutput:
        """Weighted sum of scaled improvements minus the step cost."""
        terms = {f"delta/{k}": signed_delta(k, before, after) for k in self.weights}
        total = sum(w * terms[f"delta/{k}"] / self.scales[k] for k, w in self.weights.items())
        terms["step_cost"] = -self.step_cost
        return RewardOutput(total - self.step_cost, terms)


@dataclass
class _RunningScale:
    """Exponential moving RMS of one metric's improvements (its typical step size)."""

    value: float
    momentum: float

    def update(self, deltas: Sequence[float]) -> None:
        if deltas:
            rms = math.sqrt(sum(d * d for d in deltas) / len(deltas))
            self.value = self.momentum * self.value + (1 - self.momentum) * max(rms, 1e-8)


#: Base weights of the adaptive reward's default metrics.
DEFAULT_METRICS: dict[str, float] = {"psnr": 1.0, "ssim": 1.0, "niqe": 1.0}
#: Learned no-reference metrics TIR-Agent's reward mixes in, added by ``metrics="auto"``.
AUTO_EXTRAS: tuple[str, ...] = ("clipiqa", "musiq")


def auto_metrics(weights_dir: str | None = None) -> dict[str, float]:
    """The default metrics plus each of :data:`AUTO_EXTRAS` whose files are present."""
    from tir_env.metrics import unavailable_reason

    chosen = dict(DEFAULT_METRICS)
    for name in AUTO_EXTRAS:
        reason = unavailable_reason(name, weights_dir)
        if reason is None:
            chosen[name] = 1.0
        else:
            logger.info("adaptive reward: %s left out (%s)", name, reason)
    logger.info("adaptive reward metrics: %s", ", ".join(chosen))
    return chosen


@register_reward
class AdaptiveReward(Reward):
    r"""Adaptive multi-metric reward: normalise, gate, and re-weight metrics every step.

    For each metric k with signed improvement :math:`\Delta_k` (positive = better):

    1. **Normalise** by its typical step size: :math:`z_k = \mathrm{clip}(\Delta_k /
       \sigma_k, -z_{max}, z_{max})`, where :math:`\sigma_k` is the RMS of k's improvements
       over the current batch / GRPO group, blended into a running estimate (momentum
       ``momentum``) that starts at the metric's ``info.step_scale``. Every metric then speaks in
       units of "a typical step", so none dominates by its units or its variance (DVAO).
    2. **Fidelity consensus**: :math:`F = \mathrm{mean}_{k \in \text{fidelity}} z_k` over the
       full-reference metrics (all metrics when there is no reference).
    3. **Consistency gate**: a perceptual (no-reference) metric's *gain* is discounted,
       :math:`g_k = \gamma`, when fidelity falls, :math:`F < -\tau`: a sharper-looking but
       less faithful image earns nothing for looking sharper. Losses are never gated.
    4. **Agreement weights**: :math:`a_k` is a running rate at which metric k's sign agrees
       with F; weights :math:`w_k \propto b_k \max(a_k, a_{min})`, normalised to sum 1, so a
       metric that keeps disagreeing with fidelity (the hackable one) loses influence.

    .. math:: r_t = \sum_k w_k g_k z_k - c_{step}

    STOP pays ``terminal_weight`` times the same score computed between the input and the
    final image (0 by default). Text agents add :meth:`format_penalty`. A seeded
    ``reset(seed=...)`` of the env calls :meth:`reset_statistics`, so seeded episodes are
    reproducible; unseeded resets keep adapting.

    Args:
        metrics: metric -> base weight :math:`b_k` (default PSNR 1, SSIM 1, NIQE 1), or
            ``"auto"``: the defaults plus TIR-Agent's CLIP-IQA and MUSIQ (weight 1 each)
            where their weight files are present (``tir weights fetch clipiqa musiq``). Opt-in,
            so a reward never changes because of what happens to be on disk; the metrics
            chosen are logged and are :attr:`required_metrics`.
        momentum: Running-statistics momentum (0: only the current batch counts).
        z_max: Clip of normalised improvements.
        tau: Fidelity consensus below ``-tau`` closes the gate.
        gamma: Gate value when closed (0 discards the gain).
        min_agreement: Floor of the agreement rate in the weights.
        terminal_weight: Weight of the whole-episode score paid at STOP.
        format_penalty_value: Penalty for malformed text actions.
        step_cost: Cost per tool call.
        failure_penalty: Reward of a failed call is minus this.
    """

    name: ClassVar[str] = "adaptive"

    def __init__(
        self,
        metrics: Mapping[str, float] | Literal["auto"] | None = None,
        momentum: float = 0.9,
        z_max: float = 5.0,
        tau: float = 0.1,
        gamma: float = 0.0,
        min_agreement: float = 0.1,
        terminal_weight: float = 0.0,
        format_penalty_value: float = 1.0,
        step_cost: float = 0.0,
        failure_penalty: float = 1.0,
    ) -> None:
        super().__init__(step_cost, failure_penalty)
        self.base = auto_metrics() if metrics == "auto" else dict(metrics or DEFAULT_METRICS)
        self.momentum, self.z_max, self.tau, self.gamma = momentum, z_max, tau, gamma
        self.min_agreement, self.terminal_weight = min_agreement, terminal_weight
        self.format_penalty_value = format_penalty_value
        self.required_metrics = tuple(self.base)
        self.fidelity = tuple(k for k in self.base if _info(k).needs_reference)
        self.needs_reference = False  # degrades gracefully to the no-reference metrics
        self.reset_statistics()

    def reset(self, seeded: bool = False) -> None:
        """Seeded resets restart the statistics, so seeded episodes are reproducible."""
        if seeded:
            self.reset_statistics()

    def reset_statistics(self) -> None:
        """Forget the running scales and agreement rates (back to the defaults)."""
        self.scales = {k: _RunningScale(_info(k).step_scale, self.momentum) for k in self.base}
        self.agreement = dict.fromkeys(self.base, 1.0)

    def format_penalty(self) -> RewardOutput:
        """Reward of a malformed text action (unparseable tool call)."""
        return RewardOutput(-self.format_penalty_value, {"format": -self.format_penalty_value})

    def step(self, before: Mapping[str, float], after: Mapping[str, float]) -> RewardOutput:
        """Reward of one successful call (a batch of one)."""
        return self.step_batch([before], [after])[0]

    def step_batch(
        self, befores: Sequence[Mapping[str, float]], afters: Sequence[Mapping[str, float]]
    ) -> list[RewardOutput]:
        """Rewards of a batch or GRPO group of steps, normalised with the group's spread."""
        pairs = list(zip(befores, afters, strict=True))
        present = [k for k in self.base if all(k in b and k in a for b, a in pairs)]
        deltas = {k: [signed_delta(k, b, a) for b, a in pairs] for k in present}
        for k in present:
            self.scales[k].update(deltas[k])
        outs = [self._score({k: deltas[k][i] for k in present}) for i in range(len(befores))]
        self._update_agreement(outs)
        return outs

    def stop(self, initial: Mapping[str, float], final: Mapping[str, float]) -> RewardOutput:
        """``terminal_weight`` times the input -> final score (no statistics update)."""
        if self.terminal_weight == 0:
            return RewardOutput(0.0, {})
        present = [k for k in self.base if k in initial and k in final]
        out = self._score({k: signed_delta(k, initial, final) for k in present}, cost=False)
        value = self.terminal_weight * out.reward
        return RewardOutput(value, {"terminal": value})

    def _score(self, deltas: Mapping[str, float], cost: bool = True) -> RewardOutput:
        z = {
            k: max(-self.z_max, min(self.z_max, d / self.scales[k].value))
            for k, d in deltas.items()
        }
        fid = [z[k] for k in self.fidelity if k in z] or list(z.values())
        consensus = sum(fid) / len(fid) if fid else 0.0
        gate = {k: self._gate(k, z[k], consensus) for k in z}
        weights = self._weights(list(z))
        total = sum(weights[k] * gate[k] * z[k] for k in z)
        terms = {"consensus": consensus, "step_cost": -self.step_cost if cost else 0.0}
        for k in z:
            terms |= {f"delta/{k}": deltas[k], f"z/{k}": z[k], f"weight/{k}": weights[k]}
            terms[f"gate/{k}"] = gate[k]
        return RewardOutput(total - (self.step_cost if cost else 0.0), terms)

    def _gate(self, name: str, z: float, consensus: float) -> float:
        perceptual = name not in self.fidelity
        return self.gamma if perceptual and z > 0 and consensus < -self.tau else 1.0

    def _weights(self, names: Sequence[str]) -> dict[str, float]:
        raw = {k: self.base[k] * max(self.agreement[k], self.min_agreement) for k in names}
        total = sum(raw.values()) or 1.0
        return {k: v / total for k, v in raw.items()}

    def _update_agreement(self, outs: Sequence[RewardOutput]) -> None:
        for out in outs:
            consensus = out.terms["consensus"]
            if abs(consensus) <= self.tau:
                continue
            for k in self.base:
                zk = out.terms.get(f"z/{k}")
                if zk is None or k in self.fidelity:
                    continue
                agrees = 1.0 if (zk > 0) == (consensus > 0) else 0.0
                self.agreement[k] = self.momentum * self.agreement[k] + (1 - self.momentum) * agrees
