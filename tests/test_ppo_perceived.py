"""Perception v2's readings in the PPO observation (``--perceived``): BC, agent, warm start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agents.base import make_agent, rollout
from agents.ppo import bc, perceived
from agents.ppo.policy import load_policy
from tir_env.env import TIREnv
from tir_env.errors import ExpertDataError
from tir_env.perception import WEIGHTS_NAME

SMALL = dict(obs_size=32, history_len=3, max_steps=5, channels=(8, 16), history_dim=16)


def _images(n: int, seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def test_readings_are_probabilities_per_image_and_cached(monkeypatch):
    perceived.clear_cache()
    images = _images(3, seed=0)
    first = perceived.readings(images, WEIGHTS_NAME)
    assert first.shape == (3, perceived.PER_IMAGE) and first.dtype == np.float32
    assert np.all((first >= 0) & (first <= 1))
    calls = []
    monkeypatch.setattr(perceived, "_compute", lambda x, n: calls.append(len(x)))
    again = perceived.readings(images[::-1], WEIGHTS_NAME)  # every image cached: no compute
    assert calls == [] and np.array_equal(again, first[::-1])
    # one image's readings do not depend on the batch it comes in
    monkeypatch.undo()
    perceived.clear_cache()
    alone = perceived.readings(images[1:2], WEIGHTS_NAME)
    assert np.allclose(alone[0], first[1], atol=1e-6)


def test_observation_puts_the_current_image_first_then_the_input():
    image, source = _images(2, seed=1), _images(2, seed=2)
    obs = perceived.observation(image, source, WEIGHTS_NAME)
    assert obs.shape == (2, perceived.WIDTH) and perceived.space().contains(obs[0])
    assert np.array_equal(obs[:, : perceived.PER_IMAGE], perceived.readings(image, WEIGHTS_NAME))


@pytest.fixture(scope="module")
def cloned_perceived(expert_dataset: Path, tmp_path_factory) -> Path:
    stem = tmp_path_factory.mktemp("policy_perceived") / "bc"
    cfg = bc.BCConfig(
        data=(str(expert_dataset),),
        out=str(stem),
        epochs=3,
        batch_size=4,
        val_fraction=0.5,
        perception_epochs=1,
        perceived=True,
        **SMALL,
    )
    bc.main(cfg, command="test")
    return stem


def test_bc_with_readings_exports_a_policy_that_reads_them(cloned_perceived):
    policy, spec = load_policy(cloned_perceived)
    assert spec.perceived == WEIGHTS_NAME
    assert spec.features["perceived_dim"] == perceived.WIDTH
    observation_space, _ = spec.spaces()
    assert perceived.KEY in observation_space.spaces
    # the readings reach the action: other readings, other logits
    obs = {k: np.stack([s.sample()] * 2) for k, s in observation_space.spaces.items()}
    obs[perceived.KEY] = np.stack([np.zeros(perceived.WIDTH), np.ones(perceived.WIDTH)])
    obs_t, _ = policy.obs_to_tensor(
        {k: v.astype(observation_space[k].dtype) for k, v in obs.items()}
    )
    with torch.no_grad():
        logits = policy.get_distribution(obs_t).distribution.logits
    assert not torch.allclose(logits[0], logits[1])


def test_the_agent_runs_a_policy_with_readings(cloned_perceived):
    agent = make_agent("ppo", weights=str(cloned_perceived))
    env = TIREnv(images="test", combos="mio-a", patch_size=32, obs_size=32, max_steps=3)
    episode = rollout(env, agent, seed=4)
    assert 1 <= len(episode.records) <= 3


@pytest.mark.parametrize("native", [False, True])
def test_on_a_whole_photo_perception_reads_native_resolution_only_when_asked(
    cloned_perceived, native
):
    agent = make_agent("ppo", weights=str(cloned_perceived), native_perception=native)
    env = TIREnv(images="test", combos="mio-a", patch_size=None, obs_size=32, max_steps=3)
    obs, info = env.reset(seed=2)
    agent.reset(env, info)
    current, first = env.current_image(), env.input_image()
    assert max(current.shape[:2]) > agent.spec.train_patch  # a whole photo
    got = agent.policy_observation(obs)[perceived.KEY]
    size = agent._reference()
    photo = np.concatenate(
        [perceived.photo_readings(x, WEIGHTS_NAME, size) for x in (current, first)]
    )
    views = perceived.observation(agent.view(current)[None], agent.view(first)[None], WEIGHTS_NAME)[
        0
    ]
    assert np.allclose(got, photo if native else views)
    assert not np.allclose(photo, views, atol=1e-3)  # the two readings differ on a whole photo


def test_tiles_of_a_whole_photo_share_its_native_readings(cloned_perceived):
    agent = make_agent("ppo", weights=str(cloned_perceived), tiles=2)
    env = TIREnv(images="test", combos="mio-a", patch_size=None, obs_size=32, max_steps=3)
    obs, info = env.reset(seed=2)
    agent.reset(env, info)
    views = agent.policy_observations(obs)
    size = agent._reference()
    images = (env.current_image(), env.input_image())
    photo = [perceived.photo_readings(x, WEIGHTS_NAME, size) for x in images]
    assert len(views) == 4
    for view in views:  # each tile shows a part; perception read the whole photo
        assert np.allclose(view[perceived.KEY], np.concatenate(photo))
    assert not np.array_equal(views[0]["image"], views[3]["image"])


def test_on_a_training_size_crop_native_readings_change_nothing(cloned_perceived):
    observations = []
    for native in (False, True):
        agent = make_agent("ppo", weights=str(cloned_perceived), native_perception=native)
        env = TIREnv(images="test", combos="mio-a", patch_size=32, obs_size=32, max_steps=3)
        obs, info = env.reset(seed=5)
        agent.reset(env, info)
        observations.append(agent.policy_observation(obs)[perceived.KEY])
    assert np.array_equal(*observations)


def test_photo_readings_are_cached_by_content_and_size(monkeypatch):
    perceived.clear_cache()
    image = np.random.default_rng(3).integers(0, 256, (200, 160, 3), dtype=np.uint8)
    first = perceived.photo_readings(image, WEIGHTS_NAME, (200, 160))
    assert first.shape == (perceived.PER_IMAGE,) and np.all((first >= 0) & (first <= 1))
    calls = []
    real = perceived._readings_of
    monkeypatch.setattr(perceived, "_readings_of", lambda x, n: calls.append(1) or real(x, n))
    assert np.array_equal(perceived.photo_readings(image.copy(), WEIGHTS_NAME, (200, 160)), first)
    assert calls == []
    perceived.photo_readings(image, WEIGHTS_NAME, (400, 320))  # another size: read again
    assert calls == [1]


def test_ppo_warm_start_needs_the_same_observation(cloned_perceived, tmp_path, tiny_ppo_args):
    from agents.ppo.train import main

    args = ["--init", str(cloned_perceived), *tiny_ppo_args]
    with pytest.raises(ExpertDataError, match="perceived"):
        main([*args, "--out", str(tmp_path / "without")])
    main([*args, "--out", str(tmp_path / "with"), "--perceived", "--export", str(tmp_path / "p")])
    assert load_policy(tmp_path / "p")[1].perceived == WEIGHTS_NAME


def test_perception_scores_count_no_true_negatives():
    from benchmarks.ppo_perception import scores

    truth = np.array([[1, 0], [0, 0], [1, 1]], np.float32)
    predicted = np.array([[1, 0], [0, 0], [0, 1]], np.float32)
    out = scores(predicted, truth, ("a", "b"))
    # a: 1 hit, 1 miss -> F1 2/3; b: perfect; the all-clean row counts for the exact set only
    assert out["f1"] == {"a": pytest.approx(2 / 3), "b": 1.0}
    assert out["exact_set"] == pytest.approx(2 / 3)
    assert scores(np.zeros((2, 1)), np.zeros((2, 1)), ("a",))["f1"]["a"] == 0.0


def test_the_truth_vector_names_the_true_types_for_both_images():
    from tir_env.perception import AGENTICIR_TYPES

    vec = perceived.truth_observation(("noise", "dark"))
    assert vec.shape == (perceived.WIDTH,) and perceived.space().contains(vec)
    first, second = vec[: perceived.PER_IMAGE], vec[perceived.PER_IMAGE :]
    assert np.array_equal(first, second) and first[len(AGENTICIR_TYPES) :].sum() == 0
    named = {t for t, on in zip(AGENTICIR_TYPES, first, strict=False) if on}
    assert named == {"noise", "dark"}
    with pytest.raises(ValueError, match="sunburn"):
        perceived.truth_observation(("sunburn",))
    # RL-Restore's types set the AgenticIR type of the same task
    assert np.array_equal(
        perceived.truth_observation(("gaussian_noise", "jpeg_quality", "gaussian_blur")),
        perceived.truth_observation(("noise", "jpeg", "defocus_blur")),
    )


def test_a_truth_policy_trains_on_the_envs_labels_and_refuses_a_users_photo(
    tmp_path, tiny_ppo_args
):
    from agents.ppo.train import main
    from tir_env.errors import ConfigValueError

    stem = tmp_path / "p"
    main([*tiny_ppo_args, "--perceived-truth", "--out", str(tmp_path / "run"), "--export",
          str(stem)])  # fmt: skip
    assert load_policy(stem)[1].perceived == perceived.TRUTH
    agent = make_agent("ppo", weights=str(stem))
    env = TIREnv(images="test", combos="mio-a", patch_size=32, obs_size=32, max_steps=3)
    episode = rollout(env, agent, seed=4)
    assert 1 <= len(episode.records) <= 3
    user = TIREnv(patch_size=None, max_steps=2, reward="adaptive", metrics=("niqe",))
    photo = np.full((40, 40, 3), 90, np.uint8)
    with pytest.raises(ConfigValueError, match="truth"):
        rollout(user, agent, seed=0, options={"image": photo, "image_id": "mine"})


def test_true_types_are_what_the_env_reports_in_its_info():
    env = TIREnv(images="test", combos="mio-a", patch_size=32, obs_size=32, max_steps=3)
    _, info = env.reset(seed=3)
    assert list(perceived.true_types(env)) == info["degradations"] and info["degradations"]
