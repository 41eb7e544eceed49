from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.base import make_agent, rollout
from agents.ppo.agent import DEFAULT_WEIGHTS, PPOAgent
from agents.ppo.catalogue import PRESETS
from agents.ppo.features import TIRFeatures, pretrain_perception
from agents.ppo.policy import last_checkpoint, load_policy
from agents.ppo.vec_env import TIRSB3VecEnv
from tir_env.env import TIREnv
from tir_env.errors import WeightsNotFoundError
from tir_env.tools.pool import SyncToolPool
from tir_env.types import ToolCall
from tir_env.wrappers import sb3_env

CATALOGUE = (ToolCall("gamma_correction"), ToolCall("dct_denoise"), ToolCall("bicubic_x4"))
ENV = dict(patch_size=32, max_steps=3, metrics=("psnr",))
#: A few hundred steps of the real recipe on 32 px patches (a few seconds on one core).
TINY = [
    "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "2",
    "--patch-size", "32", "--obs-size", "32", "--max-steps", "3", "--history-len", "3",
    "--channels", "8", "16", "--history-dim", "16", "--net-arch", "16",
    "--checkpoint-every", "64", "--no-verbose", "--pool-workers", "1",
    "--perception-samples", "16", "--perception-epochs", "1",
]  # fmt: skip


def _space(size: int, history: int = 12) -> gym.spaces.Dict:
    image = gym.spaces.Box(0, 255, (3, size, size), np.uint8)
    vector = gym.spaces.Box(0.0, 1.0, (history,), np.float32)
    return gym.spaces.Dict({"image": image, "input": image, "history": vector})


@pytest.mark.parametrize("size", [32, 48, 64, 128])
def test_features_extractor_works_from_32_px(size):
    features = TIRFeatures(_space(size), channels=(8, 16, 16), history_dim=8, n_labels=5)
    obs = {
        "image": torch.rand(2, 3, size, size),
        "input": torch.rand(2, 3, size, size),
        "history": torch.rand(2, 12),
    }
    out = features(obs)
    assert out.shape == (2, features.features_dim) == (2, 2 * (2 * 16 + 5) + 8)
    assert features.degradation_logits(obs["image"]).shape == (2, 5)
    with pytest.raises(ValueError, match="lacks"):
        TIRFeatures(gym.spaces.Dict({"image": _space(32)["image"]}))
    with pytest.raises(ValueError, match=">= 32 px"):
        TIRFeatures(_space(16))


def test_perception_pretraining_learns_and_keeps_the_freeze():
    features = TIRFeatures(_space(32), channels=(8, 16), history_dim=8, n_labels=1, freeze=True)
    generator = torch.Generator().manual_seed(0)
    dark = (torch.rand(32, 3, 32, 32, generator=generator) * 60).to(torch.uint8)
    bright = 255 - dark
    images, labels = torch.cat([dark, bright]), torch.cat([torch.ones(32, 1), torch.zeros(32, 1)])
    losses = []
    pretrain_perception(
        features,
        images,
        labels,
        epochs=15,
        seed=0,
        lr=1e-2,
        log=lambda _, loss: losses.append(loss),
    )
    assert losses[-1] < 0.5 * losses[0]
    assert not any(p.requires_grad for p in features.perception_parameters())
    assert all(p.requires_grad for p in features.history.parameters())


def test_vec_env_batches_calls_and_resets_like_sb3():
    pool = SyncToolPool()
    venv = TIRSB3VecEnv(3, CATALOGUE, obs_size=32, history_len=3, pool=pool, **ENV)
    venv.seed(0)
    obs = venv.reset()
    assert obs["image"].shape == (3, 3, 32, 32) and obs["history"].shape == (3, 3 * 5)
    obs, rewards, dones, infos = venv.step(np.array([1, 2, 0]))
    assert pool.stats.calls == 2  # STOP runs no tool
    assert dones.tolist() == [False, False, True]
    assert "terminal_observation" in infos[2] and not infos[2]["TimeLimit.truncated"]
    assert infos[2]["terminal_observation"]["history"][1] == 1.0  # STOP recorded before reset
    assert not obs["history"][2].any()  # env 2 already restarted
    assert obs["history"][0][2] == 1.0 and "psnr" in infos[0]
    for _ in range(2):
        obs, rewards, dones, infos = venv.step(np.array([1, 1, 1]))
    assert dones[:2].all() and infos[0]["TimeLimit.truncated"]  # max_steps=3 reached
    assert rewards.dtype == np.float32
    venv.close()


