"""Fault injection: the env, the vector env, the tool pool and ``$TIR_TOOLS_TOML`` (issue 19).

Each test's docstring is one line, ``<input or fault> | <behaviour>``; ``docs/reliability.md``
is generated from them (``python -m benchmarks.reliability_doc``).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from hypothesis import given
from hypothesis import strategies as st

import tir_env  # noqa: F401 - registers TIR-v0
from tir_env.env import TIREnv
from tir_env.errors import EpisodeEndedError, InvalidOptionError
from tir_env.spaces import encode_call
from tir_env.tools.base import TOOLS, Tool, ToolInfo, make_tool, spec
from tir_env.tools.pool import (
    LocalToolPool,
    PoolClosedError,
    SyncToolPool,
    ToolPool,
    default_pool,
    set_default_pool,
)
from tir_env.tools.presets import toolbox_tools
from tir_env.types import Param, ToolCall
from tir_env.vector_env import TIRVectorEnv

# An explicit toolbox: the faulty tools below are classical and would join the default one.
SMALL = dict(patch_size=32, obs_size=32, max_steps=2, tools=("gamma_correction", "clahe"))
TIMEOUT_S = 2.0
EXIT, INTERRUPT = 0, 1


# ------------------------------------------------------------------ faulty tools
class Exiter(Tool):
    """Calls ``sys.exit`` (mode 0) or raises ``KeyboardInterrupt`` (mode 1)."""

    info = ToolInfo(
        name="test_faults_exit",
        task="denoising",
        params=spec(mode=Param(0, 1, 0, "0 SystemExit, 1 KeyboardInterrupt", integer=True)),
    )

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        if params["mode"] == EXIT:
            sys.exit(3)
        raise KeyboardInterrupt


class InPlace(Tool):
    """Zeroes its input in place and returns it (a careless tool)."""

    info = ToolInfo(name="test_faults_inplace", task="denoising")

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        return batch.mul_(0.0)


class Float64(Tool):
    """Returns float64 (breaks the dtype contract)."""

    info = ToolInfo(name="test_faults_float64", task="denoising")

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        return batch.double()


FAULTY = (Exiter, InPlace, Float64)


@pytest.fixture(scope="module", autouse=True)
def faulty_tools() -> Iterator[None]:
    for cls in FAULTY:
        TOOLS.add(cls.info.name, cls, overwrite=True)
    make_tool.cache_clear()
    yield
    for cls in FAULTY:
        TOOLS.remove(cls.info.name)
    make_tool.cache_clear()


@pytest.fixture(params=["sync", "local"])
def pool(request: pytest.FixtureRequest) -> Iterator[ToolPool]:
    made: ToolPool = (
        SyncToolPool() if request.param == "sync" else LocalToolPool("cpu", timeout_s=TIMEOUT_S)
    )
    yield made
    made.close()


def _stop(env: TIREnv) -> dict:
    return encode_call(None, env.tools)


def _call(env: TIREnv, tool: str | None = None) -> dict:
    return encode_call(ToolCall(tool or env.tools[0]), env.tools)


# ------------------------------------------------------------------ episode end
def test_step_after_stop_raises_until_reset():
    """env.step after STOP (terminated) | raises EpisodeEndedError until reset; no tool runs"""
    env = TIREnv(**SMALL)
    env.reset(seed=0)
    *_, terminated, _, _ = env.step(_stop(env))
    assert terminated
    calls = env.pool.stats.calls
    with pytest.raises(EpisodeEndedError, match="reset"):
        env.step(_call(env))
    assert env.pool.stats.calls == calls and len(env.history) == 1
    env.reset(seed=1)
    env.step(_call(env))  # a fresh episode steps again


def test_step_after_truncation_raises_until_reset():
    """env.step after max_steps tool calls (truncated) | raises EpisodeEndedError until reset"""
    env = TIREnv(**SMALL)
    env.reset(seed=0)
    truncated = False
    for _ in range(SMALL["max_steps"]):
        *_, truncated, _ = env.step(_call(env))
    assert truncated
    with pytest.raises(EpisodeEndedError, match="truncated"):
        env.step(_call(env))


def test_step_after_end_raises_through_gym_make_wrappers():
    """gym.make('TIR-v0') (PassiveEnvChecker, OrderEnforcing) stepped after STOP | raises EpisodeEndedError through the wrappers"""  # noqa: E501
    env = gym.make("TIR-v0", **SMALL)
    env.reset(seed=0)
    env.step(_stop(env.unwrapped))
    with pytest.raises(EpisodeEndedError):
        env.step(_call(env.unwrapped))


def test_vector_env_next_step_autoreset_still_works():
    """vector env (NEXT_STEP autoreset) stepped across episode ends | finished sub-envs reset themselves; no error"""  # noqa: E501
    venv = TIRVectorEnv(num_envs=2, **SMALL)
    venv.reset(seed=0)
    tools = venv.envs[0].unwrapped.tools
    stop = {"tool": np.zeros(2, dtype=np.int64), "params": np.zeros((2, 1), dtype=np.float32)}
    stop["params"] = np.stack([encode_call(None, tools)["params"]] * 2)
    for _ in range(3):
        _, rewards, terminated, _, _ = venv.step(stop)
        assert np.isfinite(rewards).all()
    assert terminated.all()
    venv.close()


def test_vector_env_disabled_autoreset_refuses_unreset_env():
    """vector env (autoreset DISABLED) stepped after an end without reset_mask | raises EpisodeEndedError instead of silently resetting"""  # noqa: E501
    venv = TIRVectorEnv(num_envs=2, autoreset_mode=AutoresetMode.DISABLED, **SMALL)
    venv.reset(seed=0)
    tools = venv.envs[0].unwrapped.tools
    stop = {
        "tool": np.zeros(2, dtype=np.int64),
        "params": np.stack([encode_call(None, tools)["params"]] * 2),
    }
    _, _, terminated, _, _ = venv.step(stop)
    assert terminated.all()
    with pytest.raises(EpisodeEndedError):
        venv.step(stop)
    venv.reset(options={"reset_mask": np.array([True, True])})
    venv.step(stop)  # after the reset the sub-envs step again
    venv.close()


# ------------------------------------------------------------------ reset options
def test_degradations_string_is_one_name():
    """reset(options={'degradations': 'noise'}) (a string) | one degradation named 'noise', not its characters"""  # noqa: E501
    env = TIREnv(**SMALL)
    _, info = env.reset(seed=0, options={"degradations": "noise"})
    assert info["degradations"] == ["noise"]


@pytest.mark.parametrize(
    "options",
    [{"degradations": ()}, {"degradations": []}, {"image_id": ""}, {"image_id": 3}],
    ids=["empty-tuple", "empty-list", "empty-id", "int-id"],
)
def test_empty_or_mistyped_options_are_refused(options):
    """reset options degradations=() or image_id='' (empty or mistyped) | InvalidOptionError, never a silent random draw"""  # noqa: E501
    env = TIREnv(**SMALL)
    with pytest.raises(InvalidOptionError):
        env.reset(seed=0, options=options)


@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=False),
        st.lists(st.integers(), min_size=1, max_size=3),
        st.just(()),
        st.just(""),
    )
)
def test_degradations_of_any_wrong_type_are_refused(value):
    """reset(options={'degradations': <int, float, list of ints, (), ''>}) | InvalidOptionError naming the option"""  # noqa: E501
    env = TIREnv(**SMALL)
    with pytest.raises(InvalidOptionError, match="degradations"):
        env.reset(seed=0, options={"degradations": value})


# ------------------------------------------------------------------ the pool
@pytest.mark.parametrize("mode", [EXIT, INTERRUPT], ids=["SystemExit", "KeyboardInterrupt"])
def test_base_exception_in_a_tool_resolves_the_future(mode):
    """tool raising SystemExit or KeyboardInterrupt in a pool worker | the call fails with ToolExecutionError naming it; the future resolves, the pool keeps working"""  # noqa: E501
    with LocalToolPool("cpu", timeout_s=TIMEOUT_S) as pool:
        future = pool.submit(torch.rand(1, 3, 8, 8), ToolCall("test_faults_exit", {"mode": mode}))
        try:
            result = future.result(timeout=TIMEOUT_S + 10)
        except FutureTimeout:
            pytest.fail("the future never resolved")
        assert not result.ok and result.error is not None
        assert result.error.startswith("ToolExecutionError")
        assert ("SystemExit", "KeyboardInterrupt")[mode] in result.error
        assert pool.run(torch.rand(1, 3, 8, 8), ToolCall("gamma_correction")).ok


def test_system_exit_in_a_sync_pool_tool_is_a_failed_call():
    """tool calling sys.exit() in the SyncToolPool | the call fails with ToolExecutionError; the process goes on"""  # noqa: E501
    result = SyncToolPool().run(torch.rand(1, 3, 8, 8), ToolCall("test_faults_exit", {"mode": 0}))
    assert not result.ok and "SystemExit" in str(result.error)


def test_tool_editing_its_input_in_place_corrupts_nothing(pool):
    """tool zeroing its input tensor in place | the caller's tensor is unchanged (the tool gets a copy)"""  # noqa: E501
    image = torch.rand(1, 3, 8, 8)
    before = image.clone()
    result = pool.run(image, ToolCall("test_faults_inplace"))
    assert result.ok and torch.equal(image, before)


