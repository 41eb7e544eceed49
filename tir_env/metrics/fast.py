"""Fast PSNR, SSIM and MS-SSIM in plain torch, reproducing pyiqa's values.

pyiqa computes SSIM and MS-SSIM in float64 with full 2-D convolutions, about 180 ms per
256x256 image on one CPU core. These float32 versions do the same arithmetic with a separable
window, centred before squaring, and reproduce pyiqa to within 1e-6 (largest difference seen
7.5e-7 over noise, blur and unrelated pairs at 64-400 px; tested to 1e-4 in
``tests/test_metrics.py``), 20-40x faster at 256 px (10x at 128 px, 3x at 64 px). They
follow pyiqa exactly:

* SSIM and MS-SSIM run on the YIQ luma ``Y = 0.299 R + 0.587 G + 0.114 B``, scaled to
  [0, 255] and rounded to integers (as MATLAB's uint8 images), then back to [0, 1];
* an 11x11 Gaussian window (sigma 1.5), "valid" convolution, no downsampling,
  ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, and the contrast-structure map clipped at 0 per
  pixel (pyiqa does; piq does not, so ``piq.ssim`` differs from pyiqa by up to 1e-3 on heavy
  noise and 2e-2 on unrelated images, which is why piq is not used here);
* MS-SSIM: five scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
  ``MS-SSIM = prod_{j<5} cs_j^{w_j} * ssim_5^{w_5}``, 2x2 average pooling with zero padding of
  odd sides (Wang, Simoncelli & Bovik 2003).

``psnr_y`` and ``ssim_y`` follow BasicSR's ``calculate_psnr`` / ``calculate_ssim`` with
``test_y_channel=True`` and ``crop_border=0`` (what 4KAgent and most SR papers report): the
luma ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` of ITU-R BT.601 on [0, 255] (not
rounded), PSNR with peak 255, SSIM with the same 11x11 window on [0, 255] and no clipping of
the contrast-structure term (checked against that arithmetic to 1e-4 in
``tests/test_metrics.py``). Y-channel PSNR reads higher than RGB PSNR: Y spans 219 of 255
levels (+1.3 dB for the same relative error) and colour errors partly cancel in luma.

MS-SSIM needs images of at least 161 px for five scales, since the 11 px window must fit the
coarsest scale: ``(11 - 1) * 2^(5-1) + 1 = 161``. On smaller images this version uses the
largest number of scales ``k`` that fits (``k >= 1`` needs 11 px) with the first ``k`` weights
renormalised to sum to 1 (:meth:`MSSSIM.scales_for` says how many); pyiqa's own ``ms_ssim``
fails there (``ms_ssim_pyiqa`` raises ImageError below 161 px).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tir_env.metrics.pyiqa_backend import Device, MetricSpec, SizedMetric

_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]]
).t()
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
SIGMA = 1.5


def luma_u8(batch: torch.Tensor) -> torch.Tensor:
    """Quantised YIQ luma of an Nx3xHxW batch in [0, 1], as pyiqa: Nx1xHxW in [0, 1].

    ``round(255 * Y) / 255`` with ``Y`` from the Y column of the 3x3 matrix product pyiqa
    uses (the same three products and sums; I and Q, a third of the work each, are not
    needed), so the rounding matches pixel for pixel.
    """
    pixels = batch.permute(0, 2, 3, 1)
    if batch.shape[0] > 1:
        # a batch's strided view made the product 2x slower than a channels-last copy (one
        # image's view is faster as it is); the same products and sums either way (tested)
        pixels = pixels.contiguous()
    y = torch.matmul(pixels, _YIQ[:, :1].to(batch)).permute(0, 3, 1, 2)
    return (y * 255.0).round() / 255.0


@functools.lru_cache(maxsize=16)
def _window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1-D normalised Gaussian taps, built once per (size, sigma, dtype, device).

    The 2-D window is their outer product, as MATLAB's ``fspecial('gaussian', 11, 1.5)``.
    """
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


#: Largest image side at which :func:`_blur_valid` filters with two band-matrix products
#: instead of two convolutions (the same values to float rounding, tested). Measured on a CPU,
#: the products were 1.5-10x faster from 32 to 112 px (one image or 16), level at 128 px, and
#: slower past it, where a product's work per output grows with the side instead of staying
#: at the 11 taps.
BAND_MAX_SIDE = 128


