"""The search agents' prior margin: a rival tool must out-score the preferred one by the margin."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import make_agent
from agents.baselines import preferred_tool
from agents.search import DEFAULT_DEVIATION_MARGIN, DEFAULT_PRIOR_MARGIN, PRIOR_RANK
from tir_env.env import TIREnv
from tir_env.errors import InvalidParameterError
from tir_env.tools.base import make_tool, tool_info
from tir_env.types import TASKS

torch.set_num_threads(1)

KW = dict(images="test", patch_size=48, obs_size=32, max_steps=1)
PREFERRED = "gamma_correction"  # brightening's preferred tool
DENOISER = "dct_denoise"  # denoising's preferred tool
RIVALS = ("clahe", "constant_shift")


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.floats(max_value=-1e-9), st.sampled_from([math.inf, math.nan])))
@pytest.mark.parametrize("agent", ["exhaustive", "greedy"])
def test_a_negative_or_infinite_margin_is_a_named_error(agent, margin):
    with pytest.raises(InvalidParameterError, match="prior_margin"):
        make_agent(agent, prior_margin=margin)
    with pytest.raises(InvalidParameterError, match="deviation_margin"):
        make_agent(agent, deviation_margin=margin)


def test_the_reference_search_ignores_the_margins():
    reference = make_agent("exhaustive-ref", prior_margin=5.0, deviation_margin=9.0)
    assert reference.prior_margin == reference.deviation_margin == 0.0
    searcher = make_agent("exhaustive")
    assert searcher.prior_margin == DEFAULT_PRIOR_MARGIN
    assert searcher.deviation_margin == DEFAULT_DEVIATION_MARGIN


def _plan(
    agent_name: str, margin: float, sign: float, deviation_margin: float | None = None
) -> tuple[str, dict[str, float]]:
    """The first planned tool on a dark input, scored by ``sign`` x mean brightness (x100)."""
    env = TIREnv(**KW)
    _, info = env.reset(seed=3, options={"degradations": ("dark",)})
    # by default a rival must clear the same margin as the prior's tool (no separate deviation)
    deviation = margin if deviation_margin is None else deviation_margin
    # the declared defaults: the scores below are of the tools' default outputs
    agent = make_agent(
        agent_name, prior_margin=margin, deviation_margin=deviation, params="default"
    )
    agent._score = lambda image: sign * 100.0 * float(image.mean())  # type: ignore[method-assign]
    agent.reset(env, {**info, "perceived_tasks": ["brightening"]})
    image = env.current_batch()
    scores = {t: sign * 100.0 * float(make_tool(t)(image).mean()) for t in (PREFERRED, *RIVALS)}
    return (agent.plan[0].tool if agent.plan else "stop"), scores


def _rival_lead(agent: str) -> tuple[float, str, str, float]:
    """A scoring sign for which some rival out-scores the preferred tool, and that rival.

    Returns the sign, the tool planned with no margin, the rival and its lead.
    """
    _, scores = _plan(agent, 0.0, 1.0)
    sign = 1.0 if max(scores[r] for r in RIVALS) > scores[PREFERRED] else -1.0
    chosen, scores = _plan(agent, 0.0, sign)
    rival = max(RIVALS, key=lambda r: scores[r])
    return sign, chosen, rival, scores[rival] - scores[PREFERRED]


@pytest.mark.parametrize("agent", ["exhaustive", "greedy"])
def test_a_rival_wins_only_by_more_than_the_margin(agent):
    sign, chosen, rival, lead = _rival_lead(agent)
    assert lead > 0 and chosen == rival  # no margin: the scorer's favourite
    assert _plan(agent, 0.5 * lead, sign)[0] == rival  # a lead above the margin still wins
    assert _plan(agent, 2.0 * lead, sign)[0] == PREFERRED  # within the margin: the prior


@pytest.mark.parametrize("agent", ["exhaustive", "greedy"])
def test_a_rival_tool_must_clear_the_deviation_margin(agent):
    sign, _, rival, lead = _rival_lead(agent)
    assert _plan(agent, 0.5 * lead, sign, deviation_margin=0.75 * lead)[0] == rival
    assert _plan(agent, 0.5 * lead, sign, deviation_margin=2.0 * lead)[0] == PREFERRED
    # a deviation margin under the prior margin counts as the prior margin
    assert _plan(agent, 2.0 * lead, sign, deviation_margin=0.0)[0] == PREFERRED


def test_tool_choice_rule_takes_a_rival_only_past_the_margin():
    from benchmarks.tool_choice import MARGINS, rule_gains

    entry = {
        "preferred": "p",
        "rows": [  # the scorer prefers the rival by 2; the rival is truly 1 dB worse
            {"psnr": {"p": 20.0, "r": 19.0}, "score": {"p": 10.0, "r": 12.0}},
            {"psnr": {"p": 20.0, "r": 23.0}, "score": {"p": 10.0, "r": 9.0}},
        ],
    }
    gains = dict(zip(MARGINS, rule_gains(entry), strict=True))
    assert gains[0.0] == pytest.approx(-0.5)  # takes the overrated rival, misses the good one
    assert gains[3.0] == pytest.approx(0.0)  # the prior everywhere


def _two_task_plan(
    margin: float,
    lead: float,
    prior_order: bool,
    agent_name: str = "exhaustive",
    deviation: float | None = None,
) -> list[str]:
    """The plan for a dark, noisy input when the scorer favours brightening first.

    Brightening first is the reverse of the prior's order; the favoured image scores ``lead``,
    every other image 0.

    ``exhaustive`` is rated on the image after both calls in that order, ``greedy`` (which
    looks one call ahead) on the image after brightening alone.
    """
    env = TIREnv(**{**KW, "max_steps": 2})
    _, info = env.reset(seed=3, options={"degradations": ("dark", "noise")})
    favoured = make_tool(PREFERRED)(env.current_batch())
    if agent_name == "exhaustive":
        favoured = make_tool(DENOISER)(favoured)

    def score(x: torch.Tensor) -> float:
        same = x.shape == favoured.shape and torch.allclose(x, favoured, atol=1e-4)
        return lead if same else 0.0

    deviation = margin if deviation is None else deviation
    agent = make_agent(
        agent_name,
        prior_margin=margin,
        deviation_margin=deviation,
        prior_order=prior_order,
        params="default",
    )
    agent._score = score  # type: ignore[method-assign]
    agent.reset(env, {**info, "perceived_tasks": ["brightening", "denoising"]})
    return [call.tool for call in agent.plan]


def test_the_prior_order_must_be_beaten_by_the_margin():
    prior, swapped = [DENOISER, PREFERRED], [PREFERRED, DENOISER]
    assert _two_task_plan(2.0, 0.0, prior_order=True) == prior  # a tie: the prior's order
    assert _two_task_plan(2.0, 1.0, prior_order=True) == prior  # a lead within the margin
    assert _two_task_plan(2.0, 3.0, prior_order=True) == swapped  # past the margin
    assert _two_task_plan(2.0, 1.0, prior_order=False) == swapped  # no order prior: any lead
    # another order is a deviation: it must clear the deviation margin
    assert _two_task_plan(2.0, 3.0, True, deviation=5.0) == prior
    assert _two_task_plan(2.0, 6.0, True, deviation=5.0) == swapped


def test_greedy_takes_a_task_out_of_the_prior_order_only_past_the_margin():
    prior = [DENOISER, PREFERRED]
    assert _two_task_plan(2.0, 0.0, True, "greedy") == prior
    assert _two_task_plan(2.0, 1.0, True, "greedy") == prior
    # brightening first forfeits denoising's margin; nothing rates the pair above it
    assert _two_task_plan(2.0, 3.0, True, "greedy") == [PREFERRED]
    assert _two_task_plan(2.0, 1.0, False, "greedy")[0] == PREFERRED


@pytest.fixture(scope="module")
def reset_searcher():
    """An ``exhaustive`` agent after one episode's reset (its env names the preferred tools)."""
    env = TIREnv(**KW)
    _, info = env.reset(seed=3, options={"degradations": ("dark",)})
    agent = make_agent("exhaustive", prior_margin=2.0, deviation_margin=7.0)
    agent._score = lambda image: 0.0  # type: ignore[method-assign]
    agent.reset(env, {**info, "perceived_tasks": ["brightening"]})
    return agent


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(TASKS)), st.integers(1, len(TASKS)))
def test_the_prior_plans_order_earns_the_most_bonus(reset_searcher, tasks, n):
    agent = reset_searcher
    calls = [agent.prior_call(preferred_tool(t, agent.env.tools)) for t in tasks[:n]]
    in_order = sorted(calls, key=lambda c: PRIOR_RANK[tool_info(c.tool).task])
    best = agent.prior_bonus(in_order)
    assert best == pytest.approx(2.0 * n)  # every call of the prior plan earns the margin
    bonus = agent.prior_bonus(calls)
    assert bonus <= best
    assert (bonus == best) == (calls == in_order)  # any other order deviates
