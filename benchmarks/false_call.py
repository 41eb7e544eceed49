"""What a tool costs when it is called where its degradation is not: the false-call table.

An agent that perceives wrongly calls a tool on an image without the tool's degradation.
How much that costs decides how much every perception error costs: a dehazer that leaves a
haze-free crop alone makes a false haze reading cheap; one that returns it at 18 dB makes it
the episode's undoing. For each tool (default: each task's preferred tool and its learned
counterpart, super-resolution aside, whose output has another size), random 128 px crops of
the photos are left clean or given one single AgenticIR degradation, and the tool runs with
its default parameters. Reported: the PSNR (to the clean crop) of the tool's output on clean
crops, and the mean change in PSNR it makes on crops with its own degradation (what a right
call gains) and with each other one (what a false call costs).

``--variant LABEL=FOLDER`` adds a row for a tool with the learned weights of ``FOLDER``
(``TIR_LEARNED_WEIGHTS``), e.g. a network trained with ``train_tools --keep-share``.

Writes ``benchmarks/results/false_call/report.json`` and its section of ``docs/tools.md``::

    python -m benchmarks.false_call --images corpus:val --crops 4
    python -m benchmarks.false_call --doc-only        # the section from the stored JSON
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tool_eval import task_degradations

START, END = "<!-- false-call:start -->", "<!-- false-call:end -->"
ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "benchmarks" / "results" / "false_call" / "report.json"
#: ``fixed`` and ``exhaustive`` on the val photos' crops with the ``--keep-share`` dehazer
#: (``tir bench SUITE --images corpus:val --limit 5 --agents fixed,exhaustive`` for the five
#: crop suites, with ``TIR_LEARNED_WEIGHTS`` at the shipped folder holding it).
VAL_KEEP = OUT_JSON.parent / "val_agents_keep_share"
#: A mean false call below this (dB) makes a tool one whose wrong call undoes an episode.
COSTLY = -5.0
#: Label of the clean crops' column.
CLEAN = "clean"


def default_tools() -> list[str]:
    """Each task's preferred tool and its learned counterpart (same-size tasks only)."""
    from tir_env.tools import tool_info, tool_names

    tools, tasks = [], task_degradations()
    for name in tool_names():
        info = tool_info(name)
        if info.task not in tasks or info.scale != 1:
            continue
        if info.preferred or name == f"learned_{info.task}":
            tools.append(name)
    return tools


def situations() -> list[str]:
    """Clean, then each single AgenticIR degradation whose input keeps its size."""
    return [CLEAN, *(d for d in task_degradations().values() if d != "low_resolution")]


def _crops(images: str, per_photo: int, seed: int) -> list[Any]:
    """``per_photo`` random clean 128 px crops (1x3xHxW batches) of each photo."""
    from tir_env import data
    from tir_env.images import u8_to_batch

    source = data.source(images)
    rng = np.random.default_rng(seed)
    crops = []
    for image_id in source.ids:
        photo = source.load(image_id)
        crops += [u8_to_batch(data.random_patch(photo, 128, rng)) for _ in range(per_photo)]
    return crops


def measure_tool(tool_name: str, crops: list[Any], seed: int) -> dict[str, float]:
    """Situation -> mean PSNR change the tool makes (clean: PSNR of its output), dB."""
    from tir_env.degradations import degrade
    from tir_env.metrics import fast
    from tir_env.tools.base import TOOLS

    tool = TOOLS.get(tool_name)()  # a fresh instance: it loads the weights folder in force
    row: dict[str, float] = {}
    for situation in situations():
        rng = np.random.default_rng(seed)  # the same degraded crops for every tool
        changes = []
        for clean in crops:
            names = [] if situation == CLEAN else [situation]
            degraded, _ = degrade(clean, names, rng)
            after = float(fast.psnr(tool(degraded).clamp(0, 1), clean))
            before = 0.0 if situation == CLEAN else float(fast.psnr(degraded, clean))
            changes.append(after - before)
        row[situation] = float(np.mean(changes))
    return row


def measure(
    tools: Sequence[str], variants: Sequence[str], images: str, per_photo: int, seed: int
) -> dict[str, Any]:
    """The report: every tool's row, then each variant's (``LABEL=FOLDER`` with a tool)."""
    from tqdm.auto import tqdm

    from tir_env.tools import tool_info
    from tir_env.tools.learned.weights import weights_folder

    crops = _crops(images, per_photo, seed)
    rows = []
    for name in tqdm(tools, desc="tools"):
        rows.append({"tool": name, "task": tool_info(name).task, **measure_tool(name, crops, seed)})
    for variant in variants:
        label, folder, tool = parse_variant(variant)
        with weights_folder(Path(folder)):
            row = measure_tool(tool, crops, seed)
        rows.append({"tool": tool, "variant": label, "task": tool_info(tool).task, **row})
    return {
        "images": images,
        "crops": len(crops),
        "seed": seed,
        "situations": situations(),
        "own": task_degradations(),
        "rows": rows,
    }


def parse_variant(text: str) -> tuple[str, str, str]:
    """``LABEL=FOLDER:TOOL`` -> (label, folder, tool).

    Raises:
        ValueError: the text is not of that form, or the folder does not exist.
    """
    label, sep, rest = text.partition("=")
    folder, sep2, tool = rest.rpartition(":")
    if not (sep and sep2 and label and folder and tool):
        raise ValueError(f"{text!r}: give a variant as LABEL=FOLDER:TOOL")
    if not os.path.isdir(folder):
        raise ValueError(f"{text!r}: no such weights folder {folder}")
    return label, folder, tool


