"""The perception model and the agents that perceive first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import tir_env
from tir_env import perception
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.errors import ImageError, WeightsNotFoundError
from tir_env.tools.learned.weights import SHIPPED_DIR, WEIGHTS_ENV

KW = dict(images="test", patch_size=64, obs_size=32, max_steps=5)


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the weights folder at an empty directory (perception unavailable)."""
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    perception.reload()
    yield
    monkeypatch.delenv(WEIGHTS_ENV)
    perception.reload()


def test_shipped_weights_and_test_accuracy() -> None:
    assert perception.available()
    record = json.loads((SHIPPED_DIR / "perception.json").read_text())
    assert "train_tools" in record["command"]
    per_type = record["test"]["per_type"]
    assert set(per_type) == set(AGENTICIR_TYPES)
    assert record["test"]["mean_accuracy"] > 0.8


def test_perceive_returns_a_probability_per_type(test_patches: list[np.ndarray]) -> None:
    probs = tir_env.perceive(test_patches[0])
    assert list(probs) == list(AGENTICIR_TYPES)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    for shape in [(1, 1, 3), (7, 300, 3)]:  # any size is resized to 128x128
        assert len(perception.perceive(np.zeros(shape, np.uint8))) == 8


def test_perceive_rejects_bad_images() -> None:
    with pytest.raises(ImageError):
        perception.perceive(np.zeros((8, 8, 3), np.float32))  # type: ignore[arg-type]


@pytest.mark.parametrize("degradation", ["haze", "noise", "low_resolution"])
def test_perceives_strong_single_degradations(degradation: str) -> None:
    from tir_env import data
    from tir_env.degradations import degrade
    from tir_env.images import batch_to_u8, u8_to_batch

    src = data.bundled("test")
    hits = 0
    for index, image_id in enumerate(src.ids):
        clean = u8_to_batch(data.center_patch(src.load(image_id), 128))
        degraded, _ = degrade(clean, [degradation], np.random.default_rng([7, index]))
        hits += degradation in perception.perceived(perception.perceive(batch_to_u8(degraded)))
    assert hits >= 3, f"{degradation} perceived in {hits} of 4 test photos"


def test_perceived_threshold_and_top1() -> None:
    probs = dict.fromkeys(AGENTICIR_TYPES, 0.1) | {"noise": 0.9, "haze": 0.6}
    assert perception.perceived(probs) == ["haze", "noise"]  # physical order
    assert perception.perceived(dict.fromkeys(AGENTICIR_TYPES, 0.1) | {"jpeg": 0.3}) == ["jpeg"]


def test_batch_matches_single(test_patches: list[np.ndarray]) -> None:
    from tir_env.images import u8_to_batch

    batch = perception.prepare(torch.cat([u8_to_batch(p) for p in test_patches]))
    probs = perception.perceive_batch(batch)
    one = perception.perceive(test_patches[1])
    np.testing.assert_allclose(probs[1].numpy(), list(one.values()), atol=1e-5)


def test_missing_weights(no_weights: None) -> None:
    assert not perception.available()
    with pytest.raises(WeightsNotFoundError, match=r"perception\.safetensors"):
        perception.perceive(np.zeros((8, 8, 3), np.uint8))


# ---------------------------------------------------------------- agents perceive first


def test_fixed_plans_only_perceived_tasks() -> None:
    from agents.base import make_agent, rollout
    from tir_env.env import TIREnv
    from tir_env.tools import tool_info

    env = TIREnv(**KW)
    obs, info = env.reset(seed=0, options={"degradations": ("haze",)})
    agent = make_agent("fixed")
    agent.reset(env, info)
    planned = {tool_info(c.tool).task for c in agent.plan}
    expected = set(perception.perceived_tasks(env.input_image()))
    assert planned == expected and len(planned) < 5
    ep = rollout(env, make_agent("fixed"), seed=0, options={"degradations": ("haze",)})
    assert sum(r.call is not None for r in ep.records) == len(planned)


def test_fixed_without_perception_plans_every_task(no_weights: None) -> None:
    from agents.base import make_agent
    from tir_env.env import TIREnv

    env = TIREnv(**KW)
    _, info = env.reset(seed=0, options={"degradations": ("haze",)})
    agent = make_agent("fixed")
    agent.reset(env, info)
    assert len(agent.plan) == KW["max_steps"]


def test_exhaustive_explores_perceived_tasks() -> None:
    from agents.base import make_agent
    from tir_env.env import TIREnv

    env = TIREnv(**{**KW, "max_steps": 2})
    _, info = env.reset(seed=1, options={"degradations": ("rain",)})
    agent = make_agent("exhaustive")
    agent.reset(env, info)
    assert agent.info["perceived_tasks"] == perception.perceived_tasks(env.input_image())
    ref = make_agent("exhaustive-ref")
    ref.reset(env, info)
    assert "perceived_tasks" not in ref.info


def test_all_in_one_agent() -> None:
    from agents.base import make_agent, rollout
    from tir_env.env import TIREnv
    from tir_env.errors import InvalidActionError

    env = TIREnv(**{**KW, "toolbox": ("classical", "learned")})
    ep = rollout(env, make_agent("all-in-one"), seed=0, options={"degradations": ("rain",)})
    calls = [r.call.tool for r in ep.records if r.call]
    assert calls == ["learned_all_in_one"] and ep.records[-1].call is None
    with pytest.raises(InvalidActionError, match="all_in_one"):
        rollout(TIREnv(**KW), make_agent("all-in-one"), seed=0)
