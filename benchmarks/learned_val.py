"""Learned networks compared on val crops: the shipped weights against retrained ones.

Each network is scored on its own training task (its :data:`benchmarks.train_tools.RECIPES`
combinations) on crops of the corpus' val photos (``corpus:val``), made exactly as training
makes its val set (:func:`benchmarks.train_tools.pair_set`) with a seed fixed per network, so
every weights folder sees the same crops. Each folder's network runs through the tool API
(``make_tool(name)(x)``, its classical prior included), as the env runs it.

Usage::

    python -m benchmarks.learned_val --out benchmarks/results/learned_r3/val.json
        --models shipped=tir_env/assets/learned corpus3=runs/learned3   # (one line)
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import train_tools
from benchmarks.tool_eval import upsample_to
from tir_env.files import write_text_atomic
from tir_env.tools.learned.weights import weights_folder

#: Val crops per network (a combination drawn for each).
CROPS = 48
#: The pre-registered rule (commit 678dd83): a retrained network must gain this much.
MIN_GAIN_DB = 0.1


def val_pairs(name: str, crops: int, seed: int, round_inputs: bool = False) -> train_tools.PairSet:
    """The val crops of network ``name``: degraded inputs and their targets (no priors).

    ``round_inputs``: the inputs rounded to 8 bits, as the env rounds an episode's input.
    """
    from dataclasses import replace

    from tir_env.tools.learned import spec_of

    spec = spec_of(name)
    recipe = replace(train_tools.RECIPES[name], round_inputs=round_inputs)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return train_tools.pair_set("val", crops, recipe, rng, spec.scale, None)


def mean_psnr(pairs: train_tools.PairSet, restore: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Mean PSNR of ``restore(input)`` over ``pairs`` (outputs bicubic-upsampled to the target)."""
    with torch.no_grad():
        scores = [
            train_tools.psnr(upsample_to(restore(x), y), y)
            for x, y in zip(pairs.inputs, pairs.targets, strict=True)
        ]
    return float(np.mean(scores))


def network(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Network ``name`` from the weights folder in force now, through the tool API."""
    from tir_env.tools import make_tool

    return type(make_tool(name))()  # a fresh instance: make_tool's is built once a process


def classical(name: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The task's preferred classical tool with ``fixed``'s fitted parameters.

    What the plan-based agents run for the task instead (``None`` for the all-in-one).
    """
    from agents.baselines import preferred_tool
    from agents.tuned import prior_call
    from tir_env.tools import make_tool, tool_info, tool_names

    task = tool_info(name).task
    tool = preferred_tool(task, tuple(tool_names(task=task, kinds=("classical",))))
    if tool is None:
        return None
    call, run = prior_call(tool, "tuned"), make_tool(tool)
    return lambda x: run(x, call.params)


def score(
    names: Sequence[str],
    models: dict[str, str],
    crops: int,
    seed: int,
    round_inputs: bool = False,
) -> dict[str, Any]:
    """Per network: the input's PSNR, the classical preferred tool's, and each folder's."""
    out: dict[str, Any] = {}
    for name in names:
        pairs = val_pairs(name, crops, seed, round_inputs)
        row: dict[str, Any] = {"input": mean_psnr(pairs, lambda x: x)}
        baseline = classical(name)
        if baseline is not None:
            row["classical_tuned"] = mean_psnr(pairs, baseline)
        for label, folder in models.items():
            with weights_folder(folder):
                row[label] = mean_psnr(pairs, network(name))
        out[name] = row
        print(name, {k: round(v, 2) for k, v in row.items()}, flush=True)
    return out


def decisions(rows: dict[str, Any], base: str, new: str) -> dict[str, bool]:
    """Which networks the rule replaces: ``new`` >= ``base`` + :data:`MIN_GAIN_DB`."""
    return {name: bool(r[new] >= r[base] + MIN_GAIN_DB) for name, r in rows.items()}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score every network in every ``name=folder``; the first is the base of the rule."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="name=weights folder")
    parser.add_argument("--only", nargs="+", default=sorted(train_tools.RECIPES))
    parser.add_argument("--crops", type=int, default=CROPS)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--round-inputs",
        action="store_true",
        help="round the val inputs to 8 bits, as the env rounds an episode's input",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    models = dict(m.split("=", 1) for m in args.models)
    start = time.time()
    rows = score(args.only, models, args.crops, args.seed, args.round_inputs)
    labels = list(models)
    result = {
        "command": "python -m benchmarks.learned_val " + " ".join(argv or []),
        "photos": list(train_tools.split_source("val").ids),
        "crops": args.crops,
        "seed": args.seed,
        "psnr": rows,
        "replace": {new: decisions(rows, labels[0], new) for new in labels[1:]},
        "seconds": round(time.time() - start, 1),
    }
    write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    import sys

    print(json.dumps(main(sys.argv[1:])["replace"], indent=1))
