"""Denoising tools: non-local means, bilateral, sliding DCT and total-variation denoising."""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tir_env.dsp import (
    pad_fold,
    per_sample,
    shifted_dct_threshold,
    shifted_dct_threshold_torch,
)
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    by_structure,
    estimate_noise_sigma,
    estimate_noise_sigma_torch,
    fit_odd,
    lab_to_linear_rgb_torch,
    linear_rgb_to_lab_torch,
    to_u8,
)
from tir_env.types import ImageF32, Param


@register_tool
class NLMDenoise(PerImageTool):
    """Non-local means on colour images (Buades et al., CVPR 2005; OpenCV's fast version)."""

    cpu_reference = True  # its OpenCV reference is faster than the port on a CPU
    spread_reference = True  # OpenCV calls that release the GIL: images on many cores
    batch_params = frozenset({"strength", "search"})
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:func:`nl_means_torch` of OpenCV's Lab planes, ``h = strength * sigma_hat * 255``.

        ``strength`` and ``search`` may also be per-image ``(N,)`` tensors. OpenCV (the
        reference, :meth:`restore`) rounds to 8-bit Lab, uses fixed-point weights and a
        quantised patch distance; this float version agrees with it to > 45 dB.
        """
        n, _, height, width = batch.shape
        sigma = estimate_noise_sigma_torch(batch).to(batch.dtype) * 255.0
        h = (per_sample(params["strength"], batch).flatten() * sigma).clamp_min(0.5)
        search = torch.as_tensor(params["search"], dtype=torch.float64).flatten().expand(n)
        half = torch.tensor([fit_odd(int(v), height, width) // 2 for v in search.tolist()])
        template = fit_odd(7, height, width)
        # OpenCV's 8-bit Lab scale (L to 0..255; the +128 offset of a and b cancels), in float
        scale = torch.tensor([255 / 100, 1.0, 1.0], dtype=batch.dtype, device=batch.device)
        lab = linear_rgb_to_lab_torch(batch) * scale.reshape(1, 3, 1, 1)
        lum = nl_means_torch(lab[:, :1], h, half, template)
        chroma = nl_means_torch(lab[:, 1:], h, half, template)
        out = torch.cat([lum, chroma], dim=1) / scale.reshape(1, 3, 1, 1)
        return lab_to_linear_rgb_torch(out).clamp(0.0, 1.0)

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


#: OpenCV's NLM drops weights below this fraction of the centre weight (``WEIGHT_THRESHOLD``).
NLM_WEIGHT_THRESHOLD = 0.001


def _box_valid(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over every ``size`` x ``size`` window lying inside ``x`` (no padding).

    Running sums (integral image) in float64, which keeps the differences of large sums
    exact enough; 2-4x faster on CPU than ``avg_pool2d``.
    """
    c = F.pad(x.to(torch.float64).cumsum(-1), (1, 0))
    rows = c[..., size:] - c[..., :-size]
    c = F.pad(rows.cumsum(-2), (0, 0, 1, 0))
    return ((c[..., size:, :] - c[..., :-size, :]) / (size * size)).to(x.dtype)


def nl_means_torch(
    planes: torch.Tensor, h: torch.Tensor, half: torch.Tensor, template: int
) -> torch.Tensor:
    """Non-local means (Buades et al., CVPR 2005) of every image, all channels jointly.

    ``out(p) = sum_q w(p, q) x(q) / sum_q w(p, q)`` over the square search window
    ``max(|dy|, |dx|) <= half`` around ``p``, with ``w = exp(-d(p, q) / (h^2 C))``, ``d``
    the mean over a ``template`` x ``template`` patch of the squared difference summed over
    the C channels, and weights under :data:`NLM_WEIGHT_THRESHOLD` set to 0: the weighting
    of OpenCV's ``fastNlMeansDenoising`` (``DistSquared::calcWeight``), in float, with
    reflected (``BORDER_REFLECT_101``) borders.

    Args:
        planes: N x C x H x W values (OpenCV's 0..255 scale).
        h: (N,) filter strengths.
        half: (N,) integer search half-widths; the loop runs to the largest and the
            offsets outside an image's own window get weight 0.
        template: Odd patch size.
    """
    n, c, height, width = planes.shape
    big = int(half.max())
    t = template // 2
    padded = pad_fold(planes, (big + t,) * 4, "reflect101")
    centre = padded[..., big : big + height + 2 * t, big : big + width + 2 * t]
    scale = (-1.0 / (h.to(planes) ** 2 * c)).reshape(n, 1, 1, 1)
    limit = half.to(planes.device).reshape(n, 1, 1, 1)
    num = torch.zeros_like(planes)
    den = torch.zeros((n, 1, height, width), dtype=planes.dtype, device=planes.device)
    # one search offset per step: each op covers the whole batch but stays cache-sized
    for dy in range(-big, big + 1):
        for dx in range(-big, big + 1):
            shifted = padded[..., big + dy :, big + dx :][..., : height + 2 * t, : width + 2 * t]
            dist = _box_valid(((shifted - centre) ** 2).sum(1, keepdim=True), template)
            weight = torch.exp(dist * scale)
            keep = (weight >= NLM_WEIGHT_THRESHOLD) & (max(abs(dy), abs(dx)) <= limit)
            weight = weight * keep
            num += weight * shifted[..., t : t + height, t : t + width]
            den += weight
    return num / den


