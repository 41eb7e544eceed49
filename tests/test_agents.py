from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from agents.base import AGENTS, Agent, agent_names, make_agent, rollout
from tir_env.env import TIREnv
from tir_env.spaces import encode_call
from tir_env.types import ToolCall

KW = dict(images="test", patch_size=32, obs_size=32, max_steps=2)
BUILTIN = ["random", "fixed", "oracle", "exhaustive", "exhaustive-ref", "greedy", "agenticir"]


class StopAgent(Agent):
    """Third-party agent used by the entry-point test: always stops."""

    name = "stopper"
    description = "stops at once"

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return encode_call(None, self.env.tools), state


def test_builtin_agents_registered():
    assert set(BUILTIN) <= set(agent_names())


@pytest.mark.parametrize("name", BUILTIN)
def test_every_agent_completes_an_episode(name):
    env = TIREnv(**KW)
    ep = rollout(env, make_agent(name), seed=3, options={"degradations": ("dark", "noise")})
    assert ep.records and np.isfinite(ep.total_reward)
    calls = sum(r.call is not None for r in ep.records)
    assert ep.tool_executions >= calls
    assert set(ep.metrics_output) >= {"psnr", "ssim"}


def test_search_agents_count_their_search():
    from tir_env.tools import tool_info

    env = TIREnv(**KW)
    agent = make_agent("greedy")
    ep = rollout(env, agent, seed=0, options={"degradations": ("dark", "noise")})
    perceived = agent.info["perceived_tasks"]
    per_task = [t for t in env.tools if tool_info(t).task in perceived]
    assert ep.tool_executions >= len(per_task)  # every perceived task's tool ran once


def test_oracle_follows_reverse_protocol_order():
    env = TIREnv(**KW)
    ep = rollout(env, make_agent("oracle"), seed=0, options={"degradations": ("noise", "dark")})
    tasks = [r.call.tool for r in ep.records if r.call]
    assert tasks == ["dct_denoise", "gamma_correction"]  # noise was applied last


@pytest.mark.parametrize("name", ["oracle", "fixed"])
def test_learned_tasks_call_their_learned_tool_and_the_env_gets_it(name):
    from benchmarks.evaluate import with_required_tools
    from tir_env.errors import ConfigValueError

    agent = make_agent(name, learned="denoising")
    assert agent.required_tools == ("learned_denoising",)
    env = TIREnv(**with_required_tools(dict(KW), agent))
    ep = rollout(env, agent, seed=0, options={"degradations": ("noise", "dark")})
    tools = [r.call.tool for r in ep.records if r.call]
    if name == "oracle":  # the learned tool for denoising only; brightening stays classical
        assert tools == ["learned_denoising", "gamma_correction"]
    else:
        assert "dct_denoise" not in tools
    # without the tool in the env, the plan falls back to the preferred classical tool
    plain = rollout(
        TIREnv(**KW),
        make_agent("oracle", learned="denoising"),
        seed=0,
        options={"degradations": ("noise",)},
    )
    assert [r.call.tool for r in plain.records if r.call] == ["dct_denoise"]
    with pytest.raises(ConfigValueError, match="unknown task"):
        make_agent(name, learned="flying")


@pytest.mark.parametrize("name", ["exhaustive", "greedy"])
def test_search_agents_take_a_learned_tool_as_the_priors_and_keep_the_classical_as_a_rival(name):
    from benchmarks.evaluate import with_required_tools

    agent = make_agent(name, learned="denoising")
    assert agent.required_tools == ("learned_denoising",)
    env = TIREnv(**with_required_tools(dict(KW), agent))
    rollout(env, agent, seed=0, options={"degradations": ("noise",)})
    assert agent._is_preferred("learned_denoising") and not agent._is_preferred("dct_denoise")
    assert agent._is_prior(agent.prior_call("learned_denoising"))
    assert {"learned_denoising", "dct_denoise"} <= set(env.tools)  # both candidates
    plain = make_agent(name, learned="")  # the classical prior
    rollout(TIREnv(**KW), plain, seed=0, options={"degradations": ("noise",)})
    assert plain.required_tools == () and plain._is_preferred("dct_denoise")


def test_random_agent_is_reproducible():
    env = TIREnv(**KW)
    a = rollout(env, make_agent("random", seed=1), seed=5)
    b = rollout(env, make_agent("random", seed=1), seed=5)
    assert [r.call for r in a.records] == [r.call for r in b.records]


def test_third_party_agent_via_entry_point(monkeypatch, capsys):
    ep = metadata.EntryPoint(name="stopper", value=f"{__name__}:StopAgent", group="tir.agents")
    real = metadata.entry_points
    monkeypatch.setattr(
        metadata,
        "entry_points",
        lambda group=None: [ep] if group == "tir.agents" else real(group=group),
    )
    AGENTS.reload_plugins()
    try:
        from benchmarks.cli import main

        main(["agents"])
        assert "stopper" in capsys.readouterr().out
        env = TIREnv(**KW)
        episode = rollout(env, make_agent("stopper"), seed=0)
        assert len(episode.records) == 1 and episode.records[0].call is None
    finally:
        AGENTS.remove("stopper")


def test_unknown_agent_did_you_mean():
    with pytest.raises(KeyError, match="oracle"):
        make_agent("orcale")


def test_plan_agents_respect_step_budget():
    env = TIREnv(**{**KW, "max_steps": 1})
    ep = rollout(env, make_agent("fixed"), seed=0)
    assert sum(r.call is not None for r in ep.records) <= 1


def test_encode_call_round_trip():
    env = TIREnv(**KW)
    from tir_env.spaces import decode_action

    call = ToolCall("dct_denoise", {})
    decoded = decode_action(encode_call(call, env.tools), env.tools)
    assert decoded is not None and decoded.tool == "dct_denoise"


def test_random_agent_draws_from_the_episode_not_its_pixels():
    from agents.base import episode_digest

    env = TIREnv(**KW)
    _, info = env.reset(seed=5)
    named = episode_digest(env, info)
    assert named == episode_digest(None, info)  # the pixels do not enter
    other = {**info, "degradation_params": [{"seed": 1.0}]}
    assert episode_digest(env, other) != named  # another draw of the degradations
    # without the episode's names, its pixels name it
    assert episode_digest(env, {}) == episode_digest(env, None) != 0
    assert episode_digest(None, None) == 0
    # an image a user passed in (tir restore) has a name but no sampled degradations
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    digests = []
    for image in [*images, images[0]]:
        _, given = env.reset(seed=0, options={"image": image, "reference": image})
        digests.append(episode_digest(env, given))
    assert digests[0] != digests[1] and digests[0] == digests[2]