def test_vec_env_observations_match_the_single_env_wrappers():
    venv = TIRSB3VecEnv(2, CATALOGUE, obs_size=32, history_len=3, pool=SyncToolPool(), **ENV)
    venv.seed(7)
    vec_obs = venv.reset()
    vec_obs, *_ = venv.step(np.array([1, 3]))
    for i, action in enumerate([1, 3]):
        env = sb3_env(TIREnv(obs_size=32, **ENV), CATALOGUE, history_len=3)
        env.reset(seed=7 + i)
        obs, *_ = env.step(action)
        for key in obs:
            np.testing.assert_array_equal(vec_obs[key][i], obs[key])


def _train(out: Path, steps: int, *extra: str):
    from agents.ppo.train import main

    return main(["--out", str(out), "--total-timesteps", str(steps), *TINY, *extra])


def test_smoke_training_changes_parameters_and_checkpoints_load(tmp_path: Path):
    from stable_baselines3 import PPO

    from agents.ppo.train import _policy_kwargs, degradation_labels, parse_config

    model = _train(tmp_path, 256, "--export", str(tmp_path / "policy"))
    assert model.num_timesteps == 256
    # The same seed builds the same initial policy: pretraining moved the CNN, PPO the rest.
    cfg = parse_config(["--out", str(tmp_path), *TINY])
    kwargs = _policy_kwargs(cfg, len(degradation_labels(cfg.combos)))
    venv = TIRSB3VecEnv(2, PRESETS, obs_size=32, history_len=3, pool=SyncToolPool(), **ENV)
    initial = PPO("MultiInputPolicy", venv, policy_kwargs=kwargs, seed=0).policy.state_dict()
    final = model.policy.state_dict()
    changed = [not torch.equal(initial[k], final[k]) for k in final]
    assert sum(changed) >= 0.9 * len(changed)
    # PPO trained the heads and left the frozen perception CNN alone.
    early = PPO.load(tmp_path / "checkpoints" / "ppo_64_steps.zip", print_system_info=False)
    early_state = early.policy.state_dict()
    assert not torch.equal(early_state["action_net.weight"], final["action_net.weight"])
    cnn = [k for k in final if k.startswith("features_extractor.cnn")]
    assert cnn and all(torch.equal(early_state[k], final[k]) for k in cnn)
    assert (tmp_path / "perception.json").is_file()
    checkpoint = last_checkpoint(tmp_path / "checkpoints")
    assert checkpoint is not None and checkpoint.name == "ppo_256_steps.zip"
    assert PPO.load(checkpoint, print_system_info=False).num_timesteps == 256
    # The exported policy (safetensors + JSON) acts like the trained one.
    policy, spec = load_policy(tmp_path / "policy")
    assert spec.catalogue == PRESETS and spec.obs_size == 32 and spec.extra["num_timesteps"] == 256
    obs = {k: v[0] for k, v in venv.reset().items()}
    assert policy.predict(obs, deterministic=True)[0] == model.predict(obs, deterministic=True)[0]
    assert (tmp_path / "logs" / "progress_00000000.csv").is_file()
    assert any((tmp_path / "tb").iterdir())


def test_resume_continues_step_counter_and_optimizer_state(tmp_path: Path):
    from stable_baselines3 import PPO

    first = _train(tmp_path, 128)
    saved = PPO.load(last_checkpoint(tmp_path / "checkpoints"), print_system_info=False)
    assert saved.num_timesteps == 128
    adam_steps = [s["step"].item() for s in saved.policy.optimizer.state_dict()["state"].values()]
    resumed = _train(tmp_path, 256, "--resume")
    assert resumed.num_timesteps == 256
    assert resumed._n_updates == 2 * first._n_updates  # two more rollouts of the same size
    after = [s["step"].item() for s in resumed.policy.optimizer.state_dict()["state"].values()]
    # A fresh optimizer would count only the resumed segment's steps.
    assert after == [2 * s for s in adam_steps]
    assert (tmp_path / "logs" / "progress_00000128.csv").is_file()
    assert last_checkpoint(tmp_path / "checkpoints").name == "ppo_256_steps.zip"


