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
#: The committed measurements: the shipped network, and the one retrained on release 3.
RESULTS = Path(__file__).parent / "results" / "perception_r3"
#: The rule set before measuring (the empty commit "Pre-registered (issue 13): perception
#: retrained on corpus release 3"): the mean AUC must rise by this much, the pooled exact-set
#: rate must not fall.
MIN_AUC_GAIN = 0.01


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


def section() -> list[str]:
    """docs/perception.md's section on release 3 ("" before both measurements exist)."""
    files = {name: RESULTS / f"{name}.json" for name in ("shipped", "retrained_r3")}
    if not all(f.is_file() for f in files.values()):
        return []
    old, new = (json.loads(f.read_text()) for f in files.values())
    rows = [
        f"| {name} | {old['presence'][name]['auc']:.3f} | {new['presence'][name]['auc']:.3f} | "
        f"{old['presence'][name]['f1']:.2f} | {new['presence'][name]['f1']:.2f} |"
        for name in old["presence"]
    ]
    gain = new["mean_auc"] - old["mean_auc"]
    ships = gain >= MIN_AUC_GAIN and new["exact_set_mio"] >= old["exact_set_mio"]
    exact = ", ".join(
        f"{s} {old['exact_set'][s]:.2f} -> {new['exact_set'][s]:.2f}" for s in old["exact_set"]
    )
    return [
        "",
        "## More photos (corpus release 3; measured, not shipped)",
        "",
        "Corpus release 3 (docs/data.md) adds 19 training photos, five of them dark or misty by",
        "nature, and 5 val photos. The shipped recipe retrained on the 63 training photos",
        "(`python -m benchmarks.train_perception --out runs/perc3 --train corpus:train@3",
        "--samples 40000 --profile --threads 1`, 527 s; its thresholds the F0.5 ones tuned on",
        "`corpus:val`; record `benchmarks/results/perception_r3/retrained_r3_record.json`)",
        "against the shipped network, on the five new val photos, which neither saw (`python -m",
        "benchmarks.perception_newval --out ...`, with `TIR_LEARNED_WEIGHTS` for the retrained",
        f"one; {old['crops_per_combination']} crops of 128 px per combination of every suite):",
        "",
        "| type | ROC AUC, shipped | ROC AUC, release 3 | F1, shipped | F1, release 3 |",
        "|---|---:|---:|---:|---:|",
        *rows,
        f"| mean | {old['mean_auc']:.3f} | {new['mean_auc']:.3f} | {old['mean_f1']:.2f} | "
        f"{new['mean_f1']:.2f} |",
        "",
        f"Exact-set rate, shipped -> release 3: {exact}; pooled over mio-a/b/c "
        f"{old['exact_set_mio']:.3f} -> {new['exact_set_mio']:.3f}.",
        "",
        f"The rule set before measuring asked the mean AUC to rise by >= {MIN_AUC_GAIN} with the "
        f"pooled exact-set rate not lower: it rose by {gain:+.3f}, so the network "
        + ("replaces the shipped one." if ships else "does not ship.")
        + " The types that most need photos gain most: darkness, the type a dark or misty",
        "photo is confused with, and motion blur. The shipped network's thresholds were raised",
        'on out-of-fold readings of the train photos ("The direction profile ships"); the',
        "retrained one has only the val-tuned ones, so its F1 is not yet comparable.",
        "",
    ]


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
