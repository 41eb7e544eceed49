"""Tables and pictures made from episode records (pure functions of the records)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tir_env.images import hstack_strip, load_image, save_image


def _mean(values: Sequence[float | None]) -> float:
    finite = [v for v in values if v is not None]
    return statistics.fmean(finite) if finite else float("nan")


def summary_table(
    records: Sequence[dict[str, Any]], metrics: Sequence[str] = ("psnr", "ssim")
) -> str:
    """Markdown table: per agent and degradation combination, mean metrics in -> out and calls."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["agent"], "+".join(r["degradations"]))].append(r)
    head = ["agent", "degradations", "n"]
    head += [f"{m} in -> out" for m in metrics] + ["tool calls", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (agent, combo), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = [agent, combo, str(len(rs))]
        for m in metrics:
            before = _mean([r["metrics_input"].get(m) for r in rs])
            after = _mean([r["metrics_output"].get(m) for r in rs])
            cells.append(f"{before:.3f} -> {after:.3f}")
        cells.append(f"{_mean([len([a for a in r['actions'] if a]) for r in rs]):.1f}")
        cells.append(f"{_mean([r['wall_time_s'] for r in rs]):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def demo_strip(images_dir: Path, agents: Sequence[str], specs: Sequence[Any]) -> Path:
    """Stack input | each agent | clean rows for the given episodes into one PNG."""
    import numpy as np

    from benchmarks.evaluate import _stem

    rows = []
    for spec in specs:
        stem = _stem(spec)
        cols = ["input", *agents, "clean"]
        rows.append(hstack_strip([load_image(images_dir / c / f"{stem}.png") for c in cols], 160))
    width = max(r.shape[1] for r in rows)
    padded = [
        np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows
    ]
    header = label_row(["input", *agents, "clean"], tile=160, gap=4, width=width)
    path = images_dir.parent / "before_after.png"
    save_image(path, np.concatenate([header, *padded]))
    return path


def label_row(labels: Sequence[str], tile: int, gap: int, width: int, height: int = 22) -> Any:
    """A white strip with one centred label above each ``tile``-wide column."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    for i, text in enumerate(labels):
        x = i * (tile + gap) + tile // 2
        draw.text((x, height // 2), text, fill="black", font=font, anchor="mm")
    return np.asarray(canvas, dtype=np.uint8)
