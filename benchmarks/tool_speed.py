"""Per-tool batching benchmark: one call on a batch of N images against N calls of one image.

For every classical and learned tool, at ``--size`` pixels and batch ``--batch``, the same
images are run through the tool as one batched call and as one call per image, side by side
in one run; the reported ratio is (per-call time) / (batched time), i.e. batched throughput over
per-call throughput: the median over ``--repeats`` repeats of that ratio, each repeat timing
the batched call and the per-call loop back to back (on shared cores the load drifts; a pair
sees about the same load). Tools whose ``apply`` is a batched torch op gain from batching;
per-image numpy tools stay near 1. ``--mixed`` (the default) adds the same ratio with a
different random parameter set for each image, as a pool batches a vector env's or a GRPO
group's calls of one tool (``Tool.call_many``, one invocation with per-image parameters).

Writes ``benchmarks/results/tool_batching.json`` and the table between the
``tool-batching`` markers of ``docs/performance.md`` (the rest of that page is
``benchmarks.speed``'s).

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.tool_speed --size 64 --batch 16 --repeats 7
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.speed import cpu_counters, machine, set_threads, steal_share
from tir_env import data
from tir_env.images import u8_to_batch
from tir_env.spaces import decode_action
from tir_env.tools import Tool, make_tool, tool_names
from tir_env.tools.classical import PerImageTool

START, END = "<!-- tool-batching:start -->", "<!-- tool-batching:end -->"
COMMAND = "OMP_NUM_THREADS=1 python -m benchmarks.tool_speed --size 64 --batch 16 --repeats 7"


def _seconds(fn: Callable[[], object], sync: bool) -> float:
    start = time.perf_counter()
    fn()
    if sync:  # CUDA runs asynchronously: wait for the work, not just its launch
        torch.cuda.synchronize()
    return time.perf_counter() - start


def paired_seconds(
    batched: Callable[[], object], per_call: Callable[[], object], repeats: int, sync: bool
) -> tuple[float, float, float]:
    """Median batched and per-call seconds, and the median of their per-repeat ratios.

    See :func:`paired_pairs` for how each pair is timed.
    """
    pairs = paired_pairs(batched, per_call, repeats, sync)
    return (
        statistics.median(b for b, _ in pairs),
        statistics.median(p for _, p in pairs),
        statistics.median(p / b for b, p in pairs),
    )


def paired_pairs(
    batched: Callable[[], object], per_call: Callable[[], object], repeats: int, sync: bool
) -> list[tuple[float, float]]:
    """``repeats`` pairs of (batched seconds, per-call seconds).

    Each repeat times the two back to back, so a ratio compares runs under about the same load,
    and which of them goes first alternates, so neither always finds the caches and the
    allocator as the other left them (checked on three tools whose two sides do nearly the
    same work: either fixed order moved their ratios by under 1%).
    """
    pairs = []
    for repeat in range(repeats):
        if repeat % 2:
            per_call_s = _seconds(per_call, sync)
            pairs.append((_seconds(batched, sync), per_call_s))
        else:
            pairs.append((_seconds(batched, sync), _seconds(per_call, sync)))
    return pairs


def ratio_cell(row: Mapping[str, Any]) -> str:
    """A row's ratio for a table, with the range of its repeats where the row has one.

    The range shows a tie for what it is: a tool whose two sides run the same per-image code
    scatters around 1x from repeat to repeat. A row measured in blocks adds its blocks' range.
    """
    cell = f"{row['ratio']:.2f}x"
    spread = row.get("ratio_range")
    if not spread:
        return cell
    blocks = row.get("block_ratios")
    of_blocks = f"; blocks {min(blocks):.2f}-{max(blocks):.2f}" if blocks else ""
    return f"{cell} ({spread[0]:.2f}-{spread[1]:.2f}{of_blocks})"


def photo_batch(size: int, batch: int) -> torch.Tensor:
    """``batch`` centre crops of the bundled test photos (cycled), float32 NCHW."""
    src = data.bundled("test")
    crops = [u8_to_batch(data.center_patch(src.load(i), size)) for i in src.ids]
    return torch.cat([crops[i % len(crops)] for i in range(batch)])


def _one_by_one(tool: Tool, x: torch.Tensor) -> list[torch.Tensor]:
    return [tool(x[i : i + 1]) for i in range(x.shape[0])]


def random_params(tool: Tool, n: int, seed: int = 0) -> list[dict[str, float]]:
    """``n`` parameter sets drawn uniformly over each parameter's range (fixed by ``seed``).

    Each is a random action's parameter vector, decoded as the env decodes it.
    """
    rng = np.random.default_rng(seed)
    draws = rng.random((n, len(tool.info.params)))
    calls = [decode_action({"tool": 1, "params": row}, [tool.name]) for row in draws]
    return [tool.resolve(call.params) for call in calls if call is not None]


def _mixed_ratio(tool: Tool, x: torch.Tensor, repeats: int, sync: bool) -> float:
    """Per-call / batched time with one random parameter set per image (median of pairs)."""
    params = random_params(tool, x.shape[0])
    batched = functools.partial(tool.call_many, x, params)

    def per_call() -> list[torch.Tensor]:
        return [tool(x[i : i + 1], p) for i, p in enumerate(params)]

    batched()
    per_call()  # warm-up of these parameters' shapes
    return paired_seconds(batched, per_call, repeats, sync)[2]


def tool_batching(
    size: int,
    batch: int,
    repeats: int,
    device: str = "cpu",
    kinds: tuple[str, ...] = ("classical",),
    mixed: bool = False,
    blocks: int = 1,
) -> list[dict[str, Any]]:
    """One row per tool of ``kinds``: per-call and batched seconds per image, and their ratio.

    The images and the tool are on ``device`` (weights moved there, back to the CPU after).
    ``mixed`` adds ``mixed_ratio``: the ratio with random per-image parameters. With
    ``blocks`` > 1 the loop over every tool runs that many times, so a slow spell of the shared
    host falls on many tools a little rather than on one tool wholly; a row's ``ratio`` is then
    the median of its blocks' ratios (each the median of ``repeats`` pairs), listed in
    ``block_ratios``. A tie (both sides running the same per-image code) needs that power: one
    median of 7 pairs scattered 0.98-1.07 between runs (docs/performance.md).
    """
    x = photo_batch(size, batch).to(device)
    sync = torch.device(device).type == "cuda"
    tools = [make_tool(name) for name in tool_names(kinds=kinds)]
    timed: list[list[_Block]] = [[] for _ in tools]
    for _ in range(blocks):
        for tool, tool_blocks in zip(tools, timed, strict=True):
            tool_blocks.append(_time_block(tool, x, repeats, sync, mixed))
    return [
        _row(tool, x, tool_blocks, mixed) for tool, tool_blocks in zip(tools, timed, strict=True)
    ]


#: One block of one tool: its (batched, per-call) second pairs and its mixed-parameter ratio.
_Block = tuple[list[tuple[float, float]], float | None]


def _time_block(tool: Tool, x: torch.Tensor, repeats: int, sync: bool, mixed: bool) -> _Block:
    """Warm ``tool`` up on ``x``'s device, then time :func:`paired_pairs` (and the mixed ratio)."""
    tool.to(x.device)
    try:
        tool(x[:1])  # warm-up (lazy imports, caches)
        _one_by_one(tool, x)  # warm-up of the single-image shapes too
        pairs = paired_pairs(
            functools.partial(tool, x), functools.partial(_one_by_one, tool, x), repeats, sync
        )
        return pairs, _mixed_ratio(tool, x, repeats, sync) if mixed else None
    finally:
        tool.to("cpu")