def test_tool_editing_its_input_keeps_the_env_input_image(pool):
    """env step with a tool editing its input in place | env.input_image() and obs['input'] unchanged"""  # noqa: E501
    env = TIREnv(pool=pool, **{**SMALL, "tools": ("test_faults_inplace",)})
    obs, _ = env.reset(seed=0)
    before = env.input_image().copy()
    obs, *_ = env.step(_call(env))
    assert np.array_equal(env.input_image(), before)
    assert env.current_image().max() == 0  # the tool's output is used, its input was a copy
    assert obs["input"].max() > 0


def test_float64_output_is_refused(pool):
    """tool returning float64 | the call fails with ToolExecutionError naming the dtype (not converted silently)"""  # noqa: E501
    result = pool.run(torch.rand(1, 3, 8, 8), ToolCall("test_faults_float64"))
    assert not result.ok and "ToolExecutionError" in str(result.error)
    assert "float64" in str(result.error)


@pytest.fixture
def fresh_default() -> Iterator[None]:
    previous = set_default_pool(None)
    yield
    set_default_pool(previous)


def test_closed_default_pool_is_replaced(fresh_default):
    """default_pool().close() then an env step | the env gets a fresh default pool; the tool runs (no silent reward -1)"""  # noqa: E501
    env = TIREnv(**SMALL)
    env.reset(seed=0)
    default_pool().close()
    _, _, _, _, info = env.step(_call(env))
    assert info["error"] is None
    assert not default_pool().closed


