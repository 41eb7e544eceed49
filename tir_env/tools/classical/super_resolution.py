"""Super-resolution (x4) tools: bicubic, Lanczos plus unsharp masking, back-projection."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tir_env.images import resize
from tir_env.tools.base import Tool, ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    unsharp,
)
from tir_env.types import ImageF32, Param


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
class LanczosSharpenX4(PerImageTool):
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
        return unsharp(np.clip(up, 0, 1), params["sigma"], params["amount"])


@register_tool
class BackProjectionX4(Tool):
    """x4 iterative back-projection (Irani and Peleg, CVGIP 1991)."""

    info = ToolInfo(
        name="back_projection_x4",
        preferred=True,  # the fixed and oracle agents' tool for its task
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
