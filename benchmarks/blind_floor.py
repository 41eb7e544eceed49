"""The blind blur estimators' log-power floor, old against new, on the same crops.

The blind deblurring tools (``motion_wiener_blind``, ``motion_rl_blind``, and
``defocus_wiener`` / ``defocus_rl`` at radius 0) fit candidate kernels to the log power
spectrum of the image (:mod:`tir_env.tools.classical.blur_estimation`). Before the log, a floor
is added (:data:`~tir_env.tools.classical.blur_estimation.POWER_FLOOR`). This script runs every
blind tool on the same crops with each floor and reports the PSNR change against the first:

* *after SR*: ``motion_blur + low_resolution`` and ``defocus_blur + low_resolution`` crops,
  upscaled by ``back_projection_x4`` first (as the agents do), then the blind tool;
* *no SR*: single ``motion_blur`` and ``defocus_blur`` crops, the blind tool alone.

Writes ``benchmarks/results/blind_floor.json`` and its section of ``docs/tools.md``::

    OMP_NUM_THREADS=1 python -m benchmarks.blind_floor --images corpus:val@3 --seeds 1000 1080
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from typing import Any

import torch

from benchmarks.tool_speed import stored_or_measured
from tir_env.env import TIREnv
from tir_env.metrics.fast import psnr
from tir_env.tools import make_tool
from tir_env.tools.classical import blur_estimation, deblurring

BLIND_TOOLS = ("motion_wiener_blind", "motion_rl_blind", "defocus_wiener", "defocus_rl")
#: (degradations, whether the crop is upscaled by back_projection_x4 first)
CASES: tuple[tuple[tuple[str, ...], bool], ...] = (
    (("motion_blur", "low_resolution"), True),
    (("defocus_blur", "low_resolution"), True),
    (("motion_blur",), False),
    (("defocus_blur",), False),
)
START, END = "<!-- blind-floor:start -->", "<!-- blind-floor:end -->"
BAND_START, BAND_END = "<!-- blind-band:start -->", "<!-- blind-band:end -->"
MERGE_START, MERGE_END = "<!-- blind-merge:start -->", "<!-- blind-merge:end -->"
DISK_START, DISK_END = "<!-- blind-disk:start -->", "<!-- blind-disk:end -->"
#: Per ``--compare``: the section's markers and title.
SECTIONS = {
    "floor": (START, END, "The blind estimators' power floor"),
    "band": (BAND_START, BAND_END, "The blind motion estimators on upsampled images"),
    "merge": (MERGE_START, MERGE_END, "The blind motion tools keep an upsampled image's fine grid"),
    "disk": (DISK_START, DISK_END, "The defocus tools on upsampled images"),
}


#: A column's settings: module attributes and their values while it runs.
Settings = dict[tuple[Any, str], Any]
#: ``--compare band``'s columns: the estimators' test for an upsampled image off, then on
#: (:data:`~tir_env.tools.classical.blur_estimation.UPSAMPLED_LOG_RATIO`; -inf never holds).
BAND_COLUMNS: dict[str, Settings] = {
    "full band": {(blur_estimation, "UPSAMPLED_LOG_RATIO"): -math.inf},
    "x4 band if upsampled": {
        (blur_estimation, "UPSAMPLED_LOG_RATIO"): blur_estimation.UPSAMPLED_LOG_RATIO
    },
}
#: ``--compare merge``'s columns: the upsampled image's content above the band from the
#: deconvolution, then from the input (:data:`~tir_env.tools.classical.deblurring.
#: KEEP_INPUT_ABOVE_BAND`).
MERGE_COLUMNS: dict[str, Settings] = {
    "deconvolved above the band": {(deblurring, "KEEP_INPUT_ABOVE_BAND"): False},
    "input kept above the band": {(deblurring, "KEEP_INPUT_ABOVE_BAND"): True},
}


#: ``--compare disk``'s columns: the defocus tools treat an upsampled image as any other, then
#: as the motion tools do (:data:`~tir_env.tools.classical.blur_estimation.DISK_X4_BAND`).
DISK_COLUMNS: dict[str, Settings] = {
    "defocus: full band": {(blur_estimation, "DISK_X4_BAND"): False},
    "defocus: x4 band if upsampled": {(blur_estimation, "DISK_X4_BAND"): True},
}


def tool_psnrs(
    image: torch.Tensor, clean: torch.Tensor, columns: Sequence[Settings]
) -> list[list[float]]:
    """PSNR of each blind tool's output (rows) under each column's settings (columns)."""
    previous = {key: getattr(*key) for settings in columns for key in settings}
    rows = []
    try:
        for name in BLIND_TOOLS:
            tool, row = make_tool(name), []
            for settings in columns:
                for (module, attribute), value in settings.items():
                    setattr(module, attribute, value)
                row.append(float(psnr(tool(image), clean)))
            rows.append(row)
    finally:
        for (module, attribute), value in previous.items():
            setattr(module, attribute, value)
    return rows


def measure(
    images: str, seeds: range, patch: int, floors: Sequence[float], compare: str = "floor"
) -> dict[str, Any]:
    """Every case's crops: each blind tool's PSNR under each floor (see the module doc).

    ``compare="band"`` compares :data:`BAND_COLUMNS` instead, at the current floor.
    """
    named = {"band": BAND_COLUMNS, "merge": MERGE_COLUMNS, "disk": DISK_COLUMNS}.get(compare)
    if named is None:
        columns = [{(blur_estimation, "POWER_FLOOR"): f} for f in floors]
    else:
        columns, floors = list(named.values()), [blur_estimation.POWER_FLOOR] * len(named)
    env = TIREnv(images=images, patch_size=patch, max_steps=3, degradation_order="listed")
    upscale = make_tool("back_projection_x4")
    cases = []
    for degradations, sr_first in CASES:
        episodes = []
        for seed in seeds:
            env.reset(seed=seed, options={"degradations": degradations})
            image, clean = env.current_batch(), env.reference_batch()
            assert clean is not None  # a sampled episode always has its clean crop
            if sr_first:
                image = upscale(image)
            episodes.append(
                {
                    "seed": seed,
                    "input_psnr": float(psnr(image, clean)),
                    "psnr": tool_psnrs(image, clean, columns),
                }
            )
        cases.append(
            {"degradations": list(degradations), "sr_first": sr_first, "episodes": episodes}
        )
    return {
        "images": images,
        "seeds": [seeds.start, seeds.stop],
        "patch": patch,
        "compare": compare,
        "columns": list(named) if named else [f"floor {f:g}" for f in floors],
        "floors": list(floors),
        "tools": list(BLIND_TOOLS),
        "cases": cases,
    }


def changes(case: dict[str, Any], tool: int, column: int) -> list[float]:
    """Per crop: PSNR under floor ``column`` minus under the first floor, for one tool."""
    return [e["psnr"][tool][column] - e["psnr"][tool][0] for e in case["episodes"]]


def pooled_change(report: dict[str, Any], sr_first: bool, column: int = 1) -> float:
    """Mean change over every crop and blind tool of the cases with (or without) SR first."""
    values = [
        d
        for case in report["cases"]
        if case["sr_first"] == sr_first
        for t in range(len(report["tools"]))
        for d in changes(case, t, column)
    ]
    return statistics.mean(values)


MOTION_TOOLS = ("motion_wiener_blind", "motion_rl_blind")
DEFOCUS_TOOLS = ("defocus_wiener", "defocus_rl")


def paired_summary(
    report: dict[str, Any], tools: Sequence[str], sr_first: bool, column: int = 1
) -> dict[str, float]:
    """One paired difference per seed: the change averaged over ``tools`` and the cases.

    Over the cases with (or without) SR first. A seed draws the photo and the crop window
    before the degradations (:func:`~tir_env.episode.sample_start`), so its cases share one
    clean crop and its tools one image: they are averaged into one difference, not
    counted apart. Returns the mean, standard error, t and the number of seeds (``crops``).
    """
    index = [report["tools"].index(name) for name in tools]
    by_seed: dict[int, list[float]] = {}
    for case in report["cases"]:
        if case["sr_first"] != sr_first:
            continue
        for t in index:
            for episode, change in zip(case["episodes"], changes(case, t, column), strict=True):
                by_seed.setdefault(int(episode["seed"]), []).append(change)
    per_seed = [statistics.mean(values) for values in by_seed.values()]
    mean = statistics.mean(per_seed)
    se = statistics.stdev(per_seed) / len(per_seed) ** 0.5 if len(per_seed) > 1 else 0.0
    t = mean / se if se > 0 else (0.0 if mean == 0 else float("inf") * mean)
    return {"mean": mean, "se": se, "t": t, "crops": float(len(per_seed))}


def section(report: dict[str, Any]) -> str:
    """The Markdown section for docs/tools.md: the floors', or the band test's (``compare``)."""
    floors = report["floors"]
    compare = report.get("compare", "floor")
    start, end, title = SECTIONS[compare]
    columns = report.get("columns") or [f"floor {f:g}" for f in floors]
    flag = f" --compare {compare}" if compare != "floor" else ""
    what = {
        "floor": f"the change is floor {floors[-1]:g} minus floor {floors[0]:g}",
        "band": "the change is the upsampling test on minus off (a crop it finds upsampled x4 "
        f"is fitted below {blur_estimation.X4_BAND:g} cycles per pixel: `X4_BAND`, "
        "`UPSAMPLED_LOG_RATIO`)",
        "merge": "the change is the input's content above the band minus the deconvolution's "
        "there, for crops found upsampled x4 (`KEEP_INPUT_ABOVE_BAND`)",
        "disk": "the change is the defocus tools treating a crop found upsampled x4 as the "
        "motion tools do (fit below the band, input kept above it: `DISK_X4_BAND`) minus "
        "as any other crop",
    }[compare]
    lines = [
        start,
        f"### {title}",
        "",
        f"Generated by `OMP_NUM_THREADS=1 python -m benchmarks.blind_floor{flag} --images "
        f"{report['images']} --seeds {report['seeds'][0]} {report['seeds'][1]}` "
        f"({report['patch']} px crops, listed order, one crop per seed and case). Mean PSNR "
        f"(dB) of each blind tool at its defaults; {what}, on the same crop (how many crops "
        "changed, and improved). *After SR*: the crop is upscaled by `back_projection_x4` "
        f"first. The estimators use floor {blur_estimation.POWER_FLOOR:g} (`POWER_FLOOR`).",
        "",
        "| crops | tool | input | " + " | ".join(columns) + " | change | crops changed (better) |",
        "|---|---|---:|" + "---:|" * len(floors) + "---:|---:|",
    ]
    for case in report["cases"]:
        label = "+".join(case["degradations"]) + (", after SR" if case["sr_first"] else "")
        inputs = statistics.mean(e["input_psnr"] for e in case["episodes"])
        for t, tool in enumerate(report["tools"]):
            means = [
                statistics.mean(e["psnr"][t][c] for e in case["episodes"])
                for c in range(len(floors))
            ]
            delta = changes(case, t, len(floors) - 1)
            moved = sum(abs(d) > 1e-4 for d in delta)
            better = sum(d > 1e-4 for d in delta)
            lines.append(
                f"| {label} | {tool} | {inputs:.2f} | "
                + " | ".join(f"{m:.2f}" for m in means)
                + f" | {statistics.mean(delta):+.3f} | {moved} of {len(delta)} ({better}) |"
            )
    last = len(floors) - 1
    lines += [
        "",
        f"Pooled change: after SR {pooled_change(report, True, last):+.3f} dB, "
        f"without SR {pooled_change(report, False, last):+.3f} dB.",
        _paired_line(report, last),
        end,
    ]
    return "\n".join(lines)


def _paired_line(report: dict[str, Any], column: int) -> str:
    """The tools the comparison is about, after SR, as a paired test (one difference a seed)."""
    disk = report.get("compare") == "disk"
    summary = paired_summary(report, DEFOCUS_TOOLS if disk else MOTION_TOOLS, True, column)
    return (
        f"{'Defocus' if disk else 'Motion'} tools after SR, one paired difference per seed "
        f"(the mean over its cases, which share its clean crop, and both tools): "
        f"{summary['mean']:+.3f} dB, standard error {summary['se']:.3f}, t = {summary['t']:.2f} "
        f"over {summary['crops']:.0f} seeds."
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure (or, with ``--doc-only``, read back) and publish the section."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="corpus:val@3")
    p.add_argument("--seeds", type=int, nargs=2, default=[1000, 1080], help="first, last + 1")
    p.add_argument("--patch-size", type=int, default=128)
    p.add_argument("--floors", type=float, nargs="+", default=[1e-12, 1e-8])
    p.add_argument(
        "--compare",
        choices=list(SECTIONS),
        default="floor",
        help="compare the floors, the upsampling test off and on, or keeping the input above "
        "the band off and on (the last two at the current floor)",
    )
    p.add_argument("--out-json", default="benchmarks/results/blind_floor.json")
    p.add_argument("--out-md", default="docs/tools.md")
    p.add_argument("--doc-only", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    def run() -> dict[str, Any]:
        seeds = range(*args.seeds)
        return measure(args.images, seeds, args.patch_size, args.floors, args.compare)

    markers = SECTIONS[args.compare][:2]
    return stored_or_measured(args.out_json, args.out_md, args.doc_only, run, section, markers)


if __name__ == "__main__":
    main()
