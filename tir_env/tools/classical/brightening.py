"""Brightening (low-light) tools: AgenticIR's CLAHE, gamma correction and constant shift of V.

Changing HSV V while keeping H and S scales R, G and B by the same factor, which is how they
are computed here (exactly, without 8-bit HSV round trips).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from tir_env.dsp import pad_reflect101_torch, per_sample
from tir_env.images import channel_max
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    channel_max_torch,
    scale_value,
    scale_value_torch,
    to_u8,
)
from tir_env.types import ImageF32, Param


@dataclass(frozen=True)
class _ClaheGrid:
    """Index maps and weights of OpenCV's CLAHE for one image size, grid and device."""

    ext: tuple[int, int]  # size of the image extended to a multiple of the grid
    tile: torch.Tensor  # ext, the tile of every pixel times 256 (its LUT's offset)
    corners: torch.Tensor  # 4 x H x W LUT offsets of the 4 nearest tiles: (y1, x1), (y1, x2), ...
    xa: torch.Tensor  # 1 x W weight of the right tiles (``CLAHE_Interpolation_Body``, float32)
    ya: torch.Tensor  # H x 1 weight of the lower tiles
    area: int  # pixels per tile


def _clahe_axis(
    size: int, tile: int, tiles: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """First and second neighbouring tiles and the second one's weight along one axis.

    OpenCV's float32 arithmetic: ``pos = x * (1 / tile) - 0.5``, tiles ``floor(pos)`` and
    the next one (clamped to the grid), weight ``pos - floor(pos)``.
    """
    pos = torch.arange(size, dtype=torch.float32) * (torch.tensor(1.0) / tile) - 0.5
    low = torch.floor(pos)
    first = low.long().clamp_min(0)
    second = (low.long() + 1).clamp_max(tiles - 1)
    return first, second, pos - low


@functools.lru_cache(maxsize=32)
def _clahe_grid(h: int, w: int, tiles: int, device: str) -> _ClaheGrid:
    """The :class:`_ClaheGrid` of an ``h`` x ``w`` image and a ``tiles`` x ``tiles`` grid.

    OpenCV extends an image whose sides are not multiples of the grid by ``tiles - h %
    tiles`` rows and ``tiles - w % tiles`` columns (both, even where one side divides).
    """
    ext = (h, w)
    if h % tiles or w % tiles:
        ext = (h + tiles - h % tiles, w + tiles - w % tiles)
    th, tw = ext[0] // tiles, ext[1] // tiles
    tile = (torch.arange(ext[0]) // th)[:, None] * tiles + (torch.arange(ext[1]) // tw)[None, :]
    y1, y2, ya = _clahe_axis(h, th, tiles)
    x1, x2, xa = _clahe_axis(w, tw, tiles)
    rows = [y[:, None] * tiles for y in (y1, y1, y2, y2)]
    corners = torch.stack([r + x[None, :] for r, x in zip(rows, (x1, x2, x1, x2), strict=True)])
    return _ClaheGrid(
        ext,
        (tile * 256).to(device),
        (corners * 256).to(device),
        xa[None, :].to(device),
        ya[:, None].to(device),
        th * tw,
    )


def _clahe_luts(v: torch.Tensor, grid: _ClaheGrid, clip_limit: torch.Tensor) -> torch.Tensor:
    """OpenCV's CLAHE lookup tables of every tile: N x (tiles^2 * 256) (``CLAHE_CalcLut_Body``).

    ``v`` holds the integer grey levels (N x H x W, int64) extended to ``grid.ext``. Per
    tile: a 256-bin histogram clipped at ``max(int(clip * area / 256), 1)``, the clipped
    count spread evenly, its remainder one count every ``max(256 // r, 1)`` bins from bin
    0, and the cumulative sum scaled by ``255 / area`` in float32 and rounded half to even.
    """
    n = v.shape[0]
    size = int(grid.tile.max()) + 256  # tiles^2 * 256 bins per image
    offset = torch.arange(n, device=v.device)[:, None, None] * size
    counts = torch.bincount((offset + grid.tile + v).flatten(), minlength=n * size)
    hist = counts.reshape(n, -1, 256)
    limit = (clip_limit.to(torch.float64) * grid.area / 256).long().clamp_min(1)
    limit = limit.reshape(-1, 1, 1)
    clipped = (hist - limit).clamp_min(0).sum(dim=-1, keepdim=True)
    hist = torch.minimum(hist, limit) + clipped // 256
    residual = clipped % 256
    step = (256 // residual.clamp_min(1)).clamp_min(1)
    bins = torch.arange(256, device=v.device)
    hist = hist + ((bins % step == 0) & (bins // step < residual)).long()
    scale = torch.tensor(255.0) / grid.area  # float32, as OpenCV's lutScale
    return torch.round(hist.cumsum(dim=-1).float() * scale.item()).clamp(0, 255).flatten(1)


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
    grid = _clahe_grid(h, w, tiles, str(v.device))
    ext = v
    if grid.ext != (h, w):  # mirrored below and right, then cropped to OpenCV's extension
        ext = pad_reflect101_torch(v, tiles)[..., tiles:, tiles:][..., : grid.ext[0], : grid.ext[1]]
    luts = _clahe_luts(ext, grid, clip_limit)
    index = (grid.corners[None] + v[:, None]).flatten(1)
    l11, l12, l21, l22 = luts.gather(1, index).reshape(n, 4, h, w).unbind(1)
    xa, ya = grid.xa, grid.ya
    # OpenCV's order of operations, so that the float32 rounding is the same
    top = l11 * (1.0 - xa) + l12 * xa
    bottom = l21 * (1.0 - xa) + l22 * xa
    return torch.round(top * (1.0 - ya) + bottom * ya).clamp(0, 255)


@register_tool
class CLAHE(PerImageTool):
    """Contrast-limited adaptive histogram equalisation of HSV V (Zuiderveld 1994; AgenticIR)."""

    cpu_reference = True  # its OpenCV reference is faster than the port on a CPU
    spread_reference = True  # OpenCV calls that release the GIL: images on many cores
    cpu_port_from = 4  # from 4 images the port is faster (64 px, one core)
    batch_params = frozenset({"clip_limit", "tiles"})
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
        # float64, as OpenCV's clipLimit: the histogram limit int(clip * area / 256) jumps at
        # integers, and a clip rounded to float32 (1.9999999999999991 -> 2.0) jumps early
        clip = torch.as_tensor(params["clip_limit"], dtype=torch.float64, device=batch.device)
        clip = clip.flatten().expand(n)
        cap = max(1, min(h, w) // 16)
        tiles = torch.as_tensor(params["tiles"]).flatten().expand(n).tolist()
        grids = [max(1, min(int(round(t)), cap)) for t in tiles]
        if len(set(grids)) == 1:  # the usual case: one grid for the batch
            new_v = clahe_torch(v, grids[0], clip)
        else:
            new_v = torch.empty(v.shape, dtype=batch.dtype, device=batch.device)
            for grid in set(grids):
                idx = [i for i, g in enumerate(grids) if g == grid]
                new_v[idx] = clahe_torch(v[idx], grid, clip[idx])
        return scale_value_torch(batch, new_v[:, None].to(batch.dtype) / 255.0)

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

    batch_params = frozenset({"gamma"})
    info = ToolInfo(
        name="gamma_correction",
        preferred=True,  # the fixed and oracle agents' tool for its task
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

    batch_params = frozenset({"shift"})
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
