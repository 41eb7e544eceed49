"""The defocus radius of a large image, read window by window where its centre shows none.

:func:`~tir_env.tools.classical.blur_estimation.estimate_disk_radius` fits the disk's
spectral rings on the centre 129 px of an image, the size of the suites' crops. On a whole
photo that centre may be sky or a wall, whose spectrum says nothing, and the defocus tools
then keep a blurred photo as it is: on five whole val photos at 512 px with the protocol's
defocus, the centre crop found no blur in three. Each 129 px window of such a photo gives
either the true radius or none (no window of them gave a wrong radius), and on 17 sharp photos
at 512 px under eight other conditions (clean, noise, JPEG, motion blur, haze, darkness, low
resolution, rain) no two windows ever agreed on a radius. So an image with at least two whole
windows takes the radius that :data:`MIN_AGREEING` or more of its windows agree on, and
otherwise the centre crop's estimate as before; an image smaller than two windows (the
suites' 128 px crops) is read exactly as before.

Those windows were read in floating point, as a tool's output is held. An episode's input is
rounded to 8 bits (as a photo file is), which fills the rings with noise: there no window finds
the radius either, and
on the ``tir restore`` path of five val photos the rule set before (32770a0) saw no episode
change, so :data:`ENABLED` is off (docs/tools.md, "The defocus radius of an 8-bit photo").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

from tir_env.tools.classical.disk_radius import estimate_disk_radii, estimate_disk_radius
from tir_env.types import ImageF32

#: Side of a window: the centre crop the estimator reads (mirrored to a 256-point FFT).
WINDOW = 129
#: Windows that must agree on a radius for it to stand against the centre crop's reading.
MIN_AGREEING = 2
#: Windows read at most (a grid's windows beyond it are left out, evenly).
MAX_WINDOWS = 64
#: Whether the defocus tools read large images window by window (``python -m
#: benchmarks.disk_windows`` measures them with it off and on).
ENABLED = False


def window_origins(height: int, width: int, size: int = WINDOW) -> list[tuple[int, int]]:
    """Top-left corners of a centred grid of whole ``size`` windows (none below two)."""
    rows, cols = height // size, width // size
    if rows * cols < 2:
        return []
    top, left = (height - rows * size) // 2, (width - cols * size) // 2
    grid = [(top + i * size, left + j * size) for i in range(rows) for j in range(cols)]
    step = max(1, -(-len(grid) // MAX_WINDOWS))
    return grid[::step]


def agreed_radius(window_radii: Sequence[float], centre: float) -> float:
    """The radius :data:`MIN_AGREEING` windows agree on (the most agreed, then the larger).

    ``centre``: the centre crop's estimate, kept where no radius has that many windows.
    """
    counts = Counter(r for r in window_radii if r > 0)
    if not counts:
        return centre
    radius, agreeing = max(counts.items(), key=lambda item: (item[1], item[0]))
    return radius if agreeing >= MIN_AGREEING else centre


def estimate_disk_radius_windows(image: ImageF32) -> float:
    """:func:`estimate_disk_radius`, read over the windows of an image of two or more."""
    centre = estimate_disk_radius(image)
    origins = window_origins(*image.shape[:2]) if ENABLED else []
    if not origins:
        return centre
    radii = [estimate_disk_radius(image[t : t + WINDOW, x : x + WINDOW]) for t, x in origins]
    return agreed_radius(radii, centre)


def estimate_disk_radii_windows_torch(
    batch: torch.Tensor, bands: Sequence[float] | None = None
) -> list[float]:
    """:func:`estimate_disk_radius_windows` of every image of a batch, in torch.

    ``bands``: the images' fitted bands for the centre crop's reading (each window's are fitted
    on the window).
    """
    centre = estimate_disk_radii(batch, bands)
    origins = window_origins(*batch.shape[-2:]) if ENABLED else []
    if not origins:
        return centre
    windows = torch.cat([batch[..., t : t + WINDOW, x : x + WINDOW] for t, x in origins])
    radii = estimate_disk_radii(windows)  # window-major: window k of image i at k*N + i
    n = batch.shape[0]
    return [agreed_radius(radii[i::n], centre[i]) for i in range(n)]
