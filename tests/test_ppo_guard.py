"""agents.ppo.guard: the quality-gain model's veto over the policy's calls (guard=gain|scene)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ppo import guard, scene

#: A first dimension as the catalogue policies have: STOP, then presets of these tasks.
TASKS: list[str | None] = [None, "brightening", "brightening", "denoising", "dehazing"]


def first(action: Any) -> int:
    return int(np.asarray(action).reshape(-1)[0])


def test_a_call_let_through_is_the_policys_likeliest() -> None:
    probs = [np.array([0.1, 0.2, 0.1, 0.5, 0.1])]
    action, vetoes = guard.vetted_action(probs, TASKS, set(), lambda a: True)
    assert (first(action), vetoes) == (3, 0)


def test_a_vetoed_task_is_masked_for_the_episode_and_the_next_choice_checked() -> None:
    probs = [np.array([0.1, 0.4, 0.3, 0.15, 0.05])]
    vetoed: set[str] = set()
    action, vetoes = guard.vetted_action(probs, TASKS, vetoed, lambda a: first(a) != 1)
    # brightening vetoed: both its presets are masked, denoising is next
    assert (first(action), vetoes, vetoed) == (3, 1, {"brightening"})
    again, vetoes = guard.vetted_action(probs, TASKS, vetoed, lambda a: True)
    assert (first(again), vetoes) == (3, 0)  # still masked the next step


def test_too_many_vetoes_stop() -> None:
    probs = [np.array([0.01, 0.4, 0.3, 0.2, 0.09])]
    action, vetoes = guard.vetted_action(probs, TASKS, set(), lambda a: False, max_checks=2)
    assert (first(action), vetoes) == (0, 2)


def test_only_the_checked_tasks_are_checked() -> None:
    probs = [np.array([0.1, 0.1, 0.1, 0.6, 0.1])]
    asked: list[int] = []

    def keep(action: Any) -> bool:
        asked.append(first(action))
        return False

    action, vetoes = guard.vetted_action(
        probs, TASKS, set(), keep, checked=("brightening", "dehazing")
    )
    assert (first(action), vetoes, asked) == (3, 0, [])  # denoising runs unchecked


def test_further_dimensions_are_the_policys_own() -> None:
    probs = [np.array([0.1, 0.6, 0.1, 0.1, 0.1]), np.array([0.2, 0.7, 0.1])]
    action, vetoes = guard.vetted_action(probs, TASKS, set(), lambda a: True)
    assert np.asarray(action).tolist() == [1, 1] and vetoes == 0
    probs[0] = np.array([0.01, 0.6, 0.1, 0.2, 0.09])
    stop, _ = guard.vetted_action(probs, TASKS, set(), lambda a: False, max_checks=2)
    assert np.asarray(stop).tolist() == [0, 0]  # made to STOP: every bin 0


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=5, max_size=5),
    st.sets(st.sampled_from([1, 2, 3, 4])),
    st.sets(st.sampled_from(["brightening", "denoising", "dehazing"])),
    st.integers(1, 4),
    st.booleans(),
)
def test_never_a_vetoed_task_never_more_vetoes_than_checks(
    weights: list[float], refused: set[int], before: set[str], max_checks: int, sample: bool
) -> None:
    probs = [np.array(weights) + 1e-9]
    vetoed = set(before)
    rng = np.random.default_rng(0) if sample else None
    action, vetoes = guard.vetted_action(
        probs, TASKS, vetoed, lambda a: first(a) not in refused, rng, max_checks
    )
    task = TASKS[first(action)]
    assert task is None or (task not in vetoed and first(action) not in refused)
    assert 0 <= vetoes <= max_checks
    assert before <= vetoed and len(vetoed - before) == vetoes


@pytest.mark.parametrize("kind", ["gain", "scene"])
def test_the_agent_counts_its_vetoes_and_records_them(tmp_path: Path, kind: str) -> None:
    from agents.base import make_agent, rollout
    from tests.test_ppo_ensemble import export
    from tir_env import quality_gain
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    stem = export(tmp_path, "p", "catalogue", 0)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=3, metrics=("psnr",))
    agent = make_agent("ppo", weights=str(stem), guard=kind, judge=False)
    episode = rollout(env, agent, seed=1, options={"degradations": ("dark", "noise")})
    vetoed = agent.episode_extra()["guard_vetoed"]
    assert agent.tool_executions >= len(vetoed)
    assert episode.tool_executions >= agent.tool_executions


@pytest.mark.parametrize("kind", ["gain", "scene"])
def test_a_guard_that_predicts_only_losses_lets_no_checked_call_run(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.base import make_agent, rollout
    from agents.ppo.scene import SCENE_TASKS
    from tests.test_ppo_ensemble import export
    from tir_env import quality_gain
    from tir_env.env import TIREnv
    from tir_env.tools import tool_info
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    monkeypatch.setattr(guard, "predicted_gain", lambda env, call: -1.0)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=3, metrics=("psnr",))
    for seed in range(3):
        stem = export(tmp_path, f"p{seed}", "catalogue", seed)
        # rule_in=0: perception may not call a task past the guard either
        agent = make_agent("ppo", weights=str(stem), guard=kind, judge=False, rule_in=0)
        episode = rollout(env, agent, seed=seed, options={"degradations": ("dark", "haze")})
        tasks = {tool_info(r.call.tool).task for r in episode.records if r.call is not None}
        if kind == "gain":
            vetoed = agent.episode_extra()["guard_vetoed"]
            assert not tasks and agent.tool_executions == len(vetoed)
        else:
            assert not tasks & set(SCENE_TASKS.values())


def test_the_guard_defaults_and_gives_way_to_the_judge(tmp_path: Path) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.errors import ConfigValueError

    stem = export(tmp_path, "p", "catalogue", 0)
    with pytest.raises(ConfigValueError, match="guard"):
        make_agent("ppo", weights=str(stem), guard="always")
    assert make_agent("ppo", weights=str(stem)).options.guard == "scene"  # ppo's default
    assert make_agent("ppo-bc", weights=str(stem)).options.guard == "none"  # the bare clone
    # on whole photos perception decides brightening; ppo-bc stays bare
    assert make_agent("ppo", weights=str(stem)).options.whole_dark_floor == 0.6
    assert make_agent("ppo-bc", weights=str(stem)).options.whole_dark_floor == 0.0
    # ppo's default: the judge decides haze where sure, the guard checks the rest
    default = make_agent("ppo", weights=str(stem))
    assert default._guarding() and default.episode_extra() == {
        "judge_scene": {},
        "guard_vetoed": [],
        "perceived_in": [],  # rule_in: what perception ruled in
        "masked": [],  # whole_dark_floor: what perception barely saw (none before reset)
        "bright_pays": None,  # bright_veto: its reading, where the policy would brighten
        "clean_stop": False,  # clean_stop: whether it stopped at once on a clean reading
    }
    assert not make_agent("ppo-bc", weights=str(stem)).options.judge  # the bare clone
    bare = make_agent("ppo", weights=str(stem), guard="none", judge=False, clean_stop=False)
    assert bare.episode_extra() == {}
    judged = make_agent("ppo", weights=str(stem), guard="gain", judge=True, judge_margin=0)
    assert not judged._guarding()  # without a margin the judge decides the scene tasks


# ---------------------------------------------------------------- the probe at STOP (probe=)


def test_a_probe_backed_by_the_model_replaces_stop() -> None:
    probs = [np.array([0.7, 0.05, 0.15, 0.05, 0.05])]
    asked: list[int] = []

    def gain(action: Any) -> float:
        asked.append(first(action))
        return 3.0

    tried: set[str] = set()
    action, rejected = guard.probed_action(probs, TASKS, ("brightening",), tried, gain, 2.5)
    # the policy's likeliest brightening preset (index 2), not the first one
    assert (first(action), rejected, asked, tried) == (2, 0, [2], {"brightening"})


def test_a_probe_under_the_margin_stops_and_counts_as_an_execution() -> None:
    probs = [np.array([0.7, 0.05, 0.15, 0.05, 0.05])]
    tried: set[str] = set()
    action, rejected = guard.probed_action(
        probs, TASKS, ("brightening", "dehazing"), tried, lambda a: 2.0, 2.5
    )
    assert (first(action), rejected, tried) == (0, 2, {"brightening", "dehazing"})
    # probed once an episode: nothing runs again
    again, rejected = guard.probed_action(
        probs, TASKS, ("brightening", "dehazing"), tried, lambda a: 9.0, 2.5
    )
    assert (first(again), rejected) == (0, 0)


def test_a_failed_probe_is_not_taken() -> None:
    probs = [np.array([0.7, 0.1, 0.1, 0.05, 0.05]), np.array([0.2, 0.8])]
    action, rejected = guard.probed_action(probs, TASKS, ("brightening",), set(), lambda a: None, 0)
    assert np.asarray(action).tolist() == [0, 0] and rejected == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=5, max_size=5),
    st.sets(st.sampled_from(["brightening", "dehazing", "denoising"])),
    st.floats(-5.0, 5.0),
    st.floats(0.0, 3.0),
)
def test_a_probe_takes_only_a_due_untried_task_that_clears_the_margin(
    weights: list[float], before: set[str], predicted: float, margin: float
) -> None:
    probs = [np.array(weights)]
    tried = set(before)
    due = ("brightening", "dehazing")
    action, rejected = guard.probed_action(probs, TASKS, due, tried, lambda a: predicted, margin)
    task = TASKS[first(action)]
    if task is not None:
        assert task in due and task not in before and predicted > margin
    assert 0 <= rejected <= len(set(due) - before)
    assert tried >= before


def test_the_probe_needs_the_guard(tmp_path: Path) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.errors import ConfigValueError

    stem = export(tmp_path, "p", "catalogue", 0)
    assert make_agent("ppo", weights=str(stem)).options.probe == "none"
    with pytest.raises(ConfigValueError, match="probe"):
        make_agent("ppo", weights=str(stem), probe="always")
    with pytest.raises(ConfigValueError, match="needs the guard"):
        make_agent("ppo", weights=str(stem), guard="none", probe="brightening")
    with pytest.raises(ConfigValueError, match="needs the guard"):
        make_agent("ppo", weights=str(stem), judge=True, judge_margin=0, probe="brightening")


@pytest.mark.parametrize("probe", ["brightening", "scene"])
def test_a_policy_that_stops_at_once_is_given_the_probes_the_model_backs(
    tmp_path: Path, probe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.base import make_agent, rollout
    from tests.test_ppo_ensemble import export
    from tir_env import quality_gain
    from tir_env.env import TIREnv
    from tir_env.tools import tool_info
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")

    def always_stop(probs: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
        return guard.as_action(0, [0] * (len(probs) - 1)), 0

    monkeypatch.setattr(guard, "vetted_action", always_stop)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=5, metrics=("psnr",))
    stem = export(tmp_path, "p", "catalogue", 0)
    expected = {"brightening": ["brightening"], "scene": ["brightening", "dehazing"]}[probe]
    for predicted, calls in ((99.0, expected), (-99.0, [])):
        monkeypatch.setattr(guard, "predicted_gain", lambda env, call, g=predicted: g)
        agent = make_agent("ppo", weights=str(stem), probe=probe, judge=False)
        episode = rollout(env, agent, seed=0, options={"degradations": ("noise",)})
        tasks = [tool_info(r.call.tool).task for r in episode.records if r.call is not None]
        assert tasks == calls
        # a probe not taken ran ahead: one execution each
        assert agent.tool_executions == (len(expected) if not calls else 0)


# ------------------------------------------------- super-resolution at full size (mask_sr=)


def test_an_unavailable_task_is_masked_this_step_without_a_veto() -> None:
    probs = [np.array([0.1, 0.2, 0.1, 0.5, 0.1])]
    vetoed: set[str] = set()
    action, vetoes = guard.vetted_action(
        probs, TASKS, vetoed, lambda a: True, unavailable=("denoising",)
    )
    assert (first(action), vetoes, vetoed) == (1, 0, set())  # next likeliest, nothing vetoed


def test_mask_sr_never_upscales_a_full_size_image(tmp_path: Path) -> None:
    from agents.base import make_agent, rollout
    from tests.test_ppo_ensemble import export
    from tir_env import quality_gain
    from tir_env.env import TIREnv
    from tir_env.errors import ConfigValueError
    from tir_env.tools import tool_info
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    for seed in range(4):
        stem = export(tmp_path, f"p{seed}", "catalogue", seed)
        agent = make_agent("ppo", weights=str(stem), mask_sr=True, judge=False)
        episode = rollout(env, agent, seed=seed, options={"degradations": ("noise",)})
        tasks = {tool_info(r.call.tool).task for r in episode.records if r.call is not None}
        assert "super_resolution" not in tasks
    # a full-size image masks it; a low-resolution input (smaller than the target) does not
    agent = make_agent("ppo", weights=str(stem), mask_sr=True)
    env.reset(seed=0, options={"degradations": ("noise",)})
    agent.reset(env, {})
    assert agent._full_size() == ("super_resolution",)
    env.reset(seed=0, options={"degradations": ("low_resolution",)})
    agent.reset(env, {})
    assert agent._full_size() == ()
    with pytest.raises(ConfigValueError, match="mask_sr needs the guard"):
        make_agent("ppo", weights=str(stem), mask_sr=True, guard="none")


# ------------------------------------------------- tasks perception barely sees (mask_unseen=)


def test_mask_unseen_never_calls_a_task_perception_barely_sees(tmp_path: Path) -> None:
    from agents.base import make_agent, rollout
    from tests.test_ppo_ensemble import export
    from tir_env import perception, quality_gain
    from tir_env.degradations import make_degradation
    from tir_env.env import TIREnv
    from tir_env.errors import ConfigValueError
    from tir_env.tools import tool_info
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    masked_any = False
    for seed in range(4):
        stem = export(tmp_path, f"p{seed}", "catalogue", seed)
        agent = make_agent("ppo", weights=str(stem), mask_unseen=0.3, judge=False)
        episode = rollout(env, agent, seed=seed, options={"degradations": ("noise",)})
        env_image, size = env.perception_input()
        seen = perception.perceive_photo(env_image, size=size)
        unseen = {
            make_degradation(t).info.task
            for t in perception.AGENTICIR_TYPES
            if seen.probs[t] < 0.3 * seen.thresholds[t]
        }
        assert set(agent._unseen) == unseen
        masked_any |= bool(unseen)
        tasks = {tool_info(r.call.tool).task for r in episode.records if r.call is not None}
        assert not tasks & unseen
    assert masked_any  # the check above had something to hold
    off = make_agent("ppo", weights=str(stem))
    off.reset(env, {})
    assert off._unseen == ()  # default: no mask
    for bad in ({"guard": "none"}, {"judge": True, "judge_margin": 0}):
        with pytest.raises(ConfigValueError, match="mask_unseen needs the guard"):
            make_agent("ppo", weights=str(stem), mask_unseen=0.3, **bad)
    with pytest.raises(ConfigValueError, match="share of the thresholds"):
        make_agent("ppo", weights=str(stem), mask_unseen=1.5)


def test_mask_types_masks_only_the_named_types_tasks(tmp_path: Path) -> None:
    from agents.base import make_agent
    from agents.ppo.guard import unseen_tasks
    from tests.test_ppo_ensemble import export
    from tir_env import quality_gain
    from tir_env.env import TIREnv
    from tir_env.errors import ConfigValueError
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    env.reset(seed=0, options={"degradations": ("noise",)})
    every = unseen_tasks(env, 0.99)
    assert unseen_tasks(env, 0.99, ("dark",)) == tuple(t for t in every if t == "brightening")
    stem = export(tmp_path, "p", "catalogue", 0)
    agent = make_agent("ppo", weights=str(stem), mask_unseen=0.99, mask_types=("dark",))
    agent.reset(env, {})
    assert set(agent._unseen) <= {"brightening"}
    with pytest.raises(ConfigValueError, match="not a degradation type"):
        make_agent("ppo", weights=str(stem), mask_unseen=0.5, mask_types=("darkness",))
    with pytest.raises(ConfigValueError, match="needs mask_unseen"):
        make_agent("ppo", weights=str(stem), mask_types=("dark",))


# ------------------------------------------- the judge's rulings on the guarded path (margin)


def _judged_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ruling: bool, **options: Any):
    """A ppo agent whose judge rules dehazing ``ruling`` and whose guard vetoes every call."""
    from agents.base import make_agent
    from agents.ppo import scene
    from tests.test_ppo_ensemble import export
    from tir_env import quality_gain

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    monkeypatch.setattr(scene, "judge_scene", lambda *a, **k: ({"dehazing": ruling}, 0))
    monkeypatch.setattr(guard, "predicted_gain", lambda env, call: -5.0)
    stem = export(tmp_path, "p", "catalogue", 0)
    return make_agent("ppo", weights=str(stem), **options)


@pytest.mark.parametrize("kind", ["gain", "scene"])
def test_a_task_ruled_in_is_called_once_and_never_vetoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from agents.base import rollout
    from tir_env.env import TIREnv
    from tir_env.tools import tool_info
    from tir_env.tools.pool import SyncToolPool

    agent = _judged_agent(tmp_path, monkeypatch, True, guard=kind, judge_margin=2.5)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    episode = rollout(env, agent, seed=0, options={"degradations": ("haze",)})
    tasks = [tool_info(r.call.tool).task for r in episode.records if r.call is not None]
    assert tasks.count("dehazing") == 1  # forced at STOP once, never checked by the guard
    assert "dehazing" not in agent.episode_extra()["guard_vetoed"]
    if kind == "gain":  # every other call was vetoed
        assert tasks == ["dehazing"]


@pytest.mark.parametrize("probe", ["none", "scene"])
def test_a_task_ruled_out_is_never_called_nor_probed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe: str
) -> None:
    from agents.base import rollout
    from tir_env.env import TIREnv
    from tir_env.tools import tool_info
    from tir_env.tools.pool import SyncToolPool

    monkeypatch.setattr(guard, "probed_action", _spy_probes := _ProbeSpy(guard.probed_action))
    agent = _judged_agent(tmp_path, monkeypatch, False, judge_margin=2.5, probe=probe)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    for seed in range(3):
        episode = rollout(env, agent, seed=seed, options={"degradations": ("haze",)})
        tasks = {tool_info(r.call.tool).task for r in episode.records if r.call is not None}
        assert "dehazing" not in tasks
    assert all("dehazing" in tried for tried in _spy_probes.tried)  # never probed
    assert bool(_spy_probes.tried) == (probe == "scene")  # the probe was asked at STOP


class _ProbeSpy:
    """Wraps :func:`agents.ppo.guard.probed_action`, keeping the tasks given as tried."""

    def __init__(self, real: Any) -> None:
        self.real, self.tried = real, []

    def __call__(self, probs: Any, tasks: Any, due: Any, tried: set[str], *rest: Any) -> Any:
        self.tried.append(set(tried))
        return self.real(probs, tasks, due, tried, *rest)


# ------------------------------------------------ scene types perception rules in (rule_in=)


def _reading(dark: float, haze: float) -> Any:
    from tir_env.perception import AGENTICIR_TYPES, Perception

    probs = {t: 0.0 for t in AGENTICIR_TYPES} | {"dark": dark, "haze": haze}
    return Perception(probs, dict.fromkeys(probs, 0.5), 20.0, 0.5, dict.fromkeys(probs, 0.5))


@pytest.mark.parametrize(
    ("dark", "haze", "skip", "expected"),
    [
        (0.6, 0.1, (), {"brightening": True}),  # 1.2 x its threshold
        (0.49, 0.1, (), {}),
        (0.6, 0.7, ("dehazing",), {"brightening": True}),  # the judge decides haze
        (0.6, 0.7, (), {"brightening": True, "dehazing": True}),
    ],
)
def test_perceived_scene_rules_in_what_perception_reads_clearly(
    monkeypatch: pytest.MonkeyPatch, dark: float, haze: float, skip: tuple, expected: dict
) -> None:
    from tir_env import perception
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    monkeypatch.setattr(perception, "perceive_photo", lambda *a, **k: _reading(dark, haze))
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4)
    env.reset(seed=0)
    assert guard.perceived_scene(env, 1.2, skip) == expected


def test_rule_in_calls_brightening_before_stopping_unchecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.base import make_agent, rollout
    from tests.test_ppo_ensemble import export
    from tir_env import perception, quality_gain
    from tir_env.env import TIREnv
    from tir_env.tools import tool_info
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    monkeypatch.setattr(perception, "perceive_photo", lambda *a, **k: _reading(0.9, 0.0))
    monkeypatch.setattr(guard, "predicted_gain", lambda env, call: -5.0)  # vetoes all it checks
    stem = export(tmp_path, "p", "catalogue", 0)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    for rule_in, expected in ((1.5, ["brightening"]), (2.0, [])):
        # haze read clearly too, but the judge decides haze (and abstains here): not ruled in
        monkeypatch.setattr(perception, "perceive_photo", lambda *a, **k: _reading(0.9, 0.9))
        monkeypatch.setattr(scene, "judge_scene", lambda *a, **k: ({}, 0))
        # the brightening veto off: its own refusal of rule_in's call is tested below
        agent = make_agent("ppo", weights=str(stem), guard="gain", rule_in=rule_in, bright_veto=0)
        episode = rollout(env, agent, seed=0, options={"degradations": ("dark",)})
        tasks = [tool_info(r.call.tool).task for r in episode.records if r.call is not None]
        assert tasks == expected  # 0.9 is 1.8 x the threshold: ruled in at 1.5, not at 2


@pytest.mark.parametrize("options", [{"rule_in": 0.5}, {"rule_in": float("inf")}])
def test_a_rule_in_below_the_thresholds_is_refused(tmp_path: Path, options: dict) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.errors import ConfigValueError

    stem = export(tmp_path, "p", "catalogue", 0)
    with pytest.raises(ConfigValueError, match="rule_in"):
        make_agent("ppo", weights=str(stem), **options)


def test_rule_in_is_the_default_of_ppo_only_and_idle_without_the_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env import perception
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    monkeypatch.setattr(perception, "perceive_photo", lambda *a, **k: _reading(0.9, 0.0))
    stem = export(tmp_path, "p", "catalogue", 0)
    assert make_agent("ppo", weights=str(stem)).options.rule_in == 1.2
    bare = make_agent("ppo-bc", weights=str(stem))
    unguarded = make_agent("ppo", weights=str(stem), guard="none", judge=False)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4)
    env.reset(seed=0)
    for agent in (bare, unguarded):
        agent.reset(env, {})
        assert agent._perceived_in == {}  # darkness read at 1.8x its threshold, no guard: idle


def test_without_perception_weights_perception_rules_nothing_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tir_env import perception
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    monkeypatch.setattr(perception, "available", lambda: False)
    monkeypatch.setattr(perception, "perceive_photo", lambda *a, **k: pytest.fail("read"))
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4)
    env.reset(seed=0)
    assert guard.perceived_scene(env, 1.2) == {}


# ------------------------------------------------ the scene types the guard checks (guard_types=)


def _checked_scene_tasks(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """Record the tasks the guard is asked to check at each vetted step."""
    checked: list[set[str]] = []
    real = guard.vetted_action

    def spy(*args: Any, **kwargs: Any) -> Any:
        checked.append(set(kwargs["checked"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(guard, "vetted_action", spy)
    return checked


def _first_step(env: Any, agent: Any, degradations: tuple[str, ...]) -> None:
    """Reset ``env`` and ``agent`` on an episode of ``degradations`` and take one action."""
    observation, info = env.reset(seed=0, options={"degradations": degradations})
    agent.reset(env, info)
    agent.act(observation)


def _checked_on_a_dark_crop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> list[set[str]]:
    """The scene tasks the guard checks on a darkened crop's first step, per check."""
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env import quality_gain
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    checked = _checked_scene_tasks(monkeypatch)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    stem = export(tmp_path, "p", "catalogue", 0)
    _first_step(env, make_agent("ppo", weights=str(stem), judge=False, **options), ("dark",))
    return checked


