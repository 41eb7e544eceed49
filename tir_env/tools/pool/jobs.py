"""The batching engine's bookkeeping: a pending call, a worker thread, a batch group key."""

from __future__ import annotations

import math
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


class CostEstimates:
    """Each tool's running seconds per image, so a free worker starts the longest job first.

    A vector env steps in lockstep: a step ends with its slowest call. Run first, a long
    call (Richardson-Lucy, 50-100 ms at 64 px) overlaps the short ones on the other workers;
    run last, it leaves the other cores idle (longest processing time first, Graham 1969).

    Args:
        smoothing: Weight of the newest measurement in the moving average.
    """

    def __init__(self, smoothing: float = 0.3) -> None:
        self.smoothing = smoothing
        self._per_image: dict[str, float] = {}

    def update(self, tool: str, seconds: float, images: int) -> None:
        """Fold in one invocation of ``tool`` that took ``seconds`` on ``images`` images."""
        value = seconds / max(1, images)
        old = self._per_image.get(tool)
        self._per_image[tool] = value if old is None else old + self.smoothing * (value - old)

    def job_seconds(self, tool: str, images: int) -> float:
        """Expected seconds of a job (``inf`` for a tool not measured yet: it runs first)."""
        return self._per_image.get(tool, math.inf) * images

    def priority(self, tool: str, images: int, waited_s: float) -> float:
        """Which ready job a free worker takes: the highest expected seconds plus time waited.

        Calls submitted together (a vector env's step) have waited alike, so the longest
        job goes first; the waiting time bounds how long a short job can be passed over
        by long ones that keep arriving (concurrent callers).
        """
        return self.job_seconds(tool, images) + max(0.0, waited_s)
