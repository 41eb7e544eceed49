r"""What a camera's photo costs `tir restore` outside the tools: each step before and now, one run.

A py-spy profile of ``tir restore`` on a 6028x3391 photo (``py-spy record -f raw -- python -m
benchmarks.cli restore PHOTO``) found most of its 15 s outside perception and the tools: the
PNG written at PIL's zlib level 6 (6 s), numpy's transposed float copy of the photo (0.85 s,
three times a run), and per-pixel reductions over the short channel axis (0.4 s each, six
times). Each was replaced by an equivalent that gives the same result; this benchmark times
both on the same photo, back to back, so their ratio is read within one run:

* **float planes**: the uint8 HxWx3 photo to a float32 1x3xHxW batch
  (:func:`tir_env.images.u8_to_batch`), before as a float copy of the transposed array;
* **darkest channel**: each pixel's darkest channel (:func:`tir_env.images.channel_min`),
  before ``image.min(axis=-1)``;
* **PNG**: the photo written as PNG (:data:`tir_env.images.SAVE_OPTIONS`: zlib level 1), before
  at PIL's level 6; the bytes written are reported beside the times.

Usage::

    python -m benchmarks.restore_speed --json benchmarks/results/restore_speed.json
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.photo_studies import write_study
from tir_env.images import SAVE_OPTIONS, channel_min, load_image, u8_to_batch

RESULTS = Path("benchmarks/results/restore_speed.json")
#: The corpus photo read by default: the largest test photo.
PHOTO = "lomiri/Kleiber"


def _float_planes_before(image: np.ndarray) -> torch.Tensor:
    array = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0
    return torch.from_numpy(array).unsqueeze(0)


def _png_bytes(image: np.ndarray, **options: Any) -> int:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", **options)
    return buffer.tell()


def _median_seconds(step: Callable[[], object], repeats: int) -> float:
    step()  # warm up: the first call pays for allocations and torch's dispatch caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(image: np.ndarray, repeats: int = 3) -> list[dict[str, Any]]:
    """One row per step: seconds before and now (medians of ``repeats``), and their ratio.

    Raises:
        AssertionError: a step's two ways disagree (they must give the same result).
    """
    assert torch.equal(_float_planes_before(image), u8_to_batch(image))
    assert np.array_equal(image.min(axis=-1), channel_min(image))
    steps: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("float planes", lambda: _float_planes_before(image), lambda: u8_to_batch(image)),
        ("darkest channel", lambda: image.min(axis=-1), lambda: channel_min(image)),
        (
            "PNG",
            lambda: _png_bytes(image, compress_level=6),
            lambda: _png_bytes(image, **SAVE_OPTIONS[".png"]),
        ),
    ]
    rows = []
    for name, before, now in steps:
        seconds_before = _median_seconds(before, repeats)
        seconds_now = _median_seconds(now, repeats)
        rows.append(
            {
                "step": name,
                "before_s": round(seconds_before, 4),
                "now_s": round(seconds_now, 4),
                "speedup": round(seconds_before / max(seconds_now, 1e-9), 2),
            }
        )
    rows[-1]["bytes_before"] = _png_bytes(image, compress_level=6)
    rows[-1]["bytes_now"] = _png_bytes(image, **SAVE_OPTIONS[".png"])
    return rows


def markdown(result: Mapping[str, Any]) -> list[str]:
    """The committed record as a table (``<!-- restore-speed: FILE -->`` in the docs)."""
    height, width = result["size"]
    lines = [
        f"`{result['command']}`: {result['photo']}, {width}x{height}, medians of "
        f"{result['repeats']} repeats, {result['threads']} torch thread(s), one run.",
        "",
        "| step | before (s) | now (s) | speedup |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        times = f"{row['before_s']:.3f} | {row['now_s']:.3f}"
        lines.append(f"| {row['step']} | {times} | {row['speedup']:.1f}x |")
    png = result["rows"][-1]
    lines += [
        "",
        f"The PNG is {png['bytes_now'] / png['bytes_before'] - 1:+.0%} larger "
        f"({png['bytes_before'] / 1e6:.1f} MB at level 6, {png['bytes_now'] / 1e6:.1f} MB now), "
        "the same pixels.",
    ]
    return lines


def _photo(spec: str | None) -> tuple[str, np.ndarray]:
    if spec is not None:
        return spec, load_image(spec)
    from tir_env import data

    return PHOTO, data.source("corpus:test").load(PHOTO)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Time the steps on ``--photo`` and print (or write, ``--json``) the record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", help=f"a photo file (default: the corpus' {PHOTO})")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args(argv)
    name, image = _photo(args.photo)
    command = "python -m benchmarks.restore_speed" + (f" --json {args.json}" if args.json else "")
    result = {
        "command": command,
        "photo": name,
        "size": list(image.shape[:2]),
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "rows": measure(image, args.repeats),
    }
    if args.json:
        write_study(args.json, result, markdown)
    else:
        print("\n".join(markdown(result)))
    return result


if __name__ == "__main__":
    main()
