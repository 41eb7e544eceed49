"""Ensembles of PPO policies (agents/ppo/policy.py, ``ppo.ensemble``): averaged action
probabilities, the members' compatibility check, and the option on the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ppo.agent import DEFAULT_WEIGHTS
from agents.ppo.policy import (
    PolicySpec,
    build_policy,
    ensemble_action,
    export_policy,
    load_policy,
    load_spec,
    mean_action_probabilities,
)
from tir_env.errors import ConfigValueError, TIRError

SPACES = ("catalogue", "params")


def small_spec(action_space: str) -> PolicySpec:
    """The shipped policy's spec, small (32 px, narrow CNN), in either action space."""
    spec = load_spec(DEFAULT_WEIGHTS)
    features = {**spec.features, "channels": (8, 8, 8), "history_dim": 8}
    return dataclasses.replace(
        spec,
        action_space=action_space,  # type: ignore[arg-type]
        obs_size=32,
        features=features,
        net_arch={"pi": [16], "vf": [16]},
    )


def random_policy(action_space: str, seed: int) -> Any:
    torch.manual_seed(seed)
    return build_policy(small_spec(action_space))


def observation(action_space: str, seed: int) -> dict[str, Any]:
    space, _ = small_spec(action_space).spaces()
    space.seed(seed)
    return space.sample()


@pytest.fixture(scope="module", params=SPACES)
def members(request: pytest.FixtureRequest) -> tuple[str, list[Any]]:
    return request.param, [random_policy(request.param, seed) for seed in range(3)]


def test_an_ensemble_of_one_policy_twice_acts_as_that_policy(members):
    kind, policies = members
    for seed in range(5):
        obs = observation(kind, seed)
        expected, _ = policies[0].predict(obs, deterministic=True)
        got = ensemble_action([policies[0], policies[0]], obs)
        assert np.array_equal(np.asarray(got), np.asarray(expected))


def test_probabilities_are_the_members_mean_and_the_action_their_argmax(members):
    kind, policies = members
    obs = observation(kind, 7)
    alone = [mean_action_probabilities([p], obs) for p in policies]
    mean = mean_action_probabilities(policies, obs)
    space = policies[0].action_space
    assert len(mean) == (1 if kind == "catalogue" else len(space.nvec))
    for dim, probs in enumerate(mean):
        np.testing.assert_allclose(probs, np.mean([a[dim] for a in alone], axis=0), atol=1e-12)
        assert probs.sum() == pytest.approx(1.0)
    action = np.atleast_1d(ensemble_action(policies, obs))
    assert action.tolist() == [int(np.argmax(p)) for p in mean]
    assert space.contains(ensemble_action(policies, obs))


@settings(max_examples=20, deadline=None)
@given(order=st.permutations(range(3)), seed=st.integers(0, 2**16), draw=st.booleans())
def test_the_action_does_not_depend_on_the_members_order(members, order, seed, draw):
    kind, policies = members
    obs = observation(kind, seed)
    shuffled = [policies[i] for i in order]
    if draw:  # sampled: the same generator state gives the same draw in any order
        first = ensemble_action(policies, obs, np.random.default_rng(seed))
        second = ensemble_action(shuffled, obs, np.random.default_rng(seed))
    else:
        first, second = ensemble_action(policies, obs), ensemble_action(shuffled, obs)
    assert np.array_equal(np.asarray(first), np.asarray(second))


def export(tmp_path: Path, name: str, action_space: str, seed: int) -> Path:
    stem = tmp_path / name
    export_policy(random_policy(action_space, seed), small_spec(action_space), stem)
    return stem


def test_the_agent_runs_an_ensemble_and_refuses_a_mismatch_or_both_options(tmp_path: Path):
    from agents.base import make_agent, rollout
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    stems = [export(tmp_path, f"p{s}", "params", s) for s in range(2)]
    agent = make_agent("ppo", ensemble=",".join(map(str, stems)))
    assert len(agent.members) == 2 and agent.spec.action_space == "params"
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=2, metrics=("psnr",))
    episode = rollout(env, agent, seed=3, options={"degradations": ("noise",)})
    assert 1 <= len(episode.records) <= 2
    # the members are the files' policies, in the order given
    for member, stem in zip(agent.members, stems, strict=True):
        for key, value in load_policy(stem)[0].state_dict().items():
            assert torch.equal(member.state_dict()[key], value)

    other = export(tmp_path, "catalogue", "catalogue", 5)
    with pytest.raises(TIRError, match="action_space"):
        make_agent("ppo", ensemble=f"{stems[0]},{other}")
    with pytest.raises(ConfigValueError, match="not both"):
        make_agent("ppo", ensemble=f"{stems[0]},{stems[1]}", weights=str(stems[0]))


def test_a_comma_in_an_agent_arg_value_is_kept_and_reproduce_writes_it_back():
    from agents.ppo.agent import PPOAgent
    from benchmarks.commands.bench import split_agent_args
    from benchmarks.commands.configs import BenchConfig
    from benchmarks.reproduce import recorded_bench_args
    from tir_env.config_cli import config_from_args

    # a repeated flag is one item per flag: the command line keeps the value's commas
    argv = ["mio-a", "--agent-arg", "ppo.ensemble=a/x,b/y,c", "--agent-arg", "seed=3"]
    items = config_from_args(BenchConfig, argv, "tir bench").agent_arg
    given = split_agent_args(items)
    assert given == {"ppo": {"ensemble": "a/x,b/y,c"}, "*": {"seed": "3"}}
    options = PPOAgent.parse_options({"ensemble": given["ppo"]["ensemble"]})
    assert options.ensemble == (Path("a/x"), Path("b/y"), Path("c"))  # type: ignore[attr-defined]
    with pytest.raises(ConfigValueError, match="AGENT.KEY=VALUE"):
        split_agent_args(["seed"])
    # a record stores the tuple as a list; the rerun flag is the same comma-separated value
    args = recorded_bench_args("ppo", {"agent_kwargs": {"ensemble": ["a/x", "b/y", "c"]}})
    assert args == ["--agent-arg", "ppo.ensemble=a/x,b/y,c"]


def test_tiles_show_a_larger_image_in_windows_and_average_over_them(tmp_path: Path):
    from agents.base import make_agent, rollout
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    stem = export(tmp_path, "p", "catalogue", 0)
    patch = load_spec(stem).train_patch
    env = TIREnv(
        pool=SyncToolPool(), patch_size=patch + 32, obs_size=32, max_steps=2, metrics=("psnr",)
    )
    agent = make_agent("ppo", weights=str(stem), tiles=2)
    episode = rollout(env, agent, seed=2, options={"degradations": ("noise",)})
    assert 1 <= len(episode.records) <= 2
    views = agent.policy_observations(None)
    assert len(views) == 4 and all(v["image"].shape == (3, 32, 32) for v in views)
    # the action is the argmax of the probabilities averaged over the four views
    expected = np.argmax(mean_action_probabilities(agent.members, views)[0])
    assert int(ensemble_action(agent.members, views)) == expected
    with pytest.raises(ConfigValueError, match="tiles"):
        make_agent("ppo", weights=str(stem), tiles=-1)
