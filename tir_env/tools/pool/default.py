"""Building a pool from its config (:func:`make_pool`) and the process-wide default pool.

The default pool is created on first use and closed by an ``atexit`` hook registered when
this module is imported (``import tir_env.tools.pool`` imports it).
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from tir_env.tools.pool.base import SyncToolPool, ToolPool
from tir_env.tools.pool.config import PoolConfig, pool_config
from tir_env.tools.pool.local import LocalToolPool


def make_pool(config: PoolConfig | None = None, **overrides: Any) -> ToolPool:
    """Build the pool ``config`` describes (keyword overrides replace its fields).

    Raises:
        TypeError: an override that is not a :class:`PoolConfig` field.
        ImportError: ``backend="ray"`` without Ray installed.
    """
    cfg = pool_config(config, **overrides)
    if cfg.backend == "sync":
        return SyncToolPool()
    if cfg.backend == "ray":
        from tir_env.tools.pool.ray import RayToolPool

        return RayToolPool(cfg)
    return LocalToolPool(cfg)


_DEFAULT_POOL: ToolPool | None = None
_DEFAULT_PID: int | None = None
_DEFAULT_LOCK = threading.Lock()


def default_pool() -> ToolPool:
    """The process-wide shared pool: a :class:`LocalToolPool` built from :class:`PoolConfig`.

    Created on first use and closed at interpreter exit; a forked child process gets its own,
    and so does a caller after the default was closed.
    Replace it with :func:`set_default_pool`.
    """
    global _DEFAULT_POOL, _DEFAULT_PID
    with _DEFAULT_LOCK:
        if _DEFAULT_POOL is None or os.getpid() != _DEFAULT_PID or _DEFAULT_POOL.closed:
            # A closed default (someone called default_pool().close()) is replaced: serving
            # from it would fail every later call with reward -1.
            _DEFAULT_POOL, _DEFAULT_PID = make_pool(PoolConfig()), os.getpid()
        return _DEFAULT_POOL


def set_default_pool(pool: ToolPool | None) -> ToolPool | None:
    """Make ``pool`` the process-wide default (``None``: build a new one on next use).

    Returns:
        The previous default pool, which the caller may close; it is not closed here
        because envs may still hold it.
    """
    global _DEFAULT_POOL, _DEFAULT_PID
    with _DEFAULT_LOCK:
        previous = _DEFAULT_POOL if os.getpid() == _DEFAULT_PID else None
        _DEFAULT_POOL, _DEFAULT_PID = pool, os.getpid()
        return previous


@atexit.register
def _close_default_pool() -> None:
    if _DEFAULT_POOL is not None and os.getpid() == _DEFAULT_PID:
        _DEFAULT_POOL.close()
