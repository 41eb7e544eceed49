"""Token-level dialogues, scoring and lockstep rollouts of the VLM policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.vlm import policy, prompt
from agents.vlm.model import LoraSpec, TinySpec, build_tiny_for_tools, load_vlm
from agents.vlm.parse import ParseError, Stop
from agents.vlm.trajectories import EpisodeKey, execute, tool_records
from tir_env.env import TIREnv
from tir_env.tools.base import tool_names
from tir_env.types import ToolCall

TOOLS = tuple(tool_names(kinds=("classical",)))
KW = dict(images="test", patch_size=32, obs_size=32, max_steps=3, metrics=("psnr", "ssim"))
KEY = EpisodeKey("chelsea", ("dark", "noise"), 3)


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    spec = TinySpec(vocab_size=600, image_size=56)
    path = build_tiny_for_tools(tmp_path_factory.mktemp("vlm") / "tiny", TOOLS, spec)
    return load_vlm(path, lora=LoraSpec(r=4, alpha=8), trainable=True)


def scripted(answers):
    """A stand-in for ``policy.generate``: answer texts by (position in batch, turn)."""

    def generate(vlm, dialogues, sampling, seed=0):
        out = []
        for i, d in enumerate(dialogues):
            text = answers(i, d.turns)
            ids = vlm.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append([*ids, vlm.token_id("<|im_end|>")])
        return out

    return generate


def test_incremental_tokens_equal_the_whole_dialogue(vlm):
    env = TIREnv(**KW)
    traj = execute(env, KEY, [ToolCall("gamma_correction"), ToolCall("tv_denoise")], "expert")
    d = policy.trajectory_dialogue(vlm, traj, env.tools, 3, "brief")
    msgs = prompt.dialogue(env.tools, traj.images, traj.calls, tool_records(traj), 3, "brief")
    full = vlm.processor.apply_chat_template(msgs, tokenize=False)
    enc = vlm.processor(text=[full], images=d.images, return_tensors="pt")
    ids = enc["input_ids"][0].tolist()
    assert ids[: len(d.tokens)] == d.tokens.ids and len(ids) == len(d.tokens) + 1  # final "\n"
    assert enc["mm_token_type_ids"][0].tolist()[: len(d.tokens)] == d.tokens.mm
    assert torch.equal(torch.cat(d.tokens.pixels), enc["pixel_values"])
    assert d.tokens.n_turns == 3  # two calls and the stop
    answers = [
        vlm.tokenizer.decode(
            [t for t, k in zip(d.tokens.ids, d.tokens.turn, strict=True) if k == n]
        )
        for n in range(3)
    ]
    expected = [prompt.format_call(c) for c in (*traj.calls, None)]
    assert answers == [a + "<|im_end|>" for a in expected]


def test_reference_equals_policy_until_the_adapter_moves(vlm):
    env = TIREnv(**KW)
    traj = execute(env, KEY, [ToolCall("clahe")], "expert")
    tokens = policy.trajectory_dialogue(vlm, traj, env.tools, 3, "brief").tokens
    s, r = policy.score(vlm, tokens, hidden=True), policy.score(vlm, tokens, reference=True)
    assert torch.allclose(s.logp, r.logp) and s.hidden.shape[0] == tokens.n_turns == 2
    assert len(s.logp) == sum(tokens.action) and torch.all(s.logp <= 0)
    bs = [p for n, p in vlm.model.named_parameters() if "lora_B" in n]
    with torch.no_grad():
        for b in bs:
            b.add_(0.05)
    try:
        assert not torch.allclose(policy.score(vlm, tokens).logp, r.logp, atol=1e-4)
    finally:
        with torch.no_grad():
            for b in bs:
                b.sub_(0.05)


def test_untrained_model_rollouts_never_raise(vlm):
    envs = [TIREnv(**KW) for _ in range(3)]
    for e in envs:
        e.reset(seed=1)
    states = policy.rollouts(vlm, envs, policy.Sampling(max_new_tokens=24), seed=0, detail="brief")
    for s in states:
        assert s.done and s.turns
        assert s.format_errors <= 1
        if s.format_errors:
            assert isinstance(s.turns[-1].parsed, ParseError) and s.turns[-1].record is None


def test_group_calls_share_the_pool_cache(vlm, monkeypatch):
    answers = {0: prompt.format_call(ToolCall("clahe")), 1: prompt.format_call(None)}
    monkeypatch.setattr(policy, "generate", scripted(lambda i, turn: answers[turn]))
    first = TIREnv(**KW)
    envs = [first] + [TIREnv(pool=first.pool, **KW) for _ in range(3)]
    for e in envs:
        e.reset(seed=5, options={"image_id": "coffee", "degradations": ("haze",)})
    before = first.pool.stats.as_dict()
    states = policy.rollouts(vlm, envs, policy.Sampling(), seed=0, detail="brief")
    after = first.pool.stats.as_dict()
    assert after["calls"] - before["calls"] == 4
    assert after["executions"] - before["executions"] <= 1  # one run, three cache hits
    for s in states:
        assert [str(t.parsed) for t in s.turns] == [str(ToolCall("clahe")), "STOP"]
        assert isinstance(s.turns[1].parsed, Stop) and s.turns[0].record.call.tool == "clahe"
        assert s.dialogue.tokens.n_turns == 2 and len(s.dialogue.images) == 2


@pytest.mark.parametrize(("shape", "size"), [((16, 16), 56), ((64, 32), 56), ((200, 600), 112)])
def test_fit_image_sizes(shape, size):
    image = np.zeros((*shape, 3), np.uint8)
    pil = policy.fit_image(image, size)
    assert max(pil.size) <= size + 14 and pil.size[0] % 28 == 0 and pil.size[1] % 28 == 0


def test_view_is_the_env_observation_size():
    image = np.zeros((16, 24, 3), np.uint8)
    assert policy.view(image, 64).shape == (64, 64, 3)
    assert policy.view(image, None) is image


def test_a_tiny_tokenizer_keeps_tools_and_degradation_types_whole(vlm):
    """A perception line's type names are one token each (a 2-layer model can read them)."""
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    line = " Perception: " + ", ".join(f"{t} 0.50" for t in AGENTICIR_TYPES)
    tokens = vlm.tokenizer.tokenize(line)
    assert all(t in tokens for t in AGENTICIR_TYPES), tokens
    assert all(vlm.tokenizer.tokenize(t) == [t] for t in (*AGENTICIR_TYPES, *TOOLS))


