"""The learning curve of a PPO run: one CSV and one PNG from its ``logs/progress_*.csv``.

Example:
    python -m benchmarks.ppo_curve runs/ppo_mio_a --out benchmarks/results/ppo_mio_a_learning_curve
"""

from __future__ import annotations

import argparse
import csv
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


def write_curve(rows: list[dict[str, float]], stem: Path, title: str) -> tuple[Path, Path]:
    """``<stem>.csv`` and ``<stem>.png`` (PSNR gain and episode length vs env steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = stem.with_suffix(".csv")
    with atomic_path(table) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS.values()), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    steps = [r["timesteps"] for r in rows]
    fig, (gain, length) = plt.subplots(1, 2, figsize=(9, 3.2))
    gain.plot(steps, [r.get("psnr_gain_db", float("nan")) for r in rows], label="PSNR gain")
    gain.plot(steps, [r.get("return_db", float("nan")) for r in rows], label="return (- step cost)")
    gain.axhline(0.0, color="grey", linewidth=0.8)
    gain.set(xlabel="env steps", ylabel="dB (mean of last 100 episodes)", title=title)
    gain.legend()
    length.plot(steps, [r.get("episode_length", float("nan")) for r in rows])
    length.set(xlabel="env steps", ylabel="steps per episode (incl. STOP)")
    fig.tight_layout()
    figure = stem.with_suffix(".png")
    with atomic_path(figure) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return table, figure


def main(args: Sequence[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.ppo_curve RUN --out STEM``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="training output folder (with logs/progress_*.csv)")
    parser.add_argument("--out", required=True, help="stem of the CSV and PNG to write")
    parser.add_argument("--title", default="PPO on TIR-v0, train photos, mio-a")
    ns = parser.parse_args(args)
    rows = read_curve(ns.run)
    if not rows:
        parser.error(f"no logs/progress_*.csv with rows under {ns.run}")
    write_curve(rows, Path(ns.out), ns.title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
