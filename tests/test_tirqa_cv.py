"""The cross-validation of the tirqa trees' examples and capacity (benchmarks.tirqa_cv)."""

from __future__ import annotations

import json

import numpy as np

from benchmarks import tirqa_cv


def _rows(n_groups: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    """Groups of a degraded crop, two tools' outputs and one two-step candidate each."""
    rng = np.random.default_rng(seed)
    steps = np.tile([0, 1, 1, 2], n_groups)
    group = np.repeat(np.arange(n_groups), 4)
    pixels = rng.normal(size=(len(steps), 3))
    psnr = 20.0 + 3.0 * pixels[:, 0] + rng.normal(scale=0.1, size=len(steps))
    return {
        "group": group,
        "photo": group % 8,
        "steps": steps,
        "set": group // (n_groups // 2),
        "psnr": psnr,
        "pixels": pixels,
        "perception": rng.normal(size=(len(steps), 2)),
    }


def test_group_scores_read_a_perfect_and_a_reversed_guess() -> None:
    truth = np.array([10.0, 12.0, 14.0, 20.0, 25.0, 30.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    perfect = tirqa_cv.group_scores(truth, truth, groups)
    assert perfect == {"spearman": 1.0, "within": 1.0, "regret": 0.0}
    reversed_ = tirqa_cv.group_scores(-truth, truth, groups)
    assert reversed_["within"] == -1.0 and reversed_["regret"] == (14.0 - 10.0 + 30.0 - 20.0) / 2


def test_cross_validation_scores_held_out_photos_and_reads_what_decides_the_psnr() -> None:
    rows = _rows()
    result = tirqa_cv.cross_validate(rows, ((0, 1), 2, "v3", ""), seed=0)
    assert len(result["folds"]) == tirqa_cv.FOLDS
    assert result["spearman"] > 0.8 and result["regret"] < 1.0  # the first column decides
    shuffled = {
        **rows,
        "pixels": rows["pixels"][:, [1, 2, 0]][
            np.random.default_rng(1).permutation(len(rows["psnr"]))
        ],
    }
    assert (
        tirqa_cv.cross_validate(shuffled, ((0,), 1, "v3", "perception"), seed=0)["spearman"] < 0.5
    )


def test_section_is_empty_until_committed_then_shows_every_variant(tmp_path) -> None:
    path = tmp_path / "cv.json"
    assert tirqa_cv.section(path) == ""
    scores = {"spearman": 0.6, "within": 0.35, "regret": 1.25}
    result = {"command": "python -m benchmarks.tirqa_cv", "folds": 4, "variants": {"a": scores}}
    path.write_text(json.dumps(result))
    text = tirqa_cv.section(path)
    assert "| a | 0.600 | 0.350 | 1.250 |" in text and "python -m benchmarks.tirqa_cv" in text


def test_the_section_says_what_each_step_moved() -> None:
    names = list(tirqa_cv.VARIANTS)[:2]
    variants = {names[0]: {"spearman": 0.60}, names[1]: {"spearman": 0.65}}
    assert f"{names[1]} +0.050" in tirqa_cv._steps_sentence(variants)
    assert tirqa_cv._steps_sentence({names[0]: {"spearman": 0.6}}) == ""


def test_input_pixels_are_each_groups_first_row_and_the_paired_variant_runs() -> None:
    rows = _rows()
    given = tirqa_cv.input_pixels(rows)
    assert np.array_equal(given[:4], np.repeat(rows["pixels"][:1], 4, axis=0))
    assert np.array_equal(given[4:8], np.repeat(rows["pixels"][4:5], 4, axis=0))
    result = tirqa_cv.cross_validate(rows, ((0, 1), 1, "v3", "input"), seed=0)
    assert np.isfinite(result["spearman"]) and len(result["folds"]) == tirqa_cv.FOLDS
