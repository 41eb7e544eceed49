"""The generic pyiqa adapter: any pyiqa metric behind TIR's :class:`Metric` contract.

pyiqa is imported inside the adapter (``import pyiqa`` costs 3-5 s), never at module import.
Creation runs in :func:`~tir_env.metrics.weights.offline_hub`, so it never downloads.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from tir_env.device import resolve_device
from tir_env.errors import ImageError, MetricUnavailableError
from tir_env.metrics.base import Metric, MetricInfo
from tir_env.metrics.weights import REQUIRED_WEIGHTS, check_weights, offline_hub

Device = Literal["auto", "cpu", "cuda"] | str


@dataclass(frozen=True)
class MetricSpec:
    """A registry entry: the metric's metadata and how to build it.

    Calling the spec builds a fresh metric; the registry's ``make_metric`` caches one per name.

    Attributes:
        info: The metric's :class:`MetricInfo` (readable without building it).
        cls: The :class:`Metric` subclass to instantiate as ``cls(spec, device, weights_dir)``.
        min_size: Smallest image side (pixels) the metric can score; smaller raises ImageError.
        pyiqa_name: pyiqa's name for it (pyiqa-backed metrics).
        options: Extra keyword arguments for ``pyiqa.create_metric``.
    """

    info: MetricInfo
    cls: Callable[..., Metric]
    min_size: int = 1
    pyiqa_name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(
        self, *, device: Device | torch.device = "auto", weights_dir: str | Path | None = None
    ) -> Metric:
        """Build a new instance (no caching)."""
        return self.cls(self, device=device, weights_dir=weights_dir)


class SizedMetric(Metric):
    """A metric with a minimum image size, checked before computing."""

    spec: MetricSpec

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        self.info = spec.info
        self.min_size = spec.min_size

    def require(self, reference: torch.Tensor | None) -> torch.Tensor:
        """The reference of a full-reference metric (``Metric.__call__`` already checked it)."""
        if reference is None:
            raise ImageError(f"metric {self.info.name!r} needs a reference image")
        return reference

    def check_size(self, batch: torch.Tensor) -> None:
        """Raise ImageError when ``batch`` is smaller than :attr:`min_size` on a side."""
        h, w = batch.shape[-2:]
        if min(h, w) < self.min_size:
            raise ImageError(
                f"metric {self.info.name!r} needs images of at least "
                f"{self.min_size}x{self.min_size} pixels, got {h}x{w}"
            )


class PyiqaMetric(SizedMetric):
    """A pyiqa metric (``pyiqa.create_metric(name, as_loss=False)``) as a TIR :class:`Metric`.

    Args:
        spec: The registry entry (pyiqa name, options, minimum size).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...; inputs are moved to it, scores come back
            on the CPU as float64 [N].
        weights_dir: Weights folder (see :mod:`tir_env.metrics.weights`); only read by
            metrics that need weight files.

    Raises:
        WeightsNotFoundError: a weight file is missing (checked before pyiqa is touched).
        MetricUnavailableError: pyiqa (or a dependency of this metric) cannot be imported.
    """

    def __init__(
        self,
        spec: MetricSpec,
        device: Device | torch.device = "auto",
        weights_dir: str | Path | None = None,
    ) -> None:
        super().__init__(spec)
        name = spec.info.name
        root = check_weights(name, weights_dir) if name in REQUIRED_WEIGHTS else None
        self.device = resolve_device(device)
        pyiqa = import_pyiqa()
        pyiqa_name = spec.pyiqa_name or name
        try:
            with offline_hub(name, root), _creation_patches(pyiqa_name):
                self.model = pyiqa.create_metric(
                    pyiqa_name, as_loss=False, device=self.device, **dict(spec.options)
                )
        except MetricUnavailableError:  # WeightsNotFoundError included: already explicit
            raise
        except (ImportError, OSError, RuntimeError) as err:
            raise MetricUnavailableError(f"cannot build metric {name!r}: {err}") from err
        self.model.eval()

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """Score with pyiqa; the input stays float32 in [0, 1] as pyiqa expects."""
        self.check_size(batch)
        batch = batch.to(self.device)
        if self.info.needs_reference:
            return self.model(batch, self.require(reference).to(self.device))
        return self.model(batch)


def import_pyiqa() -> types.ModuleType:
    """Import pyiqa (lazily, once).

    Raises:
        MetricUnavailableError: pyiqa is not installed.
    """
    try:
        return importlib.import_module("pyiqa")
    except ImportError as err:
        raise MetricUnavailableError(
            f"pyiqa is needed for this metric but cannot be imported ({err}); "
            "pip install pyiqa, or use the weight-free 'psnr', 'ssim', 'ms_ssim' (pure torch)"
        ) from err


@contextlib.contextmanager
def _creation_patches(pyiqa_name: str) -> Iterator[None]:
    """Work around two pyiqa creation paths that would reach the network or fail to import."""
    with contextlib.ExitStack() as stack:
        if pyiqa_name.startswith("maniqa"):
            stack.enter_context(_timm_without_pretrained())
        if pyiqa_name.startswith("clipiqa"):
            _import_clip_with_shim()
        yield


@contextlib.contextmanager
def _timm_without_pretrained() -> Iterator[None]:
    """Make ``timm.create_model`` ignore ``pretrained=True`` for the duration.

    MANIQA asks timm for an ImageNet ViT (a Hugging Face download) and then overwrites every
    weight from its own checkpoint (``strict=True``), so the ViT is built unpretrained.
    """
    import timm

    create = timm.create_model

    def unpretrained(*args: Any, **kwargs: Any) -> Any:
        return create(*args, **{**kwargs, "pretrained": False})

    timm.create_model = unpretrained
    try:
        yield
    finally:
        timm.create_model = create


def _import_clip_with_shim() -> None:
    """Import ``openai-clip`` where setuptools >= 81 removed ``pkg_resources``.

    openai-clip 1.0.1 only does ``from pkg_resources import packaging`` to compare torch
    versions. A stand-in module exposing ``packaging`` is placed in ``sys.modules`` for that
    one import and removed right after, so nothing else sees a fake ``pkg_resources``.
    """
    if "clip" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        return
    import packaging.version

    shim = types.ModuleType("pkg_resources")
    shim.packaging = packaging  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim
    try:
        importlib.import_module("clip")
    except ImportError as err:
        raise MetricUnavailableError(f"openai-clip cannot be imported: {err}") from err
    finally:
        if sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]
