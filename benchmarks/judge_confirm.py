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

import numpy as np

from agents import judge
from benchmarks.judge_range import (
    change_over_perception,
    collect,
    decide,
    score,
    write_report,
)
from tir_env.files import refuse_existing

RESULTS = Path("benchmarks/results/judge/confirm_whole.json")


def judged(rows: Sequence[Mapping[str, Any]], episodes: int, path: Path) -> dict[str, Any]:
    """The score of the judge in ``path`` on ``rows`` (abstaining beyond its reach)."""
    scored = score(rows, _calls(rows, path), episodes)
    return {"weights": _shown(path), "margin": judge.load_margin(path), **scored}


def _calls(rows: Sequence[Mapping[str, Any]], path: Path) -> np.ndarray:
    """Each probe's call by the judge in ``path``, abstaining beyond its reach.

    Raises:
        ValueError: the judge has no model for a probed type.
    """
    models = judge.load(path)
    missing = {r["type"] for r in rows} - set(models)
    if missing:
        raise ValueError(f"{path} has no model for {sorted(missing)}")
    return decide(rows, models, "abstain", judge.RANGE_Z, judge.load_margin(path))


def paired_difference(
    rows: Sequence[Mapping[str, Any]], photos: Sequence[str], a: Path, b: Path
) -> dict[str, Any]:
    """Judge ``b`` minus judge ``a`` in dB per episode, with its standard error over photos.

    Both judge the same probes, so the difference is paired: each episode's change over
    perception under ``b`` minus under ``a``, averaged per photo (a photo's episodes are not
    independent), the error that of the mean over photos.
    """
    changes = [_episode_changes(rows, len(photos), path) for path in (a, b)]
    by_photo: dict[str, list[float]] = {}
    for photo, diff in zip(photos, changes[1] - changes[0], strict=True):
        by_photo.setdefault(photo, []).append(float(diff))
    means = np.array([np.mean(v) for v in by_photo.values()])
    se = float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")
    return {
        "per_episode": float((changes[1] - changes[0]).mean()) if len(photos) else 0.0,
        "se": se,
        "photos": len(means),
    }


def _episode_changes(rows: Sequence[Mapping[str, Any]], episodes: int, path: Path) -> np.ndarray:
    """Each episode's summed PSNR change over perception's calls under the judge in ``path``."""
    gain = np.array([r["gain"] for r in rows], dtype=float)
    seen = np.array([r["seen"] for r in rows], dtype=bool)
    change = change_over_perception(gain, seen, _calls(rows, path))
    out = np.zeros(episodes)
    np.add.at(out, np.array([r["episode"] for r in rows], dtype=int), change)
    return out


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
    if "difference" in result:  # reports before 2026-12-06 have none
        d = result["difference"]
        lines += [
            "",
            f"Candidate minus shipped: {d['per_episode']:+.3f} dB per episode (se "
            f"{d['se']:.3f} over {d['photos']} photos, paired: the same probes).",
        ]
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
    refuse_existing(p, args.json)
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
        "difference": paired_difference(rows, kind["photos"], shipped, args.candidate),
        "rows": rows,
    }
    return write_report(args.json, result, markdown)


if __name__ == "__main__":
    main()
