"""The ``vlm`` agent in the registry, in rollouts and in ``tir restore``."""

from __future__ import annotations

import numpy as np
import pytest

from agents.base import agent_names, make_agent, rollout
from agents.vlm.agent import DEFAULT_ADAPTER, DEFAULT_MERGE, DEFAULT_MODEL
from agents.vlm.model import TinySpec, build_tiny_for_tools
from tir_env.env import TIREnv
from tir_env.images import save_image
from tir_env.tools.base import tool_names

KW = dict(images="test", patch_size=32, obs_size=32, max_steps=2, metrics=("psnr", "ssim"))
SHIPPED = all(p.is_dir() for p in (DEFAULT_MODEL, DEFAULT_MERGE, DEFAULT_ADAPTER))


def test_vlm_is_registered():
    assert "vlm" in agent_names()


def test_untrained_model_only_costs_a_stop(tmp_path):
    spec = TinySpec(vocab_size=600, image_size=56)
    path = build_tiny_for_tools(tmp_path / "tiny", tool_names(kinds=("classical",)), spec)
    agent = make_agent("vlm", model=str(path), merge="none", adapter="none", max_new_tokens="16")
    ep = rollout(TIREnv(**KW), agent, seed=0, options={"degradations": ("noise",)})
    assert ep.records and np.isfinite(ep.total_reward)
    assert agent.format_errors == len(agent.errors) <= 1


@pytest.mark.skipif(not SHIPPED, reason="shipped VLM weights missing")
def test_shipped_agent_writes_valid_calls():
    agent = make_agent("vlm")
    env = TIREnv(**KW)
    for seed, combo in enumerate([("dark",), ("rain", "haze")]):
        ep = rollout(env, agent, seed=seed, options={"degradations": combo})
        assert ep.records
    assert agent.format_errors == 0, agent.errors


@pytest.mark.skipif(not SHIPPED, reason="shipped VLM weights missing")
def test_restore_command_with_vlm(tmp_path, capsys):
    from benchmarks.cli import main

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 120, 48)[None, :, None] + np.zeros((40, 48, 3))
    photo = np.clip(ramp + rng.normal(0, 20, ramp.shape), 0, 255).astype(np.uint8)
    src = save_image(tmp_path / "photo.png", photo)
    out = tmp_path / "restored.png"
    assert main(["restore", str(src), "--agent", "vlm", "-o", str(out), "--max-steps", "2"]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out


def test_an_unknown_guard_is_a_named_error():
    from tir_env.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="guard"):
        make_agent("vlm", guard="everything")


@pytest.mark.skipif(not SHIPPED, reason="shipped VLM weights missing")
def test_the_scene_guard_vetoes_darkness_and_haze_calls_the_model_predicts_to_hurt(monkeypatch):
    from agents.ppo import guard
    from tir_env.tools import tool_info

    asked: list[str] = []

    def always_a_loss(env, call):
        asked.append(call.tool)
        return -1.0

    monkeypatch.setattr(guard, "predicted_gain", always_a_loss)
    env = TIREnv(**{**KW, "max_steps": 3})
    agent = make_agent("vlm", guard="scene", mask_sr=False)  # the scene guard alone
    vetoed, ran = set(), []
    for seed, combo in enumerate([("dark",), ("rain", "haze"), ("haze",), ("dark", "noise")]):
        ep = rollout(env, agent, seed=seed, options={"degradations": combo})
        ran += [r.call.tool for r in ep.records if r.call is not None]
        vetoed |= set(agent.episode_extra()["guard_vetoed"])
    scene = {"brightening", "dehazing"}
    assert not [t for t in ran if tool_info(t).task in scene]  # none of them ran
    assert asked and all(tool_info(t).task in scene for t in asked)  # only those were asked
    assert vetoed == {tool_info(t).task for t in asked}


@pytest.mark.skipif(not SHIPPED, reason="shipped VLM weights missing")
def test_the_scene_guard_lets_a_predicted_gain_through(monkeypatch):
    from agents.ppo import guard

    asked: list[str] = []

    def always_a_gain(env, call):
        asked.append(call.tool)
        return 1.0

    monkeypatch.setattr(guard, "predicted_gain", always_a_gain)
    env = TIREnv(**KW)
    plain = make_agent("vlm", guard="none", mask_sr=False, clean_stop=False)  # as trained
    guarded = make_agent("vlm", guard="scene", mask_sr=False, clean_stop=False)
    # episodes where the shipped model writes a brightening or a dehazing call
    for seed, combo in [(1, ("motion_blur", "dark")), (2, ("rain", "haze"))]:
        a = rollout(env, plain, seed=seed, options={"degradations": combo})
        b = rollout(env, guarded, seed=seed, options={"degradations": combo})
        assert [r.call for r in a.records] == [r.call for r in b.records]
        assert guarded.episode_extra() == {"guard_vetoed": []}
    assert len(asked) >= 2  # the guard was asked about those calls and let them run
    assert plain.episode_extra() == {}