@pytest.mark.parametrize(
    ("types", "expected"),
    [(("dark", "haze"), {"brightening", "dehazing"}), (("haze",), {"dehazing"}), ((), set())],
)
def test_guard_types_name_the_scene_tasks_the_guard_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, types: tuple[str, ...], expected: set[str]
) -> None:
    assert _checked_on_a_dark_crop(tmp_path, monkeypatch, guard_types=types) == [expected]


def test_guard_types_refuse_a_type_that_is_not_a_scene_type(tmp_path: Path) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.errors import ConfigValueError

    stem = export(tmp_path, "p", "catalogue", 0)
    with pytest.raises(ConfigValueError, match="guard_types: noise is not a scene type"):
        make_agent("ppo", weights=str(stem), guard_types=("noise",))


# -------------------------------------- perception decides brightening on whole photos


@pytest.mark.parametrize("patch_size", [32, 256])
def test_whole_dark_floor_masks_and_unchecks_brightening_on_whole_photos_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patch_size: int
) -> None:
    from agents.base import make_agent
    from agents.ppo.guard import unseen_tasks
    from tests.test_ppo_ensemble import export
    from tir_env import quality_gain
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    if not quality_gain.available():
        pytest.skip("quality-gain weights are not installed")
    checked = _checked_scene_tasks(monkeypatch)
    env = TIREnv(
        images="test", pool=SyncToolPool(), patch_size=patch_size, obs_size=32, max_steps=3
    )
    stem = export(tmp_path, "p", "catalogue", 0)  # trained on 128 px crops
    agent = make_agent("ppo", weights=str(stem), judge=False, whole_dark_floor=0.99)
    _first_step(env, agent, ("noise",))
    whole = patch_size > agent.spec.train_patch
    assert set(agent._unseen) == (set(unseen_tasks(env, 0.99, ("dark",))) if whole else set())
    # on a whole photo perception decides brightening: the guard checks dehazing only
    assert checked == [{"dehazing"} if whole else {"brightening", "dehazing"}]
    assert agent.episode_extra()["masked"] == sorted(agent._unseen)