def test_agent_runs_an_exported_policy_deterministically(tmp_path: Path):
    _train(tmp_path, 64, "--export", str(tmp_path / "policy"))
    agent = make_agent("ppo", weights=str(tmp_path / "policy"))
    env = TIREnv(pool=SyncToolPool(), patch_size=32, obs_size=64, max_steps=3)
    a = rollout(env, agent, seed=3)
    b = rollout(env, agent, seed=3)
    assert [r.call for r in a.records] == [r.call for r in b.records]
    assert 1 <= len(a.records) <= 3 and a.tool_executions <= 3
    assert all(r.call is None or r.call.tool in {c.tool for c in PRESETS} for r in a.records)


def test_agent_sees_other_sizes_at_its_training_scale(tmp_path: Path):
    """On crops of its training size the agent sees what training saw; elsewhere no resize."""
    from tir_env.wrappers import native_view, policy_image

    _train(tmp_path, 64, "--export", str(tmp_path / "policy"))
    agent = make_agent("ppo", weights=str(tmp_path / "policy"))
    patch = agent.spec.train_patch
    for side in (patch, 2 * patch, patch * 3 // 4):
        env = TIREnv(pool=SyncToolPool(), patch_size=side, obs_size=64, max_steps=3)
        obs, info = env.reset(seed=1, options={"degradations": ("noise",)})
        agent.reset(env, info)
        seen = agent.policy_observation(obs)["image"]
        resized = policy_image(env.current_image(), agent.spec.obs_size)
        if side >= patch:  # the training size, or a larger image: resized whole
            np.testing.assert_array_equal(seen, resized)
        else:  # a smaller crop: padded at the training scale, not stretched
            expected = native_view(env.current_image(), agent.spec.obs_size, patch)
            np.testing.assert_array_equal(seen, expected)
            assert not np.array_equal(seen, resized)


def test_missing_policy_is_a_named_error(tmp_path: Path):
    with pytest.raises(WeightsNotFoundError, match="nowhere.safetensors"):
        PPOAgent(weights=tmp_path / "nowhere")


@pytest.mark.skipif(
    not DEFAULT_WEIGHTS.with_suffix(".safetensors").is_file(), reason="no shipped policy yet"
)
def test_shipped_policy_loads_and_restores():
    agent = make_agent("ppo")
    assert agent.spec.catalogue == PRESETS
    env = TIREnv(pool=SyncToolPool(), patch_size=64, obs_size=64, max_steps=5, metrics=("psnr",))
    ep = rollout(env, agent, seed=0, options={"degradations": ("dark", "noise")})
    assert ep.tool_executions <= 5


def test_cli_parses_train_ppo():
    from benchmarks.cli import build_parser

    args = build_parser().parse_args(["train", "ppo", "--total-timesteps", "5", "--resume"])
    assert args.algo == "ppo" and args.train_args == ["--total-timesteps", "5", "--resume"]


@pytest.mark.parametrize("params", ["default", "tuned"])
def test_vec_env_runs_the_fitted_parameters_when_told(params: str) -> None:
    from agents.tuned import tuned_params, with_tuned_params

    tuned = next(i for i, c in enumerate(PRESETS) if c.tool in tuned_params() and not c.params)
    venv = TIRSB3VecEnv(1, PRESETS, obs_size=32, history_len=3, pool=SyncToolPool(), **ENV)
    venv.params = params  # as the constructor's argument sets it
    venv.seed(0)
    venv.reset()
    venv.step(np.array([tuned + 1]))
    call = venv.tir_envs[0].history[-1].call
    expected = with_tuned_params(PRESETS[tuned]) if params == "tuned" else PRESETS[tuned]
    assert call is not None and call.tool == expected.tool
    for name, value in expected.params.items():
        assert call.params[name] == pytest.approx(value)
