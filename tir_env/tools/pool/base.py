"""The pool interface (:class:`ToolPool`), one call run in this thread, and the sync pool."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future

import torch

from tir_env.errors import ToolExecutionError
from tir_env.tools.base import make_tool
from tir_env.tools.pool.results import (
    PoolClosedError,
    PoolStats,
    ToolResult,
    describe_crash,
    describe_error,
    done,
    in_main_thread,
)
from tir_env.types import ToolCall


class ToolPool(ABC):
    """Interface shared by every pool implementation."""

    def __init__(self) -> None:
        self.stats = PoolStats()
        self._stats_lock = threading.Lock()

    @abstractmethod
    def submit(self, image: torch.Tensor, call: ToolCall) -> Future[ToolResult]:
        """Queue ``call`` on a 1x3xHxW float32 image; the future never raises."""

    def run(self, image: torch.Tensor, call: ToolCall) -> ToolResult:
        """Submit one call and wait for it."""
        return self.submit(image, call).result()

    def submit_many(
        self, images: Sequence[torch.Tensor], calls: Sequence[ToolCall]
    ) -> list[Future[ToolResult]]:
        """Queue several calls at once (a batching pool groups them without waiting)."""
        if len(images) != len(calls):
            raise ValueError(f"{len(images)} images but {len(calls)} calls")
        return [self.submit(im, c) for im, c in zip(images, calls, strict=True)]

    def map(self, images: Sequence[torch.Tensor], calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Submit every call first (so a batching pool can group them), then wait for all."""
        return [f.result() for f in self.submit_many(images, calls)]

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for stateless pools
        """Release workers and models; idempotent."""

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call would fail)."""
        return False

    def require_open(self) -> ToolPool:
        """This pool, refused when closed.

        Raises:
            PoolClosedError: it was closed (every call would fail).
        """
        if self.closed:
            raise PoolClosedError(
                f"the tool pool given to this env ({self!r}) is closed; pass an open pool, or "
                "none to use the process default (a closed default is replaced)"
            )
        return self

    def __enter__(self) -> ToolPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, **increments: float) -> None:
        with self._stats_lock:
            for key, value in increments.items():
                setattr(self.stats, key, getattr(self.stats, key) + value)


def execute(image: torch.Tensor, call: ToolCall, device: torch.device | None = None) -> ToolResult:
    """Run one call in this thread, turning every failure into an error result.

    The tool gets a private copy of ``image``. Every exception the tool raises becomes an
    error result, ``SystemExit`` included; only a ``KeyboardInterrupt`` in the main thread
    propagates (the user's Ctrl-C must still stop the program).
    """
    start = time.perf_counter()
    try:
        tool = make_tool(call.tool)
        batch = image.detach().clone() if device is None else image.to(device, copy=True)
        out = check_result(call, batch, tool(batch, call.params)).to("cpu")
    except Exception as err:  # noqa: BLE001 - a tool must never crash its caller
        return ToolResult(None, describe_error(err), time.perf_counter() - start)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt) and in_main_thread():
            raise
        return ToolResult(None, describe_crash(call, err), time.perf_counter() - start)
    return ToolResult(out, None, time.perf_counter() - start)


def check_result(call: ToolCall, batch: torch.Tensor, out: object) -> torch.Tensor:
    """The pool's own check of a tool output: a finite float32 tensor with the batch's size.

    :func:`~tir_env.tools.base.check_output` checks the full contract inside ``Tool.__call__``;
    this cheap check also covers tools that override ``__call__``.

    Raises:
        ToolExecutionError: not a tensor, not float32, a different number of images, or
            NaN/Inf values.
    """
    if not isinstance(out, torch.Tensor):
        raise ToolExecutionError(f"tool {call.tool!r} returned {type(out).__name__}, not a tensor")
    if out.dtype != torch.float32:
        raise ToolExecutionError(
            f"tool {call.tool!r} returned dtype {out.dtype}, expected torch.float32 (the tool "
            "contract; convert inside the tool)"
        )
    if out.ndim != 4 or out.shape[0] != batch.shape[0]:
        raise ToolExecutionError(
            f"tool {call.tool!r} returned shape {tuple(out.shape)} for a batch of "
            f"{batch.shape[0]} image(s)"
        )
    # min and max propagate NaN and hold any Inf: one pass, no boolean mask
    if out.numel() and not bool(torch.isfinite(torch.stack(torch.aminmax(out))).all()):
        raise ToolExecutionError(f"tool {call.tool!r} returned NaN or Inf")
    return out


class SyncToolPool(ToolPool):
    """Runs every call immediately in the caller's thread (no batching, no cache)."""

    def submit(self, image: torch.Tensor, call: ToolCall) -> Future[ToolResult]:
        """Execute now and return an already-completed future."""
        result = execute(image, call)
        self._count(
            calls=1,
            executions=1,
            batches=1,
            failures=0 if result.ok else 1,
            tool_seconds=result.seconds,
        )
        return done(result)
