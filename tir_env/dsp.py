"""Shared signal processing: blur kernels, box and guided filters, FFT deconvolution.

The degradations draw their blur kernels here and the deblurring tools invert the same
kernels, so a kernel has one definition and one argument order. Everything here is plain
numpy / OpenCV on HWC (or HW) float arrays; the batched torch versions used by the tools
live beside them (``*_torch``), on float32 NCHW batches on any device.

SciPy's FFT is imported inside the functions that use it, so importing this module (which
the degradations do) stays cheap.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tir_env.types import ImageF32

# --------------------------------------------------------------------------------------
# Blur kernels
# --------------------------------------------------------------------------------------


def motion_kernel(radius: int, sigma: float, angle: float, half: int | None = None) -> np.ndarray:
    """The motion-blur kernel of imagecorruptions, as a 2-D correlation kernel (float64).

    ``width = 2 radius + 1`` taps with one-sided Gaussian weights ``w_i ~ exp(-i^2 / 2 sigma^2)``,
    ``i = 0..width-1`` (normalised to sum 1), placed along the direction ``angle`` (degrees in
    [-90, 90], positive angles trail downwards on screen) at the offsets
    ``(ceil(i sin(angle) - 1/2), ceil(i cos(angle) - 1/2))`` (row, column) from the centre:
    the output is ``sum_i w_i x(p + offset_i)``, a trail that fades with ``i``.

    Args:
        radius: Trail length parameter (``2 radius + 1`` taps).
        sigma: Gaussian spread of the weights along the trail, in taps.
        angle: Direction in degrees.
        half: The kernel is ``(2 half + 1)`` square; default: the smallest that holds the
            trail (at least 3x3). The ``motion_blur`` degradation uses ``2 radius + 1``, the
            grid of imagecorruptions (larger grids only add zeros).
    """
    width = 2 * int(radius) + 1
    weights = np.exp(-(np.arange(width, dtype=np.float64) ** 2) / (2.0 * sigma**2))
    weights /= weights.sum()
    sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    rows = [math.ceil(i * sin - 0.5) for i in range(width)]
    cols = [math.ceil(i * cos - 0.5) for i in range(width)]
    if half is None:
        half = max(1, *(abs(v) for v in rows + cols))
    kernel = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float64)
    for weight, r, c in zip(weights, rows, cols, strict=True):
        kernel[half + r, half + c] += weight
    return kernel


def disk_kernel(
    radius: float, alias_sigma: float = 0.5, dtype: type[np.floating] = np.float64
) -> np.ndarray:
    """The defocus kernel of imagecorruptions: a disk, smoothed against aliasing.

    The aliased disk ``1[x^2 + y^2 <= radius^2]`` on a grid of at least 17x17 (one pixel
    wider than the disk), normalised to sum 1, then blurred by a 3x3 Gaussian of
    ``alias_sigma``, all computed in ``dtype`` (the ``defocus_blur`` degradation uses
    float32, which its recorded outputs depend on bit for bit).
    """
    half = max(8, math.ceil(radius) + 1)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(dtype)
    disk /= disk.sum()
    return cv2.GaussianBlur(disk, (3, 3), sigmaX=alias_sigma)


# --------------------------------------------------------------------------------------
# Box and guided filters
# --------------------------------------------------------------------------------------


def box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, reflecting at the borders."""
    k = 2 * radius + 1
    return cv2.boxFilter(x, -1, (k, k), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` steered by a grey ``guide`` (He et al., TPAMI 2013).

    ``q = mean(a) * I + mean(b)`` with ``a = cov(I, p) / (var(I) + eps)``,
    ``b = mean(p) - a * mean(I)``, all means over (2r+1)^2 boxes.
    """
    radius = max(0, min(radius, (min(guide.shape[:2]) - 1) // 2))
    guide = guide.astype(np.float32)
    src = src.astype(np.float32)
    g = guide[..., None] if src.ndim == 3 else guide
    mean_i, mean_p = box(guide, radius), box(src, radius)
    mean_i = mean_i[..., None] if src.ndim == 3 else mean_i
    var_i = box(guide * guide, radius)
    var_i = (var_i[..., None] if src.ndim == 3 else var_i) - mean_i**2
    cov_ip = box(g * src, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a, radius) * g + box(b, radius)


# --------------------------------------------------------------------------------------
# Borders and transfer functions
# --------------------------------------------------------------------------------------


def pad_reflect(image: np.ndarray, pad: int) -> np.ndarray:
    """Mirror-pad ``pad`` pixels on every side (OpenCV's ``BORDER_REFLECT_101``)."""
    widths = ((pad, pad), (pad, pad), (0, 0))
    if min(image.shape[:2]) > 1:
        return np.pad(image, widths, mode="reflect")
    return np.pad(image, widths, mode="edge")  # nothing to mirror in a single row or column


def periodic_extension(image: np.ndarray, min_size: int) -> np.ndarray:
    """Whole-sample symmetric extension of period ``2n - 2``, tiled to >= ``min_size``.

    ``[x0 .. x(n-1) x(n-2) .. x1]`` repeated is continuous everywhere, and blurring it with
    a symmetric kernel gives the same image as blurring ``x`` with OpenCV's default
    ``BORDER_REFLECT_101`` borders: a periodic FFT filter then sees no false edges.
    """
    for axis in (0, 1):
        n = image.shape[axis]
        if n > 2:
            mirrored = np.flip(image, axis).take(range(1, n - 1), axis=axis)
            image = np.concatenate([image, mirrored], axis=axis)
    reps = [math.ceil(min_size / image.shape[0]), math.ceil(min_size / image.shape[1]), 1]
    return np.tile(image, reps)


def otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Transfer function (rfft2) of a correlation ``kernel`` centred at the origin.

    The kernel is wrapped onto the periodic ``shape`` grid (taps beyond it alias, as a
    circular convolution on that grid would), so any kernel fits any grid.
    """
    from scipy import fft

    flipped = kernel[::-1, ::-1]  # correlation -> convolution
    kh, kw = flipped.shape
    rows = (np.arange(kh) - kh // 2) % shape[0]
    cols = (np.arange(kw) - kw // 2) % shape[1]
    wrapped = np.zeros(shape, np.float64)
    np.add.at(wrapped, (rows[:, None], cols[None, :]), flipped)
    return fft.rfft2(wrapped)


#: The discrete Laplacian: the smoothness prior of :func:`wiener_deconvolve`.
LAPLACIAN = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float64)


# --------------------------------------------------------------------------------------
# Non-blind deconvolution
# --------------------------------------------------------------------------------------


def wiener_deconvolve(image: ImageF32, kernel: np.ndarray, snr_db: float) -> np.ndarray:
    """Regularised Wiener deconvolution (Wiener 1949; the Laplacian prior of skimage's ``wiener``).

    ``X = conj(K) Y / (|K|^2 + lambda |D|^2)`` with ``D`` the discrete Laplacian and
    ``lambda = 10^(-snr_db / 10)``. The FFT works on :func:`periodic_extension`, so the
    borders do not ring.
    """
    from scipy import fft

    padded = periodic_extension(image.astype(np.float64), max(kernel.shape))
    shape = padded.shape[:2]
    k = otf(kernel, shape)
    lap = otf(LAPLACIAN, shape)
    lam = 10.0 ** (-snr_db / 10.0)
    filt = np.conj(k) / (np.abs(k) ** 2 + lam * np.abs(lap) ** 2)
    spectrum = fft.rfft2(padded, axes=(0, 1)) * filt[..., None]
    out = fft.irfft2(spectrum, s=shape, axes=(0, 1))
    return out[: image.shape[0], : image.shape[1]]


def trim_kernel(kernel: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Crop a centred kernel to its non-zero support; return it and the centre's (x, y).

    One-sided motion trails fill a quarter of their square grid or less; cropping them
    makes OpenCV's ``filter2D`` several times faster.
    """
    rows, cols = np.nonzero(kernel)
    top, left = int(rows.min()), int(cols.min())
    crop = kernel[top : rows.max() + 1, left : cols.max() + 1]
    return np.ascontiguousarray(crop, np.float32), (
        kernel.shape[1] // 2 - left,
        kernel.shape[0] // 2 - top,
    )


def richardson_lucy(image: ImageF32, kernel: np.ndarray, iterations: int) -> np.ndarray:
    """Richardson-Lucy deconvolution (Richardson 1972; Lucy 1974), mirror-padded.

    ``x <- x * (K^T (y / (K x)))``, started from ``y``; the multiplicative update keeps the
    estimate non-negative. Convolutions are OpenCV ``filter2D`` with reflected borders. The
    estimate is capped at 4 (images live in [0, 1]): on degenerate inputs (a thin strip of
    near-zero pixels) the update otherwise grows geometrically to Inf and then NaN.
    """
    pad = max(kernel.shape) // 2 + 1
    y = pad_reflect(image.astype(np.float32), pad) + 1e-3
    k, (ax, ay) = trim_kernel(kernel)
    k_t = np.ascontiguousarray(k[::-1, ::-1])
    anchor_t = (k.shape[1] - 1 - ax, k.shape[0] - 1 - ay)
    border = cv2.BORDER_REFLECT_101
    x = y.copy()
    for _ in range(int(iterations)):
        blurred = cv2.filter2D(x, -1, k, anchor=(ax, ay), borderType=border)
        ratio = y / np.maximum(blurred, 1e-6)
        x = np.minimum(x * cv2.filter2D(ratio, -1, k_t, anchor=anchor_t, borderType=border), 4.0)
    return x[pad : pad + image.shape[0], pad : pad + image.shape[1]] - 1e-3


# --------------------------------------------------------------------------------------
# Block DCT thresholding
# --------------------------------------------------------------------------------------


def _block_dct_threshold(channel: np.ndarray, threshold: float, dy: int, dx: int) -> np.ndarray:
    """Hard-threshold the orthonormal 8x8 block DCT of ``channel`` shifted by (dy, dx)."""
    from scipy.fft import dctn, idctn

    h, w = channel.shape
    ph, pw = (-(h + dy)) % 8, (-(w + dx)) % 8
    padded = np.pad(channel, ((dy, ph), (dx, pw)), mode="symmetric")
    bh, bw = padded.shape[0] // 8, padded.shape[1] // 8
    blocks = padded.reshape(bh, 8, bw, 8).transpose(0, 2, 1, 3)
    coeffs = dctn(blocks, axes=(2, 3), norm="ortho")
    keep = np.abs(coeffs) >= threshold
    keep[..., 0, 0] = True  # never touch the block mean
    blocks = idctn(coeffs * keep, axes=(2, 3), norm="ortho")
    padded = blocks.transpose(0, 2, 1, 3).reshape(bh * 8, bw * 8)
    return padded[dy : dy + h, dx : dx + w]


def _shifts(step: int) -> Iterator[tuple[int, int]]:
    """Grid shifts (dy, dx) in 0..7 with the given step."""
    for dy in range(0, 8, step):
        for dx in range(0, 8, step):
            yield dy, dx


def shifted_dct_threshold(
    image: np.ndarray, thresholds: tuple[float, ...], step: int
) -> np.ndarray:
    """Average over grid shifts of 8x8 block-DCT hard thresholding, channel by channel."""
    out = np.zeros_like(image, dtype=np.float64)
    shifts = list(_shifts(step))
    for c, t in enumerate(thresholds):
        for dy, dx in shifts:
            out[..., c] += _block_dct_threshold(image[..., c], t, dy, dx)
    return out / len(shifts)


# --------------------------------------------------------------------------------------
# Batched torch versions (float NCHW, any device)
# --------------------------------------------------------------------------------------


def per_sample(value: float | torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """A scalar or per-image ``(N,)`` parameter as an ``(N|1, 1, 1, 1)`` tensor on ``batch``."""
    t = torch.as_tensor(value, dtype=batch.dtype, device=batch.device)
    return t.reshape(-1, 1, 1, 1)


def pad_symmetric(batch: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad H and W by mirroring with the edge repeated (OpenCV's ``BORDER_REFLECT``).

    Indices are folded with period ``2n``, so pads wider than the image reflect again, as
    OpenCV's ``borderInterpolate`` does.
    """
    for dim, pad in ((-2, pad_h), (-1, pad_w)):
        if pad <= 0:
            continue
        n = batch.shape[dim]
        idx = torch.arange(-pad, n + pad, device=batch.device) % (2 * n)
        idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)
        batch = batch.index_select(dim, idx)
    return batch


def _separable(batch: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Correlate every channel with ``taps`` along W then H; ``batch`` is already padded."""
    c = batch.shape[1]
    k = taps.to(batch).reshape(1, 1, 1, -1).expand(c, 1, 1, -1)
    out = F.conv2d(batch, k, groups=c)
    return F.conv2d(out, k.transpose(-1, -2), groups=c)


def gaussian_blur_torch(batch: torch.Tensor, sigma: float) -> torch.Tensor:
    """``cv2.GaussianBlur(x, (0, 0), sigma, borderType=BORDER_REFLECT)`` on a float batch.

    OpenCV's kernel for float images: ``n = round(8 sigma + 1) | 1`` taps
    ``exp(-(i - (n-1)/2)^2 / (2 sigma^2))``, normalised to sum 1 (``getGaussianKernel``).
    """
    n = int(math.floor(sigma * 8 + 1 + 0.5)) | 1
    x = torch.arange(n, dtype=torch.float64) - (n - 1) * 0.5
    taps = torch.exp(-0.5 / (sigma * sigma) * x * x)
    taps = (taps / taps.sum()).to(torch.float32)
    return _separable(pad_symmetric(batch, n // 2, n // 2), taps)


def box_torch(batch: torch.Tensor, radius: int) -> torch.Tensor:
    """:func:`box` on a batch: mean over (2r+1)^2 windows, ``BORDER_REFLECT`` borders."""
    if radius <= 0:
        return batch
    k = 2 * radius + 1
    padded = pad_symmetric(batch, radius, radius)
    return F.avg_pool2d(F.avg_pool2d(padded, (1, k), stride=1), (k, 1), stride=1)


def guided_filter_torch(
    guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float
) -> torch.Tensor:
    """:func:`guided_filter` on batches: ``guide`` N x 1 x H x W, ``src`` N x C x H x W."""
    radius = max(0, min(radius, (min(guide.shape[-2:]) - 1) // 2))
    mean_i, mean_p = box_torch(guide, radius), box_torch(src, radius)
    var_i = box_torch(guide * guide, radius) - mean_i**2
    cov_ip = box_torch(guide * src, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_torch(a, radius) * guide + box_torch(b, radius)


def periodic_extension_torch(batch: torch.Tensor, min_size: int) -> torch.Tensor:
    """:func:`periodic_extension` of every image of an NCHW batch."""
    for dim in (-2, -1):
        n = batch.shape[dim]
        if n > 2:
            mirrored = batch.flip(dim).narrow(dim, 1, n - 2)
            batch = torch.cat([batch, mirrored], dim=dim)
    reps = (math.ceil(min_size / batch.shape[-2]), math.ceil(min_size / batch.shape[-1]))
    return batch.repeat(1, 1, *reps)


def wiener_deconvolve_torch(
    batch: torch.Tensor, kernels: list[np.ndarray], snr_db: float | torch.Tensor
) -> torch.Tensor:
    """:func:`wiener_deconvolve` of a batch, one kernel per image (or one for all), float64 FFT.

    Args:
        batch: N x C x H x W images.
        kernels: One correlation kernel, or N of them (images may differ, as when a blind
            estimate is made per image).
        snr_db: Assumed signal-to-noise ratio, a scalar or one per image.
    """
    x = batch.to(torch.float64)
    padded = periodic_extension_torch(x, max(max(k.shape) for k in kernels))
    shape = (padded.shape[-2], padded.shape[-1])
    lam = 10.0 ** (-per_sample(snr_db, x) / 10.0)
    k = torch.stack([torch.from_numpy(otf(kernel, shape)) for kernel in kernels])[:, None]
    lap = torch.from_numpy(otf(LAPLACIAN, shape))
    k, lap = k.to(x.device), lap.to(x.device)
    filt = torch.conj(k) / (k.abs() ** 2 + lam * lap.abs() ** 2)
    out = torch.fft.irfft2(torch.fft.rfft2(padded) * filt, s=shape)
    return out[..., : batch.shape[-2], : batch.shape[-1]].to(batch.dtype)


def pad_reflect101_torch(batch: torch.Tensor, pad: int) -> torch.Tensor:
    """:func:`pad_reflect` of an NCHW batch: mirror without repeating the edge, any width.

    Indices fold with period ``2n - 2`` (``np.pad(mode="reflect")`` and OpenCV's
    ``BORDER_REFLECT_101`` for pads wider than the image); a single row or column repeats.
    """
    if pad <= 0:
        return batch
    for dim in (-2, -1):
        n = batch.shape[dim]
        idx = torch.arange(-pad, n + pad, device=batch.device)
        if n == 1:
            idx = torch.zeros_like(idx)
        else:
            idx = idx.abs() % (2 * n - 2)
            idx = torch.where(idx >= n, 2 * n - 2 - idx, idx)
        batch = batch.index_select(dim, idx)
    return batch


def _kernel_otfs(kernels: list[np.ndarray], shape: tuple[int, int]) -> torch.Tensor:
    """:func:`otf` of each kernel on ``shape``, stacked: K x 1 x H x (W//2+1), complex128."""
    return torch.stack([torch.from_numpy(otf(k, shape)) for k in kernels])[:, None]


class _Correlator:
    """Correlation of N x C x H x W images with one kernel each, ``BORDER_REFLECT_101``.

    OpenCV's ``filter2D`` on every image and its transpose (correlation with the flipped
    kernel). Two exact methods: ``direct`` adds shifted slices, one per non-zero tap (the
    fastest on a CPU for a sparse kernel, such as a motion trail, shared by the batch);
    ``fft`` multiplies transfer functions on a mirrored, zero-filled grid, where the
    circular product equals the linear correlation because the kernel never reaches past
    the mirrored margin (any kernels, one per image).
    """

    def __init__(
        self, kernels: list[np.ndarray], size: tuple[int, int], method: str, device: torch.device
    ) -> None:
        from scipy.fft import next_fast_len

        self.half = max(kernels[0].shape) // 2
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
        out = torch.zeros_like(x)
        sign = -1 if transpose else 1
        for dr, dc, weight in self.taps:
            r, c = half + sign * dr, half + sign * dc
            out.add_(padded[..., r : r + h, c : c + w], alpha=weight)
        return out


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
    for i in range(int(iterations.max())):
        ratio = y / correlate(x).clamp_min(1e-6)
        update = (x * correlate(ratio, transpose=True)).clamp_max(4.0)
        x = torch.where(iterations.reshape(-1, 1, 1, 1) > i, update, x)
    return x[..., pad : pad + batch.shape[-2], pad : pad + batch.shape[-1]] - 1e-3


#: Largest number of non-zero taps for which ``richardson_lucy_torch(method="auto")`` uses
#: shifted slices on a CPU (measured: 31 slices of a 64 px crop cost about one FFT pair).
DIRECT_MAX_TAPS = 32


def richardson_lucy_torch(
    batch: torch.Tensor,
    kernels: list[np.ndarray],
    iterations: float | torch.Tensor,
    method: Literal["auto", "direct", "fft"] = "auto",
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
        method: ``direct`` (shifted slices), ``fft`` (transfer functions), or ``auto``:
            direct on a CPU for kernels of at most :data:`DIRECT_MAX_TAPS` taps, else fft.
    """
    n = batch.shape[0]
    kernels = list(kernels) * n if len(kernels) == 1 else list(kernels)
    iters = torch.as_tensor(iterations, device=batch.device).flatten().expand(n)
    keys = [_rl_group_key(k, method, batch.device) for k in kernels]
    out = torch.empty_like(batch)
    for key in dict.fromkeys(keys):
        idx = [i for i, other in enumerate(keys) if other == key]
        group = [kernels[i] for i in idx]
        out[idx] = _richardson_lucy_group(batch[idx], group, iters[idx], key[0])
    return out


def _rl_group_key(
    kernel: np.ndarray, method: Literal["auto", "direct", "fft"], device: torch.device
) -> tuple[str, tuple[int, ...], bytes]:
    """Which images :func:`richardson_lucy_torch` runs together: method, size (and kernel)."""
    if method == "auto":
        sparse = int(np.count_nonzero(kernel)) <= DIRECT_MAX_TAPS
        method = "direct" if sparse and device.type == "cpu" else "fft"
    return method, kernel.shape, kernel.tobytes() if method == "direct" else b""


def window_max(batch: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """Maximum over every ``kh`` x ``kw`` window of a (pre-padded) NCHW batch, "valid" size.

    Separable (a row maximum of column maxima), on strided views: several times faster on
    a CPU than ``max_pool2d`` with stride 1, and exact.
    """
    if kh > 1:
        batch = batch.unfold(-2, kh, 1).amax(dim=-1)
    if kw > 1:
        batch = batch.unfold(-1, kw, 1).amax(dim=-1)
    return batch


@functools.lru_cache(maxsize=64)
def _selection_network(n: int, rank: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """An odd-even transposition sort of ``n`` wires, pruned to what output ``rank`` needs.

    Comparators ``(i, j, min needed, max needed)`` in order. Walking backwards from the
    output, a comparator is kept when a later one (or the output) reads one of its wires,
    and only the outputs read are computed.
    """
    comparators = [(i, i + 1) for p in range(n) for i in range(p % 2, n - 1, 2)]
    needed, kept = {rank}, []
    for i, j in reversed(comparators):
        low, high = i in needed, j in needed
        if low or high:
            kept.append((i, j, low, high))
            needed |= {i, j}
    return tuple(reversed(kept))


def rank_select(values: Sequence[torch.Tensor], rank: int) -> torch.Tensor:
    """The ``rank``-th smallest (from 0) of equally shaped tensors, elementwise.

    A comparator network of ``minimum``/``maximum`` ops: on a CPU 2-4x faster than
    ``kthvalue`` or ``sort`` over a short stacked dimension, and exact.
    """
    wires = list(values)
    for i, j, low, high in _selection_network(len(wires), rank):
        a, b = wires[i], wires[j]
        if low:
            wires[i] = torch.minimum(a, b)
        if high:
            wires[j] = torch.maximum(a, b)
    return wires[rank]


# --------------------------------------------------------------------------------------
# Batched torch: borders, per-plane filters, x4 polyphase upsampling, block DCT
# --------------------------------------------------------------------------------------

BorderMode = Literal["reflect", "reflect101", "replicate"]


def fold_index(index: torch.Tensor, n: int, mode: BorderMode) -> torch.Tensor:
    """Map out-of-range indices into ``[0, n)`` the way OpenCV's ``borderInterpolate`` does.

    ``reflect`` is ``BORDER_REFLECT`` (``fedcba|abcdefgh``, numpy's ``symmetric``, period
    ``2n``), ``reflect101`` is ``BORDER_REFLECT_101`` (``gfedcb|abcdefgh``, period
    ``2n - 2``; a single pixel repeats) and ``replicate`` clamps. Pads wider than the image
    keep reflecting.
    """
    if mode == "replicate" or (mode == "reflect101" and n == 1):
        return index.clamp(0, n - 1)
    period = 2 * n if mode == "reflect" else 2 * n - 2
    index = index % period
    mirror = (2 * n - 1 if mode == "reflect" else 2 * n - 2) - index
    return torch.where(index >= n, mirror, index)


def pad_fold(
    batch: torch.Tensor, pads: tuple[int, int, int, int], mode: BorderMode
) -> torch.Tensor:
    """Pad H and W by ``(top, bottom, left, right)`` pixels with :func:`fold_index` borders."""
    top, bottom, left, right = pads
    for dim, before, after in ((-2, top, bottom), (-1, left, right)):
        if before or after:
            n = batch.shape[dim]
            if mode == "reflect" and max(before, after) <= n:
                # mirrored slices: one contiguous copy, several times faster than a gather
                head = batch.narrow(dim, 0, before).flip(dim)
                tail = batch.narrow(dim, n - after, after).flip(dim)
                batch = torch.cat([head, batch, tail], dim=dim)
                continue
            idx = torch.arange(-before, n + after, device=batch.device)
            batch = batch.index_select(dim, fold_index(idx, n, mode))
    return batch


def conv_planes(batch: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Correlate every image plane with its own kernel(s), no padding.

    ``batch`` N x C x H x W, ``weight`` (N*C*m) x 1 x kh x kw: plane ``p`` (image-major)
    gives output channels ``p*m .. p*m + m - 1``, so the result is N x C*m x H' x W'. The
    planes go in the channel dimension of a one-image depthwise convolution: with the images
    in the batch dimension instead, CPU PyTorch takes NNPACK (batch >= 16), 10-20x slower on
    these single-channel filters.
    """
    n, c, h, w = batch.shape
    planes = n * c
    out = F.conv2d(batch.reshape(1, planes, h, w), weight.to(batch), groups=planes)
    return out.reshape(n, -1, out.shape[-2], out.shape[-1])


def gaussian_taps(sigma: torch.Tensor) -> torch.Tensor:
    """OpenCV's Gaussian taps (``getGaussianKernel``, float images) for each sigma, (S, n).

    ``n_i = round(8 sigma_i + 1) | 1``; shorter kernels are centred in the longest with
    zeros around, so one convolution serves sigmas that differ per image.
    """
    sig = sigma.detach().to("cpu", torch.float64).flatten()
    sizes = [int(math.floor(float(s) * 8 + 1 + 0.5)) | 1 for s in sig]
    n = max(sizes)
    x = torch.arange(n, dtype=torch.float64) - (n - 1) * 0.5
    taps = torch.exp(-0.5 * x[None] ** 2 / sig[:, None] ** 2)
    taps = taps * (x[None].abs() <= torch.tensor([(k - 1) / 2 for k in sizes])[:, None])
    return (taps / taps.sum(1, keepdim=True)).to(torch.float32)


def gaussian_blur_planes(batch: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """:func:`gaussian_blur_torch` with one sigma per image (a scalar or ``(N,)``).

    A depthwise convolution over all planes of the batch (:func:`conv_planes`).
    """
    n, c = batch.shape[:2]
    taps = gaussian_taps(torch.as_tensor(sigma, dtype=torch.float64).flatten().expand(n))
    half = taps.shape[1] // 2
    k = taps.repeat_interleave(c, dim=0).to(batch.device)[:, None, None, :]
    padded = pad_fold(batch, (half, half, half, half), "reflect")
    out = conv_planes(padded, k)
    return conv_planes(out, k.transpose(-1, -2))


def _polyphase_x4(x: torch.Tensor, phases: torch.Tensor, dim: int) -> torch.Tensor:
    """x4 along ``dim`` (-1 or -2) of an already replicate-padded ``x`` (see below)."""
    taps = phases.shape[1]
    n = x.shape[dim] - (taps - 1)
    weights = phases.tolist()
    outs = []
    for p in range(4):
        # shifted multiply-adds: memory-bound but cache-friendly, unlike CPU depthwise conv
        acc = x.narrow(dim, 0, n) * weights[p][0]
        for k in range(1, taps):
            if weights[p][k] != 0.0:
                acc.add_(x.narrow(dim, k, n), alpha=weights[p][k])
        outs.append(acc)
    out = torch.stack(outs, dim=x.dim() + dim + 1)  # phase right after the resampled axis
    shape = list(x.shape)
    shape[dim] = 4 * n
    return out.reshape(shape)


def upsample_x4_planes(batch: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
    """Separable x4 interpolation with fixed polyphase taps and replicated borders.

    ``phases`` is 4 x K (K odd): output pixel ``4i + p`` is ``sum_k phases[p, k] x(i + k -
    K // 2)`` along each axis, W first, then H, as OpenCV's ``resize`` and PyTorch's
    ``interpolate`` do for an integer factor (both clamp indices at the borders). Up to
    :data:`DENSE_MAX_SIDE` output pixels a side it is two GEMMs with :func:`filter_matrix`,
    above that shifted multiply-adds.
    """
    h, w = batch.shape[-2:]
    if 4 * max(h, w) <= DENSE_MAX_SIDE:
        mh = filter_matrix(phases, h, "replicate", up=4).to(batch)
        mw = filter_matrix(phases, w, "replicate", up=4).to(batch)
        return mh @ (batch @ mw.T)
    half = phases.shape[1] // 2
    x = _polyphase_x4(pad_fold(batch, (0, 0, half, half), "replicate"), phases, -1)
    return _polyphase_x4(pad_fold(x, (half, half, 0, 0), "replicate"), phases, -2)


def dct_matrix(size: int = 8) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D`` (float64): ``D @ x == scipy.fft.dct(x, norm="ortho")``."""
    k = torch.arange(size, dtype=torch.float64)[:, None]
    i = torch.arange(size, dtype=torch.float64)[None]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] /= math.sqrt(2.0)
    return d


def shifted_dct_threshold_torch(
    batch: torch.Tensor, threshold: torch.Tensor, step: int, chunk: int = 1 << 20
) -> torch.Tensor:
    """:func:`shifted_dct_threshold` of a batch, grid shifts stacked (float32 by default).

    Every 8x8 block's 2-D DCT is one product with the 64 x 64 matrix ``D kron D`` (one large
    GEMM instead of many 8x8 ones). Computed in the batch's dtype: float32 agrees with the
    float64 reference to > 100 dB except where a coefficient lies within rounding of the
    threshold, and float64 is slow on most GPUs.

    Args:
        batch: N x C x H x W images.
        threshold: Hard thresholds broadcastable to N x C x 1 x 1 (per image, per channel).
        step: Grid shift step in 1..8 (``64 / step^2`` shifts are averaged).
        chunk: Bound on the elements of one stack of shifted copies: small stacks stay in
            the CPU cache (faster than one large stack) and bound the memory.
    """
    n, c, h, w = batch.shape
    # one padded size for every shift: the extra blocks are pure padding and are cropped
    ht, wt = 8 * math.ceil((h + 7) / 8), 8 * math.ceil((w + 7) / 8)
    shifts = list(_shifts(step))
    d = dct_matrix(8)
    kron = torch.kron(d, d).to(batch)  # flattened 8x8 block -> flattened coefficients
    t = threshold.to(batch).expand(n, c, 1, 1).reshape(n, c, 1, 1, 1, 1)
    dc = torch.zeros(64, dtype=torch.bool, device=batch.device)
    dc[0] = True  # never touch the block mean
    out = torch.zeros_like(batch)
    per_chunk = max(1, chunk // max(1, n * c * ht * wt))
    padded = pad_fold(batch, (8, ht - h, 8, wt - w), "reflect")  # numpy's "symmetric"
    for start in range(0, len(shifts), per_chunk):
        part = shifts[start : start + per_chunk]
        stack = torch.stack(
            [padded[..., 8 - dy : 8 - dy + ht, 8 - dx : 8 - dx + wt] for dy, dx in part], dim=2
        )  # N x C x S x Ht x Wt
        blocks = stack.reshape(n, c, len(part), ht // 8, 8, wt // 8, 8).transpose(4, 5)
        coeffs = blocks.reshape(n, c, len(part), ht // 8, wt // 8, 64) @ kron.T
        coeffs = coeffs * ((coeffs.abs() >= t) | dc)
        blocks = (coeffs @ kron).reshape(n, c, len(part), ht // 8, wt // 8, 8, 8)
        blocks = blocks.transpose(4, 5).reshape(n, c, len(part), ht, wt)
        for s, (dy, dx) in enumerate(part):
            out += blocks[:, :, s, dy : dy + h, dx : dx + w]
    return out / len(shifts)


#: Largest output side for which :func:`upsample_x4_planes` uses dense matrices: a GEMM
#: does O(side) work per pixel but runs near peak, while shifted multiply-adds are
#: memory-bound.
DENSE_MAX_SIDE = 256


def filter_matrix(taps: torch.Tensor, n: int, mode: BorderMode, up: int = 1) -> torch.Tensor:
    """The ``(up n) x n`` matrix of a 1-D filter (``up`` phases) with folded borders.

    Row ``up i + p`` holds ``taps[p, k]`` at column ``fold(i + k - K // 2)``, so ``M @ x``
    filters (and upsamples by ``up``) a column ``x`` exactly as the padded convolution.
    """
    phases = taps.reshape(up, -1).to(torch.float64)
    k = phases.shape[1]
    i = torch.arange(n)
    cols = fold_index(i[:, None] + torch.arange(k)[None] - k // 2, n, mode)  # n x K
    out = torch.zeros(n, up, n, dtype=torch.float64)
    for p in range(up):
        out[:, p].scatter_add_(1, cols, phases[p].expand(n, k).contiguous())
    return out.reshape(up * n, n)
