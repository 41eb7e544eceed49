"""Overlapping tiles of a large photo: where they lie, and a function applied to each, blended.

``tir restore`` plans on a crop and applies the plan to the whole photo tile by tile
(``benchmarks/restore.py``), with memory bounded by one band of tiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from tir_env.errors import ImageError
from tir_env.images import check_u8, u8_to_batch
from tir_env.types import ImageU8


def tile_spans(length: int, tile: int, overlap: int, align: int = 8) -> list[tuple[int, int]]:
    """``(start, end)`` of tiles covering ``[0, length)``, evenly spread.

    Every tile is ``tile`` long except the last (up to ``align - 1`` longer); starts lie on the
    ``align`` grid, so a JPEG's 8x8 blocks line up with each tile's; neighbours overlap by at
    least ``overlap - align``.
    """
    if length <= tile:
        return [(0, length)]
    count = 1 + math.ceil((length - tile) / (tile - overlap))
    starts = [k * (length - tile) // (count - 1) // align * align for k in range(count)]
    spans = {s: (s, s + tile) for s in starts[:-1]}
    spans[starts[-1]] = (starts[-1], length)  # the last tile reaches the end
    return sorted(spans.values())


def _ramp(span: tuple[int, int], length: int, width: int) -> np.ndarray:
    """Blending weights along one side of a tile: 1 inside, ramping down at inner edges."""
    start, end = span
    x = np.arange(start, end, dtype=np.float32) + 0.5
    w = np.ones(end - start, dtype=np.float32)
    if start > 0:
        w = np.minimum(w, (x - start) / width)
    if end < length:
        w = np.minimum(w, (end - x) / width)
    return np.clip(w, 1e-3, 1.0)


def process_tiled(
    image: ImageU8,
    fn: Callable[[torch.Tensor], torch.Tensor],
    tile: int = 1024,
    overlap: int = 64,
    progress: bool = False,
) -> ImageU8:
    """Apply ``fn`` (float32 1x3xhxw -> same shape) to overlapping tiles; blend; uint8 HWC.

    Overlaps are blended with linear ramps ``overlap / 2`` wide (weights normalised, so any
    overlap works). Memory is bounded by one band of tiles: a float accumulator of about
    ``tile`` rows x the image width, plus the input and the output.

    Args:
        image: The photo, uint8 HWC.
        fn: Work on one tile; must return the tile's shape.
        tile: Tile side (pixels).
        overlap: Overlap between neighbouring tiles (pixels, a multiple of 8, < ``tile / 2``).
        progress: Show a tqdm bar (on stderr, after two seconds).

    Raises:
        ImageError: ``fn`` changed a tile's shape.
    """
    from tqdm.auto import tqdm

    check_u8(image)
    h, w = image.shape[:2]
    rows, cols = tile_spans(h, tile, overlap), tile_spans(w, tile, overlap)
    width = max(1, overlap // 2)
    col_ramps = [_ramp(c, w, width) for c in cols]
    out = np.empty_like(image)
    band_start = 0
    acc = np.zeros((0, w, 3), np.float32)
    weight = np.zeros((0, w), np.float32)
    bar = tqdm(
        total=len(rows) * len(cols), desc="tiles", unit="tile", delay=2.0, disable=not progress
    )
    for r, (y0, y1) in enumerate(rows):
        grow = y1 - band_start - acc.shape[0]
        acc = np.concatenate([acc, np.zeros((grow, w, 3), np.float32)])
        weight = np.concatenate([weight, np.zeros((grow, w), np.float32)])
        row_ramp = _ramp((y0, y1), h, width)
        for (x0, x1), col_ramp in zip(cols, col_ramps, strict=True):
            result = fn(u8_to_batch(np.ascontiguousarray(image[y0:y1, x0:x1])))
            if tuple(result.shape) != (1, 3, y1 - y0, x1 - x0):
                raise ImageError(f"tile of {(y1 - y0, x1 - x0)} came back {tuple(result.shape)}")
            hwc = result[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
            tw = row_ramp[:, None] * col_ramp[None, :]
            acc[y0 - band_start : y1 - band_start, x0:x1] += hwc * tw[..., None]
            weight[y0 - band_start : y1 - band_start, x0:x1] += tw
            bar.update(1)
        done = rows[r + 1][0] if r + 1 < len(rows) else h  # later tiles start at or after it
        n = done - band_start
        blended = acc[:n] / weight[:n, :, None]
        out[band_start:done] = np.clip(np.round(blended * 255.0), 0, 255).astype(np.uint8)
        acc, weight, band_start = acc[n:], weight[n:], done
    bar.close()
    return out


__all__ = ["process_tiled", "tile_spans"]
