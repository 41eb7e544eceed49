r"""Would a search that also tries the degradations perception nearly saw beat ``fixed``?

Perception misses more than it invents (recall 0.3-0.5 for motion blur, darkness and haze at
the shipped thresholds), and a missed darkness or haze costs several dB. A search agent could
treat a type read just under its threshold as optional: run ``fixed``'s plan with and without
it and keep it when the no-reference scorer (``tirqa``) rates the result higher by a margin.
This measures that decision on out-of-fold readings of the corpus' train photos (the fold
networks of :mod:`benchmarks.perception_cv`, each photo read by the network that never saw
it): for every episode of the five suites and every type read at ``--floor`` or more of its
threshold but under it, ``fixed``'s output PSNR and ``tirqa`` without and with that type. The
rule (add the type when its reading is at least ``ratio`` of the threshold and ``tirqa``
gains more than ``margin``) is chosen on three folds and scored on the fourth, in turn.

Usage::

    python -m benchmarks.near_miss --out runs/cv --variant p40kq \\
        --json benchmarks/results/search_cv/near_miss.json   # ~10 min on one core
    python -m benchmarks.near_miss --report-only --json benchmarks/results/search_cv/near_miss.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.perception_cv import nested_sentence

#: (ratio of the threshold, tirqa margin in dB) pairs the nested cross-validation chooses from.
GRID = tuple((r, m) for r in (0.3, 0.5, 0.7, 0.85) for m in (0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0))


def fixed_outcome(runner: Any, tirqa: Any, i: int, present: np.ndarray) -> tuple[float, float]:
    """``fixed``'s output PSNR and ``tirqa`` on episode ``i`` when it perceives ``present``."""
    from agents.baselines import prior_plan
    from tir_env.spaces import encode_call

    env = runner.reset(i)
    tasks = [runner.task[t] for t, on in zip(runner.types, present, strict=True) if on]
    for call in prior_plan(tasks, env.tools, env.config.max_steps, runner.params):
        env.step(encode_call(call, env.tools))
    out_image = env.current_batch()
    return float(env.score(out_image, ("psnr",))["psnr"]), float(tirqa(out_image))


def fold_rows(
    runner: Any, probs: np.ndarray, limits: np.ndarray, floor: float, k: int
) -> list[dict[str, Any]]:
    """:func:`collect`'s rows of one fold (its network loaded, ``probs`` read by it)."""
    from tir_env.metrics import make_metric

    tirqa = make_metric("tirqa")
    rows: list[dict[str, Any]] = []
    for i, reading in enumerate(probs):
        seen, truth = reading >= limits, runner.truth(i)
        near = [j for j in range(len(limits)) if not seen[j] and reading[j] >= floor * limits[j]]
        if near:
            psnr0, q0 = fixed_outcome(runner, tirqa, i, seen)
        for j in near:
            plus = seen.copy()
            plus[j] = True
            psnr1, q1 = fixed_outcome(runner, tirqa, i, plus)
            rows.append(
                {
                    "fold": k,
                    "episode": i,
                    "type": runner.types[j],
                    "ratio": float(reading[j] / limits[j]),
                    "true": bool(truth[j]),
                    "psnr_without": psnr0,
                    "psnr_with": psnr1,
                    "tirqa_without": q0,
                    "tirqa_with": q1,
                }  # fmt: skip
            )
    return rows


