"""Where a search agent's plan departs from ``fixed``'s, and what each kind of departure costs.

Runs ``fixed`` and a search agent (``exhaustive`` by default) on the held-out episodes of some
cross-validation folds (:mod:`benchmarks.perception_cv`: each fold's photos perceived and
scored by the networks trained without them), then sorts every episode by how the agent's
tool sequence differs from ``fixed``'s: the same plan, a perceived task dropped, a rival tool
for the same task, the same tasks in another order, or a mix. Summed PSNR differences per
kind say which decisions of the search gain and which cost (docs/agents.md, "Deviations from
the prior").

Usage::

    python -m benchmarks.search_decisions --agent exhaustive:deviation_margin=3,prior_order=false \
        --folds 0 1 --json benchmarks/results/search_cv/decisions_one_margin.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

#: Kinds of departure, in the order tables list them.
KINDS = ("same", "dropped", "dropped+rival", "rival", "reorder", "reorder+rival", "other")


def departure(fixed: Sequence[str], agent: Sequence[str]) -> str:
    """How the tool sequence ``agent`` departs from ``fixed`` (one of :data:`KINDS`)."""
    from tir_env.tools.base import tool_info

    if list(fixed) == list(agent):
        return "same"
    fixed_tasks = [tool_info(t).task for t in fixed]
    agent_tasks = [tool_info(t).task for t in agent]
    rival = not set(agent) <= set(fixed)
    if sorted(agent_tasks) == sorted(fixed_tasks):
        if agent_tasks == fixed_tasks:
            return "rival"
        return "reorder+rival" if rival else "reorder"
    if set(agent_tasks) < set(fixed_tasks):
        return "dropped+rival" if rival else "dropped"
    return "other"


def _tools(record: dict[str, Any]) -> list[str]:
    return [call["tool"] for call in record["actions"] if call]


def fold_decisions(
    source: str, out: Path, variant: str, agent: str, k: int, n: int
) -> list[dict[str, Any]]:
    """One row per held-out episode of fold ``k``: both plans, both PSNRs, the departure."""
    import torch

    from benchmarks import perception_cv

    torch.set_num_threads(1)
    perception_cv.use_fold_networks(out, variant, k)
    episodes = perception_cv.held_out_episodes(source, k, n)
    images = f"{source}[{k}/{n}]"
    runs = {spec: perception_cv.agent_records(spec, episodes, images) for spec in ("fixed", agent)}
    rows = []
    for f, a in zip(runs["fixed"], runs[agent], strict=True):
        rows.append(
            {
                "fold": k,
                "suite": f["suite"],
                "image": f["image"],
                "degradations": f["degradations"],
                "fixed": _tools(f),
                "agent": _tools(a),
                "fixed_psnr": f["metrics_output"]["psnr"],
                "agent_psnr": a["metrics_output"]["psnr"],
                "departure": departure(_tools(f), _tools(a)),
            }
        )
    return rows


def summary_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown: per departure, episodes, summed and mean PSNR change against ``fixed``."""
    lines = [
        "| departure from `fixed`'s plan | episodes | summed dB | mean dB | worse | better |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        diff = np.array([r["agent_psnr"] - r["fixed_psnr"] for r in rows if r["departure"] == kind])
        if not len(diff):
            continue
        cells = [len(diff), f"{diff.sum():+.1f}", f"{diff.mean():+.2f}"]
        cells += [int((diff < -1e-6).sum()), int((diff > 1e-6).sum())]
        lines.append(f"| {kind} | " + " | ".join(map(str, cells)) + " |")
    total = np.array([r["agent_psnr"] - r["fixed_psnr"] for r in rows])
    lines.append(f"| all | {len(total)} | {total.sum():+.1f} | {total.mean():+.3f} | | |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Run both agents on the folds' episodes; write the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="exhaustive", help="NAME[:KEY=VALUE,...]")
    parser.add_argument("--source", default="corpus:train@2")
    parser.add_argument("--out", type=Path, default=Path("runs/cv"), help="the folds' networks")
    parser.add_argument("--variant", default="p40kq")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--of", type=int, default=4, help="how many folds the source has")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    from benchmarks.perception_cv import agent_spec

    agent_spec(args.agent)  # a bad spec: an error now, not after a fold's run
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        jobs = [
            pool.submit(fold_decisions, args.source, args.out, args.variant, args.agent, k, args.of)
            for k in args.folds
        ]
        rows = [row for job in jobs for row in job.result()]
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python -m benchmarks.search_decisions " + " ".join(given)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"command": command, "agent": args.agent, "rows": rows}) + "\n")
    print("\n".join(summary_table(rows)))


if __name__ == "__main__":
    main()
