"""Perception's presence thresholds adjusted to the image: greyscale photos and whole photos.

The record's thresholds were tuned on 128 px colour crops (:func:`tir_env.perception.thresholds`).
Read whole, or in grey, a photo shows some types differently, and each study below moved one
type's threshold where it read so; crops keep the record's. Only the shipped network was
studied, so :func:`tir_env.perception.image_thresholds` adjusts its thresholds alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from tir_env.images import channel_max, channel_min, check_u8
from tir_env.noise_level import noise_level
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
#: :func:`tir_env.streaks.rain_streaks` from which a whole photo's streaks are clear; there,
#: where darkness reads under :data:`FAR_FROM_DARK` of its threshold, rain is read at
#: :data:`WHOLE_RAIN_SHARE` of its threshold (rule 0c609cc; docs/agents.md, "Rain read where
#: the photo is far from dark"). Read whole, the network missed rain on 422 of the 1,012
#: train photos' whole-photo rain episodes; this reads 141 of the 348 without darkness, 1 of
#: the 74 beside it (derained without the brightening first, they lost on val), and 1 of 460
#: episodes without rain (``python -m benchmarks.rain_rescue``).
WHOLE_RAIN_STREAKS_CLEAR = 0.45
WHOLE_RAIN_SHARE = 0.1
#: :func:`tir_env.noise_level.noise_level` range in which a whole photo perception reads as clean
#: reads as noisy (rule c1195e6; docs/agents.md, "A phone's noise, denoised gently"), set on
#: the train photos at 1024 px (``python -m benchmarks.noise_cue``): phone copies (sigma 8,
#: then JPEG 85) read 1.53-1.95, faint noise (sigma 5) 2.45-2.69, clean photos 0.07-0.47 but
#: three (1.54, 1.56 and a snowy forest's 4.43, whose grain no denoiser should touch).
WHOLE_NOISE_LEVEL = (1.0, 3.0)
#: The noise threshold that marks noise read from the flattest blocks (:func:`noise_by_level`).
NOISE_BY_LEVEL = 0.0
#: Share of darkness's threshold under which a photo is far from dark: the judge's floor
#: (:data:`agents.judge.FLOOR`), under which it does not probe darkness.
FAR_FROM_DARK = 0.3


def is_greyscale(image: ImageU8) -> bool:
    """Whether every pixel's R, G and B lie within :data:`GREY_TOLERANCE` levels of each other.

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
    """
    check_u8(image)
    spread = channel_max(image) - channel_min(image)  # uint8: max >= min, so no wrap
    return bool(spread.max(initial=0) <= GREY_TOLERANCE)


def adjusted(
    image: ImageU8, limits: dict[str, float], probs: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The shipped network's thresholds ``limits`` as ``image`` needs them (a new dict).

    On a greyscale image at least :data:`GREY_MIN_SIDE` on its shorter side, darkness needs
    :data:`GREY_DARK_THRESHOLD` at least. On an image at least :data:`WHOLE_MIN_SIDE` on its
    shorter side (a whole photo, not a crop), noise needs :data:`WHOLE_NOISE_THRESHOLD` at
    most, and rain is not read at all (an infinite threshold) where the image shows no rain
    streaks (:func:`tir_env.streaks.rain_streaks` under :data:`WHOLE_RAIN_STREAKS`). With the
    network's readings ``probs``, rain is read at :data:`WHOLE_RAIN_SHARE` of its threshold
    where the streaks are clear (:data:`WHOLE_RAIN_STREAKS_CLEAR` or more) and darkness reads
    under :data:`FAR_FROM_DARK` of its own. Where the readings find no type at these
    thresholds, noise is read (a threshold of :data:`NOISE_BY_LEVEL`) where the flattest
    blocks' level (:func:`tir_env.noise_level.noise_level`) lies in :data:`WHOLE_NOISE_LEVEL`;
    ``fixed`` denoises such a photo gently (:func:`noise_by_level`). A colour whole photo the
    photo-dark reader calls darkened (:func:`darkened_photo`, :mod:`tir_env.photo_dark`) reads
    darkness at the network's own reading.

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
    """
    check_u8(image)
    limits = dict(limits)
    # one look at every pixel of a large photo costs tenths of a second: take it once
    grey = min(image.shape[:2]) >= GREY_MIN_SIDE and "dark" in limits and is_greyscale(image)
    if grey:
        limits["dark"] = max(limits["dark"], GREY_DARK_THRESHOLD)
    if min(image.shape[:2]) < WHOLE_MIN_SIDE:
        return limits
    if "noise" in limits:
        limits["noise"] = min(limits["noise"], WHOLE_NOISE_THRESHOLD)
    if not grey and probs is not None and darkened_photo(image, probs, limits):
        limits["dark"] = probs["dark"]  # read as dark at the network's own reading
    if "rain" in limits:
        streaks = rain_streaks(image)
        if streaks < WHOLE_RAIN_STREAKS:
            limits["rain"] = math.inf
        elif streaks >= WHOLE_RAIN_STREAKS_CLEAR and far_from_dark(probs, limits):
            limits["rain"] = WHOLE_RAIN_SHARE * limits["rain"]
    if "noise" in limits and reads_clean(probs, limits):
        low, high = WHOLE_NOISE_LEVEL
        if low <= noise_level(image) <= high:
            limits["noise"] = NOISE_BY_LEVEL
    return limits


