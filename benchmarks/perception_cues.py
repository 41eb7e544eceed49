"""Do simple cues of darkness and haze add to perception? (a study; nothing ships from it).

Darkness and haze are the types perception reads worst (docs/perception.md, "What the crops
still show"), and the protocol's versions leave traces a statistic could read:

* **darkness** (AgenticIR ``darken``): a shift clips the shadows to exact black, the linear
  map pins the crop's darkest pixel to 0 and its brightest to 100-149 of 255, the gamma map
  compresses the shadows. Cues: the share of black (V <= 1) and of near-white (V >= 250)
  pixels, the crop's V maximum, minimum, median and 99.5th percentile.
* **haze** (the depth proxy, :func:`~tir_env.degradations.synthesis.depth_proxy`): depth
  ramps up towards the top of the crop, so the top is hazier than the bottom. Cues: top
  minus bottom (and top minus middle) third of the dark channel, the saturation and the grey
  level; the ratio of the grey level's spread and of its horizontal gradient, top to bottom.

For 128 px crops of the val photos degraded as ``tir bench`` degrades them (every combination
of ``mio-a``, ``mio-b``, ``mio-c``, ``ood-d2`` and ``single``), each cue's ROC AUC for its type
(oriented: the larger of AUC and 1 - AUC), the shipped network's, and a logistic regression
over the network's logit and the cues, fitted leaving each photo out, so the combination is
scored on photos it was not fitted on. A cue that adds shows as a combined AUC above the
network's.

Usage::

    python -m benchmarks.perception_cues --images corpus:val@3 --crops 3 --seed 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "perception_cues.json"
SUITES = ("mio-a", "mio-b", "mio-c", "ood-d2", "single")

DARK_CUES = ("black share", "white share", "V max", "V min", "V median", "V p99.5")
HAZE_CUES = (
    "dark channel, top - bottom",
    "dark channel, top - middle",
    "saturation, top - bottom",
    "saturation, top - middle",
    "grey, top - bottom",
    "grey, top - middle",
    "grey spread, top / bottom",
    "gradient, top / bottom",
)


def dark_cues(image: np.ndarray) -> list[float]:
    """:data:`DARK_CUES` of an HxWx3 uint8 image."""
    value = image.max(axis=2).astype(np.float32)
    return [
        float((value <= 1).mean()),
        float((value >= 250).mean()),
        float(value.max()),
        float(value.min()),
        float(np.median(value)),
        float(np.percentile(value, 99.5)),
    ]


def haze_cues(image: np.ndarray) -> list[float]:
    """:data:`HAZE_CUES` of an HxWx3 uint8 image."""
    x = image.astype(np.float32) / 255.0
    dark = cv2.erode(x.min(axis=2), np.ones((7, 7), np.uint8))
    value = x.max(axis=2)
    saturation = (value - x.min(axis=2)) / (value + 1e-3)
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    h = x.shape[0]
    thirds = (slice(0, h // 3), slice(h // 3, 2 * h // 3), slice(2 * h // 3, h))
    out = []
    for channel in (dark, saturation, grey):
        top, middle, bottom = (float(channel[t].mean()) for t in thirds)
        out += [top - bottom, top - middle]
    spread = [float(grey[t].std()) for t in thirds]
    gradient = np.abs(np.diff(grey, axis=1))
    steep = [float(gradient[t].mean()) for t in thirds]
    out += [
        float(np.log((spread[0] + 1e-3) / (spread[2] + 1e-3))),
        float(np.log((steep[0] + 1e-4) / (steep[2] + 1e-4))),
    ]
    return out


CUES: dict[str, tuple[tuple[str, ...], Callable[[np.ndarray], list[float]]]] = {
    "dark": (DARK_CUES, dark_cues),
    "haze": (HAZE_CUES, haze_cues),
}


def collect(images: str, crops_per_photo: int, seed: int) -> list[dict[str, Any]]:
    """One row per degraded crop: its photo, truth, the network's readings and every cue."""
    from benchmarks.perception_report import crops, suite_order
    from tir_env import data, perception
    from tir_env.degradations import degrade
    from tir_env.degradations.protocols import COMBOS
    from tir_env.images import batch_to_u8, u8_to_batch

    torch.set_num_threads(1)
    source = data.source(images)
    photos = [source.load(i) for i in source.ids]
    rng = np.random.default_rng(seed)
    todo = [(s, c, p) for s in SUITES for c in COMBOS[s] for p in range(len(photos))]
    rows = []
    for suite, combo, photo in tqdm(todo, desc="crops", mininterval=5):
        for clean in crops([photos[photo]], crops_per_photo, rng):
            degraded, applied = degrade(
                u8_to_batch(clean), list(combo), rng, order=suite_order(suite)
            )
            image = batch_to_u8(degraded)
            # at the size it should have: a low-resolution crop is 4x smaller
            seen = perception.perceive_photo(image, size=clean.shape[:2])
            rows.append(
                {
                    "suite": suite,
                    "photo": photo,
                    "truth": [name for name, _ in applied],
                    "probability": {t: float(seen.probs[t]) for t in CUES},
                    "cues": {t: fn(image) for t, (_, fn) in CUES.items()},
                }
            )
    return rows


