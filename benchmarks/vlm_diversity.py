r"""What perturbation does to the SFT policy: tool-sequence diversity and GRPO reward spread.

For each SFT adapter, :func:`measure` samples ``samples`` rollouts (temperature 1, as GRPO
does) on each of ``episodes`` fixed training episodes and reports, averaged over episodes:

* ``distinct``: distinct tool sequences among the samples, divided by the number of samples;
* ``entropy_bits``: Shannon entropy of the empirical distribution of tool sequences
  :math:`H = -\sum_s \hat p(s) \log_2 \hat p(s)` (a malformed answer ends the sequence with a
  ``!`` marker, so it counts as its own outcome);
* ``first_entropy_bits``: the same for the first call alone;
* ``task_distinct`` and ``task_entropy_bits``: the same two for the sequences of *tasks*
  (the task schedule, which perturbation reorders), coarser than tool sequences;
* ``reward_std``: the standard deviation of the episode returns within the group, the returns
  scored as GRPO scores them (one adaptive ``step_batch`` per group, step cost included):
  zero spread means a zero GRPO advantage, so no learning signal from that image;
* ``psnr_gain`` and ``format_errors``: quality and validity of the same samples.

``python -m benchmarks.vlm_diversity --adapters A,B --out results.json`` writes the numbers and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.vlm import grpo, policy
from agents.vlm.model import load_vlm
from agents.vlm.parse import ParseError
from tir_env.adaptive_reward import AdaptiveReward
from tir_env.env import TIREnv
from tir_env.tools.base import tool_info
from tir_env.types import ToolCall


def entropy_bits(items: Sequence[Any]) -> float:
    """Shannon entropy (bits) of the empirical distribution of ``items``."""
    counts = np.array(list(Counter(items).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def sequence(rollout: policy.Rollout) -> tuple[str, ...]:
    """The tool names a rollout called, ``!`` for a malformed answer."""
    out = []
    for t in rollout.turns:
        if isinstance(t.parsed, ToolCall):
            out.append(t.parsed.tool)
        elif isinstance(t.parsed, ParseError):
            out.append("!")
    return tuple(out)


def _task(tool: str) -> str:
    return "!" if tool == "!" else tool_info(tool).task


def measure(
    model: str,
    adapter: str,
    episodes: int = 16,
    samples: int = 8,
    seed: int = 0,
    per_batch: int = 2,
    temperature: float = 1.0,
) -> dict[str, float]:
    """Diversity and reward spread of one SFT adapter (see the module docstring)."""
    cfg = grpo.GRPOConfig(
        model=model, sft_adapter=adapter, group_size=samples, temperature=temperature
    )
    vlm = load_vlm(model, merge=[adapter])
    keys = grpo._episode_keys(cfg, np.random.default_rng([seed, 777]), episodes)
    first = TIREnv(
        images=cfg.images,
        combos=cfg.combos,
        patch_size=cfg.patch_size,
        obs_size=cfg.obs_size,
        max_steps=cfg.max_steps,
        reward="adaptive",
        reward_kwargs={"metrics": dict.fromkeys(cfg.reward_metrics, 1.0)},
    )
    envs = [first] + [
        TIREnv(config=first.config, pool=first.pool) for _ in range(samples * per_batch - 1)
    ]
    rows: list[dict[str, float]] = []
    sampling = policy.Sampling(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    for start in range(0, episodes, per_batch):
        batch_keys = keys[start : start + per_batch]
        batch_envs = envs[: samples * len(batch_keys)]
        for i, env in enumerate(batch_envs):
            key = batch_keys[i // samples]
            env.reset(seed=key.seed, options=key.options())
        states = policy.rollouts(
            vlm, batch_envs, sampling, seed=seed * 1000 + start, detail="brief"
        )
        for g in range(len(batch_keys)):
            group = states[g * samples : (g + 1) * samples]
            reward_fn = AdaptiveReward(
                dict.fromkeys(cfg.reward_metrics, 1.0), step_cost=cfg.step_cost
            )
            returns = [sum(r) for r in grpo.group_rewards(reward_fn, group, [])]
            seqs = [sequence(r) for r in group]
            tasks = [tuple(_task(t) for t in s) for s in seqs]
            rows.append(
                {
                    "distinct": len(set(seqs)) / samples,
                    "entropy_bits": entropy_bits(seqs),
                    "first_entropy_bits": entropy_bits([s[:1] for s in seqs]),
                    "task_distinct": len(set(tasks)) / samples,
                    "task_entropy_bits": entropy_bits(tasks),
                    "reward_std": float(np.std(returns)),
                    "psnr_gain": float(np.mean([grpo.metric_gain(r, "psnr") for r in group])),
                    "format_errors": float(np.mean([r.format_errors > 0 for r in group])),
                }
            )
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every adapter named; write JSON, print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vlm_diversity")
    parser.add_argument("--model", default="agents/vlm/weights/tiny-base")
    parser.add_argument("--adapters", required=True, help="comma-separated SFT adapter folders")
    parser.add_argument("--names", default=None, help="comma-separated row names")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--out", default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    adapters = args.adapters.split(",")
    names = args.names.split(",") if args.names else adapters
    results = {
        name: measure(
            args.model,
            adapter,
            args.episodes,
            args.samples,
            args.seed,
            temperature=args.temperature,
        )
        for name, adapter in zip(names, adapters, strict=True)
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        meta = {"episodes": args.episodes, "samples": args.samples, "seed": args.seed}
        meta["temperature"] = args.temperature
        Path(args.out).write_text(json.dumps({"setup": meta, "results": results}, indent=2))
    keys = list(next(iter(results.values())))
    lines = ["| SFT data | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in results.items():
        cells = " | ".join(f"{row[k]:.3f}" if math.isfinite(row[k]) else "nan" for k in keys)
        lines.append(f"| {name} | {cells} |")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
