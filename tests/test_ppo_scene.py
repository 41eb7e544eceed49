"""agents.ppo.scene: the judge's say over the policy's darkness and haze calls (judge=true)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ppo import scene

#: A first dimension as the catalogue policies have: STOP, then presets of these tasks.
TASKS: list[str | None] = [None, "brightening", "brightening", "denoising", "dehazing"]


def test_a_task_ruled_out_is_never_taken() -> None:
    probs = [np.array([0.1, 0.5, 0.1, 0.2, 0.1])]
    pick = scene.guarded_action(probs, TASKS, {"brightening": False}, set())
    assert int(pick) == 3  # the likeliest left once brightening is masked


def test_stopping_with_a_task_ruled_in_due_calls_its_likeliest_preset() -> None:
    probs = [np.array([0.6, 0.05, 0.15, 0.1, 0.1])]
    assert int(scene.guarded_action(probs, TASKS, {"brightening": True}, set())) == 2
    # done already: the policy stops
    assert int(scene.guarded_action(probs, TASKS, {"brightening": True}, {"brightening"})) == 0


def test_every_choice_masked_is_stop() -> None:
    probs = [np.array([0.0, 0.5, 0.5, 0.0, 0.0])]
    assert int(scene.guarded_action(probs, TASKS, {"brightening": False}, set())) == 0


def test_further_dimensions_are_the_policys_own() -> None:
    probs = [np.array([0.1, 0.6, 0.1, 0.1, 0.1]), np.array([0.2, 0.7, 0.1])]
    picks = scene.guarded_action(probs, TASKS, {"brightening": False}, set())
    assert picks.tolist() == [0, 1]  # masked down to STOP (0.1 ties go to the first)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=5, max_size=5),
    st.sampled_from([None, True, False]),
    st.sampled_from([None, True, False]),
    st.booleans(),
)
def test_the_judge_overrides_only_scene_tasks(
    weights: list[float], dark: bool | None, haze: bool | None, sample: bool
) -> None:
    probs = [np.array(weights) + 1e-9]
    say = {k: v for k, v in (("brightening", dark), ("dehazing", haze)) if v is not None}
    rng = np.random.default_rng(0) if sample else None
    pick = int(scene.guarded_action(probs, TASKS, say, set(), rng))
    task = TASKS[pick]
    assert task is None or say.get(task) is not False  # never a task ruled out
    if not say and rng is None:  # no say: the policy's own likeliest choice
        assert pick == int(np.argmax(probs[0]))
    if task is None:  # it stops only when no task ruled in could be called
        assert not [t for t, on in say.items() if on]


def _judging_agent(tmp_path: Path, **options: Any) -> tuple[Any, Any]:
    """A ppo agent of a small exported policy with ``options``, and a 32 px env for it."""
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env import perception
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    if not perception.available():
        pytest.skip("perception weights are not installed")
    stem = export(tmp_path, "p", "catalogue", 0)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=2, metrics=("psnr",))
    return make_agent("ppo", weights=str(stem), **options), env


def test_the_agent_records_the_judges_rulings_and_counts_its_probes(tmp_path: Path) -> None:
    from agents.base import make_agent, rollout

    both = ("dark", "haze")
    agent, env = _judging_agent(tmp_path, judge=True, judge_types=both, judge_margin=0)
    episode = rollout(env, agent, seed=1, options={"degradations": ("dark",)})
    ruled = agent.episode_extra()["judge_scene"]
    assert set(ruled) == {"brightening", "dehazing"}
    assert episode.tool_executions >= agent.tool_executions >= 0
    assert (
        make_agent(
            "ppo", weights=agent.options.weights, guard="none", judge=False, clean_stop=False
        ).episode_extra()
        == {}
    )


def test_judging_haze_alone_leaves_darkness_to_the_policy(tmp_path: Path) -> None:
    from agents.base import rollout

    agent, env = _judging_agent(tmp_path, judge=True, judge_types=("haze",), judge_margin=0)
    for seed, kind in ((1, "dark"), (2, "haze")):
        rollout(env, agent, seed=seed, options={"degradations": (kind,)})
        assert set(agent.episode_extra()["judge_scene"]) == {"dehazing"}  # no say on darkness


def test_an_unknown_judged_type_is_refused() -> None:
    from agents.base import make_agent
    from tir_env.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match="judge_types"):
        make_agent("ppo", judge=True, judge_types=("noise",))


def test_ruled_in_choice_is_the_likeliest_preset_of_a_due_task() -> None:
    probs = [np.array([0.6, 0.05, 0.15, 0.1, 0.1])]
    assert scene.ruled_in_choice(probs, TASKS, {"brightening": True, "dehazing": False}, ()) == 2
    assert scene.ruled_in_choice(probs, TASKS, {"brightening": True}, {"brightening"}) is None
    assert scene.ruled_out({"brightening": True, "dehazing": False}) == ("dehazing",)


def test_with_a_judge_margin_the_guard_checks_what_the_judge_leaves(tmp_path: Path) -> None:
    from agents.base import rollout

    both = ("dark", "haze")
    agent, env = _judging_agent(tmp_path, judge=True, judge_types=both, judge_margin=50.0)
    episode = rollout(env, agent, seed=1, options={"degradations": ("dark",)})
    extra = agent.episode_extra()
    # all have their say
    assert set(extra) == {
        "judge_scene",
        "guard_vetoed",
        "perceived_in",
        "masked",
        "bright_pays",
        "clean_stop",
    }
    # a 50 dB margin: the judge rules out only what it did not probe (perception's call)
    from agents import judge

    env.reset(seed=1, options={"degradations": ("dark",)})
    present, rulings, _ = judge.judge_rulings(env, "tuned", abstain=50.0)
    assert False not in rulings.values()
    for kind, task in scene.SCENE_TASKS.items():
        assert extra["judge_scene"].get(task) == rulings.get(kind, kind in present)
    assert episode.tool_executions >= agent.tool_executions >= 0


@pytest.mark.parametrize(
    "options",
    [
        {"judge": True, "judge_margin": -1.0},
        {"judge": True, "judge_margin": float("nan")},
    ],
)
def test_a_judge_margin_that_is_no_loss_is_refused(options: dict) -> None:
    from agents.base import make_agent
    from tir_env.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match="judge_margin"):
        make_agent("ppo", **options)
