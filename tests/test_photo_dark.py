"""tir_env.photo_dark (the whole-photo darkness reader), its use in the thresholds, its trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# the learned tools register from the installed weights when first imported: before any test
# here points TIR_LEARNED_WEIGHTS at a folder of its own
import tir_env.tools.learned  # noqa: F401
from tir_env import photo_dark, photo_thresholds
from tir_env.errors import CheckpointError, WeightsNotFoundError


def _photo(side: int = 320, grey: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (side, side + 40, 3), dtype=np.uint8)
    if grey:
        image[..., 1] = image[..., 0]
        image[..., 2] = image[..., 0]
    return image


def _reader(folder: Path, threshold: float | str | None = 0.5, signal: int = 0) -> Path:
    """A tiny reader whose logit rises with feature ``signal`` (0: perception's darkness)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from benchmarks.train_tirqa_trees import exported
    from tir_env.tools.learned.weights import save_state

    n = len(photo_dark.feature_names())
    rows = np.random.default_rng(0).normal(size=(300, n))
    model = HistGradientBoostingClassifier(max_depth=2, max_iter=20).fit(rows, rows[:, signal] > 0)
    record: dict[str, object] = {"name": photo_dark.WEIGHTS_NAME}
    if threshold is not None:
        record["threshold"] = threshold
    path = folder / f"{photo_dark.WEIGHTS_NAME}.safetensors"
    save_state(exported(model, rows).tensors(), path, record)
    return path


def test_features_match_their_names_and_are_finite() -> None:
    row = photo_dark.features(_photo(), 1.0)
    assert row.shape == (len(photo_dark.feature_names()),)
    assert np.isfinite(row).all()  # a reading of 1.0 is clipped before the logit


def test_a_darker_photo_has_lower_quantiles_and_more_black() -> None:
    photo = _photo()
    darker = (photo // 3).astype(np.uint8)
    bright, dim = photo_dark.histogram_cues(photo), photo_dark.histogram_cues(darker)
    assert (dim[: len(photo_dark.QUANTILES)] <= bright[: len(photo_dark.QUANTILES)]).all()
    assert dim[len(photo_dark.QUANTILES)] < bright[len(photo_dark.QUANTILES)]  # the mean


def test_a_large_photo_is_read_downscaled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photo_dark, "READ_SIDE", 64)
    cues = photo_dark.histogram_cues(_photo(side=300))
    assert np.isfinite(cues).all() and cues.shape == (len(photo_dark.QUANTILES) + 4,)


def test_the_reader_loads_and_names_a_missing_stale_or_corrupt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    assert not photo_dark.available()
    assert not photo_dark.reads_darkened(_photo(), 0.9)  # no file: nothing changes
    with pytest.raises(WeightsNotFoundError):
        photo_dark.darkened(_photo(), 0.9)
    path = tmp_path / f"{photo_dark.WEIGHTS_NAME}.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        photo_dark.darkened(_photo(), 0.9)
    path.unlink()
    from sklearn.ensemble import HistGradientBoostingClassifier

    from benchmarks.train_tirqa_trees import exported
    from tir_env.tools.learned.weights import save_state

    rows = np.random.default_rng(1).normal(size=(100, 4))  # fitted on other features
    model = HistGradientBoostingClassifier(max_iter=5).fit(rows, rows[:, 0] > 0)
    save_state(exported(model, rows).tensors(), path, {"name": "photo_dark"})
    with pytest.raises(CheckpointError, match="train_photo_dark"):
        photo_dark.darkened(_photo(), 0.9)


def test_the_probability_follows_the_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    _reader(tmp_path)
    assert photo_dark.darkened(_photo(), 0.95) > 0.5 > photo_dark.darkened(_photo(), 0.05)
    assert photo_dark.reads_darkened(_photo(), 0.95)
    assert not photo_dark.reads_darkened(_photo(), 0.05)


@pytest.mark.parametrize("bad", [0.0, 1.0, 2.5, "high"])
def test_a_bad_threshold_in_the_record_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: float | str
) -> None:
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    _reader(tmp_path, threshold=bad)
    with pytest.raises(CheckpointError, match="threshold"):
        photo_dark.threshold()


