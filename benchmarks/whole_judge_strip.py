"""A before/after strip of a held-out whole photo where two agents' records differ most.

Replays the recorded actions of two agents on the same episode (no agent runs: the record's
seed, photo, degradations and tool calls are enough) and lays out input, agent A's result,
agent B's result and the clean photo side by side.

Usage::

    python -m benchmarks.whole_judge_strip   # mio-a@full, fixed against exhaustive

``--a-dir`` / ``--b-dir`` read each agent's records from another folder (the same agent
before and after a change: records of an earlier commit, ``git show REF:PATH``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.evaluate import read_jsonl
from benchmarks.rescore import called_tools, replay_env
from tir_env.env import TIREnv
from tir_env.images import ImageU8, hstack_strip, save_image

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "benchmarks" / "results" / "heldout"
OUT = RECORDS / "whole_judge_example.png"


def replay(env: TIREnv, record: Mapping[str, Any]) -> ImageU8:
    """The image ``record``'s actions leave on its episode."""
    from benchmarks.rescore import replay as play

    play(env, record)
    return env.current_image()


def largest_gap(a: Sequence[Mapping], b: Sequence[Mapping]) -> int:
    """Index of the episode where ``b`` ends furthest above ``a`` (PSNR)."""
    pairs = zip(a, b, strict=True)
    gaps = [y["metrics_output"]["psnr"] - x["metrics_output"]["psnr"] for x, y in pairs]
    return max(range(len(gaps)), key=gaps.__getitem__)


def main(argv: Sequence[str] | None = None) -> Path:
    """Write the strip; print what it shows."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--suite", default="mio-a@full")
    p.add_argument("--a", default="fixed")
    p.add_argument("--b", default="exhaustive")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--a-dir", type=Path, default=RECORDS, help="folder of agent A's records")
    p.add_argument("--b-dir", type=Path, default=RECORDS, help="folder of agent B's records")
    args = p.parse_args(argv)
    a = read_jsonl(args.a_dir / f"{args.suite}__{args.a}.jsonl")
    b = read_jsonl(args.b_dir / f"{args.suite}__{args.b}.jsonl")
    i = largest_gap(a, b)
    # made as the records' run was, with every tool either agent called (fixed's plan calls
    # learned tools, which the classical toolbox lacks)
    env = replay_env(a[i]["run"], [*called_tools([a[i]]), *called_tools([b[i]])])
    images = [replay(env, a[i]), replay(env, b[i])]
    # the env still holds episode i: its input and clean photo need no third reset
    strip = hstack_strip([env.input_image(), *images, env.clean_image()], height=256)
    save_image(args.out, strip)
    psnr = [a[i]["metrics_input"]["psnr"], a[i]["metrics_output"]["psnr"]]
    psnr.append(b[i]["metrics_output"]["psnr"])
    print(
        f"{args.out}: {a[i]['image']}, {'+'.join(a[i]['degradations'])}; input {psnr[0]:.2f} dB,"
        f" {args.a} {psnr[1]:.2f}, {args.b} {psnr[2]:.2f}, then the clean photo"
    )
    return args.out


if __name__ == "__main__":
    main()
