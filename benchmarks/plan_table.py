"""Fit oracle's plan per combination of degradations, on the suites' episodes of train photos.

``oracle`` removes each true degradation with its task's preferred tool at its declared
defaults, last-applied first. That is one plan for every combination, fitted to none. This
script measures, on the episodes of train photos, every plan of one catalogue preset per
true task in every order (the wide catalogue, :data:`agents.ppo.catalogue.WIDE_PRESETS`), and
keeps per combination the plan with the highest mean PSNR, when its gain over oracle's plan,
paired by episode and averaged per photo, is more than :data:`MIN_Z` standard errors (over
photos: the episodes of one photo are not independent) and at least :data:`MIN_GAIN` dB;
otherwise oracle's plan stays. The table (``agents/plan_table.json``) is what
``oracle.plans=table`` runs and what ``tir experts collect --expert oracle-table`` and its
DAgger rounds teach (:mod:`agents.plan_table`).

Triples have up to 6 x 5^3 plans, so they are fitted in a second pass over fewer presets:
``--presets-from TABLE`` keeps, per task, the presets of TABLE's fitted plans and oracle's
tool, and ``--merge TABLE`` writes the new fits into TABLE beside its own.

Example::

    OMP_NUM_THREADS=1 python -m benchmarks.plan_table --images corpus:train@2 \
        --suites single mio-a mio-b ood-d2 --out agents/plan_table.json
    OMP_NUM_THREADS=1 python -m benchmarks.plan_table --images corpus:train@2 \
        --suites mio-c ood-d3 --max-size 3 --presets-from agents/plan_table.json \
        --merge agents/plan_table.json --out agents/plan_table.json
    python -m benchmarks.plan_table --doc agents/plan_table.json   # the markdown table
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agents.plan_table import combo_key
from agents.ppo.catalogue import WIDE_PRESETS
from benchmarks.tune_params import played, run_plan
from tir_env.degradations import make_degradation
from tir_env.files import write_text_atomic
from tir_env.tools.base import tool_info
from tir_env.types import ToolCall

#: A plan replaces oracle's when its paired gain exceeds this many standard errors...
MIN_Z = 2.0
#: ... and this many dB.
MIN_GAIN = 0.05
#: The most degradations a fitted combination holds (``--max-size``).
MAX_FITTED = 2
ORACLE = "oracle"


def plan_name(plan: Sequence[ToolCall]) -> str:
    """A plan as text: ``tool(k=v) > tool()``."""
    return " > ".join(str(call) for call in plan)


def candidate_plans(
    degradations: Sequence[str], catalogue: Sequence[ToolCall] = WIDE_PRESETS
) -> list[tuple[ToolCall, ...]]:
    """Every plan of one ``catalogue`` preset per true degradation's task, in every order."""
    by_task: dict[str, list[ToolCall]] = defaultdict(list)
    for call in catalogue:
        by_task[tool_info(call.tool).task].append(call)
    tasks = [make_degradation(name).info.task for name in degradations]
    plans: dict[tuple[ToolCall, ...], None] = {}
    for choice in itertools.product(*(by_task[task] for task in tasks)):
        for order in itertools.permutations(choice):
            plans[order] = None
    return list(plans)


def collect(
    images: str,
    suites: Sequence[str],
    stride: int = 1,
    max_size: int = MAX_FITTED,
    catalogue: Sequence[ToolCall] = WIDE_PRESETS,
) -> list[dict[str, Any]]:
    """Per episode of ``suites`` on ``images`` (every ``stride``-th): each plan's final PSNR.

    Combinations of more than ``max_size`` degradations are skipped; the plans are
    :func:`candidate_plans` of ``catalogue``.
    """
    from agents.baselines import oracle_plan
    from benchmarks.suites import protocol_suite

    episodes = [
        (suite, spec)
        for suite in map(protocol_suite, suites)
        for spec in suite.episodes(images)
        if len(spec.degradations) <= max_size
    ][::stride]
    rows = []
    for _, spec, env in played(episodes, images):
        plans = candidate_plans(spec.degradations, catalogue)
        psnr = {plan_name(p): run_plan(env, list(p)) for p in plans}
        psnr[ORACLE] = run_plan(env, oracle_plan(spec.degradations, env.tools))
        rows.append({"combo": combo_key(spec.degradations), "image": spec.image_id, "psnr": psnr})
    return rows


def presets_from(path: Path) -> tuple[ToolCall, ...]:
    """The presets of ``path``'s fitted plans, and each task's oracle tool (its defaults)."""
    from agents.baselines import preferred_tool
    from agents.plan_table import plan_table
    from tir_env.tools.base import tool_names
    from tir_env.types import TASKS

    tools = tuple(tool_names())
    calls = [call for plan in plan_table(path).values() for call in plan]
    calls += [ToolCall(t) for t in (preferred_tool(task, tools) for task in TASKS) if t]
    return tuple(dict.fromkeys(c for c in calls if c in WIDE_PRESETS))


