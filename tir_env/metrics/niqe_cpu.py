"""NIQE's block features on a CPU with OpenCV and numpy: the same arithmetic, 3x faster there.

:func:`tir_env.metrics.niqe.niqe_features` is batched torch and runs on any device, but on a
CPU a reward-sized image (one 96 px block) spends most of its 3 ms in fixed per-op costs and
in float64 convolutions, which have no fast CPU path in torch (the 7x7 window alone took
0.7 ms of it). This module computes the same 36 features per block for CPU images:
``cv2.filter2D`` in float64 with pyiqa's window (0.13 ms), and numpy, whose per-op cost is a
fraction of torch's on arrays this small (features of a 96 px image: 3.4 ms in torch, 1.05 ms
here; a 1536 px photo's NIQE 2.3 s against 0.33 s). The steps, tables and tie rules are those
of the torch module; the two agree to float rounding (``tests/test_metrics.py`` checks 1e-8 on
photos, noise, blur, flat images and random sizes), and both to pyiqa within ``NIQE_RTOL``.

:class:`~tir_env.metrics.niqe.NIQEMetric` uses it for batches on the CPU and the torch code
everywhere else; ``benchmarks/niqe_speed.py`` measures the difference.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
from scipy.special import gammaln

from tir_env.metrics import niqe


def niqe_features_cpu(y255: torch.Tensor, block: int = niqe.BLOCK) -> torch.Tensor:
    """:func:`~tir_env.metrics.niqe.niqe_features` of a CPU batch: N x B x 36, float64.

    Args:
        y255: Nx1xHxW luma in [0, 255], float64, on the CPU (see ``niqe.luma255``).
        block: Block side at full resolution.
    """
    lumas = y255.detach().cpu().numpy()[:, 0]
    return torch.from_numpy(np.stack([_image_features(y, block) for y in lumas]))


def _image_features(y255: np.ndarray, block: int) -> np.ndarray:
    """B x 36 features of one HxW luma image, blocks in pyiqa ``blockproc``'s order."""
    h, w = y255.shape
    img = y255[: h // block * block, : w // block * block]
    coarse = half_size(img / 255.0) * 255.0
    scales = [_blocks(mscn(img), block), _blocks(mscn(coarse), block // 2)]
    with np.errstate(divide="ignore", invalid="ignore"):  # flat blocks: NaN, as in torch
        return np.concatenate([_block_statistics(b) for b in scales], axis=1)


@functools.cache
def _window() -> np.ndarray:
    """The 7x7 Gaussian window of pyiqa (float32-rounded taps), in float64."""
    taps, residual = niqe._gauss7(torch.device("cpu"))
    return (torch.outer(taps, taps) + residual[0, 0].double()).numpy()


def _filter7(img: np.ndarray) -> np.ndarray:
    """The window with replicated borders (MATLAB ``imfilter(..., 'replicate')``)."""
    return cv2.filter2D(img, cv2.CV_64F, _window(), borderType=cv2.BORDER_REPLICATE)


def mscn(img: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients ``(I - mu) / (sigma + 1)``."""
    mu = _filter7(img)
    sigma = np.sqrt(np.abs(_filter7(img * img) - mu * mu) + np.finfo(np.float64).eps)
    return (img - mu) / (sigma + 1)


def half_size(img: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(img, 0.5)`` of an even-sided image (``niqe.half_size``'s taps).

    The separable filter anchored at its first tap, on the mirrored image, then every other
    row and column: ``out[i, j] = sum_kl taps[k] taps[l] padded[2i + k, 2j + l]``.
    """
    taps = niqe._half_taps(torch.device("cpu")).numpy()
    padded = _fold(_fold(img, 0), 1)
    full = cv2.sepFilter2D(padded, cv2.CV_64F, taps, taps, anchor=(0, 0))
    return full[: img.shape[0] : 2, : img.shape[1] : 2]


def _fold(img: np.ndarray, axis: int) -> np.ndarray:
    """Mirror 3 samples before and 4 after along ``axis``, the edge included (MATLAB)."""
    index = niqe._symmetric_index(img.shape[axis], 3, 4, torch.device("cpu")).numpy()
    return np.take(img, index, axis=axis)


def _blocks(img: np.ndarray, side: int) -> np.ndarray:
    """Non-overlapping ``side`` blocks, column-major like ``blockproc``: B x side x side."""
    rows, cols = img.shape[0] // side, img.shape[1] // side
    grid = img.reshape(rows, side, cols, side)
    return grid.transpose(2, 0, 1, 3).reshape(rows * cols, side, side)


def _block_statistics(blocks: np.ndarray) -> np.ndarray:
    """The 18 features of each MSCN block: B x 18 (``niqe.block_statistics``, one scale)."""
    alpha, beta_l, beta_r = _estimate_aggd(_aggd_moments(_neighbour_products(blocks)))
    mean = (beta_r - beta_l) * np.exp(gammaln(2 / alpha) - gammaln(1 / alpha))
    first = np.stack([alpha[0], (beta_l[0] + beta_r[0]) / 2], axis=-1)
    pairs = np.stack([alpha[1:], mean[1:], beta_l[1:], beta_r[1:]], axis=-1)  # 4 x B x 4
    return np.concatenate([first, pairs.transpose(1, 0, 2).reshape(len(blocks), -1)], axis=1)


def _neighbour_products(blocks: np.ndarray) -> np.ndarray:
    """The blocks and their products with the 4 neighbours of ``niqe.SHIFTS``: 5 x B x P.

    Each neighbour wraps around inside its block, as pyiqa's ``torch.roll``: one wrapped
    copy, ``wrapped[:, i + 1, j + 1] = block[:, i, j]``, holds the four as slices.
    """
    b, h, w = blocks.shape
    wrapped = np.empty((b, h + 1, w + 2))
    wrapped[:, 1:, 1:-1] = blocks
    wrapped[:, 0, 1:-1] = blocks[:, -1]
    wrapped[:, :, 0], wrapped[:, :, -1] = wrapped[:, :, -2], wrapped[:, :, 1]
    neighbours = (
        wrapped[:, 1:, :w],  # shift (0, 1): block[i, j - 1]
        wrapped[:, :h, 1 : w + 1],  # (1, 0): block[i - 1, j]
        wrapped[:, :h, :w],  # (1, 1): block[i - 1, j - 1]
        wrapped[:, :h, 2:],  # (1, -1): block[i - 1, j + 1]
    )
    out = np.empty((1 + len(neighbours), b, h, w))
    out[0] = blocks
    for k, neighbour in enumerate(neighbours, start=1):
        np.multiply(blocks, neighbour, out=out[k])
    return out.reshape(out.shape[0], b, h * w)


def _aggd_moments(values: np.ndarray) -> np.ndarray:
    """Means of ``[x < 0]``, ``[x > 0]``, ``x^2 [x < 0]``, ``x^2 [x > 0]``, ``|x|``: 5 x ...

    From two elementwise passes (the negative part, the sign) and dot products (BLAS):
    ``sign . sign`` counts the non-zero values, ``sign . x`` is ``sum |x|``, and the positive
    side's squares are all squares less the negative side's (as the torch code takes them).
    """
    negative = np.minimum(values, 0.0)
    sign = np.sign(values)
    both, net = _dot(sign, sign), sign.sum(axis=-1)  # both = #neg + #pos, net = #pos - #neg
    square_l = _dot(negative, negative)
    sums = [
        (both - net) / 2,
        (both + net) / 2,
        square_l,
        _dot(values, values) - square_l,
        _dot(sign, values),
    ]
    return np.stack(sums) / values.shape[-1]


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products over the last axis."""
    return (a[..., None, :] @ b[..., :, None])[..., 0, 0]


def _estimate_aggd(moments: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``niqe.estimate_aggd``: moment matching, shape from the nearest grid point."""
    gam, r_gam = (t.numpy() for t in niqe._aggd_table(torch.device("cpu")))
    frac_l, frac_r, square_l, square_r, absolute = moments
    left_std, right_std = np.sqrt(square_l / frac_l), np.sqrt(square_r / frac_r)
    gammahat = left_std / right_std
    rhat = absolute**2 / (square_l + square_r)
    rhatnorm = (rhat * (gammahat**3 + 1) * (gammahat + 1)) / (gammahat**2 + 1) ** 2
    alpha = gam[_nearest(r_gam, rhatnorm)]
    scale = np.sqrt(np.exp(gammaln(1 / alpha) - gammaln(3 / alpha)))
    return alpha, left_std * scale, right_std * scale


def _nearest(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``niqe._nearest``: nearest index of an increasing table, ties low, non-finite to 0."""
    hi = np.clip(np.searchsorted(table, values), 1, table.size - 1)
    lo = hi - 1
    pos = np.where(np.abs(table[lo] - values) <= np.abs(table[hi] - values), lo, hi)
    return np.where(np.isfinite(values), pos, 0)
