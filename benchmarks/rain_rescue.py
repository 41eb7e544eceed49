r"""Rain the network half-sees on whole photos: which missed rain a rescue reads, and where.

Read whole, perception's network misses the protocol's rain on many whole-photo episodes
where the streaks are plain to see (:func:`tir_env.streaks.rain_streaks`). A rescue reads
rain at :data:`tir_env.photo_thresholds.WHOLE_RAIN_SHARE` of its threshold where the streaks
are clear (:data:`~tir_env.photo_thresholds.WHOLE_RAIN_STREAKS_CLEAR` or more). Without a
further condition (rule 79997bb) it failed on val: rain beside darkness was derained without
the brightening first. Rule 0c609cc adds one: darkness must read under
:data:`~tir_env.photo_thresholds.FAR_FROM_DARK` of its threshold.

For each photo of ``--images`` (the bundled test photos left out), at the source's own size
(the corpus': 1536 px on the long side), this study degrades it with every suite combination
that holds rain and ``--without`` combinations that do not (drawn per photo from a seed of
its name), reads each with :func:`tir_env.perception.perceive_photo`, and counts the rain
episodes perception misses at the record's threshold and which of them, and of the episodes
without rain, each rescue would read.

Usage::

    python -m benchmarks.rain_rescue --images corpus:train@4 --jobs 2 \\
        --json benchmarks/results/whole_rain/rescue_train.json   # about 7 min on 2 cores
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.photo_studies import command, rows_per_photo, write_study
from tir_env.files import refuse_existing

RESULTS = Path("benchmarks/results/whole_rain/rescue_train.json")
SUITES = ("single", "mio-a", "mio-b", "mio-c", "ood-d2", "ood-d3")


def episodes(image_id: str, without: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every (suite, combination) with rain, and ``without`` without it drawn for the photo."""
    from tir_env.degradations.protocols import COMBOS

    pairs = [(s, tuple(c)) for s in SUITES for c in COMBOS[s]]
    rainy = [p for p in pairs if "rain" in p[1]]
    dry = [p for p in pairs if "rain" not in p[1]]
    rng = np.random.default_rng(zlib.crc32(image_id.encode()))
    return rainy + [dry[k] for k in rng.choice(len(dry), min(without, len(dry)), replace=False)]


def read_photo(images: str, image_id: str, without: int) -> list[dict[str, Any]]:
    """One photo's episodes: the rain and darkness readings and the streak cue of each."""
    import torch

    from benchmarks.perception_report import suite_order
    from tir_env import data, perception
    from tir_env.degradations import degrade
    from tir_env.images import batch_to_u8, u8_to_batch
    from tir_env.streaks import rain_streaks

    torch.set_num_threads(1)
    photo = data.source(images).load(image_id)
    photo = photo[: photo.shape[0] // 4 * 4, : photo.shape[1] // 4 * 4]  # low resolution's /4
    rng = np.random.default_rng(zlib.crc32(image_id.encode()) + 1)
    record = perception.thresholds()
    rows = []
    for suite, combo in episodes(image_id, without):
        degraded, _ = degrade(u8_to_batch(photo), list(combo), rng, order=suite_order(suite))
        image = batch_to_u8(degraded)
        seen = perception.perceive_photo(image, size=photo.shape[:2])
        rows.append(
            {
                "image": image_id,
                "suite": suite,
                "combo": list(combo),
                "rain": round(seen.probs["rain"], 5),
                "dark": round(seen.probs["dark"], 5),
                "rain_threshold": record["rain"],
                "dark_threshold": seen.thresholds["dark"],
                "streaks": round(rain_streaks(image), 5),
            }
        )
    return rows


def rescued(row: Mapping[str, Any], far_from_dark: bool) -> bool:
    """Whether a rescue reads rain on an episode the record's threshold misses."""
    from tir_env import photo_thresholds as pt

    clear = row["streaks"] >= pt.WHOLE_RAIN_STREAKS_CLEAR
    lowered = row["rain"] >= pt.WHOLE_RAIN_SHARE * row["rain_threshold"]
    far = row["dark"] < pt.FAR_FROM_DARK * row["dark_threshold"]
    return clear and lowered and (far or not far_from_dark) and not read(row)


def read(row: Mapping[str, Any]) -> bool:
    """Whether the record's threshold, behind the streak check, reads rain."""
    from tir_env import photo_thresholds as pt

    return row["rain"] >= row["rain_threshold"] and row["streaks"] >= pt.WHOLE_RAIN_STREAKS


def summary(rows: Sequence[Mapping[str, Any]], far_from_dark: bool) -> dict[str, int]:
    """Rain episodes, those missed, those rescued (by darkness in the combination), false reads."""
    wet = [r for r in rows if "rain" in r["combo"]]
    dry = [r for r in rows if "rain" not in r["combo"]]
    missed = [r for r in wet if not read(r)]
    saved = [r for r in missed if rescued(r, far_from_dark)]
    return {
        "rain_episodes": len(wet),
        "missed": len(missed),
        "missed_beside_dark": sum("dark" in r["combo"] for r in missed),
        "rescued": len(saved),
        "rescued_beside_dark": sum("dark" in r["combo"] for r in saved),
        "episodes_without_rain": len(dry),
        "false_reads": sum(rescued(r, far_from_dark) for r in dry),
    }


def markdown(result: Mapping[str, Any]) -> list[str]:
    """Each rescue's reads: missed rain episodes it reads, beside darkness or not; false reads."""
    rows = result["rows"]
    lines = [
        f"`{result['command']}`: {result['photos']} photos of `{result['images']}`, "
        f"{len(rows)} whole-photo episodes. *Missed*: rain the record's threshold does not read.",
        "",
        "| rescue | rain episodes | missed (beside darkness) | read, no darkness in the "
        "combination | read, beside darkness | false reads (episodes without rain) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, far in (("clear streaks (rule 79997bb)", False), ("and far from dark", True)):
        s = summary(rows, far)
        lines.append(
            f"| {name} | {s['rain_episodes']} | {s['missed']} ({s['missed_beside_dark']}) "
            f"| {s['rescued'] - s['rescued_beside_dark']} of "
            f"{s['missed'] - s['missed_beside_dark']} | {s['rescued_beside_dark']} of "
            f"{s['missed_beside_dark']} | {s['false_reads']} ({s['episodes_without_rain']}) |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the study and write its JSON (refuses to overwrite one)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--images", default="corpus:train@4", help="photos (a data source spec)")
    p.add_argument("--without", type=int, default=5, help="episodes without rain per photo")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--json", type=Path, default=RESULTS, help="where the results go")
    args = p.parse_args(argv)
    refuse_existing(p, args.json)
    rows = rows_per_photo(read_photo, args.images, args.jobs, args.without)
    result = {
        "command": command("benchmarks.rain_rescue", argv),
        "images": args.images,
        "photos": len({row["image"] for row in rows}),
        "rows": rows,
    }
    write_study(args.json, result, markdown)
    return result


if __name__ == "__main__":
    main()
