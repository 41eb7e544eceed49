"""The perception model and the agents that perceive first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

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


def test_shipped_weights_and_record() -> None:
    assert perception.available()
    record = json.loads((SHIPPED_DIR / "perception.json").read_text())
    assert "train_perception" in record["command"]
    assert record["architecture"]["classes"] == perception.N_OUTPUTS
    assert set(record["thresholds"]) == set(AGENTICIR_TYPES)
    assert all(0.0 < t < 1.0 for t in perception.thresholds().values())


def test_perceive_returns_a_probability_per_type(test_patches: list[np.ndarray]) -> None:
    probs = tir_env.perceive(test_patches[0])
    assert list(probs) == list(AGENTICIR_TYPES)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    # tiny (upsampled 4x), thin, and larger than a tile (tiled at native resolution)
    for shape in [(1, 1, 3), (7, 300, 3), (300, 520, 3)]:
        probs = perception.perceive(np.zeros(shape, np.uint8))
        assert len(probs) == 8 and all(np.isfinite(list(probs.values())))


def test_perceive_photo_fields(test_patches: list[np.ndarray]) -> None:
    seen = perception.perceive_photo(test_patches[0])
    assert set(seen.severity) == set(AGENTICIR_TYPES)
    assert all(np.isfinite(list(seen.probs.values())))
    assert all(0.0 <= v <= 1.0 for v in seen.severity.values())
    assert perception.PSNR_RANGE[0] <= seen.psnr <= perception.PSNR_RANGE[1]
    assert 0.0 <= seen.ssim <= 1.0
    assert seen.present == perception.perceived(seen.probs, seen.thresholds)


@given(length=st.integers(1, 5000), limit=st.integers(1, 12))
def test_tile_origins_cover_the_side_on_the_jpeg_grid(length: int, limit: int) -> None:
    starts = perception.tile_origins(length, perception.TILE, limit)
    assert starts == sorted(set(starts)) and len(starts) <= max(1, limit)
    assert all(s % 8 == 0 and s >= 0 for s in starts)
    if length > perception.TILE and limit >= 2:  # first at 0, last at the end (8-px grid)
        assert starts[0] == 0 and starts[-1] + perception.TILE >= length - 7
        assert all(s + perception.TILE <= length for s in starts)


def test_tiles_keep_native_resolution() -> None:
    image = torch.rand(1, 3, 300, 520)
    tiles = perception.tiles(image)
    assert tiles.shape[1:] == (3, perception.TILE, perception.TILE)
    t = perception.TILE
    assert torch.equal(tiles[0], image[0, :, :t, :t])


def test_perceive_rejects_bad_images() -> None:
    with pytest.raises(ImageError):
        perception.perceive(np.zeros((8, 8, 3), np.float32))  # type: ignore[arg-type]


def _degraded_test_crops(names: list[str], seed: int = 7) -> list[np.ndarray]:
    from tir_env import data
    from tir_env.degradations import degrade
    from tir_env.images import batch_to_u8, u8_to_batch

    src = data.bundled("test")
    out = []
    for index, image_id in enumerate(src.ids):
        clean = u8_to_batch(data.center_patch(src.load(image_id), 128))
        degraded, _ = degrade(clean, names, np.random.default_rng([seed, index]))
        out.append(batch_to_u8(degraded))
    return out


# Held to the tuned thresholds: the types recognised reliably on held-out photos. The others
# (darkness and haze confused with naturally dark or misty photos, blur with soft photos, rain
# behind a precision-tuned threshold) have a held-out recall well under 3 of 4
# (docs/perception.md); they are held to raising their own probability below.
RELIABLE_TYPES = ("low_resolution", "noise", "jpeg")


@pytest.mark.parametrize("degradation", RELIABLE_TYPES)
def test_perceives_single_degradations(degradation: str) -> None:
    crops = _degraded_test_crops([degradation])
    hits = sum(
        degradation in perception.perceived(perception.perceive(c, size=(128, 128))) for c in crops
    )
    assert hits >= 3, f"{degradation} perceived in {hits} of 4 test photos"


@pytest.mark.parametrize("degradation", AGENTICIR_TYPES)
def test_each_degradation_raises_its_own_probability(degradation: str) -> None:
    from tir_env import data

    src = data.bundled("test")
    clean = [data.center_patch(src.load(i), 128) for i in src.ids]
    crops = _degraded_test_crops([degradation])
    before = [perception.perceive(c, size=(128, 128))[degradation] for c in clean]
    after = [perception.perceive(c, size=(128, 128))[degradation] for c in crops]
    raised = sum(a > b for a, b in zip(after, before, strict=True))
    assert raised >= 3, f"{degradation}: {before} -> {after}"


def test_clean_crops_look_clean() -> None:
    from tir_env import data

    src = data.bundled("test")
    found = [
        perception.perceived(perception.perceive(data.center_patch(src.load(i), 128)))
        for i in src.ids
    ]
    assert sum(not f for f in found) >= 3, found


def test_severity_follows_noise_level() -> None:
    from tir_env import data
    from tir_env.degradations import make_degradation
    from tir_env.images import batch_to_u8, u8_to_batch

    noise = make_degradation("noise")
    src = data.bundled("test")
    mild, strong = [], []
    for image_id in src.ids:
        clean = u8_to_batch(data.center_patch(src.load(image_id), 128))
        for sigma, out in ((20.0, mild), (50.0, strong)):
            noisy = noise.apply(clean, {"poisson": 0.0, "sigma": sigma, "seed": 3.0})
            out.append(perception.perceive_photo(batch_to_u8(noisy)).severity["noise"])
    assert np.mean(strong) > np.mean(mild) + 0.2, (mild, strong)


def test_perceived_thresholds_and_empty() -> None:
    probs = dict.fromkeys(AGENTICIR_TYPES, 0.1) | {"noise": 0.9, "haze": 0.6}
    assert perception.perceived(probs, 0.5) == ["haze", "noise"]  # physical order
    assert perception.perceived(dict.fromkeys(AGENTICIR_TYPES, 0.1), 0.5) == []  # looks clean
    limits = dict.fromkeys(AGENTICIR_TYPES, 0.5) | {"jpeg": 0.2}
    assert perception.perceived(dict.fromkeys(AGENTICIR_TYPES, 0.3), limits) == ["jpeg"]


def test_batch_matches_single(test_patches: list[np.ndarray]) -> None:
    from tir_env.images import u8_to_batch

    batch = perception.prepare(torch.cat([u8_to_batch(p) for p in test_patches]))
    probs = perception.perceive_batch(batch)
    one = perception.perceive(test_patches[1])
    np.testing.assert_allclose(probs[1].numpy(), list(one.values()), atol=1e-5)


# ---------------------------------------------------------------- tirqa


def test_tirqa_is_a_registered_no_reference_metric() -> None:
    from tir_env.metrics import make_metric, metric_info

    info = metric_info("tirqa")
    assert not info.needs_reference and not info.lower_better and info.backend == "tir"
    scores = make_metric("tirqa")(torch.rand(2, 3, 64, 64))
    assert scores.shape == (2,) and torch.isfinite(scores).all()


def test_tirqa_ranks_degraded_below_clean_and_is_not_fooled_by_the_exploit() -> None:
    import tir_env.tools.exploits  # noqa: F401
    from tir_env import data
    from tir_env.images import u8_to_batch
    from tir_env.metrics import make_metric
    from tir_env.tools import make_tool

    tirqa = make_metric("tirqa")
    src = data.bundled("test")
    clean = torch.cat([u8_to_batch(data.center_patch(src.load(i), 128)) for i in src.ids])
    noisy = torch.cat([u8_to_batch(c) for c in _degraded_test_crops(["noise"])])
    assert (tirqa(clean) > tirqa(noisy)).all()
    # Painting a detailed image lowers its fidelity; NIQE calls it an improvement, tirqa not.
    # (flower's centre is smooth bokeh: painting it changes little, and tirqa underrates it)
    painted = make_tool("median_paint")(clean, {"kernel": 9})
    assert int((tirqa(painted) < tirqa(clean)).sum()) >= 3
    assert float(tirqa(painted).mean()) < float(tirqa(clean).mean())


def test_missing_weights(no_weights: None) -> None:
    from tir_env.metrics import METRICS

    assert not perception.available()
    with pytest.raises(WeightsNotFoundError, match=r"perception\.safetensors"):
        perception.perceive(np.zeros((8, 8, 3), np.uint8))
    tirqa = METRICS.get("tirqa")
    with pytest.raises(WeightsNotFoundError, match="tirqa"):
        tirqa()


def test_old_perception_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tir_env.errors import CheckpointError

    for suffix in (".safetensors", ".json"):
        (tmp_path / f"perception{suffix}").write_bytes(
            (SHIPPED_DIR / f"perception{suffix}").read_bytes()
        )
    record = json.loads((tmp_path / "perception.json").read_text())
    record["architecture"] = {"class": "PerceptionNet", "classes": 8}
    (tmp_path / "perception.json").write_text(json.dumps(record))
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    perception.reload()
    try:
        with pytest.raises(CheckpointError, match="perception v2"):
            perception.perceive(np.zeros((64, 64, 3), np.uint8))
    finally:
        monkeypatch.delenv(WEIGHTS_ENV)
        perception.reload()


# ---------------------------------------------------------------- agents perceive first


def test_search_agents_refuse_a_full_reference_metric() -> None:
    from agents.base import make_agent
    from tir_env.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="no-reference"):
        make_agent("greedy", metric="psnr")
    assert make_agent("greedy", metric="niqe").metric == "niqe"


def test_fixed_plans_only_perceived_tasks() -> None:
    from agents.base import make_agent, rollout
    from tir_env.env import TIREnv
    from tir_env.tools import tool_info

    env = TIREnv(**{**KW, "patch_size": 128})
    # seed 1: strong noise, perceived with certainty (a milder draw's probability can sit
    # near the precision-tuned threshold, and the plan is then rightly empty)
    obs, info = env.reset(seed=1, options={"degradations": ("noise",)})
    agent = make_agent("fixed")
    agent.reset(env, info)
    planned = {tool_info(c.tool).task for c in agent.plan}
    expected = set(perception.perceived_tasks(env.input_image(), size=env.target_size()))
    assert planned == expected and "denoising" in planned and len(planned) < 3
    ep = rollout(env, make_agent("fixed"), seed=1, options={"degradations": ("noise",)})
    assert sum(r.call is not None for r in ep.records) == len(planned)


def test_fixed_leaves_a_clean_image_alone() -> None:
    from agents.base import make_agent, rollout
    from tir_env import data
    from tir_env.env import TIREnv

    image = data.center_patch(data.bundled("test").load("flower"), 128)
    env = TIREnv(**KW, reward="adaptive", metrics=("tirqa",))  # no reference: as tir restore
    ep = rollout(env, make_agent("fixed"), seed=0, options={"image": image})
    assert all(r.call is None for r in ep.records), [str(r.call) for r in ep.records]


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
    from tir_env.tools import tool_info

    env = TIREnv(**{**KW, "max_steps": 2, "patch_size": 128})
    _, info = env.reset(seed=1, options={"degradations": ("rain",)})
    agent = make_agent("exhaustive")
    agent.reset(env, info)
    expected = perception.perceived_tasks(env.input_image(), size=env.target_size())
    # the judge returns its tasks in protocol order, perception in its own
    assert sorted(agent.info["perceived_tasks"]) == sorted(expected) and "deraining" in expected
    assert {tool_info(c.tool).task for c in agent.plan} <= set(expected)
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


def test_textured_tiles_outweigh_flat_ones() -> None:
    flat = torch.full((1, 3, 96, 96), 0.5)
    textured = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    weights = perception.tile_weights(torch.cat([flat, textured, flat]))
    assert torch.isclose(weights.sum(), torch.tensor(1.0))
    assert weights[1] > 0.9 and weights[0] == weights[2] > 0.0


@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_tile_weights_are_a_distribution(count: int, seed: int) -> None:
    parts = torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
    weights = perception.tile_weights(parts)
    assert weights.shape == (count,) and bool((weights > 0).all())
    assert torch.isclose(weights.sum(), torch.tensor(1.0), atol=1e-5)
