"""Blind blur estimation for the deblurring tools: motion kernels and disk radii.

Fits the degradations' own kernels (:func:`tir_env.dsp.motion_kernel`,
:func:`tir_env.dsp.disk_kernel`) to an image's power spectrum, per image in numpy and batched in
torch (the same choices).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft as _fft
import torch

from tir_env.dsp import (
    disk_kernel,
    motion_kernel,
    otf,
    periodic_extension,
    periodic_extension_torch,
)
from tir_env.tools.classical._common import (
    centre_crop,
    luma,
    luma_torch,
)
from tir_env.types import ImageF32


@dataclass(frozen=True)
class _Spectrum:
    """An image's log power spectrum, prepared for fitting blur kernels to it."""

    log_power: np.ndarray  # log |Y(f)|^2 at the fitted frequencies
    mask: np.ndarray  # which rfft2 bins are fitted
    design: np.ndarray  # [1, log|f|] at those bins: the natural-image power law
    pinv: np.ndarray  # its pseudo-inverse
    shape: tuple[int, int]  # FFT size


#: Added to the power spectrum before its log (luma in [0, 1], a 128 px crop). An image
#: upsampled x4 has bins with almost no power beyond its former Nyquist frequency (a
#: bicubic kernel's nulls); at this floor their logs are float rounding, and they can choose
#: the kernel (a 1e-7 change of the input turned a motion estimate from -5 to 85 degrees).
#: ``python -m benchmarks.blind_floor`` measures other floors on the same crops: 1e-8 helps
#: the motion estimators after SR (three sets of fresh val crops: +0.35, +0.18 and +0.18 dB,
#: paired t 2.27, 1.24 and 1.80 over 80, 80 and 240 seeds) and changes nothing without SR,
#: but missed all three pre-registered rules (docs/tools.md), so this floor stays.
POWER_FLOOR = 1e-12


#: Every frequency up to Nyquist is fitted (cycles per pixel).
FULL_BAND = 0.5
#: The fitted band of an image upsampled x4 (the toolbox's and the protocol's factor): its
#: former Nyquist frequency, 1/8 cycle per pixel, and a margin. Above it such an image holds
#: the upsampler's response, not the blur: fitted there, the motion estimators chose kernels
#: that deconvolved a grid into the image (40 val crops of motion blur + low resolution after
#: ``back_projection_x4``: 32.28 dB against 32.86 for SR alone; fitted below it 33.45).
X4_BAND = 0.14
#: An image counts as upsampled x4 when log10 of its median power at 0.2-0.45 cycles per
#: pixel over that at 0.06-0.09 is below this. Val crops upsampled x4: -7.0 to -4.0
#: (median -6.3); degraded crops without SR (blur, haze, darkness): -4.3 and up.
UPSAMPLED_LOG_RATIO = -5.0
_HIGH, _LOW = (0.2, 0.45), (0.06, 0.09)
#: Whether the disk estimator and the defocus tools treat an image upsampled x4 as the
#: motion ones do: fit below :data:`X4_BAND`, keep the input above it
#: (``benchmarks.blind_floor --compare disk`` measures it off and on).
DISK_X4_BAND = True


def _radii(shape: tuple[int, int]) -> np.ndarray:
    """``|f|`` of every rfft2 bin of ``shape``."""
    fy = _fft.fftfreq(shape[0])[:, None]
    fx = _fft.rfftfreq(shape[1])[None, :]
    return np.sqrt(fx**2 + fy**2)