def _row(tool: Tool, x: torch.Tensor, blocks: list[_Block], mixed: bool) -> dict[str, Any]:
    """A tool's row from its timed blocks (times: medians over every pair of every block)."""
    pairs = [pair for block_pairs, _ in blocks for pair in block_pairs]
    ratios = [p / b for b, p in pairs]
    block_ratios = [statistics.median(p / b for b, p in block_pairs) for block_pairs, _ in blocks]
    row = {
        "tool": tool.name,
        "kind": tool.info.kind,
        "batched_torch": type(tool).apply is not PerImageTool.apply,
        "cpu_reference": bool(getattr(tool, "cpu_reference", False)),
        "cpu_port_from": getattr(tool, "cpu_port_from", None),
        "cpu_batch": tool.cpu_batch,
        "cpu_per_image": tool.cpu_per_image,
        "net_chunk": _net_chunk(tool, x),
        "prior": getattr(getattr(tool, "spec", None), "prior", None),
        "per_call_ms_per_image": 1000 * statistics.median(p for _, p in pairs) / x.shape[0],
        "batched_ms_per_image": 1000 * statistics.median(b for b, _ in pairs) / x.shape[0],
        "ratio": statistics.median(block_ratios),
        "ratio_range": [min(ratios), max(ratios)],
    }
    if len(blocks) > 1:
        row["block_ratios"] = block_ratios
    if mixed:
        row["mixed_ratio"] = statistics.median(m for _, m in blocks if m is not None)
    return row


