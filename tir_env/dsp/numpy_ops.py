"""Shared signal processing in numpy / OpenCV: blur kernels, guided filter, deconvolution.

Part of :mod:`tir_env.dsp` (import from there).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

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
        # filter2D returns a single channel as H x W: reshape keeps H x W x 1 images whole
        blurred = cv2.filter2D(x, -1, k, anchor=(ax, ay), borderType=border).reshape(x.shape)
        ratio = y / np.maximum(blurred, 1e-6)
        back = cv2.filter2D(ratio, -1, k_t, anchor=anchor_t, borderType=border)
        x = np.minimum(x * back.reshape(x.shape), 4.0)
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
