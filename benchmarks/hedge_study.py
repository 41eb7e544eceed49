"""Half-strength calls where unsure? What a weaker brightening or dehazing does, both ways.

The judge (:mod:`agents.judge`) decides darkness and haze all or nothing: the prior plan runs
with the type's tool at full strength or without it. Where it cannot tell a darkened crop from
a dark one, a softer call (a gamma nearer 1, a dehazing that applies part of its change) might
keep much of the gain where the type is there and lose little where it is not: the estimate
that minimises the expected squared error is a blend of the two hypotheses' restorations, not
either one. Whether that carries over to PSNR depends on how the gain and the loss shrink with
the strength. If a strength keeps a share ``a`` of the full call's mean gain on crops that carry
the type and a share ``b`` of its mean loss on crops that do not, its expected change at a
probability ``p`` that the type is there is ``a p G - b (1 - p) L``; it beats both the full call
and no call at some ``p`` only if ``a > b``.

For every probe of the shipped crop judge on val crops (the five crop suites; the probe as
:func:`agents.judge.probes` makes it, the judge may add or drop either type), this study runs
``fixed``'s prior plan (its tools and fitted parameters, its learned dehazing) without the type
and with it, and records the true PSNR of softer calls: darkness with a gamma nearer 1 (a real
call), either type as a blend ``w * with + (1 - w) * without`` of the two plans' outputs (no
tool makes it; ``learned_dehazing`` has no strength to turn down, so for haze it is the only
measure). It reports, per type and by whether perception saw the type, the mean change from the
plan without the type on crops that carry it and on crops that do not, ``a`` and ``b``, and the
break-even probability ``L / (G + L)`` above which a call at that strength pays.

Usage::

    python -m benchmarks.hedge_study --rounds 0 4 --jobs 2   # about 4 min on 2 cores
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from tir_env.files import refuse_existing

RESULTS = Path("benchmarks/results/judge/hedge_study.json")
SUITES = ("mio-a", "mio-b", "mio-c", "ood-d2", "ood-d3")
#: Per judged type: the tool of its task in ``fixed``'s plan whose parameter sets how much it
#: changes the image and the values tried, the full call's last (``None``: no such parameter).
STRENGTHS: dict[str, tuple[str, str, tuple[float, ...]] | None] = {
    "dark": ("gamma_correction", "gamma", (1.1, 1.2, 1.3, 1.4, 1.5)),
    "haze": None,
}
#: Weights of the blends of the plans' outputs with and without the type (1: the full call).
BLENDS = (0.25, 0.5, 0.75, 1.0)


def variants(judged: str) -> list[str]:
    """The names of a type's softer calls, each group's full call last."""
    spec = STRENGTHS[judged]
    tool = [] if spec is None else [f"{spec[0]} {spec[1]}={v:g}" for v in spec[2]]
    return [*tool, *(f"blend w={w:g}" for w in BLENDS)]


def hedged_plan(env: Any, types: Sequence[str], judged: str, value: float | None) -> list[Any]:
    """``fixed``'s prior plan of ``types``, the ``judged`` type's tool at ``value`` if given."""
    from agents.baselines import DEFAULT_LEARNED, FixedOptions, prior_plan
    from tir_env.degradations import make_degradation
    from tir_env.types import ToolCall

    tasks = [make_degradation(t).info.task for t in types]
    plan = prior_plan(
        tasks, env.tools, env.config.max_steps, FixedOptions().params, DEFAULT_LEARNED
    )
    spec = STRENGTHS[judged]
    if spec is None or value is None:
        return plan
    tool, name, _ = spec
    return [ToolCall(c.tool, {**c.params, name: value}) if c.tool == tool else c for c in plan]


def softer_outputs(env: Any, image: Any, others: Sequence[str], judged: str) -> tuple[Any, list]:
    """The plan's output without ``judged``, and each of :func:`variants`' outputs."""
    without = run(env, image, hedged_plan(env, others, judged, None))
    full = run(env, image, hedged_plan(env, [*others, judged], judged, None))
    spec = STRENGTHS[judged]
    values = () if spec is None else spec[2]
    tool = [run(env, image, hedged_plan(env, [*others, judged], judged, v)) for v in values]
    return without, [*tool, *(w * full + (1.0 - w) * without for w in BLENDS)]


def run(env: Any, image: Any, plan: Sequence[Any]) -> Any:
    """``image`` after ``plan``, run ahead through the env's pool (a failed call is skipped)."""
    for call in plan:
        out = env.lookahead(image, [call])[0]
        image = image if out is None else out
    return image


