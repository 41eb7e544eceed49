"""Batched torch ports of classical tools against their per-image numpy references.

Each ported tool keeps its former per-image implementation as ``restore``; its batched
``apply`` must reproduce it on the bundled test photos (PSNR >= 40 dB between the two
outputs), on clean crops and on crops degraded the way the tool's task is.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tir_env.degradations import make_degradation
from tir_env.tools import make_tool, tool_info
from tir_env.tools.classical._common import per_image

#: Ported tools -> the degradation their parity is also checked on (parameters drawn, seed 0).
PORTED: dict[str, str] = {
    "gamma_correction": "dark",
    "constant_shift": "dark",
    "unsharp_mask": "defocus_blur",
    "motion_wiener": "motion_blur",
    "defocus_wiener": "defocus_blur",
    "dark_channel_prior": "haze",
    "tv_denoise": "noise",
    "motion_wiener_blind": "motion_blur",
    "motion_rl_blind": "motion_blur",
    "defocus_rl": "defocus_blur",
    "clahe": "dark",
    "global_dehaze": "haze",
    "derain_median": "rain",
    "derain_opening": "rain",
}
MIN_PSNR = 40.0


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _param_sets(name: str) -> list[dict[str, float]]:
    spec = tool_info(name).params
    low = {k: p.low for k, p in spec.items()}
    high = {k: p.high for k, p in spec.items()}
    return [{}, low, high]


def parity_psnr(name: str, batch: torch.Tensor, params: dict[str, float]) -> float:
    """PSNR between the batched tool and its per-image reference on ``batch``."""
    tool = make_tool(name)
    resolved = tool.resolve(params)
    new = tool(batch, params)
    ref = per_image(batch, lambda image: tool.restore(image, resolved)).clamp(0, 1)  # type: ignore[attr-defined]
    return _psnr(new, ref)


@pytest.fixture(scope="module")
def photos(test_batches: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(test_batches)


@pytest.mark.parametrize("name", sorted(PORTED))
def test_batched_port_matches_reference(name: str, photos: torch.Tensor) -> None:
    degradation = make_degradation(PORTED[name])
    degraded = degradation.apply(photos, degradation.sample(np.random.default_rng(0)))
    for batch in (photos, degraded):
        for params in _param_sets(name):
            psnr = parity_psnr(name, batch, params)
            assert psnr >= MIN_PSNR, f"{name} {params}: {psnr:.1f} dB"


@pytest.mark.parametrize("name", ["gamma_correction", "unsharp_mask", "motion_wiener"])
def test_per_image_parameters(name: str, photos: torch.Tensor) -> None:
    """Elementwise parameters may differ per image inside one batch."""
    tool = make_tool(name)
    key = {"gamma_correction": "gamma", "unsharp_mask": "amount", "motion_wiener": "snr_db"}[name]
    spec = tool_info(name).params[key]
    values = torch.linspace(spec.low, spec.high, len(photos))
    defaults = tool.resolve({})
    # apply() takes per-image tensors where the parameter is elementwise (not via __call__)
    together = tool.apply(photos, {**defaults, key: values})  # type: ignore[dict-item]
    for i, v in enumerate(values.tolist()):
        alone = tool.apply(photos[i : i + 1], {**defaults, key: v})
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=0)


def test_batched_port_runs_on_tiny_images() -> None:
    """Window sizes fold back (reflection) when the kernel is larger than the image."""
    tiny = torch.rand(2, 3, 3, 2)
    for name in PORTED:
        out = make_tool(name)(tiny)
        assert out.shape == tiny.shape