def darkened_photo(
    image: ImageU8, probs: Mapping[str, float] | None, limits: Mapping[str, float]
) -> bool:
    """Whether the photo-dark reader reads darkness that the network's threshold does not.

    Only on a colour whole photo (the caller checks the size and the colour: a grey one keeps
    :data:`GREY_DARK_THRESHOLD`), with the network's reading known, and only where the
    reader is in the learned-weights folder (:mod:`tir_env.photo_dark`). The caller then reads
    darkness at the network's own reading: it is present, the judge's ratio for it is 1, and
    the photo is neither far from dark (no rain rescue) nor read as clean (no noise from the
    flattest blocks).
    """
    from tir_env import photo_dark

    if probs is None or "dark" not in probs or "dark" not in limits or probs["dark"] <= 0.0:
        return False
    if probs["dark"] >= limits["dark"] or not photo_dark.available():
        return False
    return photo_dark.reads_darkened(image, probs["dark"])


def reads_clean(probs: Mapping[str, float] | None, limits: Mapping[str, float]) -> bool:
    """Whether ``probs`` reach none of ``limits`` (``None``: unknown, so not clean)."""
    if probs is None:
        return False
    return all(p < limits.get(t, math.inf) for t, p in probs.items())


def noise_by_level(limits: Mapping[str, float]) -> bool:
    """Whether ``limits`` (an image's thresholds, :func:`adjusted`) read noise from its flat blocks.

    Such noise is a phone's, far under AgenticIR's (sigma 20-50), and the photo may carry
    grain of its own: a denoiser set for the protocol's noise would flatten it.
    """
    return limits.get("noise") == NOISE_BY_LEVEL


def far_from_dark(probs: Mapping[str, float] | None, limits: Mapping[str, float]) -> bool:
    """Whether darkness reads under :data:`FAR_FROM_DARK` of its threshold (``None``: unknown)."""
    if probs is None or "dark" not in probs or "dark" not in limits:
        return False
    return probs["dark"] < FAR_FROM_DARK * limits["dark"]


__all__ = [
    "GREY_DARK_THRESHOLD",
    "GREY_MIN_SIDE",
    "GREY_TOLERANCE",
    "WHOLE_MIN_SIDE",
    "WHOLE_NOISE_LEVEL",
    "WHOLE_NOISE_THRESHOLD",
    "NOISE_BY_LEVEL",
    "FAR_FROM_DARK",
    "WHOLE_RAIN_SHARE",
    "WHOLE_RAIN_STREAKS",
    "WHOLE_RAIN_STREAKS_CLEAR",
    "adjusted",
    "darkened_photo",
    "far_from_dark",
    "noise_by_level",
    "reads_clean",
    "is_greyscale",
]
