"""Can the whole-photo judge learn to leave clean photos alone? A study over clean-row weights.

The whole-photo judge (:mod:`agents.judge`, ``train_judge --whole``) was fitted on degraded
photos only, and it brightens some clean photos (``benchmarks.restore_check --agent
exhaustive``). This collects the same training rows plus one clean whole view of each train
photo (``train_judge --clean 1``) once, then cross-validates the judge by photo fold for each
weight of the clean rows in the fit (a clean row standing for that many clean photos) and each
ridge lambda: its gain per episode over ``fixed`` on the suites' episodes, and how many clean
photos it brightened or dehazed.

Usage::

    python -m benchmarks.judge_clean_study   # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents import judge
from benchmarks import train_judge
from tir_env.files import write_text_atomic

RESULTS = Path("benchmarks/results/judge/whole_clean_study.json")


def study(
    rows: Sequence[dict[str, Any]],
    episodes: Sequence[int],
    weights: Sequence[float],
    lambdas: Sequence[float],
) -> list[dict[str, Any]]:
    """One cross-validation per (clean weight, lambda)."""
    out = []
    for weight in weights:
        for lam in lambdas:
            cv = train_judge.cross_validate(rows, episodes, lam, weight)
            out.append({"clean_weight": weight, "lambda": lam, "judge": cv["judge"], **cv["clean"]})
    return out


def markdown_table(paths: Sequence[Path]) -> list[str]:
    """The study's table (a ``judge-clean`` doc block)."""
    report = json.loads(Path(paths[0]).read_text())
    lines = [
        "| clean-row weight | ridge lambda | judge vs `fixed`, dB per episode | clean photos "
        "probed | judged in (brightened or dehazed) | dB lost on them |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["grid"]:
        lines.append(
            f"| {r['clean_weight']:g} | {r['lambda']:g} | {r['judge']:+.3f} | {r['probes']} | "
            f"{r['judged_in']} | {r['db_over_fixed']:+.0f} |"
        )
    return lines + [
        "",
        f"Over {report['episodes']} episodes, including one clean whole view of each train"
        f" photo; darkness or haze was probed on {report['clean_photos_probed']} of the clean"
        " photos.",
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect once, cross-validate the grid, write the report."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--source", default="corpus:train@2")
    p.add_argument("--weights", type=float, nargs="+", default=[1.0, 3.0, 10.0, 30.0, 100.0])
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 1.0, 10.0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    rows, episodes = train_judge.collect(
        Path("runs/cv"), "", 4, args.source, judge.JUDGED, "shipped", args.rounds, args.jobs,
        judge.FLOOR, whole=True, clean=1,
    )  # fmt: skip
    report = {
        "command": "python -m benchmarks.judge_clean_study",
        "episodes": sum(episodes),
        "clean_photos_probed": len({(r["fold"], r["episode"]) for r in rows if r["clean"]}),
        "grid": study(rows, episodes, args.weights, args.lambdas),
    }
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    print("\n".join(markdown_table([args.json])))
    return report


if __name__ == "__main__":
    main()
