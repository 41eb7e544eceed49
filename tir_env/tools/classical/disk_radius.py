"""The defocus radius of an 8-bit image: fitted only where the image rises above its rounding.

The blind disk estimator (:func:`~tir_env.tools.classical.blur_estimation.estimate_disk_radius`)
fits the disk's vanishing rings over every frequency up to Nyquist. An image in floating point
(a tool's output) shows them down to any depth; an episode's input is rounded to 256 levels by
the env, as a saved file would be (``tir_env/episode.py``), and so is a photo from a file or a
published benchmark pair. The rounding's white noise fills every ring above the frequency where
the blurred image's power falls under it: there the fit sees noise, not the disk, and finds no
blur in most blurred 8-bit crops (docs/tools.md, "The defocus radius of an 8-bit photo"). An
8-bit image (every value on the 1/255 grid) is therefore fitted below the first band of
frequencies whose mean power is under :data:`NOISE_RATIO` times the rounding noise's, where the
first rings still show; an image off the grid is read as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from tir_env.tools.classical import blur_estimation as est

#: Variance of BT.601 luma's rounding error when each of R, G, B is rounded to 1/255.
LUMA_ROUNDING_VARIANCE = (0.299**2 + 0.587**2 + 0.114**2) / (12 * 255.0**2)
#: A band of frequencies is fitted while its mean power exceeds this many times the rounding's.
NOISE_RATIO = 3.0
#: The fitted band never narrows below this (cycles per pixel): the largest disk's first ring.
MIN_BAND = 0.06
#: Annuli the band is chosen from, up to Nyquist.
ANNULI = 40
#: A value within this of the 1/255 grid counts as rounded (float32 holds k/255 to ~1e-7).
GRID_TOLERANCE = 1e-5
#: Environment variable that turns the 8-bit fit on (``1``) or off (anything else); read at
#: every call, so an A/B worker can set it (``benchmarks.ab_test --env-b``,
#: ``benchmarks.disk_windows --toggle rounding``).
ENV = "TIR_DISK_8BIT_FIT"
#: The fit's state when :data:`ENV` is unset.
DEFAULT = "0"


def enabled() -> bool:
    """Whether 8-bit images are fitted below their noise (:data:`ENV`, else :data:`DEFAULT`)."""
    return os.environ.get(ENV, DEFAULT) == "1"


def rounded_to_8_bits(batch: torch.Tensor) -> list[bool]:
    """Whether each image's every value lies on the 1/255 grid (an 8-bit photo's)."""
    scaled = batch.detach().to(torch.float64) * 255.0
    off = (scaled - scaled.round()).abs().flatten(1).amax(dim=1)
    return (off < GRID_TOLERANCE * 255.0).tolist()


def noise_band(power: torch.Tensor, shape: tuple[int, int]) -> float:
    """The band to fit for one image's mirrored power spectrum (its rfft2 bins).

    The lower edge of the first annulus whose mean power is under :data:`NOISE_RATIO` times
    the rounding noise's per bin, at least :data:`MIN_BAND`; Nyquist where none is.
    """
    radii = torch.from_numpy(est._radii(shape)).to(power.device)
    noise = shape[0] * shape[1] * LUMA_ROUNDING_VARIANCE
    edges = np.linspace(0.0, est.FULL_BAND, ANNULI + 1)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        ring = (radii >= low) & (radii < high)
        if ring.any() and float(power[ring].mean()) < NOISE_RATIO * noise:
            return max(float(low), MIN_BAND)
    return est.FULL_BAND


def estimate_disk_radii(batch: torch.Tensor, bands: Sequence[float] | None = None) -> list[float]:
    """The disk radius of every image (0.0: no blur), an 8-bit one fitted below its noise.

    ``bands``: the images' :func:`~tir_env.tools.classical.blur_estimation.fitted_bands_torch`
    where the caller has them (an image upsampled x4 is fitted below that band either way).
    """
    radii = est.estimate_disk_radii_torch(batch, bands)
    eight_bit = [i for i, r in enumerate(rounded_to_8_bits(batch)) if r] if enabled() else []
    if not eight_bit:
        return radii
    if bands is None:
        bands = est.fitted_bands_torch(batch) if est.DISK_X4_BAND else None
    power, shape = est._power_torch(batch[eight_bit], symmetric=True)
    for row, i in enumerate(eight_bit):
        band = noise_band(power[row], shape)
        if bands is not None:
            band = min(band, bands[i])
        radii[i] = _fitted_radius(power[row : row + 1], shape, band)
    return radii


def _fitted_radius(power: torch.Tensor, shape: tuple[int, int], band: float) -> float:
    """The candidate disk that beats no blur below ``band`` (0.0 where none does)."""
    log_power = est._log_power_at(power, shape, band)
    terms = est._disk_terms(shape, str(log_power.device), band)
    best, j = est._misfits_torch(log_power, terms, shape, band).min(dim=1)
    fits = bool(
        best[0] < est.NO_BLUR_MARGIN["disk"] * est._no_blur_misfits(log_power, shape, band)[0]
    )
    return est._DISK_RADII[int(j[0])] if fits else 0.0


def estimate_disk_radius(image: np.ndarray) -> float:
    """:func:`estimate_disk_radii` of one HxWx3 float image (the tools' numpy reference)."""
    batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    if not (enabled() and rounded_to_8_bits(batch)[0]):
        return est.estimate_disk_radius(image)
    return estimate_disk_radii(batch.to(torch.float32))[0]
