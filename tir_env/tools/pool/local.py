"""The default pool backend: worker threads in this process (:class:`LocalToolPool`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import torch

from tir_env.device import resolve_device
from tir_env.tools.base import TOOLS, Tool, make_tool, tool_info
from tir_env.tools.pool.config import CPU_BATCH_PIXELS, PoolConfig, pool_config
from tir_env.tools.pool.engine import BatchingToolPool
from tir_env.tools.pool.jobs import Entry
from tir_env.types import ToolCall


class LocalToolPool(BatchingToolPool):
    """The default pool: batched, asynchronous, cached, fault-isolated, in this process.

    Learned and pretrained tools run in one "device" worker thread on ``device``; each is
    built once, moved there once and kept resident (on CUDA the pool builds its own instance,
    so the CPU instance shared through :func:`~tir_env.tools.base.make_tool` stays on the CPU).
    Classical tools run in ``workers`` CPU threads; a group of classical calls is split evenly
    between the CPU workers (their tools loop over images, so parallelism beats batching).
    With ``classical_device="device"`` on a GPU pool they run batched on the GPU instead.
    Calls of one tool batch together whatever their parameters: a batch runs through
    :meth:`~tir_env.tools.base.Tool.call_many`, per-image parameters inside one invocation
    (random actions of a vector env rarely repeat a tool's parameters). Results are identical
    to per-call results for tools that process images independently; float convolutions may
    differ by about one unit in the last place between batch sizes.

    Args:
        config: The settings (:class:`~tir_env.tools.pool.config.PoolConfig`; ``backend``,
            ``num_actors`` and ``address`` are not read here), or a device name as shorthand
            for ``PoolConfig(device=...)``; ``None``: the defaults.
        **overrides: :class:`~tir_env.tools.pool.config.PoolConfig` fields replacing those of
            ``config`` (``LocalToolPool(device="cpu", max_batch=4)``).

    Raises:
        TypeError: an override that is not a ``PoolConfig`` field.
        ValueError: a value ``PoolConfig`` refuses.
    """

    group_by_tool = True  # Tool.call_many runs a tool's calls with different parameters

    def __init__(self, config: PoolConfig | str | None = None, /, **overrides: Any) -> None:
        cfg = pool_config(config, **overrides)
        super().__init__({"device": 1, "cpu": cfg.workers}, cfg)
        self.device = resolve_device(cfg.device)
        self.workers = cfg.workers
        # Classical tools join the device lane only where the device is not the CPU itself.
        self.classical_on_device = cfg.classical_device == "device" and self.device.type != "cpu"
        max_batch_pixels = cfg.max_batch_pixels
        if max_batch_pixels == "auto":
            max_batch_pixels = CPU_BATCH_PIXELS if self.device.type == "cpu" else None
        self.max_batch_pixels: int | None = max_batch_pixels
        self._tools: dict[str, Tool] = {}
        self._tools_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LocalToolPool(device={str(self.device)!r}, max_batch={self.max_batch}, "
            f"workers={self.workers}, timeout_s={self.timeout_s}"
            + (", classical_device='device')" if self.classical_on_device else ")")
        )

    def _lane_of(self, call: ToolCall) -> str:
        classical = tool_info(call.tool).kind == "classical"
        return "cpu" if classical and not self.classical_on_device else "device"

    def _take_count(self, lane: str, queue: Sequence[Entry], idle: int) -> int:
        if lane == "cpu":  # share the group among the free CPU workers
            return min(self.max_batch, -(-len(queue) // idle))
        n = min(self.max_batch, len(queue))
        if self.max_batch_pixels is not None:
            image = queue[0].image
            per_call = image.shape[0] * image.shape[2] * image.shape[3]
            n = min(n, max(1, self.max_batch_pixels // per_call))
        return n

    def _prepare(self, call: ToolCall) -> None:
        self._tool(call.tool)

    def _tool(self, name: str) -> Tool:
        with self._tools_lock:
            tool = self._tools.get(name)
            if tool is None:
                if tool_info(name).kind == "classical" and not self.classical_on_device:
                    tool = make_tool(name)
                elif self.device.type == "cpu":
                    tool = make_tool(name).to(self.device)
                else:
                    tool = TOOLS.get(name)().to(self.device)
                self._tools[name] = tool
            return tool

    def _run_batch(self, lane: str, call: ToolCall, batch: torch.Tensor) -> torch.Tensor:
        tool = self._tool(call.tool)
        if lane == "device":
            return tool(batch.to(self.device), call.params).to("cpu")
        return tool(batch, call.params)

    def _run_mixed(self, lane: str, calls: Sequence[ToolCall], batch: torch.Tensor) -> torch.Tensor:
        tool = self._tool(calls[0].tool)
        params = [c.params for c in calls]
        if lane == "device":
            return tool.call_many(batch.to(self.device), params).to("cpu")
        return tool.call_many(batch, params)