def bilateral_torch(
    batch: torch.Tensor, sigma_color: torch.Tensor, sigma_space: torch.Tensor, radius: torch.Tensor
) -> torch.Tensor:
    """OpenCV's float ``bilateralFilter`` of every image, parameters per image.

    ``out(p) = sum_q w x(q) / sum_q w`` over the disk ``|q - p| <= radius`` with ``w =
    exp(-|q - p|^2 / 2 sigma_space^2) exp(-D^2 / 2 sigma_color^2)``, ``D`` the L1 colour
    distance summed over channels, reflected (``BORDER_REFLECT_101``) borders
    (``bilateral_filter.dispatch.cpp``; OpenCV interpolates ``exp`` in a 4096-bin table per
    channel, here it is exact).

    Args:
        batch: N x C x H x W images.
        sigma_color: (N,) range sigmas (colour units).
        sigma_space: (N,) spatial sigmas in pixels.
        radius: (N,) integer disk radii; the loop runs to the largest.
    """
    n, _, height, width = batch.shape
    big = int(radius.max())
    padded = pad_fold(batch, (big,) * 4, "reflect101")
    colour = (-0.5 / sigma_color.to(batch) ** 2).reshape(n, 1, 1, 1)
    space = (-0.5 / sigma_space.to(batch) ** 2).reshape(n, 1, 1, 1)
    limit = radius.to(batch).reshape(n, 1, 1, 1)
    num = torch.zeros_like(batch)
    den = torch.zeros((n, 1, height, width), dtype=batch.dtype, device=batch.device)
    for dy in range(-big, big + 1):
        for dx in range(-big, big + 1):
            r2 = float(dy * dy + dx * dx)
            if math.sqrt(r2) > big:
                continue
            shifted = padded[..., big + dy : big + dy + height, big + dx : big + dx + width]
            dist = (shifted - batch).abs().sum(1, keepdim=True)
            spatial = torch.exp(space * r2) * (math.sqrt(r2) <= limit)
            weight = spatial * torch.exp(dist * dist * colour)
            num += weight * shifted
            den += weight
    return num / den