def _band_masks(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The rfft2 bins of ``shape`` that :func:`_fitted_band` compares: high, low."""
    rho = _radii(shape)
    return (rho >= _HIGH[0]) & (rho < _HIGH[1]), (rho >= _LOW[0]) & (rho < _LOW[1])


def _is_upsampled(high: float, low: float) -> bool:
    """The test of :data:`UPSAMPLED_LOG_RATIO` on the two bands' median powers."""
    return bool(high < low * 10.0**UPSAMPLED_LOG_RATIO)


def _fitted_band(power: np.ndarray, shape: tuple[int, int]) -> float:
    """:data:`X4_BAND` when a windowed power spectrum is empty above an x4 band, else full."""
    high, low = _band_masks(shape)
    if not high.any() or not low.any():
        return FULL_BAND
    upsampled = _is_upsampled(float(np.median(power[high])), float(np.median(power[low])))
    return X4_BAND if upsampled else FULL_BAND


def _windowed_luma(image: ImageF32) -> np.ndarray:
    """The Hann-windowed, mean-removed luma of a centre crop of at most 128 px (float64)."""
    y = luma(centre_crop(image, 128)).astype(np.float64)
    return (y - y.mean()) * np.outer(np.hanning(y.shape[0]), np.hanning(y.shape[1]))


def fitted_band(image: ImageF32) -> float:
    """The band the motion estimator fits for ``image``: :data:`X4_BAND` if upsampled x4."""
    y = _windowed_luma(image)
    return _fitted_band(np.abs(_fft.rfft2(y)) ** 2, y.shape)


def fitted_bands_torch(batch: torch.Tensor) -> list[float]:
    """:func:`fitted_band` of every image of a batch."""
    return _fitted_bands_torch(*_power_torch(batch, symmetric=False))


def _spectrum(image: ImageF32, symmetric: bool, detect_band: bool = False) -> _Spectrum:
    """Log power spectrum of the luma of a centre crop of at most 128 pixels a side.

    ``symmetric`` uses :func:`periodic_extension` (no edge leakage, but it mirrors the
    image, so only blur kernels symmetric under flips can be told apart); otherwise a Hann
    window tapers the edges. Bins on the two frequency axes, where the window's leakage
    lies, and the DC bin are left out. (A 129-pixel crop mirrors to a fast 256-point FFT.)
    With ``detect_band``, an image upsampled x4 is fitted below :data:`X4_BAND` only.
    """
    if symmetric:
        y = luma(centre_crop(image, 129)).astype(np.float64)
        y = periodic_extension(y[..., None], 1)[..., 0]
    else:
        y = _windowed_luma(image)
    power = np.abs(_fft.rfft2(y)) ** 2
    band = FULL_BAND
    if detect_band:  # judged on the windowed spectrum, also for a mirrored fit
        band = fitted_band(image) if symmetric else _fitted_band(power, y.shape)
    mask, _ = _fit_frame(y.shape, band)
    rho = _radii(y.shape)
    design = np.stack([np.ones(int(mask.sum())), np.log(rho[mask])], axis=1)
    log_power = np.log(power[mask] + POWER_FLOOR)
    return _Spectrum(log_power, mask, design, np.linalg.pinv(design), y.shape)


def _kernel_misfit(spectrum: _Spectrum, kernel: np.ndarray) -> float:
    """How badly ``kernel`` explains a blurred image's power spectrum (lower is better).

    Model: ``|Y(f)|^2 = c |f|^(-b) (|K(f)|^2 + eps)``, a power-law natural image (Field,
    JOSA A 1987) through the blur plus a noise floor ``eps``. The misfit is the mean squared
    residual of ``log |Y|^2 - log(|K|^2 + eps)`` after the best ``log c - b log|f|`` is
    removed, minimised over ``eps`` in {1e-4, 1e-3, 1e-2}. A kernel's zeros must line up
    with the dips of the spectrum, which picks size and direction sharply.
    """
    if spectrum.mask.sum() < 16:  # too few frequencies to tell kernels apart
        return 0.0
    gain = np.abs(otf(kernel, spectrum.shape)[spectrum.mask]) ** 2
    best = math.inf
    for eps in (1e-4, 1e-3, 1e-2):
        target = spectrum.log_power - np.log(gain + eps)
        residual = target - spectrum.design @ (spectrum.pinv @ target)
        best = min(best, float(np.mean(residual**2)))
    return best


#: The "no blur" kernel: blind estimators return it when no candidate beats it.
IDENTITY_KERNEL = np.ones((1, 1))
IDENTITY_KERNEL.flags.writeable = False  # tools test "no blur" by identity (``is``)
#: How much better than no blur (misfit ratio) a kernel must explain the spectrum, per
#: estimator. Measured on test crops (128 and 64 px): blurred crops' best disks reach
#: 0.65-0.82 of the no-blur misfit, sharp crops' best disks 0.996-1.03: a clean split. Motion
#: trails overlap: blurred 0.41-0.94, sharp 0.46-1.49 (the search has 100+ candidates to
#: overfit with), so its margin keeps every blurred crop and rejects only the clearest sharp ones.
NO_BLUR_MARGIN = {"disk": 0.85, "motion": 0.97}


def _beats_no_blur(spectrum: _Spectrum, misfit: float, margin: float) -> bool:
    """Whether a kernel with this misfit explains the spectrum clearly better than no blur.

    Without this test a blind estimator always finds *some* kernel, and deconvolving a sharp
    image with it destroys it (sharp 128 px crops fell to 9-19 dB PSNR from their input).
    """
    return misfit < margin * _kernel_misfit(spectrum, IDENTITY_KERNEL)


#: Candidate (radius, sigma) of blind motion deblurring: imagecorruptions' three severities,
#: (10, 3), (15, 5), (15, 8), and shapes in between.
_MOTION_SHAPES = ((6, 2.0), (10, 3.0), (12, 4.0), (15, 5.0), (15, 6.5), (15, 8.0))


def estimate_motion_kernel(image: ImageF32) -> np.ndarray:
    """Blind estimate of a linear motion kernel (:func:`motion_kernel`) from the spectrum.

    Every shape of :data:`_MOTION_SHAPES` at every 5 degrees in [-90, 90) is scored by
    :func:`_kernel_misfit` on the Hann-windowed spectrum; the angle is then refined to
    1 degree and the shape chosen again. The spectrum cannot tell a trail from its mirror
    image, so the angle range fixes the trail to point right, as the ``motion_blur``
    degradation draws it. Returns :data:`IDENTITY_KERNEL` (no blur) when the best trail does
    not beat it by :data:`NO_BLUR_MARGIN`. An image upsampled x4 is fitted below
    :data:`X4_BAND` only (:func:`_fitted_band`).
    """
    spectrum = _spectrum(image, symmetric=False, detect_band=True)

    def best(candidates: list[tuple[int, float, float]]) -> tuple[tuple[int, float, float], float]:
        # candidates are motion_kernel's (radius, sigma, angle)
        scores = [_kernel_misfit(spectrum, motion_kernel(*c)) for c in candidates]
        i = int(np.argmin(scores))
        return candidates[i], scores[i]

    (radius, sigma, angle), _ = best(
        [(r, s, a) for a in range(-90, 90, 5) for r, s in _MOTION_SHAPES]
    )
    (radius, sigma, angle), _ = best([(radius, sigma, angle + d) for d in range(-4, 5)])
    shape, misfit = best([(r, s, angle) for r, s in _MOTION_SHAPES])
    fits = _beats_no_blur(spectrum, misfit, NO_BLUR_MARGIN["motion"])
    return motion_kernel(*shape) if fits else IDENTITY_KERNEL


_DISK_RADII = tuple(float(r) for r in np.arange(1.0, 8.01, 0.5))


def _disk_psf(radius: float) -> np.ndarray:
    """:func:`~tir_env.dsp.disk_kernel` (float64) renormalised to sum 1 after its smoothing.

    A high-SNR Wiener filter inverts the kernel's gain at frequency 0 too, so the rounding
    left by the smoothing would shift the image's brightness.
    """
    kernel = disk_kernel(radius)
    return kernel / kernel.sum()


def estimate_disk_radius(image: ImageF32) -> float:
    """Blind estimate of a defocus disk's radius: the best :func:`_kernel_misfit`.

    The disk is symmetric, so the mirror-extended spectrum (no edge leakage) is used; the
    rings where the disk's transfer function vanishes pin the radius down. Returns 0.0 (no
    blur) when no disk explains the spectrum better than none. With :data:`DISK_X4_BAND`,
    an image upsampled x4 is fitted below :data:`X4_BAND` only.
    """
    spectrum = _spectrum(image, symmetric=True, detect_band=DISK_X4_BAND)
    scores = [_kernel_misfit(spectrum, _disk_psf(r)) for r in _DISK_RADII]
    best = int(np.argmin(scores))
    fits = _beats_no_blur(spectrum, scores[best], NO_BLUR_MARGIN["disk"])
    return _DISK_RADII[best] if fits else 0.0


# ------------------------------------------------- batched torch blind estimation


@functools.lru_cache(maxsize=16)
def _fit_frame(shape: tuple[int, int], band: float = FULL_BAND) -> tuple[np.ndarray, np.ndarray]:
    """The fitted rfft2 bins of :func:`_spectrum` on ``shape``, and a basis of the design.

    Bins below ``band`` cycles per pixel. The basis is an orthonormal M x 2 matrix ``Q``
    spanning the power-law design ``[1, log|f|]`` at those bins, so ``Q Q^T`` is
    :func:`_kernel_misfit`'s ``design @ pinv``.
    """
    fy = _fft.fftfreq(shape[0])[:, None]
    fx = _fft.rfftfreq(shape[1])[None, :]
    rho = _radii(shape)
    mask = (rho < band) & (np.abs(fx) > 1.5 / shape[1]) & (np.abs(fy) > 1.5 / shape[0])
    design = np.stack([np.ones(int(mask.sum())), np.log(rho[mask])], axis=1)
    basis = np.linalg.qr(design)[0] if len(design) >= 2 else np.zeros((len(design), 2))
    return mask, basis


def _power_torch(batch: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, tuple[int, int]]:
    """:func:`_spectrum`'s power spectrum of every image (N x H x W', float64), FFT size."""
    size = 129 if symmetric else 128
    h, w = batch.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = batch[..., top : top + size, left : left + size]
    y = luma_torch(crop).to(torch.float64)
    if symmetric:
        y = periodic_extension_torch(y, 1)
    else:
        window = torch.outer(
            torch.hann_window(y.shape[-2], periodic=False, dtype=torch.float64),
            torch.hann_window(y.shape[-1], periodic=False, dtype=torch.float64),
        ).to(y.device)
        y = (y - y.mean(dim=(-2, -1), keepdim=True)) * window
    return torch.fft.rfft2(y[:, 0]).abs() ** 2, (y.shape[-2], y.shape[-1])


def _log_power_at(power: torch.Tensor, shape: tuple[int, int], band: float) -> torch.Tensor:
    """Log power (plus :data:`POWER_FLOOR`) at the bins fitted below ``band``: N x M."""
    mask = torch.from_numpy(_fit_frame(shape, band)[0]).to(power.device)
    return torch.log(power[:, mask] + POWER_FLOOR)


def _log_power_torch(batch: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, tuple[int, int]]:
    """:func:`_spectrum`'s log power of every image (N x M, float64) and the FFT size."""
    power, shape = _power_torch(batch, symmetric)
    return _log_power_at(power, shape, FULL_BAND), shape


def _fitted_bands_torch(power: torch.Tensor, shape: tuple[int, int]) -> list[float]:
    """:func:`_fitted_band` of every image's power spectrum (N x H x W')."""
    high, low = (torch.from_numpy(m).to(power.device) for m in _band_masks(shape))
    if not bool(high.any()) or not bool(low.any()):
        return [FULL_BAND] * power.shape[0]
    # quantile(0.5) interpolates between the middle values as numpy's median does
    highs = torch.quantile(power[:, high], 0.5, dim=-1).tolist()
    lows = torch.quantile(power[:, low], 0.5, dim=-1).tolist()
    pairs = zip(highs, lows, strict=True)
    return [X4_BAND if _is_upsampled(h, lo) else FULL_BAND for h, lo in pairs]


def _kernel_gains(
    kernels: Sequence[np.ndarray], shape: tuple[int, int], band: float = FULL_BAND
) -> torch.Tensor:
    """``|K(f)|^2`` of each kernel at the fitted bins of ``shape``: K x M, float64."""
    mask = _fit_frame(shape, band)[0]
    return torch.from_numpy(np.stack([np.abs(otf(k, shape)[mask]) ** 2 for k in kernels]))


@functools.lru_cache(maxsize=4096)
def _motion_gain(
    candidate: tuple[int, float, float], shape: tuple[int, int], band: float = FULL_BAND
) -> np.ndarray:
    """``|K(f)|^2`` of one motion candidate ``(radius, sigma, angle)`` at the fitted bins.

    Cached: the refinement stages draw their candidates from a finite set (whole-degree
    angles, :data:`_MOTION_SHAPES`), so an image's candidates were mostly seen before.
    """
    gain = np.abs(otf(motion_kernel(*candidate), shape)[_fit_frame(shape, band)[0]]) ** 2
    gain.flags.writeable = False  # shared by every later call
    return gain


#: The ``eps`` floors of the power-law fit (:func:`_kernel_misfit`), each tried.
_FIT_EPS = (1e-4, 1e-3, 1e-2)
#: Per ``eps``: ``b = log(gain + eps)``, ``Q^T b`` and ``|b|^2`` of a set of candidates.
GainTerms = tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]


