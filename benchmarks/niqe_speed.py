"""Adaptive-reward cost with each NIQE implementation, side by side in one run.

The env's ``niqe`` metric is swapped between its CPU path (``cpu``: block features from
:mod:`tir_env.metrics.niqe_cpu`, the default on a CPU), its batched torch code on the CPU
(``torch``: the spec option ``cpu_features=False``) and pyiqa's (``pyiqa``: ``niqe_pyiqa``)
for alternate runs of :func:`benchmarks.speed.reward_cost` (random tools, ``--patch`` px
patches, no cache); medians over ``--repeats`` repeats. Writes
``benchmarks/results/niqe_speed.json``.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.niqe_speed --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from benchmarks.speed import machine, reward_cost
from tir_env.metrics import METRICS, make_metric, metric_on
from tir_env.metrics.pyiqa_backend import MetricSpec


def compare(repeats: int, steps: int, patch: int) -> dict[str, Any]:
    """Per implementation: the reward-cost rows of every repeat and their medians."""
    niqe_spec, pyiqa_spec = METRICS.get("niqe"), METRICS.get("niqe_pyiqa")
    if not isinstance(niqe_spec, MetricSpec) or not isinstance(pyiqa_spec, MetricSpec):
        raise TypeError(f"niqe and niqe_pyiqa must be MetricSpecs: {niqe_spec!r}, {pyiqa_spec!r}")
    torch_only = dataclasses.replace(
        niqe_spec, options={**niqe_spec.options, "cpu_features": False}
    )
    as_niqe = dataclasses.replace(
        pyiqa_spec, info=dataclasses.replace(pyiqa_spec.info, name="niqe")
    )
    variants = {"cpu": niqe_spec, "torch": torch_only, "pyiqa": as_niqe}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    try:
        for rep in range(repeats):
            for name, spec in variants.items():
                _use(spec)
                row = reward_cost("adaptive", steps=steps, patch=patch, seed=rep)
                runs[name].append({**row, "implementation": _implementation()})
    finally:
        _use(niqe_spec)
    keys = ("tool_ms", "metric_ms", "metric_over_tool", "total_metric_over_tool")
    return {
        name: {"runs": rows, **{k: statistics.median(r[k] for r in rows) for k in keys}}
        for name, rows in runs.items()
    }


def _use(spec: MetricSpec) -> None:
    """Make ``spec`` the ``niqe`` every env builds from now on (both metric caches cleared)."""
    METRICS.add("niqe", spec, overwrite=True)
    make_metric.cache_clear()
    metric_on.cache_clear()  # the env's per-device instances


def _implementation() -> str:
    """What the env's ``niqe`` on the CPU ran: its class, and its CPU path where it has one."""
    metric = metric_on("niqe", "cpu")
    path = getattr(metric, "cpu_features", None)
    return type(metric).__name__ + ("" if path is None else f"(cpu_features={path})")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure, write the JSON, return the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=48, help="env steps per run")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-json", default="benchmarks/results/niqe_speed.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    omp = os.environ.get("OMP_NUM_THREADS")
    words = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(
        [*([f"OMP_NUM_THREADS={omp}"] if omp else []), "python -m benchmarks.niqe_speed", *words]
    )
    report = {
        "command": command,
        "machine": machine(),
        **compare(args.repeats, args.steps, args.patch),
    }
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
