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


def demo_strip(
    images_dir: Path,
    agents: Sequence[str],
    specs: Sequence[Any],
    records: Sequence[dict[str, Any]] = (),
) -> Path:
    """Stack input | each agent | clean rows for the given episodes into one PNG.

    With the episodes' ``records`` the agents are ordered by their mean output PSNR over all
    of them (best first), the header gives that mean, and each tile is captioned with its own
    PSNR, so the picture reads like the leaderboard instead of in the order the agents ran.
    """
    import numpy as np

    from benchmarks.evaluate import _stem

    psnr = episode_psnr(records)
    agents = ranked_agents(agents, records)
    tile = 160
    rows = []
    for spec in specs:
        stem = _stem(spec)
        cols = ["input", *agents, "clean"]
        images = [load_image(images_dir / c / f"{stem}.png") for c in cols]
        if psnr:
            key = (spec.image_id, tuple(spec.degradations), spec.seed)
            images = [
                captioned(im, psnr.get((c, *key)), tile) for c, im in zip(cols, images, strict=True)
            ]
            rows.append(hstack_strip(images, images[0].shape[0]))
        else:
            rows.append(hstack_strip(images, tile))
    width = max(r.shape[1] for r in rows)
    padded = [
        np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows
    ]
    means = mean_psnr(records)
    labels = [f"{c}, mean {means[c]:.2f}" if c in means else c for c in ["input", *agents]] + [
        "clean"
    ]
    header = label_row(labels, tile=tile, gap=4, width=width)
    path = images_dir.parent / "before_after.png"
    save_image(path, np.concatenate([header, *padded]))
    return path


def episode_psnr(records: Sequence[dict[str, Any]]) -> dict[tuple[Any, ...], float]:
    """PSNR of each episode's output by (agent, image, degradations, seed); ``input`` too."""
    out: dict[tuple[Any, ...], float] = {}
    for r in records:
        key = (r["image"], tuple(r["degradations"]), r["seed"])
        for who, metrics in ((r["agent"], r["metrics_output"]), ("input", r["metrics_input"])):
            value = (metrics or {}).get("psnr")
            if value is not None:
                out[(who, *key)] = float(value)
    return out


def mean_psnr(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean output PSNR per agent over ``records`` (``input``: the inputs', once an episode)."""
    by: dict[str, list[float]] = defaultdict(list)
    for (who, *_), value in episode_psnr(records).items():
        by[who].append(value)
    return {who: statistics.fmean(values) for who, values in by.items()}


def ranked_agents(agents: Sequence[str], records: Sequence[dict[str, Any]]) -> list[str]:
    """``agents`` by mean output PSNR, best first (those without records keep their order, last)."""
    means = mean_psnr(records)
    scored = sorted((a for a in agents if a in means), key=lambda a: -means[a])
    return [*scored, *(a for a in agents if a not in means)]


def captioned(image: Any, psnr: float | None, tile: int, band: int = 20) -> Any:
    """``image`` at ``tile`` pixels high with a white band under it: its PSNR, or blank."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from tir_env.images import resize_u8

    width = max(1, round(image.shape[1] * tile / image.shape[0]))
    canvas = Image.new("RGB", (width, band), "white")
    if psnr is not None:
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default(size=band - 6)
        draw.text((width // 2, band // 2), f"{psnr:.2f} dB", fill="black", font=font, anchor="mm")
    return np.concatenate([resize_u8(image, (tile, width)), np.asarray(canvas, dtype=np.uint8)])


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