def test_whole_dark_floor_is_a_share_and_idle_without_the_guard(tmp_path: Path) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.env import TIREnv
    from tir_env.errors import ConfigValueError

    stem = export(tmp_path, "p", "catalogue", 0)
    with pytest.raises(ConfigValueError, match="whole_dark_floor is a share"):
        make_agent("ppo", weights=str(stem), whole_dark_floor=1.5)
    env = TIREnv(images="test", patch_size=256, obs_size=32, max_steps=3, metrics=("psnr",))
    agent = make_agent("ppo", weights=str(stem), guard="none", judge=False, whole_dark_floor=0.99)
    agent.reset(env, env.reset(seed=0, options={"degradations": ("noise",)})[1])
    assert agent._unseen == () and not agent._brightening_unchecked


@pytest.mark.parametrize("trust", [0.0, 1e-9, 1e9])
def test_trust_dark_unchecks_brightening_where_perception_reads_darkness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trust: float
) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.errors import ConfigValueError

    checked = _checked_on_a_dark_crop(tmp_path, monkeypatch, trust_dark=trust)
    stem = export(tmp_path, "p", "catalogue", 0)
    # a tiny share: any darkness reading is trusted; a huge one (or 0, off): none is
    trusted = trust == 1e-9
    assert checked == [{"dehazing"} if trusted else {"brightening", "dehazing"}]
    with pytest.raises(ConfigValueError, match="trust_dark is a share"):
        make_agent("ppo", weights=str(stem), trust_dark=-1)


