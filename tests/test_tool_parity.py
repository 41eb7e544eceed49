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
from hypothesis import example, given, settings
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
    new = tool.apply(batch, resolved).clamp(0, 1)  # the torch port, also where cpu_reference
    ref = per_image(batch, lambda image, _: tool.restore(image, resolved)).clamp(0, 1)  # type: ignore[attr-defined]
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


# ------------------------------------------------- issue 17 part B: the second batch of ports

#: Ported in part B -> the degradation that makes their parameters matter.
PART_B = {
    "clahe": "dark",
    "global_dehaze": "haze",
    "motion_wiener_blind": "motion_blur",
    "motion_rl_blind": "motion_blur",
    "defocus_rl": "defocus_blur",
    "derain_median": "rain",
    "derain_opening": "rain",
}


def _degraded(photos: torch.Tensor, degradation: str) -> torch.Tensor:
    d = make_degradation(degradation)
    return d.apply(photos, d.sample(np.random.default_rng(0)))


@pytest.mark.parametrize("name", sorted(PART_B))
def test_part_b_tools_are_batched(name: str) -> None:
    """Each tool runs as one torch op per batch (its numpy code is only the reference)."""
    from tir_env.tools.classical import PerImageTool

    assert type(make_tool(name)).apply is not PerImageTool.apply


@pytest.mark.parametrize(
    ("name", "key"),
    [
        (name, key)
        for name in sorted(PART_B)
        for key in tool_info(name).params
        if name != "motion_rl_blind" or key == "iterations"
    ],
)
def test_part_b_per_image_parameters(name: str, key: str, photos: torch.Tensor) -> None:
    """Every parameter of the part B ports may differ per image inside one batch."""
    tool = make_tool(name)
    spec = tool_info(name).params[key]
    values = torch.linspace(spec.low, spec.high, len(photos))
    values = values.round() if spec.integer else values
    batch = _degraded(photos, PART_B[name])
    defaults = tool.resolve({})
    together = tool.apply(batch, {**defaults, key: values})  # type: ignore[dict-item]
    for i, v in enumerate(values.tolist()):
        alone = tool.apply(batch[i : i + 1], {**defaults, key: v})
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=0)


