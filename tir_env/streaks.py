"""Rain streaks read from an image's structure: a check of perception's rain on whole photos.

Rain, the protocol's (:class:`tir_env.degradations.agenticir.Rain`: streaks at one angle
within 30 degrees of vertical) as real rain, adds the same light to R, G and B in thin lines
that run one way over the whole frame, sky and texture alike. Brick courses, window grids,
fur and fences are thin bright lines too, which perception's network, reading 96 px tiles,
can take for rain: read whole at 1024 px, 5 of the 92 clean corpus train photos read rain
at 0.93-0.96 (``opencv/baboon``, two brick walls, a building's windows, a tennis backboard),
and the deraining that followed cost them 20-28 dB (docs/agents.md, "Texture read as rain").
Their lines run several ways, or across: :func:`rain_streaks` measures how consistently
thin, bright, colourless lines run one rain-like way, block by block.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tir_env.images import check_u8
from tir_env.types import ImageU8

#: Side (px) of the blocks whose line directions are averaged, each with the same weight.
BLOCK = 64
#: Side (px) of the tiles the cue reads (at most :data:`MAX_TILES_PER_SIDE` a side, spread
#: evenly), so that a camera's photo costs what a 2048 px one does.
TILE = 256
MAX_TILES_PER_SIDE = 8
#: Widest angle (degrees from vertical) rain streaks take (the protocol's range).
MAX_ANGLE = 30.0
#: Gaussian smoothing (sigma, px) before the lines are found: it takes sensor noise out of
#: the top-hat, where its own bright specks would point every way, and keeps the 3 px streaks.
SMOOTHING = 1.0
#: Structuring element of the top-hat: lines thinner than it are kept.
_ELEMENT = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


def rain_streaks(image: ImageU8) -> float:
    """How consistently thin, bright, colourless lines run one rain-like way, in [-1, 1].

    Per channel, the white top-hat of the smoothed image keeps what is brighter than its
    surroundings and thinner than 7 px; the minimum over channels keeps what is as bright in
    R, G and B (rain's light). In each :data:`BLOCK` px block the structure tensor of that
    layer gives the lines' direction and how much they agree (its coherence vector, in
    doubled angles); the blocks' vectors are averaged with equal weights (a flat block, which
    rain covers as it covers the rest, counts as much as a textured one) and the mean is
    projected on the nearest direction within :data:`MAX_ANGLE` of vertical.

    Returns:
        About 0.35-0.9 on the protocol's rain, alone or with another degradation that leaves
        the streaks sharp; about -0.2 to 0.3 on clean photos (the five textures perception
        read as rain: -0.13 to 0.14); lower when the lines run across.

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
    """
    check_u8(image)
    h, w = image.shape[:2]
    rows, cols = _origins(h), _origins(w)
    vectors = [_block_vectors(image[r : r + TILE, c : c + TILE]) for r in rows for c in cols]
    stacked = np.concatenate(vectors)
    if len(stacked) == 0:  # smaller than one block
        return 0.0
    mean_x, mean_y = stacked.mean(axis=0)
    size = math.hypot(mean_x, mean_y)
    # Doubled angle 0 is vertical lines (horizontal gradients); rain lies within 2 * MAX_ANGLE.
    off = max(0.0, abs(math.degrees(math.atan2(mean_y, mean_x))) - 2 * MAX_ANGLE)
    return float(size * math.cos(math.radians(off)))


def _origins(length: int) -> list[int]:
    """Tile starts along one side: covering it, at most :data:`MAX_TILES_PER_SIDE`, evenly."""
    count = min(MAX_TILES_PER_SIDE, -(-length // TILE))
    if length <= TILE or count <= 1:
        return [0]
    last = length - TILE
    return sorted({round(i * last / (count - 1)) for i in range(count)})


def _block_vectors(tile: ImageU8) -> np.ndarray:
    """Each whole block's coherence vector ``((A - C), 2B) / (A + C)``: Bx2 (0x2: none)."""
    h, w = tile.shape[0] // BLOCK, tile.shape[1] // BLOCK
    if h == 0 or w == 0:
        return np.zeros((0, 2))
    smooth = cv2.GaussianBlur(tile.astype(np.float32) / 255.0, (0, 0), SMOOTHING)
    tophats = [cv2.morphologyEx(smooth[..., c], cv2.MORPH_TOPHAT, _ELEMENT) for c in range(3)]
    layer = np.min(tophats, axis=0)
    gx = cv2.Sobel(layer, cv2.CV_32F, 1, 0, ksize=3).astype(np.float64)
    gy = cv2.Sobel(layer, cv2.CV_32F, 0, 1, ksize=3).astype(np.float64)

    def per_block(x: np.ndarray) -> np.ndarray:
        return x[: h * BLOCK, : w * BLOCK].reshape(h, BLOCK, w, BLOCK).sum(axis=(1, 3)).ravel()

    a, b, c = per_block(gx * gx), per_block(gx * gy), per_block(gy * gy)
    energy = a + c
    scale = np.where(energy > 1e-12, 1.0 / np.maximum(energy, 1e-12), 0.0)  # a flat block: 0
    return np.stack([(a - c) * scale, 2.0 * b * scale], axis=1)


__all__ = ["BLOCK", "MAX_ANGLE", "rain_streaks"]