# ----------------------------------------------------- the learned brightening veto


def test_a_refused_task_is_masked_without_a_veto_or_a_check() -> None:
    probs = [np.array([0.05, 0.4, 0.3, 0.15, 0.1])]
    vetoed: set[str] = set()

    def refused(action: Any) -> bool:
        return TASKS[first(action)] == "brightening"

    # brightening refused (both presets masked), denoising vetoed, dehazing vetoed: STOP
    # after the two checks the refusal did not use up
    action, vetoes = guard.vetted_action(
        probs, TASKS, vetoed, lambda a: False, max_checks=2, refused=refused
    )
    assert (first(action), vetoes, vetoed) == (0, 2, {"brightening", "denoising", "dehazing"})
    kept, vetoes = guard.vetted_action(probs, TASKS, set(), lambda a: True, refused=refused)
    assert (first(kept), vetoes) == (3, 0)


def test_bright_veto_features_are_named_and_read_the_value_channel() -> None:
    import torch

    from agents.ppo import bright_veto
    from tir_env import perception

    if not perception.available():
        pytest.skip("perception weights are not installed")
    image = torch.zeros(1, 3, 64, 64)
    image[:, 0, :, :32] = 0.5  # half the value channel at 0.5, half black
    probs = dict.fromkeys(perception.AGENTICIR_TYPES, 0.5)
    row = bright_veto.features(probs, image, None, {"denoising"}, 2)
    names = bright_veto.feature_names()
    assert row.shape == (len(names),) and np.isfinite(row).all()
    named = dict(zip(names, row, strict=True))
    assert named["input dark"] == 0.0  # the logit of 0.5
    assert (named["value median"], named["value black share"]) == (0.25, 0.5)
    assert (named["done denoising"], named["done dehazing"], named["calls"]) == (1.0, 0.0, 2.0)


