"""Running an image-to-image network on overlapping tiles, so memory stays bounded.

Each tile is ``tile`` x ``tile`` input pixels with ``overlap`` pixels shared with each
neighbour; outputs are blended with linear ramps across the overlaps, so seams do not show.
"""

from __future__ import annotations

from typing import Any

import torch


def _ramp(length: int, overlap: int, first: bool, last: bool) -> torch.Tensor:
    """1-D blending weights of a tile: linear ramps over the overlaps, 1 inside."""
    weights = torch.ones(length)
    ramp = torch.linspace(0.0, 1.0, overlap + 2)[1:-1] if overlap > 0 else torch.ones(0)
    n = min(len(ramp), length)
    if not first and n:
        weights[:n] = ramp[:n]
    if not last and n:
        weights[-n:] = torch.minimum(weights[-n:], ramp.flip(0)[-n:])
    return weights


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets covering ``size`` with tiles of ``tile`` overlapping by ``overlap``."""
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]


def run_tiled(fn: Any, image: torch.Tensor, scale: int, tile: int, overlap: int) -> torch.Tensor:
    """Apply ``fn`` (1x3xhxw -> 1x3x(h*scale)x(w*scale)) to overlapping tiles and blend.

    Each tile is ``tile`` x ``tile`` input pixels (smaller images run whole); tiles overlap
    by ``overlap`` pixels, and outputs are averaged with linear ramps across the overlaps,
    so seams do not show. Peak memory: the output, its weight map and one tile.
    """
    _, c, h, w = image.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return fn(image)
    overlap = max(0, min(overlap, tile // 2))
    out = torch.zeros(1, c, h * scale, w * scale, device=image.device)
    norm = torch.zeros(1, 1, h * scale, w * scale, device=image.device)
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    for y in ys:
        for x in xs:
            th, tw = min(tile, h - y), min(tile, w - x)
            piece = fn(image[..., y : y + th, x : x + tw])
            wy = _ramp(th * scale, overlap * scale, y == ys[0], y == ys[-1])
            wx = _ramp(tw * scale, overlap * scale, x == xs[0], x == xs[-1])
            weight = (wy[:, None] * wx[None, :]).to(image.device)
            region = (..., slice(y * scale, (y + th) * scale), slice(x * scale, (x + tw) * scale))
            out[region] += piece * weight
            norm[region] += weight
    return out / norm.clamp_min(1e-8)
