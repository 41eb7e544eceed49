"""How much noise a photo's flattest parts carry: a check of perception's noise on whole photos.

Read whole, perception's network misses the mild noise a phone leaves (sigma 5-10, often then
saved as a JPEG): of the 18 val photos' ``restore_check --phone`` copies, 9 read under the
whole-photo noise threshold and stayed noisy. Noise is what a flat region has and a clean
photo's flat regions lack, so :func:`noise_level` reads it there: Immerkaer's estimator (the
absolute response to a mask that cancels planes and ramps, times ``sqrt(pi / 2) / 6``)
averaged over each 16 px block of the grey image, and the 10th percentile of the blocks:
texture makes the busy blocks read high, not the flattest tenth (``python -m
benchmarks.noise_cue``; docs/agents.md, "A phone's noise in the flattest blocks").
:func:`tir_env.photo_thresholds.adjusted` reads noise on a whole photo the network reads as
clean where the level lies in :data:`tir_env.photo_thresholds.WHOLE_NOISE_LEVEL`, and
:func:`agents.tuned.gentle_denoise` sets the denoiser's strength from it (rule c1195e6;
docs/agents.md, "A phone's noise, denoised gently").
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tir_env.images import check_u8
from tir_env.types import ImageU8

#: Side (px) of the blocks the estimate is averaged over.
BLOCK = 16
#: Percentile of the blocks' estimates taken: the photo's flattest parts.
PERCENTILE = 10.0
#: Immerkaer's mask: the difference of two Laplacians, zero on planes and ramps.
MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_SCALE = math.sqrt(math.pi / 2.0) / 6.0


def noise_level(image: ImageU8) -> float:
    """The noise (0-255 scale) of the grey image in its flattest tenth of 16 px blocks.

    Independent noise per channel reads a little under ``sigma / sqrt(3)`` on the grey image
    (0.88 of it on a flat image: the flattest tenth of the blocks' means lies under their
    mean), lower after a JPEG smooths it. 0.0 for an image smaller than one block.

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
    """
    check_u8(image)
    # The channels' mean as numpy's mean over them computes it ((R + G) + B, then / 3), from
    # the planes and in place: the same floats as ``mean(axis=2)``, ten times faster on a
    # 20 MP photo, whose fresh temporaries cost more than the arithmetic (1.0 s -> 0.09 s).
    grey = image[..., 0].astype(np.float32)
    grey += image[..., 1]
    grey += image[..., 2]
    grey /= np.float32(3.0)
    response = cv2.filter2D(grey, -1, MASK)
    np.abs(response, out=response)
    response = response[1:-1, 1:-1]  # the border reflects
    rows, cols = response.shape[0] // BLOCK, response.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        return 0.0
    blocks = response[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK)
    return float(np.percentile(blocks.mean(axis=(1, 3)), PERCENTILE) * _SCALE)


__all__ = ["BLOCK", "MASK", "PERCENTILE", "noise_level"]
