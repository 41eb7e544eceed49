"""``tir demo``: the main job, a quick leaderboard of every agent on the bundled photos."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.commands.configs import DemoConfig

DEMO_COMBOS: tuple[tuple[str, ...], ...] = (
    ("dark", "noise"),
    ("noise", "jpeg"),
    ("motion_blur", "low_resolution"),
    ("rain", "haze"),
)


def cmd_demo(config: DemoConfig) -> int:
    """The main job: a quick leaderboard of every available agent on the bundled test photos."""
    import torch

    from agents.base import agent_names, make_agent
    from benchmarks.evaluate import EpisodeSpec, evaluate, write_jsonl
    from benchmarks.leaderboard import write_leaderboard
    from benchmarks.report import demo_strip, summary_table
    from tir_env import data

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = Path(config.out)
    ids = data.bundled("test").ids
    specs = [
        EpisodeSpec(i, c, seed) for seed in range(config.seeds) for i in ids for c in DEMO_COMBOS
    ]
    env_kwargs = dict(
        images="test",
        patch_size=config.patch_size,
        obs_size=64,
        max_steps=config.max_steps,
        metrics=("psnr", "ssim", "niqe"),
    )
    agents = list(config.agents) or agent_names()
    records, ran, failed = [], [], []
    for name in agents:
        print(f"running {name} on {len(specs)} episodes ...", flush=True)
        try:
            agent = make_agent(name)
            records += evaluate(
                name, specs, env_kwargs, suite="demo", images_dir=out / "images", agent=agent
            )
        except Exception as err:  # noqa: BLE001 - every agent is tried; failures reported below
            if not unavailable_here(err):
                failed.append(f"agent {name!r} failed: {type(err).__name__}: {err}")
                continue
            # Not always weights: api-vlm needs a server; the error says what is missing.
            print(f"skipped: not available here: agent {name!r}: {err}")
            continue
        ran.append(name)
    if not records:
        for line in failed or ["no agent ran (every one was skipped)"]:
            print(f"error: {line}", file=sys.stderr)
        return 1
    write_jsonl(out / "episodes.jsonl", records)
    paths = write_leaderboard(out, command="tir demo")
    table = summary_table(records)
    (out / "summary.md").write_text(table + "\n")
    picks = [
        s
        for k, s in enumerate(specs[: len(ids) * len(DEMO_COMBOS)])
        if k % (len(DEMO_COMBOS) + 1) == 0
    ]
    strip = demo_strip(out / "images", ran, picks, records)
    print((out / "leaderboard.md").read_text())
    print(f"per combination: {out / 'summary.md'}")
    print("wrote " + ", ".join(str(p) for p in [*paths, out / "episodes.jsonl", strip]))
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    return 1 if failed else 0


def unavailable_here(err: BaseException) -> bool:
    """The documented skip of ``tir demo``: the agent's weights, model or server are missing."""
    from tir_env.errors import AgentUnavailableError, MetricUnavailableError

    return isinstance(err, FileNotFoundError | MetricUnavailableError | AgentUnavailableError)
