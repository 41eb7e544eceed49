"""Super-resolution (x4) tools: bicubic, Lanczos plus unsharp masking, back-projection."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tir_env.dsp import gaussian_blur_planes, per_sample, upsample_x4_planes
from tir_env.images import resize
from tir_env.tools.base import Tool, ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    unsharp,
)
from tir_env.types import ImageF32, Param


def _phases(upscale_rows: Callable[[np.ndarray], np.ndarray], taps: int) -> torch.Tensor:
    """The 4 x ``taps`` polyphase weights of a x4 resampler, read off its impulse responses.

    ``upscale_rows`` maps a float32 (n, n) array to (n, 4n), upscaling each row; row ``j``
    of ``upscale_rows(eye)`` is then the response to an impulse at ``j``, and an interior
    output pixel ``4 i + p`` weighs input ``i + k - taps // 2`` by ``response[i + k - taps
    // 2, 4 i + p]``. Reading the weights off the reference itself (rather than recomputing
    its formula) makes the batched version match it to float rounding.
    """
    n, centre, half = 4 * taps, 2 * taps, taps // 2
    response = upscale_rows(np.eye(n, dtype=np.float32))
    cols = [4 * centre + p for p in range(4)]
    return torch.from_numpy(response[centre - half : centre + half + 1][:, cols].T.copy())


def _torch_bicubic_rows(eye: np.ndarray) -> np.ndarray:
    """Bicubic x4 along the rows only (the H axis is resampled at scale 1, the identity)."""
    n = eye.shape[0]
    x = torch.from_numpy(eye)[None, None]
    return F.interpolate(x, size=(n, 4 * n), mode="bicubic", align_corners=False)[0, 0].numpy()


def _cv2_lanczos_rows(eye: np.ndarray) -> np.ndarray:
    """OpenCV ``INTER_LANCZOS4`` x4 along the rows only."""
    n = eye.shape[0]
    return cv2.resize(eye, (4 * n, n), interpolation=cv2.INTER_LANCZOS4)


@functools.cache
def bicubic_phases() -> torch.Tensor:
    """Polyphase taps (4 x 5) of PyTorch's bicubic x4 (Keys' cubic, a = -0.75)."""
    return _phases(_torch_bicubic_rows, 5)


@functools.cache
def lanczos_phases() -> torch.Tensor:
    """Polyphase taps (4 x 9) of OpenCV's Lanczos-4 x4 (8 taps, normalised to sum 1)."""
    return _phases(_cv2_lanczos_rows, 9)


