"""The reward-hacking experiment: a static sum falls for a hackable tool, the adaptive one not.

A greedy policy acts with each reward as its objective: at every step it runs every tool of
the toolbox (the classical tools plus the deliberately exploitable ``median_paint``), scores
each candidate with the reward (the adaptive reward scores the candidates as one group), takes
the best, and stops when no candidate has a positive reward. The rewards see the same
metrics (PSNR, SSIM against the clean image; a no-reference metric, ``--nr``: NIQE or the
learned ``tirqa``), the same episodes and seeds: the static sum, the adaptive reward, and the
no-reference metric alone (``nr-only``: what a search agent without a reference optimises).
We report how often the exploit is picked and the final fidelity of the episodes.

Usage::

    python -m benchmarks.hacking --seeds 3 --out docs/reward_hacking.md
    python -m benchmarks.hacking --seeds 3 --nr tirqa --out docs/reward_hacking_tirqa.md
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import tir_env.tools.exploits  # noqa: F401  (registers median_paint)
from tir_env.adaptive_reward import AdaptiveReward, StaticReward
from tir_env.env import TIREnv
from tir_env.reward import Reward
from tir_env.spaces import encode_call
from tir_env.tools.base import tool_names
from tir_env.types import ToolCall

EXPLOIT = "median_paint"
METRICS = ("psnr", "ssim", "niqe")
#: The rewards compared, in table order.
REWARDS = ("static", "adaptive", "nr-only")


def metrics_for(nr: str) -> tuple[str, ...]:
    """The experiment's metrics with ``nr`` as the no-reference term (NIQE always logged)."""
    return tuple(dict.fromkeys(("psnr", "ssim", nr, "niqe")))


def make_reward(name: str, nr: str) -> Reward:
    """One of :data:`REWARDS` with ``nr`` as its no-reference term."""
    if name == "adaptive":
        return AdaptiveReward({"psnr": 1.0, "ssim": 1.0, nr: 1.0})
    if name == "nr-only":
        return StaticReward({nr: 1.0})
    return StaticReward({"psnr": 1.0, "ssim": 1.0, nr: 2.0})


def candidate_rewards(
    reward: Reward, before: dict[str, float], afters: list[dict[str, float]]
) -> list[float]:
    """Reward of each candidate; the adaptive reward scores them as one group."""
    if isinstance(reward, AdaptiveReward):
        return [o.reward for o in reward.step_batch([before] * len(afters), afters)]
    return [reward.step(before, a).reward for a in afters]


def greedy_episode(
    env: TIREnv,
    reward: Reward,
    seed: int,
    options: dict[str, Any],
    metrics: Sequence[str] = METRICS,
) -> dict[str, Any]:
    """One episode of the greedy policy that maximises ``reward`` at every step."""
    env.reset(seed=seed, options=options)
    calls = [ToolCall(t) for t in env.tools]
    first = env.score(env.current_batch(), metrics)
    picks: list[str] = []
    for _ in range(env.config.max_steps):
        image = env.current_batch()
        before = env.score(image, metrics)
        outputs = env.lookahead(image, calls)
        ok = [(c, out) for c, out in zip(calls, outputs, strict=True) if out is not None]
        afters = [env.score(out, metrics) for _, out in ok]
        scores = candidate_rewards(reward, before, afters)
        best = int(np.argmax(scores))
        if scores[best] <= 0:
            break
        picks.append(ok[best][0].tool)
        env.step(encode_call(ok[best][0], env.tools))
    last = env.score(env.current_batch(), metrics)
    return {"picks": picks, "input": first, "output": last}


