"""``tir data photos``, ``tir data check`` and ``tir speed``.

The photo corpus, a folder's unusable images, and throughput per device.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

from benchmarks.commands.configs import CheckImagesConfig, PhotosConfig
from benchmarks.throughput import SpeedConfig


def cmd_data_photos(config: PhotosConfig) -> int:
    """Build (or ``--verify``) the photo corpus (:mod:`benchmarks.photos`)."""
    import time

    from benchmarks import photos
    from tir_env import corpus, independent
    from tir_env.errors import DataError

    default = independent.independent_root() if config.independent else corpus.default_root()
    out = Path(config.out).expanduser() if config.out else default
    start = time.perf_counter()
    try:
        if config.verify:
            problems = corpus.verify(out)
            count = len(corpus.read_manifest(out)["photos"])
        else:
            build = partial(
                photos.build,
                out,
                debs=config.debs,
                only_python=config.only_python,
                force=config.force,
                command=shlex.join(["tir", *config.argv]),
            )
            manifest = (
                build(entries=independent.INDEPENDENT, independent=True)
                if config.independent
                else build()
            )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if config.verify:
        for line in problems:
            print(line)
        print(f"{out}: {count - len(problems)}/{count} photos intact")
        return 1 if problems else 0
    total = sum(p["bytes"] for p in manifest["photos"])
    print(
        f"wrote {len(manifest['photos'])} photos ({total / 1e6:.1f} MB) and manifest.json to "
        f"{out} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def cmd_data_check(config: CheckImagesConfig) -> int:
    """Load every image of ``config.images`` as an episode would; list the ones that fail.

    The env draws an image per episode and stops on one it cannot read (a named error), so a
    long training run on a folder with a broken file dies at that draw; ``tir bench`` skips
    such an image. Checking first lists every such file at once. Exit 0: all usable; 1: some
    are not (each printed with why); 2: the source itself is missing or empty.
    """
    from tqdm.auto import tqdm

    from tir_env import data
    from tir_env.errors import DataError, ImageError

    try:
        source = data.source(config.images)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    bad = []
    for image_id in tqdm(source.ids, desc="images", leave=False):
        try:
            source.load(image_id)
        except (ImageError, DataError) as err:
            bad.append(image_id)
            own = err.__cause__ if isinstance(err.__cause__, ImageError) else err
            tqdm.write(f"{image_id}: {type(own).__name__}: {own}")
    usable = len(source.ids) - len(bad)
    print(f"{config.images}: {usable}/{len(source.ids)} images usable")
    if bad:
        print(
            f"move the {len(bad)} unusable one(s) out of the folder, or fix them, before "
            "training or benchmarking on it"
        )
    return 1 if bad else 0


def cmd_speed(config: SpeedConfig) -> int:
    """``tir speed``: measure, write the JSON and the docs section, print the summary."""
    import logging

    from benchmarks.throughput import run, section

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    words = list(config.argv)  # recorded in the report: the options after `speed`
    report = run(replace(config, argv=tuple(words[1:] if words[:1] == ["speed"] else words)))
    print(section(report))
    return 0
