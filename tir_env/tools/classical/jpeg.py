"""JPEG artifact removal: shifted-grid DCT thresholding and TV smoothing, chroma from luma."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from tir_env.dsp import (
    guided_filter,
    guided_filter_torch,
    per_sample,
    shifted_dct_threshold,
    shifted_dct_threshold_torch,
)
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    by_structure,
    rgb_to_ycc,
    rgb_to_ycc_torch,
    ycc_to_rgb,
    ycc_to_rgb_torch,
)
from tir_env.tools.classical.denoising import tv_chambolle_torch
from tir_env.types import ImageF32, Param


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


def _chroma_from_luma_torch(ycc: torch.Tensor, radius: int) -> torch.Tensor:
    """:func:`_chroma_from_luma` of a batch (Y, Cb, Cr channels)."""
    if radius <= 0:
        return ycc
    chroma = guided_filter_torch(ycc[:, :1], ycc[:, 1:], radius, 1e-4)
    return torch.cat([ycc[:, :1], chroma], dim=1)


@register_tool
class ShiftedDCTDeblock(PerImageTool):
    """Translation-invariant DCT thresholding of luma (Nosratinia, 2001) plus chroma from luma."""

    batch_params = frozenset({"threshold", "chroma_radius", "step"})
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Batched :meth:`restore`: all grid shifts in one block-DCT op, guided chroma.

        ``threshold`` may also be a per-image ``(N,)`` tensor, and so may ``chroma_radius``
        and ``step`` (images are grouped by them: they set window and grid shapes).
        """
        return by_structure(batch, params, ("chroma_radius", "step"), self._apply_group)

    @staticmethod
    def _apply_group(
        batch: torch.Tensor, params: Mapping[str, float | torch.Tensor]
    ) -> torch.Tensor:
        ycc = rgb_to_ycc_torch(batch)
        threshold = per_sample(params["threshold"], batch) / 255.0
        luma = shifted_dct_threshold_torch(ycc[:, :1], threshold, int(params["step"]))
        ycc = torch.cat([luma.to(batch.dtype), ycc[:, 1:]], dim=1)
        return ycc_to_rgb_torch(_chroma_from_luma_torch(ycc, int(params["chroma_radius"])))

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image reference of :meth:`apply` (kept for the parity test).

        Threshold every 8x8 DCT block of Y for each grid shift, average; then chroma.

        Averaging over shifts removes the block edges a single grid would keep (Nosratinia,
        "Enhancement of JPEG-compressed images by re-application of JPEG", JVLSI 2001);
        chroma follows with :func:`_chroma_from_luma`.
        """
        ycc = rgb_to_ycc(image)
        luma = ycc[..., :1].astype(np.float64)
        luma = shifted_dct_threshold(luma, (params["threshold"] / 255.0,), int(params["step"]))
        ycc[..., 0] = luma[..., 0]
        return ycc_to_rgb(_chroma_from_luma(ycc, int(params["chroma_radius"])))


@register_tool
class TVDeblock(PerImageTool):
    """Total-variation smoothing of luma plus chroma from luma, for JPEG images."""

    cpu_reference = True  # its scikit-image reference is faster than the port on a CPU
    cpu_port_from = 8  # from 8 images the port is faster (64 px, one core)
    structure_params = ("chroma_radius",)  # a port call per radius (_apply_group)
    batch_params = frozenset({"weight", "chroma_radius"})
    info = ToolInfo(
        name="jpeg_tv",
        preferred=True,  # the fixed and oracle agents' tool for its task
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Batched :meth:`restore`: :func:`tv_chambolle_torch` of Y, guided chroma.

        ``weight`` may also be a per-image ``(N,)`` tensor, and so may ``chroma_radius``
        (images are grouped by it).
        """
        return by_structure(batch, params, self.structure_params, self._apply_group)

    @staticmethod
    def _apply_group(
        batch: torch.Tensor, params: Mapping[str, float | torch.Tensor]
    ) -> torch.Tensor:
        ycc = rgb_to_ycc_torch(batch)
        weight = per_sample(params["weight"], batch).flatten().expand(batch.shape[0])
        ycc = torch.cat([tv_chambolle_torch(ycc[:, :1], weight), ycc[:, 1:]], dim=1)
        return ycc_to_rgb_torch(_chroma_from_luma_torch(ycc, int(params["chroma_radius"])))

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Per-image reference of :meth:`apply` (kept for the parity test).

        Chambolle TV of Y (``skimage.restoration.denoise_tv_chambolle``), then chroma.

        A small TV weight flattens block steps and ringing, which have large total
        variation for their energy, while keeping edges (Alter, Durand and Froment, 2005,
        use TV minimisation against JPEG artefacts); chroma follows with
        :func:`_chroma_from_luma`.
        """
        from skimage.restoration import denoise_tv_chambolle

        ycc = rgb_to_ycc(image)
        ycc[..., 0] = denoise_tv_chambolle(ycc[..., 0], weight=params["weight"])
        return ycc_to_rgb(_chroma_from_luma(ycc, int(params["chroma_radius"])))
