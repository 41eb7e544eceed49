r"""Would more examples, two-step candidates or more capacity lift `tirqa`'s trees? A CV on train.

Trees v4 (docs/perception.md) was fitted on four times v3's groups, with two-step candidates,
and read val no better than v3. This asks why on the train photos alone, by photo-grouped
cross-validation over the same cached groups (``train_tirqa_trees --more-seeds ...
--second-steps 2``): each fold's trees are fitted on the other folds' photos and scored on
the held-out photos' single-step groups (a degraded crop and four tools' outputs, as val's
and test's groups are), by the quality report's measures: Spearman over every candidate, mean
Spearman within a group, and the PSNR lost by the group's pick. Only the regression is
fitted (no clean-crop classifier), so the variants differ in their examples and capacity
alone.

``stacked`` adds the perception network's 18 outputs to the statistics. Perception was
fitted on these same photos, so on them its outputs are better than on unseen photos: that
row flatters, and is here to say so, not to be shipped.

``reading the input`` gives the trees the statistics of the crop the tool ran on as well (and
their difference): what a search agent holds whenever it scores a candidate, though `tirqa`,
a metric of one image, does not read it. No network is involved, so nothing leaks.

Usage::

    python -m benchmarks.tirqa_cv --cache runs/tirqa_v4 --json benchmarks/results/tirqa_cv.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tir_env.files import write_text_atomic

RESULTS = Path("benchmarks/results/tirqa_cv.json")
#: Each variant: (group sets it fits on, most steps of its candidates, capacity, what it
#: reads besides the candidate's statistics: "", "perception" (stacked) or "input").
VARIANTS: dict[str, tuple[tuple[int, ...], int, str, str]] = {
    "v3's groups (3,000)": ((0,), 1, "v3", ""),
    "4x the groups": ((0, 1, 2, 3), 1, "v3", ""),
    "4x the groups and two-step candidates (v4's examples)": ((0, 1, 2, 3), 2, "v3", ""),
    "v4's examples, 3x the trees of 63 leaves": ((0, 1, 2, 3), 2, "large", ""),
    "4x the groups, stacked on perception's outputs (flatters)": (
        (0, 1, 2, 3),
        1,
        "v3",
        "perception",
    ),
    "4x the groups, reading the input crop's statistics too": ((0, 1, 2, 3), 1, "v3", "input"),
}
FOLDS = 4


def regression(capacity: str, seed: int) -> Any:
    """The trees: v3's recipe (the ceiling study's), or three times the trees, twice the leaves."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from benchmarks import tirqa_ceiling

    if capacity == "large":
        return HistGradientBoostingRegressor(
            max_iter=1200, learning_rate=0.05, max_leaf_nodes=63, random_state=seed
        )
    return tirqa_ceiling.regression(False, seed)


