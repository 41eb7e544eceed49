"""The Metric contract and the metric registry.

A metric scores a float32 Nx3xHxW batch in [0, 1] and returns one float per image
(a float64 tensor of shape [N]). Full-reference metrics also take a reference batch of
the same shape. ``info`` says whether it needs a reference, whether lower is better, its
nominal range, its backend and whether it needs weight files.

Register a metric with :func:`register_metric` (keyed on ``info.name``): a :class:`Metric`
subclass, or a :class:`~tir_env.metrics.pyiqa_backend.MetricSpec` (how the built-ins are
declared, in :mod:`tir_env.metrics.builtin`). The built-ins are found on the first lookup by
importing every module of this package; third-party packages add metrics through the
entry-point group ``tir.metrics`` (``docs/extending.md``).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch

from tir_env.errors import ImageError, MetricError, TIRError
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
        step_scale: Typical size of one useful tool call's improvement of the score, in its
            units: the static reward's fixed scale and the adaptive reward's initial one.
        fit: For a metric whose model was fit in this repo (NIQE): returns what it was fit
            on (an image source, such as ``corpus:train@3``). Its scores' scale depends on
            that, so records stamp it as ``<name>_fit`` and the leaderboard says it.
    """

    name: str
    needs_reference: bool
    lower_better: bool
    range: tuple[float, float]
    backend: Literal["pyiqa", "piq", "tir"] = "pyiqa"
    needs_weights: bool = False
    cost: float = 1.0
    description: str = ""
    step_scale: float = 1.0
    fit: Callable[[], str] | None = None


class Metric(ABC):
    """Base class of every image-quality metric."""

    info: MetricInfo

    def __call__(self, batch: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Score each image of ``batch``; returns float64 [N].

        Raises:
            ImageError: bad shapes, or a missing/mismatched reference for a FR metric.
            MetricError: ``compute`` returned something other than one score per image; or,
                for a metric that is not a built-in, it raised or returned NaN or Inf (the
                built-ins handle their edge cases themselves: PSNR of identical images is
                capped at 80 dB, NIQE of an undefined image is its worst score).
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
        builtin = self._builtin
        with torch.no_grad():
            scores = self.compute(batch, reference) if builtin else self._guarded(batch, reference)
        return checked_scores(self.info.name, scores, batch.shape[0], finite=not builtin)

    @functools.cached_property
    def _builtin(self) -> bool:
        """Whether TIR's built-in modules registered this name (read once: scored every step).

        The registration decides, not the class: a user's ``MetricSpec`` of a built-in class
        (the fast PSNR, the pyiqa adapter) is not a built-in, and its scores are guarded.
        """
        return METRICS.is_builtin(self.info.name)

    def _guarded(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """``compute``, with an exception other than TIR's own named after the metric."""
        try:
            return self.compute(batch, reference)
        except TIRError:
            raise
        except Exception as err:
            raise MetricError(
                f"metric {self.info.name!r} raised {type(err).__name__}: {err}"
            ) from err

    @abstractmethod
    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """Score a validated batch (any shape that reshapes to [N])."""


def checked_scores(name: str, scores: object, n: int, *, finite: bool = True) -> torch.Tensor:
    """Metric ``name``'s scores of ``n`` images as float64 [N] on the CPU, checked.

    Args:
        name: The metric, for the error message.
        scores: What its ``compute`` returned: a tensor of ``n`` values (any shape).
        n: The batch size.
        finite: Also refuse NaN and Inf.

    Raises:
        MetricError: not a tensor of ``n`` values, or (``finite``) a value is NaN or Inf.
    """
    contract = f"a metric must return one finite score per image (a tensor of {n} values)"
    if not isinstance(scores, torch.Tensor):
        raise MetricError(f"metric {name!r} returned {type(scores).__name__}; {contract}")
    if scores.numel() != n:
        raise MetricError(
            f"metric {name!r} returned shape {tuple(scores.shape)} for a batch of {n} "
            f"image(s); {contract}"
        )
    out = scores.detach().reshape(n).to(torch.float64).cpu()
    if finite and not bool(torch.isfinite(out).all()):
        bad = (~torch.isfinite(out)).nonzero().flatten().tolist()
        raise MetricError(
            f"metric {name!r} returned {out[bad[0]].item()} for image {bad[0]} of a batch of "
            f"{n} ({len(bad)} non-finite); {contract}"
        )
    return out


MetricFactory = Callable[[], Metric]
METRICS: Registry[MetricFactory] = Registry(
    "metric", entry_point_group="tir.metrics", builtins=("tir_env.metrics",)
)

_M = TypeVar("_M")


def register_metric(metric: _M) -> _M:
    """Register a metric under ``metric.info.name``; return it (usable as a class decorator).

    Args:
        metric: A :class:`Metric` subclass (built with no arguments) or a ``MetricSpec``.
    """
    return METRICS.register(metric)


@functools.cache
def make_metric(name: str) -> Metric:
    """Build (once per process) the metric called ``name``.

    Raises:
        UnknownNameError: no such metric.
        MetricUnavailableError: its weights or dependency are missing here.
    """
    return METRICS.get(name)()


def metric_names() -> list[str]:
    """All registered metric names (available or not)."""
    return METRICS.names()
