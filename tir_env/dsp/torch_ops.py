"""Batched torch signal processing (float NCHW, any device), part of :mod:`tir_env.dsp`."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from tir_env.dsp.numpy_ops import LAPLACIAN, _shifts, otf


def per_sample(value: float | torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """A scalar or per-image ``(N,)`` parameter as an ``(N|1, 1, 1, 1)`` tensor on ``batch``."""
    t = torch.as_tensor(value, dtype=batch.dtype, device=batch.device)
    return t.reshape(-1, 1, 1, 1)


def pad_symmetric(batch: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad H and W by mirroring with the edge repeated (OpenCV's ``BORDER_REFLECT``).

    Indices are folded with period ``2n``, so pads wider than the image reflect again, as
    OpenCV's ``borderInterpolate`` does (:func:`pad_fold`, whose mirrored slices run several
    times faster than a gather on a CPU: the gather along W was a fifth of jpeg_tv's time).
    """
    return pad_fold(batch, (max(pad_h, 0), max(pad_h, 0), max(pad_w, 0), max(pad_w, 0)), "reflect")


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
    return _window_mean(_window_mean(padded, k, -1), k, -2)


def _window_mean(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Mean of every ``k`` consecutive samples along ``dim`` ("valid" size).

    Bitwise ``avg_pool2d`` with a 1 x k (or k x 1) window and stride 1: the same sums, left
    to right, then one division; shifted slices run 3-10x faster on a CPU than its stride-1
    loop (a 17-tap column mean of an 80 px image: 3.5 ms against 0.3 ms).
    """
    n = x.shape[dim] - k + 1
    acc = x.narrow(dim, 0, n).clone()
    for i in range(1, k):
        acc += x.narrow(dim, i, n)
    return acc.div_(k)


def guided_filter_torch(
    guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float
) -> torch.Tensor:
    """:func:`guided_filter` on batches: ``guide`` N x 1 x H x W, ``src`` N x C x H x W."""
    radius = max(0, min(radius, (min(guide.shape[-2:]) - 1) // 2))
    # Channels filter independently: one box call for the four means, one for a and b (at
    # 64 px the per-call overhead of six calls cost more than the filtering).
    c = src.shape[1]
    means = box_torch(torch.cat([guide, src, guide * guide, guide * src], dim=1), radius)
    mean_i, mean_p, corr_i, corr_ip = means.split([1, c, 1, c], dim=1)
    var_i = corr_i - mean_i**2
    cov_ip = corr_ip - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a, mean_b = box_torch(torch.cat([a, b], dim=1), radius).split([c, c], dim=1)
    return mean_a * guide + mean_b


def periodic_extension_torch(batch: torch.Tensor, min_size: int) -> torch.Tensor:
    """:func:`periodic_extension` of every image of an NCHW batch."""
    for dim in (-2, -1):
        n = batch.shape[dim]
        if n > 2:
            mirrored = batch.flip(dim).narrow(dim, 1, n - 2)
            batch = torch.cat([batch, mirrored], dim=dim)
    reps = (math.ceil(min_size / batch.shape[-2]), math.ceil(min_size / batch.shape[-1]))
    return batch.repeat(1, 1, *reps)


#: Images per float64 FFT on a CPU in :func:`wiener_deconvolve_torch`.
WIENER_CPU_CHUNK = 4


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
    if batch.device.type == "cpu" and batch.shape[0] > WIENER_CPU_CHUNK:
        # float64 spectra of a whole batch outgrow the caches (16 images of 64 px: 12 MB)
        snr = torch.as_tensor(snr_db, dtype=torch.float64).flatten().expand(batch.shape[0])
        chunks = range(0, batch.shape[0], WIENER_CPU_CHUNK)
        return torch.cat(
            [
                wiener_deconvolve_torch(
                    batch[i : i + WIENER_CPU_CHUNK],
                    kernels if len(kernels) == 1 else kernels[i : i + WIENER_CPU_CHUNK],
                    snr[i : i + WIENER_CPU_CHUNK],
                )
                for i in chunks
            ]
        )
    x = batch.to(torch.float64)
    # Kernels of any sizes share one extension: it repeats the mirrored image (period m),
    # whose spectrum lives on every r-th frequency of an r-fold grid, where a kernel's OTF
    # is that of the kernel wrapped modulo m, as on its own grid (tested: batch == alone)
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


def dct_matrix(size: int = 8) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D`` (float64): ``D @ x == scipy.fft.dct(x, norm="ortho")``."""
    k = torch.arange(size, dtype=torch.float64)[:, None]
    i = torch.arange(size, dtype=torch.float64)[None]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] /= math.sqrt(2.0)
    return d


