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
from hypothesis import given
from hypothesis import strategies as st

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


# ------------------------------------- super-resolution, denoising and JPEG ports (issue 17 A)

#: Tools ported after the first seven -> the degradation their parity is also checked on.
PORTED_SR_DENOISE_JPEG: dict[str, str] = {
    "bicubic_x4": "low_resolution",
    "lanczos_x4_sharpen": "low_resolution",
    "bilateral_denoise": "noise",
    "dct_denoise": "noise",
    "nlm_denoise": "noise",
    "jpeg_shifted_dct": "jpeg",
    "jpeg_tv": "jpeg",
}


@pytest.mark.parametrize("name", sorted(PORTED_SR_DENOISE_JPEG))
def test_sr_denoise_jpeg_ports_match_reference(name: str, photos: torch.Tensor) -> None:
    degradation = make_degradation(PORTED_SR_DENOISE_JPEG[name])
    degraded = degradation.apply(photos, degradation.sample(np.random.default_rng(0)))
    for batch in (photos, degraded):
        for params in _param_sets(name):
            psnr = parity_psnr(name, batch, params)
            assert psnr >= MIN_PSNR, f"{name} {params}: {psnr:.1f} dB"


def _per_image_values(name: str, n: int) -> dict[str, torch.Tensor]:
    """Every parameter of ``name`` varying over the batch: low, high, default, midpoint."""
    values = {}
    for key, p in tool_info(name).params.items():
        cycle = [p.low, p.high, p.default, (p.low + p.high) / 2]
        column = [float(round(v)) if p.integer else v for v in cycle]
        values[key] = torch.tensor([column[i % len(column)] for i in range(n)])
    return values


@pytest.mark.parametrize("name", sorted(PORTED_SR_DENOISE_JPEG))
def test_every_parameter_per_image(name: str, photos: torch.Tensor) -> None:
    """All parameters, window sizes and grid steps included, may differ inside one batch."""
    tool = make_tool(name)
    values = _per_image_values(name, len(photos))
    noisy = photos + 0.05 * torch.randn(photos.shape, generator=torch.Generator().manual_seed(0))
    noisy = noisy.clamp(0, 1)
    together = tool.apply(noisy, values)  # type: ignore[arg-type]
    for i in range(len(photos)):
        alone = tool.apply(noisy[i : i + 1], {k: float(v[i]) for k, v in values.items()})
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=0)


def test_sr_denoise_jpeg_ports_run_on_tiny_images() -> None:
    """Windows, blocks and grids fold back (reflection) on images smaller than them."""
    for shape in ((2, 3, 3, 2), (1, 3, 1, 1)):
        tiny = torch.rand(shape)
        for name in PORTED_SR_DENOISE_JPEG:
            scale = tool_info(name).scale
            out = make_tool(name)(tiny)
            assert out.shape == (shape[0], 3, shape[2] * scale, shape[3] * scale)


@pytest.mark.parametrize(("h", "search", "channels"), [(5.0, 21, 1), (30.0, 7, 1), (12.0, 11, 2)])
def test_nl_means_core_matches_opencv(h: float, search: int, channels: int) -> None:
    """On 8-bit planes, :func:`nl_means_torch` is OpenCV's NLM within one grey level.

    OpenCV rounds its output and quantises the patch distance (``almost_dist``); the float
    version does neither. ``nlm_denoise`` as a whole (8-bit Lab in OpenCV, float Lab here)
    is covered by the parity test above.
    """
    import cv2

    from tir_env.tools.classical.denoising import nl_means_torch

    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, size=(1, 1, channels)) + np.linspace(0, 40, 40)[:, None, None]
    plane = np.clip(base + rng.normal(0, 12, (40, 40, channels)), 0, 255).astype(np.uint8)
    ref = cv2.fastNlMeansDenoising(plane if channels > 1 else plane[..., 0], None, h, 7, search)
    x = torch.from_numpy(plane.astype(np.float32)).permute(2, 0, 1)[None]
    new = nl_means_torch(x, torch.tensor([h]), torch.tensor([search // 2]), 7)
    diff = np.abs(new[0].permute(1, 2, 0).numpy() - ref.reshape(plane.shape))
    assert diff.max() <= 1.0
    assert diff.mean() <= 0.3


@given(
    n=st.integers(1, 9),
    before=st.integers(0, 20),
    after=st.integers(0, 20),
    mode=st.sampled_from(["reflect", "reflect101", "replicate"]),
)
def test_fold_index_matches_numpy_padding(n: int, before: int, after: int, mode: str) -> None:
    """:func:`fold_index` pads as numpy's symmetric / reflect / edge modes (OpenCV's borders)."""
    from tir_env.dsp import pad_fold

    x = np.arange(n, dtype=np.float32)
    np_mode = {"reflect": "symmetric", "reflect101": "reflect", "replicate": "edge"}[mode]
    if n == 1 and mode == "reflect101":
        np_mode = "edge"  # nothing to mirror in one pixel (OpenCV repeats it)
    expected = np.pad(x, (before, after), mode=np_mode)  # type: ignore[call-overload]
    got = pad_fold(torch.from_numpy(x)[None, None, None], (0, 0, before, after), mode)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got.flatten().numpy(), expected)
