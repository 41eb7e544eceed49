"""Perception on the val photos of corpus release 3 that no shipped network saw.

The five photos release 3 added to val (``corpus:val@3`` minus ``corpus:val``) were neither
trained nor tuned on by the shipped perception or by one retrained on ``corpus:train@3``, so
they compare the two fairly: 12 random 128 px crops per combination of every suite, degraded
as the env does (:func:`benchmarks.perception_report.perceive_suite`), per-type ROC AUC,
precision, recall and F1, and the exact-set rates. Which network is read: the weights folder
(``$TIR_LEARNED_WEIGHTS``, default the shipped one).

Usage::

    python -m benchmarks.perception_newval --out benchmarks/results/perception_r3/shipped.json
    TIR_LEARNED_WEIGHTS=DIR python -m benchmarks.perception_newval --out .../new.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.perception_report import SUITES, perceive_suite, presence_scores
from tir_env import data, perception

#: The suites whose exact-set rate the comparison pools (AgenticIR's groups).
MIO = ("mio-a", "mio-b", "mio-c")


def new_val_photos() -> tuple[list[str], list[np.ndarray]]:
    """The ids and images of the val photos release 3 added."""
    larger, default = data.source("corpus:val@3"), set(data.source("corpus:val").ids)
    ids = [i for i in larger.ids if i not in default]
    return ids, [larger.load(i) for i in ids]


def measure(photos: Sequence[np.ndarray], crops: int, seed: int) -> dict[str, Any]:
    """Presence scores (suites without ``single``), exact-set rates, and their summaries."""
    rng = np.random.default_rng(seed)
    rows = [r for s in SUITES for r in perceive_suite(photos, s, crops, rng)]
    presence = presence_scores([r for r in rows if r["suite"] != "single"])
    exact = {
        s: float(np.mean([r["truth"] == r["found"] for r in rows if r["suite"] == s]))
        for s in SUITES
    }
    pooled = [r["truth"] == r["found"] for r in rows if r["suite"] in MIO]
    return {
        "presence": presence,
        "exact_set": exact,
        "exact_set_mio": float(np.mean(pooled)),
        "mean_auc": float(np.mean([v["auc"] for v in presence.values()])),
        "mean_f1": float(np.mean([v["f1"] for v in presence.values()])),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the network in the weights folder and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--crops", type=int, default=12, help="crops per combination")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ids, photos = new_val_photos()
    result = {
        "photos": ids,
        "weights": perception.record().get("command", ""),
        "thresholds": perception.thresholds(),
        "crops_per_combination": args.crops,
        **measure(photos, args.crops, args.seed),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    keys = ("mean_auc", "mean_f1", "exact_set_mio")
    print(json.dumps({k: round(result[k], 4) for k in keys}))


if __name__ == "__main__":
    main()