def section(report: dict[str, Any]) -> str:
    """The Markdown section for docs/tools.md."""
    own = report["own"]
    others = [s for s in report["situations"] if s != CLEAN]
    lines = [
        START,
        "## What a false call costs",
        "",
        "Generated by `python -m benchmarks.false_call` (`benchmarks/results/false_call/`).",
        f"{report['crops']} random 128 px crops of `{report['images']}`, each left clean or",
        "given one single degradation; each tool runs once with its default parameters.",
        "*Clean*: PSNR of the tool's output on clean crops (capped at 80 dB: untouched).",
        "*Right call*: the mean PSNR change on crops with the tool's own degradation.",
        "*False call*: the mean change over the other degradations, and the worst one.",
        "",
        "| tool | clean, dB | right call | false call, mean | false call, worst |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        mine = own[row["task"]]
        wrong = {s: row[s] for s in others if s != mine}
        worst = min(wrong, key=lambda s: wrong[s])
        name = f"`{row['tool']}`" + (f" ({row['variant']})" if "variant" in row else "")
        lines.append(
            f"| {name} | {row[CLEAN]:.1f} | {row[mine]:+.2f} | "
            f"{np.mean(list(wrong.values())):+.2f} | {wrong[worst]:+.2f} ({worst}) |"
        )
    lines += ["", *_reading(report), END]
    return "\n".join(lines)


def _false_mean(row: dict[str, Any], own: dict[str, str], others: list[str]) -> float:
    return float(np.mean([row[s] for s in others if s != own[row["task"]]]))


def _reading(report: dict[str, Any]) -> list[str]:
    """What the table says, and what the ``--keep-share`` dehazer did to the agents."""
    from benchmarks.perception_blind import textwrap_join as wrap

    own = report["own"]
    others = [s for s in report["situations"] if s != CLEAN]
    plain = [r for r in report["rows"] if "variant" not in r]
    costly = [r for r in plain if _false_mean(r, own, others) < COSTLY]
    rest = [_false_mean(r, own, others) for r in plain if r not in costly]
    tasks = sorted({r["task"] for r in costly})
    lines: list[str] = []
    if costly and rest:
        lines += [
            wrap(
                f"The tools of {' and '.join(tasks)} are the ones whose false call undoes an",
                f"episode (a mean below {COSTLY:g} dB:",
                ", ".join(f"`{r['tool']}`" for r in costly) + ");",
                f"every other tool's false call costs at most {-min(rest):.2f} dB on average.",
                "These are the two types perception reads worst (dark and haze,",
                "docs/perception.md), so their errors cost the agents most.",
            ),
            "",
        ]
    kept = next((r for r in report["rows"] if r.get("variant") and r["task"] == "dehazing"), None)
    shipped = next((r for r in plain if kept and r["tool"] == kept["tool"]), None)
    # the paragraph on the --keep-share dehazer needs its row, the shipped one's and val records
    if kept is not None and shipped is not None and VAL_KEEP.is_dir():
        from benchmarks.perception_gpu import VAL_SHIPPED, paired_change

        change = {a: paired_change(VAL_KEEP, VAL_SHIPPED, a) for a in ("fixed", "exhaustive")}
        wrong = [_false_mean(r, own, others) for r in (shipped, kept)]
        lines += [
            wrap(
                "A dehazer trained with `python -m benchmarks.train_tools --only",
                "learned_dehazing --photos corpus@3 --steps-scale 6 --keep-share 0.5` (half its",
                "crops without haze, to be left as they are) cuts the mean cost of a false call",
                f"from {-wrong[0]:.2f} to {-wrong[1]:.2f} dB and gains {kept['haze']:+.2f} on a",
                f"right one ({shipped['haze']:+.2f} before; the last row). In place of the",
                "shipped one, on",
                "the val photos' crops, `fixed` changes by",
                f"{change['fixed']:+.2f} dB and `exhaustive` by {change['exhaustive']:+.2f}",
                "(mean over the five crop suites): within noise, so it is not shipped. A false",
                "call still costs it several dB; a tool that leaves a haze-free image alone",
                "would need to read haze as well as perception does.",
            ),
            "",
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure (or read back) the report; write the JSON and the doc section."""
    from benchmarks.tool_speed import stored_or_measured

    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--images", default="corpus:val", help="photos to cut crops from")
    p.add_argument("--crops", type=int, default=4, help="crops per photo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tools", nargs="+", default=None, help="default: default_tools()")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL=FOLDER:TOOL")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out-json", default=str(OUT_JSON))
    p.add_argument("--out-md", default="docs/tools.md", help="'' to print only")
    p.add_argument("--doc-only", action="store_true", help="rewrite the section from the JSON")
    args = p.parse_args(argv)
    for variant in args.variant:
        try:
            parse_variant(variant)
        except ValueError as error:
            p.error(str(error))

    def run() -> dict[str, Any]:
        import torch

        torch.set_num_threads(args.threads)
        tools = args.tools or default_tools()
        return measure(tools, args.variant, args.images, args.crops, args.seed)

    return stored_or_measured(args.out_json, args.out_md, args.doc_only, run, section, (START, END))


if __name__ == "__main__":
    main()
