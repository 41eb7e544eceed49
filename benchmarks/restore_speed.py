r"""What a camera's photo costs `tir restore` outside the tools: each step before and now, one run.

A py-spy profile of ``tir restore`` on a 6028x3391 photo (``py-spy record -f raw -- python -m
benchmarks.cli restore PHOTO``) found most of its 15 s outside perception and the tools: the
PNG written at PIL's zlib level 6 (6 s), numpy's transposed float copy of the photo (0.85 s,
three times a run), and per-pixel reductions over the short channel axis (0.4 s each, six
times). Each was replaced by an equivalent that gives the same result; this benchmark times
both on the same photo in one run, each as the first call of a fresh process, as ``tir
restore`` meets it: numpy's transposed float copy costs 1.0 s the first time and 0.05 s when
repeated in the same process (its memory and loops warm), so a warm loop would time what no
run of ``tir restore`` sees (in its profile, 0.7 s a call):

* **float planes**: the uint8 HxWx3 photo to a float32 1x3xHxW batch
  (:func:`tir_env.images.u8_to_batch`), before as a float copy of the transposed array;
* **darkest channel**: each pixel's darkest channel (:func:`tir_env.images.channel_min`),
  before ``image.min(axis=-1)``;
* **PNG**: the photo written as PNG (:data:`tir_env.images.SAVE_OPTIONS`: zlib level 1), before
  at PIL's level 6; the bytes written are reported beside the times.

A second table times each learned network on one tile of the photo (its centre, 1024 px, the
size ``tir restore`` applies a plan in), warm, in the layout it ran in before (PyTorch's default)
and in channels last (:func:`tir_env.tools.learned.memory_format`), the two alternating in one
process; the outputs must agree to float rounding.

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


def _step(name: str, way: str) -> Callable[[np.ndarray], object]:
    """The function that does step ``name`` the ``way`` (``before`` or ``now``)."""
    steps: dict[str, tuple[Callable[[np.ndarray], object], Callable[[np.ndarray], object]]] = {
        "float planes": (_float_planes_before, u8_to_batch),
        "darkest channel": (lambda image: image.min(axis=-1), channel_min),
        "PNG": (
            lambda image: _png_bytes(image, compress_level=6),
            lambda image: _png_bytes(image, **SAVE_OPTIONS[".png"]),
        ),
    }
    return steps[name][0 if way == "before" else 1]


#: The steps timed, in the table's order.
STEPS = ("float planes", "darkest channel", "PNG")


def _first_call_seconds(photo: Path, name: str, way: str) -> float:
    """In a fresh process: load the photo, time one call of the step."""
    torch.set_num_threads(1)
    image = np.load(photo)
    step = _step(name, way)
    start = time.perf_counter()
    step(image)
    return time.perf_counter() - start


def measure(image: np.ndarray, repeats: int = 3) -> list[dict[str, Any]]:
    """One row per step: seconds before and now (medians of ``repeats``), and their ratio.

    Each time is one call, the first of a fresh process; the two ways alternate, so a
    machine's slow spell falls on both.

    Raises:
        AssertionError: a step's two ways disagree (they must give the same result).
    """
    import multiprocessing
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    assert torch.equal(_float_planes_before(image), u8_to_batch(image))
    assert np.array_equal(image.min(axis=-1), channel_min(image))
    spawn = multiprocessing.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.npy"
        np.save(photo, image)
        with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
            for name in STEPS:
                times: dict[str, list[float]] = {"before": [], "now": []}
                for _ in range(repeats):
                    for way, seconds in times.items():
                        seconds.append(pool.submit(_first_call_seconds, photo, name, way).result())
                before, now = (statistics.median(times[w]) for w in ("before", "now"))
                rows.append(
                    {
                        "step": name,
                        "before_s": round(before, 4),
                        "now_s": round(now, 4),
                        "speedup": round(before / max(now, 1e-9), 2),
                    }
                )
    rows[-1]["bytes_before"] = _png_bytes(image, compress_level=6)
    rows[-1]["bytes_now"] = _png_bytes(image, **SAVE_OPTIONS[".png"])
    return rows


#: Side of the tile the learned networks are timed on (``tir restore``'s tile).
NET_TILE = 1024


def measure_networks(
    image: np.ndarray, repeats: int = 3, tile: int = NET_TILE
) -> list[dict[str, Any]]:
    """One row per shipped learned network: seconds a forward in each layout (warm medians).

    One torch thread, as the first table's steps run (the caller's count is restored after).

    Raises:
        AssertionError: the two layouts' outputs differ by more than float rounding.
    """
    from tir_env.tools.learned import SPECS
    from tir_env.tools.learned.weights import weights_path

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [
            _network_row(spec, image, repeats, tile)
            for spec in SPECS
            if weights_path(spec.name).is_file()
        ]
    finally:
        torch.set_num_threads(threads)


#: The two layouts :func:`measure_networks` compares, as the table names them.
LAYOUTS = {"before": torch.contiguous_format, "now": torch.channels_last}


def _network_row(spec: Any, image: np.ndarray, repeats: int, tile: int) -> dict[str, Any]:
    """:func:`measure_networks`' row of one network, on the centre ``tile`` of ``image``."""
    from tir_env.tools.base import make_tool
    from tir_env.tools.learned import TOOL_CLASSES

    h, w = image.shape[:2]
    side = tile // spec.scale  # a x4 network's input is a quarter of the tile
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    x = u8_to_batch(np.ascontiguousarray(image[top : top + side, left : left + side]))
    prior = None if spec.prior is None else make_tool(spec.prior)(x)
    net = TOOL_CLASSES[spec.name]().network()  # a fresh instance: no pool's tool is touched
    times: dict[str, list[float]] = {"before": [], "now": []}
    outputs: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for round_ in range(repeats + 1):  # the first round warms both layouts up, untimed
            order = list(LAYOUTS) if round_ % 2 == 0 else list(LAYOUTS)[::-1]
            for way in order:
                layout = LAYOUTS[way]
                net.to(memory_format=layout)
                xi = x.contiguous(memory_format=layout)
                pi = None if prior is None else prior.contiguous(memory_format=layout)
                start = time.perf_counter()
                outputs[way] = net(xi, pi)
                times[way].append(time.perf_counter() - start)
    gap = float((outputs["before"] - outputs["now"]).abs().max())
    assert gap < 1e-4, f"{spec.name}: the layouts' outputs differ by {gap}"
    before, now = (statistics.median(times[w][1:]) for w in ("before", "now"))
    return {
        "network": spec.name,
        "before_s": round(before, 4),
        "now_s": round(now, 4),
        "speedup": round(before / max(now, 1e-9), 2),
        "max_difference": gap,
    }


