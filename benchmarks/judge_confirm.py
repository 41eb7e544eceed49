r"""Confirm a judge on fresh val probes: a candidate's weights against the shipped judge's.

A study that picks a judge on some val probes overrates the pick; this scores it again on val
episodes no study has used (later rounds of the same suites), beside the shipped judge, both
abstaining beyond :data:`agents.judge.RANGE_Z` with their saved margins, by the true PSNR their
calls gain over perception's thresholds per episode (as :mod:`benchmarks.judge_range` scores).

Usage::

    python -m benchmarks.judge_confirm --kind whole --rounds 6 10 \
        --candidate benchmarks/results/judge/trees/judge_whole_weights_r3.json  # 10 min
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents import judge
from benchmarks.judge_range import collect, decide, score, write_report

RESULTS = Path("benchmarks/results/judge/confirm_whole.json")


def judged(rows: Sequence[Mapping[str, Any]], episodes: int, path: Path) -> dict[str, Any]:
    """The score of the judge in ``path`` on ``rows`` (abstaining beyond its reach)."""
    models, margin = judge.load(path), judge.load_margin(path)
    missing = {r["type"] for r in rows} - set(models)
    if missing:
        raise ValueError(f"{path} has no model for {sorted(missing)}")
    calls = decide(rows, models, "abstain", judge.RANGE_Z, margin)
    return {"weights": _shown(path), "margin": margin, **score(rows, calls, episodes)}


def _shown(path: Path) -> str:
    """``path`` as the report shows it: relative to the working folder where it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def markdown(result: Mapping[str, Any]) -> list[str]:
    """One table: each judge's dB per episode over perception's calls on the fresh probes."""
    lines = [
        f"`{result['command']}`: {result['episodes']} fresh `{result['kind']}` episodes of "
        f"`{result['images']}` (rounds {result['rounds'][0]}-{result['rounds'][1] - 1} and one "
        f"clean view per photo), {len(result['rows'])} probes.",
        "",
        "| judge | weights | dB per episode over perception | overruled | large gains "
        "| large losses | clean false alarms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("shipped", "candidate"):
        r = result[name]
        lines.append(
            f"| {name} | `{r['weights']}` | {r['per_episode']:+.3f} | {r['overruled']} "
            f"| {r['large_gains']} | {r['large_losses']} | {r['clean_false_alarms']} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect the fresh probes, score both judges, write the report."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--candidate", type=Path, required=True, help="judge weights to confirm")
    p.add_argument("--kind", choices=("crops", "whole"), default="whole")
    p.add_argument("--images", default="corpus:val@3")
    p.add_argument("--rounds", type=int, nargs=2, default=[6, 10], metavar=("FIRST", "STOP"))
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    whole = args.kind == "whole"
    shipped = judge.WHOLE_WEIGHTS_FILE if whole else judge.WEIGHTS_FILE
    kind = collect(args.images, whole, args.rounds[0], args.rounds[1], 1)
    rows, episodes = kind["rows"], kind["episodes"]
    result: dict[str, Any] = {
        "command": ("python -m benchmarks.judge_confirm " + shlex.join(argv or sys.argv[1:])),
        "kind": args.kind,
        "images": args.images,
        "rounds": args.rounds,
        "episodes": episodes,
        "shipped": judged(rows, episodes, shipped),
        "candidate": judged(rows, episodes, args.candidate),
        "rows": rows,
    }
    return write_report(args.json, result, markdown)


if __name__ == "__main__":
    main()