def run(
    reward_name: str,
    seeds: Sequence[int],
    max_steps: int,
    patch: int,
    combos: str,
    nr: str = "niqe",
) -> list[dict[str, Any]]:
    """Every episode of the experiment for one reward (statistics carried across episodes)."""
    tools = (*tool_names(kinds=("classical",)), EXPLOIT)
    tools = tuple(dict.fromkeys(t for t in tools if t != EXPLOIT)) + (EXPLOIT,)
    env = TIREnv(
        images="test",
        combos=combos,
        patch_size=patch,
        max_steps=max_steps,
        tools=tools,
        metrics=metrics_for(nr),
    )
    reward = make_reward(reward_name, nr)
    rows = []
    episodes = [(s, i, c) for s in seeds for i in env._source.ids for c in env.config.combo_list]
    for seed, image_id, combo in tqdm(episodes, desc=reward_name, leave=False):
        options = {"image_id": image_id, "degradations": combo}
        ep = greedy_episode(env, reward, seed, options, metrics_for(nr))
        rows.append(
            {
                "reward": reward_name,
                "nr": nr,
                "seed": seed,
                "image": image_id,
                "degradations": list(combo),
                **ep,
            }
        )
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per reward: exploit pick rate, mean final metrics, per-seed PSNR spread."""
    out: dict[str, dict[str, float]] = {}
    for name in [n for n in REWARDS if any(r["reward"] == n for r in rows)]:
        rs = [r for r in rows if r["reward"] == name]
        seed_psnr = [
            statistics.fmean(r["output"]["psnr"] for r in rs if r["seed"] == s)
            for s in sorted({r["seed"] for r in rs})
        ]
        out[name] = {
            "episodes": len(rs),
            "exploit_episodes": statistics.fmean(EXPLOIT in r["picks"] for r in rs),
            "exploit_steps": sum(r["picks"].count(EXPLOIT) for r in rs)
            / max(1, sum(len(r["picks"]) for r in rs)),
            "steps": statistics.fmean(len(r["picks"]) for r in rs),
            **{f"{m}_in": statistics.fmean(r["input"][m] for r in rs) for m in rs[0]["input"]},
            **{m: statistics.fmean(r["output"][m] for r in rs) for m in rs[0]["input"]},
            "psnr_seed_std": statistics.pstdev(seed_psnr) if len(seed_psnr) > 1 else 0.0,
        }
    return out


def markdown(summary: dict[str, dict[str, float]], command: str) -> str:
    """The results table (a ``tirqa`` column when it was measured), with its command."""
    return f"Made by `{command}`.\n\n" + table(summary)


def table(summary: dict[str, dict[str, float]]) -> str:
    """The results table alone (what docs/reward.md embeds, from the committed episodes)."""
    extra = "tirqa" in next(iter(summary.values()), {})
    lines = [
        "| reward | episodes | episodes using the exploit | exploit share of steps | steps | "
        "PSNR in -> out | SSIM in -> out | NIQE in -> out (lower better) |"
        + (" tirqa in -> out (dB) |" if extra else ""),
        "|---|---:|---:|---:|---:|---|---|---|" + ("---|" if extra else ""),
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['episodes']:.0f} | {s['exploit_episodes']:.0%} | "
            f"{s['exploit_steps']:.0%} | {s['steps']:.2f} | {s['psnr_in']:.2f} -> {s['psnr']:.2f} "
            f"(seed std {s['psnr_seed_std']:.2f}) | "
            f"{s['ssim_in']:.3f} -> {s['ssim']:.3f} | {s['niqe_in']:.2f} -> {s['niqe']:.2f} |"
            + (f" {s['tirqa_in']:.2f} -> {s['tirqa']:.2f} |" if extra else "")
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the experiment for both rewards; write JSONL, the summary JSON and Markdown."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hacking", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--combos", default="mio-a")
    parser.add_argument("--nr", default="niqe", help="no-reference metric (niqe, tirqa, ...)")
    parser.add_argument("--out", default="docs/reward_hacking.md")
    parser.add_argument("--jsonl", default=None, help="default: results/reward_hacking[_NR].jsonl")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    suffix = "" if args.nr == "niqe" else f"_{args.nr}"
    args.jsonl = args.jsonl or f"benchmarks/results/reward_hacking{suffix}.jsonl"
    rows = [
        r
        for name in REWARDS
        for r in run(name, seeds, args.max_steps, args.patch_size, args.combos, args.nr)
    ]
    summary = summarise(rows)
    command = "python -m benchmarks.hacking " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    Path(args.jsonl).parent.mkdir(parents=True, exist_ok=True)
    Path(args.jsonl).write_text("".join(json.dumps(r) + "\n" for r in rows))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(markdown(summary, command.strip()))
    print(markdown(summary, command.strip()))
    return summary


if __name__ == "__main__":
    main()
