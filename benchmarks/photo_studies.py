"""What the per-photo studies share: the photos they read and how they write their record.

:mod:`benchmarks.rain_on_top`, :mod:`benchmarks.rain_rescue` and :mod:`benchmarks.noise_cue`
read every photo of a source but the bundled test photos (as ``restore_check`` does) and
write one JSON record that names the command that made it, then print its table.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tir_env.files import write_text_atomic


def study_ids(images: str) -> list[str]:
    """The photos of ``images`` (a data source spec), the bundled test photos left out."""
    from tir_env import data

    bundled = data.bundled("test")
    return [i for i in data.source(images).ids if i.split("/")[-1] not in bundled.ids]


def rows_per_photo(
    read_photo: Callable[..., list[dict[str, Any]]], images: str, jobs: int, *args: Any
) -> list[dict[str, Any]]:
    """``read_photo(images, image_id, *args)`` for each of :func:`study_ids`, flattened.

    In ``jobs`` worker processes; the rows keep the photos' order.
    """
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(read_photo, images, i, *args) for i in study_ids(images)]
        return [row for future in futures for row in future.result()]


def command(module: str, argv: Sequence[str] | None) -> str:
    """The command line that ran ``module`` with ``argv`` (``None``: this process's own)."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def write_study(
    path: Path, result: Mapping[str, Any], markdown: Callable[[Mapping[str, Any]], list[str]]
) -> None:
    """Write ``result`` to ``path`` (atomically, making its folder) and print its table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(result, indent=1) + "\n")
    print("\n".join(markdown(result)))


__all__ = ["command", "rows_per_photo", "study_ids", "write_study"]
