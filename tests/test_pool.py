"""The tool pools: shared API tests over Sync/Local/Ray, then backend-specific behaviour."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace

import pytest
import torch
from torch import nn

from tir_env.tools.base import TOOLS, Tool, ToolInfo, make_tool, spec, tool_names
from tir_env.tools.pool import (
    CPU_BATCH_PIXELS,
    LocalToolPool,
    PoolConfig,
    ResultCache,
    SyncToolPool,
    ToolPool,
    default_pool,
    make_pool,
    set_default_pool,
)
from tir_env.types import Param, ToolCall

HAS_RAY = importlib.util.find_spec("ray") is not None
NO_RAY = "ray is not installed (pip install 'tir-env[ray]')"
# Generous enough that a busy CI machine never times out a real tool call (an 8 px gamma
# correction once took 0.6 s there); the hang test waits this plus two seconds.
LOCAL_TIMEOUT_S = 2.0
RAY_TIMEOUT_S = 2.0

RAISE, NAN, SHAPE, HANG = 0, 1, 2, 3


# ------------------------------------------------------------------ test tools
class TinyConv(Tool):
    """A learned-kind tool: a fixed-seed 3x3 convolution and a sigmoid."""

    info = ToolInfo(
        name="test_conv",
        task="denoising",
        kind="learned",
        params=spec(gain=Param(0.5, 2.0, 1.0)),
    )

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.net = nn.Conv2d(3, 3, 3, padding=1, padding_mode="replicate").eval()

    def to(self, device: torch.device | str) -> Tool:
        self.net.to(device)
        return self

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        return torch.sigmoid(self.net(batch) * params["gain"])


class Faulty(Tool):
    """Inverts images, except for "poisoned" ones (pixel [0, 0, 0] == 1), which break it."""

    info = ToolInfo(
        name="test_faulty",
        task="denoising",
        params=spec(
            mode=Param(0, 3, 0, "0 raise, 1 NaN, 2 wrong shape, 3 hang", integer=True),
            seconds=Param(0.0, 10.0, 0.0, "hang or work this long"),
        ),
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        time.sleep(params["seconds"] if params["mode"] != HANG else 0.0)
        poisoned = bool((batch[:, 0, 0, 0] == 1.0).any())
        out = 1.0 - batch
        if not poisoned:
            return out
        if params["mode"] == RAISE:
            raise RuntimeError("poisoned input")
        if params["mode"] == NAN:
            return out * float("nan")
        if params["mode"] == SHAPE:
            return out[..., :-1]
        time.sleep(params["seconds"])
        return out


@pytest.fixture(scope="module", autouse=True)
def test_tools() -> Iterator[None]:
    for cls in (TinyConv, Faulty):
        TOOLS.add(cls.info.name, cls, overwrite=True)
    make_tool.cache_clear()
    yield
    for cls in (TinyConv, Faulty):
        TOOLS.remove(cls.info.name)
    make_tool.cache_clear()


@pytest.fixture(scope="module")
def ray_pool() -> Iterator[ToolPool]:
    """One Ray session and one 2-actor pool for the module (Ray starts slowly)."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    from tir_env.tools.pool import RayToolPool

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    # Test tools live in this module, which the actors cannot import: ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    pool = make_pool(backend="ray", num_actors=2, device="cpu", timeout_s=RAY_TIMEOUT_S)
    assert isinstance(pool, RayToolPool) and len(pool.actors()) == 2
    yield pool
    pool.close()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


POOLS = ["sync", "local", pytest.param("ray", marks=pytest.mark.skipif(not HAS_RAY, reason=NO_RAY))]
BATCHING_POOLS = POOLS[1:]


@pytest.fixture(params=POOLS)
def pool(request: pytest.FixtureRequest) -> Iterator[ToolPool]:
    if request.param == "ray":
        shared = request.getfixturevalue("ray_pool")
        shared.cache_clear()
        yield shared
        return
    p = (
        SyncToolPool()
        if request.param == "sync"
        else LocalToolPool("cpu", timeout_s=LOCAL_TIMEOUT_S)
    )
    yield p
    p.close()


batching = pytest.mark.parametrize("pool", BATCHING_POOLS, indirect=True)