def _blur_valid(stack: torch.Tensor, size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of every channel of an NxCxHxW tensor.

    Three ways to the same values (to float rounding, tested): OpenCV for float CPU tensors
    that need no gradient, band-matrix products up to :data:`BAND_MAX_SIDE`, else convolutions.
    """
    h, w = stack.shape[-2:]
    if min(h, w) >= size and _opencv_can_filter(stack):
        return _blur_valid_opencv(stack, size, sigma)
    if max(h, w) <= BAND_MAX_SIDE and min(h, w) >= size:
        return _blur_valid_band(stack, size, sigma)
    return _blur_valid_conv(stack, size, sigma)


def _opencv_can_filter(stack: torch.Tensor) -> bool:
    """A CPU tensor of a dtype OpenCV filters (float32, float64) that needs no gradient."""
    return (
        stack.device.type == "cpu"
        and stack.dtype in (torch.float32, torch.float64)
        and not stack.requires_grad
    )


def _blur_valid_band(stack: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """:func:`_blur_valid` as two band-matrix products (rows, then columns)."""
    h, w = stack.shape[-2:]
    rows = _band(h, size, sigma, stack.dtype, stack.device)
    cols = _band(w, size, sigma, stack.dtype, stack.device)
    return torch.matmul(torch.matmul(rows, stack), cols.transpose(0, 1))


def _blur_valid_conv(stack: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """:func:`_blur_valid` as two depthwise 1-D convolutions."""
    taps = _window(size, sigma, stack.dtype, stack.device)
    c = stack.shape[1]
    stack = F.conv2d(stack, taps.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)
    return F.conv2d(stack, taps.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)


def _blur_valid_opencv(stack: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """:func:`_blur_valid` of a CPU tensor with ``cv2.sepFilter2D``, one plane at a time.

    The same taps and the same values to float rounding (tested), 2x faster than the band
    products at 128 px and 10x faster than torch's convolutions at 256 px (on one core): the
    reward's SSIM runs every env step, and a whole photo's SSIM is many 256 px tiles' worth.
    The border mode is irrelevant: the 'valid' crop drops every pixel a border reaches.
    """
    h, w = stack.shape[-2:]
    r = size // 2
    planes = stack.detach().contiguous().numpy()
    taps = _window(size, sigma, stack.dtype, stack.device).numpy()
    out = np.empty((*planes.shape[:2], h - 2 * r, w - 2 * r), dtype=planes.dtype)
    for index in np.ndindex(*planes.shape[:2]):
        out[index] = cv2.sepFilter2D(planes[index], -1, taps, taps)[r : h - r, r : w - r]
    return torch.from_numpy(out)


@functools.lru_cache(maxsize=64)
def _band(
    n: int, size: int, sigma: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``(n - size + 1) x n`` matrix whose row ``i`` holds the window's taps from column ``i``.

    ``band @ x`` is the 'valid' correlation of the columns of ``x`` with the taps.
    """
    taps = _window(size, sigma, dtype, device)
    band = torch.zeros((n - size + 1, n), dtype=dtype, device=device)
    for i in range(n - size + 1):
        band[i, i : i + size] = taps
    return band


def bt601_luma(batch: torch.Tensor) -> torch.Tensor:
    """BasicSR's Y channel of an Nx3xHxW RGB batch in [0, 1]: Nx1xHxW in [16, 235] / 255.

    ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` (``bgr2ycbcr(y_only=True)``), kept
    in float as BasicSR does, scaled to [0, 1] so the SSIM constants below stay those of
    data range 1 (the same as BasicSR's ``(0.01 * 255)^2`` on [0, 255]).
    """
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=batch.dtype, device=batch.device)
    return ((batch * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True) + 16.0) / 255.0


