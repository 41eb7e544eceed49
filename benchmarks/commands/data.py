"""``tir data photos`` (the photo corpus) and ``tir speed`` (throughput, per device)."""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.commands.configs import PhotosConfig
from benchmarks.throughput import SpeedConfig


def cmd_data_photos(config: PhotosConfig) -> int:
    """Build (or ``--verify``) the photo corpus (:mod:`benchmarks.photos`)."""
    import time

    from benchmarks import photos
    from tir_env import corpus
    from tir_env.errors import DataError

    out = Path(config.out).expanduser() if config.out else corpus.default_root()
    start = time.perf_counter()
    try:
        if config.verify:
            problems = corpus.verify(out)
            count = len(corpus.read_manifest(out)["photos"])
        else:
            manifest = photos.build(
                out,
                debs=config.debs,
                only_python=config.only_python,
                force=config.force,
                command=shlex.join(["tir", *config.argv]),
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


def cmd_speed(config: SpeedConfig) -> int:
    """``tir speed``: measure, write the JSON and the docs section, print the summary."""
    import logging

    from benchmarks.throughput import run, section

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    words = list(config.argv)  # recorded in the report: the options after `speed`
    report = run(replace(config, argv=tuple(words[1:] if words[:1] == ["speed"] else words)))
    print(section(report))
    return 0