def _gain_terms(gains: torch.Tensor, shape: tuple[int, int], band: float = FULL_BAND) -> GainTerms:
    """What :func:`_misfits_torch` needs of the candidates' gains (K x M or N x K x M)."""
    basis = torch.from_numpy(_fit_frame(shape, band)[1]).to(gains.device)
    terms = []
    for eps in _FIT_EPS:
        b = torch.log(gains + eps)
        terms.append((b, b @ basis, (b * b).sum(-1)))
    return tuple(terms)


def _misfits_torch(
    log_power: torch.Tensor,
    gains: torch.Tensor | GainTerms,
    shape: tuple[int, int],
    band: float = FULL_BAND,
) -> torch.Tensor:
    """:func:`_kernel_misfit` of every image against every candidate kernel: N x K.

    ``gains`` is K x M (candidates shared by all images) or N x K x M (one set per image),
    or its :func:`_gain_terms` (a fixed candidate grid's, computed once per size).
    With ``t = a - b`` (log power minus ``log(gain + eps)``) the residual of the power-law
    fit is ``|t|^2 - |Q^T t|^2``; expanding ``|a - b|^2`` turns the N x K x M difference
    into matrix products.
    """
    n, m = log_power.shape
    device = log_power.device
    if isinstance(gains, torch.Tensor):
        gains = _gain_terms(gains.to(device), shape, band)
    k = gains[0][0].shape[-2]
    if m < 16:  # too few frequencies to tell kernels apart (as _kernel_misfit)
        return torch.zeros(n, k, dtype=torch.float64, device=device)
    basis = torch.from_numpy(_fit_frame(shape, band)[1]).to(device)
    a, qa = log_power, log_power @ basis  # N x M, N x 2
    best = torch.full((n, k), math.inf, dtype=torch.float64, device=device)
    for b, qb, bb in gains:
        cross = a @ b.T if b.ndim == 2 else torch.einsum("nm,nkm->nk", a, b)
        total = (a * a).sum(-1, keepdim=True) - 2 * cross + bb
        explained = ((qa[:, None, :] - qb) ** 2).sum(-1)
        best = torch.minimum(best, (total - explained) / m)
    return best


