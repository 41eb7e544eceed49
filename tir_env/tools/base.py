"""The Tool contract and the tool registry.

A tool is a deterministic, stateless image operator on float32 NCHW batches in [0, 1]:

* ``info`` declares its name, task, parameters (:data:`~tir_env.types.ParamSpec`), kind,
  relative cost and scale (1, or 4 for super-resolution, whose output is 4x larger);
* ``apply(batch, params)`` does the work on already validated parameters;
* ``__call__(batch, params)`` validates input, parameters and output, so every tool returns
  the shape (times ``scale``), dtype and range it was given, and never NaN or Inf;
* ``call_many(batch, [params per image])`` does the same with one parameter set per image
  in one invocation (the pool's batches of one tool's calls); the parameters a tool's
  ``apply`` takes as per-image ``(N,)`` tensors are its ``batch_params``.

Register a tool class with :func:`register_tool` (keyed on ``info.name``); build (cached)
instances with :func:`make_tool`. The built-in tools are every tool registered in a module under
:mod:`tir_env.tools.classical` or :mod:`tir_env.tools.learned`, plus the user's checkpoints
(:mod:`tir_env.tools.pretrained`), found on the first lookup (:class:`~tir_env.registry.Registry`).
Third-party packages add tools through the entry-point group ``tir.tools``
(``name = "package.module:ToolClass"``); see ``docs/extending.md``.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import torch

from tir_env.errors import InvalidParameterError, ToolExecutionError, did_you_mean
from tir_env.images import check_batch
from tir_env.registry import Registry
from tir_env.types import Param, ParamSpec, ToolCall, ToolKind


@dataclass(frozen=True)
class ToolInfo:
    """Metadata a tool declares next to itself.

    Attributes:
        name: Registry name, lower snake case.
        task: The restoration task it addresses (one of :data:`~tir_env.types.TASKS`).
        params: Its parameters, in order.
        kind: ``classical`` (weight-free), ``learned`` (shipped weights) or ``pretrained``.
        cost_hint: Relative cost per 128x128 image (1 = a cheap OpenCV filter).
        scale: Output size over input size (4 for super-resolution tools, else 1).
        description: One line for ``tir tools`` and the VLM tool schema.
        preferred: The tool the fixed and oracle agents use for its ``task`` (the strongest
            default-parameter tool of the task in docs/tools.md); at most one per task.
        exploit: A deliberately hackable tool (reward-hacking experiments): registered, but
            never in a toolbox preset, so importing it cannot change ``TIR-v0``'s default
            action space; an env that wants it names it in ``tools``.
    """

    name: str
    task: str
    params: ParamSpec = field(default_factory=dict)
    kind: ToolKind = "classical"
    cost_hint: float = 1.0
    scale: int = 1
    description: str = ""
    preferred: bool = False
    exploit: bool = False


class Tool(ABC):
    """Base class of every restoration tool (see the module docstring)."""

    info: ToolInfo
    #: Most images one invocation takes on a CPU (``None``: the whole batch). On a CPU batching
    #: only amortises per-call costs, so a tool whose batch working set outgrows the caches (x4
    #: outputs, iterated) runs its batch in chunks of this many images.
    cpu_batch: ClassVar[int | None] = None
    #: The step of :meth:`apply` that runs image by image in OpenCV on a CPU, where OpenCV
    #: beats the torch op (``None``: none); the rest of the batch runs batched. Descriptive
    #: only (``benchmarks.tool_speed``'s table shows it).
    cpu_per_image: ClassVar[str | None] = None
    #: Parameters :meth:`apply` also takes as per-image ``(N,)`` tensors, each image's result
    #: then equal to a call with its own value (:meth:`call_many`). Images that differ in any
    #: other parameter run in separate :meth:`apply` calls. Iteration counts are left out
    #: where a batch would run every image for the largest count.
    batch_params: ClassVar[frozenset[str]] = frozenset()

    @property
    def name(self) -> str:
        """Registry name of the tool."""
        return self.info.name

    def to(self, device: torch.device | str) -> Tool:
        """Move weights to ``device`` (no-op for weight-free tools); return self."""
        return self

    def cache_variant(self) -> str:
        """What decides this tool's output besides the image and the call (``""``: nothing).

        The tool pool keys its cache by it, so a result made one way is never handed back for
        a call that would run another (a learned tool's mirrored copies, ``tir restore --fast``).
        """
        return ""

    def resolve(self, params: Mapping[str, float] | None) -> dict[str, float]:
        """Validate ``params`` against the spec and fill in defaults.

        Raises:
            InvalidParameterError: an unknown name, a non-finite value or one out of range.
        """
        return resolve_params(self.info.name, self.info.params, params or {})

    def __call__(
        self, batch: torch.Tensor, params: Mapping[str, float] | None = None
    ) -> torch.Tensor:
        """Run the tool on a float32 Nx3xHxW batch in [0, 1] and check the result.

        Raises:
            ImageError: the input batch is invalid.
            InvalidParameterError: a parameter is unknown or out of range.
            ToolExecutionError: the tool returned a wrong shape or non-finite values.
        """
        check_batch(batch)
        resolved = self.resolve(params)
        with torch.no_grad():
            out = self._run_chunks(batch, resolved)
        return check_output(self.info, batch, out)

    def call_many(
        self, batch: torch.Tensor, params: Sequence[Mapping[str, float] | None]
    ) -> torch.Tensor:
        """:meth:`__call__` with one parameter set per image, as one invocation.

        Each image's result equals ``self(image, its params)`` up to float rounding: the
        images are grouped by the parameters outside :attr:`batch_params`, and each group runs
        as one batch with per-image ``(N,)`` tensors for those inside.

        Raises:
            ImageError: the input batch is invalid.
            InvalidParameterError: a parameter is unknown or out of range.
            ToolExecutionError: the tool returned a wrong shape or non-finite values.
            ValueError: not one parameter set per image.
        """
        check_batch(batch)
        if len(params) != batch.shape[0]:
            raise ValueError(f"{len(params)} parameter sets for {batch.shape[0]} images")
        resolved = [self.resolve(p) for p in params]
        with torch.no_grad():
            out = self._run_groups(batch, resolved)
        return check_output(self.info, batch, out)

    def _run_groups(self, batch: torch.Tensor, params: list[dict[str, float]]) -> torch.Tensor:
        """:meth:`call_many`'s work: one :meth:`_run_chunks` per group of fixed parameters."""
        groups: dict[tuple[tuple[str, float], ...], list[int]] = {}
        for i, p in enumerate(params):
            fixed = tuple((k, v) for k, v in p.items() if k not in self.batch_params)
            groups.setdefault(fixed, []).append(i)
        if len(groups) == 1:
            return self._run_chunks(batch, stack_params(params))
        parts = [
            (index, self._run_chunks(batch[index], stack_params([params[i] for i in index])))
            for index in groups.values()
        ]
        out = parts[0][1].new_empty((batch.shape[0], *parts[0][1].shape[1:]))
        for index, part in parts:
            out[index] = part
        return out

    def _run_chunks(
        self, batch: torch.Tensor, params: Mapping[str, float | torch.Tensor]
    ) -> torch.Tensor:
        """:meth:`run` on the whole batch, or on chunks of :attr:`cpu_batch` images on a CPU.

        Per-image ``(N,)`` parameters are sliced with the chunks.
        """
        step = self.cpu_batch
        if step is None or batch.device.type != "cpu":
            step = batch.shape[0]
        return in_chunks(
            batch.shape[0],
            step,
            lambda i, j: self.run(batch[i:j], _rows(params, i, j)),  # type: ignore[arg-type]
        )

    def run(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """The implementation :meth:`__call__` uses for this batch: :meth:`apply` by default."""
        return self.apply(batch, params)

    @abstractmethod
    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Do the work on a valid batch with resolved parameters."""


def stack_params(params: Sequence[dict[str, float]]) -> dict[str, float | torch.Tensor]:
    """One parameter dict for a batch of images, each with its own ``params``.

    A float where every image agrees, else an ``(N,)`` float64 tensor of the images' values
    (the per-image form :meth:`Tool.apply` takes).
    """
    out: dict[str, float | torch.Tensor] = {}
    for key, value in params[0].items():
        column = [p[key] for p in params]
        same = all(v == value for v in column)
        out[key] = value if same else torch.tensor(column, dtype=torch.float64)
    return out


def in_chunks(n: int, step: int, part: Callable[[int, int], torch.Tensor]) -> torch.Tensor:
    """``part(i, j)`` over ``[0, n)`` in chunks of ``step`` rows, as one tensor.

    One chunk (``step >= n``) is ``part(0, n)`` itself. Otherwise each chunk is copied into
    the result while still in cache: one cat of the whole batch at the end re-reads every
    chunk from memory (16 x4 outputs of 64 px are 12 MB).
    """
    if step >= n:
        return part(0, n)
    out: torch.Tensor | None = None
    for i in range(0, n, step):
        chunk = part(i, min(i + step, n))
        if out is None:
            out = chunk.new_empty((n, *chunk.shape[1:]))
        out[i : i + step] = chunk
    assert out is not None  # n >= 1: a batch holds at least one image (check_batch)
    return out


def _rows(
    params: Mapping[str, float | torch.Tensor], start: int, stop: int
) -> dict[str, float | torch.Tensor]:
    """Images ``start:stop`` of per-image ``(N,)`` parameters; scalars as they are."""
    return {k: v[start:stop] if isinstance(v, torch.Tensor) else v for k, v in params.items()}


def resolve_params(tool: str, spec: ParamSpec, params: Mapping[str, float]) -> dict[str, float]:
    """Check ``params`` against ``spec``; return a full, ordered dict with defaults filled in.

    Raises:
        InvalidParameterError: unknown name (with did-you-mean), non-finite or out-of-range value.
    """
    for name in params:
        if name not in spec:
            raise InvalidParameterError(
                f"tool {tool!r} has no parameter {name!r}.{did_you_mean(name, spec)} "
                f"Parameters: {', '.join(spec) or '(none)'}."
            )
    resolved: dict[str, float] = {}
    for name, p in spec.items():
        value = float(params.get(name, p.default))
        if not math.isfinite(value) or not (p.low <= value <= p.high):
            raise InvalidParameterError(
                f"tool {tool!r}: parameter {name!r}={value!r} is outside [{p.low}, {p.high}]"
            )
        resolved[name] = float(round(value)) if p.integer else value
    return resolved


def check_output(info: ToolInfo, batch: torch.Tensor, out: object) -> torch.Tensor:
    """Enforce the output contract: float32, N x 3 x (H*scale) x (W*scale), finite, [0, 1]."""
    n, c, h, w = batch.shape
    expected = (n, c, h * info.scale, w * info.scale)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ToolExecutionError(f"tool {info.name!r} returned {shape}, expected {expected}")
    if out.dtype != torch.float32:  # silently converting would hide a tool bug (and its cost)
        raise ToolExecutionError(
            f"tool {info.name!r} returned dtype {out.dtype}, expected torch.float32"
        )
    # min and max propagate NaN and hold any Inf: two reductions, no full boolean mask (the
    # mask cost a 4x upsampler more than its own batched work)
    lowest, highest = torch.aminmax(out)
    if not bool(torch.isfinite(lowest) & torch.isfinite(highest)):
        raise ToolExecutionError(f"tool {info.name!r} returned NaN or Inf")
    if lowest >= 0.0 and highest <= 1.0 and out.is_contiguous() and not _shares_memory(out, batch):
        return out  # already in range: a clamp would copy it (16 MB for a batch of x4 outputs)
    # A copy otherwise: clamped, and never a view of the input or of a larger (padded) buffer.
    return out.clamp(0.0, 1.0).contiguous()


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` use the same storage (an output must never alias its input)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


ToolFactory = Callable[[], Tool]
TOOLS: Registry[ToolFactory] = Registry(
    "tool",
    entry_point_group="tir.tools",
    # Walked on the first lookup; classical/__init__ imports its modules in the order that
    # fixes the action-space indices of the built-in tools, a new module joins after them.
    builtins=("tir_env.tools.classical", "tir_env.tools.learned", "tir_env.tools.pretrained"),
)

_T = TypeVar("_T", bound=type[Tool])


def register_tool(cls: _T) -> _T:
    """Class decorator: register a :class:`Tool` subclass under ``cls.info.name``."""
    return TOOLS.register(cls)


@functools.cache
def make_tool(name: str) -> Tool:
    """Build (once per process) the tool called ``name``.

    Raises:
        UnknownNameError: no such tool (with a did-you-mean hint).
    """
    return TOOLS.get(name)()


# A tool replaced by its own definition (a re-run notebook cell) must not keep its old instance.
TOOLS.on_replace(lambda _name: make_tool.cache_clear())


def tool_info(name: str) -> ToolInfo:
    """Metadata of a registered tool, without building heavy weights when avoidable."""
    factory = TOOLS.get(name)
    info = getattr(factory, "info", None)
    return info if isinstance(info, ToolInfo) else make_tool(name).info


def tool_names(task: str | None = None, kinds: tuple[str, ...] | None = None) -> list[str]:
    """Names of registered tools, optionally only those for ``task`` / of ``kinds``."""
    names = TOOLS.names()
    return [
        n
        for n in names
        if (task is None or tool_info(n).task == task)
        and (kinds is None or tool_info(n).kind in kinds)
    ]


def validate_call(call: ToolCall) -> ToolCall:
    """Check a :class:`ToolCall` against the registry; return it with defaults filled in."""
    info = tool_info(call.tool)
    return ToolCall(call.tool, resolve_params(call.tool, info.params, call.params))


def spec(**params: Param) -> dict[str, Param]:
    """Build an ordered :data:`ParamSpec` from keyword arguments."""
    return dict(params)
