"""What a tool costs when it is called where its degradation is not: the false-call table.

An agent that perceives wrongly calls a tool on an image without the tool's degradation.
How much that costs decides how much every perception error costs: a dehazer that leaves a
haze-free crop alone makes a false haze reading cheap; one that returns it at 18 dB makes it
the episode's undoing. For each tool (default: each task's preferred tool and its learned
counterpart, super-resolution aside, whose output has another size), random 128 px crops of
the photos are left clean or given one single AgenticIR degradation (rounded to 8 bits, as the
env rounds an episode's input), and the tool runs with
its default parameters. Reported: the PSNR (to the clean crop) of the tool's output on clean
crops, and the mean change in PSNR it makes on crops with its own degradation (what a right
call gains) and with each other one (what a false call costs).

``--variant LABEL=FOLDER:TOOL`` adds a row for a tool with the learned weights of ``FOLDER``
(``TIR_LEARNED_WEIGHTS``), e.g. a network trained with ``train_tools --keep-share``;
``--params LABEL=TOOL:KEY=VALUE[,KEY=VALUE]`` one for a tool with other parameters, e.g.
``dark_channel_prior``'s ``omega=0.85``. ``--append`` measures only the variants, on the
stored report's crops, and adds their rows to it.

Writes ``benchmarks/results/false_call/report.json`` and its section of ``docs/tools.md``::

    python -m benchmarks.false_call --images corpus:val --crops 4
    python -m benchmarks.false_call --doc-only        # the section from the stored JSON
    python -m benchmarks.false_call --append --params "omega85=dark_channel_prior:omega=0.85"
"""

from __future__ import annotations

import argparse
import json
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


def measure_tool(
    tool_name: str, crops: list[Any], seed: int, params: dict[str, float] | None = None
) -> dict[str, float]:
    """Situation -> mean PSNR change the tool makes (clean: PSNR of its output), dB.

    ``params``: the tool's parameters (``None``: its defaults).
    """
    from tir_env.degradations import degrade
    from tir_env.images import round_to_8_bits
    from tir_env.metrics import fast
    from tir_env.tools.base import TOOLS

    tool = TOOLS.get(tool_name)()  # a fresh instance: it loads the weights folder in force
    row: dict[str, float] = {}
    for situation in situations():
        rng = np.random.default_rng(seed)  # the same degraded crops for every tool
        changes = []
        for clean in crops:
            names = [] if situation == CLEAN else [situation]
            # rounded to 8 bits, as the env rounds every episode's input (tir_env.episode): the
            # blind estimators read the rounding noise, which float inputs lack
            degraded = round_to_8_bits(degrade(clean, names, rng)[0])
            after = float(fast.psnr(tool(degraded, params).clamp(0, 1), clean))
            before = 0.0 if situation == CLEAN else float(fast.psnr(degraded, clean))
            changes.append(after - before)
        row[situation] = float(np.mean(changes))
    return row


def measure(
    tools: Sequence[str],
    variants: Sequence[str],
    images: str,
    per_photo: int,
    seed: int,
    param_variants: Sequence[str] = (),
) -> dict[str, Any]:
    """The report: every tool's row, then each variant's (:func:`variant_rows`)."""
    from tqdm.auto import tqdm

    from tir_env.tools import tool_info

    crops = _crops(images, per_photo, seed)
    rows = []
    for name in tqdm(tools, desc="tools"):
        rows.append({"tool": name, "task": tool_info(name).task, **measure_tool(name, crops, seed)})
    return {
        "images": images,
        "crops": len(crops),
        "per_photo": per_photo,
        "seed": seed,
        "rounded": True,  # degraded inputs rounded to 8 bits (reports before 2026-12-06: float)
        "situations": situations(),
        "own": task_degradations(),
        "rows": rows + variant_rows(variants, param_variants, crops, seed),
    }


def variant_rows(
    variants: Sequence[str], param_variants: Sequence[str], crops: list[Any], seed: int
) -> list[dict[str, Any]]:
    """Rows of tools with other weights (``LABEL=FOLDER:TOOL``) or parameters."""
    from tir_env.tools import tool_info
    from tir_env.tools.learned.weights import weights_folder

    rows = []
    for variant in variants:
        label, folder, tool = parse_variant(variant)
        with weights_folder(Path(folder)):
            row = measure_tool(tool, crops, seed)
        rows.append({"tool": tool, "variant": label, "task": tool_info(tool).task, **row})
    for variant in param_variants:
        label, tool, params = parse_params(variant)
        named: dict[str, Any] = {"tool": tool, "variant": label, "params": params}
        named["task"] = tool_info(tool).task
        rows.append({**named, **measure_tool(tool, crops, seed, params)})
    return rows


