r"""Would global statistics read the other types better too? One head per type, measured.

The ``tone_dehaze`` haze head (a classifier over an image's global statistics and perception's
haze logit) reads haze better than perception on the test photos (docs/perception.md, "Haze
read from global statistics"). This study fits the same kind of head for each of the eight
types: boosted trees over :func:`tir_env.tools.learned.tone.tone_features` and perception's
logit of that type, on env episodes of the train photos (the training protocols only, clean
crops among them: :func:`benchmarks.train_tone_dehaze.episodes`), and scores it against
perception on env episodes of the five crop suites of the val and test photos: ROC AUC, and F1
at the threshold that maximises each reader's F1 on val (perception's tuned thresholds favour
precision, so F1 at them would mostly measure the threshold).

Usage::

    python -m benchmarks.type_heads --json benchmarks/results/tone_dehaze/type_heads.json  # ~9 min
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
import torch

#: Thresholds searched for each reader's best F1 on val.
GRID = tuple(round(0.025 * k, 3) for k in range(2, 39))


def readings(images: str, reps: int, clean: int, seed: int, protocols: Any) -> dict[str, Any]:
    """Statistics, perception's probabilities and the truth of every example."""
    from benchmarks.train_tone_dehaze import episodes
    from tir_env import perception
    from tir_env.degradations.protocols import AGENTICIR_TYPES
    from tir_env.images import batch_to_u8
    from tir_env.tools.learned.tone import tone_features

    x, probs, truth = [], [], []
    for clean_crop, given, raw, combo in episodes(images, reps, clean, seed, protocols):
        size = (int(clean_crop.shape[-2]), int(clean_crop.shape[-1]))
        seen = perception.perceive_photo(batch_to_u8(raw), size).probs
        x.append(tone_features(given[0]))
        probs.append([seen[t] for t in AGENTICIR_TYPES])
        truth.append([t in combo for t in AGENTICIR_TYPES])
    return {"x": np.array(x), "p": np.array(probs), "y": np.array(truth)}


def f1_at(y: np.ndarray, score: np.ndarray, at: float) -> float:
    """F1 of ``score >= at`` against ``y`` (no true negatives counted)."""
    from benchmarks.train_perception import f1_score

    return f1_score(score >= at, y)


def scored(y: dict[str, np.ndarray], scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """ROC AUC on val and test, and test F1 at the threshold best on val."""
    from sklearn.metrics import roc_auc_score

    best = max(GRID, key=lambda at: f1_at(y["val"], scores["val"], at))
    return {
        "auc_val": round(float(roc_auc_score(y["val"], scores["val"])), 3),
        "auc_test": round(float(roc_auc_score(y["test"], scores["test"])), 3),
        "threshold": best,
        "f1_val": round(f1_at(y["val"], scores["val"], best), 3),
        "f1_test": round(f1_at(y["test"], scores["test"], best), 3),
    }


def study(sets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per type: perception's and the head's scores."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from benchmarks.train_tone_dehaze import TREES
    from tir_env.degradations.protocols import AGENTICIR_TYPES
    from tir_env.tools.learned.tone import logit

    def rows(name: str, k: int) -> np.ndarray:
        s = sets[name]
        return np.c_[s["x"], [logit(float(p)) for p in s["p"][:, k]]]

    out = []
    for k, kind in enumerate(AGENTICIR_TYPES):
        head = HistGradientBoostingClassifier(**TREES).fit(
            rows("train", k), sets["train"]["y"][:, k]
        )
        y = {n: sets[n]["y"][:, k] for n in ("val", "test")}
        seen = {n: sets[n]["p"][:, k] for n in ("val", "test")}
        read = {n: head.predict_proba(rows(n, k))[:, 1] for n in ("val", "test")}
        out.append({"type": kind, "perception": scored(y, seen), "head": scored(y, read)})
    return out


def markdown(result: dict[str, Any]) -> list[str]:
    """The study's table."""
    lines = [
        f"`{result['command']}`: {result['examples']}.",
        "",
        "| type | ROC AUC test, perception | the head | F1 test, perception | the head |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result["types"]:
        p, h = r["perception"], r["head"]
        lines.append(
            f"| {r['type']} | {p['auc_test']:.3f} | {h['auc_test']:.3f} | {p['f1_test']:.2f} "
            f"(at {p['threshold']}) | {h['f1_test']:.2f} (at {h['threshold']}) |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Read every set, fit the heads, write the JSON."""
    from benchmarks.tone_study import SUITES
    from benchmarks.train_tone_dehaze import TRAINING
    from tir_env.files import refuse_existing, write_text_atomic

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write (no overwrite)")
    args = parser.parse_args(argv)
    refuse_existing(parser, args.json)
    torch.set_num_threads(1)
    sets = {
        "train": readings("corpus:train@3", 2, 4, 0, TRAINING),
        "val": readings("corpus:val@3", 1, 0, 7, SUITES),
        "test": readings("corpus:test", 1, 0, 7, SUITES),
    }
    words = sys.argv[1:] if argv is None else list(argv)
    sizes = ", ".join(f"{name} {len(s['y'])}" for name, s in sets.items())
    result = {
        "command": "python -m benchmarks.type_heads " + shlex.join(words),
        "examples": f"episodes: {sizes}",
        "types": study(sets),
    }
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    print("\n".join(markdown(result)))
    return result


if __name__ == "__main__":
    main()
