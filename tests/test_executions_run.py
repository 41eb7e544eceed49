"""The env's count of the tool executions an episode ran, and agents charged by it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import PlanAgent, rollout
from tir_env.env import TIREnv
from tir_env.tools.base import validate_call
from tir_env.tools.pool import LocalToolPool, SyncToolPool, ToolPool
from tir_env.types import ToolCall

torch.set_num_threads(1)

GAMMA = ToolCall("gamma_correction", {"gamma": 1.5})
OTHER = ToolCall("gamma_correction", {"gamma": 2.0})


@pytest.fixture(scope="module")
def cached_pool() -> Iterator[ToolPool]:
    pool = LocalToolPool()
    yield pool
    pool.close()


def _env(pool: ToolPool) -> TIREnv:
    return TIREnv(pool=pool, patch_size=32, obs_size=32, max_steps=4)


def test_a_call_looked_ahead_then_taken_counts_once(cached_pool):
    env = _env(cached_pool)
    env.reset(seed=0)
    env.lookahead(env.current_batch(), [GAMMA, GAMMA, OTHER])
    assert env.executions_run == 2
    env.step(_action(env, GAMMA))
    assert env.executions_run == 2  # the step ran what the look ahead ran: a cache hit
    env.step(_action(env, GAMMA))  # the same call on another image: a new execution
    assert env.executions_run == 3


def test_without_a_cache_a_repeat_runs_and_counts_again():
    env = _env(SyncToolPool())
    env.reset(seed=0)
    env.lookahead(env.current_batch(), [GAMMA])
    env.step(_action(env, GAMMA))
    assert env.executions_run == 2
    assert env.pool.stats.executions == 2  # what the pool ran


def test_a_call_counts_as_the_pool_keys_it_and_an_invalid_one_not_at_all(cached_pool):
    env = _env(cached_pool)
    env.reset(seed=1)
    full = validate_call(ToolCall("gamma_correction", {}))  # the defaults written out
    env.lookahead(env.current_batch(), [ToolCall("gamma_correction", {}), full])
    assert env.executions_run == 1
    env.lookahead(env.current_batch(), [ToolCall("gamma_correction", {"no_such": 1.0})])
    assert env.executions_run == 1


def test_reset_starts_the_count_afresh(cached_pool):
    env = _env(cached_pool)
    env.reset(seed=2)
    env.step(_action(env, GAMMA))
    assert env.executions_run == 1
    env.reset(seed=2)
    assert env.executions_run == 0


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


class _LookFirstCharged(_LookFirst):
    counts_env_runs = True


@pytest.mark.parametrize(("agent_class", "expected"), [(_LookFirst, 4), (_LookFirstCharged, 2)])
def test_an_agent_charged_by_the_env_pays_once_for_a_call_it_looked_ahead(
    cached_pool, agent_class, expected
):
    episode = rollout(_env(cached_pool), agent_class(), seed=3)
    assert sum(r.call is not None for r in episode.records) == 2
    assert episode.tool_executions == expected


def test_a_wrapped_env_charges_the_same(cached_pool):
    import gymnasium as gym

    import tir_env  # noqa: F401  (registers TIR-v0)

    env = gym.make("TIR-v0", pool=cached_pool, patch_size=32, obs_size=32, max_steps=4)
    episode = rollout(env, _LookFirstCharged(), seed=3)
    assert episode.tool_executions == 2


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from([GAMMA, OTHER, ToolCall("clahe", {})]), min_size=1, max_size=6))
def test_the_count_is_the_distinct_pairs_when_the_cache_serves_repeats(calls):
    pool = LocalToolPool()
    try:
        env = _env(pool)
        env.reset(seed=4)
        image = env.current_batch()
        env.lookahead(image, calls)
        assert env.executions_run == len(set(calls)) == pool.stats.executions
        env.lookahead(image, calls)  # asked again: nothing new ran
        assert env.executions_run == len(set(calls)) == pool.stats.executions
    finally:
        pool.close()


def _action(env: TIREnv, call: ToolCall):
    from tir_env.spaces import encode_call

    return encode_call(call, env.tools)
