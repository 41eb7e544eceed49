"""The Metric contract and the metric registry.

A metric scores a float32 Nx3xHxW batch in [0, 1] and returns one float per image
(a float64 tensor of shape [N]). Full-reference metrics also take a reference batch of
the same shape. ``info`` says whether it needs a reference, whether lower is better, its
nominal range, its backend and whether it needs weight files.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from tir_env.errors import ImageError
from tir_env.images import check_batch
from tir_env.registry import Registry


@dataclass(frozen=True)
class MetricInfo:
    """Metadata a metric declares next to itself.

    Attributes:
        name: Registry name (pyiqa's name where it wraps pyiqa).
        needs_reference: Full-reference (True) or no-reference (False).
        lower_better: Whether smaller scores mean better images.
        range: Nominal (low, high) of the score, for normalisation.
        backend: Which library computes it.
        needs_weights: Whether weight files must be present on disk.
        cost: Relative cost per 128x128 image (1 = PSNR).
        description: One line for docs and ``tir``.
    """

    name: str
    needs_reference: bool
    lower_better: bool
    range: tuple[float, float]
    backend: Literal["pyiqa", "piq", "tir"] = "pyiqa"
    needs_weights: bool = False
    cost: float = 1.0
    description: str = ""


class Metric(ABC):
    """Base class of every image-quality metric."""

    info: MetricInfo

    def __call__(self, batch: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Score each image of ``batch``; returns float64 [N].

        Raises:
            ImageError: bad shapes, or a missing/mismatched reference for a FR metric.
        """
        check_batch(batch)
        if self.info.needs_reference:
            if reference is None:
                raise ImageError(f"metric {self.info.name!r} needs a reference image")
            check_batch(reference, "reference")
            if reference.shape != batch.shape:
                raise ImageError(
                    f"metric {self.info.name!r}: reference shape {tuple(reference.shape)} "
                    f"!= image shape {tuple(batch.shape)}"
                )
        with torch.no_grad():
            scores = self.compute(batch, reference)
        return scores.detach().reshape(batch.shape[0]).to(torch.float64).cpu()

    @abstractmethod
    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """Score a validated batch (any shape that reshapes to [N])."""


MetricFactory = Callable[[], Metric]
METRICS: Registry[MetricFactory] = Registry("metric", entry_point_group="tir.metrics")


def register_metric(name: str, factory: MetricFactory) -> None:
    """Register a metric factory under ``name``."""
    METRICS.add(name, factory)


@functools.cache
def make_metric(name: str) -> Metric:
    """Build (once per process) the metric called ``name``.

    Raises:
        UnknownNameError: no such metric.
        MetricUnavailableError: its weights or dependency are missing here.
    """
    _ensure_builtin()
    return METRICS.get(name)()


def metric_names() -> list[str]:
    """All registered metric names (available or not)."""
    _ensure_builtin()
    return METRICS.names()


def _ensure_builtin() -> None:
    import tir_env.metrics.builtin  # noqa: F401
