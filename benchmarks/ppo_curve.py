"""The learning curves of PPO runs: one CSV and one PNG from their ``logs/progress_*.csv``.

Several runs (seeds of one recipe) go into one CSV (a ``run`` column) and one figure (each
run's curve); ``--table`` also prints a Markdown table of each run at a few step counts.

Example:
    python -m benchmarks.ppo_curve runs/ppo_s0 runs/ppo_s1 runs/ppo_s2 \
        --out benchmarks/results/ppo_mio_a_learning_curve
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from pathlib import Path

from tir_env.files import atomic_path

#: Columns kept, in SB3's logger names, and their headers in the output CSV.
COLUMNS: dict[str, str] = {
    "time/total_timesteps": "timesteps",
    "time/time_elapsed": "seconds",
    "rollout/ep_psnr_gain_mean": "psnr_gain_db",
    "rollout/ep_psnr_mean": "psnr_db",
    "rollout/ep_rew_mean": "return_db",
    "rollout/ep_len_mean": "episode_length",
    "train/entropy_loss": "entropy_loss",
}


def read_curve(run: str | Path) -> list[dict[str, float]]:
    """Rows of every run segment's progress CSV, by timestep, each timestep once.

    A resumed segment's elapsed time continues from the previous segment's. A segment that
    starts at step S (``progress_<S>.csv``) replaces the rows past S of the segments before
    it: those steps were trained again from the checkpoint at S.
    """
    rows: list[dict[str, float]] = []
    offset = 0.0
    for path in sorted(Path(run).glob("logs/progress_*.csv")):
        begin = path.stem.removeprefix("progress_")
        if begin.isdigit():
            rows = [r for r in rows if r["timesteps"] <= int(begin)]
            offset = rows[-1]["seconds"] if rows else 0.0
        segment = []
        with path.open() as fh:
            for raw in csv.DictReader(fh):
                row = {out: float(raw[key]) for key, out in COLUMNS.items() if raw.get(key)}
                if "timesteps" in row:
                    row["seconds"] = row.get("seconds", 0.0) + offset
                    segment.append(row)
        rows += segment
        offset = segment[-1]["seconds"] if segment else offset
    return sorted(rows, key=lambda r: r["timesteps"])


def write_curve(
    rows: list[dict[str, float]] | dict[str, list[dict[str, float]]], stem: Path, title: str
) -> tuple[Path, Path]:
    """``<stem>.csv`` and ``<stem>.png`` (PSNR gain and episode length vs env steps).

    Args:
        rows: One run's rows (:func:`read_curve`), or several runs' by name.
        stem: Output path without suffix.
        title: Title of the figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = rows if isinstance(rows, dict) else {"": rows}
    named = len(runs) > 1 or "" not in runs
    table = stem.with_suffix(".csv")
    fields = (["run"] if named else []) + list(COLUMNS.values())
    with atomic_path(table) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for name, run_rows in runs.items():
            writer.writerows([{**r, "run": name} for r in run_rows] if named else run_rows)
    fig, (gain, length) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, run_rows in runs.items():
        steps = [r["timesteps"] for r in run_rows]
        label = f"{name}: " if named else ""
        gain.plot(
            steps, [r.get("psnr_gain_db", math.nan) for r in run_rows], label=f"{label}PSNR gain"
        )
        if not named:
            returns = [r.get("return_db", math.nan) for r in run_rows]
            gain.plot(steps, returns, label="return (- step cost)")
        length.plot(steps, [r.get("episode_length", math.nan) for r in run_rows], label=name)
    gain.axhline(0.0, color="grey", linewidth=0.8)
    gain.set(xlabel="env steps", ylabel="dB (mean of last 100 episodes)", title=title)
    gain.legend(fontsize=7)
    length.set(xlabel="env steps", ylabel="steps per episode (incl. STOP)")
    fig.tight_layout()
    figure = stem.with_suffix(".png")
    with atomic_path(figure) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return table, figure


def read_written(table: str | Path) -> dict[str, list[dict[str, float]]]:
    """The runs of a CSV :func:`write_curve` wrote, by name (``""`` for a single run)."""
    runs: dict[str, list[dict[str, float]]] = {}
    with Path(table).open() as fh:
        for raw in csv.DictReader(fh):
            row = {k: float(v) for k, v in raw.items() if k != "run" and v not in ("", None)}
            runs.setdefault(raw.get("run", ""), []).append(row)
    return runs


def markdown_table(runs: dict[str, list[dict[str, float]]], points: int = 6) -> str:
    """PSNR gain and episode length of each run at ``points`` evenly spaced logged steps."""
    longest = max(runs.values(), key=len)
    picks = sorted({round(i * (len(longest) - 1) / (points - 1)) for i in range(points)})
    steps = [longest[i]["timesteps"] for i in picks]
    lines = [
        "| run | " + " | ".join(f"{s / 1000:.0f}k" for s in steps) + " |",
        "|---|" + "---:|" * len(steps),
    ]
    for name, rows in runs.items():
        by_step = {r["timesteps"]: r for r in rows}
        cells = [by_step.get(s, {}) for s in steps]
        gain = " | ".join(
            f"{c['psnr_gain_db']:+.2f}" if "psnr_gain_db" in c else "-" for c in cells
        )
        length = " | ".join(
            f"{c['episode_length']:.2f}" if "episode_length" in c else "-" for c in cells
        )
        lines += [
            f"| {name}: PSNR gain (dB) | {gain} |",
            f"| {name}: steps per episode | {length} |",
        ]
    return "\n".join(lines) + "\n"


def main(args: Sequence[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.ppo_curve RUN [RUN ...] --out STEM``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="training output folders (logs/progress_*.csv)")
    parser.add_argument("--out", required=True, help="stem of the CSV and PNG to write")
    parser.add_argument("--title", default="PPO on TIR-v0, mio-a")
    parser.add_argument("--table", action="store_true", help="print a Markdown table too")
    ns = parser.parse_args(args)
    runs = {Path(run).name: read_curve(run) for run in ns.runs}
    for run, rows in runs.items():
        if not rows:
            parser.error(f"no logs/progress_*.csv with rows under {run}")
    write_curve(runs if len(runs) > 1 else next(iter(runs.values())), Path(ns.out), ns.title)
    if ns.table:
        print(markdown_table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
