"""Perception: which of the eight AgenticIR degradations an image carries.

AgenticIR perceives the degradations first (with DepictQA) and explores only the matching
tools. Here a small multi-label classifier trained in-repo does it
(:class:`~tir_env.tools.learned.nets.PerceptionNet`, weights
``tir_env/assets/learned/perception.safetensors``, trained by ``tir train-tools --only
perception``; per-type accuracy on the test photos in ``docs/perception.md``).

The classifier sees the image as the env gives it, quantised to 8 bits and resized
(bicubic, antialiased) to 128x128 whatever its size, the env's patch size. A
low-resolution input (32x32 for a 128 patch) is therefore upsampled 4x before it is
classified, which is how its softness is recognised. Photos much larger than 128 pixels
lose fine noise and JPEG blocks in the downsizing; crop them rather than resize.

Example:
    >>> import numpy as np, tir_env
    >>> probs = tir_env.perceive(np.zeros((64, 64, 3), np.uint8))  # doctest: +SKIP
    >>> sorted(probs)  # doctest: +SKIP
    ['dark', 'defocus_blur', 'haze', 'jpeg', 'low_resolution', 'motion_blur', 'noise', 'rain']
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping

import torch

from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.images import check_batch, resize, u8_to_batch
from tir_env.types import ImageU8

#: File stem of the classifier's weights and record.
WEIGHTS_NAME = "perception"
#: Side of the square image the classifier sees.
INPUT_SIZE = 128
#: Probability at or above which a degradation counts as present.
THRESHOLD = 0.5

_lock = threading.Lock()


@functools.cache
def _model() -> torch.nn.Module:
    from tir_env.tools.learned.nets import PerceptionNet
    from tir_env.tools.learned.weights import load_into, weights_path

    return load_into(PerceptionNet(len(AGENTICIR_TYPES)), weights_path(WEIGHTS_NAME))


def reload() -> None:
    """Forget the loaded classifier, so the next call reads the weights file again."""
    _model.cache_clear()


def available() -> bool:
    """Whether the classifier's weights file exists (``perceive`` can run)."""
    from tir_env.tools.learned.weights import weights_path

    return weights_path(WEIGHTS_NAME).is_file()


def prepare(batch: torch.Tensor) -> torch.Tensor:
    """The classifier's input: 8-bit quantised, resized to 128x128 (float32 Nx3x128x128)."""
    check_batch(batch)
    quantised = torch.round(batch * 255.0) / 255.0
    return resize(quantised, (INPUT_SIZE, INPUT_SIZE))


def perceive_batch(prepared: torch.Tensor) -> torch.Tensor:
    """Probabilities (Nx8, in :data:`~tir_env.degradations.protocols.AGENTICIR_TYPES` order).

    Args:
        prepared: Output of :func:`prepare`.

    Raises:
        WeightsNotFoundError: the classifier's weights are missing.
        CheckpointError: they cannot be read.
    """
    with _lock:
        model = _model()
    with torch.no_grad():
        return torch.sigmoid(model(prepared.to(torch.float32)))


def perceive(image: ImageU8) -> dict[str, float]:
    """Probability of each AgenticIR degradation type in a uint8 RGB HWC image.

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
        WeightsNotFoundError: the classifier's weights are missing.
    """
    probs = perceive_batch(prepare(u8_to_batch(image)))[0]
    return {name: float(p) for name, p in zip(AGENTICIR_TYPES, probs, strict=True)}


def perceived(probs: Mapping[str, float], threshold: float = THRESHOLD) -> list[str]:
    """Degradations at or above ``threshold``; the most likely one if none is.

    Returned in the physical order they would have been applied
    (:data:`~tir_env.degradations.base.PROTOCOL_ORDER`).
    """
    from tir_env.degradations.base import protocol_sorted

    chosen = [name for name, p in probs.items() if p >= threshold]
    if not chosen and probs:
        chosen = [max(probs, key=lambda name: probs[name])]
    return protocol_sorted(chosen)


def perceived_tasks(image: ImageU8, threshold: float = THRESHOLD) -> list[str]:
    """Tasks of the degradations perceived in ``image`` (see :func:`perceived`)."""
    from tir_env.degradations import make_degradation

    return [make_degradation(n).info.task for n in perceived(perceive(image), threshold)]


__all__ = [
    "INPUT_SIZE",
    "THRESHOLD",
    "available",
    "perceive",
    "perceive_batch",
    "perceived",
    "perceived_tasks",
    "prepare",
    "reload",
]
