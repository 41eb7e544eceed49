"""Motion and defocus deblurring: blind kernel estimation, Wiener, Richardson-Lucy, unsharp.

The kernels (:func:`tir_env.dsp.motion_kernel`, :func:`tir_env.dsp.disk_kernel`) are the
degradations' own; the blind estimators fit them to the power spectrum of the image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from tir_env.dsp import (
    gaussian_blur_planes,
    gaussian_blur_torch,
    motion_kernel,
    per_sample,
    periodic_extension,
    periodic_extension_torch,
    richardson_lucy,
    richardson_lucy_torch,
    wiener_deconvolve,
    wiener_deconvolve_torch,
)
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical import blur_estimation
from tir_env.tools.classical._common import (
    PerImageTool,
    unsharp,
)
from tir_env.tools.classical.blur_estimation import (
    IDENTITY_KERNEL,
    X4_BAND,
    _disk_psf,
    _radii,
    estimate_motion_kernel,
    fitted_band,
    fitted_bands_torch,
    motion_estimates,
)
from tir_env.tools.classical.disk_windows import (
    estimate_disk_radii_windows_torch,
    estimate_disk_radius_windows,
)
from tir_env.types import ImageF32, Param


@register_tool
class MotionWiener(PerImageTool):
    """Wiener deconvolution with a given linear motion kernel."""

    # angle, sigma and radius shape the kernel: separate calls. One kernel per image inside
    # one batched FFT is exact (tests) but measured slower on a CPU (0.81-1.03x, mixed
    # parameters at 64 px, 16 images): the per-image OTFs cost what the separate calls do
    batch_params = frozenset({"snr_db"})
    info = ToolInfo(
        name="motion_wiener",
        task="motion_deblurring",
        params=spec(
            angle=Param(-90.0, 90.0, 0.0, "motion direction in degrees (+ = trailing downwards)"),
            sigma=Param(1.0, 10.0, 5.0, "Gaussian spread of the motion along the line, in pixels"),
            radius=Param(2, 20, 15, "trail length: 2 * radius + 1 taps", integer=True),
            snr_db=Param(5.0, 50.0, 30.0, "assumed signal-to-noise ratio; lower = smoother"),
        ),
        cost_hint=15.0,
        description="Wiener deconvolution of a known one-sided Gaussian-weighted motion line.",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:func:`~tir_env.dsp.wiener_deconvolve_torch` with :func:`motion_kernel` (batched)."""
        kernel = motion_kernel(int(params["radius"]), params["sigma"], params["angle"])
        return wiener_deconvolve_torch(batch, [kernel], params["snr_db"])

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test)."""
        kernel = motion_kernel(int(params["radius"]), params["sigma"], params["angle"])
        return wiener_deconvolve(image, kernel, params["snr_db"])


@register_tool
class BlindMotionWiener(PerImageTool):
    """Wiener deconvolution with a motion kernel estimated from the image (input kept if none)."""

    batch_params = frozenset({"snr_db"})
    info = ToolInfo(
        name="motion_wiener_blind",
        preferred=True,  # the fixed and oracle agents' tool for its task
        task="motion_deblurring",
        params=spec(
            snr_db=Param(5.0, 50.0, 30.0, "assumed signal-to-noise ratio; lower = smoother"),
        ),
        cost_hint=80.0,
        description="Estimates the motion direction and extent, then Wiener-deconvolves.",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Batched :meth:`restore`: one kernel estimate and one Wiener filter per image.

        ``snr_db`` may also be a per-image ``(N,)`` tensor.
        """
        snr = params["snr_db"]
        kernels, bands = motion_estimates(batch)
        out = _deblur_where_blurred(
            batch,
            _blur_or_none(kernels),
            lambda x, kernels, idx: wiener_deconvolve_torch(x, kernels, _subset(snr, idx)),
        )
        return _keep_input_above_band(batch, out, bands)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`wiener_deconvolve` with :func:`estimate_motion_kernel` (per-image reference)."""
        kernel = estimate_motion_kernel(image)
        if kernel is IDENTITY_KERNEL:
            return image.copy()
        return _keep_image_above_band(image, wiener_deconvolve(image, kernel, params["snr_db"]))


@register_tool
class BlindMotionRL(PerImageTool):
    """Richardson-Lucy deconvolution with an estimated motion kernel (input kept if none)."""

    cpu_per_image = "Richardson-Lucy"  # richardson_lucy_torch: OpenCV on a CPU
    batch_params = frozenset({"iterations"})
    info = ToolInfo(
        name="motion_rl_blind",
        task="motion_deblurring",
        params=spec(
            iterations=Param(1, 100, 30, "Richardson-Lucy iterations", integer=True),
        ),
        cost_hint=120.0,
        description="Estimates the motion kernel, then Richardson-Lucy deconvolution.",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Batched :meth:`restore` (``iterations`` may also be a per-image ``(N,)`` tensor)."""
        iterations = params["iterations"]
        kernels, bands = motion_estimates(batch)
        out = _deblur_where_blurred(
            batch,
            _blur_or_none(kernels),
            lambda x, kernels, idx: richardson_lucy_torch(x, kernels, _subset(iterations, idx)),
        )
        return _keep_input_above_band(batch, out, bands)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`richardson_lucy` with :func:`estimate_motion_kernel` (per-image reference)."""
        kernel = estimate_motion_kernel(image)
        if kernel is IDENTITY_KERNEL:
            return image.copy()
        restored = richardson_lucy(image, kernel, int(params["iterations"]))
        return _keep_image_above_band(image, restored)


#: Candidate disk radii of blind defocus deblurring, in pixels.
def _subset(value: float | torch.Tensor, index: list[int]) -> float | torch.Tensor:
    """A scalar parameter as is, a per-image ``(N,)`` one restricted to ``index``."""
    if isinstance(value, torch.Tensor) and value.numel() > 1:
        return value[index]
    return value


#: Whether the blind motion tools keep an upsampled image's own content above
#: :data:`~tir_env.tools.classical.blur_estimation.X4_BAND` (``benchmarks.blind_floor
#: --compare merge`` measures it off and on). Deconvolution there amplifies the upsampler's
#: x4 grid, visible as fine hatching, while the blur's information lies below the band.
KEEP_INPUT_ABOVE_BAND = True


def _lowpass_mask(shape: tuple[int, int], band: float) -> np.ndarray:
    return _radii(shape) < band


def _keep_input_above_band(
    batch: torch.Tensor, out: torch.Tensor, bands: Sequence[float] | None
) -> torch.Tensor:
    """``out`` with the input's content above the band, for images upsampled x4.

    ``input + lowpass(out - input)`` on the mirrored image (no edge wrap-around), where
    ``bands`` (the images' :func:`fitted_bands_torch`; ``None``: none) says X4_BAND.
    """
    if not KEEP_INPUT_ABOVE_BAND or bands is None:
        return out
    rows = [i for i, band in enumerate(bands) if band == X4_BAND]
    if not rows:
        return out
    h, w = batch.shape[-2:]
    change = periodic_extension_torch((out[rows] - batch[rows]).to(torch.float64), 1)
    shape = (change.shape[-2], change.shape[-1])
    mask = torch.from_numpy(_lowpass_mask(shape, X4_BAND)).to(change.device)
    low = torch.fft.irfft2(torch.fft.rfft2(change) * mask, s=shape)[..., :h, :w]
    out = out.clone()
    out[rows] = batch[rows] + low.to(batch.dtype)
    return out


def _keep_image_above_band(image: ImageF32, restored: np.ndarray, disk: bool = False) -> np.ndarray:
    """:func:`_keep_input_above_band` of one HWC image (the numpy reference)."""
    if not KEEP_INPUT_ABOVE_BAND or (disk and not blur_estimation.DISK_X4_BAND):
        return restored
    if fitted_band(image) != X4_BAND:
        return restored
    h, w = image.shape[:2]
    change = periodic_extension((restored - image).astype(np.float64), 1)
    mask = _lowpass_mask(change.shape[:2], X4_BAND)[..., None]
    spectrum = np.fft.rfft2(change, axes=(0, 1)) * mask
    low = np.fft.irfft2(spectrum, s=change.shape[:2], axes=(0, 1))[:h, :w]
    return (image + low).astype(np.float32)


def _deblur_where_blurred(
    batch: torch.Tensor,
    kernels: Sequence[np.ndarray | None],
    deconvolve: Callable[[torch.Tensor, list[np.ndarray], list[int]], torch.Tensor],
) -> torch.Tensor:
    """Deconvolve the images that have a kernel (``None``: no blur found, kept as they are)."""
    blurred = [i for i, k in enumerate(kernels) if k is not None]
    found = [k for k in kernels if k is not None]
    out = batch.clone()
    if blurred:
        out[blurred] = deconvolve(batch[blurred], found, blurred)
    return out


def _blur_or_none(kernels: list[np.ndarray]) -> list[np.ndarray | None]:
    """Blind estimates with :data:`IDENTITY_KERNEL` (no blur found) replaced by ``None``."""
    return [None if k is IDENTITY_KERNEL else k for k in kernels]


def _disk_bands(batch: torch.Tensor) -> list[float] | None:
    """The defocus tools' :func:`fitted_bands_torch` (``None`` without ``DISK_X4_BAND``)."""
    return fitted_bands_torch(batch) if blur_estimation.DISK_X4_BAND else None


def _disk_kernels(
    batch: torch.Tensor, radius: float | torch.Tensor, bands: Sequence[float] | None = None
) -> list[np.ndarray | None]:
    """Each image's disk PSF: ``radius`` (scalar or per image), estimated where it is 0.

    ``None`` where the estimate finds no defocus. ``bands``: the images' fitted bands,
    where the caller has them (:func:`_disk_bands`).
    """
    radii = torch.as_tensor(radius, dtype=torch.float64).flatten().expand(batch.shape[0]).tolist()
    blind = [i for i, r in enumerate(radii) if r == 0]
    if blind:
        blind_bands = None if bands is None else [bands[i] for i in blind]
        estimates = estimate_disk_radii_windows_torch(batch[blind], blind_bands)
        for i, r in zip(blind, estimates, strict=True):
            radii[i] = r
    return [_disk_psf(r) if r else None for r in radii]


@register_tool
class DefocusWiener(PerImageTool):
    """Wiener deconvolution with a disk kernel; radius estimated when 0 (input kept if none)."""

    batch_params = frozenset({"radius", "snr_db"})
    info = ToolInfo(
        name="defocus_wiener",
        preferred=True,  # the fixed and oracle agents' tool for its task
        task="defocus_deblurring",
        params=spec(
            radius=Param(0.0, 10.0, 0.0, "disk radius in pixels; 0 = estimate from the image"),
            snr_db=Param(5.0, 50.0, 30.0, "assumed signal-to-noise ratio; lower = smoother"),
        ),
        cost_hint=45.0,
        description="Wiener deconvolution of a disk PSF (radius given or estimated).",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Batched Wiener deconvolution, each image with its own disk (given or estimated).

        Blind radii come from :func:`estimate_disk_radii_windows_torch` (one fit for the batch);
        ``radius`` and ``snr_db`` may also be per-image ``(N,)`` tensors.
        """
        snr = params["snr_db"]
        bands = _disk_bands(batch)
        out = _deblur_where_blurred(
            batch,
            _disk_kernels(batch, params["radius"], bands),
            lambda x, kernels, idx: wiener_deconvolve_torch(x, kernels, _subset(snr, idx)),
        )
        return _keep_input_above_band(batch, out, bands)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test)."""
        radius = params["radius"] or estimate_disk_radius_windows(image)
        if radius == 0:  # the estimate says: not defocused
            return image.copy()
        restored = wiener_deconvolve(image, _disk_psf(radius), params["snr_db"])
        return _keep_image_above_band(image, restored, disk=True)


@register_tool
class DefocusRL(PerImageTool):
    """Richardson-Lucy deconvolution, disk kernel; radius estimated when 0 (input kept if none)."""

    cpu_per_image = "Richardson-Lucy"  # richardson_lucy_torch: OpenCV on a CPU

    # not iterations: a batch would run every image for the largest count
    batch_params = frozenset({"radius"})
    info = ToolInfo(
        name="defocus_rl",
        task="defocus_deblurring",
        params=spec(
            radius=Param(0.0, 10.0, 0.0, "disk radius in pixels; 0 = estimate from the image"),
            iterations=Param(1, 100, 30, "Richardson-Lucy iterations", integer=True),
        ),
        cost_hint=65.0,
        description="Richardson-Lucy deconvolution of a disk PSF (radius given or estimated).",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Batched Richardson-Lucy, each image with its own disk (given or estimated).

        ``radius`` and ``iterations`` may also be per-image ``(N,)`` tensors.
        """
        iterations = params["iterations"]
        bands = _disk_bands(batch)
        out = _deblur_where_blurred(
            batch,
            _disk_kernels(batch, params["radius"], bands),
            lambda x, kernels, idx: richardson_lucy_torch(x, kernels, _subset(iterations, idx)),
        )
        return _keep_input_above_band(batch, out, bands)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`richardson_lucy` with :func:`disk_kernel` (radius given or estimated).

        Per-image reference of :meth:`apply` (kept for the parity test).
        """
        radius = params["radius"] or estimate_disk_radius_windows(image)
        if radius == 0:  # the estimate says: not defocused
            return image.copy()
        restored = richardson_lucy(image, _disk_psf(radius), int(params["iterations"]))
        return _keep_image_above_band(image, restored, disk=True)


@register_tool
class UnsharpMask(PerImageTool):
    """Unsharp masking: add back a multiple of the high-pass detail."""

    batch_params = frozenset({"amount", "sigma"})
    info = ToolInfo(
        name="unsharp_mask",
        task="defocus_deblurring",
        params=spec(
            sigma=Param(0.5, 6.0, 3.0, "Gaussian sigma of the blur subtracted, in pixels"),
            amount=Param(0.0, 3.0, 0.8, "gain of the high-pass detail"),
        ),
        cost_hint=0.5,
        description="Unsharp masking x + a (x - G_sigma * x): mild, safe sharpening.",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """``x + amount (x - G_sigma * x)`` (batched torch; both may be per-image tensors).

        Per-image sigmas share one depthwise convolution, each image's taps zero-padded to the
        widest window (:func:`~tir_env.dsp.gaussian_blur_planes`).
        """
        sigma = params["sigma"]
        if isinstance(sigma, torch.Tensor):
            blurred = gaussian_blur_planes(batch, sigma)
        else:
            blurred = gaussian_blur_torch(batch, sigma)
        return batch + per_sample(params["amount"], batch) * (batch - blurred)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test)."""
        return unsharp(image, params["sigma"], params["amount"])