def images(n: int, size: int = 12, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, size, size, generator=g) * 0.9 for _ in range(n)]


def poison(image: torch.Tensor) -> torch.Tensor:
    out = image.clone()
    out[0, 0, 0, 0] = 1.0
    return out


def delta(pool: ToolPool, before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in pool.stats.as_dict().items()}


# ------------------------------------------------------------------ shared API
def test_results_equal_direct_tool_calls(pool: ToolPool) -> None:
    ims = images(6)
    calls = [ToolCall("gamma_correction", {"gamma": 0.5 + 0.25 * (i % 2)}) for i in range(6)]
    results = pool.map(ims, calls)
    for im, call, res in zip(ims, calls, results, strict=True):
        assert res.ok, res.error
        assert torch.equal(res.image, make_tool(call.tool)(im, call.params))


def test_neural_tool_batched_equals_per_call(pool: ToolPool) -> None:
    ims = images(8, size=16, seed=1)
    call = ToolCall("test_conv", {"gain": 1.5})
    before = pool.stats.as_dict()
    batched = pool.map(ims, [call] * 8)
    tool = TinyConv()
    for im, res in zip(ims, batched, strict=True):
        assert res.ok, res.error
        # float convolutions may differ by an ulp between batch sizes
        torch.testing.assert_close(res.image, tool(im, call.params), rtol=0, atol=1e-6)
    d = delta(pool, before)
    assert d["calls"] == 8 and d["executions"] == 8 and d["failures"] == 0
    if not isinstance(pool, SyncToolPool):
        assert d["batches"] <= 2  # one map of one group runs as (at most a couple of) batches


@pytest.mark.parametrize(
    ("mode", "message"),
    [(RAISE, "RuntimeError: poisoned input"), (NAN, "NaN"), (SHAPE, "expected (1, 3, 12, 12)")],
)
def test_faulty_tool_fails_only_its_call(pool: ToolPool, mode: int, message: str) -> None:
    ims = images(4)
    ims[2] = poison(ims[2])
    call = ToolCall("test_faulty", {"mode": mode})
    results = pool.map(ims, [call] * 4)
    assert [r.ok for r in results] == [True, True, False, True]
    assert results[2].image is None and message in (results[2].error or "")
    for i in (0, 1, 3):
        assert torch.equal(results[i].image, 1.0 - ims[i])
    assert pool.run(ims[0], ToolCall("gamma_correction")).ok  # the pool keeps working


def test_submit_many_returns_futures_in_order(pool: ToolPool) -> None:
    ims = images(4, seed=5)
    calls = [ToolCall("gamma_correction", {"gamma": 0.6 + 0.2 * i}) for i in range(4)]
    futures = pool.submit_many(ims, calls)
    for im, call, future in zip(ims, calls, futures, strict=True):
        assert torch.equal(future.result().image, make_tool(call.tool)(im, call.params))
    with pytest.raises(ValueError, match="3 images but 4 calls"):
        pool.submit_many(ims[:3], calls)


def test_invalid_calls_are_error_results(pool: ToolPool) -> None:
    im = images(1)[0]
    bad = [
        (im, ToolCall("gamma_corection")),
        (im, ToolCall("gamma_correction", {"gamma": 1e6})),
        (im, ToolCall("gamma_correction", {"nope": 1.0})),
        (torch.rand(3, 8, 8), ToolCall("gamma_correction")),
        (im.double(), ToolCall("gamma_correction")),
    ]
    before = pool.stats.as_dict()
    results = [pool.run(i, c) for i, c in bad]
    assert all(not r.ok and r.image is None for r in results)
    assert "Did you mean 'gamma_correction'" in (results[0].error or "")
    assert delta(pool, before)["failures"] == len(bad)


def test_concurrent_submits_from_threads_all_answered(pool: ToolPool) -> None:
    ims = images(5, size=8)
    answers: dict[tuple[int, int], torch.Tensor] = {}

    def client(t: int) -> None:
        futures = [
            (i, pool.submit(ims[i], ToolCall("gamma_correction", {"gamma": 1.0 + t / 4})))
            for i in range(5)
        ]
        for i, f in futures:
            res = f.result(timeout=30)
            assert res.ok, res.error
            answers[t, i] = res.image

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 20
    tool = make_tool("gamma_correction")
    for (t, i), image in answers.items():
        assert torch.equal(image, tool(ims[i], {"gamma": 1.0 + t / 4}))


