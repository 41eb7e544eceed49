"""The tool pool: every tool call of every env, agent and rollout goes through one.

A pool takes ``(image, ToolCall)`` requests and answers each with a future of a
:class:`ToolResult`. A call never raises into the caller: a tool that raises (``SystemExit``
and other ``BaseException`` included), breaks its output contract
(:func:`~tir_env.tools.base.check_output`: shape, float32 dtype, finite values), times out, or
a pool that is closed, yields a :class:`ToolResult` with ``error`` set and ``image=None``.
Tools see a private copy of the caller's image, so a tool that edits its input in place cannot
corrupt the caller's tensor (or an env's input image).

Implementations:

* :class:`SyncToolPool`: runs each call at once in the caller's thread; the simple reference.
* :class:`LocalToolPool`: the default (:func:`default_pool`). Batched, asynchronous, cached and
  fault-isolated, with worker threads in this process (the "globally shared model-call pool" of
  TIR-Agent, with the prefix cache of OPERA's inference service; ``notes/paper.md`` §7).
* :class:`~tir_env.tools.pool.ray.RayToolPool`: the same front end, executing on Ray actors
  (``pip install 'tir-env[ray]'``).

Modules: :mod:`~tir_env.tools.pool.config` (:class:`PoolConfig`, the settings, listed once),
:mod:`~tir_env.tools.pool.results` (:class:`ToolResult`, :class:`PoolStats`, errors),
:mod:`~tir_env.tools.pool.base` (:class:`ToolPool`, :func:`execute`, :class:`SyncToolPool`),
:mod:`~tir_env.tools.pool.cache` (:class:`ResultCache`), :mod:`~tir_env.tools.pool.engine`
(:class:`BatchingToolPool`), :mod:`~tir_env.tools.pool.local`, :mod:`~tir_env.tools.pool.ray`
and :mod:`~tir_env.tools.pool.default` (:func:`make_pool`, :func:`default_pool`, the
``atexit`` hook that closes the default). Every pool constructor takes a :class:`PoolConfig`
and keyword overrides of its fields.

Example:
    >>> from tir_env.tools.pool import LocalToolPool
    >>> from tir_env.types import ToolCall
    >>> import torch
    >>> with LocalToolPool(device="cpu") as pool:
    ...     results = pool.map([torch.rand(1, 3, 8, 8)] * 2, [ToolCall("gamma_correction")] * 2)
    >>> [r.cached for r in results]
    [False, True]
"""

from __future__ import annotations

from tir_env.tools.pool.base import SyncToolPool, ToolPool, check_result, execute
from tir_env.tools.pool.cache import ResultCache
from tir_env.tools.pool.config import (
    CPU_BATCH_PIXELS,
    DeviceName,
    PoolBackend,
    PoolConfig,
    pool_config,
)
from tir_env.tools.pool.default import default_pool, make_pool, set_default_pool
from tir_env.tools.pool.engine import BatchingToolPool
from tir_env.tools.pool.local import LocalToolPool
from tir_env.tools.pool.ray import RayToolPool
from tir_env.tools.pool.results import PoolClosedError, PoolStats, ToolResult, ToolTimeoutError

__all__ = [
    "CPU_BATCH_PIXELS",
    "BatchingToolPool",
    "DeviceName",
    "LocalToolPool",
    "PoolBackend",
    "PoolClosedError",
    "PoolConfig",
    "PoolStats",
    "RayToolPool",
    "ResultCache",
    "SyncToolPool",
    "ToolPool",
    "ToolResult",
    "ToolTimeoutError",
    "check_result",
    "default_pool",
    "execute",
    "make_pool",
    "pool_config",
    "set_default_pool",
]
