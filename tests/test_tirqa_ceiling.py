"""The no-reference PSNR ceiling study (benchmarks.tirqa_ceiling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import tirqa_ceiling

torch.set_num_threads(1)


def test_told_features_mark_the_types_their_severity_and_the_tool() -> None:
    tools = ["a", "b"]
    told = tirqa_ceiling.told_features([("jpeg", {"quality": 27.0})], "b", tools)
    assert told.shape == (8 + 8 + 3,)
    assert told[:8].sum() == 1.0 and told[8:16].sum() == pytest.approx(2 / 19)
    assert list(told[16:]) == [0.0, 0.0, 1.0]  # none (the input), a, b
    assert list(tirqa_ceiling.told_features([], None, tools)[16:]) == [1.0, 0.0, 0.0]


def _fake(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    told = rng.uniform(size=(n, 3))
    psnr = 10.0 + 20.0 * told[:, 0]  # what the told block holds decides the PSNR
    return {
        "group": np.arange(n) // 5,
        "photo": np.arange(n) % 3,
        "psnr": psnr,
        "tirqa": psnr + rng.normal(scale=8.0, size=n),
        "told": told,
        "pixels": rng.uniform(size=(n, 4)),  # pure noise
        "clean": rng.uniform(size=(n, 2)),
    }


def test_a_predictor_told_what_decides_the_psnr_ranks_it_and_noise_does_not() -> None:
    rng = np.random.default_rng(0)
    scores = tirqa_ceiling.fit_and_score(_fake(400, rng), _fake(200, rng), seed=0)
    assert scores["told"] > 0.95 and scores["told + pixels + clean content"] > 0.9
    assert abs(scores["pixels"]) < 0.3
    assert 0.3 < scores["tirqa"] < 0.95
    table = tirqa_ceiling.markdown({"spearman": scores})
    assert table.count("\n") == 7 and f"{scores['told']:.3f}" in table
    old = {k: v for k, v in scores.items() if k != "pixels, MLP"}  # a result from before it
    assert "MLP" not in tirqa_ceiling.markdown({"spearman": old})
    few = tirqa_ceiling.fit_and_score(_fake(400, rng), _fake(200, rng), seed=0, share=0.1)
    assert 0.5 < few["told"] < scores["told"]  # 40 rows learn it, less well


def test_scores_by_subset_of_the_test_photos() -> None:
    rng = np.random.default_rng(1)
    train, test = _fake(300, rng), _fake(150, rng)
    guesses = tirqa_ceiling.predictions(train, test, seed=0)
    split = tirqa_ceiling.by_subset(guesses, test, {"x": [0], "y": [1, 2]})
    assert set(split) == {"x", "y"} and split["x"]["told"] > 0.9
    ids = ["lomiri/a", "skimage/chelsea", "plasma/b", "sklearn/china"]
    assert tirqa_ceiling.test_subsets(ids) == {"corpus-only": [0, 2], "bundled": [1, 3]}
    assert tirqa_ceiling.test_subsets(ids[:1]) == {}


def test_refuses_to_overwrite(tmp_path) -> None:
    out = tmp_path / "x.json"
    out.write_text("{}")
    with pytest.raises(SystemExit):
        tirqa_ceiling.main(["--json", str(out)])
    assert out.read_text() == "{}"


def test_section_is_empty_until_committed_then_reads_the_numbers(tmp_path) -> None:
    import json

    path = tmp_path / "ceiling.json"
    assert tirqa_ceiling.section(path) == ""
    names = ("tirqa", *tirqa_ceiling.VARIANTS)
    scores = dict(zip(names, (0.5, 0.55, 0.7, 0.8, 0.95, 0.45), strict=True))
    result = {
        "command": "python -m benchmarks.tirqa_ceiling",
        "train": "corpus:train@3",
        "test": "corpus:test",
        "candidates": {"train": 50, "test": 20},
        "spearman": scores,
        "by_set": {"corpus-only": scores, "bundled": scores},
        "learning_curve": {"0.25": scores, "0.5": scores},
    }
    path.write_text(json.dumps(result))
    text = tirqa_ceiling.section(path)
    flat = " ".join(text.split())  # the prose is wrapped
    assert "reaches 0.800, under the 0.90" in flat and "0.950" in text
    assert "fitted on 25%" in text and "| `told` | 0.700 |" in text
    assert "reaches 0.450: the trees, not the examples" in flat


def test_doublings_to_a_target_at_the_last_rate() -> None:
    curve = {"0.25": {"m": 0.80}, "0.5": {"m": 0.84}}
    assert tirqa_ceiling.doublings_to(0.9, curve, 0.86, "m") == pytest.approx(2.0)
    assert tirqa_ceiling.doublings_to(0.9, curve, 0.95, "m") == 0.0  # already there
    assert tirqa_ceiling.doublings_to(0.9, curve, 0.84, "m") is None  # no rise
    assert tirqa_ceiling.doublings_to(0.9, {}, 0.84, "m") is None


def test_groups_are_cached_and_remade_for_another_size(tmp_path, monkeypatch) -> None:
    made = []

    def fake_groups(photos, n, seed, second_steps=0, protocols=None):
        made.append(n)
        return _fake(n, np.random.default_rng(seed))

    monkeypatch.setattr(tirqa_ceiling, "photos_of", lambda images: (["a"], [None]))
    monkeypatch.setattr(tirqa_ceiling, "make_groups", fake_groups)
    cache = tmp_path / "train.npz"
    _, first = tirqa_ceiling.groups_cached("x", 10, 0, cache)
    _, again = tirqa_ceiling.groups_cached("x", 10, 0, cache)
    assert made == [10] and np.array_equal(first["psnr"], again["psnr"])
    tirqa_ceiling.groups_cached("x", 20, 0, cache)  # another size: made afresh
    assert made == [10, 20]
    tirqa_ceiling.groups_cached("x", 20, 0, cache, second_steps=2)  # other candidates
    assert made == [10, 20, 20]
    tirqa_ceiling.groups_cached("x", 20, 0, cache, second_steps=2)
    assert made == [10, 20, 20]
    tirqa_ceiling.groups_cached("x", 20, 0, cache, 2, ("single", "mio-a"))  # other crops
    assert made == [10, 20, 20, 20]
    tirqa_ceiling.groups_cached("x", 20, 0, cache, 2, ("single", "mio-a"))
    assert made == [10, 20, 20, 20]


def test_groups_of_training_protocols_hold_no_evaluation_combination() -> None:
    from tir_env.degradations.protocols import COMBOS

    shipped = set(tirqa_ceiling.protocol_combos())
    assert shipped == {c for s in tirqa_ceiling.SUITES for c in COMBOS[s]}
    training = set(tirqa_ceiling.protocol_combos(("single", "mio-a", "train-d3")))
    unseen = {c for s in ("mio-b", "mio-c", "ood-d2", "ood-d3") for c in COMBOS[s]}
    assert training and not training & unseen


def test_every_combination_lists_each_size_equally_and_each_combination() -> None:
    from collections import Counter
    from itertools import combinations

    from tir_env.degradations.protocols import AGENTICIR_TYPES, COMBOS

    every = tirqa_ceiling.protocol_combos((tirqa_ceiling.EVERY,))
    sizes = Counter(len(c) for c in every)
    assert sizes[1] == sizes[2] == sizes[3] and set(sizes) == {1, 2, 3}
    wanted = {c for k in (1, 2, 3) for c in combinations(AGENTICIR_TYPES, k)}
    assert set(every) == wanted
    # the suites' combinations among them (MiO's groups list theirs in AgenticIR's order)
    assert {frozenset(c) for c in COMBOS["mio-b"]} <= {frozenset(c) for c in wanted}


def test_second_steps_add_candidates_after_the_groups_first_draws() -> None:
    from tir_env import data

    source = data.source("bundled:test")
    photos = [source.load(source.ids[0])]
    plain = tirqa_ceiling.make_groups(photos, 1, seed=3, tools_per_crop=2)
    more = tirqa_ceiling.make_groups(photos, 1, seed=3, tools_per_crop=2, second_steps=2)
    assert list(plain["steps"]) == [0, 1, 1] and list(more["steps"]) == [0, 1, 1, 2, 2]
    # the first candidates are drawn as without the option, so older caches stay valid
    assert np.array_equal(more["psnr"][:3], plain["psnr"])
    assert np.allclose(more["pixels"][:3], plain["pixels"], atol=1e-4)  # batched: ~1e-6
    assert np.isfinite(more["psnr"]).all() and more["pixels"].shape[0] == 5
