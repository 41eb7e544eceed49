"""Reading user checkpoints safely and building them with spandrel.

Weights are read only with ``safetensors`` or ``torch.load(weights_only=True)``: no pickled
code ever runs (spandrel's own loader is not used for reading files). A missing file raises
:class:`~tir_env.errors.WeightsNotFoundError`; a corrupt one, or one spandrel does not
recognise, raises :class:`~tir_env.errors.CheckpointError`; both name the file. The tools
built from these checkpoints live in :mod:`tir_env.tools.pretrained`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tir_env.errors import CheckpointError, WeightsNotFoundError

logger = logging.getLogger(__name__)

#: File suffixes read with safetensors.
SAFETENSORS_SUFFIXES = (".safetensors",)
#: File suffixes read with ``torch.load(weights_only=True)``.
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")

# ------------------------------------------------------------------------------ loading


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint's tensors safely and unwrap them (spandrel's canonical form).

    Raises:
        WeightsNotFoundError: no such file.
        CheckpointError: unsupported suffix, unreadable, or holds no tensors.
    """
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in SAFETENSORS_SUFFIXES:
            from safetensors.torch import load_file

            state: Any = load_file(str(path), device="cpu")
        elif suffix in TORCH_SUFFIXES:
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            known = ", ".join(SAFETENSORS_SUFFIXES + TORCH_SUFFIXES)
            raise CheckpointError(f"checkpoint {path}: unsupported file type {suffix!r} ({known})")
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure means a bad file
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(err).__name__}: {err}"
        ) from err
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict")
    from spandrel import canonicalize_state_dict

    state = canonicalize_state_dict(dict(state))
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"checkpoint {path} holds no tensors")
    return tensors


_install_lock = threading.Lock()
_installed = False


def _registry() -> Any:
    """The spandrel architecture registry, with the extra architectures installed once."""
    global _installed
    import spandrel

    with _install_lock:
        if not _installed:
            try:
                import spandrel_extra_arches

                spandrel_extra_arches.install(ignore_duplicates=True)
            except ImportError:  # pragma: no cover - a declared dependency
                logger.warning(
                    "spandrel-extra-arches is not installed: Restormer, MPRNet unavailable"
                )
            _installed = True
    return spandrel.MAIN_REGISTRY


def load_descriptor(path: Path) -> Any:
    """A spandrel ``ImageModelDescriptor`` (eval mode, CPU) for the checkpoint at ``path``.

    Raises:
        WeightsNotFoundError: no such file.
        CheckpointError: unreadable, or not an image-to-image architecture spandrel knows.
    """
    from spandrel import ImageModelDescriptor, UnsupportedModelError

    state = read_state_dict(path)
    try:
        descriptor = _registry().load(state)
    except UnsupportedModelError as err:
        raise CheckpointError(
            f"checkpoint {path}: spandrel does not recognise its architecture "
            f"({len(state)} tensors, e.g. {sorted(state)[:3]})"
        ) from err
    except Exception as err:  # noqa: BLE001 - a detected arch that fails to build
        raise CheckpointError(f"checkpoint {path}: cannot build the model: {err}") from err
    if not isinstance(descriptor, ImageModelDescriptor):
        raise CheckpointError(
            f"checkpoint {path}: {type(descriptor).__name__} is not image-to-image"
        )
    if (
        descriptor.input_channels not in (1, 3)
        or descriptor.output_channels != descriptor.input_channels
    ):
        raise CheckpointError(
            f"checkpoint {path}: needs {descriptor.input_channels} -> "
            f"{descriptor.output_channels} channels; only RGB or grey models are supported"
        )
    for p in descriptor.model.parameters():
        p.requires_grad_(False)
    return descriptor.eval()


def verify_checkpoint(path: Path) -> None:
    """Check that ``path`` is a checkpoint TIR can read safely, without building the model.

    Safetensors files are opened (header only); torch files are read with
    ``torch.load(weights_only=True)`` (memory-mapped when the format allows), so a pickle that
    needs code to load fails here rather than on the first tool call.

    Raises:
        WeightsNotFoundError: no such file.
        CheckpointError: unknown suffix, unreadable, or no tensors.
    """
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SAFETENSORS_SUFFIXES + TORCH_SUFFIXES:
        known = ", ".join(SAFETENSORS_SUFFIXES + TORCH_SUFFIXES)
        raise CheckpointError(f"checkpoint {path}: unsupported file type {suffix!r} ({known})")
    try:
        if suffix in SAFETENSORS_SUFFIXES:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                count = len(list(f.keys()))
        else:
            count = _count_tensors(_torch_load_safely(path))
    except Exception as err:  # noqa: BLE001 - any reader failure means a bad or unsafe file
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely (safetensors, or torch.load with "
            f"weights_only=True; pickled code is never run): {type(err).__name__}: {err}"
        ) from err
    if count == 0:
        raise CheckpointError(f"checkpoint {path} holds no tensors")


def _torch_load_safely(path: Path) -> Any:
    try:  # memory-mapped: checking a large checkpoint does not read it all
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def _count_tensors(state: Any) -> int:
    """Tensors in a (possibly nested, e.g. ``{"params": {...}}``) state dict."""
    if isinstance(state, torch.Tensor):
        return 1
    if isinstance(state, Mapping):
        return sum(_count_tensors(v) for v in state.values())
    return 0