def test_blind_estimates_match_numpy(photos: torch.Tensor) -> None:
    """The batched blind estimators pick exactly the per-image numpy estimators' kernels."""
    from tir_env.images import batch_to_hwc
    from tir_env.tools.classical import estimate_disk_radius, estimate_motion_kernel
    from tir_env.tools.classical.blur_estimation import (
        estimate_disk_radii_torch,
        estimate_motion_kernels_torch,
    )

    for degradation in ("motion_blur", "defocus_blur"):
        batch = torch.cat([photos, _degraded(photos, degradation)])
        images = batch_to_hwc(batch)
        assert estimate_disk_radii_torch(batch) == [estimate_disk_radius(i) for i in images]
        for mine, ref in zip(
            estimate_motion_kernels_torch(batch),
            [estimate_motion_kernel(i) for i in images],
            strict=True,
        ):
            assert mine is ref if ref.shape == (1, 1) else np.array_equal(mine, ref)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 80),
    w=st.integers(1, 80),
    tiles=st.integers(1, 9),
    clip=st.floats(0.5, 8.0),
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["uniform", "dark", "flat"]),
)
def test_clahe_torch_is_opencv(
    h: int, w: int, tiles: int, clip: float, seed: int, kind: str
) -> None:
    """:func:`clahe_torch` reproduces OpenCV's CLAHE exactly, any size and grid."""
    import cv2

    from tir_env.tools.classical.brightening import clahe_torch

    rng = np.random.default_rng(seed)
    if kind == "uniform":
        image = rng.integers(0, 256, (h, w))
    elif kind == "dark":
        image = np.clip(rng.normal(40, 15, (h, w)), 0, 255)
    else:
        image = np.full((h, w), rng.integers(0, 256))
    image = image.astype(np.uint8)
    ref = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(image)
    mine = clahe_torch(torch.from_numpy(image).long()[None], tiles, torch.tensor([clip]))
    np.testing.assert_array_equal(mine[0].numpy(), ref.astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(
    size=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    radius=st.integers(1, 15),
    sigma=st.floats(1.0, 8.0),
    angle=st.floats(-90.0, 90.0),
    iterations=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_richardson_lucy_torch_methods(
    size: tuple[int, int], radius: int, sigma: float, angle: float, iterations: int, seed: int
) -> None:
    """Every method gives numpy's Richardson-Lucy, tiny and single-channel images included."""
    from tir_env.dsp import motion_kernel, richardson_lucy, richardson_lucy_torch

    channels = 1 + 2 * (seed % 2)
    image = np.random.default_rng(seed).random((*size, channels)).astype(np.float32)
    kernel = motion_kernel(radius, sigma, angle)
    ref = torch.from_numpy(richardson_lucy(image, kernel, iterations).transpose(2, 0, 1))
    assert ref.shape == (channels, *size)
    batch = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
    for method in ("auto", "opencv", "direct", "fft"):
        mine = richardson_lucy_torch(batch, [kernel], iterations, method=method)
        torch.testing.assert_close(mine[0], ref, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("method", ["opencv", "direct", "fft"])
def test_richardson_lucy_torch_per_image_iterations(method: str) -> None:
    """Each image of a batch runs its own count, as it would alone; 0 leaves it as it is."""
    from tir_env.dsp import disk_kernel, motion_kernel, richardson_lucy_torch

    batch = torch.rand(3, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    kernels = [motion_kernel(4, 2.0, 30.0), disk_kernel(2.0), motion_kernel(4, 2.0, 30.0)]
    iterations = torch.tensor([3, 1, 0])
    mine = richardson_lucy_torch(batch, kernels, iterations, method=method)
    for i in range(3):
        alone = richardson_lucy_torch(batch[i : i + 1], [kernels[i]], int(iterations[i]), method)
        torch.testing.assert_close(mine[i], alone[0], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(mine[2], batch[2], atol=2e-6, rtol=0)


def test_richardson_lucy_opencv_needs_a_cpu_tensor() -> None:
    """``opencv`` names the device it cannot use instead of failing inside numpy."""
    from tir_env.dsp import motion_kernel, richardson_lucy_torch

    meta = torch.empty(1, 3, 8, 8, device="meta")
    with pytest.raises(ValueError, match="CPU tensors"):
        richardson_lucy_torch(meta, [motion_kernel(2, 1.0, 0.0)], 2, method="opencv")


@settings(max_examples=40, deadline=None)
@given(
    size=st.tuples(st.integers(3, 24), st.integers(3, 24)),
    seed=st.integers(0, 2**16),
    flat=st.booleans(),
)
@example(size=(3, 20), seed=213, flat=False)  # 1.4e-4 degrees apart
def test_dominant_orientation_torch(size: tuple[int, int], seed: int, flat: bool) -> None:
    """The closed-form orientation is numpy's eigenvector angle (flat images: 0).

    Within 1e-3 degrees: the Sobel sums are float32 in both, in different orders, and on
    a few rows the angle is ill-conditioned (nearly equal eigenvalues).
    """
    from tir_env.tools.classical import dominant_orientation
    from tir_env.tools.classical.deraining import dominant_orientation_torch

    y = np.random.default_rng(seed).random(size).astype(np.float32) * (not flat)
    mine = dominant_orientation_torch(torch.from_numpy(y)[None, None])[0]
    ref = dominant_orientation(y)
    assert min(abs(mine - ref), 180 - abs(mine - ref)) < 1e-3


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 50),
    percent=st.floats(0.0, 100.0),
    seed=st.integers(0, 2**16),
)
def test_percentile_torch(m: int, percent: float, seed: int) -> None:
    """Each row's own percentile, numpy's linear interpolation."""
    from tir_env.tools.classical.dehazing import _percentile_torch

    x = np.random.default_rng(seed).random((2, m))
    percents = torch.tensor([percent, 100.0 - percent], dtype=torch.float64)
    mine = _percentile_torch(torch.from_numpy(x), percents)
    ref = [np.percentile(x[0], percent), np.percentile(x[1], 100.0 - percent)]
    np.testing.assert_allclose(mine.numpy(), ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 25), data=st.data(), seed=st.integers(0, 2**16), ties=st.booleans())
def test_rank_select(n: int, data: st.DataObject, seed: int, ties: bool) -> None:
    """The pruned comparator network selects what a sort selects (ties and infinities too)."""
    from tir_env.dsp import rank_select

    rank = data.draw(st.integers(0, n - 1))
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 3, (n, 50)) if ties else rng.standard_normal((n, 50))
    x = torch.from_numpy(values.astype(np.float32))
    x[:, :5] = torch.tensor([-math.inf, math.inf]).repeat(n, 3)[:, :5]
    expected = x.sort(dim=0).values[rank]
    assert torch.equal(rank_select(list(x), rank), expected)


@pytest.mark.parametrize("degradation", ["rain", None])
def test_line_filters_grouped_equal_gathered(degradation: str | None, photos: torch.Tensor) -> None:
    """The CPU's per-element slices and the other devices' single gather agree exactly."""
    from tir_env.tools.classical.deraining import (
        _element_offsets,
        _line_element,
        _line_median_torch,
        _line_open,
    )

    batch = _degraded(photos, degradation) if degradation else photos
    batch = torch.cat([batch, batch[:2]])  # two images share their element with another
    lines = [(11, 10.0), (5, -30.0), (9, 75.0), (3, 0.0), (11, 10.0), (5, -30.0)]
    offsets = [_element_offsets(_line_element(n, a)) for n, a in lines]
    for fn in (_line_open, _line_median_torch):
        grouped = fn(batch, offsets, group=True)
        gathered = fn(batch, offsets, group=False)
        assert torch.equal(grouped, gathered)


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


# ------------------------------------------------- back-projection's OpenCV reference


@pytest.mark.parametrize("params", _param_sets("back_projection_x4"))
def test_back_projection_reference_is_the_port(
    params: dict[str, float], photos: torch.Tensor
) -> None:
    """The OpenCV reference (what a CPU runs) and the torch port agree to float rounding."""
    degraded = _degraded(photos, "low_resolution")
    assert parity_psnr("back_projection_x4", degraded, params) >= 120.0


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    iterations=st.integers(1, 6),
    step=st.floats(0.2, 2.0),
    seed=st.integers(0, 2**16),
)
def test_back_projection_reference_equals_the_port_at_any_size(
    h: int, w: int, iterations: int, step: float, seed: int
) -> None:
    """Any size down to 1x1 and any step: the CPU's OpenCV path is the port's arithmetic."""
    from tir_env.images import batch_to_hwc

    tool = make_tool("back_projection_x4")
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
    params = tool.resolve({"iterations": iterations, "step": step})
    port = tool.apply(x, params)[0].permute(1, 2, 0).numpy()
    ours = tool.restore(batch_to_hwc(x)[0], params)  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours, port, rtol=0, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 23), w=st.integers(1, 23), seed=st.integers(0, 2**16))