def _no_blur_misfits(
    log_power: torch.Tensor, shape: tuple[int, int], band: float = FULL_BAND
) -> torch.Tensor:
    """Misfit of :data:`IDENTITY_KERNEL` (flat gain 1) for every image: (N,)."""
    ones = torch.ones(1, log_power.shape[1], dtype=torch.float64)
    return _misfits_torch(log_power, ones, shape, band)[:, 0]


#: Candidates of the coarse motion search: (radius, sigma, angle), every 5 degrees.
_MOTION_GRID = tuple((r, s, a) for a in range(-90, 90, 5) for r, s in _MOTION_SHAPES)


@functools.lru_cache(maxsize=8)
def _motion_grid_terms(shape: tuple[int, int], device: str, band: float = FULL_BAND) -> GainTerms:
    """:func:`_gain_terms` of the coarse motion grid (the same for every image of a size)."""
    gains = _kernel_gains([motion_kernel(*c) for c in _MOTION_GRID], shape, band)
    return _gain_terms(gains.to(device), shape, band)


def _best_per_image(
    log_power: torch.Tensor,
    shape: tuple[int, int],
    candidates: list[list[tuple[int, float, float]]],
    band: float = FULL_BAND,
) -> tuple[list[tuple[int, float, float]], torch.Tensor]:
    """Best motion candidate of each image among its own list, and its misfit."""
    gains = torch.from_numpy(
        np.stack([[_motion_gain(c, shape, band) for c in cs] for cs in candidates])
    )
    misfit = _misfits_torch(log_power, gains, shape, band)
    i = misfit.argmin(dim=1)  # first of equal minima, as np.argmin
    best = [cs[j] for cs, j in zip(candidates, i.tolist(), strict=True)]
    return best, misfit.gather(1, i[:, None])[:, 0]