def _upscale(batch: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """Bicubic x4 (Keys' cubic, a = -0.75, as in PyTorch and OpenCV); ``clamp`` to [0, 1].

    A separable polyphase convolution with the taps of PyTorch's ``interpolate(mode=
    "bicubic")`` (:func:`bicubic_phases`): 5 taps per output pixel and axis instead of 16
    per pixel, 1.5-3x faster on CPU.
    """
    out = upsample_x4_planes(batch, bicubic_phases())
    return out.clamp_(0.0, 1.0) if clamp else out


@register_tool
class BicubicX4(Tool):
    """x4 bicubic interpolation: the baseline every super-resolution tool must beat."""

    info = ToolInfo(
        name="bicubic_x4",
        task="super_resolution",
        cost_hint=0.5,
        scale=4,
        description="x4 bicubic upscaling (baseline; adds no detail).",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Upscale by 4 with bicubic interpolation."""
        return _upscale(batch)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image reference of :meth:`apply` (kept for the parity test): ``interpolate``."""
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        h, w = image.shape[:2]
        out = F.interpolate(x, size=(4 * h, 4 * w), mode="bicubic", align_corners=False)
        return out[0].permute(1, 2, 0).clamp(0.0, 1.0).numpy()


@register_tool
class LanczosSharpenX4(PerImageTool):
    """x4 Lanczos-4 interpolation followed by unsharp masking."""

    cpu_reference = True  # its OpenCV reference is faster than the port on a CPU
    spread_reference = True  # OpenCV calls that release the GIL: images on many cores
    batch_params = frozenset({"amount", "sigma"})
    info = ToolInfo(
        name="lanczos_x4_sharpen",
        task="super_resolution",
        params=spec(
            amount=Param(0.0, 2.0, 0.6, "unsharp-mask gain (0 = plain Lanczos)"),
            sigma=Param(0.5, 4.0, 1.5, "Gaussian sigma of the unsharp mask, in output pixels"),
        ),
        cost_hint=0.5,
        scale=4,
        description="x4 Lanczos upscaling plus unsharp masking (crisper than bicubic).",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Lanczos-4 x4 (OpenCV's taps, :func:`lanczos_phases`), clip, unsharp mask (batched).

        ``amount`` and ``sigma`` may also be per-image ``(N,)`` tensors.
        """
        up = upsample_x4_planes(batch, lanczos_phases()).clamp_(0.0, 1.0)
        blurred = gaussian_blur_planes(up, params["sigma"])
        return up + per_sample(params["amount"], up) * (up - blurred)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image reference of :meth:`apply` (kept for the parity test).

        Lanczos-4 x4 (OpenCV ``INTER_LANCZOS4``), then ``x + a (x - G_sigma * x)``.
        """
        h, w = image.shape[:2]
        up = cv2.resize(image, (4 * w, 4 * h), interpolation=cv2.INTER_LANCZOS4)
        return unsharp(np.clip(up, 0, 1), params["sigma"], params["amount"])


@register_tool
class BackProjectionX4(PerImageTool):
    """x4 iterative back-projection (Irani and Peleg, CVGIP 1991)."""

    # Its OpenCV reference (:meth:`restore`) runs each iteration's x4 up- and down-sampling
    # 2x faster on a CPU than the port's torch resampling, for one image or 16; its work is
    # ten resampling passes an image, so a batched port only saves per-call checks there.
    cpu_reference = True
    spread_reference = True  # OpenCV calls that release the GIL: images on many cores
    # not iterations: a batch would run every image for the largest count
    batch_params = frozenset({"step"})
    info = ToolInfo(
        name="back_projection_x4",
        preferred=True,  # the fixed and oracle agents' tool for its task
        task="super_resolution",
        params=spec(
            iterations=Param(1, 40, 10, "back-projection iterations", integer=True),
            step=Param(0.2, 2.0, 1.0, "step size of each correction"),
        ),
        cost_hint=6.0,
        scale=4,
        description="x4 bicubic + iterative back-projection: the output downscales to the input.",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """``x <- x + step * up(y - down(x))``, started from bicubic ``up(y)``.

        ``down`` is the antialiased bicubic x1/4 of :func:`tir_env.images.resize` (the
        model of the ``low_resolution`` degradation); ``up`` is bicubic x4. ``step`` may also
        be a per-image ``(N,)`` tensor.
        """
        h, w = batch.shape[-2:]
        x = _upscale(batch)
        step = params["step"]
        if isinstance(step, torch.Tensor):  # per image: (N,) -> (N, 1, 1, 1)
            step = per_sample(step, batch)
        for _ in range(int(params["iterations"])):
            residual = batch - resize(x, (h, w))
            # (x + step * up(r)).clamp(0, 1), in place in the fresh up(r): the same roundings
            # (IEEE products and sums commute) without three 4x-size temporaries an iteration
            x = _upscale(residual, clamp=False).mul_(step).add_(x).clamp_(0.0, 1.0)
        return x

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:meth:`apply` of one image with OpenCV (the same arithmetic to float rounding).

        ``up`` is ``cv2.resize(INTER_CUBIC)``, whose taps and borders are PyTorch's bicubic
        (a = -0.75, clamped edges); ``down`` is :func:`down_x4`.
        """
        x = np.clip(_cv2_upscale(image), 0.0, 1.0)
        for _ in range(int(params["iterations"])):
            residual = image - down_x4(x)
            x = cv2.scaleAdd(_cv2_upscale(residual), float(params["step"]), x)
            np.clip(x, 0.0, 1.0, out=x)
        return x


def _cv2_upscale(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC)


#: First input pixel each x1/4 output reads, relative to 4 x its index (see :func:`down_taps`).
_DOWN_OFFSET = 6


@functools.cache
def down_taps() -> np.ndarray:
    """The 16 taps of PyTorch's antialiased bicubic x1/4 away from the borders, float32.

    Read from ``F.interpolate`` itself (a one-hot row resized), so they are its own numbers:
    output ``o`` is ``sum_k taps[k] x[4 o - 6 + k]`` wherever that window fits the input.
    """
    eye = torch.eye(64, dtype=torch.float64).reshape(64, 1, 1, 64)
    rows = F.interpolate(eye, size=(1, 16), mode="bicubic", align_corners=False, antialias=True)
    column = rows.reshape(64, 16)[:, 8]  # output 8 reads inputs 26..41, far from both ends
    start = 4 * 8 - _DOWN_OFFSET
    return column[start : start + 16].numpy().astype(np.float32)


@functools.lru_cache(maxsize=64)
def _down_gain(n: int) -> np.ndarray:
    """``1 / (sum of the taps inside [0, 4 n))`` for each of ``n`` outputs.

    PyTorch renormalises the window where it runs off the image; zero borders followed by this
    gain reproduce that.
    """
    taps = down_taps().astype(np.float64)
    gain = np.empty(n, dtype=np.float64)
    for o in range(n):
        first = 4 * o - _DOWN_OFFSET
        lo, hi = max(0, -first), min(16, 4 * n - first)
        gain[o] = 1.0 / taps[lo:hi].sum()
    return gain.astype(np.float32)


def down_x4(image: np.ndarray) -> np.ndarray:
    """:func:`tir_env.images.resize` to a quarter of an HxWx3 float32 image's sides, OpenCV.

    Each axis in turn: the 16-tap filter with zero borders, every fourth sample, then the
    border gain (:func:`_down_gain`); clamped to [0, 1] as ``resize`` is. Equal to it to float
    rounding (tested), about 1.5x faster on a CPU.
    """
    h, w = image.shape[:2]
    taps = down_taps()
    zero = cv2.BORDER_CONSTANT
    rows = cv2.filter2D(image, -1, taps.reshape(1, 16), anchor=(_DOWN_OFFSET, 0), borderType=zero)
    rows = rows[:, ::4] * _down_gain(w // 4)[None, :, None]
    cols = cv2.filter2D(rows, -1, taps.reshape(16, 1), anchor=(0, _DOWN_OFFSET), borderType=zero)
    return np.clip(cols[::4] * _down_gain(h // 4)[:, None, None], 0.0, 1.0)
