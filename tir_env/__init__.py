"""TIR: tool-calling image restoration as a Gymnasium environment.

``import tir_env`` registers ``TIR-v0`` and stays cheap: the env, tools and metrics import
torch and friends only when first used.

Example:
    >>> import gymnasium as gym
    >>> import tir_env  # noqa: F401
    >>> "TIR-v0" in gym.registry
    True
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"


def _one_torch_thread_in_forked_child() -> None:
    """In a process forked after ``import tir_env``: one torch thread, if torch is loaded.

    PyTorch's OpenMP thread pool does not survive ``fork``: a child's first parallel op waits
    forever for threads that were not copied. gymnasium's ``AsyncVectorEnv`` with the default
    start method on Linux (fork) hung at its first reset once the parent had stepped a TIR env.
    One thread needs no pool (PyTorch's own DataLoader workers run with one); a child started
    with ``spawn`` is a fresh process and keeps its default (a ``forkserver`` child is forked
    from the server, so it gets one thread too once the server has imported tir_env).
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_one_torch_thread_in_forked_child)

if "TIR-v0" not in registry:
    register(
        id="TIR-v0",
        entry_point="tir_env.env:TIREnv",
        vector_entry_point="tir_env.vector_env:TIRVectorEnv",
    )

_LAZY = {
    # environment
    "TIREnv": "tir_env.env",
    "EnvConfig": "tir_env.config",
    "TIRVectorEnv": "tir_env.vector_env",
    # values
    "ToolCall": "tir_env.types",
    "StepRecord": "tir_env.types",
    "Param": "tir_env.types",
    # registries
    "make_tool": "tir_env.tools",
    "tool_names": "tir_env.tools",
    "make_degradation": "tir_env.degradations",
    "degradation_names": "tir_env.degradations",
    "make_metric": "tir_env.metrics",
    "metric_names": "tir_env.metrics",
    # perception
    "perceive": "tir_env.perception",
    "perceive_photo": "tir_env.perception",
    "Perception": "tir_env.perception",
    # errors
    "TIRError": "tir_env.errors",
    "InvalidActionError": "tir_env.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tir_env' has no attribute {name!r}")
