"""Whether a whole photo was darkened, read from its brightness histogram (the photo-dark reader).

Perception reads darkness from 96 px tiles, where a darkened tile looks like a tile that is
dark by nature; on whole photos it read the protocol's gamma darkening (``restore_check``'s
dark copy) on 3 of 18 val photos. What a whole frame shows and a tile does not is the shape of
its brightness histogram: the protocol's maps clip the shadows to black (the shift), cap the
highlights far under white (the linear map) or press the mid-tones down while the highlights
stay (the gamma). This reader is boosted trees over that histogram (quantiles of V = max(R, G,
B), its mean, the black and white shares, the mean saturation) and perception's own darkness
reading of the photo, fitted on whole corpus train photos, clean, darkened and otherwise
degraded (``python -m benchmarks.train_photo_dark``). On a whole photo
(:func:`tir_env.photo_thresholds.adjusted`) a probability of :data:`THRESHOLD` or more reads
darkness where the network's threshold did not; crops keep the network's reading. The trees
load from the learned-weights folder (``photo_dark.safetensors``, shipped since rule 8108fa68
with the threshold 0.9 in its record, chosen on the val photos; the fit's own, 0.956, added
darkness to none of them); without the file nothing changes.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tir_env.images import resize_u8
from tir_env.types import ImageU8

#: File stem of the reader in the learned-weights folder.
WEIGHTS_NAME = "photo_dark"
#: Longest side the histogram is read at (a larger photo is downscaled first; the shares and
#: quantiles of a photo barely move with its size, and a camera's 6000 px would cost seconds).
READ_SIDE = 1024
#: Quantiles of V the reader reads.
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
#: Perception's darkness probability is clipped to this distance from 0 and 1 before the logit.
EPS = 1e-6
#: The reader's probability from which a whole photo reads as darkened. Set by the fit
#: (``train_photo_dark --false-alarms``) and saved in the weights' record; this is the value
#: a file without one is read with.
THRESHOLD = 0.5
#: The command that fits the reader (named in a refusal of a stale file).
REFIT = "python -m benchmarks.train_photo_dark"


def feature_names() -> list[str]:
    """The name of each feature, in the order :func:`features` returns them."""
    return [
        "perception dark logit",
        *(f"V q{q:g}" for q in QUANTILES),
        "V mean",
        "black share",
        "white share",
        "saturation mean",
    ]


def histogram_cues(image: ImageU8) -> np.ndarray:
    """The brightness histogram's cues of a uint8 HxWx3 photo (all but the first feature)."""
    h, w = image.shape[:2]
    if max(h, w) > READ_SIDE:
        scale = READ_SIDE / max(h, w)
        image = resize_u8(image, (max(1, round(h * scale)), max(1, round(w * scale))))
    x = image.astype(np.float32) / 255.0
    v, m = x.max(axis=2), x.min(axis=2)
    saturation = (v - m) / (v + 1e-3)
    return np.array(
        [
            *np.quantile(v, QUANTILES),
            float(v.mean()),
            float((v <= 0.005).mean()),
            float((v >= 0.995).mean()),
            float(saturation.mean()),
        ],
        dtype=np.float64,
    )


def features(image: ImageU8, dark_prob: float) -> np.ndarray:
    """The reader's row: perception's darkness logit, then :func:`histogram_cues`."""
    p = min(max(float(dark_prob), EPS), 1.0 - EPS)
    return np.concatenate([[math.log(p / (1.0 - p))], histogram_cues(image)])


def path() -> Path:
    """Where the reader loads from (the learned-weights folder)."""
    from tir_env.tools.learned.weights import weights_dir

    return weights_dir() / f"{WEIGHTS_NAME}.safetensors"


#: Set inside :func:`suspended`: the reader is not read (its trainer reads perception without it).
_SUSPENDED = threading.local()


def available() -> bool:
    """Whether the learned-weights folder holds the reader (and it is not :func:`suspended`)."""
    return not getattr(_SUSPENDED, "on", False) and path().is_file()


@contextmanager
def suspended() -> Iterator[None]:
    """Perception reads whole photos without the reader inside the block (this thread).

    Its trainer reads perception's own darkness reading, which must not depend on a reader
    already in the weights folder (a stale one would stop the refit that replaces it).
    """
    before = getattr(_SUSPENDED, "on", False)
    _SUSPENDED.on = True
    try:
        yield
    finally:
        _SUSPENDED.on = before


@functools.lru_cache(maxsize=4)
def _threshold(file: str) -> float:
    from tir_env.errors import CheckpointError

    record = Path(file).with_suffix(".json")
    try:
        value = (
            json.loads(record.read_text()).get("threshold", THRESHOLD)
            if record.is_file()
            else THRESHOLD
        )
        number = float(value)
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{record}: no readable threshold ({err}; refit: {REFIT})") from err
    if not 0.0 < number < 1.0:
        raise CheckpointError(f"{record}: threshold {value!r} is not in (0, 1) (refit: {REFIT})")
    return number


def threshold() -> float:
    """The probability from which the reader calls a photo darkened (its record's).

    Raises:
        CheckpointError: the record's threshold is not a probability in (0, 1).
    """
    return _threshold(str(path()))


def darkened(image: ImageU8, dark_prob: float) -> float:
    """The probability that whole photo ``image`` was darkened (``dark_prob``: perception's).

    Raises:
        WeightsNotFoundError: the learned-weights folder has no reader.
        CheckpointError: the file is not a tree ensemble, or reads other features.
    """
    from tir_env.quality_trees import ensemble_reading

    trees = ensemble_reading(path(), (len(feature_names()),), REFIT)
    logit = float(trees.predict(features(image, dark_prob)[None])[0])
    return 1.0 / (1.0 + math.exp(-logit))


def reads_darkened(image: ImageU8, dark_prob: float) -> bool:
    """Whether the reader is in the weights folder and calls whole photo ``image`` darkened."""
    return available() and darkened(image, dark_prob) >= threshold()


__all__ = [
    "QUANTILES",
    "READ_SIDE",
    "THRESHOLD",
    "WEIGHTS_NAME",
    "available",
    "darkened",
    "feature_names",
    "features",
    "histogram_cues",
    "path",
    "reads_darkened",
    "suspended",
    "threshold",
]