def markdown(result: Mapping[str, Any]) -> list[str]:
    """The committed record as a table (``<!-- restore-speed: FILE -->`` in the docs)."""
    height, width = result["size"]
    lines = [
        f"`{result['command']}`: {result['photo']}, {width}x{height}, medians of "
        f"{result['repeats']} first calls in fresh processes, each way in turn, "
        f"{result['threads']} torch thread(s), one run.",
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
    if result.get("networks"):
        lines += [
            "",
            f"The learned networks on the photo's centre tile ({NET_TILE} px of output), warm "
            f"medians of {result['repeats']} forwards in each layout:",
            "",
            "| network | default layout (s) | channels last (s) | speedup | largest difference |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in result["networks"]:
            lines.append(
                f"| {row['network']} | {row['before_s']:.3f} | {row['now_s']:.3f} | "
                f"{row['speedup']:.1f}x | {row['max_difference']:.1e} |"
            )
    return lines


def _photo(spec: str | None) -> tuple[str, np.ndarray]:
    if spec is not None:
        return spec, load_image(spec)
    import dataclasses

    from tir_env import data

    corpus = dataclasses.replace(data.source("corpus:test"), max_side=None)  # the file's size
    return PHOTO, corpus.load(PHOTO)


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
        "threads": 1,
        "rows": measure(image, args.repeats),
        "networks": measure_networks(image, args.repeats),
    }
    if args.json:
        write_study(args.json, result, markdown)
    else:
        print("\n".join(markdown(result)))
    return result


if __name__ == "__main__":
    main()