@example(h=2, w=1, seed=0)
def test_down_x4_is_the_antialiased_resize(h: int, w: int, seed: int) -> None:
    """OpenCV's x1/4 (zero borders and a gain) is ``images.resize``, borders included.

    Down to one pixel wide too (2x1 above), where ``resize`` works around a quirk of
    PyTorch's antialiased 2-D resize (its own test: ``tests/test_registry_images_data.py``).
    """
    from tir_env.images import resize
    from tir_env.tools.classical.super_resolution import down_x4

    big = torch.rand(1, 3, 4 * h, 4 * w, generator=torch.Generator().manual_seed(seed))
    ours = down_x4(np.ascontiguousarray(big[0].permute(1, 2, 0).numpy()))
    theirs = resize(big, (h, w))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)


# ------------------------------------------------- CPU dispatch to the numpy reference

PORTED_ALL_NAMES = set(PORTED) | set(PART_B) | set(PORTED_SR_DENOISE_JPEG) | {"back_projection_x4"}
CPU_REFERENCE = sorted(n for n in PORTED_ALL_NAMES if getattr(make_tool(n), "cpu_reference", False))


def test_cpu_reference_tools_are_the_slow_ports() -> None:
    assert (
        sorted(
            [
                "back_projection_x4",
                "bilateral_denoise",
                "clahe",
                "derain_opening",
                "global_dehaze",
                "jpeg_tv",
                "lanczos_x4_sharpen",
                "nlm_denoise",
            ]
        )
        == CPU_REFERENCE
    )


