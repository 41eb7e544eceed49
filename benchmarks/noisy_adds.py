"""What the crop judge's additions beside noise are worth, suite by suite (a diagnosis).

The crop judge (:mod:`agents.judge`) may add darkness or haze that perception did not see. For
each val episode of the five crop suites this collects the judge's probes as
:mod:`benchmarks.train_judge` does (``fixed``'s prior plan with and without the type, its true
PSNR change against the clean crop) and keeps those where the shipped judge adds a type
perception did not see, split by whether perception reads the crop as noisy. Summed per suite
and type, that is what ``judge_crop_adds_blocked_by=noise`` (``fixed.crop_adds_blocked_by``)
would give back on ``fixed``'s plan: docs/agents.md, "No additions beside noise".

Usage::

    python -m benchmarks.noisy_adds --rounds 259 261   # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

SUITES = ("mio-a", "mio-b", "mio-c", "ood-d2", "ood-d3")
RESULTS = Path("benchmarks/results/judge/noisy_adds_val.json")


def collect(images: str, round_: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One round's probes (a worker's share) and its episodes per suite."""
    from agents import judge
    from benchmarks.ab_test import round_episodes
    from benchmarks.perception_cv import FixedRunner
    from benchmarks.train_judge import _one_thread, _psnr

    _one_thread()
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    models, floor = judge.load(judge.WEIGHTS_FILE), judge.load_floor(judge.WEIGHTS_FILE)
    for suite in SUITES:
        episodes = round_episodes(images, [suite], round_, round_ + 1)
        runner = FixedRunner(episodes, images)
        counts[suite] = len(episodes)
        for i in range(len(episodes)):
            env = runner.reset(i)
            present, probed, _ = judge.probes(env, runner.params, tuple(models), floor)
            truth = dict(zip(runner.types, runner.truth(i), strict=True))
            for p in probed:
                model = models[p.type]
                rows.append(
                    {
                        "suite": suite,
                        "type": p.type,
                        "ratio": p.ratio,
                        "seen": p.type in present,
                        "noisy": "noise" in present,
                        "true": truth[p.type],
                        "gain": _psnr(env, p.with_type) - _psnr(env, p.without_type),
                        "predicted": model.gain(p.x),
                        "reach": model.reach(p.x),
                    }
                )
    return rows, counts


def added(row: Mapping[str, Any]) -> bool:
    """Whether the shipped crop judge (margin 0, within its reach) adds the probed type."""
    from agents import judge

    return not row["seen"] and row["reach"] <= judge.RANGE_Z and row["predicted"] > 0


def summary(rows: Sequence[Mapping[str, Any]], counts: Mapping[str, int]) -> dict[str, Any]:
    """Per suite and type, the additions beside noise: count, right ones, dB per episode."""
    out: dict[str, Any] = {}
    adds = [r for r in rows if added(r) and r["noisy"]]
    for suite in SUITES:
        for kind in ("dark", "haze"):
            mine = [r for r in adds if r["suite"] == suite and r["type"] == kind]
            out[f"{suite}/{kind}"] = {
                "adds": len(mine),
                "right": sum(bool(r["true"]) for r in mine),
                "db_per_episode": sum(r["gain"] for r in mine) / max(1, counts[suite]),
            }
    total = sum(counts.values())
    out["all"] = {
        "adds": len(adds),
        "right": sum(bool(r["true"]) for r in adds),
        "db_per_episode": sum(r["gain"] for r in adds) / max(1, total),
    }
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect the rounds' probes, summarise, write the JSON (never over an existing one)."""
    from tir_env.files import refuse_existing, write_text_atomic

    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--images", default="corpus:val@3")
    p.add_argument("--rounds", type=int, nargs=2, default=[259, 261], metavar=("FIRST", "STOP"))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    refuse_existing(p, args.json)
    rounds = list(range(*args.rounds))
    rows: list[dict[str, Any]] = []
    counts = dict.fromkeys(SUITES, 0)
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for part, count in pool.map(collect, [args.images] * len(rounds), rounds):
            rows += part
            counts = {s: counts[s] + count[s] for s in SUITES}
    given = sys.argv[1:] if argv is None else list(argv)
    report = {
        "command": shlex.join(["python", "-m", "benchmarks.noisy_adds", *given]),
        "images": args.images,
        "rounds": args.rounds,
        "episodes": counts,
        "summary": summary(rows, counts),
        "rows": rows,
    }
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    for key, value in report["summary"].items():
        print(f"{key}: {value}")
    return report


if __name__ == "__main__":
    main()
