"""Shared value types: tool parameters, tool calls, step records, and aliases.

These are plain, hashable, serialisable values: they cross the env, the pool, the agents
and the benchmark records unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

#: uint8 RGB image, HWC, values in [0, 255] (the observation contract).
ImageU8 = npt.NDArray[np.uint8]
#: float32 RGB image, HWC, values in [0, 1] (numpy-side working format).
ImageF32 = npt.NDArray[np.float32]

#: The eight restoration tasks of the AgenticIR protocol (one per degradation type).
Task = Literal[
    "super_resolution",
    "denoising",
    "jpeg_artifact_removal",
    "brightening",
    "dehazing",
    "motion_deblurring",
    "defocus_deblurring",
    "deraining",
    "all_in_one",
    "enhancement",
]
TASKS: tuple[str, ...] = (
    "dehazing",
    "deraining",
    "brightening",
    "motion_deblurring",
    "defocus_deblurring",
    "super_resolution",
    "denoising",
    "jpeg_artifact_removal",
)

#: Every task a tool may declare: the eight restoration tasks plus the generic ones.
ALL_TASKS: tuple[str, ...] = (*TASKS, "all_in_one", "enhancement")

ToolKind = Literal["classical", "learned", "pretrained"]
#: Toolbox presets of an env (``tir_env.tools.presets``); kept here so the CLI stays light.
ToolboxPreset = Literal["classical", "learned", "full", "agenticir"]


@dataclass(frozen=True)
class Param:
    """One tool parameter: its range, default and meaning.

    Attributes:
        low: Smallest accepted value (inclusive).
        high: Largest accepted value (inclusive).
        default: Value used when a call omits the parameter.
        doc: One line saying what the parameter does.
        integer: Whether the value is rounded to an integer before use.
    """

    low: float
    high: float
    default: float
    doc: str = ""
    integer: bool = False

    def __post_init__(self) -> None:
        if not (self.low <= self.default <= self.high):
            raise ValueError(f"default {self.default} outside [{self.low}, {self.high}]")

    def denormalise(self, u: float) -> float:
        """Map ``u`` in [0, 1] to this parameter's range (rounded if integer)."""
        value = self.low + float(np.clip(u, 0.0, 1.0)) * (self.high - self.low)
        return float(round(value)) if self.integer else value

    def normalise(self, value: float) -> float:
        """Map a value in range to [0, 1] (0 when the range is a single point)."""
        span = self.high - self.low
        return 0.0 if span == 0 else (value - self.low) / span


#: A tool's parameters: name -> :class:`Param`, in a fixed order.
ParamSpec = Mapping[str, Param]


@dataclass(frozen=True, eq=False)
class ToolCall:
    """A request to run one tool with concrete parameters.

    Hashable and order-independent in ``params``, so it can key caches.

    Example:
        >>> ToolCall("gamma", {"gamma": 1.5}) == ToolCall("gamma", {"gamma": 1.5})
        True
        >>> str(ToolCall("gamma", {"gamma": 1.5}))
        'gamma(gamma=1.5)'
    """

    tool: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {str(k): float(v) for k, v in sorted(self.params.items())}
        object.__setattr__(self, "params", MappingProxyType(clean))

    def __reduce__(self) -> tuple[type[ToolCall], tuple[str, dict[str, float]]]:
        # MappingProxyType cannot be pickled; rebuild from a plain dict (pickle, deepcopy, Ray).
        return (ToolCall, (self.tool, dict(self.params)))

    def _key(self) -> tuple[str, tuple[tuple[str, float], ...]]:
        return self.tool, tuple(self.params.items())

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ToolCall) and self._key() == other._key()

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"{self.tool}({args})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"tool": ..., "params": {...}}``."""
        return {"tool": self.tool, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["tool"]), dict(data.get("params", {})))


@dataclass(frozen=True)
class StepRecord:
    """What happened at one env step; the history is a list of these.

    Attributes:
        call: The tool call made (``None`` for STOP).
        metrics_before: Every metric of the image before the call.
        metrics_after: Every metric after the call (equal to before if the call failed).
        reward: The reward paid for this step.
        seconds: Wall time of the tool execution.
        error: Error message when the tool failed, else ``None``.
        cached: Whether the pool served the result from its cache.
    """

    call: ToolCall | None
    metrics_before: Mapping[str, float]
    metrics_after: Mapping[str, float]
    reward: float
    seconds: float = field(default=0.0, compare=False)  # a measurement, not state
    error: str | None = None
    cached: bool = field(default=False, compare=False)  # depends on the pool, not the episode

    @property
    def ok(self) -> bool:
        """True when the tool ran without error (or the step was a STOP)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (non-finite numbers become ``None``)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["call"] = self.call.to_dict() if self.call else None
        for key in ("metrics_before", "metrics_after"):
            data[key] = {k: _finite_or_none(v) for k, v in dict(getattr(self, key)).items()}
        data["reward"] = _finite_or_none(self.reward)
        return data


@dataclass(frozen=True)
class Timing:
    """How one step was executed: wall times and whether the pool's cache served it.

    These describe the machine and the shared pool, not the episode: they take no part in
    equality, so two episodes with the same seed and actions compare equal (Gymnasium's
    determinism check).

    Attributes:
        tool_s: Seconds spent in the tool (0 for cache hits and STOP).
        metrics_s: Seconds spent computing metrics.
        cached: Whether the tool result came from the pool's cache.
    """

    tool_s: float = field(default=0.0, compare=False)
    metrics_s: float = field(default=0.0, compare=False)
    cached: bool = field(default=False, compare=False)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
