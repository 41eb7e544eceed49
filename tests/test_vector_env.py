from __future__ import annotations

import gymnasium as gym
import numpy as np

import tir_env  # noqa: F401
from tir_env.env import TIREnv
from tir_env.tools.pool import SyncToolPool
from tir_env.vector_env import TIRVectorEnv

KW = dict(patch_size=32, obs_size=32, max_steps=2)


def test_make_vec_entry_point():
    venv = gym.make_vec("TIR-v0", num_envs=2, vectorization_mode="vector_entry_point", **KW)
    assert isinstance(venv, TIRVectorEnv)
    obs, info = venv.reset(seed=0)
    assert obs["image"].shape == (2, 32, 32, 3)
    venv.close()


def test_vector_env_equals_single_envs():
    n, seed, steps = 3, 11, 5
    venv = TIRVectorEnv(num_envs=n, **KW)
    singles = [TIREnv(**KW) for _ in range(n)]
    obs, _ = venv.reset(seed=seed)
    single_obs = [e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]
    for i in range(n):
        np.testing.assert_array_equal(obs["input"][i], single_obs[i]["input"])
    venv.action_space.seed(seed)
    done = np.zeros(n, dtype=bool)
    for _ in range(steps):
        actions = venv.action_space.sample()
        obs, rewards, term, trunc, _ = venv.step(actions)
        for i, env in enumerate(singles):
            action = {"tool": actions["tool"][i], "params": actions["params"][i]}
            if done[i]:  # NEXT_STEP autoreset: this step resets the finished sub-env
                o, r, t, tr = env.reset()[0], 0.0, False, False
            else:
                o, r, t, tr, _ = env.step(action)
            np.testing.assert_array_equal(obs["image"][i], o["image"])
            assert rewards[i] == r and term[i] == t and trunc[i] == tr
        done = term | trunc


def test_vector_env_calls_go_through_one_pool():
    pool = SyncToolPool()
    venv = TIRVectorEnv(num_envs=4, pool=pool, **KW)
    venv.reset(seed=0)
    actions = {
        "tool": np.array([1, 2, 3, 4]),
        "params": np.zeros((4, venv.single_action_space["params"].shape[0]), np.float32),
    }
    venv.step(actions)
    assert pool.stats.calls == 4
