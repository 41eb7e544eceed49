"""The quality-gain model's API: shapes, tiling, sizes, named errors, and the search agents' use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tir_env import quality_gain
from tir_env.errors import CheckpointError, ImageError, WeightsNotFoundError
from tir_env.tools.learned.nets import QualityGainNet
from tir_env.tools.learned.weights import WEIGHTS_ENV, save_weights

torch.set_num_threads(1)


@pytest.fixture
def tiny_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A random tiny QualityGainNet as the only learned weights."""
    torch.manual_seed(0)
    net = QualityGainNet(hidden=8, members=2).eval()
    record = {"architecture": {"class": "QualityGainNet", "hidden": 8, "members": 2}}
    save_weights(net, tmp_path / "quality_gain.safetensors", record)
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    quality_gain.reload()
    yield tmp_path
    quality_gain.reload()


def test_predicts_one_finite_gain_per_candidate(tiny_weights: Path) -> None:
    before = torch.rand(1, 3, 128, 96)
    gains = quality_gain.predict_gain(before, torch.rand(5, 3, 128, 96))
    assert gains.shape == (5,)
    assert torch.isfinite(gains).all()


def test_candidates_scored_independently_of_their_batch(tiny_weights: Path) -> None:
    before, after = torch.rand(1, 3, 80, 80), torch.rand(3, 3, 80, 80)
    together = quality_gain.predict_gain(before, after)
    alone = torch.cat([quality_gain.predict_gain(before, a[None]) for a in after])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(
    h=st.integers(32, 200),
    w=st.integers(32, 200),
    small=st.booleans(),
)
def test_any_size_pair_is_compared_at_one_size(h: int, w: int, small: bool) -> None:
    """A low-resolution ``before`` and a 4x candidate meet at the larger size, in matching tiles."""
    before = torch.rand(1, 3, max(8, h // 4), max(8, w // 4)) if small else torch.rand(1, 3, h, w)
    b, a = quality_gain.prepare_pair(before, torch.rand(2, 3, h, w))
    assert b.shape == a.shape == (2, 3, h, w)
    assert torch.equal(torch.round(a * 255), a * 255)  # 8-bit quantised
    tb, ta, per_image = quality_gain.tile_pair(b, a)
    assert tb.shape == ta.shape
    assert len(tb) == 2 * per_image <= 2 * quality_gain.MAX_TILES
    assert tb.shape[-1] <= quality_gain.TILE and tb.shape[-2] <= quality_gain.TILE


def test_target_size_wins(tiny_weights: Path) -> None:
    b, a = quality_gain.prepare_pair(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 64, 64), (128, 128))
    assert b.shape[-2:] == a.shape[-2:] == (128, 128)


def test_mismatched_batches_are_a_named_error() -> None:
    with pytest.raises(ImageError, match="one per candidate"):
        quality_gain.prepare_pair(torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64))
    with pytest.raises(ImageError):
        quality_gain.prepare_pair(torch.rand(3, 64, 64), torch.rand(1, 3, 64, 64))


def test_missing_weights_are_a_named_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    quality_gain.reload()
    assert not quality_gain.available()
    with pytest.raises(WeightsNotFoundError, match="tir train gain"):
        quality_gain.predict_gain(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    quality_gain.reload()


def test_wrong_network_in_the_file_is_a_checkpoint_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_weights(QualityGainNet(8, 2), tmp_path / "quality_gain.safetensors", {"x": 1})
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    quality_gain.reload()
    with pytest.raises(CheckpointError, match="not QualityGainNet"):
        quality_gain.predict_gain(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    (tmp_path / "quality_gain.safetensors").write_bytes(b"not safetensors")
    (tmp_path / "quality_gain.json").write_text(
        '{"architecture": {"class": "QualityGainNet", "hidden": 8, "members": 2}}'
    )
    quality_gain.reload()
    with pytest.raises(CheckpointError):
        quality_gain.predict_gain(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    quality_gain.reload()


@pytest.mark.parametrize("agent", ["exhaustive", "greedy"])
def test_search_agents_score_with_the_gain_model(agent: str, tiny_weights: Path) -> None:
    """``metric=gain`` plans through the model (random tiny weights: any valid plan)."""
    import gymnasium as gym

    import tir_env  # noqa: F401
    from agents.base import make_agent

    env = gym.make("TIR-v0", patch_size=64, max_steps=2, reward="psnr")
    try:
        _, info = env.reset(seed=0)
        bot = make_agent(agent, metric="gain")
        bot.reset(env, info)
        assert bot.options.metric == "gain"
        assert isinstance(bot.plan, list | tuple)
        assert all(np.isfinite(s) for s in bot._scores.values())
    finally:
        env.close()


def test_gain_metric_without_weights_is_a_named_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.base import make_agent

    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    quality_gain.reload()
    with pytest.raises(WeightsNotFoundError):
        make_agent("greedy", metric="gain")
    quality_gain.reload()


def test_quality_gain_page_is_generated_from_the_results() -> None:
    from benchmarks.gen_docs import DOCS, quality_gain_markdown

    assert (DOCS / "quality_gain.md").read_text() == quality_gain_markdown(), (
        "run: python -m benchmarks.gen_docs"
    )


@pytest.mark.parametrize("agent", ["exhaustive", "greedy"])
def test_search_guard_keeps_a_prefix_of_the_plan(agent: str, tiny_weights: Path) -> None:
    """``guard=gain`` executes a prefix of the path found (or nothing), running no new tool."""
    import shutil

    import gymnasium as gym

    from tir_env import perception
    from tir_env.tools.learned.weights import SHIPPED_DIR

    for name in ("perception.safetensors", "perception.json"):  # tirqa scores the search
        shutil.copy(SHIPPED_DIR / name, tiny_weights / name)
    perception.reload()

    import tir_env  # noqa: F401
    from agents.base import make_agent

    env = gym.make("TIR-v0", patch_size=64, max_steps=3, reward="psnr")
    try:
        _, info = env.reset(seed=1)
        free = make_agent(agent, guard="none")
        free.reset(env, info)
        guarded = make_agent(agent, guard="gain")
        guarded.reset(env, info)
        assert list(guarded.plan) == list(free.plan)[: len(guarded.plan)]
        assert guarded.tool_executions == free.tool_executions
    finally:
        env.close()
        perception.reload()


def test_fixed_guard_drops_calls_the_model_calls_harmful(
    tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that predicts a loss for everything leaves the input alone (and counts the runs)."""
    import gymnasium as gym

    import tir_env  # noqa: F401
    from agents.base import make_agent

    env = gym.make("TIR-v0", patch_size=64, max_steps=3, reward="psnr")
    try:
        _, info = env.reset(seed=2)
        unguarded = make_agent("fixed", guard="none")
        unguarded.reset(env, info)
        monkeypatch.setattr(quality_gain, "predict_gain", lambda b, a, s=None: -torch.ones(len(a)))
        guarded = make_agent("fixed", guard="gain")
        guarded.reset(env, info)
        assert guarded.plan == []
        assert guarded.tool_executions == len(unguarded.plan)
        monkeypatch.setattr(quality_gain, "predict_gain", lambda b, a, s=None: torch.ones(len(a)))
        trusting = make_agent("fixed", guard="gain")
        trusting.reset(env, info)
        assert trusting.plan == unguarded.plan
        assert trusting.tool_executions == 0
    finally:
        env.close()
