"""A small, real instance of the reward-hacking experiment (docs/reward.md)."""

from __future__ import annotations

from benchmarks.hacking import EXPLOIT, METRICS, greedy_episode
from tir_env.adaptive_reward import AdaptiveReward, StaticReward
from tir_env.env import TIREnv
from tir_env.tools.base import tool_names


def test_static_sum_falls_for_the_exploit_and_adaptive_does_not():
    tools = (*[t for t in tool_names(kinds=("classical",)) if t != EXPLOIT], EXPLOIT)
    env = TIREnv(images="test", patch_size=128, max_steps=1, tools=tools, metrics=METRICS)
    options = {"image_id": "china", "degradations": ("rain", "haze")}
    static = greedy_episode(env, StaticReward(), 0, options)
    adaptive = greedy_episode(env, AdaptiveReward(), 0, options)
    assert static["picks"] == [EXPLOIT]
    assert adaptive["picks"] and adaptive["picks"] != [EXPLOIT]
    assert adaptive["output"]["psnr"] > static["output"]["psnr"]
    assert static["output"]["niqe"] < static["input"]["niqe"]  # the exploit does fool NIQE


def test_importing_the_experiment_leaves_the_default_toolbox_alone():
    """Importing benchmarks.hacking registers median_paint but TIR-v0's actions stay the same."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import gymnasium as gym, tir_env\n"
        "before = gym.make('TIR-v0').unwrapped.tools\n"
        "import benchmarks.hacking\n"
        "from tir_env.tools.base import tool_names\n"
        "assert 'median_paint' in tool_names()\n"
        "after = gym.make('TIR-v0').unwrapped\n"
        "assert after.tools == before, (before, after.tools)\n"
        "assert after.action_space['tool'].n == len(before) + 1\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
