"""The ``agenticir`` agent: early stop, rollback, rescheduling, planner hook, accounting."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.agenticir import (
    LEVELS,
    AgenticIRAgent,
    APIVLMPlanner,
    level,
    parse_order,
    prior_order,
)
from agents.base import agent_names, make_agent, rollout
from benchmarks.evaluate import EpisodeSpec, episode_record
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.env import TIREnv
from tir_env.errors import InvalidParameterError
from tir_env.images import image_digest, u8_to_batch
from tir_env.perception import Perception
from tir_env.tools.base import tool_info
from tir_env.types import TASKS

KW = dict(images="test", patch_size=32, obs_size=32, max_steps=3)
OPTIONS = {"degradations": ("dark", "noise")}


class FakePerception:
    """Sees ``first`` in the input (first call) and ``later`` in every result, severity 1."""

    def __init__(self, first: set[str], later: set[str]) -> None:
        self.first, self.later, self.calls = first, later, 0

    def __call__(self, image, size):
        present = self.first if self.calls == 0 else self.later
        self.calls += 1
        probs = {k: float(k in present) for k in AGENTICIR_TYPES}
        return Perception(
            probs=probs,
            severity=dict.fromkeys(AGENTICIR_TYPES, 1.0),
            psnr=20.0 + float(image.mean()) / 255.0,  # brighter results look better
            ssim=0.5,
            thresholds=dict.fromkeys(AGENTICIR_TYPES, 0.5),
        )


def n_tools(env: TIREnv, task: str) -> int:
    return sum(tool_info(t).task == task for t in env.tools)


def tasks_of(ep) -> list[str]:
    return [tool_info(r.call.tool).task for r in ep.records if r.call is not None]


def test_registered():
    assert "agenticir" in agent_names()
    assert isinstance(make_agent("agenticir"), AgenticIRAgent)


def test_early_stop_one_execution_per_subtask():
    env = TIREnv(**KW)
    agent = make_agent("agenticir", perceive=FakePerception({"dark", "noise"}, set()))
    ep = rollout(env, agent, seed=0, options=OPTIONS)
    assert agent.initial_plan == ["denoising", "brightening"]  # MAIR's prior order
    assert ep.tool_executions == 2  # the first tool of each subtask is accepted
    assert tasks_of(ep) == ["denoising", "brightening"]
    assert ep.extra["rollbacks"] == 0 and ep.extra["subtasks_executed"] == 2


def test_rollback_restores_the_image_and_counts_every_execution():
    env = TIREnv(**KW)
    never = FakePerception({"dark", "noise"}, {"dark", "noise"})
    agent = make_agent("agenticir", perceive=never, compromise=False)
    ep = rollout(env, agent, seed=0, options=OPTIONS)
    tried = n_tools(env, "denoising") + n_tools(env, "brightening")
    # every tool of both subtasks ran from the input and was rolled back
    assert ep.tool_executions == tried
    assert ep.extra["rollbacks"] == 2 and ep.extra["reschedules"] == 1
    start = image_digest(u8_to_batch(env.input_image()))
    assert [e for e in agent.trace if e[0] == "rollback"] == [
        ("rollback", "denoising", start),
        ("rollback", "brightening", start),
    ]
    assert tasks_of(ep) == []  # nothing accepted, no compromise: the input is kept
    np.testing.assert_array_equal(env.current_image(), env.input_image())
    record = episode_record(ep, "agenticir", EpisodeSpec("x", ("dark", "noise"), 0), "s", "1")
    assert record["tool_executions"] == tried and record["rollbacks"] == 2


def test_backtracks_past_a_success_then_compromises():
    env = TIREnv(**KW)
    # denoising always succeeds, brightening never does
    agent = make_agent("agenticir", perceive=FakePerception({"dark", "noise"}, {"dark"}))
    ep = rollout(env, agent, seed=0, options=OPTIONS)
    bright = n_tools(env, "brightening")
    start = image_digest(u8_to_batch(env.input_image()))
    events = [(e[0], e[1]) for e in agent.trace]
    assert events[:4] == [
        ("execute", "denoising"),
        ("execute", "brightening"),  # after denoising: fails
        ("rollback", "brightening"),  # backtracks past denoising to the input
        ("execute", "brightening"),  # rescheduled first from the input: fails again
    ]
    assert agent.trace[2][2] == start
    assert ep.extra["rollbacks"] == 2 and ep.extra["compromise"] is True
    assert ep.tool_executions >= 1 + 2 * bright
    assert "brightening" in tasks_of(ep)  # the compromise keeps the best failed result


def test_budget_bounds_executions():
    env = TIREnv(**KW)
    never = FakePerception({"dark", "noise"}, {"dark", "noise"})
    ep = rollout(env, make_agent("agenticir", perceive=never, max_executions=3), 0, OPTIONS)
    assert ep.tool_executions == 3


def test_deterministic_for_a_seed_and_seed_changes_the_tool_order():
    env = TIREnv(**KW)
    ran: list[str] = []
    real = env.lookahead

    def spy(image, calls):
        ran.extend(c.tool for c in calls)
        return real(image, calls)

    env.lookahead = spy  # type: ignore[method-assign]

    def run(seed: int) -> tuple[list, int, list[str]]:
        ran.clear()
        never = FakePerception({"dark", "noise"}, {"dark", "noise"})
        agent = make_agent("agenticir", seed=seed, perceive=never, compromise=False)
        ep = rollout(env, agent, seed=5, options=OPTIONS)
        return [r.call for r in ep.records], ep.tool_executions, list(ran)

    first = run(1)
    assert first == run(1)
    assert first[1] == len(first[2])  # every lookahead execution is counted
    orders = {tuple(run(s)[2]) for s in range(6)}
    assert len(orders) > 1  # the tools are tried in a seeded random order


def test_planner_order_is_respected():
    env = TIREnv(**KW)
    asked = []

    def planner(image, tasks, failed):
        asked.append((list(tasks), list(failed)))
        return list(reversed(tasks))

    agent = make_agent(
        "agenticir", planner=planner, perceive=FakePerception({"dark", "noise"}, set())
    )
    ep = rollout(env, agent, seed=0, options=OPTIONS)
    assert tasks_of(ep) == ["brightening", "denoising"]
    assert asked == [(["denoising", "brightening"], [])]
    assert ep.extra["planner"] == "custom" and ep.extra["planner_errors"] == 0


def test_planner_sees_failed_subtasks_on_reschedule():
    env = TIREnv(**KW)
    asked = []

    def planner(image, tasks, failed):
        asked.append(list(failed))
        return list(tasks)

    never = FakePerception({"dark", "noise"}, {"dark", "noise"})
    agent = make_agent("agenticir", planner=planner, perceive=never, compromise=False)
    rollout(env, agent, seed=0, options=OPTIONS)
    assert asked[:2] == [[], ["denoising"]]


@pytest.mark.parametrize(
    "answer", [["denoising", "deblur_everything"], ["denoising"], "raise", ["x", "y"]]
)
def test_bad_planner_output_falls_back_to_the_prior_order(answer):
    env = TIREnv(**KW)

    def planner(image, tasks, failed):
        if answer == "raise":
            raise RuntimeError("server said no")
        return answer

    agent = make_agent(
        "agenticir", planner=planner, perceive=FakePerception({"dark", "noise"}, set())
    )
    with pytest.warns(UserWarning, match="prior order"):
        ep = rollout(env, agent, seed=0, options=OPTIONS)
    assert tasks_of(ep) == ["denoising", "brightening"]
    assert ep.extra["planner_errors"] == 1


def test_api_vlm_planner_with_a_fake_response(monkeypatch):
    planner = APIVLMPlanner(base_url="http://127.0.0.1:9/v1")
    sent = []

    def request(messages, tools):
        sent.append(messages)
        text = 'Order: ["brightening", "denoising"] because dark first.'
        message = SimpleNamespace(content=text, tool_calls=None)
        return SimpleNamespace(choices=[SimpleNamespace(message=message)])

    monkeypatch.setattr(planner.client, "_request", request)
    image = np.zeros((16, 16, 3), np.uint8)
    assert planner(image, ["denoising", "brightening"], []) == ["brightening", "denoising"]
    assert "denoising" in json.dumps(sent[0])
    assert set(planner.accounting()) == {
        "prompt_tokens",
        "completion_tokens",
        "requests",
        "api_latency_s",
    }


def test_api_vlm_planner_is_built_from_agent_options(monkeypatch):
    monkeypatch.delenv("TIR_API_BASE_URL", raising=False)
    agent = make_agent("agenticir", planner="api-vlm", base_url="http://127.0.0.1:9/v1")
    assert isinstance(agent.planner, APIVLMPlanner) and agent.planner_name == "api-vlm"
    from agents.vlm.remote import APIConfigError

    with pytest.raises(APIConfigError):
        make_agent("agenticir", planner="api-vlm")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_executions": 0}, {"planner": "gpt-4"}, {"base_url": "http://x/v1"}],
)
def test_bad_options_raise_named_errors(kwargs):
    with pytest.raises(InvalidParameterError):
        make_agent("agenticir", **kwargs)


def test_cli_strings_are_accepted():
    agent = make_agent("agenticir", seed="2", max_executions="9", compromise="false")
    assert agent.config.max_executions == 9 and agent.config.compromise is False


def test_real_perception_episode_is_reproducible():
    env = TIREnv(**{**KW, "patch_size": 64})
    a = rollout(env, make_agent("agenticir"), seed=2, options=OPTIONS)
    b = rollout(env, make_agent("agenticir"), seed=2, options=OPTIONS)
    assert [r.call for r in a.records] == [r.call for r in b.records]
    assert a.tool_executions == b.tool_executions >= sum(r.call is not None for r in a.records)


def test_prior_order_is_reverse_physical():
    assert prior_order(list(TASKS)) == list(reversed(TASKS))
    assert prior_order(["dehazing", "jpeg_artifact_removal"]) == [
        "jpeg_artifact_removal",
        "dehazing",
    ]


def test_levels_follow_presence_then_severity():
    seen = FakePerception(set(), set())(np.zeros((8, 8, 3), np.uint8), None)
    assert LEVELS[level(seen, "noise")] == "very low"
    present = Perception(
        {"noise": 0.9}, {"noise": 0.1}, 20.0, 0.5, {"noise": 0.5}
    )  # present but mild
    assert LEVELS[level(present, "noise")] == "low"
    worse = Perception({"noise": 0.9}, {"noise": 0.6}, 20.0, 0.5, {"noise": 0.5})
    assert LEVELS[level(worse, "noise")] == "high"


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.sampled_from(TASKS), max_size=8),
    st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=20),
)
def test_parse_order_reads_the_first_list(tasks, prefix):
    assert parse_order(prefix + json.dumps(tasks) + " done") == tasks