@pytest.mark.parametrize("patch_size", [32, 256])
def test_bright_veto_masks_brightening_on_crops_where_it_predicts_no_gain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patch_size: int
) -> None:
    from agents.base import make_agent, rollout
    from agents.ppo import bright_veto
    from tests.test_ppo_ensemble import export
    from tir_env import perception, quality_gain
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    if not (quality_gain.available() and perception.available() and bright_veto.path().is_file()):
        pytest.skip("quality-gain, perception or veto weights are not installed")
    rows: list[np.ndarray] = []

    def never_pays(row: np.ndarray) -> float:
        rows.append(row)
        return 0.0

    monkeypatch.setattr(bright_veto, "pays", never_pays)
    monkeypatch.setattr(guard, "predicted_gain", lambda env, call: 1.0)  # the guard keeps all
    env = TIREnv(pool=SyncToolPool(), patch_size=patch_size, obs_size=32, max_steps=4)
    stem = export(tmp_path, "p", "catalogue", 0)  # trained on 128 px crops
    agent = make_agent("ppo", weights=str(stem), judge=False, rule_in=1.0, bright_veto=0.5)
    calls = []
    for seed in range(4):
        ep = rollout(env, agent, seed=seed, options={"degradations": ("dark",)})
        calls += [r.call.tool for r in ep.records if r.call is not None]
        assert len(rows) <= seed + 1  # read at most once an episode
    crop = patch_size <= agent.spec.train_patch
    if crop:  # refused: the policy's brightening and rule_in's alike never run
        assert not {"gamma_correction", "constant_shift"} & set(calls)
        assert rows and agent.episode_extra()["bright_pays"] == 0.0
    else:  # a whole photo: the veto was not fitted there and never reads
        assert rows == []