# ------------------------------------------------------------------ batching pools
@batching
def test_cache_hit_is_identical_and_counted(pool: ToolPool) -> None:
    im = images(1)[0]
    before = pool.stats.as_dict()
    first = pool.run(im, ToolCall("gamma_correction", {"gamma": 0.7}))
    first.image.fill_(0.0)  # callers own their tensors: this must not reach the cache
    second = pool.run(im.clone(), ToolCall("gamma_correction", {"gamma": 0.7}))
    default = make_tool("gamma_correction").info.params["gamma"].default
    pool.run(im, ToolCall("gamma_correction", {"gamma": default}))
    third = pool.run(im, ToolCall("gamma_correction"))  # defaults resolved: same key
    assert not first.cached and second.cached and third.cached
    assert second.seconds == 0.0
    assert torch.equal(second.image, make_tool("gamma_correction")(im, {"gamma": 0.7}))
    d = delta(pool, before)
    assert d["calls"] == 4 and d["executions"] == 2 and d["cache_hits"] == 2


@batching
def test_identical_inflight_calls_are_coalesced(pool: ToolPool) -> None:
    im = images(1)[0]
    call = ToolCall("test_faulty", {"mode": RAISE, "seconds": 0.2})
    before = pool.stats.as_dict()
    futures = [pool.submit(im, call) for _ in range(3)]
    results = [f.result() for f in futures]
    assert all(r.ok for r in results)
    assert [r.cached for r in results] == [False, True, True]
    assert torch.equal(results[1].image, results[0].image)
    d = delta(pool, before)
    assert d["executions"] == 1 and d["cache_hits"] == 2


@batching
def test_hanging_tool_times_out_and_pool_keeps_serving(pool: ToolPool) -> None:
    timeout = pool.timeout_s  # type: ignore[attr-defined]
    ims = images(3)
    hang = ToolCall("test_faulty", {"mode": HANG, "seconds": timeout + 2.0})
    start = time.monotonic()
    stuck = pool.submit(poison(ims[0]), hang)
    other = pool.run(ims[1], ToolCall("gamma_correction"))  # served meanwhile
    assert other.ok, other.error
    res = stuck.result(timeout=timeout + 30)
    assert time.monotonic() - start < timeout + 1.5
    assert not res.ok and "ToolTimeoutError" in (res.error or "")
    after = pool.map(ims, [ToolCall("test_conv")] * 3)  # and afterwards
    assert all(r.ok for r in after)


# ------------------------------------------------------------------ local pool
def test_close_is_idempotent_and_leaks_no_threads() -> None:
    before = set(threading.enumerate())
    pool = LocalToolPool("cpu", workers=2)
    assert pool.map(images(4), [ToolCall("test_conv")] * 4)[0].ok
    assert len(set(threading.enumerate()) - before) >= 3  # device + 2 cpu + watchdog
    pool.close()
    pool.close()
    assert set(threading.enumerate()) <= before
    res = pool.run(images(1)[0], ToolCall("gamma_correction"))
    assert not res.ok and (res.error or "").startswith("PoolClosedError")


def test_unused_pool_starts_no_threads() -> None:
    before = set(threading.enumerate())
    with LocalToolPool("cpu"):
        assert set(threading.enumerate()) <= before


def test_close_fails_queued_calls_and_finishes_running_ones() -> None:
    pool = LocalToolPool("cpu", workers=1, timeout_s=5.0)
    ims = images(4)
    slow = [pool.submit(im, ToolCall("test_faulty", {"seconds": 0.3})) for im in ims[:1]]
    time.sleep(0.05)
    queued = [pool.submit(im, ToolCall("gamma_correction", {"gamma": 2.0})) for im in ims[1:]]
    pool.close()
    assert slow[0].result().ok
    assert all(f.done() for f in queued)
    assert all(f.result().ok or "PoolClosedError" in (f.result().error or "") for f in queued)


