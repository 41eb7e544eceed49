"""Gain trees, the PSNR change between two images (gain_trees, benchmarks.train_gain_trees)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from tir_env import gain_trees, quality_trees
from tir_env.errors import CheckpointError, ImageError, WeightsNotFoundError
from tir_env.tools.learned.weights import SHIPPED_DIR, weights_folder

torch.set_num_threads(1)

N = gain_trees.N_STATS


def _write_trees(folder, n_features: int = 3 * N, seed: int = 0) -> None:
    """Trees of ``n_features`` inputs fitted on random rows, saved where the module looks."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, n_features))
    model = HistGradientBoostingRegressor(max_iter=20, random_state=seed).fit(x, x[:, -1])
    folder.mkdir(parents=True, exist_ok=True)
    save_file(quality_trees.from_sklearn(model).tensors(), str(folder / "gain_trees.safetensors"))


@pytest.fixture
def trees_folder(tmp_path):
    """The shipped weights (the agents' perception reads them) and random gain trees."""
    folder = tmp_path / "weights"
    shutil.copytree(SHIPPED_DIR, folder)
    _write_trees(folder)
    with weights_folder(folder):
        gain_trees.reload()
        yield folder
    gain_trees.reload()


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 5), shared=st.booleans(), seed=st.integers(0, 2**16))
def test_pair_features_hold_both_images_and_their_difference(
    rows: int, shared: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    before = rng.normal(size=(1 if shared else rows, N))
    after = rng.normal(size=(rows, N))
    features = gain_trees.pair_features(before, after)
    assert features.shape == (rows, 3 * N)
    assert np.array_equal(features[:, N : 2 * N], after)
    assert np.allclose(features[:, 2 * N :], after - np.broadcast_to(before, after.shape))


def test_one_image_before_reads_as_that_image_repeated(trees_folder) -> None:
    before = torch.rand(1, 3, 128, 128)
    after = torch.rand(3, 3, 128, 128)
    shared = gain_trees.predict_gain(before, after)
    repeated = gain_trees.predict_gain(before.expand(3, -1, -1, -1), after)
    assert shared.shape == (3,) and torch.isfinite(shared).all()
    assert torch.allclose(shared, repeated, atol=1e-5)
    alone = torch.cat([gain_trees.predict_gain(before, a[None]) for a in after])
    assert torch.allclose(shared, alone, atol=1e-5)


def test_large_and_small_images_are_compared_at_one_size(trees_folder) -> None:
    big_before, big_after = torch.rand(1, 3, 300, 260), torch.rand(2, 3, 300, 260)
    assert torch.isfinite(gain_trees.predict_gain(big_before, big_after)).all()  # by tiles
    small = torch.rand(1, 3, 32, 32)  # a low-resolution input, read at the target size
    out = gain_trees.predict_gain(small, torch.rand(1, 3, 128, 128), size=(128, 128))
    assert out.shape == (1,)
    with pytest.raises(ImageError, match="one per candidate"):
        gain_trees.predict_gain(torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64))


def test_missing_or_foreign_trees_are_named_errors(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with weights_folder(empty):
        gain_trees.reload()
        assert not gain_trees.available()
        with pytest.raises(WeightsNotFoundError, match="train_gain_trees"):
            gain_trees.predict_gain(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    narrow = tmp_path / "narrow"
    _write_trees(narrow, n_features=N)  # tirqa's width: one image's statistics
    with weights_folder(narrow):
        gain_trees.reload()
        with pytest.raises(CheckpointError, match="reads 98 features"):
            gain_trees.load()
    gain_trees.reload()


def test_the_record_gives_the_margin_and_a_broken_record_is_named(trees_folder) -> None:
    assert gain_trees.record() == {} and gain_trees.margin() == 0.0
    (trees_folder / "gain_trees.json").write_text('{"margin_db": 1.5}')
    gain_trees.reload()
    assert gain_trees.margin() == 1.5
    (trees_folder / "gain_trees.json").write_text("{not json")
    gain_trees.reload()
    with pytest.raises(CheckpointError, match="not a JSON record"):
        gain_trees.record()


def test_a_search_agent_without_the_trees_refuses_at_construction(tmp_path) -> None:
    from agents.base import make_agent

    empty = tmp_path / "empty"
    empty.mkdir()
    with weights_folder(empty):
        gain_trees.reload()
        with pytest.raises(WeightsNotFoundError, match="gain trees"):
            make_agent("exhaustive", metric="gain-trees")
    gain_trees.reload()


@pytest.mark.parametrize("agent", ["exhaustive", "greedy"])
def test_a_search_agent_scores_with_the_trees(agent: str, trees_folder) -> None:
    """``metric=gain-trees`` plans through the trees (random ones: any valid plan)."""
    import gymnasium as gym

    import tir_env  # noqa: F401  (registers TIR-v0)
    from agents.base import make_agent
    from agents.search import gain_model

    assert gain_model("gain-trees") is gain_trees
    env = gym.make("TIR-v0", patch_size=64, max_steps=2, reward="psnr")
    try:
        _, info = env.reset(seed=0)
        bot = make_agent(agent, metric="gain-trees", prior_margin=0.0)
        bot.reset(env, info)
        assert isinstance(bot.plan, list | tuple)
        assert bot._scores and all(np.isfinite(s) for s in bot._scores.values())
    finally:
        env.close()


def _groups() -> dict[str, np.ndarray]:
    """Two groups of three members (the input first), statistics drawn at random."""
    rng = np.random.default_rng(0)
    return {
        "group": np.array([0, 0, 0, 1, 1, 1]),
        "steps": np.array([0, 1, 1, 0, 1, 2]),
        "psnr": np.array([20.0, 25.0, 18.0, 30.0, 29.0, 31.0]),
        "tirqa": np.array([20.0, 19.0, 21.0, 30.0, 31.0, 29.0]),
        "pixels": rng.normal(size=(6, N)).astype(np.float32),
    }


def test_pair_rows_pair_every_member_with_its_groups_input() -> None:
    from benchmarks.train_gain_trees import pair_rows

    groups = _groups()
    features, change, parent = pair_rows(groups)
    assert list(parent) == [0, 0, 0, 3, 3, 3]
    assert list(change) == [0.0, 5.0, -2.0, 0.0, -1.0, 1.0]
    assert np.allclose(features[4, :N], groups["pixels"][3])
    groups["steps"][3] = 1  # group 1 loses its input
    with pytest.raises(ValueError, match="without an input"):
        pair_rows(groups)


def test_within_groups_scores_the_picks_against_the_truth() -> None:
    from benchmarks.train_gain_trees import within_groups

    groups = _groups()
    perfect = within_groups(groups, groups["psnr"])
    assert perfect["spearman_within"] == 1.0 and perfect["pick_lost_db"] == 0.0
    assert perfect["pick_gain_db"] == 3.0  # +5 in group 0, +1 in group 1
    inverted = within_groups(groups, groups["tirqa"])
    assert inverted["spearman_within"] == -1.0
    assert inverted["pick_gain_db"] == -1.5  # -2 and -1
    assert inverted["pick_lost_db"] == 4.5  # 7 and 2


def test_train_script_refuses_an_existing_file_or_another_format(tmp_path) -> None:
    from benchmarks import train_gain_trees

    out = tmp_path / "g.safetensors"
    out.write_text("keep")
    with pytest.raises(SystemExit):
        train_gain_trees.main(["--out", str(out)])
    with pytest.raises(SystemExit):
        train_gain_trees.main(["--out", str(tmp_path / "g.pt")])
    assert out.read_text() == "keep"
