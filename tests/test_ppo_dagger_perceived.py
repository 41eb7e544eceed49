"""DAgger with the ``perceived`` expert: oracle's plan for what perception sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import experts as E
from agents.baselines import perceived_tasks, prior_plan
from agents.ppo import bc, dagger
from agents.ppo.catalogue import PRESETS
from agents.ppo.policy import load_policy
from tir_env.env import TIREnv
from tir_env.errors import ExpertDataError
from tir_env.tools.base import tool_info, tool_names
from tir_env.types import TASKS, ToolCall

TOOLS = tuple(tool_names())


def _task(call: ToolCall) -> str:
    return tool_info(call.tool).task


@pytest.fixture(scope="module")
def perceived_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``perceived`` dataset: 4 episodes of two bundled photos, 32 px."""
    from tests.conftest import _tiny_dataset

    return _tiny_dataset(tmp_path_factory, max_steps=5, shard_size=4, limit=4, expert="perceived")


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(st.none(), st.lists(st.sampled_from(TASKS), max_size=4, unique=True)),
    st.lists(st.sampled_from(PRESETS), max_size=5),
)
def test_perceived_next_is_the_prior_plans_first_open_task_or_stop(tasks, taken):
    plan = prior_plan(tasks, TOOLS, len(TOOLS), "default")
    done = {_task(c) for c in taken}
    left = [c for c in plan if _task(c) not in done]
    assert dagger.perceived_next(tasks, taken, TOOLS) == (left[0] if left else None)


def test_perceived_next_plans_nothing_for_a_clean_reading():
    assert dagger.perceived_next([], [], TOOLS) is None


def test_a_perceived_dataset_records_the_plan_of_what_perception_saw(perceived_dataset):
    assert E.config_of(perceived_dataset).expert == "perceived"
    env = TIREnv(**E.env_kwargs(E.config_of(perceived_dataset)))
    for record in E.load_records(perceived_dataset):
        env.reset(seed=int(record["seed"]), options=E.replay_options(record))
        plan = prior_plan(perceived_tasks(env), env.tools, env.config.max_steps, "default")
        assert record["calls"] == [c.to_dict() for c in plan]


def _cfg(data: Path, out: Path, **settings: Any) -> bc.BCConfig:
    small: dict[str, Any] = dict(
        obs_size=32, history_len=3, max_steps=5, channels=(8, 16), history_dim=16
    )
    base: dict[str, Any] = dict(epochs=1, perception_epochs=0, **small)
    return bc.BCConfig(data=(str(data),), out=str(out), **{**base, **settings})


def test_dagger_asks_the_perceived_expert_of_a_perceived_dataset(
    perceived_dataset, oracle_dataset, tmp_path
):
    cfg = _cfg(perceived_dataset, tmp_path / "bc", dagger_rounds=1, dagger_episodes=4)
    assert bc.dagger_teacher(cfg) == "perceived" and bc.check_dagger_data(cfg) == "default"
    mixed = bc.BCConfig(data=(str(oracle_dataset), str(perceived_dataset)), dagger_rounds=1)
    with pytest.raises(ExpertDataError, match="one teacher"):
        bc.dagger_teacher(mixed)
    with pytest.raises(ExpertDataError, match="dagger-cost"):
        bc.dagger_teacher(_cfg(perceived_dataset, tmp_path / "c", dagger_rounds=1, dagger_cost=1))
    summary = bc.main(cfg, command="test")
    assert summary["dagger"][0]["states"] >= 4  # every episode's first state at least


def test_perceived_rollouts_label_each_state_with_the_perceived_plan(perceived_dataset, tmp_path):
    stem = tmp_path / "bc"
    cfg = _cfg(perceived_dataset, stem)
    bc.main(cfg)
    policy, _ = load_policy(stem)
    records = E.load_records(perceived_dataset)
    env = TIREnv(**E.env_kwargs(E.config_of(perceived_dataset)))
    rows = dagger.rollout_rows(policy, env, records, cfg.actions(), 32, 3, 5, teacher="perceived")
    first = [i for i, ep in enumerate(rows["ep"]) if i == 0 or rows["ep"][i - 1] != ep]
    for i, record in zip(first, records, strict=True):  # the first state: the recorded first call
        calls = record["calls"]
        want = 0 if not calls else bc.exact_action(ToolCall.from_dict(calls[0]), PRESETS)
        assert rows["action"][i] == want
    with pytest.raises(ValueError, match="teacher"):
        dagger.rollout_rows(policy, env, records, cfg.actions(), 32, 3, 5, teacher="nobody")
    with pytest.raises(ValueError, match="oracle"):
        dagger.rollout_rows(
            policy, env, records, cfg.actions(), 32, 3, 5, regret=True, teacher="perceived"
        )