def estimate_motion_kernels_torch(batch: torch.Tensor) -> list[np.ndarray]:
    """:func:`estimate_motion_kernel` of every image of a batch (see :func:`motion_estimates`)."""
    return motion_estimates(batch)[0]


def motion_estimates(batch: torch.Tensor) -> tuple[list[np.ndarray], list[float]]:
    """:func:`estimate_motion_kernel` of every image of a batch, in torch (any device).

    The same three-stage search and the same no-blur test; the coarse grid's transfer
    functions are computed once per image size (and fitted band), and each image's misfits
    against all candidates are a few matrix products. Images upsampled x4 are fitted below
    :data:`X4_BAND` (:func:`_fitted_band`), the others on the full band. Returns one kernel
    per image, the :data:`IDENTITY_KERNEL` object where none beats no blur, and each image's
    fitted band (:func:`fitted_bands_torch`, which the tools reuse).
    """
    power, shape = _power_torch(batch, symmetric=False)
    bands = _fitted_bands_torch(power, shape)
    kernels: list[np.ndarray] = [IDENTITY_KERNEL] * len(bands)
    for band in sorted(set(bands)):
        rows = [i for i, b in enumerate(bands) if b == band]
        log_power = _log_power_at(power[rows], shape, band)
        for i, kernel in zip(rows, _motion_kernels_at(log_power, shape, band), strict=True):
            kernels[i] = kernel
    return kernels, bands


