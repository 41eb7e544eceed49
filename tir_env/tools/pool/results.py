"""What a pool call answers (:class:`ToolResult`), the counters a pool keeps, its errors."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass

import torch

from tir_env.errors import ToolExecutionError
from tir_env.types import ToolCall


class ToolTimeoutError(ToolExecutionError):
    """A tool invocation ran longer than the pool's ``timeout_s``."""


class PoolClosedError(ToolExecutionError):
    """A call reached a pool after :meth:`ToolPool.close` (or the pool closed before it ran)."""


@dataclass(frozen=True)
class ToolResult:
    """Outcome of one tool call.

    Attributes:
        image: float32 1x3xHxW result on the CPU, or ``None`` when the call failed.
        error: ``"ErrorType: message"`` when the call failed, else ``None``.
        seconds: Wall time spent executing; a batched call's time is shared equally among
            its images (0 for cache hits).
        cached: Whether the result came from the pool's cache (or a coalesced identical call).
    """

    image: torch.Tensor | None
    error: str | None = None
    seconds: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        """True when the tool produced an image."""
        return self.error is None and self.image is not None


@dataclass
class PoolStats:
    """Counters a pool keeps.

    Attributes:
        calls: Calls submitted (including invalid ones and cache hits).
        executions: Images actually processed by tools (a failed batch retried one by one
            counts twice: it is work done).
        batches: Tool invocations (one per batch).
        cache_hits: Calls answered from the cache or by coalescing with an identical call.
        failures: Calls answered with an error.
        tool_seconds: Wall time spent inside tools.
    """

    calls: int = 0
    executions: int = 0
    batches: int = 0
    cache_hits: int = 0
    failures: int = 0
    tool_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Plain dict copy, for logs and benchmark records."""
        return dict(vars(self))


def done(result: ToolResult) -> Future[ToolResult]:
    """An already-completed future holding ``result``."""
    future: Future[ToolResult] = Future()
    future.set_result(result)
    return future


def describe_error(err: BaseException) -> str:
    """``"ErrorType: message"``, the form of :attr:`ToolResult.error`."""
    return f"{type(err).__name__}: {err}"


def is_crash(err: BaseException) -> bool:
    """A ``BaseException`` that is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``)."""
    return not isinstance(err, Exception)


def describe_crash(call: ToolCall, err: BaseException) -> str:
    """A tool raised a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``): a failure."""
    return (
        f"ToolExecutionError: tool {call.tool!r} raised {type(err).__name__}({err}); the call "
        "failed (tools must not exit or interrupt the process)"
    )


def in_main_thread() -> bool:
    """Whether the caller runs in the main thread (where Ctrl-C must still stop the program)."""
    return threading.current_thread() is threading.main_thread()