def _net_chunk(tool: Tool, x: torch.Tensor) -> int | None:
    """Images per network forward of a learned tool on a CPU batch like ``x`` (else ``None``)."""
    from tir_env.tools.learned import LearnedTool, net_chunk

    if not isinstance(tool, LearnedTool) or x.device.type != "cpu":
        return None

    return min(net_chunk(x.shape, tool.info.scale), x.shape[0])


def _kind_means(rows: list[dict[str, Any]], key: str = "ratio") -> str:
    """Mean and lowest ``key`` of each kind of tool, e.g. "classical tools: mean 2.2x, ..."."""
    parts = []
    for kind in dict.fromkeys(r.get("kind", "classical") for r in rows):
        group = [r for r in rows if r.get("kind", "classical") == kind]
        worst = min(group, key=lambda r: r[key])
        parts.append(
            f"{kind} tools mean **{statistics.mean(r[key] for r in group):.2f}x**, "
            f"lowest {worst[key]:.2f}x ({worst['tool']})"
        )
    return "; ".join(parts)


def table(report: dict[str, Any]) -> str:
    """The Markdown section (between the markers) for ``docs/performance.md``."""
    rows = report["rows"]
    mixed = all("mixed_ratio" in r for r in rows)
    ranged = all("ratio_range" in r for r in rows)
    load = report.get("load_avg")
    steal = report.get("cpu_steal")
    stolen = "" if steal is None else f", {100 * steal:.1f}% of the cores' time stolen by the host"
    busy = (
        f" Load average (1 min) {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the "
        f"end{stolen} (shared cores: compare ratios within this run)."
        if load
        else ""
    )
    lines = [
        START,
        f"## Tool batching ({report['size']} px, batch {report['batch']})",
        "",
        f"Generated by `{report.get('command', COMMAND)}` on {report['machine']['cpu']} "
        f"({report['machine']['date']}; torch threads {report['machine']['torch_threads']}). "
        "Ratio = batched throughput / per-call throughput ("
        + (
            f"median over {report['blocks']} blocks, each a run over every tool, of each "
            "block's median over repeats of the ratio"
            if report.get("blocks", 1) > 1
            else "median over repeats of the ratio"
        )
        + ", the two timed back to back in each, in alternating order"
        + (", and in brackets the lowest and highest repeat" if ranged else "")
        + "; times are medians). "
        f"Ratios: {_kind_means(rows)}.{busy}",
        "",
        "On a CPU, *cpu path* says what a batched call runs: *port* (the batched torch op on the "
        "whole batch), *port, chunks of k* (`Tool.cpu_batch`: the batch in chunks of k images, "
        "where a whole batch's working set outgrows the caches), *reference* "
        "(`cpu_reference`: the numpy/OpenCV reference per image, faster there than the port) or "
        "*reference below k images, port from k* (`cpu_port_from`: the port overtakes the "
        "reference once a batch amortises its per-call cost); *X per image* names a step of the "
        "port that runs image by image in OpenCV, faster there than the torch op. A learned "
        "tool runs its prior (a classical tool, batched as above) on the whole batch, then "
        "its network in chunks of k images (`NET_CPU_PIXELS` output pixels a forward).",
        "",
        *_mixed_sentence(rows),
        "| tool | batched torch | cpu path | per call, ms/image | batched, ms/image | ratio |"
        + (" mixed parameters |" if mixed else ""),
        "|---|---|---|---:|---:|---:|" + ("---:|" if mixed else ""),
    ]
    for r in rows:
        lines.append(
            f"| {r['tool']} | {'yes' if r['batched_torch'] else 'no'} | {_cpu_path(r)} | "
            f"{r['per_call_ms_per_image']:.2f} | {r['batched_ms_per_image']:.2f} | "
            f"{ratio_cell(r)} |" + (f" {r['mixed_ratio']:.2f}x |" if mixed else "")
        )
    return "\n".join([*lines, END])