def group_scores(guess: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Spearman over all rows, mean Spearman within a group, and the mean pick regret (dB)."""
    from scipy.stats import spearmanr

    within, regret = [], []
    for g in np.unique(groups):
        rows = groups == g
        if rows.sum() < 2:
            continue
        if np.ptp(guess[rows]) > 0 and np.ptp(truth[rows]) > 0:
            within.append(float(spearmanr(guess[rows], truth[rows]).statistic))
        regret.append(float(truth[rows].max() - truth[rows][np.argmax(guess[rows])]))
    return {
        "spearman": float(spearmanr(guess, truth).statistic),
        "within": float(np.mean(within)) if within else float("nan"),
        "regret": float(np.mean(regret)) if regret else float("nan"),
    }


def stacked_outputs(pixels: np.ndarray) -> np.ndarray:
    """The shipped perception network's 18 outputs read from the statistics."""
    import torch

    from tir_env import perception
    from tir_env.tools.learned.perception_features import PerceptionFeatureNet

    model = perception._model(perception.WEIGHTS_NAME)
    if not isinstance(model, PerceptionFeatureNet):
        raise TypeError(f"perception is a {type(model).__name__}, not read from statistics")
    with torch.no_grad():
        return model.head(torch.from_numpy(pixels).float()).numpy()


def input_pixels(rows: dict[str, np.ndarray]) -> np.ndarray:
    """Each row's group's degraded crop's statistics (the first row of its group).

    For a single-step candidate that is the image its tool ran on.
    """
    groups = rows["group"]
    first = np.r_[True, groups[1:] != groups[:-1]]
    starts = np.flatnonzero(first)
    return rows["pixels"][starts[np.cumsum(first) - 1]]


def cross_validate(
    rows: dict[str, np.ndarray], variant: tuple[tuple[int, ...], int, str, str], seed: int
) -> dict[str, Any]:
    """One variant's scores per fold (photos split by index modulo :data:`FOLDS`) and mean."""
    sets, steps, capacity, extra = variant
    x = rows["pixels"]
    if extra == "perception":
        x = np.concatenate([x, rows["perception"]], axis=1)
    if extra == "input":  # what the search agent holds: the crop the tool ran on
        given = input_pixels(rows)
        x = np.concatenate([x, given, x - given], axis=1)
    target = np.clip(rows["psnr"], 0.0, 50.0)
    fold_of = rows["photo"] % FOLDS
    single = rows["steps"] <= 1
    folds = []
    for fold in range(FOLDS):
        fit_rows = (fold_of != fold) & np.isin(rows["set"], sets) & (rows["steps"] <= steps)
        test_rows = (fold_of == fold) & single
        model = regression(capacity, seed).fit(x[fit_rows], target[fit_rows])
        guess = model.predict(x[test_rows])
        folds.append(group_scores(guess, target[test_rows], rows["group"][test_rows]))
    mean = {k: float(np.mean([f[k] for f in folds])) for k in folds[0]}
    return {"folds": folds, **mean}


def load_rows(images: str, groups: int, seeds: Sequence[int], cache: Path | None) -> dict:
    """Every set's groups (made and cached as ``train_tirqa_trees`` does if missing).

    ``set``: which seed's set a row is of (each set holds ``groups`` groups, numbered on).
    """
    from benchmarks.train_tirqa_trees import training_groups

    rows = training_groups(images, groups, seeds, cache, second_steps=2)
    rows["set"] = rows["group"] // groups
    return rows


def markdown(result: dict[str, Any]) -> str:
    """The table of docs/perception.md's section."""
    lines = [
        "| fitted on | Spearman, all candidates | Spearman within a group | pick regret (dB) |",
        "|---|---:|---:|---:|",
    ]
    for name, scores in result["variants"].items():
        lines.append(
            f"| {name} | {scores['spearman']:.3f} | {scores['within']:.3f} | "
            f"{scores['regret']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Cross-validate every variant; print and write the results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--train", default="corpus:train@3")
    parser.add_argument("--groups", type=int, default=3000, help="groups per set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0, help="the trees' seed")
    parser.add_argument("--json", type=Path, default=None, help="refuses to overwrite")
    args = parser.parse_args(argv)
    if args.json is not None and args.json.exists():
        parser.error(f"{args.json} exists; choose another path or delete it first")
    rows = load_rows(args.train, args.groups, args.seeds, args.cache)
    wanted = {name: v for name, v in VARIANTS.items() if set(v[0]) <= set(range(len(args.seeds)))}
    if any(v[3] == "perception" for v in wanted.values()):
        rows["perception"] = stacked_outputs(rows["pixels"])
    result: dict[str, Any] = {
        "command": "python -m benchmarks.tirqa_cv "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "train": args.train,
        "groups_per_set": args.groups,
        "folds": FOLDS,
        "variants": {name: cross_validate(rows, v, args.seed) for name, v in wanted.items()},
    }
    print(markdown(result))
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return result


def _input_sentence(variants: dict[str, dict[str, float]]) -> str:
    """What reading the input crop too did against the same groups without it ("" if unrun)."""
    base, paired = "4x the groups", "4x the groups, reading the input crop's statistics too"
    if base not in variants or paired not in variants:
        return ""
    a, b = variants[base], variants[paired]
    return (
        f" Reading the input crop's statistics too moves the mean Spearman within a group "
        f"{a['within']:.3f} -> {b['within']:.3f} and the PSNR lost by the group's pick "
        f"{a['regret']:.2f} -> {b['regret']:.2f} dB: a scorer that sees the image a candidate "
        "was made from (as a search agent does) ranks candidates far better than one that "
        "sees the candidate alone, as the quality-gain model (an MLP, docs/quality_gain.md) "
        "found before; these are trees on perception's statistics."
    )


def _steps_sentence(variants: dict[str, dict[str, float]]) -> str:
    """How much each step from v3's examples moved the held-out Spearman (the listed order)."""
    names = [n for n in VARIANTS if n in variants and not VARIANTS[n][3]]  # plain rows
    steps = [
        f"{later} {variants[later]['spearman'] - variants[earlier]['spearman']:+.3f}"
        for earlier, later in zip(names, names[1:], strict=False)
    ]
    if not steps:
        return ""
    return "Each row against the one before it, held-out Spearman: " + "; ".join(steps) + "."


#: The study that judged v4's trees on val against v3's.
V4_STUDY = Path("benchmarks/results/tirqa_trees_v4")


def _val_sentence(study: Path = V4_STUDY) -> str:
    """What v4 did on val against v3 ("" before its study is committed)."""
    files = [study / f"quality_{name}.json" for name in ("shipped", "trees")]
    if not all(f.is_file() for f in files):
        return ""
    v3, v4 = (json.loads(f.read_text())["quality"] for f in files)
    return (
        f" On val, v4 (v4's examples, with its clean-crop classifier) read Spearman "
        f"{v4['spearman_tirqa']:.3f} against v3's {v3['spearman_tirqa']:.3f}, pick regret "
        f"{v4['pick_regret_tirqa']:.2f} against {v3['pick_regret_tirqa']:.2f} dB (above)."
    )


#: The run docs/perception.md shows.
DOC_RESULT = RESULTS


def section(path: Path = DOC_RESULT) -> str:
    """docs/perception.md's section ("" until the result is committed)."""
    import textwrap

    if not path.is_file():
        return ""
    result = json.loads(path.read_text())
    return "\n".join(
        [
            "",
            "## More examples and capacity for the trees, cross-validated on train",
            "",
            *textwrap.wrap(
                f"`{result['command']}` fits the regression {result['folds']} times, each on "
                "the other folds' train photos, and scores it on the held-out photos' "
                "single-step groups (no clean-crop classifier; the val and test photos are "
                "not read). "
                + _steps_sentence(result["variants"])
                + _input_sentence(result["variants"])
                + _val_sentence()
                + " Stacking perception's outputs "
                "is not a fair row: perception was fitted on these photos, so its outputs "
                "are better on them than on unseen photos.",
                96,
            ),
            "",
            markdown(result),
            "",
        ]
    )


if __name__ == "__main__":
    main()
