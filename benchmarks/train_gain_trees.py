r"""Fit the gain trees of :mod:`tir_env.gain_trees` and write them, with a report on val groups.

The examples are :mod:`benchmarks.tirqa_ceiling`'s groups (a degraded 128 px crop of the
training photos, four random tools' outputs of it and ``--second-steps`` candidates made by a
second tool on one of those), each with perception's 98 statistics and its true PSNR; every
candidate is paired with its group's input and the trees learn the PSNR change (clipped to
+-30 dB) from ``[input, candidate, candidate - input]``. By default the crops are degraded with
the training protocols' combinations only (``single mio-a train-d3``: docs/protocols.md,
section 5). Groups of the val photos (the five suites' combinations) score the trees against
``tirqa`` as a search uses them: the mean Spearman correlation within a group (its input and
its candidates, the input at gain 0) and the true gain of each scorer's pick.

Usage::

    python -m benchmarks.train_gain_trees --cache runs/gain_trees \
        --out runs/gain_trees/gain_trees.safetensors      # 3,000 groups x 2 seeds: 15 min
    python -m benchmarks.train_gain_trees --groups 20 --more-seeds --val-groups 10 \
        --out /tmp/g/gain_trees.safetensors                # a smoke run: 30 s
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: The combinations the trees are fitted on by default (no evaluation-only suite's).
TRAINING_PROTOCOLS = ("single", "mio-a", "train-d3")
#: Largest PSNR change (dB) a target keeps: a tool that wrecks a crop by 40 dB is as bad as 30.
TARGET_CLIP = 30.0


def pair_rows(groups: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each candidate paired with its group's input: (features, true PSNR change, input row).

    Raises:
        ValueError: a group has no input (no row at step 0).
    """
    from tir_env.gain_trees import pair_features

    inputs = {int(g): i for i, g in enumerate(groups["group"]) if groups["steps"][i] == 0}
    missing = sorted(set(int(g) for g in groups["group"]) - set(inputs))
    if missing:
        raise ValueError(f"groups without an input row: {missing[:5]}")
    parent = np.array([inputs[int(g)] for g in groups["group"]])
    stats = groups["pixels"].astype(np.float64)
    features = pair_features(stats[parent], stats)
    return features, groups["psnr"] - groups["psnr"][parent], parent


def fit(features: np.ndarray, change: np.ndarray, seed: int) -> Any:
    """Boosted regression trees on the candidates' rows (inputs, whose change is 0, left out)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=400, learning_rate=0.05, random_state=seed)
    return model.fit(features, np.clip(change, -TARGET_CLIP, TARGET_CLIP))


def within_groups(groups: dict[str, np.ndarray], score: np.ndarray) -> dict[str, float]:
    """How a scorer ranks each group's members (input and candidates) against the truth.

    Returns the mean Spearman correlation within a group, the true PSNR change of its pick
    (the best-scored member; the input's change is 0) and the PSNR its pick loses against the
    group's best member.
    """
    from scipy.stats import spearmanr

    rhos, gains, lost = [], [], []
    for g in np.unique(groups["group"]):
        members = groups["group"] == g
        truth, guess = groups["psnr"][members], score[members]
        start = truth[groups["steps"][members] == 0][0]
        if np.ptp(truth) > 0 and np.ptp(guess) > 0:
            rhos.append(float(spearmanr(guess, truth).statistic))
        pick = int(np.argmax(guess))
        gains.append(float(truth[pick] - start))
        lost.append(float(truth.max() - truth[pick]))
    return {
        "spearman_within": round(float(np.mean(rhos)), 4),
        "pick_gain_db": round(float(np.mean(gains)), 3),
        "pick_lost_db": round(float(np.mean(lost)), 3),
        "groups": len(gains),
    }


def scores(groups: dict[str, np.ndarray], model: Any) -> dict[str, dict[str, float]]:
    """The gain trees' and ``tirqa``'s readings of val groups (:func:`within_groups`)."""
    from scipy.stats import spearmanr

    features, change, parent = pair_rows(groups)
    gain = model.predict(features)
    gain[groups["steps"] == 0] = 0.0  # keeping the input changes nothing
    candidates = groups["steps"] > 0
    tirqa = groups["tirqa"]
    # each scorer: its ranking of the members, and the change it reads for each candidate
    readings = {"gain_trees": (gain, gain), "tirqa": (tirqa, tirqa - tirqa[parent])}
    return {
        name: {
            **within_groups(groups, ranking),
            "spearman_change": round(
                float(spearmanr(read[candidates], change[candidates]).statistic), 4
            ),
        }
        for name, (ranking, read) in readings.items()
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit, check the export against scikit-learn, score on val, write the file and record."""
    from benchmarks.tirqa_ceiling import groups_cached
    from benchmarks.train_tirqa_trees import exported, refuse_out, training_groups
    from tir_env.tools.learned.weights import save_state

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--train", default="corpus:train@3")
    parser.add_argument("--groups", type=int, default=3000, help="groups per seed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--more-seeds", type=int, nargs="*", default=[1])
    parser.add_argument("--second-steps", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="sets of groups made at once")
    parser.add_argument("--protocols", nargs="+", default=list(TRAINING_PROTOCOLS))
    parser.add_argument("--val", default="corpus:val@3", help="photos of the report's groups")
    parser.add_argument("--val-groups", type=int, default=400)
    parser.add_argument("--val-seed", type=int, default=57)
    parser.add_argument("--cache", type=Path, default=None, help="folder of the groups' caches")
    parser.add_argument("--out", type=Path, required=True, help="a .safetensors file; no overwrite")
    args = parser.parse_args(argv)
    refuse_out(parser, args.out)
    seeds = [args.seed, *args.more_seeds]
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seed and --more-seeds repeat a seed: {seeds}")
    torch.set_num_threads(1)
    start = time.perf_counter()
    train = training_groups(
        args.train, args.groups, seeds, args.cache, args.second_steps, args.workers, args.protocols
    )
    features, change, _ = pair_rows(train)
    candidates = train["steps"] > 0
    model = fit(features[candidates], change[candidates], args.seed)
    trees = exported(model, features[candidates][:500])
    val_cache = None if args.cache is None else args.cache / f"val_s{args.val_seed}.npz"
    _, val = groups_cached(args.val, args.val_groups, args.val_seed, val_cache)
    report = scores(val, model)
    record = {  # shaped like the other records of a weights folder (name, what, ...)
        "name": "gain_trees",
        "what": "boosted trees: PSNR change from perception's statistics of both images "
        "(tir_env.gain_trees)",
        "command": "python -m benchmarks.train_gain_trees "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "train": args.train,
        "groups": args.groups * len(seeds),
        "group_seeds": seeds,
        "second_steps": args.second_steps,
        "protocols": list(args.protocols),
        "pairs": int(candidates.sum()),
        "trees": int(len(trees.roots)),
        "nodes": int(len(trees.value)),
        "parameters": int(len(trees.value)),  # what docs/tools.md's budget reads
        "margin_db": 0.0,
        "val": {"photos": args.val, "groups": args.val_groups, "seed": args.val_seed, **report},
    }
    record["seconds"] = record["train_wall_seconds"] = round(time.perf_counter() - start, 1)
    save_state(trees.tensors(), args.out, record, indent=1)
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