def test_closed_default_pool_is_replaced_for_the_vector_env(fresh_default):
    """default_pool().close() then a vector env step | the step runs on a fresh default pool"""
    venv = TIRVectorEnv(num_envs=2, **SMALL)
    venv.reset(seed=0)
    default_pool().close()
    tools = venv.envs[0].unwrapped.tools
    call = encode_call(ToolCall(tools[0]), tools)
    actions = {"tool": np.array([call["tool"]] * 2), "params": np.stack([call["params"]] * 2)}
    _, _, _, _, info = venv.step(actions)
    assert all(e is None for e in info["error"])
    venv.close()


def test_closed_explicit_pool_is_a_named_error_at_the_step():
    """an env given a pool that is then closed, stepped | PoolClosedError at the step (not reward -1)"""  # noqa: E501
    pool = LocalToolPool("cpu")
    env = TIREnv(pool=pool, **SMALL)
    env.reset(seed=0)
    pool.close()
    with pytest.raises(PoolClosedError, match="closed"):
        env.step(_call(env))


# ------------------------------------------------------------------ $TIR_TOOLS_TOML
class _Opaque:
    """A pickled object: loading it needs code (refused by weights_only=True)."""

    def __init__(self) -> None:
        self.payload = "not a tensor"


@pytest.fixture
def toml_names() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        if name in TOOLS:
            TOOLS.remove(name)
    make_tool.cache_clear()


def _load_toml(monkeypatch: pytest.MonkeyPatch, toml: Path) -> list[str]:
    """Point $TIR_TOOLS_TOML at ``toml`` and trigger its registration; return the warnings."""
    monkeypatch.setenv("TIR_TOOLS_TOML", str(toml))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        toolbox_tools("classical")  # any registry lookup reads $TIR_TOOLS_TOML once
    return [str(w.message) for w in caught]


def _entry(name: str, path: str, task: str = "denoising") -> str:
    return f'[[tool]]\nname = "{name}"\ntask = "{task}"\npath = "{path}"\n'


def _good(folder: Path) -> Path:
    from safetensors.torch import save_file

    path = folder / "good.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(path))
    return path


@pytest.mark.parametrize(
    "bad",
    ["escape", "pickle", "missing", "builtin"],
)
def test_tools_toml_bad_entry_is_refused_and_later_entries_register(
    bad, tmp_path, monkeypatch, toml_names
):
    """$TIR_TOOLS_TOML entry with ../../../../etc/passwd, a code pickle .pth, a missing file or a built-in's name | refused with a named error at registration (warning); never in the 'full' toolbox; the valid entry after it registers"""  # noqa: E501
    folder = tmp_path / "tools"
    folder.mkdir()
    _good(folder)
    torch.save({"w": torch.zeros(1), "obj": _Opaque()}, folder / "code.pth")
    name = f"test_faults_bad_{bad}"
    entries = {
        "escape": _entry(name, "../../../../etc/passwd"),
        "pickle": _entry(name, "code.pth"),
        "missing": _entry(name, "nothing.safetensors"),
        "builtin": _entry("gamma_correction", "good.safetensors", task="brightening"),
    }
    toml = folder / "tools.toml"
    toml.write_text(entries[bad] + _entry("test_faults_good", "good.safetensors"))
    toml_names += [name, "test_faults_good"]
    messages = _load_toml(monkeypatch, toml)
    named = ("ToolRegistrationError", "CheckpointError", "WeightsNotFoundError")
    assert any("refused" in m and any(n in m for n in named) for m in messages), messages
    full = toolbox_tools("full")
    assert name not in full and "test_faults_good" in full
    assert TOOLS.get("gamma_correction") is not None  # the built-in is untouched
    assert make_tool("gamma_correction").info.kind == "classical"


def test_tools_toml_pickle_is_refused_by_the_direct_api(tmp_path, toml_names):
    """register_from_toml with a .pth that needs code to unpickle | CheckpointError at registration, before any call"""  # noqa: E501
    from tir_env.errors import CheckpointError
    from tir_env.tools.pretrained import register_from_toml

    torch.save({"obj": _Opaque()}, tmp_path / "code.pth")
    toml = tmp_path / "tools.toml"
    toml.write_text(_entry("test_faults_direct", "code.pth"))
    toml_names.append("test_faults_direct")
    with pytest.raises(CheckpointError, match="weights_only"):
        register_from_toml(toml)
    assert "test_faults_direct" not in TOOLS
