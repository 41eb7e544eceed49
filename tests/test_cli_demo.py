"""tir demo reports a failing agent (exit 1) and skips only agents whose weights are missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.base import AGENTS, Agent
from benchmarks.cli import main
from tir_env.errors import WeightsNotFoundError


class BrokenAgent(Agent):
    name = "broken"

    def act(self, observation: Any, deterministic: bool = True) -> Any:
        raise RuntimeError("a bug in the agent")


class NoWeightsAgent(Agent):
    name = "no-weights"

    def __init__(self, seed: int | str = 0, **options: Any) -> None:
        raise WeightsNotFoundError("no-weights: /nowhere/policy.safetensors is missing")


@pytest.fixture
def fake_agents():
    for cls in (BrokenAgent, NoWeightsAgent):
        AGENTS.add(cls.name, cls)
    yield
    for cls in (BrokenAgent, NoWeightsAgent):
        AGENTS.remove(cls.name)


def _demo(out: Path, agents: str) -> int:
    args = ["demo", "--out", str(out), "--agents", agents, "--patch-size", "32"]
    return main([*args, "--max-steps", "1"])


def test_failing_agent_is_reported_and_exits_nonzero(fake_agents, tmp_path, capsys):
    assert _demo(tmp_path, "random,broken,no-weights") == 1
    captured = capsys.readouterr()
    assert "agent 'broken' failed: RuntimeError: a bug in the agent" in captured.err
    assert "skipped: not available here: agent 'no-weights'" in captured.out
    assert (tmp_path / "leaderboard.md").exists()  # the agents that ran are still reported


def test_missing_weights_is_the_only_silent_skip(fake_agents, tmp_path, capsys):
    assert _demo(tmp_path, "random,no-weights") == 0
    assert "skipped: not available here" in capsys.readouterr().out
