"""Helpers shared by the classical tools: per-image plumbing, colour, noise estimation.

The names are public inside the package (the task modules import them) but the module is
private: the toolbox's public helpers are re-exported by :mod:`tir_env.tools.classical`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping

import cv2
import numpy as np
import torch

from tir_env.images import batch_to_hwc, hwc_to_batch
from tir_env.tools.base import Tool
from tir_env.types import ImageF32

#: ITU-R BT.601 luma weights (JPEG's YCbCr), RGB order.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def per_image(batch: torch.Tensor, fn: Callable[[ImageF32], np.ndarray]) -> torch.Tensor:
    """Apply ``fn`` (HWC float32 -> HWC) to every image of ``batch``; clip and re-batch."""
    out = hwc_to_batch([np.asarray(fn(image), dtype=np.float32) for image in batch_to_hwc(batch)])
    return out.to(batch.device)


def fit_odd(size: int, *dims: int) -> int:
    """Largest odd window size <= ``size`` that fits every dimension in ``dims`` (>= 1)."""
    size = min(size, *dims)
    return max(1, size if size % 2 else size - 1)


def to_u8(image: np.ndarray) -> np.ndarray:
    """Map float [0, 1] to uint8 [0, 255], rounding to nearest."""
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def luma(image: ImageF32) -> np.ndarray:
    """BT.601 luma Y of an RGB HWC image."""
    return np.ascontiguousarray(image @ LUMA)


def rgb_to_ycc(image: ImageF32) -> np.ndarray:
    """RGB -> JPEG's full-range YCbCr (all in [0, 1], chroma centred on 0.5)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]]


def ycc_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycc`."""
    return cv2.cvtColor(np.ascontiguousarray(ycc[..., [0, 2, 1]], np.float32), cv2.COLOR_YCrCb2RGB)


def channel_max(image: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the 3 channels (HSV value V); faster than ``max(axis=2)``."""
    return np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2])


def channel_min(image: np.ndarray) -> np.ndarray:
    """Per-pixel minimum over the 3 channels."""
    return np.minimum(np.minimum(image[..., 0], image[..., 1]), image[..., 2])


def estimate_noise_sigma(image: ImageF32) -> float:
    """Gaussian noise level per channel, in [0, 1] units (Donoho's wavelet MAD estimator).

    ``sigma = median(|HH|) / 0.6745`` over the finest diagonal Haar detail of each channel,
    averaged over channels, as ``skimage.restoration.estimate_sigma(average_sigmas=True)``.
    Images under 2 pixels a side give 0.
    """
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    if h < 2 or w < 2:
        return 0.0
    x = image[:h, :w].astype(np.float64)
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
    return float(np.mean(np.median(np.abs(hh), axis=(0, 1))) / 0.6745)


def scale_value(image: ImageF32, new_v: np.ndarray) -> np.ndarray:
    """Set the HSV value V = max(R, G, B) to ``new_v`` keeping hue and saturation.

    Keeping H and S fixed scales R, G, B by ``new_v / V``; black pixels (V = 0, so S = 0)
    become grey ``new_v``, as OpenCV's HSV -> RGB would make them.
    """
    v = channel_max(image)
    ratio = new_v / np.maximum(v, 1e-6)
    out = image * ratio[..., None]
    return np.where((v > 1e-6)[..., None], out, new_v[..., None])


def unsharp(image: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp masking ``x + amount * (x - G_sigma * x)``."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return image + amount * (image - blurred)


def centre_crop(image: ImageF32, size: int) -> ImageF32:
    """Centre crop of at most ``size`` x ``size`` pixels (bounds the cost of estimation)."""
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top : top + size, left : left + size]


class PerImageTool(Tool):
    """A tool that runs a numpy HWC function on each image of the batch."""

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Run :meth:`restore` on each image."""
        return per_image(batch, lambda image: self.restore(image, params))

    @abstractmethod
    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Restore one float32 HWC image in [0, 1] (the result is clipped afterwards)."""


# ------------------------------------------------- batched torch versions (float32 NCHW)


def channel_max_torch(batch: torch.Tensor) -> torch.Tensor:
    """HSV value V = max(R, G, B) of every pixel, N x 1 x H x W."""
    return batch.amax(dim=1, keepdim=True)


def luma_torch(batch: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of every pixel, N x 1 x H x W."""
    weights = torch.from_numpy(LUMA).to(batch).reshape(1, 3, 1, 1)
    return (batch * weights).sum(dim=1, keepdim=True)


def scale_value_torch(batch: torch.Tensor, new_v: torch.Tensor) -> torch.Tensor:
    """:func:`scale_value` of a batch (``new_v`` N x 1 x H x W)."""
    v = channel_max_torch(batch)
    out = batch * (new_v / v.clamp_min(1e-6))
    return torch.where(v > 1e-6, out, new_v)


def estimate_noise_sigma_torch(batch: torch.Tensor) -> torch.Tensor:
    """:func:`estimate_noise_sigma` of every image, shape (N,), float64."""
    h, w = (batch.shape[-2] // 2) * 2, (batch.shape[-1] // 2) * 2
    if h < 2 or w < 2:
        return torch.zeros(batch.shape[0], dtype=torch.float64, device=batch.device)
    x = batch[..., :h, :w].to(torch.float64)
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    # quantile(0.5) interpolates between the middle values as numpy's median does
    med = torch.quantile(hh.abs().flatten(2), 0.5, dim=-1)
    return med.mean(dim=1) / 0.6745