def test_bright_veto_is_a_probability_the_default_of_ppo_only_and_idle_without_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.base import make_agent
    from agents.ppo import bright_veto
    from tests.test_ppo_ensemble import export
    from tir_env.errors import ConfigValueError

    stem = export(tmp_path, "p", "catalogue", 0)
    with pytest.raises(ConfigValueError, match="bright_veto is a probability"):
        make_agent("ppo", weights=str(stem), bright_veto=1.5)
    assert make_agent("ppo", weights=str(stem)).options.bright_veto == 0.5
    assert make_agent("ppo-bc", weights=str(stem)).options.bright_veto == 0.0

    def never(*args: object) -> float:
        raise AssertionError("the veto read without the guard or without its weights")

    monkeypatch.setattr(bright_veto, "features", never)
    unguarded = make_agent("ppo", weights=str(stem), guard="none", judge=False)
    assert not unguarded._brightening_refused(None)
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))  # a folder without the veto
    assert not make_agent("ppo", weights=str(stem), judge=False)._brightening_refused(None)


# --------------------------------------------------------- a dehazing tool in the policy's place


def test_dehazing_tool_runs_in_place_of_the_policys_dehazing_calls(tmp_path: Path) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.errors import ConfigValueError
    from tir_env.types import ToolCall

    stem = export(tmp_path, "p", "catalogue", 0)
    agent = make_agent("ppo", weights=str(stem), dehazing_tool="learned_dehazing", params="tuned")
    assert "learned_dehazing" in agent.required_tools  # the env is asked to offer it
    swapped = agent._tuned(ToolCall("dark_channel_prior", {"omega": 0.8}))
    assert swapped == ToolCall("learned_dehazing", {})  # its own parameters, not the call's
    other = agent._tuned(ToolCall("gamma_correction", {"gamma": 2.0}))
    assert other == ToolCall("gamma_correction", {"gamma": 2.0})
    assert agent._tuned(None) is None  # STOP stays STOP
    own = make_agent("ppo-bc", weights=str(stem))
    assert own.options.dehazing_tool == ""
    assert own._tuned(ToolCall("dark_channel_prior", {})).tool == "dark_channel_prior"
    with pytest.raises(ConfigValueError, match="dehazing_tool must be one of"):
        make_agent("ppo", weights=str(stem), dehazing_tool="dct_denoise")


