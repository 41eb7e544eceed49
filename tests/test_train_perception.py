"""The perception v2 training recipe (tiny, on the bundled photos) and the report's scoring."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.perception_report import presence_scores
from benchmarks.train_perception import Config, best_thresholds, f_beta, main, retune
from tir_env.degradations.protocols import AGENTICIR_TYPES

TINY = Config(train="train", val="val", samples=24, val_samples=16, steps=2, batch=4, threads=1)


@pytest.mark.parametrize(
    ("arch", "net_class"), [("features", "PerceptionFeatureNet"), ("cnn", "PerceptionNetV2")]
)
def test_tiny_run_writes_loadable_weights_and_reuses_its_examples(
    tmp_path: Path, arch: str, net_class: str
) -> None:
    cfg = replace(TINY, out=str(tmp_path), arch=arch)
    record = main(cfg)
    assert (tmp_path / "perception.safetensors").is_file()
    saved = json.loads((tmp_path / "perception.json").read_text())
    assert saved["architecture"]["class"] == net_class
    assert set(saved["thresholds"]) == set(AGENTICIR_TYPES)
    assert record["val"].keys() >= {"exact_set", "mean_f1", "psnr_spearman"}
    caches = sorted((tmp_path / "examples").glob("*.npz"))
    assert len(caches) == 2
    again = main(cfg)  # the same settings reuse the cached examples, same random stream
    assert again["thresholds"] == record["thresholds"]
    assert sorted((tmp_path / "examples").glob("*.npz")) == caches
    tuned = retune(replace(cfg, init=str(tmp_path / "perception.safetensors"), threshold_beta=0.3))
    assert tuned["threshold_beta"] == 0.3 and tuned["architecture"] == saved["architecture"]
    # the written weights load the way the library loads shipped ones
    assert type(load_perception(tmp_path)).__name__ == net_class


def load_perception(folder: Path):
    """The perception network the library builds from ``folder``'s weights and record."""
    from tir_env.perception import build
    from tir_env.tools.learned.weights import load_into

    arch = json.loads((folder / "perception.json").read_text())["architecture"]
    return load_into(build(arch), folder / "perception.safetensors")


def test_the_features_network_trains_with_the_ranking_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks.train_perception as tp

    ranked: list[bool] = []
    real_losses = tp.losses

    def spy(out: Any, ex: Any, index: Any, rank: bool = False) -> Any:
        ranked.append(rank)
        return real_losses(out, ex, index, rank=rank)

    monkeypatch.setattr(tp, "losses", spy)
    cfg = replace(TINY, out=str(tmp_path), group_tools=2, rank_weight=1.0, samples=30)
    record = main(cfg)
    assert ranked and all(ranked)  # every step's loss had the ranking term
    assert record["architecture"]["class"] == "PerceptionFeatureNet"
    assert (
        record["config"]["rank_weight"] == 1.0 and (tmp_path / "perception.safetensors").is_file()
    )


def test_an_unknown_architecture_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="arch"):
        replace(TINY, arch="transformer")


def test_threshold_tuning_prefers_precision_when_asked() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((400, 8)) < 0.3
    probs = np.clip(truth * 0.4 + rng.random((400, 8)) * 0.6, 0, 1)
    loose, strict = best_thresholds(probs, truth, 1.0), best_thresholds(probs, truth, 0.3)
    assert all(strict[n] >= loose[n] for n in AGENTICIR_TYPES)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=50))
def test_f_beta_is_a_score_between_0_and_1(pairs: list[tuple[bool, bool]]) -> None:
    predicted = np.array([p for p, _ in pairs])
    truth = np.array([t for _, t in pairs])
    for beta in (0.5, 1.0, 2.0):
        assert 0.0 <= f_beta(predicted, truth, beta) <= 1.0
    if predicted.any() and (predicted == truth).all():
        assert f_beta(predicted, truth, 1.0) == pytest.approx(1.0)


def test_presence_scores_count_no_true_negatives() -> None:
    rows = [
        {"truth": ["noise"], "found": ["noise"]},
        {"truth": ["noise", "jpeg"], "found": ["noise"]},
        {"truth": [], "found": ["jpeg"]},
    ] + [{"truth": [], "found": []}] * 50  # true negatives must not inflate anything
    scores = presence_scores(rows)
    noise = {k: v for k, v in scores["noise"].items() if k != "auc"}
    assert noise == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert scores["jpeg"]["precision"] == 0.0 and scores["jpeg"]["recall"] == 0.0
    assert scores["haze"]["f1"] == 0.0 and scores["haze"]["support"] == 0