def _judging(monkeypatch, rulings):
    """The judge rules ``rulings`` on every episode (its probes cost 2 executions)."""
    from agents.ppo import scene

    monkeypatch.setattr(scene, "judge_scene", lambda env, params, *a, **k: (dict(rulings), 2))


@pytest.mark.skipif(not SHIPPED, reason="shipped VLM weights missing")
def test_the_judge_guard_vetoes_the_scene_calls_it_ruled_out(monkeypatch):
    from tir_env.tools import tool_info

    _judging(monkeypatch, {"brightening": False, "dehazing": False})
    env = TIREnv(**{**KW, "max_steps": 3})
    plain, judged = make_agent("vlm", guard="none"), make_agent("vlm")  # judge: the default
    scene = {"brightening", "dehazing"}
    vetoed, plain_scene = set(), 0
    for seed, combo in [(1, ("motion_blur", "dark")), (2, ("rain", "haze")), (3, ("dark",))]:
        a = rollout(env, plain, seed=seed, options={"degradations": combo})
        b = rollout(env, judged, seed=seed, options={"degradations": combo})
        plain_scene += sum(1 for r in a.records if r.call and tool_info(r.call.tool).task in scene)
        assert not [r for r in b.records if r.call and tool_info(r.call.tool).task in scene]
        extra = judged.episode_extra()
        assert extra["judge_scene"] == {"brightening": False, "dehazing": False}
        vetoed |= set(extra["guard_vetoed"])
        assert b.tool_executions >= 2  # the judge's probes count
    assert plain_scene and vetoed  # the model wrote scene calls, and the judge stopped them


@pytest.mark.skipif(not SHIPPED, reason="shipped VLM weights missing")
def test_the_judge_guard_runs_a_ruled_in_task_before_the_episode_stops(monkeypatch):
    from tir_env.tools import tool_info

    _judging(monkeypatch, {"dehazing": True})
    env = TIREnv(**{**KW, "max_steps": 4})
    plain, judged = make_agent("vlm", guard="none"), make_agent("vlm")  # judge: the default
    added = 0
    for seed, combo in [(0, ("noise",)), (4, ("jpeg",)), (5, ("rain",))]:
        a = rollout(env, plain, seed=seed, options={"degradations": combo})
        b = rollout(env, judged, seed=seed, options={"degradations": combo})
        calls_a = [r.call for r in a.records if r.call is not None]
        calls_b = [r.call for r in b.records if r.call is not None]
        if any(tool_info(c.tool).task == "dehazing" for c in calls_a) or len(calls_a) == 4:
            continue  # the model dehazes itself, or its budget leaves no room
        # the model's own calls, then the plan's dehazing, then STOP
        assert calls_b[:-1] == calls_a and tool_info(calls_b[-1].tool).task == "dehazing"
        added += 1
    assert added  # at least one episode where the agent ran the ruled-in task


class _Seen:
    def __init__(self, low: float) -> None:
        self.probs = {"low_resolution": low}
        self.thresholds = {"low_resolution": 0.5}


class _Context:
    """What mask_sr reads of an env: the target size, the current image, perception's input."""

    def __init__(self, target, side: int) -> None:
        self._target, self._side = target, side

    def target_size(self):
        return self._target

    def current_image(self):
        return np.zeros((self._side, self._side, 3), np.uint8)


@pytest.mark.parametrize(
    ("target", "side", "low", "needless"),
    [
        ((128, 128), 128, 0.0, True),  # already full size
        ((128, 128), 32, 0.0, False),  # a low-resolution input: the upscale is needed
        (None, 512, 0.1, True),  # tir restore: perception reads no low resolution
        (None, 512, 0.9, False),  # tir restore: perception reads low resolution
    ],
)
def test_mask_sr_vetoes_only_an_upscale_nothing_asks_for(
    monkeypatch, target, side, low, needless
) -> None:
    from agents.ppo import guard
    from tir_env.types import ToolCall

    monkeypatch.setattr(guard, "input_reading", lambda env: _Seen(low))
    agent = make_agent("vlm", guard="none")  # mask_sr: the default
    agent._env = _Context(target, side)
    agent._input_seen = None
    assert agent._needless_upscale(ToolCall("bicubic_x4")) is needless
    assert agent._needless_upscale(ToolCall("tv_denoise")) is False
    assert agent._kept(ToolCall("bicubic_x4")) is not needless
    assert agent._kept(ToolCall("tv_denoise"))


class _SeenAll:
    """Perception's reading of every type: ``low`` for the named ones, well above elsewhere."""

    def __init__(self, low: dict[str, float]) -> None:
        from tir_env import perception

        self.thresholds = {t: 0.5 for t in perception.AGENTICIR_TYPES}
        self.probs = {t: low.get(t, 0.9) for t in perception.AGENTICIR_TYPES}


