"""What a `tirqa` call costs now against the call before session 48, side by side in one run.

`tirqa`'s PSNR comes from boosted trees over perception's statistics (docs/perception.md).
Until session 48 a call also ran the quality network (whose SSIM it never used), computed
the statistics image by image, and walked the trees one after another. Now it skips the
network (:func:`tir_env.perception.quality_psnr`), computes the statistics of every image
in one batch and walks every tree at once. This times both on the same crops of a
bundled test photo, back to back in alternating order, and reports the medians over
``--repeats`` and their ratio, with each part's share; it also checks that both give the
same PSNR. Both read the statistics with today's code (session 48 also made that faster,
the same floats: a cached spectrum mask, one Fourier transform for both spectral readings, a
separable minimum filter), so the ratio is what the call's shape gains alone. Writes
``benchmarks/results/tirqa_speed.json`` and the ``tirqa-speed`` section of docs/metrics.md.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.tirqa_speed --crops 6 --repeats 15
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.niqe_table import replace_section
from benchmarks.speed import machine
from tir_env.files import write_text_atomic
from tir_env.quality_trees import QualityTrees, TreeEnsemble

RESULTS = Path("benchmarks/results/tirqa_speed.json")
DOC = Path("docs/metrics.md")
#: The photo whose crops are timed (a bundled test photo).
PHOTO = "bundled:test"


class TreeByTree(TreeEnsemble):
    """Trees walked as the call before session 48 walked them: one tree after another."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The sum of every tree's leaf for each row of ``x``, tree by tree."""
        rows = np.arange(len(x))
        out = np.full(len(x), self.baseline)
        for root in self.roots:
            node = np.full(len(x), root)
            while not self.leaf[node].all():
                v = x[rows, self.feature[node]]
                go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
                step = np.where(go_left, self.left[node], self.right[node])
                node = np.where(self.leaf[node], node, step)
            out += self.value[node]
        return out


def walked_tree_by_tree(trees: QualityTrees) -> QualityTrees:
    """``trees`` (regression and clean classifier, mixed as shipped) with the old walk."""

    def old(ensemble: TreeEnsemble) -> TreeEnsemble:
        return TreeByTree(
            **{f.name: getattr(ensemble, f.name) for f in dataclasses.fields(ensemble)}
        )

    clean = None if trees.clean is None else old(trees.clean)
    return QualityTrees(old(trees.psnr), clean, trees.clean_psnr)


def features_image_by_image(prepared: torch.Tensor) -> np.ndarray:
    """The statistics as the call before computed them: one image at a time."""
    from tir_env.tools.learned.perception_features import perception_features

    with torch.no_grad():
        return (
            torch.cat([perception_features(x[None].float(), profile=True) for x in prepared])
            .double()
            .numpy()
        )


def features_batched(prepared: torch.Tensor) -> np.ndarray:
    """The statistics of every image in one batch (as the call does now)."""
    from tir_env.tools.learned.perception_features import perception_features

    with torch.no_grad():
        return perception_features(prepared.float(), profile=True).double().numpy()


def before(prepared: torch.Tensor, old_trees: QualityTrees) -> torch.Tensor:
    """The call before session 48 (crops read whole, as 128 px crops are).

    ``old_trees``: the shipped trees with the old walk (:func:`walked_tree_by_tree`).
    """
    from tir_env import perception

    perception.raw_outputs(prepared, perception.quality_network())  # run, its SSIM unused
    psnr = old_trees.predict(features_image_by_image(prepared))
    return torch.tensor(psnr, dtype=torch.float32)


