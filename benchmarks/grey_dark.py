"""Perception's darkness on greyscale photos: how often it reads a clean grey photo as dark.

Perception v2 was trained on colour photos. Made grey, a clean photo reads darker: `tir
restore` brightened a clean greyscale photo (a user's walkthrough, 2026-12-06). For each photo
of a corpus split, at the long side ``tir restore`` plans on (1024), this reads the darkness
probability of four versions: the photo (*colour*), its luma in three equal channels
(*grey*), the photo darkened as the protocol darkens at its middle (*colour, dark*: HSV value to
the power 1/0.6, :func:`benchmarks.restore_check.darkened`) and that made grey (*grey, dark*),
then counts, for each threshold, how many clean versions it would brighten (false calls) and
how many darkened ones (right calls). The threshold for grey photos
(:data:`tir_env.perception.GREY_DARK_THRESHOLD`) was chosen on the train photos.

Usage::

    python -m benchmarks.grey_dark --images corpus:train@3   # ~4 min on 2 cores
    python -m benchmarks.grey_dark --images corpus:val@3 \
        --json benchmarks/results/grey_dark_val.json
    python -m benchmarks.grey_dark --episodes   # the benchmark episodes it could change, ~3 min
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tir_env.files import refuse_existing, write_text_atomic

RESULTS = Path("benchmarks/results/grey_dark.json")
SIDE = 1024
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
VERSIONS = ("colour", "grey", "colour_dark", "grey_dark")


def grey(image: np.ndarray) -> np.ndarray:
    """``image``'s luma (ITU-R 601, as PIL's ``L``) in three equal channels, uint8."""
    luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.clip(luma.round(), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def at_side(image: np.ndarray, side: int = SIDE) -> np.ndarray:
    """``image`` with its long side at most ``side`` (as ``tir restore`` plans on it)."""
    from tir_env.images import resize_u8

    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    return resize_u8(image, (round(h * scale), round(w * scale)))


def readings(image: np.ndarray) -> dict[str, float]:
    """Perception's darkness probability on the four versions of one clean photo."""
    from benchmarks.restore_check import darkened
    from tir_env import perception

    dark = darkened(image)
    versions = {"colour": image, "grey": grey(image), "colour_dark": dark, "grey_dark": grey(dark)}
    return {k: round(perception.perceive(v)["dark"], 4) for k, v in versions.items()}


