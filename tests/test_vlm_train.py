"""Smoke tests of the SFT and RL recipes: two steps each change the adapter."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from agents.vlm import grpo, policy, prompt, sft
from agents.vlm import trajectories as T
from agents.vlm.model import TinySpec, build_tiny_for_tools
from tir_env.env import TIREnv
from tir_env.tools.base import tool_names
from tir_env.types import ToolCall

TOOLS = tuple(tool_names(kinds=("classical",)))
CALL = prompt.format_call(ToolCall("gamma_correction"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = TinySpec(vocab_size=600, image_size=56)
    return build_tiny_for_tools(tmp_path_factory.mktemp("vlm") / "tiny", TOOLS, spec)


def _lora_b_norm(adapter_dir):
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    return sum(float(v.abs().sum()) for k, v in weights.items() if "lora_B" in k)


def _scripted(monkeypatch):
    """Answers: even rollouts call a tool then stop, odd ones write nonsense (format error)."""

    def generate(vlm, dialogues, sampling, seed=0):
        out = []
        for i, d in enumerate(dialogues):
            text = prompt.format_call(None) if d.turns else (CALL if i % 2 == 0 else "hello")
            ids = vlm.tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append([*ids, vlm.token_id("<|im_end|>")])
        return out

    monkeypatch.setattr(policy, "generate", generate)


def test_sft_two_steps_change_the_adapter(tiny, tmp_path):
    env = TIREnv(images="test", patch_size=32, max_steps=3, metrics=("psnr", "ssim"))
    path = [ToolCall("gamma_correction"), ToolCall("tv_denoise")]
    trajs = [
        T.execute(env, T.EpisodeKey(i, ("dark", "noise"), 1), path, "expert")
        for i in ("chelsea", "coffee")
    ]
    T.save(trajs[:1], tmp_path / "train")
    T.save(trajs[1:], tmp_path / "val")
    cfg = sft.SFTConfig(
        model=str(tiny),
        train_data=(str(tmp_path / "train"),),
        val_data=(str(tmp_path / "val"),),
        out=str(tmp_path / "out"),
        steps=2,
        batch=1,
        eval_every=1,
        images="test",
        patch_size=32,
        perturb_p=1.0,
        task_eval_seeds=0,
    )
    summary = sft.main(cfg)
    assert summary["train_trajectories"] == 2  # the expert and one perturbed variant
    assert summary["val_loss_after"] < summary["val_loss_before"]
    assert _lora_b_norm(tmp_path / "out" / "adapter") > 0  # B starts at zero
    log = [json.loads(x) for x in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 2]


def _grpo_cfg(tiny, out, **kw):
    base = dict(
        model=str(tiny),
        sft_adapter=None,
        out=str(out),
        steps=2,
        images_per_step=1,
        group_size=2,
        eval_every=0,
        eval_episodes=2,
        save_every=1,
        images="test",
        patch_size=32,
        max_steps=2,
        reward_metrics=("psnr", "ssim"),
    )
    return grpo.GRPOConfig(**{**base, **kw})


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_rl_two_steps_change_the_adapter_and_resume(tiny, tmp_path, monkeypatch, algo):
    _scripted(monkeypatch)
    summary = grpo.main(_grpo_cfg(tiny, tmp_path, algo=algo))
    assert summary["last_eval"]["eval/greedy/format_errors"] == 0.5
    assert _lora_b_norm(tmp_path / "adapter") > 0
    ckpt = tmp_path / "checkpoint"
    assert (ckpt / "state.json").is_file() and (ckpt / "optimizer.pt").is_file()
    assert (ckpt / "value_head.safetensors").is_file() == (algo == "ppo")
    assert list((tmp_path / "tb").iterdir())  # TensorBoard event file
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    train = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in train] == [1, 2]
    for key in ("kl", "format_errors", "tool_executions", "cache_hits", "gain/psnr", "clipfrac"):
        assert key in train[0]
    assert train[0]["format_errors"] == 0.5 and train[0]["reward/group_std"] > 0
    grpo.main(_grpo_cfg(tiny, tmp_path, algo=algo, steps=3, resume=True))
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "reward/mean" in r] == [1, 2, 3]


def test_advantages_are_normalised_within_groups():
    adv = grpo.grpo_advantages([1.0, 3.0, 5.0, 5.0], group_size=2)
    assert adv[0] == pytest.approx(-adv[1]) and adv[0] < 0
    assert adv[2:] == [0.0, 0.0]  # no spread, no signal


def test_the_greedy_baseline_reinforces_only_samples_that_beat_it():
    # group 1: greedy scored 4; group 2: no spread, so the scale is 1
    adv = grpo.grpo_advantages([1.0, 5.0, 2.0, 2.0], group_size=2, baselines=[4.0, 3.0])
    assert adv[0] < 0 < adv[1] and adv[1] == pytest.approx(0.5)
    assert adv[2:] == [-1.0, -1.0]
    with pytest.raises(ValueError, match="baseline"):
        grpo.GRPOConfig(baseline="mean")  # type: ignore[arg-type]


def test_a_self_critical_run_logs_its_baseline(tiny, tmp_path, monkeypatch):
    _scripted(monkeypatch)
    grpo.main(_grpo_cfg(tiny, tmp_path, baseline="greedy", steps=1))
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    train = [r for r in rows if "reward/mean" in r]
    assert 0.0 <= train[0]["baseline/beaten"] <= 1.0 and "baseline/greedy_return" in train[0]


@pytest.mark.parametrize(
    ("degradations", "first", "kept"),
    [
        (("defocus_blur",), "defocus_wiener", True),
        (("defocus_blur",), "lanczos_x4_sharpen", False),  # the expert upscaled first
        (("noise",), None, True),  # no call: nothing named wrongly
        (("haze", "rain"), "derain_median", True),  # pairs are left alone
        (("haze", "rain"), "bicubic_x4", True),
    ],
)
def test_task_first_singles_keeps_single_episodes_that_address_their_degradation(
    degradations, first, kept
):
    calls = [] if first is None else [ToolCall(first, {})]
    t = T.Trajectory(T.EpisodeKey("chelsea", degradations, 0), calls, [], [])
    assert sft.addresses_first(t) is kept


def test_a_run_under_the_judge_plays_every_rollout_judged_and_logs_it(tiny, tmp_path, monkeypatch):
    from agents.vlm import scene

    _scripted(monkeypatch)
    judged: list[int] = []

    def judge_episode(env):
        judged.append(1)
        return {"dehazing": True}, 0

    monkeypatch.setattr(scene, "judge_episode", judge_episode)
    grpo.main(_grpo_cfg(tiny, tmp_path, guard="judge", baseline="greedy", steps=1))
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    train = [r for r in rows if "reward/mean" in r]
    # the rollouts that brighten stop with dehazing undone: the plan's call runs then
    assert train[0]["judge/ruled_in_runs"] > 0 and train[0]["judge/vetoed"] == 0
    # 2 evaluations x 2 modes x 2 episodes, and the step's 2 sampled and 1 greedy rollouts
    assert len(judged) == 2 * 2 * 2 + 3


def test_the_judge_needs_grpo() -> None:
    with pytest.raises(ValueError, match="judge"):
        grpo.GRPOConfig(guard="judge", algo="ppo")
    with pytest.raises(ValueError, match="guard"):
        grpo.GRPOConfig(guard="scene")  # type: ignore[arg-type]
