r"""Perception read twice: mirrored, and on denser tiles (a study; measured, not shipped).

A classifier's readings often steady when it also reads a mirrored copy of its input (test-time
augmentation), and a 128 px crop is read on only four 96 px tiles (corners, 32 px apart). This
study reads the same degraded val crops four ways and scores each:

* ``shipped``: as :func:`tir_env.perception.perceive_photo` reads them;
* ``mirror``: the network's outputs averaged with those of the left-right mirrored crop (left
  to right only: the haze's depth proxy makes a crop's top hazier than its bottom);
* ``dense``: nine tiles (3 x 3, 16 px apart) instead of four;
* ``both``.

Scores per type: F1 at the shipped thresholds and ROC AUC (whether any threshold could gain),
and the exact-set rate per suite. Crops: ``--crops`` per combination of ``mio-a``, ``mio-b``,
``mio-c`` and ``single`` on ``--images`` (val photos: nothing is chosen on test photos).

Usage::

    python -m benchmarks.perception_tta --images corpus:val@3 --crops 16 --seed 71 \
        --json benchmarks/results/perception_tta.json      # about 1 min
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.photo_studies import command, write_study
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.files import refuse_existing

RESULTS = Path("benchmarks/results/perception_tta.json")
SUITES = ("mio-a", "mio-b", "mio-c", "single")
WAYS = {"shipped": (False, False), "mirror": (True, False), "dense": (False, True)}
WAYS["both"] = (True, True)


def dense_origins(length: int, tile: int, limit: int, plain: Callable[..., list[int]]) -> list[int]:
    """Three tile starts where ``plain`` gives two (a side up to twice the tile), else its."""
    if tile < length <= 2 * tile:
        last = (length - tile) // 8 * 8
        return sorted({round(i * last / 2) // 8 * 8 for i in range(3)})
    return plain(length, tile, limit)


@contextlib.contextmanager
def reading(mirror: bool, dense: bool) -> Iterator[None]:
    """Perception reads mirrored and/or on denser tiles inside the block (patched, restored)."""
    from tir_env import perception

    raw, origins = perception.raw_outputs, perception.tile_origins

    def mirrored(prepared: torch.Tensor, name: str = perception.WEIGHTS_NAME) -> torch.Tensor:
        return 0.5 * (raw(prepared, name) + raw(prepared.flip(-1), name))

    def denser(length: int, tile: int = perception.TILE, limit: int = 8) -> list[int]:
        return dense_origins(length, tile, limit, origins)

    try:
        perception.raw_outputs = mirrored if mirror else raw
        perception.tile_origins = denser if dense else origins
        yield
    finally:
        perception.raw_outputs, perception.tile_origins = raw, origins


def suite_crops(images: str, n: int, seed: int) -> list[tuple[str, list[str], np.ndarray]]:
    """``n`` degraded crops per combination of each suite: (suite, true types, uint8 crop)."""
    from benchmarks.perception_report import degraded_crops
    from tir_env import data
    from tir_env.images import batch_to_u8

    source = data.source(images)
    photos = [source.load(i) for i in source.ids]
    rng = np.random.default_rng(seed)
    return [
        (suite, sorted(name for name, _ in applied), batch_to_u8(image))
        for suite, _, _, image, applied in degraded_crops(photos, SUITES, n, rng)
    ]


def scores(
    samples: Sequence[tuple[str, list[str], np.ndarray]], readings: list[Any]
) -> dict[str, Any]:
    """F1 (shipped thresholds) and ROC AUC per type, exact-set rate per suite."""
    from sklearn.metrics import roc_auc_score

    found = [sorted(seen.present) for seen in readings]
    types = {}
    for name in AGENTICIR_TYPES:
        truth = np.array([name in s[1] for s in samples])
        said = np.array([name in f for f in found])
        tp, fp, fn = (truth & said).sum(), (~truth & said).sum(), (truth & ~said).sum()
        probs = [seen.probs[name] for seen in readings]
        types[name] = {
            "f1": float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0,
            "auc": float(roc_auc_score(truth, probs)),
        }
    exact = {
        suite: float(
            np.mean([f == s[1] for f, s in zip(found, samples, strict=True) if s[0] == suite])
        )
        for suite in SUITES
    }
    return {"types": types, "exact": exact}


def run(images: str, n: int, seed: int) -> dict[str, Any]:
    """Read the crops each way of :data:`WAYS`; the scores by way."""
    from benchmarks.perception_report import CROP
    from tir_env import perception

    samples = suite_crops(images, n, seed)
    ways = {}
    for way, (mirror, dense) in WAYS.items():
        with reading(mirror, dense):
            seen = [perception.perceive_photo(image, size=(CROP, CROP)) for *_, image in samples]
        ways[way] = scores(samples, seen)
    return {"images": images, "crops_per_combination": n, "crops": len(samples), "ways": ways}


def markdown(result: Mapping[str, Any]) -> list[str]:
    """The study's tables: per type F1 / AUC each way, then the exact-set rates."""
    ways = list(result["ways"])
    lines = [
        f"`{result['command']}`: {result['crops']} crops of `{result['images']}`.",
        "",
        "| type | " + " | ".join(f"{w}: F1 / AUC" for w in ways) + " |",
        "|---|" + "---:|" * len(ways),
    ]
    for name in AGENTICIR_TYPES:
        cells = [result["ways"][w]["types"][name] for w in ways]
        lines.append(
            f"| {name} | " + " | ".join(f"{c['f1']:.3f} / {c['auc']:.3f}" for c in cells) + " |"
        )
    lines += ["", "| exact set | " + " | ".join(ways) + " |", "|---|" + "---:|" * len(ways)]
    for suite in SUITES:
        lines.append(
            f"| {suite} | "
            + " | ".join(f"{result['ways'][w]['exact'][suite]:.3f}" for w in ways)
            + " |"
        )
    return lines