def test_every_flag_has_its_field_doc_as_help() -> None:
    from benchmarks.train_perception import parse_args
    from tir_env.config_cli import field_docs

    docs = field_docs(Config)
    assert set(docs) == set(Config.__dataclass_fields__)
    assert all(text and "  " not in text for text in docs.values())
    cfg = parse_args(["--steps", "7", "--retune", "--threshold-beta", "0.3"])
    assert (cfg.steps, cfg.retune, cfg.threshold_beta) == (7, True, 0.3)


def test_separability_is_the_roc_auc() -> None:
    from benchmarks.perception_report import separability

    def row(p: float, present: bool) -> dict:
        return {"truth": ["noise"] if present else [], "probability": {"noise": p}}

    perfect = [row(0.9, True), row(0.8, True), row(0.1, False), row(0.2, False)]
    assert separability(perfect, "noise") == 1.0
    swapped = [row(0.1, True), row(0.9, False)]
    assert separability(swapped, "noise") == 0.0
    tied = [row(0.5, True), row(0.5, False)]
    assert separability(tied, "noise") == 0.5
    assert np.isnan(separability([row(0.5, True)], "noise"))


def test_rank_loss_orders_each_group_by_true_psnr() -> None:
    import torch

    from benchmarks.train_perception import Examples, group_batch, rank_loss

    n = 6
    ex = Examples(
        images=np.zeros((n, 8, 8, 3), np.uint8),
        presence=np.zeros((n, 8), np.float32),
        severity=np.zeros((n, 8), np.float32),
        labelled=np.ones(n, np.float32),
        quality=np.array([[0.5, 0], [0.7, 0], [0.3, 0], [0.9, 0], [0.1, 0], [0.2, 0]], np.float32),
        group=np.array([0, 0, 0, 1, 2, 2]),
    )
    index = np.arange(n)
    wrong = torch.tensor([0.5, 0.7, 0.3, 0.0, 1.0, -1.0])  # group 2 ranked wrongly
    ranked = torch.tensor([0.5, 0.7, 0.3, 0.0, -1.0, 1.0])  # every group in order
    assert float(rank_loss(ranked, ex, index)) < float(rank_loss(wrong, ex, index))
    # a lone example has nothing to be ranked against: no loss, no error
    assert float(rank_loss(ranked, ex, np.array([3]))) == 0.0
    # a batch is made of whole groups (the pairs the loss compares)
    batch = group_batch(ex, 6, np.random.default_rng(0))
    assert len(batch) == 6 and sorted(batch.tolist()) == list(range(6))


def test_a_tirqa_run_writes_the_quality_network_the_metric_prefers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import torch

    from tir_env import perception
    from tir_env.tools.learned.weights import weights_dir

    shipped = weights_dir()
    cfg = replace(
        TINY,
        out=str(tmp_path / "run"),
        name="tirqa",
        group_tools=2,
        rank_weight=1.0,
        presence_weight=0.0,
        samples=30,
    )
    record = main(cfg)
    assert record["name"] == "tirqa" and record["config"]["presence_weight"] == 0.0
    assert not (tmp_path / "run" / "perception.safetensors").exists()
    folder = tmp_path / "weights"
    folder.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(shipped / f"perception{suffix}", folder)
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(folder))
    perception.reload()
    try:
        image = torch.rand(2, 3, 64, 64)
        prepared = perception.prepare(image)
        assert perception.quality_network() == "perception"
        head = perception.quality_batch(prepared)[0]
        for suffix in (".safetensors", ".json"):
            shutil.copy(tmp_path / "run" / f"tirqa{suffix}", folder)
        assert perception.quality_network() == "tirqa"
        separate = perception.quality_batch(prepared)[0]
        assert not torch.allclose(head, separate)  # another network answers
        photo = perception.perceive_photo((image[0].permute(1, 2, 0) * 255).byte().numpy())
        assert photo.psnr == pytest.approx(
            float(
                perception.quality_batch(
                    perception.prepare(
                        perception.u8_to_batch((image[0].permute(1, 2, 0) * 255).byte().numpy())
                    )
                )[0][0]
            ),
            abs=1e-4,
        )
    finally:
        perception.reload()


def test_an_unknown_network_name_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="name"):
        replace(TINY, name="quality")