def _judged_rollout(vlm, monkeypatch, answers, rulings):
    """One scripted rollout of a hazed crop under a judge that rules ``rulings``."""
    from agents.vlm import scene

    monkeypatch.setattr(policy, "generate", scripted(lambda i, turn: answers[turn]))
    monkeypatch.setattr(scene, "judge_episode", lambda env: (dict(rulings), 2))
    env = TIREnv(**KW)
    env.reset(seed=5, options={"image_id": "coffee", "degradations": ("haze", "noise")})
    (state,) = policy.rollouts(vlm, [env], policy.Sampling(), seed=0, detail="brief", judge=True)
    return state


def test_under_the_judge_a_ruled_out_call_is_asked_again_and_a_ruled_in_task_runs_at_stop(
    vlm, monkeypatch
):
    answers = [
        prompt.format_call(ToolCall("dark_channel_prior")),  # dehazing: ruled out
        prompt.format_call(ToolCall("tv_denoise")),
        prompt.format_call(None),  # STOP with brightening, ruled in, undone
    ]
    state = _judged_rollout(vlm, monkeypatch, answers, {"dehazing": False, "brightening": True})
    assert state.done and state.probe_executions == 2 and state.vetoed == {"dehazing"}
    assert [t.vetoed for t in state.turns] == [True, False, False, False]
    assert state.turns[0].record is None  # nothing ran for the vetoed answer
    assert [c.tool for c in state.calls] == ["tv_denoise", "gamma_correction"]
    assert [r.call.tool for r in state.env.history] == ["tv_denoise", "gamma_correction"]
    plan_turn = state.turns[-1]
    assert plan_turn.ids == [] and plan_turn.record.call.tool == "gamma_correction"
    assert state.dialogue.tokens.n_turns == 3  # the model's three answers, not the plan's call
    assert len(state.dialogue.images) == 3  # the input, shown again after the veto, then tv


def test_under_the_judge_two_vetoes_end_the_step_as_a_stop(vlm, monkeypatch):
    dehaze = prompt.format_call(ToolCall("dark_channel_prior"))
    state = _judged_rollout(vlm, monkeypatch, [dehaze, dehaze], {"dehazing": False})
    assert state.done and [t.vetoed for t in state.turns] == [True, True]
    assert state.calls == [] and [r.call for r in state.env.history] == [None]  # a STOP


def test_without_the_judge_the_same_answers_run_as_written(vlm, monkeypatch):
    from agents.vlm import scene

    answers = [prompt.format_call(ToolCall("dark_channel_prior")), prompt.format_call(None)]
    monkeypatch.setattr(policy, "generate", scripted(lambda i, turn: answers[turn]))
    monkeypatch.setattr(scene, "judge_episode", lambda env: pytest.fail("judged without judge"))
    env = TIREnv(**KW)
    env.reset(seed=5, options={"image_id": "coffee", "degradations": ("haze",)})
    (state,) = policy.rollouts(vlm, [env], policy.Sampling(), seed=0, detail="brief")
    assert state.scene is None and [c.tool for c in state.calls] == ["dark_channel_prior"]