def test_map_batches_classical_calls_across_workers() -> None:
    with LocalToolPool("cpu", workers=2, max_batch=16) as pool:
        pool.map(images(12), [ToolCall("gamma_correction")] * 12)
        # each free worker takes its share of what is left: 6+6, or 6+3+2+1 if one is slow
        assert pool.stats.executions == 12 and pool.stats.batches <= 4


def test_max_batch_bounds_batches() -> None:
    with LocalToolPool("cpu", max_batch=4) as pool:
        assert all(r.ok for r in pool.map(images(10), [ToolCall("test_conv")] * 10))
        assert pool.stats.batches >= 3


def test_pixel_cap_bounds_learned_batches() -> None:
    with LocalToolPool("cpu", max_batch=16, max_batch_pixels=2 * 12 * 12) as pool:
        assert all(r.ok for r in pool.map(images(6), [ToolCall("test_conv")] * 6))
        assert pool.stats.batches == 3
    assert LocalToolPool("cpu").max_batch_pixels == CPU_BATCH_PIXELS
    assert LocalToolPool("cpu", max_batch_pixels=None).max_batch_pixels is None
    with pytest.raises(ValueError, match="max_batch_pixels"):
        LocalToolPool("cpu", max_batch_pixels=0)


def test_cache_disabled_runs_everything() -> None:
    with LocalToolPool("cpu", cache_bytes=0) as pool:
        im = images(1)[0]
        results = pool.map([im] * 3, [ToolCall("test_conv")] * 3)
        assert not any(r.cached for r in results)
        assert pool.stats.executions == 3 and pool.stats.cache_hits == 0


def test_result_cache_is_lru_bounded_in_bytes() -> None:
    one = torch.zeros(1, 3, 4, 4)  # 192 bytes
    cache = ResultCache(max_bytes=2 * 192)
    keys = [(str(i), ToolCall("t")) for i in range(3)]
    cache.put(keys[0], one)
    cache.put(keys[1], one)
    assert cache.get(keys[0]) is not None  # 0 is now most recently used
    cache.put(keys[2], one)
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is not None
    assert cache.bytes == 2 * 192 and len(cache) == 2
    cache.put((("big"), ToolCall("t")), torch.zeros(1, 3, 8, 8))  # larger than the bound
    assert len(cache) == 2


def test_pool_config_and_make_pool() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        PoolConfig(max_batch=0)
    with pytest.raises(ValueError, match="device"):
        PoolConfig(device="tpu")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown PoolConfig"):
        make_pool(batch=3)
    assert isinstance(make_pool(backend="sync"), SyncToolPool)
    pool = make_pool(PoolConfig(device="cpu", workers=3, timeout_s=5.0))
    assert isinstance(pool, LocalToolPool) and pool.workers == 3 and pool.timeout_s == 5.0
    pool.close()


def test_local_pool_takes_a_pool_config_with_overrides() -> None:
    cfg = PoolConfig(device="cpu", workers=3, max_batch=4, cache_bytes=0, timeout_s=5.0)
    with LocalToolPool(cfg, max_batch=2) as pool:
        assert pool.config == replace(cfg, max_batch=2) and pool.workers == 3
        assert (pool.max_batch, pool.timeout_s, pool.cache) == (2, 5.0, None)
    with LocalToolPool("cpu", max_batch_pixels=None) as pool:  # a device name: shorthand
        assert pool.config == PoolConfig(device="cpu", max_batch_pixels=None)
    with pytest.raises(TypeError, match="unknown PoolConfig"):
        LocalToolPool(cfg, batch=3)
    with pytest.raises(ValueError, match="workers"):
        LocalToolPool(workers=0)


def test_default_pool_is_a_shared_local_pool() -> None:
    previous = set_default_pool(None)
    try:
        pool = default_pool()
        assert isinstance(pool, LocalToolPool) and default_pool() is pool
        pool.close()
    finally:
        set_default_pool(previous)


