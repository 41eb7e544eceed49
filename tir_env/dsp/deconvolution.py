"""Batched Richardson-Lucy deconvolution (float NCHW), part of :mod:`tir_env.dsp`.

On a CPU each image runs :func:`~tir_env.dsp.numpy_ops.richardson_lucy` (OpenCV's
``filter2D``); on any other device the batch runs as torch correlations, by shifted
slices or by FFT (:class:`_Correlator`), with the numpy version's padding and update.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from tir_env.dsp.numpy_ops import otf, richardson_lucy
from tir_env.dsp.torch_ops import pad_reflect101_torch


def _kernel_otfs(kernels: list[np.ndarray], shape: tuple[int, int]) -> torch.Tensor:
    """:func:`otf` of each kernel on ``shape``, stacked: K x 1 x H x (W//2+1), complex128."""
    return torch.stack([torch.from_numpy(otf(k, shape)) for k in kernels])[:, None]


def _support_half(kernels: list[np.ndarray]) -> int:
    """Half side of the smallest centred square holding every kernel's non-zero taps."""
    half = 0
    for kernel in kernels:
        rows, cols = np.nonzero(kernel)
        centre_r, centre_c = kernel.shape[0] // 2, kernel.shape[1] // 2
        if rows.size:
            half = max(half, int(np.abs(rows - centre_r).max()), int(np.abs(cols - centre_c).max()))
    return half


def _centre_crop(kernel: np.ndarray, half: int) -> np.ndarray:
    """The centred ``2 half + 1`` square of an odd-sized kernel (holding all its taps)."""
    r, c = kernel.shape[0] // 2, kernel.shape[1] // 2
    return kernel[r - half : r + half + 1, c - half : c + half + 1]


class _Correlator:
    """Correlation of N x C x H x W images with one kernel each, ``BORDER_REFLECT_101``.

    OpenCV's ``filter2D`` on every image and its transpose (correlation with the flipped
    kernel). Two exact methods: ``direct`` adds shifted slices, one per non-zero tap (for a
    sparse kernel, such as a motion trail, shared by the batch);
    ``fft`` multiplies transfer functions on a mirrored, zero-filled grid, where the
    circular product equals the linear correlation because the kernel never reaches past
    the mirrored margin (any kernels, one per image).
    """

    def __init__(
        self, kernels: list[np.ndarray], size: tuple[int, int], method: str, device: torch.device
    ) -> None:
        from scipy.fft import next_fast_len

        # Only the non-zero taps matter: the kernels are cut to the square that holds them
        # (a defocus disk of radius 1.5 sits on a 17x17 grid), so the mirrored margin and
        # the FFT grid are those of the support, not of the grid: same result, less work.
        self.half = _support_half(kernels)
        kernels = [_centre_crop(k, self.half) for k in kernels]
        self.method = method
        if method == "direct":  # one kernel for the batch
            rows, cols = np.nonzero(kernels[0])
            weights = kernels[0][rows, cols].astype(np.float32)  # OpenCV filters in float32
            self.taps = [
                (int(r) - self.half, int(c) - self.half, float(wt))
                for r, c, wt in zip(rows, cols, weights, strict=True)
            ]
        else:
            self.shape = tuple(next_fast_len(n + 2 * self.half, real=True) for n in size)
            self.otfs = _kernel_otfs(kernels, self.shape).to(torch.complex64).to(device)

    def __call__(self, x: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        """Correlate ``x`` with the kernels (``transpose``: with the flipped kernels)."""
        half = self.half
        h, w = x.shape[-2:]
        padded = F.pad(x, (half, half, half, half), mode="reflect") if half else x
        if self.method == "fft":
            otfs = self.otfs.conj() if transpose else self.otfs
            spectrum = torch.fft.rfft2(padded, s=self.shape) * otfs
            return torch.fft.irfft2(spectrum, s=self.shape)[..., half : half + h, half : half + w]
        sign = -1 if transpose else 1
        out = None
        for dr, dc, weight in self.taps:
            r, c = half + sign * dr, half + sign * dc
            tap = padded[..., r : r + h, c : c + w]
            if out is None:  # 0 + w x, as the fused add below rounds it: one pass fewer
                out = tap * weight
            else:
                out.add_(tap, alpha=weight)
        return torch.zeros_like(x) if out is None else out


def _richardson_lucy_group(
    batch: torch.Tensor, kernels: list[np.ndarray], iterations: torch.Tensor, method: str
) -> torch.Tensor:
    """:func:`richardson_lucy_torch` of one group: same kernel size (``fft``) or kernel."""
    pad = max(kernels[0].shape) // 2 + 1
    if min(batch.shape[-2:]) > 1:
        y = pad_reflect101_torch(batch, pad) + 1e-3
    else:  # as pad_reflect: a single row or column repeats its edge, along both axes
        y = F.pad(batch, (pad, pad, pad, pad), mode="replicate") + 1e-3
    correlate = _Correlator(kernels, (y.shape[-2], y.shape[-1]), method, batch.device)
    x = y.clone()
    every = int(iterations.min())  # iterations every image runs (no freezing needed)
    for i in range(int(iterations.max())):
        ratio = y / correlate(x).clamp_min(1e-6)
        update = (x * correlate(ratio, transpose=True)).clamp_max(4.0)
        x = update if i < every else torch.where(iterations.reshape(-1, 1, 1, 1) > i, update, x)
    return x[..., pad : pad + batch.shape[-2], pad : pad + batch.shape[-1]] - 1e-3


RLMethod = Literal["auto", "opencv", "direct", "fft"]


def richardson_lucy_torch(
    batch: torch.Tensor,
    kernels: list[np.ndarray],
    iterations: float | torch.Tensor,
    method: RLMethod = "auto",
) -> torch.Tensor:
    """:func:`richardson_lucy` of a batch, one kernel per image (or one for all).

    Same padding, update, cap and offset as the numpy version. The numpy version pads each
    image by its kernel's half size, which changes the result near the borders, so images
    are grouped (by kernel size for ``fft``, by kernel for ``direct``) and each group runs
    as one batch.

    Args:
        batch: N x C x H x W float32 images.
        kernels: One centred, odd-sized, square correlation kernel, or N of them.
        iterations: Richardson-Lucy iterations, a scalar or one per image (an image stops
            updating after its own count).
        method: ``opencv`` (:func:`richardson_lucy` itself, image by image: CPU tensors
            only), ``direct`` (shifted slices), ``fft`` (transfer functions), or ``auto``:
            ``opencv`` on a CPU, ``fft`` on any other device. On a CPU OpenCV's
            ``filter2D`` is 3-6x faster than the torch correlations at 64 px, batch 16
            included (a 64 px crop is too small for the batch to amortise torch's per-op
            cost; ``python -m benchmarks.tool_speed``), and each image runs only its own
            iterations rather than the batch's largest count.
    """
    n = batch.shape[0]
    kernels = list(kernels) * n if len(kernels) == 1 else list(kernels)
    iters = torch.as_tensor(iterations, device=batch.device).flatten().expand(n)
    if method == "auto":
        method = "opencv" if batch.device.type == "cpu" else "fft"
    if method == "opencv":
        return _richardson_lucy_opencv(batch, kernels, iters)
    keys = [_rl_group_key(k, method) for k in kernels]
    out = torch.empty_like(batch)
    for key in dict.fromkeys(keys):
        idx = [i for i, other in enumerate(keys) if other == key]
        group = [kernels[i] for i in idx]
        out[idx] = _richardson_lucy_group(batch[idx], group, iters[idx], key[0])
    return out


def _richardson_lucy_opencv(
    batch: torch.Tensor, kernels: list[np.ndarray], iterations: torch.Tensor
) -> torch.Tensor:
    """:func:`richardson_lucy` (OpenCV) image by image, each with its own iteration count.

    The count is the number of updates the batched loop would make (``ceil``, 0 for none).
    """
    if batch.device.type != "cpu":
        raise ValueError(f"method='opencv' runs on CPU tensors, got {batch.device}")
    out = torch.empty_like(batch)
    counts = [max(0, math.ceil(float(v))) for v in iterations.tolist()]
    for i, (kernel, count) in enumerate(zip(kernels, counts, strict=True)):
        image = batch[i].permute(1, 2, 0).numpy()
        out[i] = torch.from_numpy(richardson_lucy(image, kernel, count)).permute(2, 0, 1)
    return out


def _rl_group_key(
    kernel: np.ndarray, method: Literal["direct", "fft"]
) -> tuple[str, tuple[int, ...], bytes]:
    """Which images :func:`richardson_lucy_torch` runs together: method, size (and kernel)."""
    return method, kernel.shape, kernel.tobytes() if method == "direct" else b""
