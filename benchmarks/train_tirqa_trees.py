r"""Fit the boosted trees of :mod:`tir_env.quality_trees` and write them.

The examples are :mod:`benchmarks.tirqa_ceiling`'s groups (a degraded 128 px crop of the
training photos and four random tools' outputs of it, each with its true PSNR and perception's
98 statistics); the trees are fitted on the statistics alone, the ``pixels`` variant of that
study, and written as ``tirqa_trees.safetensors`` with a JSON record beside it. Put the file
in a copy of the learned-weights folder to try it (``$TIR_LEARNED_WEIGHTS``, or
``benchmarks.ab_test --weights-b``).

Usage::

    python -m benchmarks.train_tirqa_trees --groups 3000 --cache runs/tirqa_ceiling3k \
        --out runs/w_trees/tirqa_trees.safetensors
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tir_env.files import write_text_atomic


def fit(train: dict[str, np.ndarray], seed: int) -> Any:
    """The trees fitted on the statistics (target: PSNR clipped to 0-50 dB, as the study)."""
    from benchmarks.tirqa_ceiling import regression

    return regression(False, seed).fit(train["pixels"], np.clip(train["psnr"], 0.0, 50.0))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Fit, check the export against scikit-learn, write the file and its record."""
    from safetensors.torch import save_file

    from benchmarks.tirqa_ceiling import groups_cached
    from tir_env import quality_trees

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--train", default="corpus:train@3")
    parser.add_argument("--groups", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None, help="tirqa_ceiling's cache folder")
    parser.add_argument("--out", type=Path, required=True, help="a .safetensors file; no overwrite")
    args = parser.parse_args(argv)
    if args.out.suffix != ".safetensors":
        parser.error(f"--out {args.out}: want a .safetensors file")
    if args.out.exists():
        parser.error(f"{args.out} exists; choose another path or delete it first")
    torch.set_num_threads(1)
    start = time.perf_counter()
    cache = args.cache / "train.npz" if args.cache else None
    _, train = groups_cached(args.train, args.groups, args.seed, cache)
    model = fit(train, args.seed)
    trees = quality_trees.from_sklearn(model)
    sample = train["pixels"][:500]
    gap = float(np.abs(trees.predict(sample) - model.predict(sample)).max())
    if gap > 1e-6:
        raise RuntimeError(f"the exported trees differ from scikit-learn's by {gap:g} dB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(trees.tensors(), str(args.out))
    record = {
        "command": "python -m benchmarks.train_tirqa_trees "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "train": args.train,
        "groups": args.groups,
        "candidates": int(len(train["psnr"])),
        "trees": int(len(trees.roots)),
        "nodes": int(len(trees.value)),
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