def test_a_record_without_a_threshold_reads_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    _reader(tmp_path, threshold=None)
    assert photo_dark.threshold() == photo_dark.THRESHOLD
    (tmp_path / f"{photo_dark.WEIGHTS_NAME}.json").write_text("{not json")
    photo_dark._threshold.cache_clear()
    with pytest.raises(CheckpointError):
        photo_dark.threshold()


def _limits() -> dict[str, float]:
    return {"dark": 0.6, "noise": 0.9, "rain": 0.5}


def _probs(dark: float) -> dict[str, float]:
    return {"dark": dark, "noise": 0.0, "rain": 0.0}


def test_a_whole_colour_photo_the_reader_calls_dark_reads_dark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    photo = _photo()
    before = photo_thresholds.adjusted(photo, _limits(), _probs(0.3))
    _reader(tmp_path, threshold=0.01)  # reads every photo as darkened
    after = photo_thresholds.adjusted(photo, _limits(), _probs(0.3))
    assert before["dark"] == 0.6 and after["dark"] == 0.3
    assert {k: v for k, v in after.items() if k != "dark"} == {
        k: v for k, v in before.items() if k != "dark"
    }


@pytest.mark.parametrize(
    ("photo", "probs", "why"),
    [
        (_photo(side=128), _probs(0.3), "a crop"),
        (_photo(grey=True), _probs(0.3), "a grey photo"),
        (_photo(), None, "no reading"),
        (_photo(), _probs(0.7), "already read as dark"),
    ],
)
def test_the_reader_leaves_the_rest_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    photo: np.ndarray,
    probs: dict[str, float] | None,
    why: str,
) -> None:
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    before = photo_thresholds.adjusted(photo, _limits(), probs)
    _reader(tmp_path, threshold=0.01)
    assert photo_thresholds.adjusted(photo, _limits(), probs) == before, why


@settings(max_examples=40, deadline=None)
@given(
    scores=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=60),
    share=st.floats(0.0, 0.5),
    seed=st.integers(0, 1000),
)
def test_the_chosen_threshold_keeps_false_alarms_within_the_share(
    scores: list[float], share: float, seed: int
) -> None:
    from benchmarks.train_photo_dark import chosen_threshold

    rng = np.random.default_rng(seed)
    p = np.array(scores)
    labels = rng.random(len(p)) < 0.5
    copies = np.where(rng.random(len(p)) < 0.5, "clean", "noise")
    copies[labels] = "dark gamma"
    data = {"labels": labels, "copies": copies}
    t = chosen_threshold(p, data, share)
    assert 0.0 < t < 1.0
    for kind in (~labels, copies == "clean"):
        if kind.any() and t < 0.999:
            assert (p[kind] >= t).sum() <= int(np.floor(share * kind.sum()))