def ssim_cs(
    x: torch.Tensor, y: torch.Tensor, clip_cs: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure ([N] each) of Nx1xHxW images in [0, 1].

    ``SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) * max(0, cs)``,
    ``cs = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)`` (Wang et al. 2004), with
    ``C1 = 0.01^2``, ``C2 = 0.03^2`` for data range 1. ``clip_cs=False`` keeps negative
    ``cs`` values (BasicSR's arithmetic; pyiqa clips).
    """
    # Centre before squaring: variances are shift-invariant and float32 loses less.
    xc, yc = x - 0.5, y - 0.5
    mu_x, mu_y, exx, eyy, exy = _blur_valid(
        torch.cat([xc, yc, xc * xc, yc * yc, xc * yc], dim=1)
    ).unbind(1)
    var_x, var_y, cov = exx - mu_x**2, eyy - mu_y**2, exy - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    if clip_cs:
        cs_map = cs_map.clamp_min(0)
    mx, my = mu_x + 0.5, mu_y + 0.5
    ssim_map = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs_map
    return ssim_map.mean(dim=(-2, -1)), cs_map.mean(dim=(-2, -1))


def psnr(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8, floor: float = 0.0) -> torch.Tensor:
    """PSNR per image over RGB, data range 1: ``10 log10(1 / (max(MSE, floor) + eps))``.

    The one PSNR of the repository. With the defaults it is pyiqa's ``psnr``: identical images
    score 80 dB (the ``eps`` cap). ``floor`` caps it instead (``1e-6``: 60 dB, the training
    logs of the learned tools).
    """
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(1.0 / (mse.clamp_min(floor) + eps))


def ms_ssim(x: torch.Tensor, y: torch.Tensor, scales: int = 5) -> torch.Tensor:
    """MS-SSIM of single-channel images, pyiqa's arithmetic, with ``scales`` levels."""
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64)
    if scales < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()
    factors = []
    for level in range(scales):
        if level:
            pad = (x.shape[-2] % 2, x.shape[-1] % 2)
            x, y = (F.avg_pool2d(t, kernel_size=2, padding=pad) for t in (x, y))
        ssim_val, cs = ssim_cs(x, y)
        factors.append(cs if level < scales - 1 else ssim_val)
    stacked = torch.stack(factors).double()
    return torch.prod(stacked ** weights.view(-1, 1).to(stacked), dim=0)


def ms_ssim_scales(height: int, width: int) -> int:
    """Scales MS-SSIM uses for an image: 5, or the most that fit the 11 px window."""
    side = min(height, width)
    if side < WINDOW:
        return 0
    return min(len(MS_SSIM_WEIGHTS), 1 + int(math.floor(math.log2((side - 1) / (WINDOW - 1)))))


class _FastMetric(SizedMetric):
    def __init__(
        self,
        spec: MetricSpec,
        device: Device | torch.device = "auto",
        weights_dir: str | Path | None = None,
    ) -> None:
        # Device-agnostic: computes wherever the batch lives; weights_dir unused.
        super().__init__(spec)


class PSNR(_FastMetric):
    """PSNR on RGB (dB, higher is better), equal to pyiqa's ``psnr``."""

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """PSNR of each image against its reference."""
        return psnr(batch, self.require(reference))


class SSIM(_FastMetric):
    """SSIM on quantised YIQ luma, equal to pyiqa's ``ssim`` within 1e-4."""

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """SSIM of each image against its reference."""
        self.check_size(batch)
        return ssim_cs(luma_u8(batch), luma_u8(self.require(reference)))[0]


class MSSSIM(_FastMetric):
    """MS-SSIM on quantised YIQ luma; pyiqa's ``ms_ssim`` from 161 px, fewer scales below."""

    @staticmethod
    def scales_for(height: int, width: int) -> int:
        """Number of scales used for an image of this size (see the module docstring)."""
        return ms_ssim_scales(height, width)

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """MS-SSIM of each image against its reference."""
        self.check_size(batch)
        scales = self.scales_for(*batch.shape[-2:])
        return ms_ssim(luma_u8(batch), luma_u8(self.require(reference)), scales)


class PSNRY(_FastMetric):
    """PSNR on BasicSR's BT.601 Y channel (dB), peak 255, no border crop."""

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """Y-channel PSNR of each image against its reference."""
        # BasicSR adds no epsilon; 1e-10 keeps identical images finite (100 dB) and moves a
        # 45 dB score by 2e-5 dB (pyiqa's 1e-8 would move it by 1.5e-3 dB).
        return psnr(bt601_luma(batch), bt601_luma(self.require(reference)), eps=1e-10)


class SSIMY(_FastMetric):
    """SSIM on BasicSR's BT.601 Y channel (unrounded, no clipping), no border crop."""

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """Y-channel SSIM of each image against its reference."""
        self.check_size(batch)
        ref = self.require(reference)
        return ssim_cs(bt601_luma(batch), bt601_luma(ref), clip_cs=False)[0]