@pytest.mark.parametrize("name", CPU_REFERENCE)
def test_on_a_cpu_the_call_is_the_numpy_reference(
    name: str, photos: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = make_tool(name)
    batch = photos[:2, :, :48, :48].contiguous()
    resolved = tool.resolve({})
    ref = per_image(batch, lambda image, _: tool.restore(image, resolved)).clamp(0, 1)  # type: ignore[attr-defined]

    def port_not_used(*_: object) -> torch.Tensor:
        raise AssertionError("the torch port ran on a CPU batch")

    monkeypatch.setattr(type(tool), "apply", port_not_used)
    assert torch.equal(tool(batch), ref)


@pytest.mark.parametrize(
    "name", [n for n in CPU_REFERENCE if getattr(make_tool(n), "cpu_port_from", None)]
)
def test_a_cpu_batch_from_cpu_port_from_images_runs_the_port(
    name: str, photos: torch.Tensor
) -> None:
    tool = make_tool(name)
    first = tool.cpu_port_from  # type: ignore[attr-defined]
    batch = photos[:, :, :48, :48].repeat(first, 1, 1, 1)[:first].contiguous()
    resolved = tool.resolve({})
    assert tool.uses_reference(batch[: first - 1]) and not tool.uses_reference(batch)  # type: ignore[attr-defined]
    assert torch.equal(tool(batch), tool.apply(batch, resolved).clamp(0, 1))  # type: ignore[attr-defined]


def test_wiener_deconvolve_torch_chunks_give_each_images_own_result() -> None:
    """A CPU batch larger than a chunk, with its own kernel and SNR per image, equals each
    image deconvolved alone and numpy's reference."""
    from tir_env.dsp import disk_kernel, motion_kernel, wiener_deconvolve, wiener_deconvolve_torch
    from tir_env.dsp.torch_ops import WIENER_CPU_CHUNK

    n = 2 * WIENER_CPU_CHUNK + 1
    batch = torch.rand(n, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    kernels = [
        disk_kernel(1.0 + i / 3) if i % 2 else motion_kernel(3, 2.0, 10.0 * i) for i in range(n)
    ]
    snr = torch.linspace(10.0, 40.0, n, dtype=torch.float64)
    out = wiener_deconvolve_torch(batch, kernels, snr)
    for i in range(n):
        alone = wiener_deconvolve_torch(batch[i : i + 1], [kernels[i]], float(snr[i]))
        torch.testing.assert_close(out[i], alone[0], atol=1e-6, rtol=0)
        image = batch[i].permute(1, 2, 0).numpy()
        ref = torch.from_numpy(wiener_deconvolve(image, kernels[i], float(snr[i])))
        torch.testing.assert_close(out[i], ref.permute(2, 0, 1).float(), atol=1e-4, rtol=0)


def _episode_batch(degradations: tuple[str, ...], seeds: range, sr: bool) -> torch.Tensor:
    from tir_env.env import TIREnv
    from tir_env.tools import make_tool

    env = TIREnv(images="bundled:test", patch_size=128, max_steps=3)
    images = []
    for seed in seeds:
        env.reset(seed=seed, options={"degradations": degradations})
        images.append(env.current_batch())
    batch = torch.cat(images)
    return make_tool("back_projection_x4")(batch) if sr else batch


def _windowed_power(image: np.ndarray) -> np.ndarray:
    from tir_env.tools.classical._common import centre_crop, luma

    y = luma(centre_crop(image, 128)).astype(np.float64)
    y = (y - y.mean()) * np.outer(np.hanning(y.shape[0]), np.hanning(y.shape[1]))
    return np.abs(np.fft.rfft2(y)) ** 2


@pytest.mark.parametrize("sr", [True, False])
def test_motion_estimates_choose_the_band_alike_in_numpy_and_torch(sr: bool) -> None:
    """Blurred crops upsampled x4 can be fitted below X4_BAND; crops without SR never are."""
    from tir_env.tools.classical import blur_estimation as be

    batch = _episode_batch(
        ("motion_blur", "low_resolution") if sr else ("motion_blur",), range(6), sr
    )
    power, shape = be._power_torch(batch, symmetric=False)
    bands = be._fitted_bands_torch(power, shape)
    assert (be.X4_BAND in bands) if sr else set(bands) == {be.FULL_BAND}
    kernels = be.estimate_motion_kernels_torch(batch)
    for i, band in enumerate(bands):
        image = batch[i].permute(1, 2, 0).numpy()
        assert be._fitted_band(_windowed_power(image), shape) == band
        np.testing.assert_allclose(kernels[i], be.estimate_motion_kernel(image), atol=1e-6)


@pytest.mark.parametrize(
    "name", ["motion_wiener_blind", "motion_rl_blind", "defocus_wiener", "defocus_rl"]
)
def test_blind_tools_on_upsampled_crops_match_their_reference(name: str) -> None:
    """The x4-band path (fit below the band, input kept above it): batched == per image."""
    blur = "motion_blur" if name.startswith("motion") else "defocus_blur"
    batch = _episode_batch((blur, "low_resolution"), range(4), sr=True)
    assert parity_psnr(name, batch, {}) >= MIN_PSNR


def test_an_upsampled_image_keeps_its_content_above_the_band() -> None:
    """Above X4_BAND the blind Wiener's output has the input's spectrum (on the mirror)."""
    from tir_env.dsp import periodic_extension_torch
    from tir_env.tools import make_tool
    from tir_env.tools.classical import blur_estimation as be
    from tir_env.tools.classical import deblurring

    batch = _episode_batch(("motion_blur", "low_resolution"), range(4), sr=True)
    rows = [i for i, b in enumerate(be.fitted_bands_torch(batch)) if b == be.X4_BAND]
    assert rows
    x = batch[rows]
    deblurred = make_tool("motion_wiener_blind").apply(x, {"snr_db": 30.0})
    out = deblurring._keep_input_above_band(x, deblurred, be.fitted_bands_torch(x))

    def spectrum(t: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(periodic_extension_torch(t.double(), 1))

    change = spectrum(out) - spectrum(x)
    mirrored = periodic_extension_torch(x, 1)
    shape = (mirrored.shape[-2], mirrored.shape[-1])
    above = ~torch.from_numpy(deblurring._lowpass_mask(shape, be.X4_BAND))
    assert float(change[..., above].abs().max()) < 1e-3 * float(spectrum(x).abs().max())
    assert float(change[..., ~above].abs().max()) > 0  # the deblurring itself is kept
