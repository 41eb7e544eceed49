"""Shared value types: tool parameters, tool calls, step records, aliases and protocols.

These are plain, hashable, serialisable values: they cross the env, the pool, the agents
and the benchmark records unchanged. The aliases (:data:`Obs`, :data:`Action`,
:data:`AgentState`) and :class:`AgentContext` (what an agent may ask its env) live here
once, for every layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # type names only: importing torch or the config here would be circular/slow
    import torch

    from tir_env.config import EnvConfig

#: uint8 RGB image, HWC, values in [0, 255] (the observation contract).
ImageU8 = npt.NDArray[np.uint8]
#: float32 RGB image, HWC, values in [0, 1] (numpy-side working format).
ImageF32 = npt.NDArray[np.float32]
#: An observation of ``TIR-v0``: ``{"image", "input", "history"}`` arrays.
Obs = dict[str, np.ndarray]
#: A native action of ``TIR-v0``: ``{"tool": index (0 = STOP), "params": [0, 1] array}``.
Action = dict[str, Any]
#: Recurrent state of a policy (SB3's ``PolicyPredictor``); ``None`` for stateless agents.
AgentState = tuple[np.ndarray, ...] | None

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


@dataclass(frozen=True)
class Region:
    """A rectangle of the clean reference, in its pixels: what a crop of the input shows.

    Agents that search on a crop of a large image score it against the same part of the
    reference (``AgentContext.score(image, names, region)``) without seeing the reference.
    """

    top: int
    left: int
    height: int
    width: int

    def of(self, image: torch.Tensor) -> torch.Tensor:
        """This region of an NCHW tensor (a view)."""
        return image[..., self.top : self.top + self.height, self.left : self.left + self.width]


class AgentContext(Protocol):
    """What an agent may ask of the env it acts in (``TIREnv`` satisfies it).

    Agents get it at ``reset(env, info)``; the reset ``info`` carries the episode's true
    ``info["degradations"]`` (only the oracle reads them) and ``info["metrics"]``. Planners that
    search ahead run candidate calls with :meth:`lookahead` and rank them with :meth:`score`,
    never by stepping.
    """

    #: Tool names of the action space (index ``i`` is action ``i + 1``; 0 is STOP).
    tools: tuple[str, ...]
    #: The env's configuration (``max_steps``, ``obs_size``, ...).
    config: EnvConfig

    @property
    def history(self) -> list[StepRecord]:
        """Records of this episode's steps, oldest first."""
        ...

    @property
    def has_reference(self) -> bool:
        """Whether this episode has a clean reference image."""
        ...

    def current_batch(self) -> torch.Tensor:
        """The working image, float32 1x3xHxW in [0, 1] (do not modify)."""
        ...

    def current_image(self) -> ImageU8:
        """The working image, uint8 HxWx3."""
        ...

    def input_image(self) -> ImageU8:
        """The degraded input, uint8 HxWx3."""
        ...

    def target_size(self) -> tuple[int, int] | None:
        """(H, W) the restored image should have, when there is a reference."""
        ...

    def perception_input(self) -> tuple[ImageU8, tuple[int, int] | None]:
        """What to perceive and at which size: the input, or the photo it was cut from."""
        ...

    def lookahead(
        self, image: torch.Tensor, calls: Sequence[ToolCall]
    ) -> list[torch.Tensor | None]:
        """Run ``calls`` on ``image`` through the pool without stepping (``None``: failed)."""
        ...

    def score(
        self, image: torch.Tensor, names: Sequence[str], region: Region | None = None
    ) -> dict[str, float]:
        """Metrics ``names`` of a working image, scored the way the env scores its own.

        ``region``: the image shows only this part of the scene (full-reference metrics
        compare it with that part of the reference).
        """
        ...
