"""Typed agent options: one parser for strings (--agent-arg) and typed Python values."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.base import AgentOptions, agent_options, make_agent
from agents.ppo.agent import PPOOptions
from agents.vlm.remote import APIVLMOptions
from tir_env.config_cli import config_from_mapping
from tir_env.errors import ConfigValueError, UnknownConfigFieldError

ROOT = Path(__file__).resolve().parents[1]


def test_ppo_deterministic_false_is_parsed_by_type():
    agent = make_agent("ppo", deterministic="false")
    assert agent.deterministic is False and agent.options == PPOOptions(deterministic=False)
    assert make_agent("ppo", deterministic=False).options == agent.options


@pytest.mark.parametrize("word", ["maybe", "2", "flase"])
def test_bad_bool_is_a_named_error(word):
    with pytest.raises(ConfigValueError, match="deterministic"):
        make_agent("ppo", deterministic=word)


def test_unknown_option_has_did_you_mean():
    with pytest.raises(UnknownConfigFieldError, match="Did you mean 'deterministic'"):
        make_agent("ppo", determinstic="false")
    with pytest.raises(UnknownConfigFieldError, match="Did you mean 'metric'"):
        agent_options("greedy", {"metrc": "niqe"})


def test_typed_values_are_checked_not_converted():
    with pytest.raises(ConfigValueError):
        make_agent("random", seed=1.5)
    with pytest.raises(ConfigValueError):
        make_agent("random", seed=True)  # a bool is not an int seed


def test_api_vlm_options_parse_every_type():
    opts = agent_options(
        "api-vlm",
        {"image_size": "16", "timeout": "5", "temperature": "none", "mode": "tools"},
    )
    assert opts == APIVLMOptions(image_size=16, timeout=5.0, temperature=None, mode="tools")
    with pytest.raises(ConfigValueError, match="mode"):
        agent_options("api-vlm", {"mode": "chat"})


def test_agenticir_planner_options_need_api_vlm():
    with pytest.raises(UnknownConfigFieldError, match="planner=api-vlm"):
        agent_options("agenticir", {"base_url": "http://x/v1"})
    assert agent_options("agenticir", {"planner": "api-vlm", "base_url": "http://x/v1"})
    with pytest.raises(UnknownConfigFieldError, match="Did you mean 'model'"):
        agent_options("agenticir", {"planner": "api-vlm", "modl": "m"})


@dataclass(frozen=True)
class _Sample(AgentOptions):
    """A config of every kind of field.

    Attributes:
        rate: A float.
        flag: A bool.
        sizes: A tuple.
        path: An optional path.
    """

    rate: float = 1.0
    flag: bool = False
    sizes: tuple[int, ...] = (1,)
    path: Path | None = None


@given(
    seed=st.integers(-(2**31), 2**31),
    rate=st.floats(allow_nan=False, allow_infinity=False),
    flag=st.booleans(),
    sizes=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
)
def test_strings_and_typed_values_give_the_same_config(seed, rate, flag, sizes):
    typed = {"seed": seed, "rate": rate, "flag": flag, "sizes": tuple(sizes), "path": None}
    words = {
        "seed": str(seed),
        "rate": repr(rate),
        "flag": str(flag).lower(),
        "sizes": ",".join(map(str, sizes)),
        "path": "none",
    }
    assert config_from_mapping(_Sample, words, "t") == config_from_mapping(_Sample, typed, "t")


def test_no_agent_parses_strings_itself():
    """Agents read typed options: no `str(x).lower() in (...)` boolean parsing left in agents/."""
    found = subprocess.run(
        ["grep", "-rnE", r"lower\(\) (not )?in \(", "agents"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert found == ""


def test_tir_agents_lists_each_option_with_its_doc(capsys):
    from benchmarks.cli import main

    assert main(["agents", "--options"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "ppo.deterministic=True" in x)
    assert "Take the most likely action" in line
    assert "Seed of the agent's own randomness" in out  # inherited fields keep their doc
