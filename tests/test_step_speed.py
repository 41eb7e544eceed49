"""The step-throughput paths of issue 17: same results as the slower code they replace.

Cheaper input checks, the observation rendered without a numpy round trip, the first tap of
the direct Richardson-Lucy correlation, and the pool starting its longest job first.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tir_env.errors import ImageError
from tir_env.images import batch_to_u8, check_batch, resize_to_u8, resize_u8
from tir_env.tools.base import TOOLS, Tool, ToolInfo, make_tool
from tir_env.tools.pool import LocalToolPool
from tir_env.tools.pool.jobs import CostEstimates
from tir_env.types import ToolCall


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 70),
    w=st.integers(1, 70),
    out=st.tuples(st.integers(1, 80), st.integers(1, 80)),
    seed=st.integers(0, 2**16),
    quantised=st.booleans(),
)
def test_resize_to_u8_is_the_numpy_round_trip(
    h: int, w: int, out: tuple[int, int], seed: int, quantised: bool
) -> None:
    """The observation path equals ``resize_u8(batch_to_u8(x))`` bit for bit."""
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
    if quantised:  # exact multiples of 1/255 (a tool's output of a uint8 input)
        x = (x * 255).round() / 255
    for size in (out, (h, w)):
        np.testing.assert_array_equal(resize_to_u8(x, size), resize_u8(batch_to_u8(x), size))


@settings(max_examples=60, deadline=None)
@given(
    value=st.sampled_from([float("nan"), float("inf"), -float("inf"), 1.0001, -1e-6]),
    index=st.integers(0, 3 * 5 * 7 - 1),
    n=st.integers(1, 3),
)
def test_check_batch_finds_any_bad_value(value: float, index: int, n: int) -> None:
    """One min/max pass still rejects NaN, Inf and out-of-range values anywhere."""
    batch = torch.rand(n, 3, 5, 7)
    batch.view(-1)[index * n] = value
    with pytest.raises(ImageError):
        check_batch(batch)


def test_check_batch_accepts_the_range_and_empty_images() -> None:
    check_batch(torch.tensor([0.0, 1.0, 0.5]).view(1, 3, 1, 1))
    check_batch(torch.zeros(1, 3, 0, 4))


def _direct_reference(
    x: torch.Tensor, taps: list[tuple[int, int, float]], half: int
) -> torch.Tensor:
    """The correlation as it was: zeros, then one fused multiply-add per tap."""
    padded = F.pad(x, (half, half, half, half), mode="reflect")
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for dr, dc, weight in taps:
        out.add_(padded[..., half + dr : half + dr + h, half + dc : half + dc + w], alpha=weight)
    return out


@pytest.mark.parametrize("radius", [1, 4, 9])
def test_direct_correlation_is_bitwise_unchanged(radius: int) -> None:
    from tir_env.dsp import motion_kernel
    from tir_env.dsp.deconvolution import _Correlator

    kernel = motion_kernel(radius, 2.0, 30.0)
    x = torch.rand(2, 3, 40, 40)
    corr = _Correlator([kernel], (40, 40), "direct", x.device)
    flipped = [(-dr, -dc, wt) for dr, dc, wt in corr.taps]
    assert torch.equal(corr(x), _direct_reference(x, corr.taps, corr.half))
    assert torch.equal(corr(x, transpose=True), _direct_reference(x, flipped, corr.half))


def test_cost_estimates_average_seconds_per_image() -> None:
    costs = CostEstimates(smoothing=0.5)
    assert costs.job_seconds("a", 2) == float("inf")  # unmeasured: started first
    costs.update("a", 0.4, 4)  # 0.1 s an image
    assert costs.job_seconds("a", 3) == pytest.approx(0.3)
    costs.update("a", 0.3, 1)
    assert costs.job_seconds("a", 1) == pytest.approx(0.2)


GATE = threading.Event()


class Gate(Tool):
    """A classical tool that holds its worker until :data:`GATE` opens."""

    info = ToolInfo(name="test_gate", task="denoising", kind="classical")

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        GATE.wait(timeout=30)
        return batch.clone()


@pytest.fixture
def gate_tool() -> Iterator[None]:
    TOOLS.add(Gate.info.name, Gate, overwrite=True)
    make_tool.cache_clear()
    yield
    TOOLS.remove(Gate.info.name)
    make_tool.cache_clear()


def _note(order: list[str], name: str, _future: object) -> None:
    order.append(name)


@pytest.mark.usefixtures("gate_tool")
def test_pool_starts_the_longest_job_first() -> None:
    """With one worker, a slow tool's call queued after a fast one's still runs first."""
    image = torch.rand(1, 3, 32, 32)
    slow = ToolCall("motion_rl_blind", {"iterations": 60.0})
    fast = ToolCall("gamma_correction", {})
    order: list[str] = []
    with LocalToolPool(device="cpu", workers=1, cache_bytes=0) as pool:
        GATE.set()
        for call in (fast, slow, ToolCall("test_gate", {})):  # measure every tool once
            assert pool.run(image, call).ok
        GATE.clear()
        blocker = pool.submit(image, ToolCall("test_gate", {}))  # the worker waits on it
        futures = pool.submit_many([image, image], [fast, slow])
        for future, call in zip(futures, [fast, slow], strict=True):
            future.add_done_callback(functools.partial(_note, order, call.tool))
        GATE.set()  # both calls were queued while the worker was busy: it chooses now
        assert blocker.result().ok and all(f.result().ok for f in futures)
    assert order == ["motion_rl_blind", "gamma_correction"]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 4),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    quantised=st.booleans(),
)
def test_luma_u8_is_the_y_of_the_full_yiq_product(
    n: int, h: int, w: int, seed: int, quantised: bool
) -> None:
    """Only the Y column of pyiqa's 3x3 product, rounded the same pixel for pixel."""
    from tir_env.metrics.fast import _YIQ, luma_u8

    x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))
    if quantised:
        x = (x * 255).round() / 255
    yiq = torch.matmul(x.permute(0, 2, 3, 1), _YIQ).permute(0, 3, 1, 2)
    assert torch.equal(luma_u8(x), (yiq[:, :1] * 255.0).round() / 255.0)


