"""Presence thresholds by what a call gains or costs, instead of by F-beta (an experiment).

A perceived type makes ``fixed`` run its task's tool. When the type is there, that gains
(about) ``gain_true`` dB; when it is not, it costs ``-gain_false`` dB. Those are the per-type
figures of the near-miss study (``benchmarks/results/search_cv/near_miss.json``: ``fixed``'s
output with and without a type read just under its threshold), the regime where a threshold
decides. For each type whose ``gain_true`` is positive the threshold maximises
``gain_true * TP - (-gain_false) * FP`` over the val examples; the others (motion and defocus
blur, whose near misses gain nothing even when there) keep the record's F-beta threshold.

Usage (W: a folder with ``perception.safetensors`` and its record; its ``examples/`` cache of
``train_perception --retune`` is reused)::

    python -m benchmarks.perception_utility --weights W --out W2
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import train_perception as tp
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.errors import OutputExistsError
from tir_env.perception import PRESENCE, build
from tir_env.tools.learned.weights import load_into

NEAR_MISS = Path(__file__).resolve().parents[1] / "benchmarks/results/search_cv/near_miss.json"
#: The threshold grid (:func:`benchmarks.train_perception.best_thresholds`'s).
GRID = tp.THRESHOLD_GRID


def costs(path: Path = NEAR_MISS) -> dict[str, tuple[float, float]]:
    """Type -> (dB gained when there, dB lost when not) from the near-miss study."""
    rows = json.loads(path.read_text())["by_type"]
    return {r["type"]: (float(r["gain_true"]), -float(r["gain_false"])) for r in rows}


def utility_thresholds(
    probs: np.ndarray, truth: np.ndarray, table: dict[str, tuple[float, float]], keep: dict
) -> dict[str, float]:
    """Per type, the grid threshold with the largest ``gain * TP - loss * FP``.

    Types whose gain is not positive keep their threshold in ``keep``.
    """
    chosen = {}
    for j, name in enumerate(AGENTICIR_TYPES):
        gain, loss = table[name]
        if gain <= 0:
            chosen[name] = float(keep[name])
            continue
        value = [
            gain * np.sum((probs[:, j] >= t) & truth[:, j])
            - loss * np.sum((probs[:, j] >= t) & ~truth[:, j])
            for t in GRID
        ]
        chosen[name] = round(float(GRID[int(np.argmax(value))]), 3)
    return chosen


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Write ``--out`` with the weights of ``--weights`` and utility thresholds."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.out.exists():
        raise OutputExistsError(f"{args.out} exists: choose a new folder")
    torch.set_num_threads(1)
    record = json.loads((args.weights / "perception.json").read_text())
    net = load_into(build(record["architecture"]), args.weights / "perception.safetensors")
    cfg = tp.Config(out=str(args.weights), samples=0, listed_order=0.5)
    rng = np.random.default_rng(cfg.seed)  # the draw of `train_perception --retune`
    tp.cached_examples(cfg, cfg.train, 0, args.weights, rng)
    val = tp.cached_examples(cfg, cfg.val, cfg.val_samples, args.weights, rng)
    keep = val.labelled > 0.5
    probs = torch.sigmoid(tp.predict(net, val.images)[:, PRESENCE]).numpy()[keep]
    truth = val.presence[keep] > 0.5
    limits = utility_thresholds(probs, truth, costs(), record["thresholds"])
    args.out.mkdir(parents=True)
    shutil.copy(args.weights / "perception.safetensors", args.out / "perception.safetensors")
    record.update(
        thresholds=limits,
        f_beta_thresholds=record["thresholds"],
        threshold_rule="utility: near-miss gains and losses (benchmarks.perception_utility)",
        val=tp.evaluate(net, val, limits),
    )
    (args.out / "perception.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({"thresholds": limits, "val": record["val"]}, indent=1))
    return record


if __name__ == "__main__":
    main()