@pytest.mark.parametrize(
    "copy", ["clean", "haze", "noise+jpeg", "phone", "dark shift", "dark gamma", "low light"]
)
def test_each_copy_is_an_image_and_darkening_darkens(copy: str) -> None:
    from benchmarks.train_photo_dark import COPIES, degraded_copy
    from tir_env.images import u8_to_batch

    photo = _photo(side=64, seed=3)
    clean = u8_to_batch(photo)
    out = degraded_copy(clean, copy, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == photo.shape
    if COPIES[copy][1]:
        assert out.mean() < photo.mean() - 5
    if copy == "clean":
        assert np.array_equal(out, photo)


def test_the_trainer_refuses_an_existing_out(tmp_path: Path) -> None:
    from benchmarks import train_photo_dark

    out = tmp_path / "taken.safetensors"
    out.write_bytes(b"x")
    with pytest.raises(SystemExit):
        train_photo_dark.main(["--out", str(out)])
    assert out.read_bytes() == b"x"


def test_the_trainer_fits_from_cached_rows(tmp_path: Path) -> None:
    from benchmarks import train_photo_dark

    rng = np.random.default_rng(0)
    n, names = 120, list(train_photo_dark.COPIES)
    copies = np.array([names[i % len(names)] for i in range(n)])
    labels = np.array([train_photo_dark.COPIES[c][1] for c in copies])
    rows = rng.normal(size=(n, len(photo_dark.feature_names())))
    rows[:, 0] += 2.0 * labels
    photos = np.array([f"p{i % 10}" for i in range(n)])
    cache = tmp_path / "rows.npz"
    np.savez(cache, rows=rows, labels=labels, photos=photos, copies=copies)
    out = tmp_path / "photo_dark.safetensors"
    record = train_photo_dark.main(["--cache", str(cache), "--out", str(out), "--folds", "2"])
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["threshold"] == record["threshold"] and 0 < record["threshold"] < 1
    assert record["cross_validated"]["roc_auc"] > 0.8


def test_the_shipped_reader_reads_a_darkened_photo_as_darker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tir_env import data, perception
    from tir_env.degradations import make_degradation
    from tir_env.images import batch_to_u8, u8_to_batch

    monkeypatch.delenv("TIR_LEARNED_WEIGHTS", raising=False)
    if not (photo_dark.available() and perception.available()):
        pytest.skip("the reader or perception is not in the learned weights")
    assert 0.0 < photo_dark.threshold() < 1.0
    clean = data.bundled("test").load("coffee")
    dark = batch_to_u8(
        make_degradation("dark").apply(u8_to_batch(clean), {"mode": 2.0, "max_value": 110.0})
    )
    p_clean, p_dark = (perception.perceive_photo(x).probs["dark"] for x in (clean, dark))
    assert photo_dark.darkened(dark, p_dark) > photo_dark.darkened(clean, p_clean)


def test_a_suspended_reader_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    path = tmp_path / f"{photo_dark.WEIGHTS_NAME}.safetensors"
    path.write_bytes(b"a stale or broken reader")
    with photo_dark.suspended():
        assert not photo_dark.available()
        assert photo_thresholds.adjusted(_photo(), _limits(), _probs(0.3))["dark"] == 0.6
    assert photo_dark.available()
    with pytest.raises(CheckpointError):
        photo_thresholds.adjusted(_photo(), _limits(), _probs(0.3))


def test_a_zero_reading_is_left_to_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    _reader(tmp_path, threshold=0.01)
    assert photo_thresholds.adjusted(_photo(), _limits(), _probs(0.0))["dark"] == 0.6


def test_a_forced_map_beside_other_types_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import train_photo_dark
    from tir_env.images import u8_to_batch

    copies = {**train_photo_dark.COPIES, "mixed": (("dark@1", "noise"), True, ())}
    monkeypatch.setattr(train_photo_dark, "COPIES", copies)
    with pytest.raises(ValueError, match="stand alone"):
        train_photo_dark.degraded_copy(
            u8_to_batch(_photo(side=16)), "mixed", np.random.default_rng(0)
        )


def test_tir_restore_says_where_darkness_was_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.commands.restore import perception_line
    from tir_env import perception

    if not perception.available():
        pytest.skip("no perception weights")
    folder = tmp_path / "weights"
    import shutil

    from tir_env.tools.learned.weights import weights_dir

    shutil.copytree(weights_dir(), folder)
    for name in ("photo_dark.safetensors", "photo_dark.json"):
        (folder / name).unlink(missing_ok=True)
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(folder))
    photo = _photo()
    assert "brightness histogram" not in perception_line(photo)
    _reader(folder, threshold=0.01)  # reads every photo as darkened
    assert "dark p=" in perception_line(photo)
    assert "read from the brightness histogram (photo-dark reader" in perception_line(photo)