def test_deraining_tool_runs_in_place_of_the_policys_deraining_calls(tmp_path: Path) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.errors import ConfigValueError
    from tir_env.types import ToolCall

    stem = export(tmp_path, "p", "catalogue", 0)
    agent = make_agent("ppo", weights=str(stem), deraining_tool="learned_deraining")
    assert {"learned_deraining", "learned_dehazing"} <= set(agent.required_tools)
    assert agent._tuned(ToolCall("derain_opening", {})).tool == "learned_deraining"
    assert agent._tuned(ToolCall("dark_channel_prior", {})).tool == "learned_dehazing"
    plain = make_agent("ppo", weights=str(stem), deraining_tool="")
    assert plain._tuned(ToolCall("derain_opening", {})).tool == "derain_opening"
    with pytest.raises(ConfigValueError, match="deraining_tool must be one of"):
        make_agent("ppo", weights=str(stem), deraining_tool="learned_dehazing")


@pytest.mark.parametrize("patch_size", [32, 256])
def test_dehazing_whole_false_swaps_on_crops_only(tmp_path: Path, patch_size: int) -> None:
    from agents.base import make_agent
    from tests.test_ppo_ensemble import export
    from tir_env.env import TIREnv
    from tir_env.types import ToolCall

    stem = export(tmp_path, "p", "catalogue", 0)  # trained on 128 px crops
    tools = ("dark_channel_prior", "learned_dehazing")
    env = TIREnv(images="test", tools=tools, patch_size=patch_size, obs_size=32, max_steps=3)
    agent = make_agent("ppo", weights=str(stem), judge=False, dehazing_whole=False)
    agent.reset(env, env.reset(seed=0, options={"degradations": ("haze",)})[1])
    crop = patch_size <= agent.spec.train_patch
    swapped = agent._tuned(ToolCall("dark_channel_prior", {}))
    assert swapped.tool == ("learned_dehazing" if crop else "dark_channel_prior")


