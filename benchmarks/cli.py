"""The ``tir`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEMO_COMBOS: tuple[tuple[str, ...], ...] = (
    ("dark", "noise"),
    ("noise", "jpeg"),
    ("motion_blur", "low_resolution"),
    ("rain", "haze"),
)


def cmd_demo(args: argparse.Namespace) -> int:
    """Quick look: random vs oracle on the bundled test photos, a table and an image strip."""
    import torch

    from benchmarks.evaluate import EpisodeSpec, evaluate, write_jsonl
    from benchmarks.report import demo_strip, summary_table
    from tir_env import data

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = Path(args.out)
    ids = data.bundled("test").ids
    specs = [EpisodeSpec(i, c, seed) for seed in range(args.seeds) for i in ids for c in DEMO_COMBOS]
    env_kwargs = dict(images="test", patch_size=args.patch_size, obs_size=64, max_steps=args.max_steps)
    records = []
    for agent in args.agents.split(","):
        records += evaluate(agent, specs, env_kwargs, suite="demo", images_dir=out / "images")
    write_jsonl(out / "episodes.jsonl", records)
    table = summary_table(records)
    (out / "summary.md").write_text(table + "\n")
    strip = demo_strip(out / "images", args.agents.split(","), specs[: len(DEMO_COMBOS)])
    print(table)
    print(f"\nwrote {out / 'episodes.jsonl'}, {out / 'summary.md'} and {strip}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tir`` and its subcommands."""
    parser = argparse.ArgumentParser(prog="tir", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="random vs oracle on the bundled test photos")
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--agents", default="random,oracle", help="comma-separated agent names")
    demo.add_argument("--seeds", type=int, default=1, help="episodes per image and combination")
    demo.add_argument("--patch-size", type=int, default=128)
    demo.add_argument("--max-steps", type=int, default=3)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tir`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    np.set_printoptions(precision=3)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
