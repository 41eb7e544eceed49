"""The README's Stable-Baselines3 snippet runs, and sb3_env warns about images SB3 cannot read."""

from __future__ import annotations

import gymnasium as gym
import pytest

import tir_env  # noqa: F401
from tir_env.wrappers import SB3_CNN_MIN_SIDE, SmallImageWarning, sb3_env

SMALL = dict(patch_size=64, max_steps=2, metrics=("psnr", "ssim"))


def test_ppo_multi_input_policy_learns_on_sb3_env() -> None:
    from stable_baselines3 import PPO

    env = sb3_env(gym.make("TIR-v0", obs_size=64, **SMALL))
    model = PPO("MultiInputPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0)
    model.learn(16)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(int(action))


@pytest.mark.parametrize(
    ("side", "warned"), [(SB3_CNN_MIN_SIDE - 4, True), (SB3_CNN_MIN_SIDE, False)]
)
def test_sb3_env_warns_below_the_default_cnn_size(side: int, warned: bool, recwarn) -> None:
    sb3_env(gym.make("TIR-v0", obs_size=side, **SMALL))
    assert any(issubclass(w.category, SmallImageWarning) for w in recwarn) is warned