def oriented_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for ``truth``, or of its negative if that is larger."""
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(truth, score))
    return max(auc, 1.0 - auc)


def combined_scores(rows: Sequence[dict[str, Any]], kind: str) -> np.ndarray:
    """Leave-one-photo-out logistic regression over the network's logit and ``kind``'s cues."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    p = np.clip([r["probability"][kind] for r in rows], 1e-4, 1 - 1e-4)
    x = np.column_stack([np.log(p / (1 - p)), [r["cues"][kind] for r in rows]])
    y = np.array([kind in r["truth"] for r in rows])
    photo = np.array([r["photo"] for r in rows])
    out = np.zeros(len(rows))
    for held in np.unique(photo):
        fit = photo != held
        scale = StandardScaler().fit(x[fit])
        model = LogisticRegression(max_iter=5000).fit(scale.transform(x[fit]), y[fit])
        out[~fit] = model.decision_function(scale.transform(x[~fit]))
    return out


def analyse(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per type: the network's AUC, each cue's, the combination's, overall and per suite."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, Any] = {}
    for kind, (names, _) in CUES.items():
        y = np.array([kind in r["truth"] for r in rows])
        network = np.array([r["probability"][kind] for r in rows])
        cues = np.array([r["cues"][kind] for r in rows])
        combined = combined_scores(rows, kind)
        suites = {}
        for suite in SUITES:
            m = np.array([r["suite"] == suite for r in rows])
            if y[m].any() and not y[m].all():
                suites[suite] = {
                    "network": float(roc_auc_score(y[m], network[m])),
                    "combined": float(roc_auc_score(y[m], combined[m])),
                }
        out[kind] = {
            "crops": len(rows),
            "positives": int(y.sum()),
            "network": float(roc_auc_score(y, network)),
            "cues": {n: oriented_auc(y, cues[:, i]) for i, n in enumerate(names)},
            "combined": float(roc_auc_score(y, combined)),
            "suites": suites,
        }
    return out


def section(path: Path = RESULTS) -> str:
    """docs/perception.md's section ("" before the results are committed)."""
    if not path.is_file():
        return ""
    saved = json.loads(path.read_text())
    found = saved["results"]
    lines = [
        "",
        "## Cues of darkness and haze that add nothing (measured)",
        "",
        "Generated by `python -m benchmarks.perception_report --doc-only` (the section of",
        f"`benchmarks.perception_cues`) from `{path.relative_to(ROOT)}`, made by",
        f"`{saved['command']}`.",
        "",
        *textwrap.wrap(
            "The protocol's darkening and its haze leave traces a statistic can read (a shift "
            "clips shadows to black, the linear map pins the crop's range, the haze's depth "
            "proxy makes the top of a crop hazier than its bottom). Each cue's ROC AUC for its "
            f"type on {found['dark']['crops']} val crops (every combination of "
            f"{', '.join(f'`{s}`' for s in SUITES)}), the shipped network's, and a logistic "
            "regression over the network's logit and the cues fitted leaving each photo out:",
            96,
        ),
        "",
        "| type | cue | ROC AUC |",
        "|---|---|---:|",
    ]
    for kind, res in found.items():
        lines.append(f"| {kind} | the shipped network | {res['network']:.3f} |")
        lines += [f"| {kind} | {name} | {auc:.3f} |" for name, auc in res["cues"].items()]
        lines.append(f"| {kind} | **network + every cue** | **{res['combined']:.3f}** |")
    lines += ["", "By suite, the network and the combination:", ""]
    lines += ["| type | suite | network | network + cues |", "|---|---|---:|---:|"]
    for kind, res in found.items():
        lines += [
            f"| {kind} | {s} | {v['network']:.3f} | {v['combined']:.3f} |"
            for s, v in res["suites"].items()
        ]
    gains = {k: r["combined"] - r["network"] for k, r in found.items()}
    moves = [
        (v["combined"] - v["network"], kind, suite)
        for kind, res in found.items()
        for suite, v in res["suites"].items()
    ]
    up, down = max(moves), min(moves)
    lines += [
        "",
        *textwrap.wrap(
            "A cue's AUC is oriented (the larger of AUC and 1 - AUC: either sign of a cue may "
            "mark its type). The combination's scores are pooled over the held-out photos "
            "before its AUC is read. Overall it moves the AUC by "
            + ", ".join(f"{g:+.3f} ({k})" for k, g in gains.items())
            + f"; by suite from {down[0]:+.3f} ({down[1]}, `{down[2]}`) to {up[0]:+.3f} "
            f"({up[1]}, `{up[2]}`). What these cues see, the network's statistics already "
            "read on the whole, so none was added to its features.",
            96,
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect, analyse, write :data:`RESULTS` (or ``--out``), print the analysis."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--images", default="corpus:val@3")
    p.add_argument("--crops", type=int, default=3, help="crops per photo and combination")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    rows = collect(args.images, args.crops, args.seed)
    saved = {
        "command": shlex.join(["python", "-m", "benchmarks.perception_cues", *sys.argv[1:]]),
        "results": analyse(rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, indent=1) + "\n")
    tmp.replace(args.out)
    print(json.dumps(saved["results"], indent=1))
    return saved


if __name__ == "__main__":
    main()
