r"""How the darkness and suite readers read the evaluation suites' crops, suite by suite.

A reader fitted on crops of some combinations learns which types come together there. Fitted on
the evaluation suites' own combinations (of train photos) it reads their crops well on new
photos, but what it learned is the benchmark's prior, which a policy trained on the training
protocols does not have; fitted on the training protocols only (single, ``mio-a``,
``train-d3``) it reads ``mio-a`` as well and the unseen combinations (groups B and C, the
``ood`` suites) for what they are. This command reads the five suites' crops of ``--rounds``
on ``--images`` (:func:`benchmarks.train_dark_reader.read`) and reports, per suite, the ROC
AUC of each reader file (a darkness reader, or a suite reader's ``dark`` ensemble), of
perception's own darkness reading, and with ``--suite-reader`` the exact-set rate of the suite
reader's sets against perception's thresholded ones.

Usage::

    python -m benchmarks.reader_transfer --images corpus:val@3 --rounds 141 143 \
        --dark A.safetensors B.safetensors --suite-reader C.safetensors \
        --json benchmarks/results/ppo_perceived/reader_transfer.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tir_env.files import write_text_atomic


def _auc_by_suite(labels: np.ndarray, score: np.ndarray, suites: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    out = {"all": round(float(roc_auc_score(labels, score)), 4)}
    for suite in dict.fromkeys(suites.tolist()):
        at = suites == suite
        out[suite] = round(float(roc_auc_score(labels[at], score[at])), 4)
    return out


def _suite_sets(file: Path, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """The suite reader's and perception's exact-set rates and F1, per suite."""
    from agents.ppo import suite_reader
    from benchmarks.train_suite_reader import perception_sets, set_scores
    from tir_env.perception import AGENTICIR_TYPES
    from tir_env.tools.learned.weights import load_state

    readers = suite_reader.from_tensors(load_state(file), str(file))
    logits = np.stack([readers[k].predict(data["rows"]) for k in AGENTICIR_TYPES], axis=1)
    found = 1.0 / (1.0 + np.exp(-logits)) >= suite_reader.THRESHOLD
    seen = perception_sets(data["rows"])
    out = {}
    for suite in ["all", *dict.fromkeys(data["suites"].tolist())]:
        at = np.ones(len(found), bool) if suite == "all" else data["suites"] == suite
        out[suite] = {
            "readers": set_scores(data["types"][at], found[at]),
            "perception": set_scores(data["types"][at], seen[at]),
        }
    return out


def markdown(result: dict[str, Any]) -> list[str]:
    """The result as tables: darkness AUC per suite, then each suite reader's exact-set rates."""
    aucs = result["dark_roc_auc"]
    suites = list(aucs["perception"])
    head = "| darkness read by | " + " | ".join(f"`{s}`" for s in suites) + " |"
    lines = [head, "|---|" + "---:|" * len(suites)]
    for name, row in aucs.items():
        label = "perception's own reading" if name == "perception" else f"`{name}`"
        lines.append(f"| {label} | " + " | ".join(f"{row[s]:.3f}" for s in suites) + " |")
    for name, per_suite in result["suite_readers"].items():
        lines += ["", f"Exact-set rate, perception's thresholded sets -> `{name}`:", ""]
        lines += ["| " + " | ".join(f"`{s}`" for s in per_suite) + " |"]
        lines += ["|" + "---:|" * len(per_suite)]
        cells = [
            f"{v['perception']['exact_set']:.2f} -> {v['readers']['exact_set']:.2f}"
            for v in per_suite.values()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Read the suites' crops, score each reader, print and optionally write the result."""
    from benchmarks.perception_cv import SUITES
    from benchmarks.train_dark_reader import read
    from tir_env.perception import AGENTICIR_TYPES
    from tir_env.quality_trees import read_ensemble

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--images", default="corpus:val@3")
    parser.add_argument("--rounds", type=int, nargs=2, required=True, metavar=("FIRST", "STOP"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--dark", type=Path, nargs="*", default=[], help="darkness readers")
    parser.add_argument("--suite-reader", type=Path, nargs="*", default=[])
    parser.add_argument("--json", type=Path, help="write the result here (no overwrite)")
    args = parser.parse_args(argv)
    if args.json is not None and args.json.exists():
        parser.error(f"--json {args.json} exists; choose a new file")
    torch.set_num_threads(1)
    data = read(args.images, range(*args.rounds), args.jobs, protocols=SUITES)
    column = AGENTICIR_TYPES.index("dark")
    dark, rows, suites = data["types"][:, column], data["rows"], data["suites"]
    aucs = {"perception": _auc_by_suite(dark, rows[:, column], suites)}
    for file in args.dark:
        aucs[str(file)] = _auc_by_suite(dark, read_ensemble(str(file)).predict(rows), suites)
    result = {
        "command": "python -m benchmarks.reader_transfer "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "episodes": int(len(dark)),
        "dark_roc_auc": aucs,
        "suite_readers": {str(f): _suite_sets(f, data) for f in args.suite_reader},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json is not None:
        write_text_atomic(args.json, text + "\n")
    return result


if __name__ == "__main__":
    main()
