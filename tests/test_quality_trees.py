"""Boosted trees as a quality model (tir_env.quality_trees, benchmarks.train_tirqa_trees)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from tir_env import perception, quality_trees
from tir_env.errors import CheckpointError
from tir_env.tools.learned.weights import SHIPPED_DIR, weights_folder

torch.set_num_threads(1)


def _fitted(n_features: int = 5, seed: int = 0):
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, n_features))
    y = 2.0 * x[:, 0] + np.sin(3.0 * x[:, 1]) + 20.0
    return HistGradientBoostingRegressor(max_iter=30, random_state=seed).fit(x, y), x


def test_exported_trees_predict_what_scikit_learn_does() -> None:
    model, x = _fitted()
    trees = quality_trees.from_sklearn(model)
    assert np.allclose(trees.predict(x), model.predict(x), atol=1e-9)
    again = quality_trees.from_tensors(trees.tensors())
    assert np.allclose(again.predict(x[:20]), model.predict(x[:20]), atol=1e-9)
    with_nan = x[:3].copy()
    with_nan[:, 0] = np.nan  # a missing value follows the node's missing side, no error
    assert np.isfinite(trees.predict(with_nan)).all()
    with pytest.raises(ValueError, match="5 features"):
        trees.predict(x[:, :4])


def _tree_by_tree(trees: quality_trees.TreeEnsemble, x: np.ndarray) -> np.ndarray:
    """The plain walk: each tree in turn, each row down it, the leaves' values summed in order."""
    out = np.full(len(x), trees.baseline)
    for k, row in enumerate(x):
        for root in trees.roots:
            node = int(root)
            while not trees.leaf[node]:
                v = row[trees.feature[node]]
                left = trees.missing_left[node] if np.isnan(v) else v <= trees.threshold[node]
                node = int(trees.left[node] if left else trees.right[node])
            out[k] += trees.value[node]
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(0, 7),
    depth=st.integers(1, 6),
    missing=st.floats(0.0, 0.5),
)
def test_all_trees_at_once_sum_to_the_same_float_as_tree_by_tree(
    seed: int, rows: int, depth: int, missing: float
) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 4))
    x[rng.random(x.shape) < 0.1] = np.nan  # fitted with missing values: both sides learnt
    y = 3.0 * np.nan_to_num(x[:, 0]) + np.cos(np.nan_to_num(x[:, 2])) + 25.0
    model = HistGradientBoostingRegressor(max_iter=15, max_depth=depth, random_state=seed)
    trees = quality_trees.from_sklearn(model.fit(x, y))
    probe = rng.normal(size=(rows, 4)) * 2.0
    probe[rng.random(probe.shape) < missing] = np.nan
    assert np.array_equal(trees.predict(probe), _tree_by_tree(trees, probe))


def test_a_file_that_is_not_a_tree_ensemble_is_a_named_error() -> None:
    model, _ = _fitted()
    state = quality_trees.from_sklearn(model).tensors()
    with pytest.raises(CheckpointError, match="missing roots"):
        quality_trees.from_tensors({k: v for k, v in state.items() if k != "roots"})
    broken = dict(state, left=torch.full_like(state["left"], 10**9))
    with pytest.raises(CheckpointError, match="do not form trees"):
        quality_trees.from_tensors(broken)


