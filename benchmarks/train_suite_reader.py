r"""Fit the suites' readers of every type (:mod:`agents.ppo.suite_reader`) on train photos.

1. The training protocols' episodes of rounds ``--rounds`` on ``--images`` (the darkness
   reader's: :data:`benchmarks.train_dark_reader.PROTOCOLS`, so the evaluation suites'
   other combinations stay unseen) are reset in their env and perception v2 reads each
   input as the agents read it (:func:`benchmarks.train_dark_reader.read`); the labels are
   the types each episode applied. No agent plays.
2. For each of the eight AgenticIR types boosted trees are fitted on the rows, cross-validated
   by photo first (ROC AUC against perception's own reading, and the out-of-fold sets' F1
   and exact-set rate against perception's thresholded sets), then exported to flat node
   arrays, checked against scikit-learn, and written in one file with a record.

Usage::

    python -m benchmarks.train_suite_reader --images corpus:train@3 --rounds 0 4 --jobs 2 \
        --out runs/suite_reader/v1.safetensors
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tir_env.errors import TIRError


def set_scores(truth: np.ndarray, found: np.ndarray) -> dict[str, Any]:
    """Per-type F1 (no true negatives) and the exact-set rate of N x 8 boolean sets."""
    from tir_env.perception import AGENTICIR_TYPES

    f1 = {}
    for j, kind in enumerate(AGENTICIR_TYPES):
        hits = float((truth[:, j] & found[:, j]).sum())
        wrong = float((truth[:, j] ^ found[:, j]).sum())
        f1[kind] = round(2 * hits / (2 * hits + wrong), 4) if hits + wrong else None
    return {"f1": f1, "exact_set": round(float((truth == found).all(axis=1).mean()), 4)}


def perception_sets(rows: np.ndarray) -> np.ndarray:
    """The sets perception itself reads: each logit at or above its tuned threshold's."""
    from tir_env import perception

    thresholds = perception.thresholds()
    cut = np.array([thresholds[k] for k in perception.AGENTICIR_TYPES], dtype=np.float64)
    return rows >= np.log(cut / (1.0 - cut))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Read, fit each type, check the exports, write the file and its record."""
    from agents.ppo import dark_reader, suite_reader
    from benchmarks.train_dark_reader import (
        classifier,
        cross_validated,
        read,
        reader_arguments,
    )
    from benchmarks.train_tirqa_trees import exported
    from tir_env.perception import AGENTICIR_TYPES
    from tir_env.tools.learned.weights import save_state

    args = reader_arguments(__doc__, argv, (0, 4))
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = read(args.images, range(*args.rounds), args.jobs, protocols=args.protocols)
    readers, checked, out_of_fold = {}, {}, np.zeros(data["types"].shape)
    for j, kind in enumerate(AGENTICIR_TYPES):
        labels = data["types"][:, j]
        if labels.all() or not labels.any():
            raise TIRError(f"{args.images} rounds {args.rounds}: every crop is {kind} or none is")
        one = {**data, "labels": labels}
        scores = cross_validated(one, args.folds, args.seed, kind)
        out_of_fold[:, j] = scores.pop("out_of_fold")
        checked[kind] = {**scores, "share": round(float(labels.mean()), 4)}
        model = classifier(args.seed).fit(data["rows"], labels)
        readers[kind] = exported(model, data["rows"][:500])
    record = {  # shaped like the other records of a weights folder (name, what, ...)
        "name": suite_reader.WEIGHTS_NAME,
        "what": "boosted trees: whether a suite's crop carries each type (agents.ppo.suite_reader)",
        "command": "python -m benchmarks.train_suite_reader "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "images": args.images,
        "rounds": list(args.rounds),
        "protocols": list(args.protocols),
        "episodes": int(len(data["rows"])),
        "features": dark_reader.feature_names(),
        "cross_validated": checked,
        "sets_out_of_fold": {
            "readers": set_scores(data["types"], out_of_fold >= suite_reader.THRESHOLD),
            "perception": set_scores(data["types"], perception_sets(data["rows"])),
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    save_state(suite_reader.tensors(readers), args.out, record, indent=1)
    print(json.dumps({k: v for k, v in record.items() if k != "features"}, indent=1))
    return record


if __name__ == "__main__":
    main()
