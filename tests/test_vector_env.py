from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import tir_env  # noqa: F401
from tir_env.env import TIREnv
from tir_env.history import encode_history
from tir_env.tools.pool import LocalToolPool, SyncToolPool
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


def _sub_info(infos: dict, i: int) -> dict:
    """Sub-env ``i``'s info out of a vector env's (Gymnasium nests dicts, one array per key)."""
    return {
        k: _sub_info(v, i) if isinstance(v, dict) else v[i]
        for k, v in infos.items()
        if not k.startswith("_")
    }


def _same_info(a: dict, b: dict) -> None:
    """Infos equal up to metric float rounding (batched vs one image); wall times aside."""
    for key in ("image_id", "degradations", "step", "tool", "error"):
        assert a[key] == b[key], key
    for key in ("metrics", "metrics_input", "reward_terms"):
        assert a[key].keys() == b[key].keys(), key
        for name in a[key]:
            assert a[key][name] == pytest.approx(b[key][name], abs=1e-6), (key, name)
    assert len(a["history"]) == len(b["history"])
    for ra, rb in zip(a["history"], b["history"], strict=True):
        assert ra.call == rb.call and ra.error == rb.error
        assert ra.reward == pytest.approx(rb.reward, abs=1e-6)
        assert ra.metrics_after == pytest.approx(rb.metrics_after, abs=1e-6)


@pytest.mark.parametrize(
    ("reward", "threads"), [("psnr", False), ("adaptive", False), ("psnr", True)]
)
def test_batched_scoring_gives_the_rewards_and_infos_of_single_envs(reward, threads):
    """Scoring the sub-envs' images in batches changes no reward, metric or record.

    With worker threads (one call per invocation, so tool outputs are those of single calls)
    results arrive in any order and the vector env finishes them lot by lot.
    """
    n, seed, steps = 4, 5, 7
    kw = dict(KW, reward=reward, metrics=("psnr", "ssim"), max_steps=3)
    pool = LocalToolPool(device="cpu", max_batch=1, workers=2) if threads else SyncToolPool()
    venv = TIRVectorEnv(num_envs=n, pool=pool, **kw)
    singles = [TIREnv(pool=SyncToolPool(), **kw) for _ in range(n)]
    _, infos = venv.reset(seed=seed)
    for i, env in enumerate(singles):
        _same_info(
            _sub_info(infos, i),
            env.reset(seed=seed + i)[1],
        )
    rng = np.random.default_rng(seed)
    width = venv.single_action_space["params"].shape[0]
    done = np.zeros(n, dtype=bool)
    for _ in range(steps):
        # Tools only (never STOP), so every step scores a new image in every sub-env.
        actions = {
            "tool": rng.integers(1, len(singles[0].tools) + 1, size=n),
            "params": rng.random((n, width), dtype=np.float32),
        }
        obs, rewards, term, trunc, infos = venv.step(actions)
        for i, env in enumerate(singles):
            if done[i]:
                o, info = env.reset()
                r, t, tr = 0.0, False, False
            else:
                action = {"tool": actions["tool"][i], "params": actions["params"][i]}
                o, r, t, tr, info = env.step(action)
            np.testing.assert_array_equal(obs["image"][i], o["image"])
            np.testing.assert_array_equal(obs["input"][i], o["input"])
            assert rewards[i] == pytest.approx(r, abs=1e-6)
            assert (term[i], trunc[i]) == (t, tr)
            _same_info(_sub_info(infos, i), info)
        done = term | trunc
    pool.close()


def test_vector_env_scores_all_sub_envs_in_one_batch(monkeypatch):
    """One scoring call per step for all sub-envs (stepping and resetting), not one each."""
    import tir_env.vector_env as vector_module

    sizes: list[int] = []
    real = vector_module.score_images

    def spy(images, references, names, device):
        sizes.append(len(images))
        return real(images, references, names, device)

    monkeypatch.setattr(vector_module, "score_images", spy)
    n = 4
    venv = TIRVectorEnv(num_envs=n, pool=SyncToolPool(), **dict(KW, max_steps=1))
    venv.reset(seed=0)
    width = venv.single_action_space["params"].shape[0]
    actions = {"tool": np.arange(1, n + 1), "params": np.zeros((n, width), np.float32)}
    venv.step(actions)  # every sub-env runs a tool, then truncates (max_steps=1)
    venv.step(actions)  # every sub-env resets (NEXT_STEP): their inputs are scored together
    assert sizes == [n, n]


def test_a_step_looks_up_a_few_tools_not_the_whole_toolbox(monkeypatch):
    """Decoding and the history encoding reuse the env's params width (no lookup per tool)."""
    import tir_env.spaces as spaces_module

    env = TIREnv(pool=SyncToolPool(), **dict(KW, max_steps=5))
    env.reset(seed=0)
    width = env.action_space["params"].shape[0]
    action = {"tool": 1, "params": np.zeros(width, np.float32)}
    env.step(action)
    env.step(action)
    lookups: list[str] = []
    real = spaces_module.tool_info

    def spy(name: str):
        lookups.append(name)
        return real(name)

    monkeypatch.setattr(spaces_module, "tool_info", spy)
    obs, *_ = env.step(action)  # decode + a history of 3 records
    assert len(lookups) <= 4 < len(env.tools)
    np.testing.assert_array_equal(
        obs["history"], encode_history(env.history, env.tools, env.config.history_len)
    )


def test_same_tool_with_different_parameters_runs_as_one_batch():
    """Sub-envs calling one tool with different parameters share one invocation (issue 17),
    and get the observations, rewards and infos of single envs."""
    n, seed, steps = 4, 3, 4
    kw = dict(KW, tools=("gamma_correction", "unsharp_mask", "dct_denoise"), max_steps=3)
    pool = LocalToolPool(device="cpu", workers=1, cache_bytes=0)
    venv = TIRVectorEnv(num_envs=n, pool=pool, **kw)
    singles = [TIREnv(pool=SyncToolPool(), **kw) for _ in range(n)]
    venv.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    rng = np.random.default_rng(seed)
    width = venv.single_action_space["params"].shape[0]
    done = np.zeros(n, dtype=bool)
    for _ in range(steps):
        tool = int(rng.integers(1, len(singles[0].tools) + 1))
        actions = {
            "tool": np.full(n, tool),
            "params": rng.random((n, width), dtype=np.float32),
        }
        obs, rewards, term, trunc, infos = venv.step(actions)
        for i, env in enumerate(singles):
            if done[i]:
                o, info = env.reset()
                r = 0.0
            else:
                action = {"tool": actions["tool"][i], "params": actions["params"][i]}
                o, r, _, _, info = env.step(action)
            np.testing.assert_array_equal(obs["image"][i], o["image"])
            assert rewards[i] == pytest.approx(r, abs=1e-6)
            _same_info(_sub_info(infos, i), info)
        done = term | trunc
    stats = pool.stats
    pool.close()
    assert stats.batches < stats.calls  # calls with different parameters were batched
