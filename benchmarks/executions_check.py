"""Does an agent's count of tool executions match what the tool pool ran?

Each episode runs on a pool whose cache is emptied first, so the pool's own execution counter
(``PoolStats.executions``) says what the episode ran; the agent's record says what it was
charged (``tool_executions``). An agent that runs a call twice (a look-ahead whose step
misses the cache) shows the pool running more than the calls it needed; one that is charged
for a cache hit shows its count above the pool's.

Usage::

    python -m benchmarks.executions_check --agent ppo --suite mio-a --rounds 85 86
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tir_env.files import write_text_atomic


def check(spec: str, suite: str, images: str, first: int, stop: int) -> dict[str, Any]:
    """Per-episode (charged, ran, calls, PSNR) of agent ``spec`` on rounds ``first..stop-1``."""
    import torch

    from agents.base import make_agent, rollout
    from benchmarks.ab_test import round_episodes
    from benchmarks.evaluate import with_required_tools
    from benchmarks.perception_cv import agent_spec
    from tir_env.env import TIREnv
    from tir_env.tools.pool.local import LocalToolPool

    torch.set_num_threads(1)
    episodes = round_episodes(images, [suite], first, stop)
    name, options = agent_spec(spec)
    agent = make_agent(name, **options)
    pool = LocalToolPool()
    try:
        kwargs = {**episodes[0][0].env_kwargs(images), "metrics": ("psnr",)}
        env = TIREnv(pool=pool, **with_required_tools(kwargs, agent))
        rows = []
        for _, episode in episodes:
            pool.cache_clear()
            before = pool.stats.executions
            options_ = {"image_id": episode.image_id, "degradations": list(episode.degradations)}
            ran = rollout(env, agent, seed=episode.seed, options=options_)
            calls = sum(1 for r in ran.records if r.call is not None)
            executed = pool.stats.executions - before
            rows.append((ran.tool_executions, executed, calls, ran.metrics_output["psnr"]))
    finally:
        pool.close()
    table = np.asarray(rows, dtype=float)
    means = table.mean(axis=0) if len(table) else np.zeros(4)
    return {
        "agent": spec,
        "suite": suite,
        "images": images,
        "rounds": [first, stop],
        "episodes": len(rows),
        "charged": float(means[0]),
        "ran": float(means[1]),
        "calls": float(means[2]),
        "psnr": float(means[3]),
        "episodes_charged_more": int((table[:, 0] > table[:, 1]).sum()) if len(table) else 0,
        "episodes_ran_more": int((table[:, 1] > table[:, 0]).sum()) if len(table) else 0,
    }


def report(result: dict[str, Any]) -> str:
    """One line: what the agent was charged against what the pool ran."""
    r = result
    return (
        f"{r['agent']} on {r['suite']} ({r['images']}, rounds {r['rounds'][0]}-"
        f"{r['rounds'][1] - 1}, {r['episodes']} episodes): charged {r['charged']:.2f} tool "
        f"executions an episode, the pool ran {r['ran']:.2f}, {r['calls']:.2f} calls, PSNR "
        f"{r['psnr']:.2f} dB; charged more than ran in {r['episodes_charged_more']} episodes, "
        f"ran more than charged in {r['episodes_ran_more']}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="ppo", help="agent spec, NAME[:KEY=VALUE,...]")
    parser.add_argument("--suite", default="mio-a")
    parser.add_argument("--images", default="corpus:val@3")
    parser.add_argument("--rounds", nargs=2, type=int, default=(85, 86), metavar=("FIRST", "STOP"))
    parser.add_argument("--json", type=Path, help="write the result here (refuses to overwrite)")
    args = parser.parse_args(argv)
    if args.json is not None and args.json.exists():
        raise SystemExit(f"{args.json} exists; give another --json")
    result = check(args.agent, args.suite, args.images, *args.rounds)
    print(report(result))
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