def _mixed_sentence(rows: list[dict[str, Any]]) -> list[str]:
    """The paragraph on the *mixed parameters* column (none when the rows lack it)."""
    if not all("mixed_ratio" in r for r in rows):
        return []
    return [
        "*Mixed parameters*: the same ratio with a different random parameter set for each "
        "image (uniform over each range, fixed seed), as a pool batches a vector env's or a "
        "GRPO group's calls of one tool (the learned tools have no parameters); "
        f"{_kind_means(rows, 'mixed_ratio')}.",
        "",
    ]


def _cpu_path(row: dict[str, Any]) -> str:
    """What a batched call runs on a CPU (rows of older reports lack the fields: "-")."""
    if row.get("cpu_reference") and row.get("cpu_port_from"):
        path = f"reference below {row['cpu_port_from']} images, port from {row['cpu_port_from']}"
    elif row.get("cpu_reference"):
        path = "reference"
    elif "cpu_reference" in row:
        path = "port"
    else:
        return "-"
    chunk = row.get("cpu_batch")
    path = f"{path}, chunks of {chunk}" if chunk else path
    step = row.get("cpu_per_image")
    path = f"{path}; {step} per image (OpenCV)" if step else path
    net = row.get("net_chunk")
    if not net:
        return path
    prior = row.get("prior")
    return (f"{prior}, then " if prior else "") + f"network in chunks of {net}"


def write_section(path: Path, section: str, start: str = START, end: str = END) -> None:
    """Replace the section of ``path`` between ``start`` and ``end`` (append it when absent).

    ``section`` includes the markers.
    """
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def stored_or_measured(
    out_json: str,
    out_md: str,
    doc_only: bool,
    measure: Callable[[], dict[str, Any]],
    section: Callable[[dict[str, Any]], str],
    markers: tuple[str, str],
) -> dict[str, Any]:
    """Measure and store a report's JSON (or read it back), then publish its doc section.

    With ``doc_only`` the JSON at ``out_json`` is read instead of measured; the section
    between ``markers`` in ``out_md`` is rewritten unless ``out_md`` is empty, and printed.
    """
    out = Path(out_json)
    if doc_only:
        report = json.loads(out.read_text())
    else:
        report = measure()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    text = section(report)
    if out_md:
        write_section(Path(out_md), text, *markers)
    print(text)
    return report


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure, write the JSON and the Markdown section, return the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument(
        "--blocks",
        type=int,
        default=1,
        help="run the loop over every tool this many times; a ratio is the median of blocks",
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument(
        "--opencv-threads", type=int, default=0, help="OpenCV's threads (0: its default)"
    )
    p.add_argument(
        "--mixed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time batches with a random parameter set per image",
    )
    p.add_argument(
        "--kinds", nargs="+", default=["classical", "learned"], help="kinds of tools to time"
    )
    p.add_argument("--out-json", default="benchmarks/results/tool_batching.json")
    p.add_argument("--out-md", default="docs/performance.md")
    args = p.parse_args(argv)
    set_threads(args.threads, args.opencv_threads)
    start_load = list(os.getloadavg())
    start_counters = cpu_counters()
    omp = os.environ.get("OMP_NUM_THREADS")
    words = ["python -m benchmarks.tool_speed", *(argv if argv is not None else sys.argv[1:])]
    report = {
        "command": " ".join([f"OMP_NUM_THREADS={omp}"] * bool(omp) + words),
        "size": args.size,
        "batch": args.batch,
        "repeats": args.repeats,
        "blocks": args.blocks,
        "machine": machine(),
        "rows": tool_batching(
            args.size,
            args.batch,
            args.repeats,
            kinds=tuple(args.kinds),
            mixed=args.mixed,
            blocks=args.blocks,
        ),
        # The machine is shared: how busy it was (1-minute load average) before and after.
        "load_avg": {"start": start_load, "end": list(os.getloadavg())},
    }
    report["cpu_steal"] = steal_share(start_counters, cpu_counters())
    Path(args.out_json).write_text(json.dumps(report, indent=2) + "\n")
    if args.out_md:
        write_section(Path(args.out_md), table(report))
    return report


if __name__ == "__main__":
    main()
