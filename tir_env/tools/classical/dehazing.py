"""Dehazing tools: the dark channel prior and a global-transmission haze inversion."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch

from tir_env.dsp import (
    guided_filter,
    guided_filter_torch,
    pad_symmetric,
    per_sample,
    window_max,
)
from tir_env.images import channel_min
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    fit_odd,
    luma,
    luma_torch,
)
from tir_env.types import ImageF32, Param


def _dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """Minimum over colour channels and a ``patch`` x ``patch`` window (grey erosion)."""
    k = fit_odd(patch, *image.shape[:2]) if min(image.shape[:2]) > 1 else 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    return cv2.erode(channel_min(image), kernel, borderType=cv2.BORDER_REFLECT)


def _airlight(image: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Atmospheric light: mean colour of the pixels in the brightest 0.1% of the dark channel.

    Dark-channel values tie (a min-filter of 8-bit pixels), and which tied pixels
    ``np.argpartition`` keeps at the cut depends on the CPU (numpy picks a SIMD partition where
    the CPU has one): on another machine the same photo gave another airlight, and expert
    replays and benchmark records did not reproduce. ``torch.topk`` (the batched port's
    choice) keeps the same pixels on every CPU tried, so the reference uses it too.
    """
    flat = dark.ravel()
    n = max(1, flat.size // 1000)
    idx = torch.from_numpy(np.ascontiguousarray(flat)).topk(n).indices.numpy()
    return np.maximum(image.reshape(-1, 3)[idx].mean(axis=0), 0.05)


def _dark_channel_torch(batch: torch.Tensor, patch: int) -> torch.Tensor:
    """:func:`_dark_channel` of a batch (N x 1 x H x W): a min-pool with reflected borders."""
    h, w = batch.shape[-2:]
    k = fit_odd(patch, h, w) if min(h, w) > 1 else 1
    dark = batch.amin(dim=1, keepdim=True)
    if k == 1:
        return dark
    return -window_max(-pad_symmetric(dark, k // 2, k // 2), k, k)


def _airlight_torch(batch: torch.Tensor, dark: torch.Tensor) -> torch.Tensor:
    """:func:`_airlight` of a batch: N x 3 x 1 x 1."""
    flat = dark.flatten(1)
    n = max(1, flat.shape[1] // 1000)
    idx = flat.topk(n, dim=1).indices  # N x n
    pixels = batch.flatten(2).gather(2, idx[:, None, :].expand(-1, 3, -1))
    return pixels.mean(dim=2).clamp_min(0.05)[..., None, None]


def _percentile_torch(x: torch.Tensor, percent: torch.Tensor) -> torch.Tensor:
    """``np.percentile(x[i], percent[i])`` of every row of ``x`` (N x M), linear, float64.

    One sort for the batch; each row then interpolates at its own rank ``p / 100 (M - 1)``.
    """
    values = x.to(torch.float64).sort(dim=1).values
    rank = percent.to(values.device, torch.float64) / 100.0 * (values.shape[1] - 1)
    low = rank.floor().long().clamp(0, values.shape[1] - 1)
    high = (low + 1).clamp_max(values.shape[1] - 1)
    frac = rank - low
    a, b = values.gather(1, low[:, None])[:, 0], values.gather(1, high[:, None])[:, 0]
    return a + (b - a) * frac


@register_tool
class DarkChannelPrior(PerImageTool):
    """Dark channel prior dehazing with guided-filter refinement (He, Sun and Tang, CVPR 2009)."""

    batch_params = frozenset({"omega", "t0"})  # patch and radius size windows: separate calls
    info = ToolInfo(
        name="dark_channel_prior",
        preferred=True,  # the fixed and oracle agents' tool for its task
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:meth:`restore` on the whole batch in torch (``omega``, ``t0`` may be per image).

        The airlight's brightest 0.1% of the dark channel is a top-k; where dark-channel
        values tie at the cut, top-k and numpy's partition may keep different pixels, so A
        (and the output) can differ slightly from :meth:`restore`.
        """
        patch = int(params["patch"])
        air = _airlight_torch(batch, _dark_channel_torch(batch, patch))
        t = 1.0 - per_sample(params["omega"], batch) * _dark_channel_torch(batch / air, patch)
        t = guided_filter_torch(luma_torch(batch), t, int(params["radius"]), 1e-3)
        t = torch.maximum(t, per_sample(params["t0"], batch))
        return (batch - air) / t + air

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test).

        Estimate A from the dark channel, ``t = 1 - omega dark(I / A)``, refine, invert.

        The guided filter (He et al., TPAMI 2013; eps 1e-3, guide = luma) replaces the
        paper's soft matting.
        """
        patch = int(params["patch"])
        air = _airlight(image, _dark_channel(image, patch))
        t = 1.0 - params["omega"] * _dark_channel(image / air, patch)
        t = guided_filter(luma(image), t, int(params["radius"]), 1e-3)
        t = np.maximum(t, params["t0"])[..., None]
        return (image - air) / t + air


@register_tool
class GlobalDehaze(PerImageTool):
    """Haze removal with one global transmission: a haze-aware contrast stretch."""

    cpu_reference = True  # its OpenCV reference is faster than the port on a CPU
    cpu_port_from = 4  # from 4 images the port is faster (64 px, one core)
    batch_params = frozenset({"omega", "percentile"})
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:meth:`restore` on the whole batch in torch (parameters may be per-image tensors).

        The airlight's top-k may keep other pixels than numpy's partition where dark-channel
        values tie at the cut (see :meth:`DarkChannelPrior.apply`).
        """
        n = batch.shape[0]
        air = _airlight_torch(batch, _dark_channel_torch(batch, 7))
        # float64: a float32 percentile would move the rank by up to 1e-5 of the pixel count
        percent = torch.as_tensor(params["percentile"], dtype=torch.float64).flatten().expand(n)
        q = _percentile_torch((batch / air).amin(dim=1).flatten(1), percent)
        omega = per_sample(params["omega"], batch).flatten().to(q)
        t = (1.0 - omega * q.clamp_max(0.95)).clamp_min(0.05)
        return (batch - air) / t.to(batch.dtype).reshape(-1, 1, 1, 1) + air

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """``I = J t + A (1 - t)`` with one ``t`` for the whole image.

        ``A`` as in the dark channel prior; ``1 - t = omega * q`` with ``q`` the
        ``percentile``-th percentile of the pixel-wise dark channel of ``I / A``: the darkest
        scene points should be black once the haze is removed (He et al.'s prior, applied
        globally, so it cannot create the halos of a per-pixel map).
        """
        air = _airlight(image, _dark_channel(image, 7))
        q = float(np.percentile(channel_min(image / air), params["percentile"]))
        t = max(1.0 - params["omega"] * min(q, 0.95), 0.05)
        return (image - air) / t + air
