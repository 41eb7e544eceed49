"""The env's count of distinct tool executions, and agents charged by it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import PlanAgent, rollout
from tir_env.env import TIREnv
from tir_env.tools.base import validate_call
from tir_env.tools.pool import SyncToolPool
from tir_env.types import ToolCall

torch.set_num_threads(1)

GAMMA = ToolCall("gamma_correction", {"gamma": 1.5})
OTHER = ToolCall("gamma_correction", {"gamma": 2.0})


@pytest.fixture
def env() -> TIREnv:
    return TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4)


def test_a_call_looked_ahead_then_taken_counts_once(env):
    env.reset(seed=0)
    env.lookahead(env.current_batch(), [GAMMA, GAMMA, OTHER])
    assert env.distinct_executions == 2
    env.step(_action(env, GAMMA))
    assert env.distinct_executions == 2  # the step ran what the look ahead ran
    env.step(_action(env, GAMMA))  # the same call on another image: a new execution
    assert env.distinct_executions == 3


def test_a_call_counts_as_the_pool_keys_it_and_an_invalid_one_not_at_all(env):
    env.reset(seed=1)
    full = validate_call(ToolCall("gamma_correction", {}))  # the defaults written out
    env.lookahead(env.current_batch(), [ToolCall("gamma_correction", {}), full])
    assert env.distinct_executions == 1
    env.lookahead(env.current_batch(), [ToolCall("gamma_correction", {"no_such": 1.0})])
    assert env.distinct_executions == 1


def test_reset_starts_the_count_afresh(env):
    env.reset(seed=2)
    env.step(_action(env, GAMMA))
    assert env.distinct_executions == 1
    env.reset(seed=2)
    assert env.distinct_executions == 0


class _LookFirst(PlanAgent):
    """Looks each planned call ahead on the current image, then takes it."""

    name = "look-first-test"
    plan_calls: Sequence[ToolCall] = (GAMMA, OTHER)

    def make_plan(self) -> Sequence[ToolCall]:
        return list(self.plan_calls)

    def act(self, observation, deterministic=True):
        if self.plan:
            self.env.lookahead(self.env.current_batch(), [self.plan[0]])
            self.tool_executions += 1
        return super().act(observation, deterministic)


class _LookFirstDistinct(_LookFirst):
    counts_distinct_runs = True


@pytest.mark.parametrize(("agent_class", "expected"), [(_LookFirst, 4), (_LookFirstDistinct, 2)])
def test_an_agent_charged_by_distinct_runs_pays_once_for_a_call_it_looked_ahead(
    env, agent_class, expected
):
    episode = rollout(env, agent_class(), seed=3)
    assert sum(r.call is not None for r in episode.records) == 2
    assert episode.tool_executions == expected


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from([GAMMA, OTHER, ToolCall("clahe", {})]), min_size=1, max_size=6))
def test_the_count_never_exceeds_the_requests_and_grows_with_new_pairs(calls):
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4)
    env.reset(seed=4)
    image = env.current_batch()
    env.lookahead(image, calls)
    assert env.distinct_executions == len(set(calls))
    env.lookahead(image, calls)  # asked again: nothing new ran
    assert env.distinct_executions == len(set(calls))


def _action(env: TIREnv, call: ToolCall):
    from tir_env.spaces import encode_call

    return encode_call(call, env.tools)


def test_a_wrapped_env_charges_the_same():
    import gymnasium as gym

    import tir_env  # noqa: F401  (registers TIR-v0)

    env = gym.make("TIR-v0", pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4)
    episode = rollout(env, _LookFirstDistinct(), seed=3)
    assert episode.tool_executions == 2
