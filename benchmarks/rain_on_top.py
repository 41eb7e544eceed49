r"""Does the rain lie on top of the photo? The streak cue on rainy and darkened copies.

``fixed``'s whole-photo judge reads many rainy photos as ones to brighten, while beside the
protocol's rain then darkness (``mio-b``, ``ood-d3``) its brightening is right (docs/agents.md,
"Brightening beside rain"). :func:`tir_env.streaks.rain_on_top` tells the two apart: a rainy
photo reaches white and its streaks rise as much over a dark background as over a light one
(:func:`tir_env.streaks.streak_rise_slope`), while the protocol's shift and linear darkening
never reach white and its gamma darkening makes the rise grow with the background.

For each photo of ``--images`` (the bundled test photos left out, as ``restore_check`` does),
resized to ``--side`` on its long side, this study gets the photo's own rain
(:func:`benchmarks.restore_check.rainy`) and then each darkening map at its middle, and
records the slope, whether the copy reaches white and whether it reads as rain on top. The
shipped threshold (:data:`tir_env.streaks.ON_TOP_SLOPE`, rule fddc28f) was set on the corpus
train photos at 1024 px with it.

Usage::

    python -m benchmarks.rain_on_top --images corpus:train@4 --side 1024 640 \\
        --json benchmarks/results/whole_rain/on_top_cue_train.json   # about 2 min
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.photo_studies import command, study_ids, write_study
from tir_env.files import refuse_existing

RESULTS = Path("benchmarks/results/whole_rain/on_top_cue_train.json")
#: Up to this many photos, the table lists each photo's clean and rainy slopes too.
LISTED_PHOTOS = 12
#: The copies: the protocol's darkening maps at their middle, applied after the rain.
DARKENING: dict[str, dict[str, float]] = {
    "rain, then gamma 0.5": {"mode": 1.0, "gamma": 0.5},
    "rain, then gamma 0.6": {"mode": 1.0, "gamma": 0.6},
    "rain, then gamma 0.7": {"mode": 1.0, "gamma": 0.7},
    "rain, then shift 40": {"mode": 0.0, "shift": 40.0},
    "rain, then linear to 125": {"mode": 2.0, "max_value": 125.0},
}
COPIES = ("clean", "rainy", *DARKENING)


def copies(clean: np.ndarray, image_id: str) -> dict[str, np.ndarray]:
    """Each of :data:`COPIES` of ``clean`` (uint8), the rain drawn from a seed of ``image_id``."""
    from benchmarks.restore_check import rainy
    from tir_env.degradations import make_degradation
    from tir_env.images import batch_to_u8, u8_to_batch

    rain = rainy(clean, image_id)
    dark = make_degradation("dark")
    darkened = {
        name: batch_to_u8(dark.apply(u8_to_batch(rain), params))
        for name, params in DARKENING.items()
    }
    return {"clean": clean, "rainy": rain, **darkened}


def readings(image: np.ndarray) -> dict[str, Any]:
    """The cue's readings of one copy: slope (``None`` for nan), reaches white, rain on top."""
    from tir_env import streaks

    slope = streaks.streak_rise_slope(image)
    return {
        "slope": None if np.isnan(slope) else round(slope, 5),
        "white": streaks.reaches_white(image),
        "on_top": streaks.rain_on_top(image),
    }


def study(images: str, side: int) -> list[dict[str, Any]]:
    """One row per photo: each copy's :func:`readings`, at ``side`` px on the long side."""
    from tir_env import data
    from tir_env.images import resize_u8

    source = data.source(images)
    rows = []
    for image_id in study_ids(images):
        photo = source.load(image_id)
        scale = side / max(photo.shape[:2])
        clean = resize_u8(photo, (round(photo.shape[0] * scale), round(photo.shape[1] * scale)))
        made = copies(clean, image_id)
        rows.append({"image": image_id, **{name: readings(made[name]) for name in COPIES}})
    return rows


def summary(rows: Sequence[Mapping[str, Any]], copy: str) -> dict[str, Any]:
    """A copy's slope percentiles (10th, 50th, 90th) and its shares reaching white, on top."""
    slopes = [r[copy]["slope"] for r in rows if r[copy]["slope"] is not None]
    return {
        "percentiles": [float(v) for v in np.percentile(slopes, [10, 50, 90])] if slopes else [],
        "no_slope": len(rows) - len(slopes),
        "white": float(np.mean([r[copy]["white"] for r in rows])),
        "on_top": float(np.mean([r[copy]["on_top"] for r in rows])),
    }


def markdown(result: Mapping[str, Any]) -> list[str]:
    """A table per side: each copy's slope percentiles and shares reaching white and on top."""
    lines = [
        f"`{result['command']}`: {result['photos']} photos of `{result['images']}`; rain on "
        f"top where a copy reaches white and its slope is {result['threshold']:g} or less.",
    ]
    for side, rows in result["sides"].items():
        lines += [
            "",
            f"| copy, {side} px | slope, 10th / 50th / 90th percentile | reaches white "
            "| rain on top |",
            "|---|---|---:|---:|",
        ]
        for copy in COPIES:
            s = summary(rows, copy)
            spread = " / ".join(f"{v:.2f}".replace("-0.00", "0.00") for v in s["percentiles"])
            none = f" ({s['no_slope']} without lines)" if s["no_slope"] else ""
            lines.append(f"| {copy} | {spread}{none} | {s['white']:.0%} | {s['on_top']:.0%} |")
        if len(rows) <= LISTED_PHOTOS:
            lines += ["", *map(photo_line, rows)]
    return lines


def photo_line(row: Mapping[str, Any]) -> str:
    """One photo's slopes, clean and rainy, and whether its rainy copy reads as rain on top."""

    def slope(copy: str) -> str:
        value = row[copy]["slope"]
        return "no lines" if value is None else f"{value:.3f}"

    on_top = "on top" if row["rainy"]["on_top"] else "not on top"
    return f"- `{row['image']}`: clean {slope('clean')}, rainy {slope('rainy')} ({on_top})"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the study and write its JSON (refuses to overwrite one)."""
    import torch

    from tir_env import streaks

    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--images", default="corpus:train@4", help="photos (a data source spec)")
    p.add_argument("--side", type=int, nargs="+", default=[1024], help="long sides (px)")
    p.add_argument("--json", type=Path, default=RESULTS, help="where the results go")
    args = p.parse_args(argv)
    refuse_existing(p, args.json)
    torch.set_num_threads(1)
    sides = {str(side): study(args.images, side) for side in args.side}
    result = {
        "command": command("benchmarks.rain_on_top", argv),
        "images": args.images,
        "photos": len(next(iter(sides.values()))),
        "threshold": streaks.ON_TOP_SLOPE,
        "sides": sides,
    }
    write_study(args.json, result, markdown)
    return result


if __name__ == "__main__":
    main()