def counts(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per threshold: photos read dark at or above it, per version."""
    return [
        {"threshold": t, **{v: sum(r[v] >= t for r in rows) for v in VERSIONS}} for t in THRESHOLDS
    ]


def markdown(result: dict[str, Any]) -> list[str]:
    """The study's table: per threshold, the clean versions brightened and the dark ones."""
    n = len(result["rows"])
    lines = [
        f"`{result['command']}`: {n} photos at long side {result['side']}; photos read dark at "
        "or above each threshold (the clean versions are false calls, the darkened ones right "
        "calls).",
        "",
        "| threshold | colour, clean | colour, darkened | grey, clean | grey, darkened |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c['threshold']} | {c['colour']}/{n} | {c['colour_dark']}/{n} | {c['grey']}/{n} | "
        f"{c['grey_dark']}/{n} |"
        for c in counts(result["rows"])
    ]
    return lines


VAL_RESULTS = Path("benchmarks/results/grey_dark_val.json")
EPISODES = Path("benchmarks/results/grey_dark_episodes.json")
#: The suites whose round-0 episodes ``--episodes`` reads (crops and whole photos).
SUITES = ("mio-a", "mio-b", "mio-c", "ood-d2", "ood-d3", "mio-a@full", "mio-b@full", "mio-c@full")


def grey_episodes(images: str) -> list[dict[str, Any]]:
    """Per suite, its episodes on ``images`` whose perception input is greyscale.

    ``big``: those at least :data:`~tir_env.perception.GREY_MIN_SIDE` on the shorter side,
    which the greyscale darkness threshold applies to.
    """
    from benchmarks.suites import get_suite
    from tir_env import perception
    from tir_env.env import TIREnv

    out = []
    for name in SUITES:
        suite = get_suite(name)
        env = TIREnv(**suite.env_kwargs(images))
        specs, grey, big = suite.episodes(images), [], 0
        for spec in specs:
            options = {"image_id": spec.image_id, "degradations": spec.degradations}
            env.reset(seed=spec.seed, options=options)
            image = env.perception_input()[0]
            if perception.is_greyscale(image):
                grey.append({"image": spec.image_id, "degradations": list(spec.degradations)})
                big += min(image.shape[:2]) >= perception.GREY_MIN_SIDE
        out.append({"suite": name, "episodes": len(specs), "grey": grey, "big": big})
    return out


def section(train: Path = RESULTS, val: Path = VAL_RESULTS) -> str:
    """docs/perception.md's "Greyscale photos" section, from the committed studies ('' without)."""
    if not (train.is_file() and val.is_file()):
        return ""
    fit, check = (json.loads(path.read_text()) for path in (train, val))
    n, lines = len(fit["rows"]), counts(fit["rows"])
    at = {c["threshold"]: c for c in lines}
    low, high = at[0.5], at[0.7]
    checked = {c["threshold"]: c for c in counts(check["rows"])}
    m = len(check["rows"])
    text = [
        "## Greyscale photos",
        "",
        "Perception v2 was trained on colour photos, and it reads a greyscale photo as darker "
        "than it is: `tir restore` brightened a clean greyscale photo (darkness 0.54 against the "
        "threshold 0.5) and washed it out by 17.7 dB in a user's walkthrough. Read on whole "
        "photos at the long side `tir restore` plans on, clean and darkened as the protocol "
        "darkens at its middle, in colour and made grey, the train photos give the threshold "
        "for greyscale images (`tir_env.perception.GREY_DARK_THRESHOLD`; a grey image is one "
        "whose every pixel's R, G and B lie within 2 levels):",
        "",
        *markdown(fit),
        "",
        f"In colour a clean photo reads dark in {low['colour']} of {n}; made grey, "
        f"{low['grey']} do at 0.5 and {high['grey']} at 0.7, while {high['grey_dark']} of the "
        f"{low['grey_dark']} darkened grey photos read at 0.5 still do. On a user's greyscale "
        "photo a false brightening costs 10-20 dB and a missed one leaves the photo as it came, "
        "and most greyscale photos users bring are not darkened ones: the darkness threshold on "
        "greyscale images is 0.7 (in every agent, through `perceive_photo`'s thresholds and "
        "`perceived_tasks`); colour images keep the record's. The val photos, checked after the "
        f"choice: made grey, {checked[0.7]['grey']} of {m} read dark at 0.7 "
        f"({checked[0.5]['grey']} at 0.5) and {checked[0.7]['grey_dark']} darkened ones "
        f"({checked[0.5]['grey_dark']} at 0.5):",
        "",
        *markdown(check),
        "",
        *_episodes_text(),
        "Not fixed by it: a colour photo read dark near the threshold (in the "
        "same walkthrough a noisy forest at dusk, 2560 px, read 0.50 and was brightened, -6.4 "
        "dB): darkness on whole colour photos stays a weak reading (of the "
        f"{n} darkened train photos {low['colour_dark']} read dark at 0.5).",
        "",
    ]
    return "\n".join(textwrap.fill(t, 96) if t and t[0].isalpha() else t for t in text) + "\n"


def _episodes_text(path: Path = EPISODES) -> list[str]:
    """What the rule changes in the benchmarks, from ``--episodes``' record."""
    if not path.is_file():
        return []
    scans = json.loads(path.read_text())
    from tir_env.perception import GREY_MIN_SIDE

    total = sum(r["episodes"] for scan in scans.values() for r in scan)
    grey = [(r["suite"], g) for scan in scans.values() for r in scan for g in r["grey"]]
    big = sum(r["big"] for scan in scans.values() for r in scan)
    dark = sum("dark" in g["degradations"] for _, g in grey)
    jpeg = sum("jpeg" in g["degradations"] for _, g in grey)
    sets = " and ".join(f"`{images}`" for images in scans)
    return [
        f"The threshold applies to greyscale images at least {GREY_MIN_SIDE} px on their shorter "
        "side, the whole photos the study read. Of the round-0 episodes of every suite on "
        f"{sets} ({total}, crops and whole photos; `python -m benchmarks.grey_dark --episodes`), "
        f"{len(grey)} crops read greyscale ({jpeg} of them JPEG-compressed, {dark} darkened), "
        f"crops the study did not read, and {big} at that size: no benchmark episode changes.",
        "",
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Read every photo of ``--images``, write the JSON (refusing to overwrite), print the table."""
    import torch

    from tir_env import data

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default="corpus:train@3")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--episodes",
        action="store_true",
        help=f"instead: which episodes of the suites on the bundled and corpus test photos "
        f"read greyscale (default --json {EPISODES})",
    )
    args = parser.parse_args(argv)
    args.json = args.json or (EPISODES if args.episodes else RESULTS)
    refuse_existing(parser, args.json)
    torch.set_num_threads(1)
    if args.episodes:
        scans = {images: grey_episodes(images) for images in ("test", "corpus:test")}
        write_text_atomic(args.json, json.dumps(scans, indent=1) + "\n")
        print("\n".join(_episodes_text(args.json)))
        return scans
    source = data.source(args.images)
    rows = [
        {"image": image_id, **readings(at_side(source.load(image_id)))}
        for image_id in tqdm(source.ids, desc="photos")
    ]
    command = f"python -m benchmarks.grey_dark --images {args.images}"
    if args.json != RESULTS:
        command += f" --json {args.json}"
    result = {"command": command, "images": args.images, "side": SIDE, "rows": rows}
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    print("\n".join(markdown(result)))
    return result


if __name__ == "__main__":
    main()
