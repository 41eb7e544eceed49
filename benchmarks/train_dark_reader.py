r"""Fit ``ppo``'s darkness reader (:mod:`agents.ppo.dark_reader`) on the corpus' train photos.

1. The episodes of rounds ``--rounds`` of the training protocols (``--protocols``, default
   :data:`PROTOCOLS`: single degradations, group A, the training triples; never an
   evaluation suite's other combinations) on ``--images``
   (:func:`benchmarks.ab_test.round_episodes`) are reset in the protocol's env, and perception
   v2 reads each input as the agent reads it (:func:`agents.ppo.guard.input_reading`); the
   label is whether the episode darkened the crop. No agent plays: the reader only reads.
2. Boosted trees (scikit-learn's ``HistGradientBoostingClassifier``) are fitted on the rows,
   cross-validated by photo first (ROC AUC, against perception's own darkness reading), then
   exported to flat node arrays, checked against scikit-learn, and written with a record of
   what was measured.

Usage::

    python -m benchmarks.train_dark_reader --images corpus:train@3 --rounds 0 2 --jobs 2 \
        --out runs/dark_reader/v1.safetensors
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tir_env.errors import TIRError

#: The label: the degradation whose presence the reader predicts.
TYPE = "dark"
#: The protocols whose crops the readers are fitted on: the training ones
#: (:data:`tir_env.degradations.protocols.TRAINING`, less RL-Restore's, whose types are not
#: AgenticIR's). The evaluation suites' other combinations (groups B and C, ``ood-d2``,
#: ``ood-d3``) stay unseen, as they do for every policy trained here.
PROTOCOLS = ("single", "mio-a", "train-d3")


def _read_round(job: tuple[str, int, tuple[str, ...]]) -> dict[str, list[Any]]:
    """Rows, types and photos of one round of every protocol (in a worker)."""
    from agents.ppo import dark_reader
    from agents.ppo.guard import input_reading
    from benchmarks.ab_test import round_episodes
    from tir_env.env import TIREnv
    from tir_env.perception import AGENTICIR_TYPES

    torch.set_num_threads(1)
    images, k, protocols = job
    envs: dict[str, Any] = {}
    out: dict[str, list[Any]] = {"rows": [], "types": [], "photos": [], "suites": []}
    for suite, episode in round_episodes(images, protocols, k, k + 1):
        if suite.name not in envs:
            envs[suite.name] = TIREnv(**{**suite.env_kwargs(images), "metrics": ("psnr",)})
        env = envs[suite.name]
        options = {"image_id": episode.image_id, "degradations": tuple(episode.degradations)}
        env.reset(seed=int(episode.seed), options=options)
        seen = input_reading(env)
        if seen is None:
            raise TIRError("the darkness reader reads perception v2: its weights are missing")
        out["rows"].append(dark_reader.features(seen.probs))
        out["types"].append([kind in episode.degradations for kind in AGENTICIR_TYPES])
        out["photos"].append(episode.image_id)
        out["suites"].append(suite.name)
    return out


def read(
    images: str,
    rounds: range,
    jobs: int,
    kind: str = TYPE,
    protocols: Sequence[str] = PROTOCOLS,
) -> dict[str, np.ndarray]:
    """Rows (perception's eight logits), labels and photos of ``rounds``' crop episodes.

    ``protocols``: suites or training protocols (:func:`benchmarks.suites.protocol_suite`);
    ``types``: whether each crop carries each AgenticIR type (N x 8, protocol order);
    ``labels``: its column of ``kind``; ``suites``: the protocol of each.
    """
    from tir_env.perception import AGENTICIR_TYPES

    jobs_of = [(images, k, tuple(protocols)) for k in rounds]
    with ProcessPoolExecutor(max(1, min(jobs, len(rounds)))) as pool:
        parts = list(pool.map(_read_round, jobs_of))
    types = np.array([y for p in parts for y in p["types"]], dtype=bool)
    return {
        "rows": np.array([r for p in parts for r in p["rows"]]),
        "types": types,
        "labels": types[:, AGENTICIR_TYPES.index(kind)],
        "photos": np.array([f for p in parts for f in p["photos"]]),
        "suites": np.array([s for p in parts for s in p["suites"]]),
    }


def classifier(seed: int) -> Any:
    """The unfitted classifier (shallow trees over eight numbers)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_depth=3, max_iter=200, learning_rate=0.05, random_state=seed
    )


