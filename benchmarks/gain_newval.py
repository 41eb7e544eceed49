"""Quality-gain models compared on the val photos that corpus release 3 added.

The five val photos release 3 added (``corpus:val@=3``) were seen by no shipped network, nor
by a model retrained on ``corpus:train@3`` (whose margin is tuned on ``corpus:val``, release
1's val photos). Groups are made from them exactly as :mod:`benchmarks.train_gain` makes its
training groups, and each model ranks every group's options (keeping the image included)
through :func:`tir_env.quality_gain.predict_gain`, the API the agents call: raw, and minus
its own tuned margin (what the search agents with ``metric=gain`` keep).

Usage::

    python -m benchmarks.gain_newval --out benchmarks/results/gain_r3/newval.json
        --models shipped=tir_env/assets/learned r3=runs/gain3   # (one line)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.train_gain import CROP, Groups, cached_groups, ranking_scores, to_batch
from tir_env import data
from tir_env.files import write_text_atomic
from tir_env.tools.learned.weights import weights_folder

#: The photos no quality-gain model saw.
SOURCE = "corpus:val@=3"
#: The pre-registered rule (commit abd037e): within-group Spearman must rise by this much.
MIN_SPEARMAN_GAIN = 0.02


@contextmanager
def weights_from(folder: str | Path) -> Iterator[None]:
    """Load the quality-gain model from ``folder`` inside the block."""
    from tir_env import quality_gain

    with weights_folder(folder):
        quality_gain.reload()
        try:
            yield
        finally:
            quality_gain.reload()  # after the block: the folder in force again


def predictions(groups: Groups) -> np.ndarray:
    """The loaded model's predicted PSNR change of every candidate: G x K."""
    from tir_env import quality_gain

    out = np.zeros(groups.gain.shape, np.float32)
    for i in tqdm(range(len(out)), desc="score", mininterval=10):
        before, after = to_batch(groups.before[i : i + 1]), to_batch(groups.after[i])
        out[i] = quality_gain.predict_gain(before, after, (CROP, CROP)).numpy()
    return out


def score_model(folder: str | Path, groups: Groups) -> dict[str, Any]:
    """Ranking scores of the model in ``folder``, raw and minus its own margin."""
    from tir_env import quality_gain

    with weights_from(folder):
        pred, margin = predictions(groups), quality_gain.margin()
        trained_on = quality_gain.record().get("config", {}).get("train", "")
    return {
        "weights": str(folder),
        "trained_on": trained_on,
        "margin_db": margin,
        "raw": ranking_scores(pred, groups),
        "with_margin": ranking_scores(pred - margin, groups),
    }


def verdict(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Part (a) of the pre-registered rule: Spearman up >= 0.02, margin-kept pick not worse."""
    rise = new["raw"]["spearman_within"] - base["raw"]["spearman_within"]
    pick = new["with_margin"]["picked_gain_db"] - base["with_margin"]["picked_gain_db"]
    return {
        "spearman_within_rise": rise,
        "picked_gain_rise_db": pick,
        "passes": bool(rise >= MIN_SPEARMAN_GAIN and pick >= 0.0),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Make (or load) the groups, score each ``name=folder`` model, write the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="name=weights folder")
    parser.add_argument("--groups", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", default="runs/gain_newval", help="folder of the groups")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    models = dict(m.split("=", 1) for m in args.models)
    start = time.time()
    groups = cached_groups(SOURCE, args.groups, args.seed, 2, Path(args.cache))
    scores = {name: score_model(folder, groups) for name, folder in models.items()}
    names = list(scores)
    result = {
        "command": "python -m benchmarks.gain_newval " + " ".join(argv or []),
        "source": SOURCE,
        "photos": list(data.source(SOURCE).ids),
        "groups": args.groups,
        "candidates": int(groups.valid.sum()),
        "models": scores,
        "rule": {n: verdict(scores[names[0]], scores[n]) for n in names[1:]},
        "seconds": round(time.time() - start, 1),
    }
    write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    import sys

    print(json.dumps(main(sys.argv[1:])["rule"], indent=1))
