"""A process forked after TIR ran torch work does not hang (see ``tir_env.__init__``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import gymnasium as gym, torch, tir_env
from gymnasium.vector import AsyncVectorEnv
torch.set_num_threads(2)  # the parent's OpenMP pool, as a user's process has one
make = lambda: gym.make("TIR-v0", patch_size=32, obs_size=32, max_steps=2)
parent = make()
parent.reset(seed=0)  # torch work in the parent before the fork
envs = AsyncVectorEnv([make] * 2, context="fork")
envs.reset(seed=0)
envs.step(envs.action_space.sample())
envs.close()
print("ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork is the default start method on Linux")
def test_async_vector_env_forked_after_the_parent_used_torch_does_not_hang() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_a_forked_child_runs_torch_on_one_thread() -> None:
    import os

    import torch

    import tir_env  # noqa: F401  (registers the hook)

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # else a one-thread parent (OMP_NUM_THREADS=1) proves nothing
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its thread count and leave at once, whatever happens
            try:
                os.write(write, str(torch.get_num_threads()).encode())
            finally:
                os._exit(0)
        os.close(write)  # a child that dies leaves an empty read, not a wait
        os.waitpid(pid, 0)
        assert os.read(read, 16) == b"1"
        os.close(read)
    finally:
        torch.set_num_threads(before)
