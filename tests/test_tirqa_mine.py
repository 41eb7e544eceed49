"""Hard examples for tirqa (benchmarks.tirqa_mine) and train_perception's --extra."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import tirqa_mine
from benchmarks.train_perception import (
    Examples,
    _empty_examples,
    load_examples,
    to_batch,
    with_extra,
)
from tir_env import data
from tir_env.errors import DataError
from tir_env.images import u8_to_batch
from tir_env.perception import PSNR_RANGE

torch.set_num_threads(1)


def _examples(n: int, first_group: int = 0) -> Examples:
    ex = _empty_examples(n, 8)
    ex.images[:] = np.arange(n, dtype=np.uint8)[:, None, None, None]
    ex.group[:] = first_group + np.arange(n) // 2
    return ex


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), m=st.integers(1, 6), offset=st.integers(0, 50))
def test_extra_examples_follow_the_generated_ones_in_groups_of_their_own(
    n: int, m: int, offset: int
) -> None:
    train, extra = _examples(n), _examples(m, first_group=offset)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "extra.npz"
        np.savez(path, **vars(extra))
        joined = with_extra(train, [path])
    assert len(joined.images) == n + m
    assert np.array_equal(joined.images[n:], extra.images)
    assert np.array_equal(joined.quality[n:], extra.quality)
    assert set(joined.group[:n]).isdisjoint(joined.group[n:])


def test_with_extra_appends_files_and_renumbers_their_groups(tmp_path: Path) -> None:
    train, extra = _examples(4), _examples(3, first_group=0)
    path = tmp_path / "extra.npz"
    np.savez(path, **vars(extra))
    joined = with_extra(train, [path, path])
    assert len(joined.images) == 10
    assert np.array_equal(joined.images[4:7], extra.images)
    assert set(joined.group[:4]).isdisjoint(joined.group[4:7])
    assert set(joined.group[4:7]).isdisjoint(joined.group[7:])
    # each file keeps its own grouping, shifted
    assert np.array_equal(np.diff(joined.group[4:7]), np.diff(extra.group))


def test_missing_or_incomplete_extra_examples_are_a_named_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_examples(tmp_path / "absent.npz")
    broken = tmp_path / "broken.npz"
    np.savez(broken, images=np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="lack"):
        load_examples(broken)


def _crop() -> torch.Tensor:
    photo = data.bundled("test").load("coffee")
    return u8_to_batch(np.ascontiguousarray(photo[100:196, 100:196]))


def test_a_search_records_every_candidate_with_its_true_quality() -> None:
    clean = _crop()
    noisy = clean + 0.08 * torch.randn_like(clean, generator=torch.Generator().manual_seed(0))
    tools = ["tv_denoise", "median_paint", "bilateral_denoise"]
    ep = tirqa_mine.search(clean, noisy.clamp(0, 1), tools, steps=2, size=96)
    assert len(ep.images) in (3, 6)  # one or two steps of three candidates
    assert len(ep.quality) == len(ep.predicted) == len(ep.tools) == len(ep.images)
    assert all(0 <= i < len(ep.images) for i in ep.taken)
    low, high = PSNR_RANGE
    for image, (psnr01, _) in zip(ep.images, ep.quality, strict=True):
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        true = tirqa_mine.to_db(psnr01)
        from tir_env.metrics.fast import psnr

        expected = float(psnr(to_batch(image[None]), clean)[0])
        assert true == pytest.approx(float(np.clip(expected, low, high)), abs=0.05)
    # the search takes a candidate only while tirqa rates it above the current image
    if ep.taken:
        assert ep.predicted[ep.taken[0]] > ep.input_predicted


def _noisy(clean: torch.Tensor, seed: int) -> torch.Tensor:
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
    return (clean + 0.08 * noise).clamp(0, 1)


def test_examples_and_summary_of_searches(tmp_path: Path) -> None:
    clean = _crop()
    eps = [
        tirqa_mine.search(clean, _noisy(clean, s), ["tv_denoise", "median_paint"], 2, 96)
        for s in range(2)
    ]
    assert all(ep.taken for ep in eps)  # the searches moved: the summary reads their ends
    ex = tirqa_mine.as_examples(eps, 96)
    assert len(ex.images) == sum(len(e.images) for e in eps)
    assert not ex.labelled.any() and not ex.presence.any()
    assert set(ex.group) == {0, 1}
    s = tirqa_mine.summary(eps)
    assert s["episodes"] == 2 and s["candidates"] == len(ex.images)
    ends = [(ep.psnr[ep.taken[-1]], ep.predicted[ep.taken[-1]], ep.input_psnr) for ep in eps]
    assert s["end_psnr"] == pytest.approx(np.mean([e[0] for e in ends]))
    assert s["end_overclaim_db"] == pytest.approx(np.mean([e[1] - e[0] for e in ends]))
    assert s["ends_below_input"] == pytest.approx(np.mean([e[0] < e[2] for e in ends]))
    path = tmp_path / "mined.npz"
    tirqa_mine.save(ex, s, path, tirqa_mine.searched(eps))
    assert load_examples(path).images.shape == ex.images.shape
    with np.load(path) as saved:
        assert len(saved["tool"]) == len(saved["predicted"]) == len(ex.images)
        assert saved["taken"].sum() == sum(len(e.taken) for e in eps)
    assert path.with_suffix(".json").is_file()
    assert not list(tmp_path.glob("*.tmp*"))


def test_mining_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "kept.npz"
    out.write_bytes(b"earlier")
    with pytest.raises(SystemExit, match="exists"):
        tirqa_mine.main(["--episodes", "1", "--out", str(out)])
    assert out.read_bytes() == b"earlier"


def test_the_doc_section_is_made_from_the_committed_records() -> None:
    text = tirqa_mine.section()
    assert text.startswith("\n## Hard examples for `tirqa`")
    for name in tirqa_mine.SCORERS:
        assert f"| {name}: " in text
    # the verdict is computed from the records: neither network passes part 1
    assert text.count("part 1 fails") == 2 and "Ships." not in text
    doc = (tirqa_mine.ROOT / "docs" / "perception.md").read_text()
    assert text in doc  # regenerated by `python -m benchmarks.perception_report --doc-only`


def test_taken_overclaim_counts_the_searches_picks(tmp_path: Path) -> None:
    clean = _crop()
    eps = [tirqa_mine.search(clean, _noisy(clean, 0), ["tv_denoise", "median_paint"], 2, 96)]
    assert eps[0].taken
    path = tmp_path / "s.npz"
    tirqa_mine.save(tirqa_mine.as_examples(eps, 96), {}, path, tirqa_mine.searched(eps))
    picks = tirqa_mine.taken_overclaim(path)
    assert sum(v["taken"] for v in picks.values()) == len(eps[0].taken)


def test_picks_of_a_search_saved_without_them_are_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / "old.npz"
    np.savez(path, **vars(_examples(2)))
    with pytest.raises(DataError, match="no picks"):
        tirqa_mine.taken_overclaim(path)


def test_extra_examples_of_another_size_or_none_are_a_named_error(tmp_path: Path) -> None:
    train = _examples(3)
    other = _empty_examples(2, 16)
    np.savez(tmp_path / "other.npz", **vars(other))
    with pytest.raises(DataError, match="--size 8"):
        with_extra(train, [tmp_path / "other.npz"])
    np.savez(tmp_path / "none.npz", **vars(_empty_examples(0, 8)))
    with pytest.raises(DataError, match="no examples"):
        with_extra(train, [tmp_path / "none.npz"])


def test_extra_examples_take_the_training_dtypes(tmp_path: Path) -> None:
    extra = _examples(2)
    extra.quality = extra.quality.astype(np.float64)
    np.savez(tmp_path / "f64.npz", **vars(extra))
    joined = with_extra(_examples(3), [tmp_path / "f64.npz"])
    assert joined.quality.dtype == np.float32


def test_a_limit_keeps_that_many_extra_examples_in_their_order(tmp_path: Path) -> None:
    first, second = _examples(4), _examples(5)
    second.images[:] = 100 + np.arange(5, dtype=np.uint8)[:, None, None, None]
    np.savez(tmp_path / "a.npz", **vars(first))
    np.savez(tmp_path / "b.npz", **vars(second))
    train = _examples(3)
    joined = with_extra(train, [tmp_path / "a.npz", tmp_path / "b.npz"], limit=4, seed=1)
    assert len(joined.images) == 3 + 4
    added = [int(v) for v in joined.images[3:, 0, 0, 0]]
    pool = [int(v) for v in first.images[:, 0, 0, 0]] + list(range(100, 105))
    assert all(v in pool for v in added)
    assert [pool.index(v) for v in added] == sorted(pool.index(v) for v in added)
    again = with_extra(train, [tmp_path / "a.npz", tmp_path / "b.npz"], limit=4, seed=1)
    assert np.array_equal(again.images, joined.images)


def _confirm_records(folder: Path, spearman_v4: float, end_v4: float = 19.5) -> None:
    folder.mkdir()
    search = {"input_psnr": 24.0, "end_psnr": 19.0, "end_overclaim_db": 16.0}
    (folder / "mine_shipped.json").write_text(json.dumps(search))
    better = {**search, "end_psnr": end_v4, "end_overclaim_db": 10.0}
    (folder / "mine_v4.json").write_text(json.dumps(better))
    quality = {"spearman_tirqa": 0.45, "pick_regret_tirqa": 1.5, "fooled_tirqa": 0.5}
    (folder / "quality_shipped.json").write_text(json.dumps({"quality": quality}))
    v4 = {**quality, "spearman_tirqa": spearman_v4}
    (folder / "quality_v4.json").write_text(json.dumps({"quality": v4}))


@pytest.mark.parametrize(
    ("spearman_v4", "end_v4", "parts"),
    [(0.44, 19.5, [True, True]), (0.42, 19.5, [True, False]), (0.44, 19.1, [False, True])],
)
def test_the_confirmation_rule_reads_its_records(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spearman_v4: float,
    end_v4: float,
    parts: list[bool],
) -> None:
    monkeypatch.setattr(tirqa_mine, "CONFIRM", tmp_path / "confirm")
    assert tirqa_mine.confirm_verdict() == ([], "")  # nothing committed: no paragraph
    _confirm_records(tmp_path / "confirm", spearman_v4, end_v4)
    found, text = tirqa_mine.confirm_verdict()
    assert found == parts
    assert ("does not ship" in text) is not all(parts)
    assert ("trade the ranking" in text) is (parts == [True, False])
