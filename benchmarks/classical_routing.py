"""Classical tools on CPU threads or batched on the GPU: which serves a run faster?

``PoolConfig(classical_device="device")`` sends the classical tools' calls to the pool's GPU
lane, where one call of a batch of crops runs 6-16x faster per image than one call at a time,
though a lone call of some tools is slower than on the CPU (docs/performance.md, "On a GPU").
This measures both routings on the workloads a user runs, in one process, alternating the
two in every repeat so that a busy machine slows both alike:

* ``grpo``: GRPO-like groups (``benchmarks.speed.grpo_workload``: 8 groups of 8 rollouts of
  one photo crop, 3 lockstep steps, classical tools drawn from a skewed policy; no cache);
* ``vector N``: ``N`` envs stepping in lockstep on random tools of the ``classical`` toolbox
  (``benchmarks.speed.vector_env_rates``).

Usage::

    python -m benchmarks.classical_routing --device cuda --out benchmarks/results/gpu/routing.json

Without CUDA it exits 3 unless ``--device cpu`` (then both routings are the same code path:
a smoke test).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

ROUTINGS = ("cpu", "device")


def grpo_seconds(device: str, routing: str, size: int, seed: int, groups: int = 8) -> float:
    """Wall seconds of one GRPO-like workload (``groups`` groups of 8, 3 steps, no cache)."""
    from benchmarks.speed import grpo_workload

    run = grpo_workload(False, groups, 8, 3, size, seed, device=device, classical_device=routing)
    return float(run["wall_s"])


def vector_rate(device: str, routing: str, n: int, steps: int, size: int) -> float:
    """Sub-env steps per second of ``n`` envs on random classical tools (one seeded repeat)."""
    from benchmarks.speed import vector_env_rates

    (rate,) = vector_env_rates(
        n, steps, 1, size, device=device, toolbox="classical", classical_device=routing
    )
    return rate


def measure(
    device: str, envs: Sequence[int], repeats: int, size: int, groups: int = 8
) -> dict[str, Any]:
    """Both routings on every workload, alternating within each repeat (a warm-up first)."""
    runs: dict[str, dict[str, list[float]]] = {r: {} for r in ROUTINGS}
    for rep in range(repeats + 1):  # round 0 warms up CUDA, imports and the tools
        order = ROUTINGS if rep % 2 else ROUTINGS[::-1]
        for routing in order:
            record = runs[routing]
            grpo = grpo_seconds(device, routing, size, seed=rep, groups=groups)
            rates = {n: vector_rate(device, routing, n, max(3, 384 // n), size) for n in envs}
            if rep:
                record.setdefault("grpo_s", []).append(grpo)
                for n, rate in rates.items():
                    record.setdefault(f"vector_{n}_sps", []).append(rate)
    medians = {r: {k: statistics.median(v) for k, v in m.items()} for r, m in runs.items()}
    speedup = {
        k: (medians["cpu"][k] / v if k == "grpo_s" else v / medians["cpu"][k])
        for k, v in medians["device"].items()
    }
    return {"runs": runs, "medians": medians, "device_over_cpu": speedup}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print and write the JSON report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.classical_routing")
    parser.add_argument("--device", default="cuda", help="the pool's device (cuda, or cpu: smoke)")
    parser.add_argument("--envs", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=64, help="crop side, pixels")
    parser.add_argument("--groups", type=int, default=8, help="GRPO-like groups of 8 rollouts")
    parser.add_argument("--out", type=Path, default=None, help="JSON report (refuses to replace)")
    args = parser.parse_args(argv)
    if min(args.repeats, args.groups, *args.envs) < 1 or args.size < 8:
        print("classical_routing: --repeats, --groups, --envs >= 1; --size >= 8", file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("classical_routing: no CUDA device; --device cpu for a smoke test", file=sys.stderr)
        return 3
    if args.out is not None and args.out.exists():
        print(f"classical_routing: {args.out} exists; not replacing it", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    report = {
        "command": "python -m benchmarks.classical_routing " + " ".join(argv or sys.argv[1:]),
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "torch": torch.__version__,
        "size": args.size,
        "repeats": args.repeats,
        "groups": args.groups,
        **measure(args.device, args.envs, args.repeats, args.size, args.groups),
    }
    text = json.dumps(report, indent=1)
    print(text)  # noqa: T201 - the command's output
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
