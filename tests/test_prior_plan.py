"""``prior_plan``: MAIR's prior, the plan ``fixed`` runs."""

from __future__ import annotations

from agents.base import make_agent, rollout
from agents.baselines import perceived_tasks, prior_plan
from tir_env.env import TIREnv
from tir_env.tools.base import tool_info
from tir_env.types import TASKS

KW = dict(images="test", patch_size=32, obs_size=32, max_steps=3)


def test_prior_plan_is_reverse_physical_order_of_preferred_tools():
    env = TIREnv(**KW)
    plan = prior_plan(["dark", "noise", "jpeg"], env.tools, 5)
    tasks = [tool_info(c.tool).task for c in plan]
    assert tasks == [t for t in reversed(TASKS) if t in ("dark", "noise", "jpeg")]
    assert all(tool_info(c.tool).preferred for c in plan)
    assert len(prior_plan(None, env.tools, 2)) == 2  # every task, cut at the budget


def test_fixed_runs_the_prior_plan_of_what_it_perceives():
    env = TIREnv(**KW)
    ep = rollout(env, make_agent("fixed"), seed=2, options={"degradations": ("dark", "noise")})
    env.reset(seed=2, options={"degradations": ("dark", "noise")})
    expected = prior_plan(perceived_tasks(env), env.tools, env.config.max_steps)
    ran = [r.call.tool for r in ep.records if r.call is not None]
    assert ran == [c.tool for c in expected] and ran  # default parameters, filled in by the env