@register_tool
class BilateralDenoise(PerImageTool):
    """Bilateral filter (Tomasi and Manduchi, ICCV 1998)."""

    cpu_reference = True  # its OpenCV reference is faster than the port on a CPU
    spread_reference = True  # OpenCV calls that release the GIL: images on many cores
    batch_params = frozenset({"strength", "sigma_space"})
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:func:`bilateral_torch` with ``sigma_r = strength * sigma_hat`` per image.

        ``strength`` and ``sigma_space`` may also be per-image ``(N,)`` tensors.
        """
        n, _, height, width = batch.shape
        sigma_r = per_sample(params["strength"], batch).flatten() * estimate_noise_sigma_torch(
            batch
        ).to(batch.dtype)
        sigma_s = torch.as_tensor(params["sigma_space"], dtype=torch.float64).flatten().expand(n)
        radius = torch.tensor(
            [
                max(1, fit_odd(2 * math.ceil(2 * s) + 1, height, width) // 2)
                for s in sigma_s.tolist()
            ]
        )
        return bilateral_torch(batch, sigma_r.clamp_min(1e-3), sigma_s.to(batch), radius)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image reference of :meth:`apply` (kept for the parity test).

        OpenCV ``bilateralFilter`` with ``sigma_r = strength * sigma_hat`` (RGB distance).
        """
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

    batch_params = frozenset({"strength", "step"})
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:func:`shifted_dct_threshold_torch` in opponent colours, one threshold per image.

        ``strength`` and ``step`` may also be per-image ``(N,)`` tensors (images are grouped
        by ``step``, which sets the grid shifts). Images whose estimated sigma is 0 come back
        unchanged.
        """
        return by_structure(batch, params, ("step",), self._apply_step)

    @staticmethod
    def _apply_step(
        batch: torch.Tensor, params: Mapping[str, float | torch.Tensor]
    ) -> torch.Tensor:
        sigma = estimate_noise_sigma_torch(batch)
        opponent = torch.from_numpy(_OPPONENT).to(batch.device)
        colours = torch.einsum("ij,njhw->nihw", opponent.to(batch.dtype), batch)
        strength = per_sample(params["strength"], colours).flatten()
        threshold = (3.0 * strength * sigma.to(batch.dtype)).reshape(-1, 1, 1, 1)
        out = shifted_dct_threshold_torch(colours, threshold, int(params["step"]))
        out = torch.einsum("ij,nihw->njhw", opponent.to(batch.dtype), out)
        return torch.where((sigma > 0).reshape(-1, 1, 1, 1), out, batch)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image reference of :meth:`apply` (kept for the parity test).

        Orthonormal opponent colours, threshold ``3 strength sigma_hat``, average shifts.
        """
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
    result = image.clone()
    wt = weight.to(batch).repeat_interleave(c)
    # The working set: planes still iterating (``plane`` maps them to ``result``). A plane
    # that stops leaves it, so a batch costs the sum of its planes' iterations rather than
    # the slowest plane's count times the batch (at 64 px, 16 luma planes stop after 6-16
    # iterations: 164 plane-iterations instead of 256).
    plane = (wt > 0).nonzero().flatten()
    if plane.numel() == 0:
        return result.reshape(n, c, h, w)
    image, wt = image[plane], wt[plane]
    step = (0.25 / wt)[:, None, None]  # the dual step tau = 0.25 over the weight, per plane
    p = torch.zeros((2, *image.shape), dtype=image.dtype, device=image.device)
    g = torch.zeros_like(p)
    e_init = e_prev = torch.zeros(len(plane), dtype=image.dtype, device=image.device)
    out = image
    for i in range(max_iter):
        if i > 0:
            d = -p.sum(0)
            d[:, 1:, :] += p[0, :, :-1, :]
            d[:, :, 1:] += p[1, :, :, :-1]
            out = image + d
            energy = (d * d).sum((1, 2))
        else:
            energy = torch.zeros_like(e_init)
        torch.sub(out[:, 1:, :], out[:, :-1, :], out=g[0, :, :-1, :])
        torch.sub(out[:, :, 1:], out[:, :, :-1], out=g[1, :, :, :-1])
        norm = torch.addcmul(g[0] * g[0], g[1], g[1]).sqrt_()
        energy = (energy + wt * norm.sum((1, 2))) / float(h * w)
        # p <- (p - tau g) / (1 + tau / w |g|), in place: a third of the ops of the formula
        p.sub_(g, alpha=0.25).div_(norm.mul_(step).add_(1.0))
        if i == 0:
            e_init = e_prev = energy
            continue
        done = (e_prev - energy).abs() < eps * e_init
        e_prev = energy
        if bool(done.any()):
            result[plane[done]] = out[done]  # a stopped plane keeps this iteration's result
            keep = ~done
            if not bool(keep.any()):
                return result.reshape(n, c, h, w)
            plane, image, out, wt, step = plane[keep], image[keep], out[keep], wt[keep], step[keep]
            p, g = p[:, keep], g[:, keep]
            e_init, e_prev = e_init[keep], e_prev[keep]
    result[plane] = out  # the iteration cap
    return result.reshape(n, c, h, w)


@register_tool
class TVDenoise(PerImageTool):
    """Total-variation denoising (Rudin, Osher and Fatemi 1992; Chambolle's algorithm, 2004)."""

    batch_params = frozenset({"strength"})
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