@settings(max_examples=60, deadline=None)
@given(
    radius=st.integers(0, 20),
    h=st.integers(1, 50),
    w=st.integers(1, 50),
    c=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_box_is_bitwise_avg_pool(radius: int, h: int, w: int, c: int, seed: int) -> None:
    """The shifted-slice box mean equals the stride-1 ``avg_pool2d`` pair it replaced."""
    from tir_env.dsp.torch_ops import box_torch, pad_symmetric

    x = torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(seed))
    k = 2 * radius + 1
    padded = pad_symmetric(x, radius, radius)
    pooled = F.avg_pool2d(F.avg_pool2d(padded, (1, k), stride=1), (k, 1), stride=1)
    assert torch.equal(box_torch(x, radius), x if radius == 0 else pooled)


def test_waiting_bounds_how_long_a_short_job_is_passed_over() -> None:
    costs = CostEstimates()
    costs.update("long", 0.1, 1)
    costs.update("short", 0.001, 1)
    assert costs.priority("long", 1, 0.0) > costs.priority("short", 1, 0.0)
    assert costs.priority("short", 1, 0.2) > costs.priority("long", 1, 0.0)


@pytest.mark.parametrize("kind", ["restore", "sr"])
def test_learned_tools_run_their_network_in_cpu_chunks(kind: str) -> None:
    """A CPU batch runs the network in chunks of about NET_CPU_PIXELS; results as per call."""
    from tir_env.tools import tool_names
    from tir_env.tools.learned import NET_CPU_PIXELS, net_chunk

    names = [
        n for n in tool_names(kinds=("learned",)) if (make_tool(n).info.scale > 1) == (kind == "sr")
    ]
    assert names, f"no learned {kind} tool registered"
    x = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for name in names:
        tool = make_tool(name)
        step = net_chunk(x.shape, tool.info.scale)
        assert step < len(x) and step * 64 * 64 * tool.info.scale**2 <= max(
            NET_CPU_PIXELS, 64 * 64 * tool.info.scale**2
        )
        alone = torch.cat([tool(x[i : i + 1]) for i in range(len(x))])
        torch.testing.assert_close(tool(x), alone, atol=1e-5, rtol=0)