def _motion_kernels_at(
    log_power: torch.Tensor, shape: tuple[int, int], band: float
) -> list[np.ndarray]:
    """:func:`estimate_motion_kernels_torch`'s search for images fitted below ``band``."""
    grid = _motion_grid_terms(shape, str(log_power.device), band)
    coarse = _misfits_torch(log_power, grid, shape, band).argmin(dim=1)
    first = [_MOTION_GRID[j] for j in coarse.tolist()]
    refine = [[(r, s, a + d) for d in range(-4, 5)] for r, s, a in first]
    second, _ = _best_per_image(log_power, shape, refine, band)
    shapes = [[(r, s, a) for r, s in _MOTION_SHAPES] for _, _, a in second]
    third, misfit = _best_per_image(log_power, shape, shapes, band)
    fits = misfit < NO_BLUR_MARGIN["motion"] * _no_blur_misfits(log_power, shape, band)
    return [
        motion_kernel(*c) if f else IDENTITY_KERNEL
        for c, f in zip(third, fits.tolist(), strict=True)
    ]


@functools.lru_cache(maxsize=8)
def _disk_terms(shape: tuple[int, int], device: str, band: float = FULL_BAND) -> GainTerms:
    """:func:`_gain_terms` of the candidate disks of :data:`_DISK_RADII`."""
    gains = _kernel_gains([_disk_psf(r) for r in _DISK_RADII], shape, band)
    return _gain_terms(gains.to(device), shape, band)


def estimate_disk_radii_torch(
    batch: torch.Tensor, bands: Sequence[float] | None = None
) -> list[float]:
    """:func:`estimate_disk_radius` of every image of a batch, in torch (0.0: no blur).

    ``bands``: the images' :func:`fitted_bands_torch`, where the caller has them already.
    """
    power, shape = _power_torch(batch, symmetric=True)
    if not DISK_X4_BAND:
        bands = [FULL_BAND] * len(batch)
    elif bands is None:
        bands = fitted_bands_torch(batch)
    radii = [0.0] * len(bands)
    for band in sorted(set(bands)):
        rows = [i for i, b in enumerate(bands) if b == band]
        log_power = _log_power_at(power[rows], shape, band)
        terms = _disk_terms(shape, str(log_power.device), band)
        best, j = _misfits_torch(log_power, terms, shape, band).min(dim=1)
        fits = best < NO_BLUR_MARGIN["disk"] * _no_blur_misfits(log_power, shape, band)
        for i, k, f in zip(rows, j.tolist(), fits.tolist(), strict=True):
            radii[i] = _DISK_RADII[k] if f else 0.0
    return radii
