"""Calls of one tool with different parameters, batched: ``Tool.call_many`` and the pool.

A batching pool groups a tool's calls whatever their parameters (issue 17: per-image
parameters inside one batch), so each image's result must equal a call with its own
parameters, for every tool of the registry.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tir_env.tools.base import make_tool, stack_params, tool_info, tool_names
from tir_env.tools.pool import LocalToolPool
from tir_env.types import ToolCall

TOOLS = tool_names(kinds=("classical", "learned"))
ATOL = 1e-5


def _batch(n: int, size: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.1 + 0.8 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)


def _cycled_params(name: str, n: int) -> list[dict[str, float]]:
    """``n`` parameter sets where every parameter varies: low, high, default, midpoint."""
    spec = tool_info(name).params
    rows = []
    for i in range(n):
        row = {}
        for key, p in spec.items():
            v = [p.low, p.high, p.default, (p.low + p.high) / 2][(i + len(row)) % 4]
            row[key] = float(round(v)) if p.integer else v
        rows.append(row)
    return rows


def _one_at_a_time(name: str, batch: torch.Tensor, params: list[dict[str, float]]) -> torch.Tensor:
    tool = make_tool(name)
    return torch.cat([tool(batch[i : i + 1], p) for i, p in enumerate(params)])


@pytest.mark.parametrize("name", TOOLS)
def test_call_many_equals_one_call_per_image(name: str) -> None:
    batch = _batch(4)
    params = _cycled_params(name, 4)
    together = make_tool(name).call_many(batch, params)
    torch.testing.assert_close(together, _one_at_a_time(name, batch, params), atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", TOOLS)
def test_pool_batches_a_tools_calls_with_different_parameters(name: str) -> None:
    """One invocation for a tool's calls with different parameters; results as one at a time."""
    batch = _batch(4, seed=1)
    params = _cycled_params(name, 4)
    calls = [ToolCall(name, p) for p in params]
    with LocalToolPool(device="cpu", workers=1, cache_bytes=0) as pool:
        results = pool.map([batch[i : i + 1] for i in range(4)], calls)
        stats = pool.stats
    assert all(r.ok for r in results), [r.error for r in results]
    got = torch.cat([r.image for r in results if r.image is not None])
    torch.testing.assert_close(got, _one_at_a_time(name, batch, params), atol=ATOL, rtol=0)
    assert stats.batches == 1


def test_a_bad_call_among_different_parameters_fails_alone() -> None:
    """The one-by-one retry of a failed mixed batch runs each call with its own parameters."""
    batch = _batch(3)
    calls = [ToolCall("gamma_correction", {"gamma": g}) for g in (0.5, 1.5, 0.8)]
    images = [batch[0:1], torch.full((1, 3, 24, 24), float("nan")), batch[2:3]]
    with LocalToolPool(device="cpu", workers=1, cache_bytes=0) as pool:
        results = pool.map(images, calls)
    assert [r.ok for r in results] == [True, False, True]
    for i in (0, 2):
        alone = make_tool("gamma_correction")(batch[i : i + 1], calls[i].params)
        torch.testing.assert_close(results[i].image, alone, atol=ATOL, rtol=0)


def test_stack_params() -> None:
    stacked = stack_params([{"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 3.0}])
    assert stacked["a"] == 1.0
    b = stacked["b"]
    assert isinstance(b, torch.Tensor) and b.dtype == torch.float64
    assert b.tolist() == [2.0, 3.0]


#: Cheap tools whose every parameter is per-image inside apply (hypothesis draws).
CHEAP = [
    "gamma_correction",
    "constant_shift",
    "unsharp_mask",
    "dark_channel_prior",
    "clahe",
    "global_dehaze",
]


@st.composite
def _draws(draw: st.DrawFn) -> tuple[str, list[dict[str, float]]]:
    name = draw(st.sampled_from(CHEAP))
    n = draw(st.integers(1, 5))
    rows = []
    for _ in range(n):
        row = {}
        for key, p in tool_info(name).params.items():
            if p.integer:
                row[key] = float(draw(st.integers(int(p.low), int(p.high))))
            else:
                row[key] = draw(st.floats(p.low, p.high, allow_nan=False))
        rows.append(row)
    return name, rows


@settings(max_examples=30, deadline=None)
@given(_draws())
def test_call_many_property(drawn: tuple[str, list[dict[str, float]]]) -> None:
    name, params = drawn
    batch = _batch(len(params), size=16, seed=len(params))
    together = make_tool(name).call_many(batch, params)
    torch.testing.assert_close(together, _one_at_a_time(name, batch, params), atol=ATOL, rtol=0)


def test_cached_blur_candidates_give_the_same_misfits() -> None:
    """The blind estimators' cached candidate terms equal computing them afresh, bit for bit."""
    from tir_env.dsp import motion_kernel
    from tir_env.tools.classical import blur_estimation as be

    batch = _batch(3, size=64, seed=2)
    log_power, shape = be._log_power_torch(batch, symmetric=False)
    grid = be._kernel_gains([motion_kernel(*c) for c in be._MOTION_GRID], shape)
    cached = be._misfits_torch(log_power, be._motion_grid_terms(shape, "cpu"), shape)
    assert torch.equal(cached, be._misfits_torch(log_power, grid, shape))
    candidates = [be._MOTION_GRID[j] for j in (0, 7, 40)]
    fresh = be._kernel_gains([motion_kernel(*c) for c in candidates], shape)
    rows = torch.from_numpy(np.stack([be._motion_gain(c, shape) for c in candidates]))
    assert torch.equal(rows, fresh)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.004, 0.012, 0.05, 0.2]), min_size=1, max_size=5),
    st.integers(0, 2**16),
)
def test_tv_planes_stop_on_their_own(weights: list[float], seed: int) -> None:
    """Planes leave the TV working set when they stop: a batch equals each image alone.

    Weight-0 images come back unchanged; the others match scikit-image's Chambolle, which
    stops every channel on its own.
    """
    from skimage.restoration import denoise_tv_chambolle

    from tir_env.tools.classical.denoising import tv_chambolle_torch

    batch = torch.from_numpy(np.random.default_rng(seed).random((len(weights), 2, 12, 12)))
    w = torch.tensor(weights, dtype=torch.float64)
    together = tv_chambolle_torch(batch, w)
    for i, weight in enumerate(weights):
        alone = tv_chambolle_torch(batch[i : i + 1], w[i : i + 1])
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-12, rtol=0)
        if weight == 0.0:
            assert torch.equal(together[i], batch[i])
            continue
        image = batch[i].permute(1, 2, 0).numpy()
        expected = denoise_tv_chambolle(image, weight=weight, channel_axis=-1)
        np.testing.assert_allclose(together[i].permute(1, 2, 0).numpy(), expected, atol=1e-9)