def section(path: Path = RESULTS) -> str:
    """docs/perception.md's section on the study, from its committed record ('' without)."""
    if not path.is_file():
        return ""
    result = json.loads(path.read_text())
    ways = result["ways"]
    auc_moves = [
        abs(ways[w]["types"][t]["auc"] - ways["shipped"]["types"][t]["auc"])
        for w in ways
        for t in AGENTICIR_TYPES
    ]
    f1_moves = [
        ways[w]["types"][t]["f1"] - ways["shipped"]["types"][t]["f1"]
        for w in ways
        for t in AGENTICIR_TYPES
    ]
    lines = [
        "",
        "## Mirrored and denser tiles at test time (measured, not shipped)",
        "",
        "A classifier's readings often steady when it also reads a mirrored copy of its input, "
        "and a 128 px crop is read on only four 96 px tiles. `benchmarks/perception_tta.py` "
        "reads the same degraded val crops as shipped (`shipped`), with the network's outputs "
        "averaged over the crop and its left-right mirror (`mirror`), on nine tiles instead of "
        "four (`dense`), and both:",
        "",
        *markdown(result),
        "",
        f"Neither helps: no type's ROC AUC moves by more than {max(auc_moves):.3f}, so no "
        "threshold could gain from the averaged readings, and F1 moves from "
        f"{min(f1_moves):+.3f} to {max(f1_moves):+.3f}. What the network misses it misses on "
        "every view of a crop: its readings are not noisy, they are wrong the same way each "
        'time ("What the crops still show", above).',
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the study and write its record (refuses an existing one)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default="corpus:val@3")
    parser.add_argument("--crops", type=int, default=16, help="crops per combination")
    parser.add_argument("--seed", type=int, default=71)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    refuse_existing(parser, args.json)
    torch.set_num_threads(1)
    result = {
        "command": command("benchmarks.perception_tta", argv),
        **run(args.images, args.crops, args.seed),
    }
    write_study(args.json, result, markdown)


if __name__ == "__main__":
    main()