def crops_of_photo(n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` random ``size`` px crops of :data:`PHOTO`'s first photo, prepared for perception."""
    from tir_env import data, perception
    from tir_env.images import u8_to_batch

    source = data.source(PHOTO)
    photo = source.load(source.ids[0])
    rng = np.random.default_rng(seed)
    tops = rng.integers(0, photo.shape[0] - size + 1, n)
    lefts = rng.integers(0, photo.shape[1] - size + 1, n)
    batch = torch.cat(
        [u8_to_batch(photo[t : t + size, s : s + size]) for t, s in zip(tops, lefts, strict=True)]
    )
    return perception.prepare(batch, (size, size))


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return 1000.0 * (time.perf_counter() - start)


def measure(prepared: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Median milliseconds of each path and part over ``repeats`` alternating repeats."""
    from tir_env import perception, quality_trees

    trees = quality_trees.load()
    old_trees = walked_tree_by_tree(trees)
    stats = features_batched(prepared)
    parts: dict[str, Callable[[], object]] = {
        "before": lambda: before(prepared, old_trees),
        "now": lambda: perception.quality_psnr(prepared),
        "network": lambda: perception.raw_outputs(prepared, perception.quality_network()),
        "features image by image": lambda: features_image_by_image(prepared),
        "features batched": lambda: features_batched(prepared),
        "walk tree by tree": lambda: old_trees.predict(stats),
        "walk all trees at once": lambda: trees.predict(stats),
    }
    for fn in parts.values():
        fn()  # warm up (weights read, caches)
    times: dict[str, list[float]] = {name: [] for name in parts}
    for r in range(repeats):
        order = list(parts) if r % 2 == 0 else list(reversed(parts))
        for name in order:
            times[name].append(_ms(parts[name]))
    medians = {name: statistics.median(t) for name, t in times.items()}
    now = perception.quality_psnr(prepared)
    difference = float((before(prepared, old_trees) - now).abs().max())
    return {
        "ms": medians,
        "speed_up": medians["before"] / medians["now"],
        "max_psnr_difference_db": difference,
    }


def markdown(report: dict[str, Any]) -> str:
    """The section of docs/metrics.md."""
    ms, m = report["ms"], report["machine"]
    rows = "\n".join(f"| {name} | {value:.1f} |" for name, value in ms.items())
    return (
        f"One `tirqa` call on {report['crops']} crops of {report['size']} px costs "
        f"**{ms['now']:.1f} ms** against {ms['before']:.1f} ms for the call before session 48 "
        f"(**{report['speed_up']:.1f}x** faster; the largest PSNR difference between the "
        f"two is {report['max_psnr_difference_db']:.2g} dB). Both read the statistics with "
        "today's code, so the ratio is the call's shape alone. The call no longer runs the "
        "quality network (its SSIM was never read), computes the statistics of every image "
        "in one batch and walks all the trees at once, the leaves summed tree by tree, so "
        "the walk gives the same float. Batched statistics differ from one image's alone by "
        "up to about 1e-6, which moves a prediction only where it crosses a split; it moved "
        "none here, and the committed `tirqa`-scored records reproduce exactly "
        "(`python -m benchmarks.reproduce SUITE --agents exhaustive,greedy`). Medians over "
        f"{report['repeats']} repeats, timed back to back in alternating order, on "
        f"{m.get('cpu', 'this CPU')} with torch threads {report['threads']}:\n\n"
        "| path or part | ms |\n|---|---:|\n"
        f"{rows}\n\nMade with `{report['command']}`."
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure, write the JSON and the doc section, return the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crops", type=int, default=6)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument("--doc", type=Path, default=DOC)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    words = list(sys.argv[1:] if argv is None else argv)
    omp = os.environ.get("OMP_NUM_THREADS")
    prefix = [f"OMP_NUM_THREADS={omp}"] if omp else []
    report: dict[str, Any] = {
        "command": shlex.join([*prefix, "python", "-m", "benchmarks.tirqa_speed", *words]),
        "machine": machine(),
        "crops": args.crops,
        "size": args.size,
        "repeats": args.repeats,
        "threads": args.threads,
        **measure(crops_of_photo(args.crops, args.size, args.seed), args.repeats),
    }
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    if args.doc.is_file():
        write_text_atomic(
            args.doc, replace_section(args.doc.read_text(), "tirqa-speed", markdown(report))
        )
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