def _photo_gains(rows: Sequence[dict[str, Any]], plan: str) -> list[float]:
    """Per photo, the mean PSNR gain of ``plan`` over oracle's plan on its episodes."""
    by_photo: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        by_photo[row["image"]].append(row["psnr"][plan] - row["psnr"][ORACLE])
    return [statistics.fmean(v) for v in by_photo.values()]


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per combination: oracle's and the best plan's mean PSNR, the paired gain, the choice."""
    by_combo: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_combo[row["combo"]].append(row)
    out = {}
    for combo, mine in sorted(by_combo.items()):
        means = {p: statistics.fmean(r["psnr"][p] for r in mine) for p in mine[0]["psnr"]}
        best = max((p for p in means if p != ORACLE), key=means.__getitem__)
        gains = _photo_gains(mine, best)
        gain = statistics.fmean(gains)
        se = statistics.stdev(gains) / math.sqrt(len(gains)) if len(gains) > 1 else math.inf
        chosen = gain >= MIN_GAIN and gain > MIN_Z * se
        out[combo] = {
            "episodes": len(mine),
            "photos": len(gains),
            "oracle_psnr": means[ORACLE],
            "best": best,
            "best_psnr": means[best],
            "gain": gain,
            "se": se,
            "chosen": best if chosen else ORACLE,
        }
    return out


def table(fits: dict[str, dict[str, Any]], command: str, images: str) -> dict[str, Any]:
    """The JSON :mod:`agents.plan_table` reads: the chosen plans, and how each was chosen."""
    plans = {}
    for combo, fit in fits.items():
        if fit["chosen"] != ORACLE:
            plans[combo] = [c.to_dict() for c in _parse(fit["best"])]
    return {
        "command": command,
        "images": images,
        "catalogue": "wide",
        "rule": (
            f"per combination, the best plan by mean PSNR replaces oracle's when its gain, "
            f"paired by episode and averaged per photo, is > {MIN_Z:g} standard errors and "
            f">= {MIN_GAIN:g} dB"
        ),
        "plans": plans,
        "fits": fits,
    }


def merged(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``new``'s fits and plans added (``new`` wins on a shared combination).

    The command becomes both commands, joined by ``;``.
    """
    return {
        **base,
        "command": f"{base['command']}; {new['command']}",
        "plans": {**base["plans"], **new["plans"]},
        "fits": {**base["fits"], **new["fits"]},
    }


def _parse(name: str) -> list[ToolCall]:
    """Inverse of :func:`plan_name` for the candidate plans (their presets' text)."""
    by_text = {str(call): call for call in WIDE_PRESETS}
    return [by_text[text] for text in name.split(" > ")]


def markdown_table(paths: Sequence[Path]) -> list[str]:
    """Per combination of each table: oracle's PSNR, the best plan, its gain, which one runs.

    For gen_docs (``<!-- plan-table: agents/plan_table.json -->``): one line per row.
    """
    lines = [
        "| combination | episodes | photos | `oracle` PSNR | best plan | gain (dB) | se | runs |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for path in paths:
        for combo, fit in json.loads(path.read_text())["fits"].items():
            runs = "`oracle`'s plan" if fit["chosen"] == ORACLE else "the best plan"
            lines.append(
                f"| {combo} | {fit['episodes']} | {fit['photos']} | {fit['oracle_psnr']:.2f} | "
                f"`{fit['best']}` | {fit['gain']:+.2f} | {fit['se']:.2f} | {runs} |"
            )
    return lines


def doc(path: Path) -> str:
    """Markdown: how the table was fitted, then :func:`markdown_table`."""
    data = json.loads(path.read_text())
    head = [f"Fitted by `{data['command']}`; rule: {data['rule']}.", ""]
    return "\n".join(head + markdown_table([path])) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Fit and write the table, or print its doc (``--doc``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan_table", description=__doc__)
    parser.add_argument("--images", default="corpus:train@2")
    parser.add_argument("--suites", nargs="+", default=["single", "mio-a", "mio-b", "ood-d2"])
    parser.add_argument("--stride", type=int, default=1, help="every stride-th episode")
    parser.add_argument("--out", type=Path, default=Path("agents/plan_table.json"))
    parser.add_argument("--rows", type=Path, help="also write every episode's PSNRs here")
    parser.add_argument("--doc", type=Path, help="print this table's markdown and exit")
    parser.add_argument("--max-size", type=int, default=MAX_FITTED, help="most degradations")
    parser.add_argument("--presets-from", type=Path, help="only this table's presets per task")
    parser.add_argument("--merge", type=Path, help="add the fits to this table's own")
    args = parser.parse_args(argv)
    if args.doc is not None:
        sys.stdout.write(doc(args.doc))
        return 0
    torch.set_num_threads(1)
    catalogue = WIDE_PRESETS if args.presets_from is None else presets_from(args.presets_from)
    rows = collect(args.images, args.suites, args.stride, args.max_size, catalogue)
    if args.rows is not None:
        write_text_atomic(args.rows, json.dumps(rows) + "\n")
    flags = [("images", args.images), ("suites", args.suites), ("stride", args.stride)]
    flags += [("max-size", args.max_size)] if args.max_size != MAX_FITTED else []
    flags += [("presets-from", args.presets_from)] if args.presets_from else []
    command = "python -m benchmarks.plan_table " + " ".join(
        f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in flags
    )
    data = table(choose(rows), command, args.images)
    if args.merge is not None:
        data = merged(json.loads(args.merge.read_text()), data)
    write_text_atomic(args.out, json.dumps(data, indent=1) + "\n")
    print(doc(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