def collect(images: str, first: int, stop: int, share: int, shares: int) -> list[dict[str, Any]]:
    """One worker's probes: every ``shares``-th episode of the rounds, from ``share``."""
    from agents import judge
    from agents.baselines import DEFAULT_LEARNED
    from benchmarks.ab_test import round_episodes
    from benchmarks.perception_cv import FixedRunner
    from benchmarks.train_judge import _one_thread, _psnr

    _one_thread()
    episodes = round_episodes(images, SUITES, first, stop)
    runner = FixedRunner(episodes, images, DEFAULT_LEARNED)
    models = judge.load(judge.WEIGHTS_FILE)
    floor = judge.load_floor(judge.WEIGHTS_FILE)
    rows = []
    for i in range(share, len(episodes), shares):
        env = runner.reset(i)
        present, probed, _ = judge.probes(env, runner.params, tuple(STRENGTHS), floor)
        truth = dict(zip(runner.types, runner.truth(i), strict=True))
        image = env.current_batch()
        for p in probed:
            others = [t for t in present if t != p.type]
            without, outputs = softer_outputs(env, image, others, p.type)
            base = _psnr(env, without)
            rows.append(
                {
                    "suite": episodes[i][0].name,
                    "photo": episodes[i][1].image_id,
                    "type": p.type,
                    "seen": p.type in present,
                    "true": bool(truth[p.type]),
                    "predicted_gain": float(models[p.type].gain(p.x)),
                    "change": [round(_psnr(env, out) - base, 4) for out in outputs],
                }
            )
    return rows


def summary(
    rows: Sequence[Mapping[str, Any]], judged: str, seen: bool, episodes: int
) -> dict[str, Any]:
    """Per softer call: mean change where the type is there (G), where not (-L), break-even.

    And what the call would be worth where the shipped judge rules the type in (its predicted
    gain above 0), in dB per episode of the study: the decision-relevant price.
    """
    picked = [r for r in rows if r["type"] == judged and r["seen"] == seen]
    true = np.array([r["true"] for r in picked], dtype=bool)
    out: dict[str, Any] = {"type": judged, "seen": seen, "probes": len(picked)}
    out["share_true"] = float(true.mean()) if picked else float("nan")
    if not picked or true.all() or not true.any():  # no gain or no loss to weigh
        out["strengths"] = []
        return out
    change = np.array([r["change"] for r in picked], dtype=float)
    ruled_in = np.array([r["predicted_gain"] > 0.0 for r in picked], dtype=bool)
    out["ruled_in"] = int(ruled_in.sum())
    out |= decisions(change[:, -1], true, [r["predicted_gain"] for r in picked], episodes)
    gain, loss = change[true].mean(axis=0), -change[~true].mean(axis=0)
    full = gain[-1], loss[-1]  # every group's full call has the same outputs: the blend's last
    out["strengths"] = [
        {
            "call": name,
            "gain": float(g),
            "loss": float(v),
            "gain_share": float(g / full[0]),
            "loss_share": float(v / full[1]),
            "break_even": float(v / (g + v)) if g + v > 0 else float("nan"),
            "ruled_in_per_episode": float(change[ruled_in, k].sum() / max(1, episodes)),
        }
        for k, (name, g, v) in enumerate(zip(variants(judged), gain, loss, strict=True))
    ]
    return out


