"""Perception's presence thresholds adjusted to the image: greyscale photos and whole photos.

The record's thresholds were tuned on 128 px colour crops (:func:`tir_env.perception.thresholds`).
Read whole, or in grey, a photo shows some types differently, and each study below moved one
type's threshold where it read so; crops keep the record's. Only the shipped network was
studied, so :func:`tir_env.perception.image_thresholds` adjusts its thresholds alone.
"""

from __future__ import annotations

import math

import numpy as np

from tir_env.images import check_u8
from tir_env.streaks import rain_streaks
from tir_env.types import ImageU8

#: Darkness threshold on a greyscale image (:func:`is_greyscale`), when the record's is lower.
#: The network was trained on colour photos and reads a grey photo as darker: of the 63 corpus
#: train photos made grey (long side 1024), 18 read dark at 0.5 against 1 in colour, while 49
#: of the same photos darkened then made grey do. At 0.7, 4 and 30 (``python -m
#: benchmarks.grey_dark``; docs/perception.md, "Greyscale photos"): a false brightening costs
#: a clean photo 10-20 dB, a missed one leaves a dark photo as it came.
GREY_DARK_THRESHOLD = 0.7
#: Most a pixel's channels may differ (0-255 levels) in an image :func:`is_greyscale` calls grey.
GREY_TOLERANCE = 2
#: Shorter side (px) from which a grey image gets :data:`GREY_DARK_THRESHOLD`: the study read
#: whole photos; a small crop of a colour photo's grey area (a sky under JPEG and low
#: resolution) can be grey too, and crops were not studied.
GREY_MIN_SIDE = 256
#: Noise threshold on a whole photo (shorter side :data:`WHOLE_MIN_SIDE` or more), when the
#: record's is higher. The record's was tuned on 128 px crops (F0.5), where a textured crop can
#: read as noisy; read whole, the 93 clean corpus train photos and their everyday JPEG copies
#: (quality 80) read 0.46 at most, at 1024 px and at their own size, and the 18 val photos
#: 0.01, while mild noise (sigma 5-10, a phone's; AgenticIR's starts at 20) reads 0.05-1.0
#: and was left in at the record's 0.875. A false call runs a denoiser that leaves a clean
#: image within 54 dB of itself (docs/tools.md, "What a false call costs"). docs/agents.md,
#: "Mild noise on whole photos".
WHOLE_NOISE_THRESHOLD = 0.5
#: Shorter side (px) from which an image is read as a whole photo (:data:`WHOLE_NOISE_THRESHOLD`,
#: :data:`WHOLE_RAIN_STREAKS`).
WHOLE_MIN_SIDE = 256
#: Least :func:`tir_env.streaks.rain_streaks` a whole photo needs for its rain to be read (below
#: it, the rain threshold is infinite): brick and fur that read as rain score -0.13 to 0.14, the
#: protocol's rain 0.28 or more (:mod:`tir_env.streaks`; docs/agents.md, "Texture read as rain").
WHOLE_RAIN_STREAKS = 0.2


def is_greyscale(image: ImageU8) -> bool:
    """Whether every pixel's R, G and B lie within :data:`GREY_TOLERANCE` levels of each other.

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
    """
    check_u8(image)
    spread = image.max(axis=2).astype(np.int16) - image.min(axis=2)
    return bool(spread.max(initial=0) <= GREY_TOLERANCE)


def adjusted(image: ImageU8, limits: dict[str, float]) -> dict[str, float]:
    """The shipped network's thresholds ``limits`` as ``image`` needs them (a new dict).

    On a greyscale image at least :data:`GREY_MIN_SIDE` on its shorter side, darkness needs
    :data:`GREY_DARK_THRESHOLD` at least. On an image at least :data:`WHOLE_MIN_SIDE` on its
    shorter side (a whole photo, not a crop), noise needs :data:`WHOLE_NOISE_THRESHOLD` at
    most, and rain is not read at all (an infinite threshold) where the image shows no rain
    streaks (:func:`tir_env.streaks.rain_streaks` under :data:`WHOLE_RAIN_STREAKS`). Reading
    rain at a tenth of its threshold where the streaks are clear was measured and not shipped
    (docs/agents.md, "Rain the network half-sees").

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
    """
    check_u8(image)
    limits = dict(limits)
    if min(image.shape[:2]) >= GREY_MIN_SIDE and "dark" in limits and is_greyscale(image):
        limits["dark"] = max(limits["dark"], GREY_DARK_THRESHOLD)
    if min(image.shape[:2]) < WHOLE_MIN_SIDE:
        return limits
    if "noise" in limits:
        limits["noise"] = min(limits["noise"], WHOLE_NOISE_THRESHOLD)
    if "rain" in limits and rain_streaks(image) < WHOLE_RAIN_STREAKS:
        limits["rain"] = math.inf
    return limits


__all__ = [
    "GREY_DARK_THRESHOLD",
    "GREY_MIN_SIDE",
    "GREY_TOLERANCE",
    "WHOLE_MIN_SIDE",
    "WHOLE_NOISE_THRESHOLD",
    "WHOLE_RAIN_STREAKS",
    "adjusted",
    "is_greyscale",
]