@pytest.mark.parametrize(
    ("floor", "tool", "kept"),
    [
        (0.5, "tv_denoise", False),  # noise read at 0.1 < 0.5 * 0.5: vetoed
        (0.5, "jpeg_tv", False),  # jpeg read at 0.2 < 0.5 * 0.5: vetoed
        (0.3, "jpeg_tv", True),  # 0.2 >= 0.3 * 0.5: kept
        (0.5, "derain_median", True),  # rain read high: kept
        (0.5, "gamma_correction", True),  # darkness is the guard's, never masked here
        (0.5, "bicubic_x4", True),  # low resolution is mask_sr's (off here)
        (0.0, "tv_denoise", True),  # no mask
    ],
)
def test_mask_unseen_vetoes_the_tasks_perception_barely_reads(
    monkeypatch, floor, tool, kept
) -> None:
    from agents.ppo import guard
    from tir_env.types import ToolCall

    low = {"noise": 0.1, "jpeg": 0.2, "dark": 0.0, "low_resolution": 0.0}
    monkeypatch.setattr(guard, "input_reading", lambda env: _SeenAll(low))
    agent = make_agent("vlm", guard="none", mask_sr=False, mask_unseen=floor)
    agent._env = _Context((128, 128), 32)
    agent._input_seen, agent._unseen_tasks, agent._vetoed = None, None, set()
    assert agent._kept(ToolCall(tool)) is kept
    assert agent._kept(None)  # STOP is never vetoed
    if not kept:
        task = {"tv_denoise": "denoising", "jpeg_tv": "jpeg_artifact_removal"}[tool]
        assert agent.episode_extra()["guard_vetoed"] == [task]


@pytest.mark.parametrize("complete", [True, False])
def test_complete_runs_the_plan_for_what_perception_sees_once_the_model_stops(
    tmp_path, monkeypatch, complete
) -> None:
    from agents import baselines
    from agents.ppo import guard
    from tir_env.tools import tool_info

    class Seen:  # perception reads noise, darkness and rain on the input
        present = ["noise", "dark", "rain"]

    monkeypatch.setattr(guard, "input_reading", lambda env: Seen())
    spec = TinySpec(vocab_size=600, image_size=56)
    path = build_tiny_for_tools(tmp_path / "tiny", tool_names(kinds=("classical",)), spec)
    agent = make_agent(  # an untrained model: its first answer is malformed, a STOP
        "vlm",
        model=str(path),
        merge="none",
        adapter="none",
        max_new_tokens="16",
        guard="none",
        complete=str(complete).lower(),
    )
    env = TIREnv(**{**KW, "max_steps": 4})
    ep = rollout(env, agent, seed=0, options={"degradations": ("noise",)})
    tasks = [tool_info(r.call.tool).task for r in ep.records if r.call is not None]
    expected = [
        c.tool for c in baselines.prior_plan(["denoising", "deraining"], env.tools, 4, "tuned")
    ]
    if complete:  # the plan's calls for the seen tasks but darkness (the judge's), in its order
        assert [r.call.tool for r in ep.records if r.call is not None] == expected
        assert sorted(tasks) == ["denoising", "deraining"]
    else:
        assert tasks == []


@pytest.mark.parametrize("floor", ["-0.1", "1.5"])
def test_mask_unseen_outside_0_1_is_a_named_error(floor: str) -> None:
    from tir_env.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match="mask_unseen"):
        make_agent("vlm", mask_unseen=floor)


@pytest.mark.parametrize("present", [[], ["noise"]])
def test_clean_stop_stops_at_once_only_where_perception_reads_the_input_clean(
    tmp_path, monkeypatch, present
) -> None:
    from agents.ppo import guard
    from agents.vlm import policy, prompt
    from tir_env.types import ToolCall

    class Seen:
        pass

    seen = Seen()
    seen.present = present  # type: ignore[attr-defined]
    monkeypatch.setattr(guard, "input_reading", lambda env: seen)

    def generate(vlm, dialogues, sampling, seed=0):  # the model always calls a denoiser
        text = prompt.format_call(ToolCall("tv_denoise"))
        ids = vlm.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [[*ids, vlm.token_id("<|im_end|>")] for _ in dialogues]

    monkeypatch.setattr(policy, "generate", generate)
    spec = TinySpec(vocab_size=600, image_size=56)
    path = build_tiny_for_tools(tmp_path / "tiny", tool_names(kinds=("classical",)), spec)
    calls = []
    for stop in ("false", "true"):
        agent = make_agent(
            "vlm", model=str(path), merge="none", adapter="none", guard="none", clean_stop=stop
        )
        ep = rollout(TIREnv(**KW), agent, seed=0, options={"degradations": ("noise",)})
        calls.append([r.call.tool for r in ep.records if r.call is not None])
        assert agent.episode_extra().get("clean_stop", False) == (stop == "true" and not present)
    assert calls[0] == ["tv_denoise", "tv_denoise"]  # the budget of two, without the option
    assert calls[1] == ([] if not present else calls[0])
