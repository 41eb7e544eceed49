"""The streamed CNN perception trainer (tiny, on the bundled photos, on CPU)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from benchmarks import train_perception as tp
from benchmarks.train_perception_stream import (
    EXPORT_SIDE,
    Buffer,
    StreamConfig,
    WorkersDiedError,
    export_photos,
    learning_rate,
    roc_auc,
    run,
)
from tir_env.errors import CheckpointError, OutputExistsError, RunExistsError

TINY = StreamConfig(
    train="train",
    minutes=0.12,
    workers=1,
    chunk=4,
    capacity=256,
    probe=8,
    start_after=8,
    widths=(4, 6),
    hidden=8,
    batch=4,
    checkpoint_seconds=2.0,
    device="cpu",
)


def test_a_tiny_run_writes_weights_the_library_loads_and_a_run_continues_from_them(
    tmp_path: Path,
) -> None:
    from tir_env.perception import build
    from tir_env.tools.learned.weights import load_into

    record = run(replace(TINY, out=str(tmp_path / "a")))
    assert record["architecture"] == {
        "class": "PerceptionNetV2",
        "classes": 18,
        "width": 4,
        "hidden": 8,
    }
    assert record["progress"]["examples_generated"] >= TINY.start_after
    assert record["progress"]["steps"] > 0
    assert record["command"].startswith("tir train perception-stream --out ")
    assert "--train train " in record["command"] and "--widths 4 6 " in record["command"]
    for folder, width in ((tmp_path / "a", 4), (tmp_path / "a" / "width6", 6)):
        saved = json.loads((folder / "perception.json").read_text())
        net = load_into(build(saved["architecture"]), folder / "perception.safetensors")
        assert net.state_dict()["features.0.weight"].shape[0] == width
        curve = [json.loads(line) for line in (folder / "curve.jsonl").read_text().splitlines()]
        assert curve and set(curve[-1]["probe_auc"]) == set(saved["thresholds"])
    init = str(tmp_path / "a" / "perception.safetensors")
    again = run(replace(TINY, out=str(tmp_path / "b"), init=init))
    assert again["stream_config"]["init"] == init
    with pytest.raises(RunExistsError, match="already holds a run"):
        run(replace(TINY, out=str(tmp_path / "a")))  # nothing of the first run is overwritten


def test_a_run_whose_workers_all_die_stops_with_a_named_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a broken degradation")

    monkeypatch.setattr(tp, "make_examples", broken)  # the forked worker inherits it
    with pytest.raises(WorkersDiedError, match="exited"):
        run(replace(TINY, out=str(tmp_path / "a"), minutes=1.0))
    assert not (tmp_path / "a" / "perception.safetensors").exists()


def test_a_run_with_val_photos_tunes_its_thresholds(tmp_path: Path) -> None:
    record = run(replace(TINY, out=str(tmp_path / "a"), widths=(4,), val="val", val_samples=24))
    saved = json.loads((tmp_path / "a" / "perception.json").read_text())
    assert saved["thresholds"] == record["thresholds"]
    assert record["val"].keys() >= {"exact_set", "mean_f1"} and "retuned_by" in saved


def test_a_network_of_another_width_cannot_continue_a_run(tmp_path: Path) -> None:
    run(replace(TINY, out=str(tmp_path / "a"), widths=(4,)))
    init = str(tmp_path / "a" / "perception.safetensors")
    with pytest.raises(CheckpointError, match="does not fit"):
        run(replace(TINY, out=str(tmp_path / "b"), init=init, widths=(6,)))


@pytest.mark.parametrize(
    "settings",
    [
        {"minutes": 0},
        {"batch": 0},
        {"capacity": 2, "batch": 4},
        {"widths": ()},
        {"widths": (8, 8)},
        {"device": "tpu"},
        {"start_after": 0},
        {"start_after": 20, "capacity": 10, "batch": 4},
        {"chunk": 20, "capacity": 10, "batch": 4},
        {"probe": 0},
        {"val_samples": 0},
        {"workers": -1},
        {"hidden": 0},
        {"checkpoint_seconds": 0},
    ],
)
def test_bad_settings_are_refused(settings: dict) -> None:
    with pytest.raises(ValueError):
        StreamConfig(**settings)


@given(st.lists(st.integers(1, 7), min_size=1, max_size=12))
def test_the_buffer_keeps_the_newest_examples(chunks: list[int]) -> None:
    buffer, count = Buffer(capacity=10, crop=2, device=torch.device("cpu")), 0
    for n in chunks:
        ids = np.arange(count, count + n)
        buffer.add(
            {
                "images": np.zeros((n, 2, 2, 3), np.uint8),
                "presence": np.zeros((n, 8), np.float32),
                "severity": np.zeros((n, 8), np.float32),
                "labelled": np.ones(n, np.float32),
                "quality": np.stack([ids, ids], axis=1).astype(np.float32),
            }
        )
        count += n
    assert buffer.filled == min(10, count) and buffer.added == count
    held = sorted(buffer.data["quality"][: buffer.filled, 0].int().tolist())
    assert held == list(range(count - buffer.filled, count))
    sample = buffer.sample(32, torch.Generator().manual_seed(0))
    assert set(sample["quality"][:, 0].int().tolist()) <= set(held)


@given(st.floats(0.0, 1.2))
def test_the_learning_rate_warms_up_then_decays_to_zero(fraction: float) -> None:
    cfg = StreamConfig(minutes=1.0, lr=1e-3)
    lr = learning_rate(cfg, fraction * 50, 50)  # over the 50 s that training runs
    assert 0.0 <= lr <= 1e-3 + 1e-12
    assert learning_rate(cfg, 0.03 * 50, 50) == pytest.approx(1e-3)
    assert learning_rate(cfg, 50, 50) == pytest.approx(0.0, abs=1e-12)
    if 0.03 <= fraction <= 0.98:  # past the warm-up it only falls
        assert learning_rate(cfg, (fraction + 0.01) * 50, 50) <= lr


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=30))
def test_roc_auc_counts_won_pairs_and_half_the_ties(pairs: list[tuple[int, bool]]) -> None:
    score = np.array([p[0] for p in pairs], float)
    truth = np.array([p[1] for p in pairs])
    auc = roc_auc(score, truth)
    if truth.all() or not truth.any():
        assert np.isnan(auc)
        return
    pos, neg = score[truth], score[~truth]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert auc == pytest.approx(wins, abs=1e-4)


def test_export_photos_copies_small_photos_and_shrinks_large_ones(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(small).save(photos / "small.png")
    large = rng.integers(0, 255, (EXPORT_SIDE + 100, 50, 3), dtype=np.uint8)
    Image.fromarray(large).save(photos / "large.png")
    out = tmp_path / "out"
    assert export_photos(str(photos), out) == {"copied": 1, "reencoded": 1}
    assert (out / "small.png").read_bytes() == (photos / "small.png").read_bytes()
    assert max(Image.open(out / "large.jpg").size) == EXPORT_SIDE
    with pytest.raises(OutputExistsError, match="not empty"):
        export_photos(str(photos), out)  # nothing is overwritten
    (photos / "sub").mkdir()
    Image.fromarray(small).save(photos / "sub" / "small.png")
    Image.fromarray(small).save(photos / "sub__small.png")
    with pytest.raises(OutputExistsError, match="two photos"):
        export_photos(str(photos), tmp_path / "out2")


def test_tir_train_perception_stream_exports_photos(tmp_path: Path) -> None:
    from benchmarks.commands.configs import TrainRecipeConfig
    from benchmarks.commands.train import cmd_train

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(photos / "a.png")
    args = ("--train", str(photos), "--export-photos", str(tmp_path / "out"))
    assert cmd_train(TrainRecipeConfig(algo="perception-stream", train_args=args)) == 0
    assert (tmp_path / "out" / "a.png").is_file()


def test_target_losses_follow_their_formulas() -> None:
    rng = np.random.default_rng(1)
    n = 6
    out = torch.from_numpy(rng.normal(size=(n, 18)).astype(np.float32))
    presence = torch.from_numpy((rng.random((n, 8)) > 0.5).astype(np.float32))
    severity = torch.from_numpy(rng.random((n, 8)).astype(np.float32))
    labelled = torch.tensor([1, 1, 0, 1, 0, 1], dtype=torch.float32)
    quality = torch.from_numpy(rng.random((n, 2)).astype(np.float32))
    parts = tp.target_losses(out, presence, severity, labelled, quality)
    bce, sev, count, mask_sum = 0.0, 0.0, 0, 0.0
    for i in range(n):
        for j in range(8):
            p = 1 / (1 + np.exp(-float(out[i, j])))
            y = float(presence[i, j])
            if labelled[i]:
                bce += -(y * np.log(p) + (1 - y) * np.log(1 - p))
                if y:
                    s = 1 / (1 + np.exp(-float(out[i, 8 + j])))
                    sev += (s - float(severity[i, j])) ** 2
                    mask_sum += 1
        count += int(labelled[i])
    q = 1 / (1 + np.exp(-out[:, 16:18].numpy().astype(np.float64)))
    assert float(parts["presence"]) == pytest.approx(bce / count / 8, rel=1e-4)
    assert float(parts["severity"]) == pytest.approx(sev / mask_sum, rel=1e-4)
    assert float(parts["quality"]) == pytest.approx(((q - quality.numpy()) ** 2).mean(), rel=1e-4)
