"""Weight-free restoration tools (OpenCV, scikit-image, SciPy, numpy and torch).

Every task of the AgenticIR protocol has at least two classical tools here. They need no
weights, run on the CPU in 1 to 150 ms per 128x128 image (``cost_hint`` is about the
milliseconds on one core), and serve as the default toolbox, as fast baselines beside
learned and pretrained tools, and as test fixtures. ``docs/tools.md``
(``python -m benchmarks.tool_table``) measures how much each restores its degradation.

Conventions shared by all tools:

* input and output are float32 Nx3xHxW in [0, 1] (Nx3x4Hx4W for super-resolution);
* OpenCV/scikit-image code runs per image on numpy HWC arrays (:func:`_per_image`);
* window sizes are clamped to the image, so every tool runs on images down to 1x1;
* "blind" tools estimate what they need (noise level, blur direction, blur size) from the
  image itself, so their defaults help without knowing the degradation's parameters.

The brightening tools are AgenticIR's three (``executor/brightening``): CLAHE on the HSV
V channel (clip 2.0, 8x8 tiles), gamma correction of V (gamma 1.5) and a constant V shift
(+40 of 255). Changing V while keeping H and S scales R, G and B by the same factor, which
is how they are computed here (exactly, without 8-bit HSV round trips).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft as _fft
import torch
import torch.nn.functional as F

from tir_env.images import batch_to_hwc, hwc_to_batch, resize
from tir_env.tools.base import Tool, ToolInfo, register_tool, spec
from tir_env.types import ImageF32, Param

#: ITU-R BT.601 luma weights (JPEG's YCbCr), RGB order.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _per_image(batch: torch.Tensor, fn: Callable[[ImageF32], np.ndarray]) -> torch.Tensor:
    """Apply ``fn`` (HWC float32 -> HWC) to every image of ``batch``; clip and re-batch."""
    out = hwc_to_batch([np.asarray(fn(image), dtype=np.float32) for image in batch_to_hwc(batch)])
    return out.to(batch.device)


def _fit_odd(size: int, *dims: int) -> int:
    """Largest odd window size <= ``size`` that fits every dimension in ``dims`` (>= 1)."""
    size = min(size, *dims)
    return max(1, size if size % 2 else size - 1)


def _to_u8(image: np.ndarray) -> np.ndarray:
    """Map float [0, 1] to uint8 [0, 255], rounding to nearest."""
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _luma(image: ImageF32) -> np.ndarray:
    """BT.601 luma Y of an RGB HWC image."""
    return np.ascontiguousarray(image @ _LUMA)


def _rgb_to_ycc(image: ImageF32) -> np.ndarray:
    """RGB -> JPEG's full-range YCbCr (all in [0, 1], chroma centred on 0.5)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]]


