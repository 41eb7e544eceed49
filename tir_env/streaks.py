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

from tir_env.images import channel_max, channel_min, check_u8
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


#: Least rise (0-1) over the background under it that counts a pixel as part of a thin bright line.
RISE = 0.08
#: The background (0-1) a line pixel may lie on: off black, and the line itself not near white,
#: where clipping caps the rise.
BACKGROUND_FLOOR, LINE_CEILING = 0.02, 0.97
#: Fewest line pixels :func:`streak_rise_slope` fits (fewer: ``nan``).
MIN_LINE_PIXELS = 200
#: The value (0-1) the brightest 0.1% of a photo reaches where it reaches white.
WHITE = 0.99


def streak_rise_slope(image: ImageU8) -> float:
    """How a thin bright line's rise above its background changes with that background.

    Rain adds light: ``y = clip(x + r)``, so a streak rises as much over a dark background
    as over a light one (a little less over light ones, where the brightest streaks clip
    and drop out of the fit). A convex tone map applied after the rain, the protocol's
    gamma darkening, stretches a streak over a light background more than over a dark one,
    so the rise grows with it. On the darkest channel (rain's light is in all three) the
    rise is the value minus its 7 px opening; line pixels (rise :data:`RISE` or more,
    below :data:`LINE_CEILING`, over :data:`BACKGROUND_FLOOR`) are split at the 10th, 30th,
    50th, 70th and 90th percentiles of their background, and a line is fitted through each
    bin's median background and median rise (medians, so a noisy pixel moves it little).

    Returns:
        The slope: on the 92 corpus train photos' rainy copies at 1024 px -0.04 / 0.00 /
        0.06 (10th, 50th, 90th percentile), and 0.05 / 0.13 / 0.24 where gamma 0.6
        darkening followed the rain (at 640 px the two overlap more: -0.04 / 0.00 / 0.11
        and 0.02 / 0.13 / 0.34). ``nan`` where fewer than :data:`MIN_LINE_PIXELS` line pixels.

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
    """
    check_u8(image)
    darkest = channel_min(image).astype(np.float32) / 255.0
    background = cv2.morphologyEx(darkest, cv2.MORPH_OPEN, _ELEMENT)
    rise = darkest - background
    line = (rise > RISE) & (darkest < LINE_CEILING) & (background > BACKGROUND_FLOOR)
    if int(line.sum()) < MIN_LINE_PIXELS:
        return math.nan
    x, y = background[line], rise[line]
    edges = np.quantile(x, [0.1, 0.3, 0.5, 0.7, 0.9])
    centres, rises = [], []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (x >= low) & (x < high)
        if inside.any():
            centres.append(float(np.median(x[inside])))
            rises.append(float(np.median(y[inside])))
    if len(centres) < 2 or np.ptp(centres) == 0:
        return math.nan
    return float(np.polyfit(centres, rises, 1)[0])


def reaches_white(image: ImageU8) -> bool:
    """Whether the brightest 0.1% of ``image``'s value (HSV V) reaches :data:`WHITE`.

    The protocol's shift and linear darkening cap the brightest value (under 0.9); a rainy
    photo's streaks reach white.
    """
    check_u8(image)
    return float(np.percentile(channel_max(image), 99.9)) / 255.0 >= WHITE


#: Steepest :func:`streak_rise_slope` at which a photo's rain is read as lying on top of its
#: tones (rule fddc28f, set on the corpus train photos: 74% of their rainy copies lie at or under
#: it, 8% of those darkened by gamma 0.6 after the rain).
ON_TOP_SLOPE = 0.02


def rain_on_top(image: ImageU8) -> bool:
    """Whether ``image``'s bright lines lie on top of its tones, as a rainy photo's do.

    It reaches white (:func:`reaches_white`: the protocol's shift and linear darkening do
    not) and its lines' rise does not grow with the background (:func:`streak_rise_slope`
    at most :data:`ON_TOP_SLOPE`: a gamma darkening after the rain makes it grow). Where it
    holds, a brightening is not what the photo needs beside its rain (docs/agents.md,
    "Brightening beside rain").
    """
    if not reaches_white(image):
        return False
    slope = streak_rise_slope(image)
    return not math.isnan(slope) and slope <= ON_TOP_SLOPE


__all__ = [
    "BLOCK",
    "MAX_ANGLE",
    "ON_TOP_SLOPE",
    "rain_on_top",
    "rain_streaks",
    "reaches_white",
    "streak_rise_slope",
]
