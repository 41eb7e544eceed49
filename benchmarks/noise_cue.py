r"""A phone's noise, read in a photo's flattest blocks: a lead for whole-photo noise (a study).

Read whole, perception's network misses the mild noise a phone leaves (sigma 5-10, often then
saved as a JPEG): on the val photos' ``restore_check --phone`` copies, 9 of 18 read under the
whole-photo noise threshold and stay noisy. Noise is what a flat region has and a clean
photo's flat regions lack, so :func:`tir_env.noise_level.noise_level` reads it there:
Immerkaer's estimator averaged over each 16 px block of the grey image, and the 10th
percentile of the blocks.

This study reads it, and perception, on two sets of each photo of ``--images`` (the bundled
test photos left out), resized to ``--side`` on its long side:

* ``restore_check``'s copies: clean, an everyday JPEG, faint (sigma 5), mild (10), strong (20)
  noise and a phone's copy (sigma 8, then JPEG quality 85);
* ``--episodes`` of the protocol's whole-photo combinations without noise and as many with it
  (drawn per photo from a seed of its name, applied in the physical order), where low
  resolution's upsampling and rain's streaks also leave a flat block busy.

It says how a rule reading noise where the level is high would fare, and where it must not
read. Rule 39f0907 was set with it and failed on val: clean photos with fine grain in their
flattest blocks were denoised (docs/agents.md, "A phone's noise in the flattest blocks");
rule c1195e6, which reads a band of levels and denoises gently, ships ("A phone's noise,
denoised gently").

Usage::

    python -m benchmarks.noise_cue --images corpus:train@4 --jobs 2 \
        --json benchmarks/results/restore_user/noise_cue_train.json   # about 6 min on 2 cores
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
from tir_env.noise_level import noise_level

RESULTS = Path("benchmarks/results/restore_user/noise_cue_train.json")
#: The level the study's table counts from (0-255 scale, on the grey image).
LEVEL = 1.0
COPIES = ("clean", "jpeg", "faint noise", "phone", "mild noise", "noisy")


def copies(clean: np.ndarray) -> dict[str, np.ndarray]:
    """``restore_check``'s copies of ``clean`` that :data:`COPIES` names (uint8)."""
    from benchmarks.restore_check import PHONE_QUALITY, PHONE_SIGMA, _noisy, everyday_jpeg

    rng = np.random.default_rng(1)
    return {
        "clean": clean,
        "jpeg": everyday_jpeg(clean),
        "faint noise": _noisy(clean, 5.0, rng),
        "phone": everyday_jpeg(_noisy(clean, PHONE_SIGMA, rng), PHONE_QUALITY),
        "mild noise": _noisy(clean, 10.0, rng),
        "noisy": _noisy(clean, 20.0, rng),
    }


def combinations(image_id: str, count: int) -> list[tuple[str, ...]]:
    """``count`` protocol combinations without noise and ``count`` with it, for the photo."""
    from benchmarks.rain_rescue import SUITES
    from tir_env.degradations.protocols import COMBOS

    pairs = sorted({tuple(c) for s in SUITES for c in COMBOS[s]})
    rng = np.random.default_rng(zlib.crc32(image_id.encode()))
    picked: list[tuple[str, ...]] = []
    for noisy in (False, True):
        pool = [p for p in pairs if ("noise" in p) == noisy]
        picked += [pool[k] for k in rng.choice(len(pool), min(count, len(pool)), replace=False)]
    return picked


def reading(image: np.ndarray, kind: str, combo: Sequence[str]) -> dict[str, Any]:
    """One image's noise level and what perception reads in it (at the whole-photo thresholds)."""
    from tir_env import perception

    seen = perception.perceive_photo(image)
    return {
        "kind": kind,
        "combo": list(combo),
        "level": round(noise_level(image), 4),
        "perceived": perception.perceived(seen.probs, seen.thresholds),
    }