def collect(out: Path, variant: str, folds: int, source: str, floor: float) -> list[dict[str, Any]]:
    """One row per (episode, near-missed type): PSNR and ``tirqa`` without and with it."""
    import torch

    from benchmarks import perception_cv as cv
    from tir_env import perception

    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    for k, runner in cv.out_of_fold_runners(source, out, variant, folds):
        limits = np.array([perception.thresholds()[t] for t in runner.types])
        rows += fold_rows(runner, cv.probabilities(runner), limits, floor, k)
    return rows


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _arrays(rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {
        "gain": np.array([r["psnr_with"] - r["psnr_without"] for r in rows]),
        "scored": np.array([r["tirqa_with"] - r["tirqa_without"] for r in rows]),
        "ratio": np.array([r["ratio"] for r in rows]),
        "fold": np.array([r["fold"] for r in rows]),
        "true": np.array([r["true"] for r in rows], dtype=bool),
        "type": np.array([r["type"] for r in rows]),
    }


def nested_cv(rows: Sequence[dict[str, Any]], episodes: Sequence[int]) -> dict[str, Any]:
    """The rule chosen on the other folds, scored on each fold: PSNR change per episode.

    Args:
        rows: :func:`collect`'s rows.
        episodes: Episodes of each fold (those without a near miss included).
    """
    a = _arrays(rows)

    def picked(ratio: float, margin: float) -> np.ndarray:
        return (a["ratio"] >= ratio) & (a["scored"] > margin)

    folds = sorted(set(a["fold"].tolist()))
    per_fold = []
    for k in folds:
        train = a["fold"] != k
        best = max(GRID, key=lambda g: float(a["gain"][train & picked(*g)].sum()))
        test = (a["fold"] == k) & picked(*best)
        per_fold.append(
            {
                "fold": k,
                "ratio": best[0],
                "margin": best[1],
                "added": int(test.sum()),
                "per_episode": float(a["gain"][test].sum() / episodes[k]),
            }  # fmt: skip
        )
    added = sum(f["per_episode"] * episodes[f["fold"]] for f in per_fold)
    return {"per_fold": per_fold, "per_episode": added / sum(episodes[k] for k in folds)}


def by_type(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per type: near misses, share truly there, PSNR change if added, tirqa's correlation."""
    a = _arrays(rows)
    out = []
    for t in sorted(set(a["type"].tolist())):
        s = a["type"] == t
        corr = np.corrcoef(a["scored"][s], a["gain"][s])[0, 1] if s.sum() > 2 else float("nan")
        out.append(
            {
                "type": t,
                "n": int(s.sum()),
                "true": float(a["true"][s].mean()),
                "gain": float(a["gain"][s].mean()),
                "gain_true": _mean(a["gain"][s & a["true"]]),
                "gain_false": _mean(a["gain"][s & ~a["true"]]),
                "corr": float(corr),
            }
        )  # fmt: skip
    return out


def markdown_table(paths: Sequence[Path]) -> list[str]:
    """The per-type table and the nested cross-validation line of a committed result."""
    result = json.loads(Path(paths[0]).read_text())

    def dB(v: float | None) -> str:
        return "-" if v is None else f"{v:+.2f}"

    lines = [
        "| type | near misses | truly there | PSNR change if added (dB) | "
        "if there | if not | correlation of `tirqa`'s change with it |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["by_type"]:
        lines.append(
            f"| {r['type']} | {r['n']} | {r['true']:.2f} | {dB(r['gain'])} | "
            f"{dB(r['gain_true'])} | {dB(r['gain_false'])} | {r['corr']:.2f} |"
        )
    sentence = nested_sentence(
        "Rule chosen on three folds, scored on the fourth (",
        result["nested_cv"],
        lambda f: f"ratio {f['ratio']:g}, margin {f['margin']:g} dB",
    )
    return [*lines, "", sentence]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect (unless ``--report-only``), write the JSON, print the table."""
    from benchmarks import perception_cv as cv

    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    cv.add_fold_arguments(p)
    p.add_argument("--floor", type=float, default=0.3, help="lowest reading / threshold tried")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/search_cv/near_miss.json"))
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    if not args.report_only:
        rows = collect(args.out, args.variant, args.folds, args.source, args.floor)
        episodes = [
            len(cv.held_out_episodes(args.source, k, args.folds)) for k in range(args.folds)
        ]
        given = sys.argv[1:] if argv is None else list(argv)
        result = {
            "command": " ".join(["python -m benchmarks.near_miss", *map(shlex.quote, given)]),
            "episodes": episodes,
            "by_type": by_type(rows),
            "nested_cv": nested_cv(rows, episodes),
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result) + "\n")
    print("\n".join(markdown_table([args.json])))
    return json.loads(args.json.read_text())


if __name__ == "__main__":
    main()
