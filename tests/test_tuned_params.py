"""The fitted parameters of the prior plan (agents/tuned_params.json) and the fit's rule."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import make_agent
from agents.baselines import preferred_tool, prior_plan
from agents.tuned import TUNED_FILE, prior_call, tuned_params
from benchmarks.tune_params import GRIDS, GRIDS_2, MIN_GAIN, choose, params_table
from tir_env.degradations.base import degradation_names, make_degradation
from tir_env.env import TIREnv
from tir_env.errors import ConfigValueError
from tir_env.tools import tool_names
from tir_env.tools.base import tool_info
from tir_env.types import TASKS, ToolCall

torch.set_num_threads(1)

TABLE = json.loads(TUNED_FILE.read_text())


@pytest.mark.parametrize("tool", sorted(TABLE["params"]))
def test_every_fitted_value_is_a_preferred_tools_parameter_within_its_range(tool):
    info = tool_info(tool)
    assert info.preferred
    for name, value in TABLE["params"][tool].items():
        assert info.params[name].low <= value <= info.params[name].high
        assert value != info.params[name].default  # the table holds departures only
    assert tuned_params()[tool] == TABLE["params"][tool]


@pytest.mark.parametrize("key", sorted(GRIDS))
def test_every_first_round_grid_holds_the_declared_default(key):
    tool, param = key
    assert tool_info(tool).preferred and tool in tool_names()
    assert tool_info(tool).params[param].default in GRIDS[key]


@pytest.mark.parametrize("key", sorted({**GRIDS, **GRIDS_2}))
def test_every_grid_value_is_within_the_parameters_range(key):
    tool, param = key
    spec = tool_info(tool).params[param]
    assert tool_info(tool).preferred
    assert all(spec.low <= v <= spec.high for v in {**GRIDS, **GRIDS_2}[key])


def test_the_prior_plan_runs_the_fitted_values_only_when_asked():
    tools = tuple(tool_names())
    tuned = prior_plan(None, tools, len(TASKS), "tuned")
    default = prior_plan(None, tools, len(TASKS))
    assert [c.tool for c in tuned] == [c.tool for c in default]
    assert all(not c.params for c in default)
    assert {c.tool: dict(c.params) for c in tuned if c.params} == TABLE["params"]


def _write(tmp_path, params):
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps({"params": params}))
    return path


@pytest.mark.parametrize(
    "params",
    [
        {"no_such_tool": {"x": 1.0}},
        {"gamma_correction": {"no_such_param": 1.0}},
        {"gamma_correction": {"gamma": "high"}},
        {"gamma_correction": {"gamma": math.nan}},
        {"gamma_correction": 1.7},
        [1, 2],
    ],
)
def test_a_malformed_table_is_a_named_error(tmp_path, params):
    with pytest.raises(ConfigValueError, match="tune_params"):
        tuned_params(_write(tmp_path, params))


def test_a_missing_or_broken_file_is_a_named_error(tmp_path):
    with pytest.raises(ConfigValueError, match="unreadable"):
        tuned_params(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"params": ')
    with pytest.raises(ConfigValueError, match="unreadable"):
        tuned_params(broken)


@settings(max_examples=30, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_value_outside_the_parameters_range_is_refused(tmp_path_factory, value):
    spec = tool_info("gamma_correction").params["gamma"]
    path = _write(tmp_path_factory.mktemp("t"), {"gamma_correction": {"gamma": value}})
    if spec.low <= value <= spec.high:
        assert tuned_params(path)["gamma_correction"]["gamma"] == value
    else:
        with pytest.raises(ConfigValueError, match="outside"):
            tuned_params(path)


KEY = ("derain_opening", "width")


def _rows(gains_by_photo, start=9.0):
    """Grid rows of one parameter: per photo, two episodes with the given gain of each value."""
    rows = []
    for photo, gains in gains_by_photo.items():
        for noise in (-0.01, 0.01):
            psnr = {
                v: 20.0 + gains.get(v, 0.0) + (noise if v != start else 0.0)
                for v in sorted({*GRIDS[KEY], start})
            }
            rows.append(
                {"tool": KEY[0], "param": KEY[1], "image": photo, "start": start, "psnr": psnr}
            )
    return rows


def test_the_fit_takes_a_value_that_gains_on_every_photo():
    rows = _rows({f"p{i}": {13.0: 0.4 + 0.05 * i, 15.0: 0.2} for i in range(6)})
    assert choose(rows)["derain_opening.width"]["chosen"] == 13.0
    assert params_table(choose(rows)) == {"derain_opening": {"width": 13.0}}


def test_the_fit_keeps_the_start_when_a_gain_is_noise_or_too_small():
    mixed = {f"p{i}": {13.0: (2.0 if i % 2 else -1.9)} for i in range(6)}  # se >> mean
    assert choose(_rows(mixed))["derain_opening.width"]["chosen"] == 9.0
    tiny = {f"p{i}": {13.0: MIN_GAIN / 2} for i in range(6)}  # certain, but negligible
    assert choose(_rows(tiny))["derain_opening.width"]["chosen"] == 9.0


def test_a_second_round_keeps_the_first_rounds_values_it_does_not_revisit():
    start = {"derain_opening": {"width": 13.0}, "jpeg_tv": {"weight": 0.05}}
    rows = _rows({f"p{i}": {15.0: 0.3} for i in range(6)}, start=13.0)
    table = params_table(choose(rows), start)
    assert table == {"derain_opening": {"width": 15.0}, "jpeg_tv": {"weight": 0.05}}
    # a choice back at the declared default leaves the table
    back = _rows({f"p{i}": {9.0: 0.3} for i in range(6)}, start=13.0)
    assert params_table(choose(back), start) == {"jpeg_tv": {"weight": 0.05}}


#: A task whose preferred tool has a fitted value, and the degradation it removes.
TUNED_TOOL = sorted(TABLE["params"])[0]
TASK = tool_info(TUNED_TOOL).task
DEGRADATION = next(
    n for n in degradation_names("agenticir") if make_degradation(n).info.task == TASK
)


@pytest.fixture(scope="module")
def episode():
    env = TIREnv(images="test", patch_size=48, obs_size=32, max_steps=2)
    _, info = env.reset(seed=3, options={"degradations": (DEGRADATION,)})
    return env, info


@pytest.mark.parametrize("params", ["tuned", "default"])
def test_fixed_and_the_search_agents_run_the_chosen_parameters(episode, params):
    env, info = episode
    preferred = preferred_tool(TASK, env.tools)
    assert preferred == TUNED_TOOL
    expected = prior_call(preferred, params)
    fixed = make_agent("fixed", params=params)
    fixed.reset(env, info)
    assert all(call == prior_call(call.tool, params) for call in fixed.plan)
    searcher = make_agent("exhaustive", params=params)
    searcher._score = lambda image: 0.0  # type: ignore[method-assign]
    searcher.reset(env, {**info, "perceived_tasks": [TASK]})
    assert expected in searcher.candidates()
    assert searcher._is_prior(expected)
    other = prior_call(preferred, "tuned" if params == "default" else "default")
    assert other != expected  # the tool has a fitted value
    assert not searcher._is_prior(other)


def test_the_reference_search_runs_the_declared_defaults(episode):
    env, info = episode
    reference = make_agent("exhaustive-ref", params="tuned")
    reference.reset(env, info)
    preferred = preferred_tool(TASK, env.tools)
    assert ToolCall(preferred, {}) in reference.candidates()
    assert reference.prior_call(preferred) == ToolCall(preferred, {})


def test_fitting_on_perceived_plans_without_fold_networks_is_a_named_error(tmp_path):
    from benchmarks.tune_params import collect_out_of_fold
    from tir_env.errors import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match="perception_cv"):
        collect_out_of_fold("train", ["mio-a"], 1, tmp_path / "cv", "p40kq", 2)
    assert not (tmp_path / "cv").exists()  # nothing made on the way


@pytest.mark.parametrize("params", ["tuned", "default"])
def test_the_oracle_runs_the_declared_defaults_unless_asked(episode, params):
    env, info = episode
    oracle = make_agent("oracle", params=params)
    oracle.reset(env, info)
    assert oracle.plan == [prior_call(TUNED_TOOL, params)]
    assert make_agent("oracle").options.params == "default"


def test_a_learned_policys_default_call_of_a_fitted_tool_runs_the_fitted_values():
    from agents.tuned import with_tuned_params

    tool = sorted(tuned_params())[0]
    fitted = dict(tuned_params()[tool])
    spec = tool_info(tool).params
    assert with_tuned_params(None) is None  # STOP stays STOP
    assert with_tuned_params(ToolCall(tool)).params == fitted
    defaults = {name: p.default for name, p in spec.items()}
    assert with_tuned_params(ToolCall(tool, defaults)).params == {**defaults, **fitted}
    name = next(iter(fitted))
    chosen = ToolCall(tool, {name: spec[name].low})  # a value the policy chose: kept
    assert with_tuned_params(chosen) is chosen
    other = next(t for t in tool_names(kinds=("classical",)) if t not in tuned_params())
    assert with_tuned_params(ToolCall(other)) == ToolCall(other)


def test_the_ppo_agent_runs_the_fitted_values_only_when_asked():
    # the same first observation, so the same first choice (here jpeg_tv, a fitted tool);
    # only its parameters differ
    env = TIREnv(combos="mio-a", max_steps=1, patch_size=64)
    first = {}
    for params in ("default", "tuned"):
        obs, info = env.reset(seed=4)
        policy = make_agent("ppo", params=params)
        policy.reset(env, info)
        env.step(policy.act(obs))
        first[params] = env.history[-1].call
    default, tuned = first["default"], first["tuned"]
    assert default is not None and tuned is not None and default.tool == tuned.tool
    assert default.tool in tuned_params()
    spec = tool_info(default.tool).params
    for name, value in tuned_params()[default.tool].items():
        assert default.params[name] == pytest.approx(spec[name].default, rel=1e-6)
        assert tuned.params[name] == pytest.approx(value, rel=1e-6)


def test_the_environment_names_another_table_and_the_agents_read_it(tmp_path, monkeypatch):
    from agents.tuned import TUNED_ENV

    path = _write(tmp_path, {"gamma_correction": {"gamma": 1.9}})
    monkeypatch.setenv(TUNED_ENV, str(path))
    assert prior_call("gamma_correction", "tuned").params == {"gamma": 1.9}
    monkeypatch.delenv(TUNED_ENV)
    assert tuned_params() == TABLE["params"]  # the shipped table again, read from its cache


def test_the_fit_can_read_the_training_protocols_episodes():
    from benchmarks.perception_cv import fold_episodes
    from benchmarks.suites import get_suite
    from tir_env.degradations.protocols import COMBOS

    triples = fold_episodes("test[0/4]", ["train-d3"])
    assert triples and {tuple(spec.degradations) for _, spec in triples} <= set(COMBOS["train-d3"])
    suite = get_suite("mio-a")
    assert [spec for _, spec in fold_episodes("test[0/4]", ["mio-a"])] == suite.episodes(
        "test[0/4]"
    )


def test_the_fit_refuses_to_overwrite_a_table_before_any_play(monkeypatch, capsys):
    from benchmarks import tune_params

    def no_play(*_, **__):
        raise AssertionError("the fit started before refusing")

    monkeypatch.setattr(tune_params, "collect", no_play)
    monkeypatch.setattr(tune_params, "collect_out_of_fold", no_play)
    with pytest.raises(SystemExit) as exit_info:
        tune_params.main([])  # the default --out is the shipped table
    assert exit_info.value.code == 2
    assert "exists" in capsys.readouterr().err
    assert json.loads(TUNED_FILE.read_text()) == TABLE


# ---------------------------------------------------------------- plans of one call


def _write_alone(tmp_path, params, alone):
    path = tmp_path / "tuned_alone.json"
    path.write_text(json.dumps({"params": params, "alone": alone}))
    return path


def test_a_plan_of_one_call_runs_its_alone_values_only_when_asked(tmp_path, monkeypatch):
    from agents.tuned import TUNED_ENV, alone_params

    path = _write_alone(
        tmp_path,
        {"jpeg_tv": {"weight": 0.05}, "dct_denoise": {"strength": 1.25}},
        {"jpeg_tv": {"weight": 0.012}},  # the declared default: still an alone value
    )
    monkeypatch.setenv(TUNED_ENV, str(path))
    assert alone_params() == {"jpeg_tv": {"weight": 0.012}}
    tools = tuple(tool_names())
    one = prior_plan(["jpeg_artifact_removal"], tools, 4, "tuned", alone=True)
    assert one == [ToolCall("jpeg_tv", {"weight": 0.012})]
    pooled = prior_plan(["jpeg_artifact_removal"], tools, 4, "tuned")
    assert pooled == [ToolCall("jpeg_tv", {"weight": 0.05})]
    two = prior_plan(["denoising", "jpeg_artifact_removal"], tools, 4, "tuned", alone=True)
    assert ToolCall("jpeg_tv", {"weight": 0.05}) in two  # with another call: pooled values
    cut = prior_plan(["denoising", "jpeg_artifact_removal"], tools, 1, "tuned", alone=True)
    assert len(cut) == 1 and cut[0].params == tuned_params()[cut[0].tool]  # planned two
    assert prior_plan(["jpeg_artifact_removal"], tools, 4, "default", alone=True)[0].params == {}


def test_a_table_without_an_alone_section_has_none_and_a_bad_one_is_refused(tmp_path):
    from agents.tuned import alone_params

    assert alone_params(_write(tmp_path, {"gamma_correction": {"gamma": 1.7}})) == {}
    bad = _write_alone(tmp_path, {}, {"gamma_correction": {"gamma": 99.0}})
    with pytest.raises(ConfigValueError, match="outside"):
        alone_params(bad)
    bad.write_text(json.dumps({"params": {}, "alone": [1]}))
    with pytest.raises(ConfigValueError, match="'alone' is not a table"):
        alone_params(bad)


def test_fixed_runs_alone_values_with_its_option(episode, tmp_path, monkeypatch):
    from agents import baselines
    from agents.tuned import TUNED_ENV

    env, info = episode
    path = _write_alone(tmp_path, TABLE["params"], {TUNED_TOOL: {}})
    monkeypatch.setenv(TUNED_ENV, str(path))
    monkeypatch.setattr(baselines, "seen_tasks", lambda *_, **__: [TASK])
    for option, expected in (
        (False, prior_call(TUNED_TOOL, "tuned")),
        (True, ToolCall(TUNED_TOOL, {})),
    ):
        fixed = make_agent("fixed", alone_params=option, guard="none")  # perception stubbed
        fixed.reset(env, info)
        assert fixed.plan == [expected]


def test_the_alone_report_keeps_the_table_and_writes_defaults_too(tmp_path):
    from benchmarks.tune_params import alone_report

    start_file = tmp_path / "start.json"
    start_file.write_text(json.dumps({"params": {"jpeg_tv": {"weight": 0.05}}, "tools": {}}))
    rows = _rows({f"p{i}": {13.0: 0.4 + 0.05 * i} for i in range(6)})
    choices = choose(rows)
    report = alone_report(start_file, "cmd", "rule", choices, {"jpeg_tv": {"weight": 0.05}})
    assert report["params"] == {"jpeg_tv": {"weight": 0.05}}
    assert report["alone"] == {"derain_opening": {"width": 13.0}}
    assert report["alone_tools"] == choices and report["alone_command"] == "cmd"
    kept = choose(_rows({f"p{i}": {} for i in range(6)}))  # nothing gains: the start stays
    assert alone_report(start_file, "c", "r", kept, {})["alone"] == {
        "derain_opening": {"width": 9.0}
    }