def decisions(
    full: np.ndarray, true: np.ndarray, predicted: Sequence[float], episodes: int
) -> dict[str, float]:
    """How well the judge decides the full call: its ROC AUC, its calls' and perfect calls' dB.

    ``full``: each probe's change with the full call; per episode of the study.
    """
    from benchmarks.train_perception import roc_auc

    ruled_in = np.asarray(predicted) > 0.0
    return {
        "judge_auc": roc_auc(np.asarray(predicted), true),
        "judge_per_episode": float(full[ruled_in].sum() / max(1, episodes)),
        "perfect_per_episode": float(full[full > 0].sum() / max(1, episodes)),
    }


def markdown(result: Mapping[str, Any]) -> list[str]:
    """A table per judged type and perception's call: each strength's gain, loss, break-even."""
    lines = [
        f"`{result['command']}`: {result['episodes']} val crop episodes of `{result['images']}`, "
        f"{result['probes']} probes. *G*: mean PSNR change (dB) from the plan without the type "
        "where the crop carries it; *L*: mean loss where it does not; *a*, *b*: shares of the "
        "full call's G and L; *break-even*: the probability the type is there above which the "
        "call pays, L / (G + L); *judge rules it in*: the call's change summed over the probes "
        "the shipped judge rules the type in on, per episode.",
        "",
        "| type | perception | probes | truly there | call | G | L | a | b | break-even "
        "| judge rules it in (probes) | dB per episode there |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["summaries"]:
        seen = "saw it" if s["seen"] else "did not"
        for v in s["strengths"]:
            lines.append(
                f"| {s['type']} | {seen} | {s['probes']} | {s['share_true']:.2f} "
                f"| {v['call']} | {v['gain']:+.2f} | {v['loss']:.2f} "
                f"| {v['gain_share']:.2f} | {v['loss_share']:.2f} | {v['break_even']:.2f} "
                f"| {s['ruled_in']} | {v['ruled_in_per_episode']:+.3f} |"
            )
    lines += [
        "",
        "How well the judge decides the full call: the ROC AUC of its predicted gain for the type "
        "being there, and dB per episode of the full call where it rules the type in and where "
        "the call truly gains (perfect calls).",
        "",
        "| type | perception | probes | judge's ROC AUC | judge's calls, dB per episode "
        "| perfect calls, dB per episode |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in result["summaries"]:
        if "judge_auc" in s:
            seen = "saw it" if s["seen"] else "did not"
            lines.append(
                f"| {s['type']} | {seen} | {s['probes']} | {s['judge_auc']:.3f} "
                f"| {s['judge_per_episode']:+.3f} | {s['perfect_per_episode']:+.3f} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect the probes, summarise them, write the report."""
    from benchmarks.judge_range import write_report

    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--images", default="corpus:val@3")
    p.add_argument("--rounds", type=int, nargs=2, default=[0, 4], metavar=("FIRST", "STOP"))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    refuse_existing(p, args.json)
    first, stop = args.rounds
    jobs = max(1, args.jobs)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        parts = [pool.submit(collect, args.images, first, stop, k, jobs) for k in range(jobs)]
        rows = [r for part in parts for r in part.result()]
    from benchmarks.ab_test import round_episodes

    episodes = len(round_episodes(args.images, SUITES, first, stop))
    result: dict[str, Any] = {
        "command": "python -m benchmarks.hedge_study " + shlex.join(argv or sys.argv[1:]),
        "images": args.images,
        "rounds": [first, stop],
        "episodes": episodes,
        "probes": len(rows),
        "summaries": [
            summary(rows, t, seen, episodes) for t in STRENGTHS for seen in (True, False)
        ],
        "rows": rows,
    }
    return write_report(args.json, result, markdown)


if __name__ == "__main__":
    main()
