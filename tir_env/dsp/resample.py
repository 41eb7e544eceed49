"""Separable x4 upsampling with fixed polyphase taps (the x4 super-resolution tools).

Dense filter matrices (:func:`filter_matrix`) up to :data:`DENSE_MAX_SIDE` output pixels a
side, shifted multiply-adds above.
"""

from __future__ import annotations

import torch

from tir_env.dsp.torch_ops import BorderMode, fold_index, pad_fold

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
        mh, mw = _x4_matrix(phases, h, batch), _x4_matrix(phases, w, batch)
        return mh @ (batch @ mw.T)
    half = phases.shape[1] // 2
    x = _polyphase_x4(pad_fold(batch, (0, 0, half, half), "replicate"), phases, -1)
    return _polyphase_x4(pad_fold(x, (half, half, 0, 0), "replicate"), phases, -2)


#: :func:`_x4_matrix`'s matrices by (taps, side, dtype, device); a handful in practice.
_X4_MATRICES: dict[tuple[bytes, int, torch.dtype, str], torch.Tensor] = {}


def _x4_matrix(phases: torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """``filter_matrix(phases, n, "replicate", up=4)`` in ``like``'s dtype and device, cached.

    An iterated upsampler (back-projection) used to rebuild it on every call: a sixth of
    its time at 64 px.
    """
    key = (phases.detach().cpu().numpy().tobytes(), n, like.dtype, str(like.device))
    matrix = _X4_MATRICES.get(key)
    if matrix is None:
        if len(_X4_MATRICES) >= 64:  # bound the cache: image sides vary without limit
            _X4_MATRICES.clear()
        matrix = filter_matrix(phases, n, "replicate", up=4).to(like)
        _X4_MATRICES[key] = matrix
    return matrix
