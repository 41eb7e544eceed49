"""Brightening (low-light) tools: AgenticIR's CLAHE, gamma correction and constant shift of V.

Changing HSV V while keeping H and S scales R, G and B by the same factor, which is how they
are computed here (exactly, without 8-bit HSV round trips).
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch

from tir_env.dsp import per_sample
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    channel_max,
    channel_max_torch,
    scale_value,
    scale_value_torch,
    to_u8,
)
from tir_env.types import ImageF32, Param


@register_tool
class CLAHE(PerImageTool):
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
        v = to_u8(channel_max(image))
        tiles = max(1, min(int(params["tiles"]), min(v.shape) // 16))
        clahe = cv2.createCLAHE(clipLimit=params["clip_limit"], tileGridSize=(tiles, tiles))
        new_v = clahe.apply(v).astype(np.float32) / 255.0
        return scale_value(image, new_v.reshape(v.shape))


@register_tool
class GammaCorrection(PerImageTool):
    """Gamma correction of HSV V: ``V' = V^(1/gamma)`` (AgenticIR: gamma 1.5)."""

    info = ToolInfo(
        name="gamma_correction",
        preferred=True,  # the fixed and oracle agents' tool for its task
        task="brightening",
        params=spec(gamma=Param(0.3, 3.0, 1.5, "gamma; > 1 brightens, < 1 darkens")),
        cost_hint=1.0,
        description="Gamma correction of HSV value, V' = V^(1/gamma) (AgenticIR: gamma 1.5).",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Raise V = max(R, G, B) to ``1/gamma``, keep hue and saturation (batched torch).

        ``gamma`` may also be a per-image ``(N,)`` tensor.
        """
        v = channel_max_torch(batch)
        return scale_value_torch(batch, v ** (1.0 / per_sample(params["gamma"], batch)))

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test)."""
        v = channel_max(image)
        return scale_value(image, np.power(v, 1.0 / params["gamma"]))


@register_tool
class ConstantShift(PerImageTool):
    """Constant shift of HSV V (AgenticIR: +40 of 255)."""

    info = ToolInfo(
        name="constant_shift",
        task="brightening",
        params=spec(shift=Param(-100.0, 100.0, 40.0, "added to HSV value, on the 0-255 scale")),
        cost_hint=1.0,
        description="Adds a constant to HSV value (AgenticIR: +40 of 255), clipped to [0, 255].",
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """``V' = clip(V + shift / 255, 0, 1)``, keep hue and saturation (batched torch).

        ``shift`` may also be a per-image ``(N,)`` tensor.
        """
        v = channel_max_torch(batch)
        new_v = (v + per_sample(params["shift"], batch) / 255.0).clamp(0.0, 1.0)
        return scale_value_torch(batch, new_v)

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image numpy reference of :meth:`apply` (kept for the parity test)."""
        v = channel_max(image)
        return scale_value(image, np.clip(v + params["shift"] / 255.0, 0.0, 1.0))
