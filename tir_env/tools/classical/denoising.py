"""Denoising tools: non-local means, bilateral, sliding DCT and total-variation denoising."""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np
import torch

from tir_env.dsp import (
    per_sample,
    shifted_dct_threshold,
)
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    estimate_noise_sigma,
    estimate_noise_sigma_torch,
    fit_odd,
    to_u8,
)
from tir_env.types import ImageF32, Param


@register_tool
class NLMDenoise(PerImageTool):
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
        template = fit_odd(7, *image.shape[:2])
        search = fit_odd(int(params["search"]), *image.shape[:2])
        bgr = to_u8(image[..., ::-1])
        out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, template, search)
        return out[..., ::-1].astype(np.float32) / 255.0


@register_tool
class BilateralDenoise(PerImageTool):
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
        d = fit_odd(2 * math.ceil(2 * params["sigma_space"]) + 1, *image.shape[:2])
        return cv2.bilateralFilter(image, d, sigma_r, params["sigma_space"])


#: Orthonormal colour transform of Yu and Sapiro's DCT denoiser (rows: mean, two opponents).
_OPPONENT = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64) / np.array(
    [[math.sqrt(3)], [math.sqrt(2)], [math.sqrt(6)]]
)


@register_tool
class DCTDenoise(PerImageTool):
    """Sliding-window 8x8 DCT hard thresholding (Yu and Sapiro, IPOL 2011)."""

    info = ToolInfo(
        name="dct_denoise",
        preferred=True,  # the fixed and oracle agents' tool for its task
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
        out = shifted_dct_threshold(colours, (threshold,) * 3, int(params["step"]))
        return out @ _OPPONENT


def tv_chambolle_torch(
    batch: torch.Tensor, weight: torch.Tensor, eps: float = 2e-4, max_iter: int = 200
) -> torch.Tensor:
    """Chambolle's TV denoising (2004) of every channel of every image, one weight per image.

    A port of ``skimage.restoration.denoise_tv_chambolle(channel_axis=-1)`` (0.26): each
    channel is its own 2-D problem and stops on its own when its energy changes by less
    than ``eps`` times its first energy; here all planes iterate together and a plane's
    result is frozen when it stops. Images with weight <= 0 come back unchanged.

    Args:
        batch: N x C x H x W float images.
        weight: (N,) TV weights.
        eps: Relative energy change that stops a plane.
        max_iter: Iteration cap.
    """
    n, c, h, w = batch.shape
    image = batch.reshape(n * c, h, w)
    wt = weight.to(batch).repeat_interleave(c)[:, None, None]
    active = (wt > 0).flatten()
    wt = torch.where(wt > 0, wt, torch.ones_like(wt))  # inactive planes: avoid 0 division
    result = image.clone()
    p = torch.zeros((2, *image.shape), dtype=image.dtype, device=image.device)
    g = torch.zeros_like(p)
    d = torch.zeros_like(image)
    tau = 0.25
    e_init = e_prev = torch.zeros(n * c, dtype=image.dtype, device=image.device)
    for i in range(max_iter):
        if i > 0:
            d = -p.sum(0)
            d[:, 1:, :] += p[0, :, :-1, :]
            d[:, :, 1:] += p[1, :, :, :-1]
            out = image + d
        else:
            out = image
        energy = (d**2).sum((1, 2))
        g[0, :, :-1, :] = out[:, 1:, :] - out[:, :-1, :]
        g[1, :, :, :-1] = out[:, :, 1:] - out[:, :, :-1]
        norm = torch.sqrt((g**2).sum(0))
        energy = (energy + wt.flatten() * norm.sum((1, 2))) / float(h * w)
        p = (p - tau * g) / (norm * (tau / wt) + 1.0)
        result[active] = out[active]
        if i == 0:
            e_init = e_prev = energy
        else:
            active &= ~((e_prev - energy).abs() < eps * e_init)
            e_prev = energy
        if not bool(active.any()):
            break
    return result.reshape(n, c, h, w)


@register_tool
class TVDenoise(PerImageTool):
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:func:`tv_chambolle_torch` with ``weight = strength * sigma_hat`` per image."""
        sigma = estimate_noise_sigma_torch(batch).to(batch.dtype)
        weight = per_sample(params["strength"], batch).flatten() * sigma
        return tv_chambolle_torch(batch, weight)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test).

        ``skimage.restoration.denoise_tv_chambolle`` with ``weight = strength * sigma_hat``.
        """
        from skimage.restoration import denoise_tv_chambolle

        weight = params["strength"] * estimate_noise_sigma(image)
        if weight <= 0:
            return image
        return denoise_tv_chambolle(image, weight=weight, channel_axis=-1)