def _spy_on_apply(tool: object, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch sizes that ``tool``'s class's ``apply`` is called with, from now on."""
    sizes: list[int] = []
    apply = type(tool).apply  # type: ignore[attr-defined]

    def spy(self: object, batch: torch.Tensor, params: object) -> torch.Tensor:
        sizes.append(batch.shape[0])
        return apply(self, batch, params)  # type: ignore[no-any-return]

    monkeypatch.setattr(type(tool), "apply", spy)
    return sizes


def test_a_port_from_k_tool_chooses_per_structure(monkeypatch: pytest.MonkeyPatch) -> None:
    """jpeg_tv's port needs 8 images of one chroma radius; 8 radii run the reference each.

    A mixed batch used to take the port for all 8 (the batch's size), then ran it once per
    radius on one image: half the speed of one call per image.
    """
    tool = make_tool("jpeg_tv")
    assert tool.cpu_port_from == 8 and tool.structure_params == ("chroma_radius",)
    ported = _spy_on_apply(tool, monkeypatch)
    batch = _batch(8)
    mixed = [{"weight": 0.012, "chroma_radius": float(r)} for r in range(8)]
    out = tool.call_many(batch, mixed)
    assert ported == []  # every radius is one image: the reference, image by image
    for i, params in enumerate(mixed):
        torch.testing.assert_close(
            out[i : i + 1], tool(batch[i : i + 1], params), atol=ATOL, rtol=0
        )
    same = [{"weight": 0.002 + 0.01 * i, "chroma_radius": 3.0} for i in range(8)]
    tool.call_many(batch, same)
    assert ported == [8]  # one radius, 8 images: the port, once


@pytest.mark.parametrize("name", ["unsharp_mask"])
def test_a_mixed_batch_runs_one_apply(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every parameter of these tools is per-image inside ``apply``: one call for the batch."""
    tool = make_tool(name)
    assert tool.batch_params == frozenset(tool.info.params)
    applied = _spy_on_apply(tool, monkeypatch)
    batch = _batch(4, size=64)
    params = _cycled_params(name, 4)
    out = tool.call_many(batch, params)
    assert applied == [4]
    torch.testing.assert_close(out, _one_at_a_time(name, batch, params), atol=ATOL, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 20), st.floats(-90, 90)), min_size=2, max_size=5),
    st.integers(3, 40),
)
def test_wiener_with_kernels_of_many_sizes_equals_each_alone(
    shapes: list[tuple[int, float]], size: int
) -> None:
    """Kernels wider than a small image's mirror repeat it; each image as if alone anyway."""
    from tir_env.dsp import motion_kernel, wiener_deconvolve_torch

    batch = _batch(len(shapes), size=size, seed=size)
    kernels = [motion_kernel(radius, 3.0, angle) for radius, angle in shapes]
    snr = torch.linspace(10.0, 40.0, len(shapes), dtype=torch.float64)
    together = wiener_deconvolve_torch(batch, kernels, snr)
    for i, kernel in enumerate(kernels):
        alone = wiener_deconvolve_torch(batch[i : i + 1], [kernel], snr[i : i + 1])
        torch.testing.assert_close(together[i : i + 1], alone, atol=1e-6, rtol=0)