def out_of_fold(data: dict[str, np.ndarray], folds: int, seed: int) -> np.ndarray:
    """Each row's probability from :func:`classifier` fitted on the other folds' photos.

    ``data``: ``rows``, ``labels`` and ``photos`` (each row's group).
    """
    from sklearn.model_selection import GroupKFold

    rows, labels = data["rows"], data["labels"]
    p = np.zeros(len(labels))
    for train, test in GroupKFold(folds).split(rows, labels, data["photos"]):
        model = classifier(seed).fit(rows[train], labels[train])
        p[test] = model.predict_proba(rows[test])[:, 1]
    return p


def write_reader(trees: Any, out: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write a reader's trees and record, print the record (less its features), return it."""
    from tir_env.tools.learned.weights import save_state

    save_state(trees.tensors(), out, record, indent=1)
    print(json.dumps({k: v for k, v in record.items() if k != "features"}, indent=1))
    return record


def cross_validated(
    data: dict[str, np.ndarray], folds: int, seed: int, kind: str = TYPE
) -> dict[str, Any]:
    """Out-of-fold ROC AUC by photo, and perception's own reading's AUC on the same rows.

    ``data["labels"]`` are ``kind``'s (:func:`read`); ``out_of_fold``: each row's probability.
    """
    from sklearn.metrics import roc_auc_score

    from tir_env.perception import AGENTICIR_TYPES

    rows, labels = data["rows"], data["labels"]
    p = out_of_fold(data, folds, seed)
    return {
        "folds": folds,
        "roc_auc": float(roc_auc_score(labels, p)),
        "perception_roc_auc": float(roc_auc_score(labels, rows[:, AGENTICIR_TYPES.index(kind)])),
        "out_of_fold": p,
    }


def reader_arguments(
    doc: str | None, argv: Sequence[str] | None, rounds: tuple[int, int]
) -> argparse.Namespace:
    """The readers' trainers' command line (this one's and ``train_suite_reader``'s).

    ``rounds``: the default ``--rounds``. A taken or non-safetensors ``--out`` is refused.
    """
    from benchmarks.train_tirqa_trees import refuse_out

    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n", 1)[0])
    parser.add_argument("--images", default="corpus:train@3")
    parser.add_argument(
        "--rounds", type=int, nargs=2, default=list(rounds), metavar=("FIRST", "STOP")
    )
    parser.add_argument(
        "--protocols", nargs="+", default=list(PROTOCOLS), help="suites or training protocols"
    )
    parser.add_argument("--jobs", type=int, default=2, help="rounds read at once")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="a .safetensors file; no overwrite")
    args = parser.parse_args(argv)
    refuse_out(parser, args.out)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Read, fit, check the export, write the file and its record."""
    from agents.ppo import dark_reader
    from benchmarks.train_tirqa_trees import exported

    args = reader_arguments(__doc__, argv, (0, 2))
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = read(args.images, range(*args.rounds), args.jobs, protocols=args.protocols)
    if data["labels"].all() or not data["labels"].any():
        raise TIRError(f"{args.images} rounds {args.rounds}: the crops are all of one label")
    model = classifier(args.seed).fit(data["rows"], data["labels"])
    trees = exported(model, data["rows"][:500])
    record = {  # shaped like the other records of a weights folder (name, what, ...)
        "name": dark_reader.WEIGHTS_NAME,
        "what": "boosted trees: whether a suite's crop was darkened (agents.ppo.dark_reader)",
        "command": "python -m benchmarks.train_dark_reader "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "images": args.images,
        "rounds": list(args.rounds),
        "protocols": list(args.protocols),
        "episodes": int(len(data["labels"])),
        "darkened_share": float(data["labels"].mean()),
        "features": dark_reader.feature_names(),
        "cross_validated": {
            k: v
            for k, v in cross_validated(data, args.folds, args.seed).items()
            if k != "out_of_fold"
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    return write_reader(trees, args.out, record)


if __name__ == "__main__":
    main()