def _ycc_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_rgb_to_ycc`."""
    return cv2.cvtColor(np.ascontiguousarray(ycc[..., [0, 2, 1]], np.float32), cv2.COLOR_YCrCb2RGB)


def _channel_max(image: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the 3 channels (HSV value V); faster than ``max(axis=2)``."""
    return np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2])


def _channel_min(image: np.ndarray) -> np.ndarray:
    """Per-pixel minimum over the 3 channels."""
    return np.minimum(np.minimum(image[..., 0], image[..., 1]), image[..., 2])


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, reflecting at the borders."""
    k = 2 * radius + 1
    return cv2.boxFilter(x, -1, (k, k), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` steered by a grey ``guide`` (He et al., TPAMI 2013).

    ``q = mean(a) * I + mean(b)`` with ``a = cov(I, p) / (var(I) + eps)``,
    ``b = mean(p) - a * mean(I)``, all means over (2r+1)^2 boxes.
    """
    radius = max(0, min(radius, (min(guide.shape[:2]) - 1) // 2))
    guide = guide.astype(np.float32)
    src = src.astype(np.float32)
    g = guide[..., None] if src.ndim == 3 else guide
    mean_i, mean_p = _box(guide, radius), _box(src, radius)
    mean_i = mean_i[..., None] if src.ndim == 3 else mean_i
    var_i = _box(guide * guide, radius)
    var_i = (var_i[..., None] if src.ndim == 3 else var_i) - mean_i**2
    cov_ip = _box(g * src, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * g + _box(b, radius)


def estimate_noise_sigma(image: ImageF32) -> float:
    """Gaussian noise level per channel, in [0, 1] units (Donoho's wavelet MAD estimator).

    ``sigma = median(|HH|) / 0.6745`` over the finest diagonal Haar detail of each channel,
    averaged over channels, as ``skimage.restoration.estimate_sigma(average_sigmas=True)``.
    Images under 2 pixels a side give 0.
    """
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    if h < 2 or w < 2:
        return 0.0
    x = image[:h, :w].astype(np.float64)
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
    return float(np.mean(np.median(np.abs(hh), axis=(0, 1))) / 0.6745)


def _scale_value(image: ImageF32, new_v: np.ndarray) -> np.ndarray:
    """Set the HSV value V = max(R, G, B) to ``new_v`` keeping hue and saturation.

    Keeping H and S fixed scales R, G, B by ``new_v / V``; black pixels (V = 0, so S = 0)
    become grey ``new_v``, as OpenCV's HSV -> RGB would make them.
    """
    v = _channel_max(image)
    ratio = new_v / np.maximum(v, 1e-6)
    out = image * ratio[..., None]
    return np.where((v > 1e-6)[..., None], out, new_v[..., None])


def _unsharp(image: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp masking ``x + amount * (x - G_sigma * x)``."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return image + amount * (image - blurred)


def _centre_crop(image: ImageF32, size: int) -> ImageF32:
    """Centre crop of at most ``size`` x ``size`` pixels (bounds the cost of estimation)."""
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top : top + size, left : left + size]


# --------------------------------------------------------------------------------------
# Blur kernels and non-blind deconvolution
# --------------------------------------------------------------------------------------


def motion_kernel(radius: int, angle: float, sigma: float) -> np.ndarray:
    """One-sided, Gaussian-weighted line kernel of a linear motion (imagecorruptions' model).

    Taps ``i = 0 .. 2 radius`` with weights ``exp(-i^2 / (2 sigma^2))`` sit at the offsets
    ``(ceil(i sin(angle) - 1/2), ceil(i cos(angle) - 1/2))`` (row, column) from the centre of
    a correlation kernel: the convention of the ``motion_blur`` degradation (angle in degrees
    in [-90, 90], positive angles trail downwards on screen). Normalised to sum 1.
    """
    width = 2 * int(radius) + 1
    weights = np.exp(-(np.arange(width) ** 2) / (2.0 * sigma**2))
    sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    rows = [math.ceil(i * sin - 0.5) for i in range(width)]
    cols = [math.ceil(i * cos - 0.5) for i in range(width)]
    half = max(1, *(abs(v) for v in rows + cols))
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float64)
    for w, r, c in zip(weights, rows, cols, strict=True):
        kernel[half + r, half + c] += w
    return kernel / kernel.sum()


def disk_kernel(radius: float) -> np.ndarray:
    """Anti-aliased uniform disk (the defocus point-spread function) of ``radius`` pixels.

    A disk ``x^2 + y^2 <= r^2`` on a grid at least 17x17, smoothed by a 3x3 Gaussian
    (sigma 0.5), as imagecorruptions' ``defocus_blur`` (used by AgenticIR) builds it.
    """
    half = max(8, math.ceil(radius) + 1)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk = cv2.GaussianBlur(disk / disk.sum(), (3, 3), 0.5)
    return disk / disk.sum()


def _pad_reflect(image: np.ndarray, pad: int) -> np.ndarray:
    """Mirror-pad ``pad`` pixels on every side (OpenCV's ``BORDER_REFLECT_101``)."""
    widths = ((pad, pad), (pad, pad), (0, 0))
    if min(image.shape[:2]) > 1:
        return np.pad(image, widths, mode="reflect")
    return np.pad(image, widths, mode="edge")  # nothing to mirror in a single row or column


def _periodic_extension(image: np.ndarray, min_size: int) -> np.ndarray:
    """Whole-sample symmetric extension of period ``2n - 2``, tiled to >= ``min_size``.

    ``[x0 .. x(n-1) x(n-2) .. x1]`` repeated is continuous everywhere, and blurring it with
    a symmetric kernel gives the same image as blurring ``x`` with OpenCV's default
    ``BORDER_REFLECT_101`` borders: a periodic FFT filter then sees no false edges.
    """
    for axis in (0, 1):
        n = image.shape[axis]
        if n > 2:
            mirrored = np.flip(image, axis).take(range(1, n - 1), axis=axis)
            image = np.concatenate([image, mirrored], axis=axis)
    reps = [math.ceil(min_size / image.shape[0]), math.ceil(min_size / image.shape[1]), 1]
    return np.tile(image, reps)


def _otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Transfer function (rfft2) of a correlation ``kernel`` centred at the origin.

    The kernel is wrapped onto the periodic ``shape`` grid (taps beyond it alias, as a
    circular convolution on that grid would), so any kernel fits any grid.
    """
    flipped = kernel[::-1, ::-1]  # correlation -> convolution
    kh, kw = flipped.shape
    rows = (np.arange(kh) - kh // 2) % shape[0]
    cols = (np.arange(kw) - kw // 2) % shape[1]
    wrapped = np.zeros(shape, np.float64)
    np.add.at(wrapped, (rows[:, None], cols[None, :]), flipped)
    return _fft.rfft2(wrapped)


def wiener_deconvolve(image: ImageF32, kernel: np.ndarray, snr_db: float) -> np.ndarray:
    """Regularised Wiener deconvolution (Wiener 1949; the Laplacian prior of skimage's ``wiener``).

    ``X = conj(K) Y / (|K|^2 + lambda |D|^2)`` with ``D`` the discrete Laplacian and
    ``lambda = 10^(-snr_db / 10)``. The FFT works on :func:`_periodic_extension`, so the
    borders do not ring.
    """
    padded = _periodic_extension(image.astype(np.float64), max(kernel.shape))
    shape = padded.shape[:2]
    k = _otf(kernel, shape)
    lap = _otf(np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float64), shape)
    lam = 10.0 ** (-snr_db / 10.0)
    filt = np.conj(k) / (np.abs(k) ** 2 + lam * np.abs(lap) ** 2)
    spectrum = _fft.rfft2(padded, axes=(0, 1)) * filt[..., None]
    out = _fft.irfft2(spectrum, s=shape, axes=(0, 1))
    return out[: image.shape[0], : image.shape[1]]


def _trim(kernel: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Crop a centred kernel to its non-zero support; return it and the centre's (x, y).

    One-sided motion trails fill a quarter of their square grid or less; cropping them
    makes OpenCV's ``filter2D`` several times faster.
    """
    rows, cols = np.nonzero(kernel)
    top, left = int(rows.min()), int(cols.min())
    crop = kernel[top : rows.max() + 1, left : cols.max() + 1]
    return np.ascontiguousarray(crop, np.float32), (
        kernel.shape[1] // 2 - left,
        kernel.shape[0] // 2 - top,
    )


def richardson_lucy(image: ImageF32, kernel: np.ndarray, iterations: int) -> np.ndarray:
    """Richardson-Lucy deconvolution (Richardson 1972; Lucy 1974), mirror-padded.

    ``x <- x * (K^T (y / (K x)))``, started from ``y``; the multiplicative update keeps the
    estimate non-negative. Convolutions are OpenCV ``filter2D`` with reflected borders. The
    estimate is capped at 4 (images live in [0, 1]): on degenerate inputs (a thin strip of
    near-zero pixels) the update otherwise grows geometrically to Inf and then NaN.
    """
    pad = max(kernel.shape) // 2 + 1
    y = _pad_reflect(image.astype(np.float32), pad) + 1e-3
    k, (ax, ay) = _trim(kernel)
    k_t = np.ascontiguousarray(k[::-1, ::-1])
    anchor_t = (k.shape[1] - 1 - ax, k.shape[0] - 1 - ay)
    border = cv2.BORDER_REFLECT_101
    x = y.copy()
    for _ in range(int(iterations)):
        blurred = cv2.filter2D(x, -1, k, anchor=(ax, ay), borderType=border)
        ratio = y / np.maximum(blurred, 1e-6)
        x = np.minimum(x * cv2.filter2D(ratio, -1, k_t, anchor=anchor_t, borderType=border), 4.0)
    return x[pad : pad + image.shape[0], pad : pad + image.shape[1]] - 1e-3


@dataclass(frozen=True)
class _Spectrum:
    """An image's log power spectrum, prepared for fitting blur kernels to it."""

    log_power: np.ndarray  # log |Y(f)|^2 at the fitted frequencies
    mask: np.ndarray  # which rfft2 bins are fitted
    design: np.ndarray  # [1, log|f|] at those bins: the natural-image power law
    pinv: np.ndarray  # its pseudo-inverse
    shape: tuple[int, int]  # FFT size


def _spectrum(image: ImageF32, symmetric: bool) -> _Spectrum:
    """Log power spectrum of the luma of a centre crop of at most 128 pixels a side.

    ``symmetric`` uses :func:`_periodic_extension` (no edge leakage, but it mirrors the
    image, so only blur kernels symmetric under flips can be told apart); otherwise a Hann
    window tapers the edges. Bins on the two frequency axes, where the window's leakage
    lies, and the DC bin are left out. (A 129-pixel crop mirrors to a fast 256-point FFT.)
    """
    y = _luma(_centre_crop(image, 129 if symmetric else 128)).astype(np.float64)
    if symmetric:
        y = _periodic_extension(y[..., None], 1)[..., 0]
    else:
        y = (y - y.mean()) * np.outer(np.hanning(y.shape[0]), np.hanning(y.shape[1]))
    power = np.abs(_fft.rfft2(y)) ** 2
    fy = _fft.fftfreq(y.shape[0])[:, None]
    fx = _fft.rfftfreq(y.shape[1])[None, :]
    rho = np.sqrt(fx**2 + fy**2)
    mask = (rho < 0.5) & (np.abs(fx) > 1.5 / y.shape[1]) & (np.abs(fy) > 1.5 / y.shape[0])
    design = np.stack([np.ones(int(mask.sum())), np.log(rho[mask])], axis=1)
    return _Spectrum(np.log(power[mask] + 1e-12), mask, design, np.linalg.pinv(design), y.shape)


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
    gain = np.abs(_otf(kernel, spectrum.shape)[spectrum.mask]) ** 2
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


def dominant_orientation(y: np.ndarray) -> float:
    """Direction along which a grey image varies least, in degrees in [-90, 90).

    The eigenvector of the smallest eigenvalue of the gradient structure tensor
    ``sum(grad grad^T)``: the axis of streaks or of a blur. Same angle convention as
    :func:`motion_kernel`.
    """
    y = y.astype(np.float32)
    if min(y.shape) < 3:
        return 0.0
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)[1:-1, 1:-1].astype(np.float64)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)[1:-1, 1:-1].astype(np.float64)
    tensor = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    _, vectors = np.linalg.eigh(tensor)
    ux, uy = vectors[:, 0]  # smallest eigenvalue first; uy points down
    return (math.degrees(math.atan2(uy, ux)) + 90.0) % 180.0 - 90.0


# --------------------------------------------------------------------------------------
# Tool base classes
# --------------------------------------------------------------------------------------


class _PerImageTool(Tool):
    """A tool that runs a numpy HWC function on each image of the batch."""

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Run :meth:`restore` on each image."""
        return _per_image(batch, lambda image: self.restore(image, params))

    @abstractmethod
    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Restore one float32 HWC image in [0, 1] (the result is clipped afterwards)."""


# --------------------------------------------------------------------------------------
# Super-resolution (x4)
# --------------------------------------------------------------------------------------


def _upscale(batch: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """Bicubic x4 (Keys' cubic, a = -0.75, as in PyTorch and OpenCV); ``clamp`` to [0, 1]."""
    h, w = batch.shape[-2:]
    out = F.interpolate(batch, size=(4 * h, 4 * w), mode="bicubic", align_corners=False)
    return out.clamp(0.0, 1.0) if clamp else out


@register_tool
class BicubicX4(Tool):
    """x4 bicubic interpolation: the baseline every super-resolution tool must beat."""

    info = ToolInfo(
        name="bicubic_x4",
        task="super_resolution",
        cost_hint=0.5,
        scale=4,
        description="x4 bicubic upscaling (baseline; adds no detail).",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Upscale by 4 with bicubic interpolation."""
        return _upscale(batch)


@register_tool
class LanczosSharpenX4(_PerImageTool):
    """x4 Lanczos-4 interpolation followed by unsharp masking."""

    info = ToolInfo(
        name="lanczos_x4_sharpen",
        task="super_resolution",
        params=spec(
            amount=Param(0.0, 2.0, 0.6, "unsharp-mask gain (0 = plain Lanczos)"),
            sigma=Param(0.5, 4.0, 1.5, "Gaussian sigma of the unsharp mask, in output pixels"),
        ),
        cost_hint=0.5,
        scale=4,
        description="x4 Lanczos upscaling plus unsharp masking (crisper than bicubic).",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Lanczos-4 x4 (OpenCV ``INTER_LANCZOS4``), then ``x + a (x - G_sigma * x)``."""
        h, w = image.shape[:2]
        up = cv2.resize(image, (4 * w, 4 * h), interpolation=cv2.INTER_LANCZOS4)
        return _unsharp(np.clip(up, 0, 1), params["sigma"], params["amount"])


@register_tool
class BackProjectionX4(Tool):
    """x4 iterative back-projection (Irani and Peleg, CVGIP 1991)."""

    info = ToolInfo(
        name="back_projection_x4",
        task="super_resolution",
        params=spec(
            iterations=Param(1, 40, 10, "back-projection iterations", integer=True),
            step=Param(0.2, 2.0, 1.0, "step size of each correction"),
        ),
        cost_hint=6.0,
        scale=4,
        description="x4 bicubic + iterative back-projection: the output downscales to the input.",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """``x <- x + step * up(y - down(x))``, started from bicubic ``up(y)``.

        ``down`` is the antialiased bicubic x1/4 of :func:`tir_env.images.resize` (the
        model of the ``low_resolution`` degradation); ``up`` is bicubic x4.
        """
        h, w = batch.shape[-2:]
        x = _upscale(batch)
        for _ in range(int(params["iterations"])):
            residual = batch - resize(x, (h, w))
            x = (x + params["step"] * _upscale(residual, clamp=False)).clamp(0.0, 1.0)
        return x


# --------------------------------------------------------------------------------------
# Denoising
# --------------------------------------------------------------------------------------


@register_tool
class NLMDenoise(_PerImageTool):
    """Non-local means on colour images (Buades et al., CVPR 2005; OpenCV's fast version)."""

    info = ToolInfo(
        name="nlm_denoise",
        task="denoising",
        params=spec(
            strength=Param(
                0.1, 3.0, 0.55, "filter strength h as a multiple of the estimated sigma"
            ),
            search=Param(7, 35, 21, "search window size in pixels", integer=True),
        ),
        cost_hint=35.0,
        description="Non-local means denoising with strength set from the estimated noise level.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """OpenCV ``fastNlMeansDenoisingColored`` with ``h = strength * sigma_hat * 255``.

        ``sigma_hat`` is :func:`estimate_noise_sigma`; the same ``h`` weighs luminance and
        colour. Patches are 7x7 (shrunk for tiny images).
        """
        sigma = estimate_noise_sigma(image) * 255.0
        h = max(0.5, params["strength"] * sigma)
        template = _fit_odd(7, *image.shape[:2])
        search = _fit_odd(int(params["search"]), *image.shape[:2])
        bgr = _to_u8(image[..., ::-1])
        out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, template, search)
        return out[..., ::-1].astype(np.float32) / 255.0


@register_tool
class BilateralDenoise(_PerImageTool):
    """Bilateral filter (Tomasi and Manduchi, ICCV 1998)."""

    info = ToolInfo(
        name="bilateral_denoise",
        task="denoising",
        params=spec(
            strength=Param(0.5, 8.0, 4.0, "range sigma as a multiple of the estimated noise sigma"),
            sigma_space=Param(0.5, 8.0, 2.0, "spatial Gaussian sigma in pixels"),
        ),
        cost_hint=2.0,
        description="Edge-preserving bilateral filter; range sigma from the estimated noise level.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """OpenCV ``bilateralFilter`` with ``sigma_r = strength * sigma_hat`` (RGB distance)."""
        sigma_r = max(1e-3, params["strength"] * estimate_noise_sigma(image))
        d = _fit_odd(2 * math.ceil(2 * params["sigma_space"]) + 1, *image.shape[:2])
        return cv2.bilateralFilter(image, d, sigma_r, params["sigma_space"])


#: Orthonormal colour transform of Yu and Sapiro's DCT denoiser (rows: mean, two opponents).
_OPPONENT = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64) / np.array(
    [[math.sqrt(3)], [math.sqrt(2)], [math.sqrt(6)]]
)


@register_tool
class DCTDenoise(_PerImageTool):
    """Sliding-window 8x8 DCT hard thresholding (Yu and Sapiro, IPOL 2011)."""

    info = ToolInfo(
        name="dct_denoise",
        task="denoising",
        params=spec(
            strength=Param(0.25, 3.0, 1.0, "threshold as a multiple of 3 x the estimated sigma"),
            step=Param(1, 8, 2, "grid shift step; 1 averages all 64 shifts", integer=True),
        ),
        cost_hint=20.0,
        description="Sliding 8x8 DCT hard thresholding at 3 sigma, opponent colour space.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Orthonormal opponent colours, threshold ``3 strength sigma_hat``, average shifts."""
        sigma = estimate_noise_sigma(image)
        if sigma <= 0:
            return image
        colours = image.astype(np.float64) @ _OPPONENT.T
        threshold = 3.0 * params["strength"] * sigma
        out = _shifted_dct_threshold(colours, (threshold,) * 3, int(params["step"]))
        return out @ _OPPONENT


@register_tool
class TVDenoise(_PerImageTool):
    """Total-variation denoising (Rudin, Osher and Fatemi 1992; Chambolle's algorithm, 2004)."""

    info = ToolInfo(
        name="tv_denoise",
        task="denoising",
        params=spec(
            strength=Param(0.1, 4.0, 0.75, "TV weight as a multiple of the estimated noise sigma"),
        ),
        cost_hint=8.0,
        description="Chambolle total-variation denoising; weight from the estimated noise level.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """``skimage.restoration.denoise_tv_chambolle`` with ``weight = strength * sigma_hat``."""
        from skimage.restoration import denoise_tv_chambolle

        weight = params["strength"] * estimate_noise_sigma(image)
        if weight <= 0:
            return image
        return denoise_tv_chambolle(image, weight=weight, channel_axis=-1)


# --------------------------------------------------------------------------------------
# JPEG artifact removal
# --------------------------------------------------------------------------------------


def _block_dct_threshold(channel: np.ndarray, threshold: float, dy: int, dx: int) -> np.ndarray:
    """Hard-threshold the orthonormal 8x8 block DCT of ``channel`` shifted by (dy, dx)."""
    from scipy.fft import dctn, idctn

    h, w = channel.shape
    ph, pw = (-(h + dy)) % 8, (-(w + dx)) % 8
    padded = np.pad(channel, ((dy, ph), (dx, pw)), mode="symmetric")
    bh, bw = padded.shape[0] // 8, padded.shape[1] // 8
    blocks = padded.reshape(bh, 8, bw, 8).transpose(0, 2, 1, 3)
    coeffs = dctn(blocks, axes=(2, 3), norm="ortho")
    keep = np.abs(coeffs) >= threshold
    keep[..., 0, 0] = True  # never touch the block mean
    blocks = idctn(coeffs * keep, axes=(2, 3), norm="ortho")
    padded = blocks.transpose(0, 2, 1, 3).reshape(bh * 8, bw * 8)
    return padded[dy : dy + h, dx : dx + w]


def _shifts(step: int) -> Iterator[tuple[int, int]]:
    """Grid shifts (dy, dx) in 0..7 with the given step."""
    for dy in range(0, 8, step):
        for dx in range(0, 8, step):
            yield dy, dx


def _shifted_dct_threshold(
    image: np.ndarray, thresholds: tuple[float, ...], step: int
) -> np.ndarray:
    """Average over grid shifts of 8x8 block-DCT hard thresholding, channel by channel."""
    out = np.zeros_like(image, dtype=np.float64)
    shifts = list(_shifts(step))
    for c, t in enumerate(thresholds):
        for dy, dx in shifts:
            out[..., c] += _block_dct_threshold(image[..., c], t, dy, dx)
    return out / len(shifts)


def _chroma_from_luma(ycc: np.ndarray, radius: int) -> np.ndarray:
    """Re-estimate Cb and Cr as local linear functions of the (restored) luma.

    JPEG keeps chroma at half resolution (4:2:0) in coarser 16x16 blocks; within a small
    window colour is close to a linear function of luma, so a guided filter of each chroma
    plane with Y as the guide (He et al., TPAMI 2013; eps 1e-4) restores chroma edges where
    luma has them (the idea of AV1's chroma-from-luma prediction).
    """
    if radius <= 0:
        return ycc
    out = ycc.copy()
    guide = ycc[..., 0].astype(np.float32)
    for c in (1, 2):
        out[..., c] = guided_filter(guide, ycc[..., c], radius, 1e-4)
    return out


@register_tool
class ShiftedDCTDeblock(_PerImageTool):
    """Translation-invariant DCT thresholding of luma (Nosratinia, 2001) plus chroma from luma."""

    info = ToolInfo(
        name="jpeg_shifted_dct",
        task="jpeg_artifact_removal",
        params=spec(
            threshold=Param(
                1.0, 60.0, 20.0, "hard threshold on luma DCT coefficients (0-255 scale)"
            ),
            chroma_radius=Param(
                0, 16, 3, "guided-filter radius restoring chroma (0 = off)", integer=True
            ),
            step=Param(1, 8, 2, "grid shift step; 1 averages all 64 shifts", integer=True),
        ),
        cost_hint=7.0,
        description="Averages thresholded 8x8 DCTs over shifted grids; rebuilds chroma from luma.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Threshold every 8x8 DCT block of Y for each grid shift, average; then chroma.

        Averaging over shifts removes the block edges a single grid would keep (Nosratinia,
        "Enhancement of JPEG-compressed images by re-application of JPEG", JVLSI 2001);
        chroma follows with :func:`_chroma_from_luma`.
        """
        ycc = _rgb_to_ycc(image)
        luma = ycc[..., :1].astype(np.float64)
        luma = _shifted_dct_threshold(luma, (params["threshold"] / 255.0,), int(params["step"]))
        ycc[..., 0] = luma[..., 0]
        return _ycc_to_rgb(_chroma_from_luma(ycc, int(params["chroma_radius"])))


@register_tool
class TVDeblock(_PerImageTool):
    """Total-variation smoothing of luma plus chroma from luma, for JPEG images."""

    info = ToolInfo(
        name="jpeg_tv",
        task="jpeg_artifact_removal",
        params=spec(
            weight=Param(0.002, 0.1, 0.012, "TV weight on luma (higher = flatter)"),
            chroma_radius=Param(
                0, 16, 3, "guided-filter radius restoring chroma (0 = off)", integer=True
            ),
        ),
        cost_hint=3.0,
        description="Light TV denoising of luma (blocks, ringing); rebuilds chroma from luma.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Chambolle TV of Y (``skimage.restoration.denoise_tv_chambolle``), then chroma.

        A small TV weight flattens block steps and ringing, which have large total
        variation for their energy, while keeping edges (Alter, Durand and Froment, 2005,
        use TV minimisation against JPEG artefacts); chroma follows with
        :func:`_chroma_from_luma`.
        """
        from skimage.restoration import denoise_tv_chambolle

        ycc = _rgb_to_ycc(image)
        ycc[..., 0] = denoise_tv_chambolle(ycc[..., 0], weight=params["weight"])
        return _ycc_to_rgb(_chroma_from_luma(ycc, int(params["chroma_radius"])))


# --------------------------------------------------------------------------------------
# Brightening (AgenticIR's three OpenCV tools)
# --------------------------------------------------------------------------------------


@register_tool
class CLAHE(_PerImageTool):
    """Contrast-limited adaptive histogram equalisation of HSV V (Zuiderveld 1994; AgenticIR)."""

    info = ToolInfo(
        name="clahe",
        task="brightening",
        params=spec(
            clip_limit=Param(0.5, 8.0, 2.0, "histogram clip limit (OpenCV clipLimit)"),
            tiles=Param(1, 16, 8, "tiles per side of the grid", integer=True),
        ),
        cost_hint=1.0,
        description="CLAHE on HSV value (AgenticIR: clip 2.0, 8x8 tiles).",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """OpenCV CLAHE on 8-bit V = max(R, G, B); R, G, B rescaled to the new V.

        The grid is capped so tiles keep at least 16 pixels a side (4x4 tiles on a 64x64
        crop): equalising 8-pixel tiles only amplifies noise. From 128 pixels up the grid is
        AgenticIR's.
        """
        v = _to_u8(_channel_max(image))
        tiles = max(1, min(int(params["tiles"]), min(v.shape) // 16))
        clahe = cv2.createCLAHE(clipLimit=params["clip_limit"], tileGridSize=(tiles, tiles))
        new_v = clahe.apply(v).astype(np.float32) / 255.0
        return _scale_value(image, new_v.reshape(v.shape))


@register_tool
class GammaCorrection(_PerImageTool):
    """Gamma correction of HSV V: ``V' = V^(1/gamma)`` (AgenticIR: gamma 1.5)."""

    info = ToolInfo(
        name="gamma_correction",
        task="brightening",
        params=spec(gamma=Param(0.3, 3.0, 1.5, "gamma; > 1 brightens, < 1 darkens")),
        cost_hint=1.0,
        description="Gamma correction of HSV value, V' = V^(1/gamma) (AgenticIR: gamma 1.5).",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Raise V = max(R, G, B) to ``1/gamma``, keep hue and saturation."""
        v = _channel_max(image)
        return _scale_value(image, np.power(v, 1.0 / params["gamma"]))


@register_tool
class ConstantShift(_PerImageTool):
    """Constant shift of HSV V (AgenticIR: +40 of 255)."""

    info = ToolInfo(
        name="constant_shift",
        task="brightening",
        params=spec(shift=Param(-100.0, 100.0, 40.0, "added to HSV value, on the 0-255 scale")),
        cost_hint=1.0,
        description="Adds a constant to HSV value (AgenticIR: +40 of 255), clipped to [0, 255].",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """``V' = clip(V + shift / 255, 0, 1)``, keep hue and saturation."""
        v = _channel_max(image)
        return _scale_value(image, np.clip(v + params["shift"] / 255.0, 0.0, 1.0))


# --------------------------------------------------------------------------------------
# Dehazing
# --------------------------------------------------------------------------------------


def _dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """Minimum over colour channels and a ``patch`` x ``patch`` window (grey erosion)."""
    k = _fit_odd(patch, *image.shape[:2]) if min(image.shape[:2]) > 1 else 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    return cv2.erode(_channel_min(image), kernel, borderType=cv2.BORDER_REFLECT)


def _airlight(image: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Atmospheric light: mean colour of the pixels in the brightest 0.1% of the dark channel."""
    flat = dark.ravel()
    n = max(1, flat.size // 1000)
    idx = np.argpartition(flat, flat.size - n)[-n:]
    return np.maximum(image.reshape(-1, 3)[idx].mean(axis=0), 0.05)


@register_tool
class DarkChannelPrior(_PerImageTool):
    """Dark channel prior dehazing with guided-filter refinement (He, Sun and Tang, CVPR 2009)."""

    info = ToolInfo(
        name="dark_channel_prior",
        task="dehazing",
        params=spec(
            omega=Param(0.5, 1.0, 0.95, "fraction of haze removed"),
            patch=Param(3, 31, 9, "dark-channel window in pixels", integer=True),
            t0=Param(0.05, 0.6, 0.15, "lower bound of the transmission"),
            radius=Param(2, 64, 16, "guided-filter radius refining the transmission", integer=True),
        ),
        cost_hint=2.0,
        description="He et al.'s dark channel prior: J = (I - A) / max(t, t0) + A.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Estimate A from the dark channel, ``t = 1 - omega dark(I / A)``, refine, invert.

        The guided filter (He et al., TPAMI 2013; eps 1e-3, guide = luma) replaces the
        paper's soft matting.
        """
        patch = int(params["patch"])
        air = _airlight(image, _dark_channel(image, patch))
        t = 1.0 - params["omega"] * _dark_channel(image / air, patch)
        t = guided_filter(_luma(image), t, int(params["radius"]), 1e-3)
        t = np.maximum(t, params["t0"])[..., None]
        return (image - air) / t + air


@register_tool
class GlobalDehaze(_PerImageTool):
    """Haze removal with one global transmission: a haze-aware contrast stretch."""

    info = ToolInfo(
        name="global_dehaze",
        task="dehazing",
        params=spec(
            omega=Param(0.3, 1.0, 0.95, "fraction of the estimated haze removed"),
            percentile=Param(0.0, 20.0, 5.0, "dark-channel percentile taken as haze-free black"),
        ),
        cost_hint=1.5,
        description="Uniform-transmission scattering inversion; safe on unevenly hazy images.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """``I = J t + A (1 - t)`` with one ``t`` for the whole image.

        ``A`` as in the dark channel prior; ``1 - t = omega * q`` with ``q`` the
        ``percentile``-th percentile of the pixel-wise dark channel of ``I / A``: the darkest
        scene points should be black once the haze is removed (He et al.'s prior, applied
        globally, so it cannot create the halos of a per-pixel map).
        """
        air = _airlight(image, _dark_channel(image, 7))
        q = float(np.percentile(_channel_min(image / air), params["percentile"]))
        t = max(1.0 - params["omega"] * min(q, 0.95), 0.05)
        return (image - air) / t + air


# --------------------------------------------------------------------------------------
# Motion deblurring
# --------------------------------------------------------------------------------------

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
    not beat it by :data:`NO_BLUR_MARGIN`.
    """
    spectrum = _spectrum(image, symmetric=False)

    def best(candidates: list[tuple[int, float, float]]) -> tuple[tuple[int, float, float], float]:
        scores = [_kernel_misfit(spectrum, motion_kernel(*c)) for c in candidates]
        i = int(np.argmin(scores))
        return candidates[i], scores[i]

    (radius, angle, sigma), _ = best(
        [(r, a, s) for a in range(-90, 90, 5) for r, s in _MOTION_SHAPES]
    )
    (radius, angle, sigma), _ = best([(radius, angle + d, sigma) for d in range(-4, 5)])
    shape, misfit = best([(r, angle, s) for r, s in _MOTION_SHAPES])
    fits = _beats_no_blur(spectrum, misfit, NO_BLUR_MARGIN["motion"])
    return motion_kernel(*shape) if fits else IDENTITY_KERNEL


@register_tool
class MotionWiener(_PerImageTool):
    """Wiener deconvolution with a given linear motion kernel."""

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

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`wiener_deconvolve` with :func:`motion_kernel` of the given parameters."""
        kernel = motion_kernel(int(params["radius"]), params["angle"], params["sigma"])
        return wiener_deconvolve(image, kernel, params["snr_db"])


@register_tool
class BlindMotionWiener(_PerImageTool):
    """Wiener deconvolution with a motion kernel estimated from the image (input kept if none)."""

    info = ToolInfo(
        name="motion_wiener_blind",
        task="motion_deblurring",
        params=spec(
            snr_db=Param(5.0, 50.0, 30.0, "assumed signal-to-noise ratio; lower = smoother"),
        ),
        cost_hint=80.0,
        description="Estimates the motion direction and extent, then Wiener-deconvolves.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`wiener_deconvolve` with :func:`estimate_motion_kernel`."""
        kernel = estimate_motion_kernel(image)
        if kernel is IDENTITY_KERNEL:
            return image.copy()
        return wiener_deconvolve(image, kernel, params["snr_db"])


@register_tool
class BlindMotionRL(_PerImageTool):
    """Richardson-Lucy deconvolution with an estimated motion kernel (input kept if none)."""

    info = ToolInfo(
        name="motion_rl_blind",
        task="motion_deblurring",
        params=spec(
            iterations=Param(1, 100, 30, "Richardson-Lucy iterations", integer=True),
        ),
        cost_hint=120.0,
        description="Estimates the motion kernel, then Richardson-Lucy deconvolution.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`richardson_lucy` with :func:`estimate_motion_kernel`."""
        kernel = estimate_motion_kernel(image)
        if kernel is IDENTITY_KERNEL:
            return image.copy()
        return richardson_lucy(image, kernel, int(params["iterations"]))


# --------------------------------------------------------------------------------------
# Defocus deblurring
# --------------------------------------------------------------------------------------

#: Candidate disk radii of blind defocus deblurring, in pixels.
_DISK_RADII = tuple(float(r) for r in np.arange(1.0, 8.01, 0.5))


def estimate_disk_radius(image: ImageF32) -> float:
    """Blind estimate of a defocus disk's radius: the best :func:`_kernel_misfit`.

    The disk is symmetric, so the mirror-extended spectrum (no edge leakage) is used; the
    rings where the disk's transfer function vanishes pin the radius down. Returns 0.0 (no
    blur) when no disk explains the spectrum better than none.
    """
    spectrum = _spectrum(image, symmetric=True)
    scores = [_kernel_misfit(spectrum, disk_kernel(r)) for r in _DISK_RADII]
    best = int(np.argmin(scores))
    fits = _beats_no_blur(spectrum, scores[best], NO_BLUR_MARGIN["disk"])
    return _DISK_RADII[best] if fits else 0.0


@register_tool
class DefocusWiener(_PerImageTool):
    """Wiener deconvolution with a disk kernel; radius estimated when 0 (input kept if none)."""

    info = ToolInfo(
        name="defocus_wiener",
        task="defocus_deblurring",
        params=spec(
            radius=Param(0.0, 10.0, 0.0, "disk radius in pixels; 0 = estimate from the image"),
            snr_db=Param(5.0, 50.0, 30.0, "assumed signal-to-noise ratio; lower = smoother"),
        ),
        cost_hint=45.0,
        description="Wiener deconvolution of a disk PSF (radius given or estimated).",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`wiener_deconvolve` with :func:`disk_kernel` (or :func:`estimate_disk_radius`)."""
        radius = params["radius"] or estimate_disk_radius(image)
        if radius == 0:  # the estimate says: not defocused
            return image.copy()
        return wiener_deconvolve(image, disk_kernel(radius), params["snr_db"])


@register_tool
class DefocusRL(_PerImageTool):
    """Richardson-Lucy deconvolution, disk kernel; radius estimated when 0 (input kept if none)."""

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

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`richardson_lucy` with :func:`disk_kernel` (or :func:`estimate_disk_radius`)."""
        radius = params["radius"] or estimate_disk_radius(image)
        if radius == 0:  # the estimate says: not defocused
            return image.copy()
        return richardson_lucy(image, disk_kernel(radius), int(params["iterations"]))


@register_tool
class UnsharpMask(_PerImageTool):
    """Unsharp masking: add back a multiple of the high-pass detail."""

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

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """:func:`_unsharp` with the given sigma and amount."""
        return _unsharp(image, params["sigma"], params["amount"])


# --------------------------------------------------------------------------------------
# Deraining
# --------------------------------------------------------------------------------------


def _rain_layer(image: ImageF32, background: np.ndarray, threshold: float) -> np.ndarray:
    """Achromatic positive residual ``min_c(I - B)`` above ``threshold`` (the rain estimate).

    Synthetic and real rain adds the same light to R, G and B, so the residual's minimum
    over channels keeps rain and drops coloured texture; a soft threshold drops noise.
    """
    residual = _channel_min(image - background)
    return np.maximum(residual - threshold, 0.0)[..., None]


def _line_element(length: int, angle: float) -> np.ndarray:
    """Flat line structuring element of ``length`` pixels at ``angle`` degrees."""
    half = length // 2
    element = np.zeros((2 * half + 1, 2 * half + 1), np.uint8)
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    for s in np.linspace(-half, half, 4 * half + 1):
        element[half + round(s * dy), half + round(s * dx)] = 1
    return element


@register_tool
class MedianDerain(_PerImageTool):
    """Rain-streak removal by an across-streak median and an achromatic residual."""

    info = ToolInfo(
        name="derain_median",
        task="deraining",
        params=spec(
            width=Param(3, 21, 11, "length of the median across the streaks", integer=True),
            threshold=Param(0.0, 0.2, 0.01, "residual brightness ignored as texture or noise"),
        ),
        cost_hint=7.0,
        description="Median across the estimated streak direction removes bright grey streaks.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Estimate the streak direction, median-filter across it, subtract the rain layer.

        The background is a grey-level median over a line perpendicular to the streaks
        (thin streaks vanish, structures along the streaks survive); the rain layer is
        :func:`_rain_layer` of the image against that background.
        """
        width = _fit_odd(int(params["width"]), *image.shape[:2])
        if width < 3:
            return image
        coarse = cv2.medianBlur(_to_u8(image), 3 if min(image.shape[:2]) >= 3 else 1)
        angle = dominant_orientation(_channel_min(image - coarse / 255.0).clip(0, None))
        element = _line_element(width, angle + 90.0)
        background = _line_median(image, element)
        return image - _rain_layer(image, background, params["threshold"])


def _line_median(image: ImageF32, element: np.ndarray) -> np.ndarray:
    """Median of every pixel's neighbours on ``element`` (SciPy's ``median_filter`` footprint)."""
    from scipy.ndimage import median_filter

    return median_filter(image, footprint=element[..., None].astype(bool), mode="reflect")


@register_tool
class OpeningDerain(_PerImageTool):
    """Rain-streak removal by grey-scale openings across and along the streaks."""

    info = ToolInfo(
        name="derain_opening",
        task="deraining",
        params=spec(
            width=Param(3, 15, 9, "length of the line opening across the streaks", integer=True),
            length=Param(1, 31, 5, "shortest streak kept in the rain layer", integer=True),
            threshold=Param(0.0, 0.2, 0.0, "residual brightness ignored as texture or noise"),
        ),
        cost_hint=1.0,
        description="Morphological top-hat across the estimated streak direction, kept if long.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Top-hat across the streaks, then an opening along them, subtracted.

        An opening (erosion then dilation) with a line perpendicular to the streaks drops
        bright structures narrower than the line; the achromatic top-hat ``I - open(I)``
        (:func:`_rain_layer`) is opened again with a line *along* the streaks, so only
        long thin bright lines - the streaks - are removed, not short texture.
        """
        width = _fit_odd(int(params["width"]), *image.shape[:2])
        if width < 3:
            return image
        tophat = image - cv2.morphologyEx(image, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        angle = dominant_orientation(_channel_min(tophat).clip(0, None))
        across = _line_element(width, angle + 90.0)
        opened = cv2.morphologyEx(image, cv2.MORPH_OPEN, across, borderType=cv2.BORDER_REFLECT)
        rain = np.ascontiguousarray(_rain_layer(image, opened, params["threshold"])[..., 0])
        length = _fit_odd(int(params["length"]), *image.shape[:2])
        along = _line_element(length, angle)
        rain = cv2.morphologyEx(rain, cv2.MORPH_OPEN, along, borderType=cv2.BORDER_REFLECT)
        return image - rain[..., None]