def _clean_classifier(n_features: int = 5, seed: int = 0):
    """A binary classifier: 'clean' where the first feature is above 1."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, n_features))
    return HistGradientBoostingClassifier(max_iter=40, random_state=seed).fit(x, x[:, 0] > 1.0)


def test_the_clean_classifier_mixes_the_clean_psnr_into_the_regression() -> None:
    model, x = _fitted()
    classifier = _clean_classifier()
    logit = quality_trees.from_sklearn(classifier)
    assert np.allclose(logit.predict(x), classifier.decision_function(x), atol=1e-9)
    trees = quality_trees.QualityTrees(quality_trees.from_sklearn(model), logit, 45.0)
    again = quality_trees.quality_from_tensors(trees.tensors())
    q = classifier.predict_proba(x)[:, 1]
    r = model.predict(x)
    expected = q * np.maximum(45.0, r) + (1 - q) * r
    assert np.allclose(again.predict(x), expected, atol=1e-6)
    clean_looking = q > 0.5  # lifted at least halfway to the clean PSNR
    assert clean_looking.any() and np.all(
        again.predict(x)[clean_looking] >= (r + (45.0 - r) / 2)[clean_looking]
    )
    assert np.allclose(again.predict(x)[q < 0.01], r[q < 0.01], atol=0.5)
    # a file without the classifier reads as the regression alone
    plain = quality_trees.quality_from_tensors(quality_trees.from_sklearn(model).tensors())
    assert plain.clean is None and np.allclose(plain.predict(x), r, atol=1e-9)


def test_a_clean_classifier_without_its_psnr_or_of_another_width_is_a_named_error() -> None:
    model, _ = _fitted()
    state = quality_trees.QualityTrees(
        quality_trees.from_sklearn(model), quality_trees.from_sklearn(_clean_classifier())
    ).tensors()
    with pytest.raises(CheckpointError, match="without clean_psnr"):
        quality_trees.quality_from_tensors({k: v for k, v in state.items() if k != "clean_psnr"})
    wider = quality_trees.QualityTrees(
        quality_trees.from_sklearn(model), quality_trees.from_sklearn(_clean_classifier(6))
    ).tensors()
    with pytest.raises(CheckpointError, match="different features"):
        quality_trees.quality_from_tensors(wider)


def test_tirqa_reads_the_trees_only_when_the_weights_folder_holds_them(tmp_path) -> None:
    folder = tmp_path / "weights"
    shutil.copytree(SHIPPED_DIR, folder)
    (folder / "tirqa_trees.safetensors").unlink()  # the network alone
    crops = torch.rand(2, 3, 128, 128)
    prepared = perception.prepare(crops)
    with weights_folder(folder):
        perception.reload()
        network = perception.quality_batch(prepared)[0]
        assert torch.equal(perception.quality_psnr(prepared), network)
        model, _ = _fitted(quality_trees_features(), seed=1)
        save_file(
            quality_trees.from_sklearn(model).tensors(), str(folder / "tirqa_trees.safetensors")
        )
        perception.reload()  # forgets any trees read before
        assert quality_trees.available()
        from_trees = perception.quality_batch(prepared)[0]
        # the PSNR alone is the same number, without the network's pass
        assert torch.equal(perception.quality_psnr(prepared), from_trees)
    perception.reload()
    assert not torch.allclose(network, from_trees)
    assert from_trees.shape == (2,) and torch.isfinite(from_trees).all()


def test_the_shipped_folder_holds_the_trees_with_their_clean_classifier() -> None:
    perception.reload()
    assert quality_trees.available()
    trees = quality_trees.load()
    assert trees.clean is not None and trees.n_features == quality_trees_features()
    assert trees.clean.n_features == trees.n_features and trees.clean_psnr == 40.0


def test_batched_trees_read_each_image_as_alone() -> None:
    crops = perception.prepare(torch.rand(3, 3, 96, 96))
    big = perception.prepare(torch.rand(1, 3, 300, 260))  # read by tiles
    together = quality_trees.predict_psnr(crops)
    alone = torch.cat([quality_trees.predict_psnr(c[None]) for c in crops])
    assert torch.allclose(together, alone, atol=1e-5)
    assert torch.isfinite(quality_trees.predict_psnr(big)).all()


def quality_trees_features() -> int:
    """How many statistics the trees read (perception's, with the direction profile)."""
    from tir_env.tools.learned.perception_features import n_features

    return n_features(profile=True)


def test_train_script_refuses_an_existing_file_or_another_format(tmp_path) -> None:
    from benchmarks import train_tirqa_trees

    out = tmp_path / "t.safetensors"
    out.write_text("keep")
    with pytest.raises(SystemExit):
        train_tirqa_trees.main(["--out", str(out)])
    with pytest.raises(SystemExit):
        train_tirqa_trees.main(["--out", str(tmp_path / "t.pt")])
    assert out.read_text() == "keep"


def _scores(spearman: float, regret: float, fooled: float) -> dict[str, float]:
    return {
        "spearman_tirqa": spearman,
        "within_spearman_tirqa": 0.4,
        "best_pick_tirqa": 0.45,
        "pick_regret_tirqa": regret,
        "fooled_tirqa": fooled,
        "exploit_raises_tirqa": 0.7,
    }


def test_verdict_reads_both_parts_of_the_rule() -> None:
    from benchmarks.train_tirqa_trees import verdict

    shipped = _scores(0.45, 1.4, 0.5)
    good = verdict(shipped, _scores(0.60, 1.2, 0.4), {"exhaustive": 0.01, "greedy": -0.04})
    assert "Part 1 holds" in good and "part 2 holds" in good and "candidate" in good
    weak = verdict(shipped, _scores(0.47, 1.2, 0.4), {"exhaustive": 0.01, "greedy": 0.0})
    assert "Part 1 fails" in weak and "do not replace" in weak
    costly = verdict(shipped, _scores(0.60, 1.2, 0.4), {"exhaustive": -0.06, "greedy": 0.0})
    assert "part 2 fails" in costly
    against_v3 = verdict(shipped, _scores(0.47, 1.2, 0.4), {"exhaustive": 0.0}, baseline="v3")
    assert "do not replace v3" in against_v3
    replaced = verdict(shipped, _scores(0.60, 1.2, 0.4), {"exhaustive": 0.0}, replaced_by="v4")
    assert "They shipped, until v4 replaced them" in replaced
    shipping = verdict(shipped, _scores(0.60, 1.2, 0.4), {"exhaustive": 0.0}, ships=True)
    assert "They ship:" in shipping


def test_section_is_empty_until_every_result_is_committed(tmp_path, monkeypatch) -> None:
    import json

    from benchmarks import train_tirqa_trees

    monkeypatch.setattr(train_tirqa_trees, "STUDY", tmp_path)
    assert train_tirqa_trees.section() == ""
    for name, q in (("shipped", _scores(0.45, 1.4, 0.5)), ("trees", _scores(0.6, 1.1, 0.4))):
        quality = {"quality": q, "command": f"python -m perception_report {name}"}
        (tmp_path / f"quality_{name}.json").write_text(json.dumps(quality))
    assert train_tirqa_trees.section() == ""  # the agents' runs are not there yet
    for agent in ("exhaustive", "greedy"):
        summary = {"episodes": 10, "a": 20.0, "b": 20.1, "mean": 0.1, "se": 0.05}
        ab = {"summary": summary, "command": f"python -m benchmarks.ab_test --a {agent}"}
        (tmp_path / f"ab_{agent}.json").write_text(json.dumps(ab))
    record = {
        "command": "python -m x",
        "trees": 4,
        "nodes": 40,
        "candidates": 50,
        "train": "corpus:train@3",
        "seconds": 1.0,
    }
    (tmp_path / "train_record.json").write_text(json.dumps(record))
    text = train_tirqa_trees.section()
    assert "| Spearman with true PSNR, all candidates | 0.450 | 0.600 |" in text
    assert "| `greedy` | 10 | 20.00 | 20.10 | +0.100 (0.050) |" in text
    assert "`python -m perception_report trees`" in " ".join(text.split())  # wrapped


def test_the_committed_study_file_is_a_tree_ensemble_over_perceptions_statistics() -> None:
    from pathlib import Path

    from tir_env.tools.learned.weights import load_state

    path = Path(__file__).parents[1] / "benchmarks/results/tirqa_trees/tirqa_trees.safetensors"
    trees = quality_trees.from_tensors(load_state(path), str(path))
    assert trees.n_features == quality_trees_features() and len(trees.roots) == 400
    psnr = trees.predict(np.zeros((2, trees.n_features)))
    assert np.all((psnr > 0.0) & (psnr < 60.0))


def test_heldout_lines_pair_each_set_with_the_shipped_report(tmp_path, monkeypatch) -> None:
    import json

    from benchmarks import train_tirqa_trees

    study = tmp_path / "tirqa_trees"
    study.mkdir()
    monkeypatch.setattr(train_tirqa_trees, "STUDY", study)
    monkeypatch.setattr(train_tirqa_trees, "NETWORK_REPORT", study / "heldout_network.json")
    assert train_tirqa_trees.heldout_lines() == []
    shipped = {"sets": {"corpus-test": {"quality": _scores(0.45, 1.5, 0.6)}}}
    trees = {"command": "python -m x", "sets": {"corpus-test": {"quality": _scores(0.6, 1.4, 0.4)}}}
    (study / "heldout_network.json").write_text(json.dumps(shipped))
    (study / "heldout_trees.json").write_text(json.dumps(trees))
    text = "\n".join(train_tirqa_trees.heldout_lines())
    assert "| Spearman with true PSNR, all candidates | 0.450 | 0.600 |" in text
    named = "\n".join(
        train_tirqa_trees.heldout_lines(study, study / "heldout_network.json", ("v3", "v4"))
    )
    assert "corpus-test, v3 | corpus-test, v4" in named and "v3's numbers" in named


def test_verdict_says_whether_the_trees_saw_clean_crops() -> None:
    from benchmarks.train_tirqa_trees import verdict

    shipped, trees = _scores(0.45, 1.4, 0.5), _scores(0.60, 1.2, 0.4)
    ab = {"exhaustive": 0.0, "greedy": 0.0}
    assert "never saw a clean crop" in verdict(shipped, trees, ab)
    with_clean = verdict(shipped, trees, ab, clean=True)
    assert "pass `tirqa`'s tests" in with_clean and "never saw" not in with_clean


def test_speed_benchmark_times_both_calls_and_finds_them_equal(tmp_path) -> None:
    from benchmarks import tirqa_speed

    doc = tmp_path / "metrics.md"
    doc.write_text("a\n<!-- tirqa-speed:start -->\nold\n<!-- tirqa-speed:end -->\nb\n")
    report = tirqa_speed.main(
        ["--crops", "2", "--size", "64", "--repeats", "1", "--json", str(tmp_path / "r.json")]
        + ["--doc", str(doc)]
    )
    assert report["max_psnr_difference_db"] == 0.0
    assert set(report["ms"]) >= {"before", "now", "network"} and report["speed_up"] > 0
    text = doc.read_text()
    assert "old" not in text and "| now |" in text and text.endswith("b\n")


def test_sets_of_groups_are_cached_by_seed_and_joined_with_distinct_ids(
    tmp_path, monkeypatch
) -> None:
    from benchmarks import tirqa_ceiling, train_tirqa_trees

    calls = []

    def fake(images, n, seed, cache, second_steps=0, protocols=None):
        calls.append((seed, cache.name, second_steps))
        rows = {"group": np.repeat(np.arange(n), 2), "psnr": np.full(2 * n, float(seed))}
        return ["a"], rows

    monkeypatch.setattr(tirqa_ceiling, "groups_cached", fake)
    rows = train_tirqa_trees.training_groups("x", 3, [0, 5], tmp_path, second_steps=2)
    assert calls == [(0, "train.npz", 2), (5, "train_s5.npz", 2)]
    assert list(rows["group"]) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert list(rows["psnr"]) == [0.0] * 6 + [5.0] * 6


@pytest.mark.parametrize(("refit", "holds"), [(0.60, True), (0.50, False)])
def test_release4_section_reads_part_one_of_its_rule(tmp_path, refit: float, holds: bool) -> None:
    import json

    from benchmarks import train_tirqa_trees

    assert train_tirqa_trees.release4_section(tmp_path) == ""  # nothing measured yet
    for name, q in (("shipped", _scores(0.55, 1.2, 0.4)), ("trees", _scores(refit, 1.2, 0.4))):
        quality = {"quality": q, "command": f"python -m perception_report {name}"}
        (tmp_path / f"quality_{name}.json").write_text(json.dumps(quality))
    record = {"command": "python -m x", "train": "corpus:train@4", "seconds": 1.0}
    (tmp_path / "train_record.json").write_text(json.dumps(record))
    text = " ".join(train_tirqa_trees.release4_section(tmp_path).split())
    assert f"| Spearman with true PSNR, all candidates | 0.550 | {refit:.3f} |" in text
    assert ("Part 1 holds" in text) is holds
    assert ("the shipped trees stay" in text) is not holds
