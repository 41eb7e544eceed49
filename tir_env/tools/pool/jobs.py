"""The batching engine's bookkeeping: a pending call, a worker thread, a batch group key."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from tir_env.errors import ImageError
from tir_env.tools.pool.results import ToolResult
from tir_env.types import ToolCall


@dataclass(eq=False)
class Entry:
    """One pending call: its image, resolved call, cache key and future."""

    image: torch.Tensor
    call: ToolCall
    key: tuple[str, ToolCall] | None
    future: Future[ToolResult]
    ready_at: float
    followers: list[Future[ToolResult]] = field(default_factory=list)
    done: bool = False


@dataclass(eq=False)
class Worker:
    """A worker thread of one lane and what it is running."""

    lane: str
    thread: threading.Thread | None = None
    entries: list[Entry] = field(default_factory=list)
    started: float | None = None  # monotonic start of the running tool invocation
    abandoned: bool = False
    exited: bool = False


class ToolCosts:
    """Each tool's mean seconds per image so far, to run the longest batches first."""

    def __init__(self) -> None:
        self._mean: dict[str, float] = {}

    def record(self, tool: str, seconds: float, images: int) -> None:
        """Fold one invocation in; recent runs weigh most (parameters change the cost)."""
        old, new = self._mean.get(tool), seconds / max(1, images)
        self._mean[tool] = new if old is None else (old + new) / 2

    def priority(self, queue: Sequence[Entry], n: int, now: float) -> float:
        """Expected seconds of a batch of ``n`` calls of ``queue``, plus the oldest's wait.

        0 expected seconds before a tool's first run; the wait is added so a cheap call is
        never starved by a stream of expensive ones.
        """
        return self._mean.get(queue[0].call.tool, 0.0) * n + (now - queue[0].ready_at)


#: Calls batch together when they share the resolved call (or only the tool, where the
#: backend groups by tool), the image size and the device.
GroupKey = tuple[ToolCall | str, tuple[int, ...], str]


def sizes(images: Sequence[torch.Tensor]) -> list[int]:
    """Images per tensor (the split sizes of a concatenated batch)."""
    return [int(im.shape[0]) for im in images]


def check_image(image: object) -> None:
    """Cheap structural check at submit time (values are checked by the tool itself)."""
    if not isinstance(image, torch.Tensor) or image.dtype != torch.float32:
        raise ImageError(f"image must be a float32 torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3 or image.shape[0] < 1:
        raise ImageError(f"image must be Nx3xHxW (N >= 1), got shape {tuple(image.shape)}")
