"""Brightening (low-light) tools: AgenticIR's CLAHE, gamma correction and constant shift of V.

Changing HSV V while keeping H and S scales R, G and B by the same factor, which is how they
are computed here (exactly, without 8-bit HSV round trips).
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch

from tir_env.dsp import pad_reflect101_torch, per_sample
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    channel_max,
    channel_max_torch,
    scale_value,
    scale_value_torch,
    to_u8,
)
from tir_env.types import ImageF32, Param


def _clahe_luts(v: torch.Tensor, tiles: int, clip_limit: torch.Tensor) -> torch.Tensor:
    """OpenCV's CLAHE lookup tables of every tile: N x tiles^2 x 256 (``CLAHE_CalcLut_Body``).

    ``v`` holds integer grey levels (N x H x W, int64) already extended to a multiple of the
    grid. Per tile: a 256-bin histogram clipped at ``max(int(clip * area / 256), 1)``, the
    clipped count spread evenly, its remainder one count every ``max(256 // r, 1)`` bins from
    bin 0, and the cumulative sum scaled by ``255 / area`` and rounded (half to even).
    """
    n, h, w = v.shape
    th, tw = h // tiles, w // tiles
    area = th * tw
    tile = (torch.arange(h, device=v.device) // th)[:, None] * tiles + (
        torch.arange(w, device=v.device) // tw
    )[None, :]
    offset = torch.arange(n, device=v.device)[:, None, None] * (tiles * tiles * 256)
    counts = torch.bincount((offset + tile * 256 + v).flatten(), minlength=n * tiles**2 * 256)
    hist = counts.reshape(n, tiles * tiles, 256)
    limit = (clip_limit.to(torch.float64) * area / 256).long().clamp_min(1).reshape(-1, 1, 1)
    clipped = (hist - limit).clamp_min(0).sum(dim=-1, keepdim=True)
    hist = torch.minimum(hist, limit) + clipped // 256
    residual = clipped % 256
    step = (256 // residual.clamp_min(1)).clamp_min(1)
    bins = torch.arange(256, device=v.device)
    hist = hist + ((bins % step == 0) & (bins // step < residual)).long()
    scale = torch.tensor(255.0, dtype=torch.float32) / area  # float32, as OpenCV's lutScale
    return torch.round(hist.cumsum(dim=-1).float() * scale.to(v.device)).clamp(0, 255)


def _clahe_axis(size: int, tile: int, tiles: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Neighbouring tiles and weights along one axis (``CLAHE_Interpolation_Body``, float32)."""
    inv = torch.tensor(1.0, dtype=torch.float32) / tile
    pos = torch.arange(size, dtype=torch.float32) * inv - 0.5
    low = torch.floor(pos)
    weight = pos - low
    first = low.long().clamp_min(0)
    second = (low.long() + 1).clamp_max(tiles - 1)
    return first.to(device), second.to(device), weight.to(device), (1.0 - weight).to(device)


def clahe_torch(v: torch.Tensor, tiles: int, clip_limit: torch.Tensor) -> torch.Tensor:
    """``cv2.createCLAHE(clip_limit, (tiles, tiles)).apply`` on 8-bit grey images, batched.

    Args:
        v: N x H x W integer grey levels in [0, 255] (int64).
        tiles: Tiles per side of the grid.
        clip_limit: (N,) clip limits (OpenCV's ``clipLimit``), one per image.

    Returns:
        N x H x W float32 grey levels in [0, 255] (integers), as OpenCV's result.
    """
    n, h, w = v.shape
    ext = v
    if h % tiles or w % tiles:  # OpenCV extends both sides by reflection (even a divisible one)
        pad = tiles  # then cropped to the bottom and right extensions OpenCV makes
        ext = pad_reflect101_torch(v, pad)[..., pad:, pad:]
        ext = ext[..., : h + tiles - h % tiles, : w + tiles - w % tiles]
    luts = _clahe_luts(ext, tiles, clip_limit).flatten(1)  # N x (tiles^2 * 256)
    y1, y2, ya, ya1 = (t[:, None] for t in _clahe_axis(h, ext.shape[1] // tiles, tiles, v.device))
    x1, x2, xa, xa1 = (t[None, :] for t in _clahe_axis(w, ext.shape[2] // tiles, tiles, v.device))

    def lut(ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
        return luts.gather(1, ((ty * tiles + tx) * 256 + v).flatten(1)).reshape(n, h, w)

    top = lut(y1, x1) * xa1 + lut(y1, x2) * xa
    bottom = lut(y2, x1) * xa1 + lut(y2, x2) * xa
    return torch.round(top * ya1 + bottom * ya).clamp(0, 255)


@register_tool
class CLAHE(PerImageTool):
    """Contrast-limited adaptive histogram equalisation of HSV V (Zuiderveld 1994; AgenticIR)."""

    info = ToolInfo(
        name="clahe",
        task="brightening",
        params=spec(
            clip_limit=Param(0.5, 8.0, 2.0, "histogram clip limit (OpenCV clipLimit)"),
            tiles=Param(1, 16, 8, "tiles per side of the grid", integer=True),
        ),
        cost_hint=1.0,
        description="CLAHE on HSV value (AgenticIR: clip 2.0, 8x8 tiles).",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:meth:`restore` on the whole batch (:func:`clahe_torch`, any device).

        ``clip_limit`` and ``tiles`` may also be per-image ``(N,)`` tensors; images are
        grouped by their (capped) grid, one batched call per grid.
        """
        v = torch.clamp(batch.amax(dim=1) * 255.0 + 0.5, 0, 255).long()  # to_u8, N x H x W
        n, h, w = v.shape
        clip = per_sample(params["clip_limit"], batch).flatten().expand(n)
        wanted = per_sample(params["tiles"], batch).flatten().expand(n).round().long()
        grids = wanted.clamp(1, max(1, min(h, w) // 16))
        new_v = torch.empty(v.shape, dtype=batch.dtype, device=batch.device)
        for tiles in grids.unique().tolist():
            idx = (grids == tiles).nonzero().flatten()
            new_v[idx] = clahe_torch(v[idx], int(tiles), clip[idx]).to(batch.dtype) / 255.0
        return scale_value_torch(batch, new_v[:, None])

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """OpenCV CLAHE on 8-bit V = max(R, G, B); R, G, B rescaled to the new V.

        The grid is capped so tiles keep at least 16 pixels a side (4x4 tiles on a 64x64
        crop): equalising 8-pixel tiles only amplifies noise. From 128 pixels up the grid is
        AgenticIR's.
        """
        v = to_u8(channel_max(image))
        tiles = max(1, min(int(params["tiles"]), min(v.shape) // 16))
        clahe = cv2.createCLAHE(clipLimit=params["clip_limit"], tileGridSize=(tiles, tiles))
        new_v = clahe.apply(v).astype(np.float32) / 255.0
        return scale_value(image, new_v.reshape(v.shape))


@register_tool
class GammaCorrection(PerImageTool):
    """Gamma correction of HSV V: ``V' = V^(1/gamma)`` (AgenticIR: gamma 1.5)."""

    info = ToolInfo(
        name="gamma_correction",
        task="brightening",
        params=spec(gamma=Param(0.3, 3.0, 1.5, "gamma; > 1 brightens, < 1 darkens")),
        cost_hint=1.0,
        description="Gamma correction of HSV value, V' = V^(1/gamma) (AgenticIR: gamma 1.5).",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Raise V = max(R, G, B) to ``1/gamma``, keep hue and saturation (batched torch).

        ``gamma`` may also be a per-image ``(N,)`` tensor.
        """
        v = channel_max_torch(batch)
        return scale_value_torch(batch, v ** (1.0 / per_sample(params["gamma"], batch)))

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test)."""
        v = channel_max(image)
        return scale_value(image, np.power(v, 1.0 / params["gamma"]))


@register_tool
class ConstantShift(PerImageTool):
    """Constant shift of HSV V (AgenticIR: +40 of 255)."""

    info = ToolInfo(
        name="constant_shift",
        task="brightening",
        params=spec(shift=Param(-100.0, 100.0, 40.0, "added to HSV value, on the 0-255 scale")),
        cost_hint=1.0,
        description="Adds a constant to HSV value (AgenticIR: +40 of 255), clipped to [0, 255].",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """``V' = clip(V + shift / 255, 0, 1)``, keep hue and saturation (batched torch).

        ``shift`` may also be a per-image ``(N,)`` tensor.
        """
        v = channel_max_torch(batch)
        new_v = (v + per_sample(params["shift"], batch) / 255.0).clamp(0.0, 1.0)
        return scale_value_torch(batch, new_v)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test)."""
        v = channel_max(image)
        return scale_value(image, np.clip(v + params["shift"] / 255.0, 0.0, 1.0))
