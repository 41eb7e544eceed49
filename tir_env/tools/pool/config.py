"""The pool's settings, listed once: :class:`PoolConfig`, read by every pool constructor."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

PoolBackend = Literal["sync", "local", "ray"]
DeviceName = Literal["auto", "cpu", "cuda"]

#: Pixel budget of one learned-tool batch on a CPU under ``max_batch_pixels="auto"``: where a
#: 4-layer 32-channel CNN ran fastest per image on the development machine (8 x 32^2,
#: 2 x 64^2, 1 x 128^2); larger batches were up to 2.7x slower per image.
CPU_BATCH_PIXELS = 8192


@dataclass(frozen=True)
class PoolConfig:
    """How the shared tool pool executes calls (see :func:`~tir_env.tools.pool.make_pool`).

    Every pool constructor takes one (``LocalToolPool(PoolConfig(...))``) plus keyword
    overrides of its fields (``LocalToolPool(device="cpu", max_batch=4)``).

    Attributes:
        backend: ``"local"`` (threads in this process; the default), ``"sync"`` (the caller's
            thread, no batching or cache) or ``"ray"`` (tool actors on a Ray cluster). Read by
            :func:`~tir_env.tools.pool.make_pool` only.
        device: Where learned and pretrained tools run; ``"auto"`` is CUDA when available
            (``"cuda:N"`` picks one GPU). Classical tools run on the CPU unless
            ``classical_device`` says otherwise.
        classical_device: Where classical tools run (local backend): ``"cpu"``, in the
            ``workers`` threads; ``"device"``, batched on ``device`` like the learned tools
            when that is a GPU (on a CPU pool it changes nothing). Measured on an H200 with
            16 CPU cores (``benchmarks.classical_routing``; docs/performance.md, "On a GPU"),
            it made GRPO-like groups and vector envs of 16 and 64 envs 3-4x slower: the
            device lane is one thread, and random actions give small, mixed batches. Outputs
            match the CPU's (PSNR >= 40 dB for every classical tool, gpu tier).
        max_batch: Most images concatenated into one tool invocation.
        max_batch_pixels: Most pixels (N x H x W) in one invocation on the device lane
            (learned tools, and classical ones with ``classical_device="device"``; local
            backend): ``"auto"`` caps CPU batches at :data:`CPU_BATCH_PIXELS` and leaves CUDA
            batches uncapped; ``None`` never caps. On a CPU, large conv batches fall out of
            cache and run slower than single images (``docs/performance.md``).
        workers: Threads running classical tools (local backend).
        cache_bytes: Bound of the LRU result cache, in bytes of result tensors; 0 disables
            caching and the coalescing of identical in-flight calls.
        timeout_s: Longest one tool invocation (a whole batch) may run before its calls fail
            with :class:`~tir_env.tools.pool.ToolTimeoutError`.
        batch_window_s: How long a call arriving among concurrent submissions waits for more
            calls of the same group to batch with (calls of one ``submit_many`` or ``map``
            never wait).
        num_actors: Ray actors (``None``: one per CPU, or per GPU on CUDA).
        address: Ray cluster to join (``None``: start a local one unless Ray is initialised).
    """

    backend: PoolBackend = "local"
    device: DeviceName = "auto"
    classical_device: Literal["cpu", "device"] = "cpu"
    max_batch: int = 16
    max_batch_pixels: int | Literal["auto"] | None = "auto"
    workers: int = 2
    cache_bytes: int = 256 * 2**20
    timeout_s: float = 30.0
    batch_window_s: float = 0.002
    num_actors: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("sync", "local", "ray"):
            raise ValueError(f"backend must be 'sync', 'local' or 'ray', got {self.backend!r}")
        if self.device not in ("auto", "cpu", "cuda") and not _is_cuda_index(self.device):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.classical_device not in ("cpu", "device"):
            where = self.classical_device
            raise ValueError(f"classical_device must be 'cpu' or 'device', got {where!r}")
        if self.max_batch < 1 or self.workers < 1:
            raise ValueError("max_batch and workers must be >= 1")
        if self.max_batch_pixels not in ("auto", None) and not (
            isinstance(self.max_batch_pixels, int) and self.max_batch_pixels >= 1
        ):
            got = self.max_batch_pixels
            raise ValueError(f"max_batch_pixels must be 'auto', None or an int >= 1, got {got!r}")
        if self.cache_bytes < 0 or self.batch_window_s < 0:
            raise ValueError("cache_bytes and batch_window_s must be >= 0")
        if not (self.timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.num_actors is not None and self.num_actors < 1:
            raise ValueError(f"num_actors must be >= 1 or None, got {self.num_actors}")


def pool_config(config: PoolConfig | str | None = None, **overrides: Any) -> PoolConfig:
    """``config`` (default :class:`PoolConfig`) with keyword overrides of its fields.

    Args:
        config: A config, or a device name as shorthand for ``PoolConfig(device=...)``
            (``LocalToolPool("cpu")``), or ``None`` for the defaults.
        **overrides: :class:`PoolConfig` fields to replace.

    Raises:
        TypeError: an override that is not a :class:`PoolConfig` field.
        ValueError: a value :class:`PoolConfig` refuses.
    """
    names = {f.name for f in fields(PoolConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown PoolConfig field(s) {unknown}; fields: {sorted(names)}")
    if isinstance(config, str):
        overrides = {"device": config, **overrides}
        config = None
    return replace(config or PoolConfig(), **overrides)


def _is_cuda_index(device: str) -> bool:
    """``"cuda:N"``: one GPU of several (torch's spelling), accepted next to the names."""
    return isinstance(device, str) and re.fullmatch(r"cuda:\d+", device) is not None