def appended(
    report: dict[str, Any], variants: Sequence[str], params: Sequence[str], per_photo: int
) -> dict[str, Any]:
    """``report`` with the variants' rows added, measured on the report's own crops.

    The crops are cut again from the report's images with its seed, ``per_photo`` of each
    photo (the report's own ``per_photo`` where it has one).

    Raises:
        ValueError: those crops are not as many as the report's, or a variant's label is one
            the report has already.
    """
    per_photo = int(report.get("per_photo", per_photo))
    labels = [parse_variant(v)[0] for v in variants] + [parse_params(v)[0] for v in params]
    taken = sorted({r["variant"] for r in report["rows"] if "variant" in r} & set(labels))
    if taken or len(set(labels)) < len(labels):
        raise ValueError(f"variant labels already in the report or given twice: {taken or labels}")
    crops = _crops(report["images"], per_photo, report["seed"])
    if len(crops) != report["crops"]:
        raise ValueError(
            f"{per_photo} crops per photo of {report['images']} make {len(crops)} crops, the "
            f"report has {report['crops']}: give --crops as when it was measured"
        )
    rows = report["rows"] + variant_rows(variants, params, crops, report["seed"])
    return {**report, "per_photo": per_photo, "rows": rows}


def parse_params(text: str) -> tuple[str, str, dict[str, float]]:
    """``LABEL=TOOL:KEY=VALUE[,KEY=VALUE]`` -> (label, tool, parameters), checked by the tool.

    Raises:
        ValueError: the text is not of that form, the tool is unknown or a value is invalid.
    """
    from tir_env.errors import TIRError
    from tir_env.tools import make_tool

    label, sep, rest = text.partition("=")
    tool, sep2, pairs = rest.partition(":")
    if not (sep and sep2 and label and tool and pairs):
        raise ValueError(f"{text!r}: give a variant as LABEL=TOOL:KEY=VALUE[,KEY=VALUE]")
    try:
        given = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in pairs.split(","))}
    except ValueError as error:
        raise ValueError(f"{text!r}: give parameters as KEY=VALUE[,KEY=VALUE] ({error})") from None
    try:
        resolved = make_tool(tool).resolve(given)
    except TIRError as error:
        raise ValueError(f"{text!r}: {error}") from None
    params = {k: float(resolved[k]) for k in given}  # as the tool runs them (integers rounded)
    return label, tool, params


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
        "given one single degradation"
        + (
            " (rounded to 8 bits, as the env rounds an episode's input)"
            if report.get("rounded")
            else ""
        )
        + "; each tool runs once with its default parameters.",
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
    kept = next(
        (
            r
            for r in report["rows"]
            if r.get("variant") and "params" not in r and r["task"] == "dehazing"
        ),
        None,
    )
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
                f"right one ({shipped['haze']:+.2f} before; the row so marked). In place of the",
                "shipped one, on",
                "the val photos' crops, `fixed` changes by",
                f"{change['fixed']:+.2f} dB and `exhaustive` by {change['exhaustive']:+.2f}",
                "(mean over the five crop suites): within noise, so it is not shipped. A false",
                "call still costs it several dB; a tool that leaves a haze-free image alone",
                "would need to read haze as well as perception does.",
            ),
            "",
        ]
    return lines + _param_lines(report, own, others)


def _param_lines(report: dict[str, Any], own: dict[str, str], others: list[str]) -> list[str]:
    """A sentence per ``--params`` row: what the parameters change against the defaults."""
    from benchmarks.perception_blind import textwrap_join as wrap

    lines = []
    plain = {r["tool"]: r for r in report["rows"] if "variant" not in r}
    for row in (r for r in report["rows"] if "params" in r and r["tool"] in plain):
        base, mine = plain[row["tool"]], own[row["task"]]
        given = ", ".join(f"{k}={v:g}" for k, v in row["params"].items())
        lines += [
            wrap(
                f"`{row['tool']}` with `{given}`: a right call gains {row[mine]:+.2f} dB",
                f"({base[mine]:+.2f} with the defaults), a false call costs",
                f"{-_false_mean(row, own, others):.2f} on average",
                f"({-_false_mean(base, own, others):.2f}), and a clean crop keeps",
                f"{row[CLEAN]:.1f} dB ({base[CLEAN]:.1f}).",
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
    p.add_argument(
        "--params", action="append", default=[], metavar="LABEL=TOOL:KEY=VALUE[,KEY=VALUE]"
    )
    p.add_argument(
        "--append", action="store_true", help="measure only the variants; add them to the report"
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out-json", default=str(OUT_JSON))
    p.add_argument("--out-md", default="docs/tools.md", help="'' to print only")
    p.add_argument("--doc-only", action="store_true", help="rewrite the section from the JSON")
    args = p.parse_args(argv)
    try:
        for variant in args.variant:
            parse_variant(variant)
        for variant in args.params:
            parse_params(variant)
    except ValueError as error:
        p.error(str(error))
    if args.append and not (args.variant or args.params):
        p.error("--append needs a --variant or --params to measure")
    if args.append and not Path(args.out_json).is_file():
        p.error(f"--append: no stored report {args.out_json} (measure one without --append)")

    def run() -> dict[str, Any]:
        import torch

        torch.set_num_threads(args.threads)
        if args.append:
            stored = json.loads(Path(args.out_json).read_text())
            try:
                return appended(stored, args.variant, args.params, args.crops)
            except ValueError as error:
                p.error(str(error))
        tools = args.tools or default_tools()
        return measure(tools, args.variant, args.images, args.crops, args.seed, args.params)

    return stored_or_measured(args.out_json, args.out_md, args.doc_only, run, section, (START, END))


if __name__ == "__main__":
    main()