# ------------------------------------------------------------ a clean reading (clean_stop=)
@pytest.mark.parametrize("reads_clean", [True, False])
def test_clean_stop_stops_at_once_only_where_perception_reads_the_input_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reads_clean: bool
) -> None:
    import dataclasses

    from agents.base import make_agent, rollout
    from tests.test_ppo_ensemble import export
    from tir_env import perception
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    if not perception.available():
        pytest.skip("perception weights are not installed")
    real = guard.input_reading
    bar = 2.0 if reads_clean else 0.0  # every type under, or over, its threshold

    def reading(env: Any) -> Any:
        seen = real(env)
        return dataclasses.replace(seen, thresholds=dict.fromkeys(seen.thresholds, bar))

    monkeypatch.setattr(guard, "input_reading", reading)
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    stem = export(tmp_path, "p0", "catalogue", 0)
    calls = []
    for stop in (False, True):
        agent = make_agent("ppo", weights=str(stem), judge=False, clean_stop=stop)
        episode = rollout(env, agent, seed=3, options={"degradations": ("noise",)})
        calls.append([r.call for r in episode.records if r.call is not None])
        assert agent.episode_extra().get("clean_stop", False) == (stop and reads_clean)
    assert calls[0]  # without the option the policy calls tools on this episode
    if reads_clean:
        assert calls[1] == []  # stopped at once
    else:
        assert calls[1] == calls[0]  # the policy acts as without the option


def test_clean_stop_is_the_default_of_ppo_only(tmp_path: Path) -> None:
    from agents.ppo.agent import PPOBCOptions, PPOOptions

    assert PPOOptions().clean_stop and not PPOBCOptions().clean_stop
