"""Image-quality metrics: one registry, pyiqa as the reference backend, fast torch versions.

Every metric scores a float32 Nx3xHxW batch in [0, 1] and returns float64 scores of shape [N];
full-reference metrics also take the reference batch. ``MetricInfo`` says whether a reference
is needed, the direction, the nominal range and whether weight files are needed.

Example:
    >>> from tir_env.metrics import make_metric, metric_info
    >>> metric_info("psnr").lower_better
    False

See ``docs/metrics.md`` for the table of metrics, weight files and the NIQE fit.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tir_env.metrics.base import (
    METRICS,
    Metric,
    MetricInfo,
    make_metric,
    metric_names,
    register_metric,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "METRICS",
    "Metric",
    "MetricInfo",
    "available_metrics",
    "build_metric",
    "make_metric",
    "metric_info",
    "metric_names",
    "metric_on",
    "register_metric",
    "score_all",
    "unavailable_reason",
]


def build_metric(
    name: str, *, device: str = "auto", weights_dir: str | Path | None = None
) -> Metric:
    """Build a new, uncached instance of metric ``name`` (``make_metric`` caches one).

    Args:
        name: Registry name.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        weights_dir: Weights folder; default ``$TIR_WEIGHTS_DIR``, else ``$TORCH_HOME``.

    Raises:
        UnknownNameError: no such metric.
        WeightsNotFoundError: a weight file is missing (the message names it and its path).
        MetricUnavailableError: a dependency is missing.
    """
    from tir_env.metrics.pyiqa_backend import MetricSpec

    factory = METRICS.get(name)
    if isinstance(factory, MetricSpec):
        return factory(device=device, weights_dir=weights_dir)
    return factory()


@functools.cache
def metric_on(name: str, device: str) -> Metric:
    """Metric ``name`` placed on ``device`` (``EnvConfig.device``), built once per device.

    When ``device`` is where the shared instance already runs (``make_metric`` builds on
    ``"auto"``), that instance is returned, so nothing is loaded twice. Weight-free fast
    metrics (PSNR, SSIM) compute wherever their inputs live.

    Raises:
        ValueError: ``"cuda"`` without a CUDA device.
    """
    from tir_env.device import resolve_device

    if resolve_device(device) == resolve_device("auto"):
        return make_metric(name)
    return build_metric(name, device=device)


def _forget_instances(_name: str) -> None:
    """Drop cached metric instances: a metric was replaced (a re-run notebook cell)."""
    make_metric.cache_clear()
    metric_on.cache_clear()


METRICS.on_replace(_forget_instances)


def metric_info(name: str) -> MetricInfo:
    """Metadata of metric ``name``, without building it (for built-in metrics)."""
    factory = METRICS.get(name)
    info = getattr(factory, "info", None)
    return info if isinstance(info, MetricInfo) else factory().info


def unavailable_reason(name: str, weights_dir: str | Path | None = None) -> str | None:
    """Why metric ``name`` cannot be built here (``None``: it can), checked without building.

    Looks for the Python packages of its backend, its weight files and shipped parameters.
    """
    from tir_env.metrics.pyiqa_backend import MetricSpec
    from tir_env.metrics.weights import missing_weights, resolve_weights_dir

    factory = METRICS.get(name)
    if not isinstance(factory, MetricSpec):
        return None
    if factory.info.backend == "pyiqa" and importlib.util.find_spec("pyiqa") is None:
        return "pyiqa is not installed"
    missing = missing_weights(name, weights_dir)
    if missing:
        root = resolve_weights_dir(weights_dir)
        return "missing " + ", ".join(str(root / f.relpath) for f in missing)
    path = factory.options.get("pretrained_model_path")
    if path is not None and not Path(path).is_file():
        return f"missing {path}"
    return None


def available_metrics(weights_dir: str | Path | None = None) -> list[str]:
    """Registered metrics that can be built here (dependencies and files present)."""
    return [n for n in metric_names() if unavailable_reason(n, weights_dir) is None]


def score_all(
    names: Iterable[str],
    batch: torch.Tensor,
    reference: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Score ``batch`` with every metric of ``names`` (cached instances); name -> float64 [N].

    Raises:
        ImageError: a full-reference metric is named and ``reference`` is None.
    """
    return {name: make_metric(name)(batch, reference) for name in names}
