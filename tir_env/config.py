"""Frozen, typed configuration of the environment and its reward."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from tir_env.degradations.base import DEGRADATION_ORDERS, DegradationOrder
from tir_env.degradations.depth import DepthSource
from tir_env.degradations.protocols import COMBOS, Combo

RewardName = Literal["psnr", "static", "adaptive"]


@dataclass(frozen=True)
class EnvConfig:
    """Everything that defines a ``TIR-v0`` episode distribution.

    Attributes:
        images: Clean-image source: ``"train" | "val" | "test"`` (bundled photos),
            ``"bundled:<split>"``, ``"corpus:<split>"`` (the photo corpus, ``tir data
            photos``; ``corpus:train@3``: its photos of releases 1-3), a folder path, any of them
            followed by ``[k/n]`` for a fold (:func:`tir_env.data.source`).
        combos: Degradation combinations to sample from: a protocol name from
            :data:`~tir_env.degradations.protocols.COMBOS` (``"mio-a"`` ...) or explicit tuples.
        patch_size: Side of the clean square patch cut from each photo (multiple of 4), or
            ``None`` for the whole photo (trimmed to a multiple of 4 on each side, any aspect).
        degradation_order: ``"physical"`` applies a combination in
            :func:`~tir_env.degradations.base.protocol_order` (scene, imaging, compression);
            ``"listed"`` in the order the combination lists them (AgenticIR's protocol).
        obs_size: Side of the square observation images (the working image is resized).
        max_steps: Tool calls allowed before the episode is truncated.
        tools: Tool names forming the action space (``None``: the tools of ``toolbox``, in
            registry order).
        toolbox: Used when ``tools`` is ``None``: a preset (``"classical"``, ``"learned"``,
            ``"full"``, ``"agenticir"``; see :mod:`tir_env.tools.presets`) or a tuple of kinds.
        reward: Reward function: per-step PSNR gain (RL-Restore), a static weighted sum, or
            the adaptive multi-metric reward.
        metrics: Metrics computed and logged at every step (full-reference ones need the clean
            image). The reward adds the ones it needs.
        step_cost: Cost subtracted from the reward of every tool call.
        failure_penalty: Reward of a call whose tool fails (negated).
        history_len: Rows of the history array in the observation (most recent calls).
        device: Where the env's metrics (and a depth model) run: ``"cpu"``, ``"cuda"``,
            ``"cuda:N"`` or ``"auto"`` (CUDA when available); ``"cuda"`` without CUDA is refused
            when the env is built. Tools run where their pool puts them
            (``PoolConfig.device``; pass ``pool=`` to choose).
        depth: Depth map of haze: ``"proxy"`` (computed from the image), ``"folder:DIR"`` (one
            map per clean image, by file stem), ``"model:DIR"`` (a local ``transformers``
            depth model) or a :class:`~tir_env.degradations.depth.DepthSource`; see
            :mod:`tir_env.degradations.depth`. Records name the source of every hazy episode.
    """

    images: str = "train"
    combos: str | tuple[Combo, ...] = "mio-a"
    patch_size: int | None = 128
    degradation_order: DegradationOrder = "physical"
    obs_size: int = 128
    max_steps: int = 5
    tools: tuple[str, ...] | None = None
    toolbox: str | tuple[str, ...] = "classical"
    reward: RewardName = "psnr"
    metrics: tuple[str, ...] = ("psnr", "ssim")
    step_cost: float = 0.0
    failure_penalty: float = 1.0
    history_len: int = 8
    device: str = "cpu"
    depth: str | DepthSource = "proxy"
    reward_kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.patch_size is not None and (self.patch_size < 8 or self.patch_size % 4):
            raise ValueError(f"patch_size must be a multiple of 4 and >= 8, got {self.patch_size}")
        if self.obs_size < 8:
            raise ValueError(f"obs_size must be >= 8, got {self.obs_size}")
        if self.max_steps < 1 or self.history_len < 1:
            raise ValueError("max_steps and history_len must be >= 1")
        if self.degradation_order not in DEGRADATION_ORDERS:
            raise ValueError(
                f"unknown degradation_order {self.degradation_order!r}; "
                f"choose one of {DEGRADATION_ORDERS}"
            )
        DepthSource.parse(self.depth)  # a bad spec fails here, missing folders at env build
        if isinstance(self.combos, str) and self.combos not in COMBOS:
            raise ValueError(f"unknown combos {self.combos!r}; choose one of {sorted(COMBOS)}")

    @property
    def combo_list(self) -> tuple[Combo, ...]:
        """The combinations as explicit tuples."""
        return COMBOS[self.combos] if isinstance(self.combos, str) else tuple(self.combos)

    @classmethod
    def from_kwargs(cls, config: EnvConfig | None = None, **overrides: Any) -> EnvConfig:
        """Build a config from keyword overrides (``gym.make('TIR-v0', max_steps=3)``).

        Raises:
            TypeError: an override that is not a config field.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown EnvConfig field(s) {unknown}; fields: {sorted(names)}")
        if "toolbox" in overrides and overrides["toolbox"] is None:
            overrides["toolbox"] = "classical"
        if isinstance(overrides.get("tools"), str):  # one tool name, not its characters
            overrides["tools"] = (overrides["tools"],)
        for key in ("tools", "toolbox"):  # lists (from JSON/TOML/CLI) -> hashable tuples
            value = overrides.get(key)
            if value is not None and not isinstance(value, str):
                overrides[key] = tuple(value)
        if "metrics" in overrides:
            overrides["metrics"] = tuple(overrides["metrics"])
        if isinstance(overrides.get("combos"), list):
            overrides["combos"] = tuple(tuple(c) for c in overrides["combos"])
        return replace(config or cls(), **overrides)