#: Elements of one stack of shifted copies in :func:`shifted_dct_threshold_torch`, by device
#: type: on a CPU a stack must stay in the L2 cache (at 64 px, batch 16: 2.1 ms per image
#: with 2**16, 2.9 with 2**20, slower than one image at a time); elsewhere large stacks
#: mean fewer kernel launches.
DCT_CHUNK_CPU = 1 << 16
DCT_CHUNK_DEVICE = 1 << 22


def shifted_dct_threshold_torch(
    batch: torch.Tensor, threshold: torch.Tensor, step: int, chunk: int | None = None
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
            the CPU cache (faster than one large stack) and bound the memory (default: by
            device, :data:`DCT_CHUNK_CPU` or :data:`DCT_CHUNK_DEVICE`).
    """
    if chunk is None:
        chunk = DCT_CHUNK_CPU if batch.device.type == "cpu" else DCT_CHUNK_DEVICE
    n, c, h, w = batch.shape
    # one padded size for every shift: the extra blocks are pure padding and are cropped
    ht, wt = 8 * math.ceil((h + 7) / 8), 8 * math.ceil((w + 7) / 8)
    shifts = list(_shifts(step))
    d = dct_matrix(8)
    kron = torch.kron(d, d).to(batch)  # flattened 8x8 block -> flattened coefficients
    # the DC coefficient (the block mean) is never touched: its threshold is -1
    t = threshold.to(batch).expand(n, c, 1, 1).reshape(n, c, 1, 1, 1, 1).repeat(1, 1, 1, 1, 1, 64)
    t[..., 0] = -1.0
    per_chunk = max(1, chunk // max(1, n * c * ht * wt))
    padded = pad_fold(batch, (8, ht - h, 8, wt - w), "reflect")  # numpy's "symmetric"
    out = torch.zeros_like(batch)
    for start in range(0, len(shifts), per_chunk):
        part = shifts[start : start + per_chunk]
        # each shift's 8x8 blocks in one copy (not a stack, then a transposing copy)
        blocks = torch.stack([_grid_blocks(padded, dy, dx, ht, wt) for dy, dx in part], dim=2)
        coeffs = blocks.reshape(n, c, len(part), ht // 8, wt // 8, 64) @ kron.T
        coeffs.mul_(coeffs.abs() >= t)
        blocks = (coeffs @ kron).reshape(n, c, len(part), ht // 8, wt // 8, 8, 8)
        blocks = blocks.transpose(4, 5).reshape(n, c, len(part), ht, wt)
        for s, (dy, dx) in enumerate(part):
            out += blocks[:, :, s, dy : dy + h, dx : dx + w]
    return out / len(shifts)


def _grid_blocks(padded: torch.Tensor, dy: int, dx: int, ht: int, wt: int) -> torch.Tensor:
    """The 8x8 blocks (a view, N x C x Ht/8 x Wt/8 x 8 x 8) of grid shift ``(dy, dx)``."""
    # the grid's Ht x Wt window starts at (8 - dy, 8 - dx) of the padded image
    window = padded[..., 8 - dy : 8 - dy + ht, 8 - dx : 8 - dx + wt]
    return window.unflatten(-1, (wt // 8, 8)).unflatten(-3, (ht // 8, 8)).transpose(3, 4)


def min_filter(x: torch.Tensor, k: int) -> torch.Tensor:
    """Minimum over each pixel's k x k window (odd k; outside the image does not count).

    The same floats as ``-F.max_pool2d(-x, k, stride=1, padding=k // 2)`` (a minimum is
    exact in any order), taken as k shifted minima down the rows, then k along them:
    about 16x faster on the CPU for k = 7, where max_pool2d's kernel took a third of the
    time of :func:`~tir_env.tools.learned.nets.descriptors` (the dark channel).
    """
    r = k // 2
    h, w = x.shape[-2:]
    padded = F.pad(x, (r, r, r, r), value=float("inf"))
    rows = padded[..., 0:h, :]
    for i in range(1, k):
        rows = torch.minimum(rows, padded[..., i : i + h, :])
    out = rows[..., 0:w]
    for j in range(1, k):
        out = torch.minimum(out, rows[..., j : j + w])
    return out
