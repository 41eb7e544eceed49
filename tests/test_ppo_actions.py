"""The PPO policy's action spaces (agents/ppo/actions.py): params bins <-> ToolCall, catalogue
compatibility, and a params policy trained by ``tir train ppo`` and run by ``tir bench``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ppo.actions import (
    CatalogueActions,
    ParamActions,
    bin_value,
    bin_width,
    make_actions,
    nearest_bin,
)
from agents.ppo.catalogue import PRESETS
from tir_env.errors import InvalidActionError, InvalidOptionError
from tir_env.spaces import decode_action, encode_call
from tir_env.tools.base import resolve_params, tool_info
from tir_env.types import ToolCall
from tir_env.wrappers import action_history

TOOLS = tuple(dict.fromkeys(c.tool for c in PRESETS))


@st.composite
def params_actions(draw: st.DrawFn) -> tuple[ParamActions, np.ndarray]:
    """A params space (bins 2..16, 1..4 params) and any action in it."""
    space = ParamActions(TOOLS, draw(st.integers(2, 16)), draw(st.integers(1, 4)))
    dims = [len(TOOLS) + 1] + [space.bins] * space.n_params
    action = np.array([draw(st.integers(0, n - 1)) for n in dims], dtype=np.int64)
    return space, action


@settings(max_examples=300, deadline=None)
@given(params_actions())
def test_any_bins_give_parameters_within_the_param_spec(case):
    space, action = case
    call = space.call(action)
    if action[0] == 0:
        assert call is None
        return
    assert call is not None and call.tool == TOOLS[action[0] - 1]
    spec = tool_info(call.tool).params
    resolved = resolve_params(call.tool, spec, call.params)  # raises when out of range
    for k, p in spec.items():
        assert p.low <= resolved[k] <= p.high
        if p.integer:
            assert call.params.get(k, p.default) == round(call.params.get(k, p.default))
    # Only the first n_params parameters are chosen; the others keep their defaults.
    assert list(call.params) == sorted(list(spec)[: space.n_params])
    # The env's native action decodes to the same call.
    decoded = decode_action(space.native(action, TOOLS), TOOLS)
    assert decoded is not None and decoded.tool == call.tool
    for k, v in call.params.items():
        assert decoded.params[k] == pytest.approx(v, rel=1e-5, abs=1e-6)


@st.composite
def in_range_calls(draw: st.DrawFn) -> tuple[ParamActions, ToolCall]:
    """A params space and a call of one of its tools with any in-range parameters."""
    space = ParamActions(TOOLS, draw(st.integers(2, 16)), draw(st.integers(1, 4)))
    tool = draw(st.sampled_from(TOOLS))
    params = {}
    for k, p in tool_info(tool).params.items():
        if p.integer:
            params[k] = float(draw(st.integers(int(p.low), int(p.high))))
        else:
            params[k] = draw(st.floats(p.low, p.high, allow_nan=False))
    return space, ToolCall(tool, params)


@settings(max_examples=300, deadline=None)
@given(in_range_calls())
def test_in_range_parameters_round_trip_within_one_bin_width(case):
    space, call = case
    back = space.call(space.action(call))
    assert back is not None and back.tool == call.tool
    for k, p in list(tool_info(call.tool).params.items())[: space.n_params]:
        assert abs(back.params[k] - call.params[k]) <= bin_width(p, space.bins) + 1e-9


@pytest.mark.parametrize("bins", [2, 3, 5, 9])
@pytest.mark.parametrize("tool", TOOLS)
def test_every_default_call_is_exactly_representable(tool, bins):
    space = ParamActions(TOOLS, bins, n_params=4)
    back = space.call(space.action(ToolCall(tool)))
    assert back is not None
    spec = tool_info(tool).params
    assert resolve_params(tool, spec, back.params) == resolve_params(tool, spec, {})


def test_bins_span_the_range_in_order():
    p = tool_info("gamma_correction").params["gamma"]
    values = [bin_value(p, j, 9) for j in range(9)]
    assert values[0] == p.low and values[-1] == p.high and p.default in values
    assert values == sorted(values)
    assert [nearest_bin(p, v, 9) for v in values] == list(range(9))


def test_params_space_shape_history_and_mask():
    space = make_actions("params", PRESETS, bins=5, n_params=2)
    assert isinstance(space, ParamActions)
    assert list(space.space().nvec) == [len(TOOLS) + 1, 5, 5]
    gamma = (TOOLS.index("gamma_correction") + 1, 4, 3)  # one parameter: the 3 is ignored
    rows = space.history([gamma, space.stop()], rows=3)
    assert rows.shape == (3, space.row_width())
    assert rows[0, 0] == 1 and rows[0, 1 + gamma[0]] == 1
    assert rows[0, -2:].tolist() == [1.0, 0.0]  # bin 4 of 5; no second parameter
    assert rows[1, 0] == 1 and rows[1, 1] == 1 and not rows[1, 2:].any()  # STOP
    assert not rows[2].any()  # padding
    assert space.mask(gamma).tolist() == [True, True, False]
    assert space.mask(space.stop()).tolist() == [True, False, False]
    with pytest.raises(InvalidActionError, match="not in"):
        space.call((len(TOOLS) + 1, 0, 0))
    with pytest.raises(InvalidActionError, match="not in the policy's tools"):
        space.action(ToolCall("nlm_denoise"))
    with pytest.raises(InvalidOptionError, match="bins"):
        ParamActions(TOOLS, bins=1)
    with pytest.raises(InvalidOptionError, match="catalogue"):
        make_actions("presets", PRESETS)


def test_catalogue_space_is_the_old_one():
    space = make_actions("catalogue", PRESETS)
    assert isinstance(space, CatalogueActions)
    assert space.space().n == len(PRESETS) + 1
    taken = [3, 0, 7]
    expected = action_history(taken, len(PRESETS) + 1, 5)
    assert np.array_equal(space.history(taken, 5), expected)
    assert space.call(2) == PRESETS[1] and space.call(0) is None


def test_catalogue_weights_from_before_action_space_load_and_act_as_before(tmp_path):
    """A policy JSON that predates ``action_space`` (the first shipped policy's) loads as a
    catalogue policy, and the agent acts exactly as the catalogue policy computed by hand."""
    import shutil

    from agents.base import make_agent, rollout
    from agents.ppo.agent import DEFAULT_WEIGHTS
    from agents.ppo.policy import load_policy
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool
    from tir_env.wrappers import native_view

    # a policy of the pixels alone (the shipped one also reads perception v2, --perceived)
    plain = DEFAULT_WEIGHTS.with_name("ppo_dagger_oracle")
    meta = json.loads(plain.with_suffix(".json").read_text())
    old = {k: v for k, v in meta.items() if k not in ("action_space", "actions")}
    stem = tmp_path / "old_policy"
    shutil.copy(plain.with_suffix(".safetensors"), stem.with_suffix(".safetensors"))
    stem.with_suffix(".json").write_text(json.dumps(old))
    policy, spec = load_policy(stem)
    assert spec.action_space == "catalogue" and spec.catalogue == PRESETS
    agent = make_agent("ppo", weights=stem)
    env = TIREnv(pool=SyncToolPool(), patch_size=64, obs_size=64, max_steps=3, metrics=("psnr",))
    episode = rollout(env, agent, seed=1, options={"degradations": ("dark", "noise")})
    # Replay by hand: catalogue index from the policy, one-hot history of indices; the 64 px
    # crops are seen at the policy's training scale (128 px crops), padded.
    env.reset(seed=1, options={"degradations": ("dark", "noise")})
    size, patch, target = spec.obs_size, spec.train_patch, env.target_size()
    taken: list[int] = []
    expected: list[str | None] = []
    for _ in episode.records:
        obs = {
            "image": native_view(env.current_image(), size, patch, target),
            "input": native_view(env.input_image(), size, patch, target),
            "history": action_history(taken, len(PRESETS) + 1, spec.history_len).reshape(-1),
        }
        index = int(policy.predict(obs, deterministic=True)[0])
        expected.append(PRESETS[index - 1].tool if index else None)
        if index == 0:
            break
        taken.append(index)
        env.step(encode_call(PRESETS[index - 1], env.tools))
    assert [r.call.tool if r.call else None for r in episode.records] == expected


TINY = [
    "--n-envs", "2", "--n-steps", "64", "--batch-size", "64", "--n-epochs", "2",
    "--patch-size", "32", "--obs-size", "32", "--max-steps", "2", "--history-len", "2",
    "--channels", "8", "--history-dim", "8", "--net-arch", "16",
    "--checkpoint-every", "128", "--no-verbose", "--pool-workers", "1",
    "--perception-samples", "16", "--perception-epochs", "1",
]  # fmt: skip


def test_tir_train_ppo_params_exports_a_policy_that_tir_bench_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from benchmarks.cli import main
    from benchmarks.evaluate import read_jsonl
    from benchmarks.suites import SUITES, Suite

    stem = tmp_path / "policy"
    argv = ["train", "ppo", "--out", str(tmp_path / "run"), "--total-timesteps", "256"]
    argv += ["--action-space", "params", "--bins", "5", "--export", str(stem), *TINY]
    assert main(argv) in (0, None)
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["action_space"] == "params" and meta["bins"] == 5 and meta["n_params"] == 2
    assert meta["num_timesteps"] == 256
    tiny = Suite("tiny", "1", (("noise",), ("dark",)), patch_size=32, max_steps=2)
    monkeypatch.setitem(SUITES, "tiny", tiny)
    out = tmp_path / "bench"
    argv = ["bench", "tiny", "--agents", "ppo", "--limit", "1", "--out", str(out)]
    assert main([*argv, "--agent-arg", f"ppo.weights={stem}"]) in (0, None)
    records = [r for path in sorted(out.rglob("*.jsonl")) for r in read_jsonl(path)]
    assert records and all(r["agent"] == "ppo" for r in records)
    for record in records:
        assert record["tool_executions"] <= 2


def test_resume_of_a_run_from_before_action_space_matches_its_defaults(tmp_path: Path):
    from agents.ppo.train import TrainConfig, _jsonable, check_run_folder
    from tir_env.errors import RunMismatchError

    saved = _jsonable(TrainConfig(out=str(tmp_path)))
    for key in ("action_space", "bins", "n_params"):  # a config.json written before them
        del saved[key]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert check_run_folder(tmp_path, TrainConfig(out=str(tmp_path), resume=True)) is None
    params = TrainConfig(out=str(tmp_path), resume=True, action_space="params")
    with pytest.raises(RunMismatchError, match="action_space: 'catalogue' -> 'params'"):
        check_run_folder(tmp_path, params)


def test_an_unknown_action_space_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from agents.ppo.actions import make_actions
    from agents.ppo.train import main

    # The flag's choices come from the field's Literal type: argparse refuses, naming them.
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "run"), "--action-space", "presets"])
    assert "choose from 'catalogue', 'params'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(InvalidOptionError, match="presets"):  # Python callers: a named error
        make_actions("presets", ())
