"""Learning curves of GRPO/PPO runs: a plot and a Markdown table from their ``log.jsonl`` files.

``python -m benchmarks.vlm_report RUN_DIR [RUN_DIR ...] --out benchmarks/results/vlm_grpo`` reads
each run's log, copies it to ``<out>_<run name>.jsonl`` and writes ``<out>.png`` (evaluation
return and PSNR gain against the step, one line per run, their mean in black) and
``<out>.md`` (the evaluations of every run at every evaluated step, and the mean over runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = (
    ("eval/greedy/return", "greedy return"),
    ("eval/greedy/psnr_gain", "greedy PSNR gain (dB)"),
    ("eval/greedy/format_errors", "greedy format errors"),
    ("eval/sample/return", "sampled return"),
    ("eval/sample/psnr_gain", "sampled PSNR gain (dB)"),
    ("eval/sample/format_errors", "sampled format errors"),
)


def read_log(run: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``log.jsonl``."""
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]


def evaluations(rows: Sequence[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Step -> evaluation numbers (the last row of a step that has them)."""
    return {int(r["step"]): r for r in rows if COLUMNS[0][0] in r}


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: one row per (run, evaluated step), then the mean over runs per step."""
    head = "| run | step | " + " | ".join(name for _, name in COLUMNS) + " |"
    lines = [head, "|---" * (len(COLUMNS) + 2) + "|"]
    per_step: dict[int, list[dict[str, float]]] = {}
    for name, rows in runs.items():
        for step, ev in sorted(evaluations(rows).items()):
            per_step.setdefault(step, []).append(ev)
            cells = " | ".join(f"{ev[k]:.3f}" for k, _ in COLUMNS)
            lines.append(f"| {name} | {step} | {cells} |")
    for step, evs in sorted(per_step.items()):
        if len(evs) == len(runs) > 1:
            cells = " | ".join(
                f"{np.mean([e[k] for e in evs]):.3f} ± {np.std([e[k] for e in evs]):.3f}"
                for k, _ in COLUMNS
            )
            lines.append(f"| **mean of {len(evs)}** | {step} | {cells} |")
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Evaluation return and PSNR gain against the step; training-batch return below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    keys = [
        ("eval/greedy/return", "eval return (greedy, frozen adaptive)"),
        ("eval/greedy/psnr_gain", "eval PSNR gain, dB (greedy)"),
        ("reward/mean", "training-batch return (sampled, adaptive)"),
    ]
    for ax, (key, title) in zip(axes, keys, strict=True):
        series = []
        for name, rows in runs.items():
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if key == "reward/mean" and pts:  # smooth the noisy per-step batch return
                xs, ys = zip(*pts, strict=True)
                k = 5
                smooth = np.convolve(ys, np.ones(k) / k, mode="valid")
                pts = list(zip(xs[k - 1 :], smooth.tolist(), strict=True))
            if pts:
                ax.plot(*zip(*pts, strict=True), alpha=0.5, label=name)
                series.append(dict(pts))
        common = sorted(set.intersection(*(set(s) for s in series))) if series else []
        if len(series) > 1 and common:
            ax.plot(common, [np.mean([s[x] for s in series]) for x in common], "k-", lw=2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Copy the logs, write the plot and the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vlm_report")
    parser.add_argument("runs", nargs="+", help="run folders (with log.jsonl)")
    parser.add_argument("--out", required=True, help="output path prefix")
    args = parser.parse_args(argv)
    out = Path(args.out)
    runs = {Path(r).name: read_log(Path(r)) for r in args.runs}
    for name, rows in runs.items():
        dest = out.with_name(f"{out.name}_{name}.jsonl")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plot(runs, out.with_suffix(".png"))
    text = table(runs)
    out.with_suffix(".md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