FORK_SCRIPT = """
import os, torch
from tir_env.tools.pool import default_pool
from tir_env.types import ToolCall
parent = default_pool()
assert parent.run(torch.rand(1, 3, 8, 8), ToolCall("gamma_correction")).ok
pid = os.fork()
if pid == 0:
    child = default_pool()
    ok = child is not parent and child.run(torch.rand(1, 3, 8, 8), ToolCall("gamma_correction")).ok
    stale = parent.run(torch.rand(1, 3, 8, 8), ToolCall("gamma_correction"))
    ok = ok and "forked child" in (stale.error or "")
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_its_own_default_pool() -> None:
    # In a fresh interpreter: forking this one (threads of Ray and of other pools) is unsafe.
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT], timeout=60, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_pool_matches_cpu() -> None:
    ims = images(4, size=16)
    call = ToolCall("test_conv", {"gain": 0.8})
    with LocalToolPool("cuda") as gpu, LocalToolPool("cpu") as cpu:
        for a, b in zip(gpu.map(ims, [call] * 4), cpu.map(ims, [call] * 4), strict=True):
            assert a.image is not None and a.image.device.type == "cpu"
            torch.testing.assert_close(a.image, b.image, rtol=0, atol=1e-4)
        assert make_tool("test_conv").net.weight.device.type == "cpu"  # shared copy untouched


def test_classical_device_routes_classical_calls_to_the_device_lane() -> None:
    calls = [ToolCall("gamma_correction", {"gamma": 0.5 + 0.1 * i}) for i in range(12)]
    ims = images(12)
    with LocalToolPool("cpu", classical_device="device", workers=2, cache_bytes=0) as pool:
        assert not pool.classical_on_device  # a CPU pool: classical tools stay on CPU threads
        on_threads = pool.map(ims, calls)
        assert pool.stats.batches >= 2  # split between the two workers
    with LocalToolPool("cpu", classical_device="device", workers=2, cache_bytes=0) as pool:
        # What a GPU pool sets: the device lane, one batch. This checks the routing alone;
        # the constructor's GPU condition and the CUDA instances run in the gpu tier below.
        pool.classical_on_device = True
        on_lane = pool.map(ims, calls)
        assert pool.stats.batches == 1 and "classical_device='device'" in repr(pool)
    for a, b in zip(on_lane, on_threads, strict=True):
        assert a.ok and b.ok and a.image is not None and b.image is not None
        torch.testing.assert_close(a.image, b.image, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="classical_device"):
        PoolConfig(classical_device="gpu")  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("tool", tool_names(kinds=("classical",)))
def test_classical_tools_on_the_cuda_lane_match_cpu(tool: str) -> None:
    """Issue 17's parity bar (PSNR between the two outputs >= 40 dB), through the pool."""
    ims = images(4, size=32)
    calls = [ToolCall(tool)] * 4
    with LocalToolPool("cuda", classical_device="device") as gpu, LocalToolPool("cpu") as cpu:
        for a, b in zip(gpu.map(ims, calls), cpu.map(ims, calls), strict=True):
            assert a.ok, a.error
            assert a.image is not None and b.image is not None and a.image.device.type == "cpu"
            mse = float(((a.image - b.image) ** 2).mean())
            assert mse <= 1e-4, f"{tool}: PSNR {10 * math.log10(1 / max(mse, 1e-20)):.1f} dB"


# ------------------------------------------------------------------ ray pool
@pytest.mark.skipif(not HAS_RAY, reason=NO_RAY)
def test_ray_actor_killed_midcall_loses_no_result(ray_pool: ToolPool) -> None:
    import ray

    ims = images(6, seed=3)
    calls = [ToolCall("test_faulty", {"seconds": 0.4 + 0.01 * i}) for i in range(6)]
    restarts = ray_pool.restarts  # type: ignore[attr-defined]
    futures = [ray_pool.submit(im, c) for im, c in zip(ims, calls, strict=True)]
    time.sleep(0.2)
    ray.kill(ray_pool.actors()[0], no_restart=True)  # type: ignore[attr-defined]
    results = [f.result(timeout=60) for f in futures]
    assert all(r.ok for r in results), [r.error for r in results]
    assert ray_pool.restarts == restarts + 1  # type: ignore[attr-defined]
    for im, res in zip(ims, results, strict=True):
        assert torch.equal(res.image, 1.0 - im)
    assert ray_pool.run(ims[0], ToolCall("gamma_correction")).ok