def read_photo(images: str, image_id: str, side: int, episodes: int) -> list[dict[str, Any]]:
    """One photo's readings: its copies, then its protocol episodes."""
    import torch

    from tir_env import data
    from tir_env.degradations import degrade
    from tir_env.images import batch_to_u8, resize_u8, u8_to_batch

    torch.set_num_threads(1)
    photo = data.source(images).load(image_id)
    scale = side / max(photo.shape[:2])
    size = (round(photo.shape[0] * scale) // 4 * 4, round(photo.shape[1] * scale) // 4 * 4)
    clean = resize_u8(photo, size)  # divisible by 4, for low resolution
    rows = [reading(image, kind, []) for kind, image in copies(clean).items()]
    rng = np.random.default_rng(zlib.crc32(image_id.encode()) + 1)
    for combo in combinations(image_id, episodes):
        degraded, _ = degrade(u8_to_batch(clean), list(combo), rng)
        rows.append(reading(batch_to_u8(degraded), "protocol", combo))
    return [{"image": image_id, **row} for row in rows]


def _share(rows: Sequence[Mapping[str, Any]]) -> str:
    """How many of ``rows`` reach :data:`LEVEL`, and how many perception reads noise in."""
    high = sum(r["level"] >= LEVEL for r in rows)
    read = sum("noise" in r["perceived"] for r in rows)
    clean_high = sum(r["level"] >= LEVEL and not r["perceived"] for r in rows)
    return f"{len(rows)} | {read} | {high} | {clean_high}"


def markdown(result: Mapping[str, Any]) -> list[str]:
    """The level by copy and by kind of protocol episode, and what a rule would read."""
    rows = result["rows"]
    lines = [
        f"`{result['command']}`: {result['photos']} photos of `{result['images']}` at "
        f"{result['side']} px. *Level*: `noise_level` (0-255 scale, on the grey image); "
        f"*perception reads noise*: at the whole-photo thresholds; *level {LEVEL:g} or more, "
        "perceived "
        "clean*: where a rule reading noise on photos perception reads as clean would act.",
        "",
        "| images | level, 10th / 50th / 90th percentile | images | perception reads noise "
        f"| level {LEVEL:g} or more | level {LEVEL:g} or more, perceived clean |",
        "|---|---|---:|---:|---:|---:|",
    ]
    groups: list[tuple[str, list[Mapping[str, Any]]]] = [
        (kind, [r for r in rows if r["kind"] == kind]) for kind in COPIES
    ]
    protocol = [r for r in rows if r["kind"] == "protocol"]
    dry = [r for r in protocol if "noise" not in r["combo"]]
    groups += [
        ("protocol, with noise", [r for r in protocol if "noise" in r["combo"]]),
        ("protocol, no noise, low resolution", [r for r in dry if "low_resolution" in r["combo"]]),
        (
            "protocol, no noise, rain",
            [r for r in dry if "rain" in r["combo"] and "low_resolution" not in r["combo"]],
        ),
        (
            "protocol, no noise, the rest",
            [r for r in dry if not {"rain", "low_resolution"} & set(r["combo"])],
        ),
    ]
    for name, group in groups:
        if not group:
            continue
        spread = " / ".join(
            f"{v:.2f}" for v in np.percentile([r["level"] for r in group], [10, 50, 90])
        )
        lines.append(f"| {name} | {spread} | {_share(group)} |")
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the study and write its JSON (refuses to overwrite one)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--images", default="corpus:train@4", help="photos (a data source spec)")
    p.add_argument("--side", type=int, default=1024, help="long side (px)")
    p.add_argument("--episodes", type=int, default=4, help="protocol episodes of each kind")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--json", type=Path, default=RESULTS, help="where the results go")
    args = p.parse_args(argv)
    refuse_existing(p, args.json)
    rows = rows_per_photo(read_photo, args.images, args.jobs, args.side, args.episodes)
    result = {
        "command": command("benchmarks.noise_cue", argv),
        "images": args.images,
        "side": args.side,
        "photos": len({row["image"] for row in rows}),
        "rows": rows,
    }
    write_study(args.json, result, markdown)
    return result


if __name__ == "__main__":
    main()
