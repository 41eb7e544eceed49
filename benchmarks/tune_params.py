"""Fit the preferred tools' parameters to the protocol's degradations, on training photos.

Each task's preferred tool runs at its declared defaults, which come from the literature
(AgenticIR's gamma 1.5, He et al.'s omega 0.95, ...), not from the degradations the suites
draw. This script measures, on the suites' episodes of the corpus' train photos, which value
of a tool's parameter ends a plan closest to the clean photo, one parameter of one tool at a
time with the others where they start. The plan is ``fixed``'s (``--plan perceived``, the
default: each fold's photos perceived by the networks trained without them, so the plans hold
the wrong tools perception really calls) or the oracle's (``--plan oracle``: the true
degradations' tools). Of the values whose mean gain over the start, paired by episode, is more
than twice its standard error and at least 0.05 dB, the one that gains most replaces it; the
error is taken over photos (each photo's mean gain), since the episodes of one photo are not
independent. ``--round 2 --start TABLE`` varies :data:`GRIDS_2` around a first-round table.

The table it writes (``agents/tuned_params.json``) is what ``fixed``, ``exhaustive`` and
``greedy`` run their prior plan with (``params="tuned"``, :mod:`agents.tuned`); the tools'
own defaults, ``oracle`` and ``exhaustive-ref`` stay as published.

Example (the fold networks first: ``python -m benchmarks.perception_cv --variant
p40kq=pair:profile40k,base --out runs/cv``)::

    OMP_NUM_THREADS=1 python -m benchmarks.tune_params --plan perceived --cv runs/cv \
        --variant p40kq --out agents/tuned_params.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from agents.tuned import tuned_params
from tir_env.errors import WeightsNotFoundError
from tir_env.files import refuse_existing, write_text_atomic
from tir_env.types import ToolCall

#: (preferred tool, parameter) -> the values tried (the declared default among them): the
#: first round, each tool's main parameter.
GRIDS: dict[tuple[str, str], tuple[float, ...]] = {
    ("dct_denoise", "strength"): (0.75, 1.0, 1.25, 1.5),
    ("jpeg_tv", "weight"): (0.008, 0.012, 0.018, 0.026, 0.036, 0.05),
    ("gamma_correction", "gamma"): (1.3, 1.5, 1.7, 1.9, 2.1),
    ("dark_channel_prior", "omega"): (0.7, 0.75, 0.8, 0.85, 0.9, 0.95),
    ("motion_wiener_blind", "snr_db"): (20.0, 25.0, 30.0, 35.0, 40.0),
    ("defocus_wiener", "snr_db"): (25.0, 30.0, 35.0, 40.0, 45.0),
    ("derain_opening", "width"): (7.0, 9.0, 11.0, 13.0, 15.0),
}
#: The second round (``--round 2 --start TABLE``): past the first grid's edges, and the
#: tools' other parameters, each varied around the first round's table.
GRIDS_2: dict[tuple[str, str], tuple[float, ...]] = {
    ("jpeg_tv", "weight"): (0.036, 0.05, 0.07, 0.1),
    ("jpeg_tv", "chroma_radius"): (0.0, 3.0, 6.0, 10.0),
    ("dct_denoise", "strength"): (1.0, 1.25, 1.5),
    ("dark_channel_prior", "t0"): (0.1, 0.15, 0.2, 0.3),
    ("dark_channel_prior", "patch"): (5.0, 9.0, 15.0),
    ("derain_opening", "length"): (1.0, 3.0, 5.0, 9.0),
    ("back_projection_x4", "iterations"): (5.0, 10.0, 20.0),
}
SUITES = ("mio-a", "mio-b", "mio-c", "ood-d2", "ood-d3")
#: A value replaces the default when its paired gain exceeds this many standard errors...
MIN_Z = 2.0
#: ... and this many dB (smaller gains are not worth departing from the published value).
MIN_GAIN = 0.05


def started(plan: Sequence[ToolCall], start: Mapping[str, Mapping[str, float]]) -> list[ToolCall]:
    """``plan`` with each call at its tool's ``start`` values (tool -> parameters)."""
    return [ToolCall(c.tool, start.get(c.tool, {})) for c in plan]


def run_plan(env: Any, plan: Sequence[ToolCall]) -> float:
    """PSNR to the clean patch after ``plan`` from the episode's input (pool-cached prefixes)."""
    image = env.current_batch()
    for call in plan:
        out = env.lookahead(image, [call])[0]
        image = image if out is None else out
    return float(env.score(image, ("psnr",))["psnr"])


def played(episodes: Sequence[tuple[Any, Any]], images: str) -> Iterator[tuple[Any, Any, Any]]:
    """``(suite, spec, env)`` per episode, the env reset to it (one PSNR-only env per suite)."""
    from tir_env.env import TIREnv

    envs: dict[str, TIREnv] = {}
    for suite, spec in tqdm(episodes, desc=f"episodes of {images}", unit="ep"):
        if suite.name not in envs:
            envs[suite.name] = TIREnv(**{**suite.env_kwargs(images), "metrics": ("psnr",)})
        env = envs[suite.name]
        env.reset(
            seed=spec.seed, options={"image_id": spec.image_id, "degradations": spec.degradations}
        )
        yield suite, spec, env


def start_value(call: ToolCall, param: str) -> float:
    """The value ``call`` runs ``param`` with: its own, else the tool's declared default."""
    from tir_env.tools.base import tool_info

    return float(call.params.get(param, tool_info(call.tool).params[param].default))


def episode_rows(
    env: Any, plan: list[ToolCall], grids: Mapping[tuple[str, str], tuple[float, ...]]
) -> list[dict[str, Any]]:
    """Final PSNR of ``plan`` with each tunable parameter of a call at each value of its grid.

    The call's own value (the start) is always among those tried.
    """
    rows = []
    for i, call in enumerate(plan):
        for (tool, param), grid in grids.items():
            if tool != call.tool:
                continue
            start, psnr = start_value(call, param), {}
            for value in sorted({*grid, start}):
                varied = ToolCall(call.tool, {**call.params, param: value})
                psnr[value] = run_plan(env, [*plan[:i], varied, *plan[i + 1 :]])
            rows.append({"tool": tool, "param": param, "start": start, "psnr": psnr})
    return rows


def collect(
    images: str,
    suites: Sequence[str],
    stride: int,
    plan: str = "oracle",
    grids: Mapping[tuple[str, str], tuple[float, ...]] = GRIDS,
    start: Mapping[str, Mapping[str, float]] | None = None,
    context: str = "any",
) -> list[dict[str, Any]]:
    """The grid rows of every ``stride``-th episode of ``suites`` on ``images``.

    ``plan``: ``oracle`` (the true degradations' tools) or ``perceived`` (``fixed``'s plan
    with the perception network loaded); each tool starts at its ``start`` values (tool ->
    parameters; the declared defaults elsewhere). ``context``: ``alone`` keeps only the
    episodes whose plan is one call (what :func:`agents.tuned.alone_params` is fitted on).
    """
    start = start or {}
    from agents.baselines import oracle_plan, prior_plan, tasks_at
    from benchmarks.perception_cv import fold_episodes

    rows: list[dict[str, Any]] = []
    for suite, spec, env in played(fold_episodes(images, suites)[::stride], images):
        seen = perceive(env)
        if plan == "oracle":  # the true degradations' tools
            calls = oracle_plan(spec.degradations, env.tools)
        else:  # fixed's: the perceived tasks' tools
            tasks = None if seen is None else tasks_at(seen.probs, seen.thresholds)
            calls = prior_plan(tasks, env.tools, env.config.max_steps)
        if context == "alone" and len(calls) != 1:
            continue
        calls = started(calls, start)
        for row in episode_rows(env, calls, grids):
            # what perception read of the tool's own type: a severity-dependent value's data
            severity = None if seen is None else seen.severity.get(type_of(row["tool"]))
            rows.append(
                {
                    "suite": suite.name,
                    "image": spec.image_id,
                    "calls": len(calls),
                    "severity": severity,
                    **row,
                }
            )
    return rows


def perceive(env: Any) -> Any:
    """Perception's reading of ``env``'s input (``None`` without its weights)."""
    from tir_env import perception

    if not perception.available():
        return None
    image, size = env.perception_input()
    return perception.perceive_photo(image, size)


@functools.cache
def type_of(tool: str) -> str | None:
    """The AgenticIR degradation ``tool``'s task removes (``None``: none of them)."""
    from agents.plan_table import degradations_of_tasks
    from tir_env.tools.base import tool_info

    names = degradations_of_tasks([tool_info(tool).task])
    return names[0] if names else None


def collect_out_of_fold(
    images: str,
    suites: Sequence[str],
    stride: int,
    cv: Path,
    variant: str,
    folds: int,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`collect` of ``fixed``'s perceived plans, every fold read out of fold.

    Fold ``k``'s photos are perceived by the networks trained without them
    (``benchmarks.perception_cv``'s fold networks of ``variant`` in ``cv``).
    """
    from benchmarks.perception_cv import fold_dir, use_fold_networks

    missing = [k for k in range(folds) if not fold_dir(cv, variant, k).is_dir()]
    if missing:
        raise WeightsNotFoundError(
            f"no fold networks of {variant!r} in {cv} (folds {missing}); train them with "
            f"`python -m benchmarks.perception_cv --variant {variant}=TRAIN_ARGS --out {cv}` "
            "(docs/perception.md), or fit on the oracle's plans with --plan oracle"
        )
    rows: list[dict[str, Any]] = []
    try:
        for k in range(folds):
            use_fold_networks(cv, variant, k)
            rows += collect(f"{images}[{k}/{folds}]", suites, stride, plan="perceived", **kwargs)
    finally:
        use_fold_networks(cv, variant, None)
    return rows


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per (tool, parameter): each value's mean PSNR and paired gain over its start value.

    Keyed ``TOOL.PARAM``; ``default`` is the start value (the declared default in the first
    round), ``chosen`` the value the rule picks (:data:`MIN_Z`, :data:`MIN_GAIN`).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["tool"], row["param"]), []).append(row)
    out: dict[str, Any] = {}
    for (tool, param), mine in groups.items():
        photos = [r["image"] for r in mine]
        start = mine[0]["start"]
        values = []
        for value in mine[0]["psnr"]:
            diffs = [r["psnr"][value] - r["psnr"][r["start"]] for r in mine]
            values.append(
                {
                    "value": value,
                    "psnr": statistics.fmean(r["psnr"][value] for r in mine),
                    "gain": statistics.fmean(diffs),
                    "se": photo_se(diffs, photos),
                }
            )
        passing = [v for v in values if v["gain"] > max(MIN_Z * v["se"], MIN_GAIN)]
        chosen = max(passing, key=lambda v: v["gain"])["value"] if passing else start
        out[f"{tool}.{param}"] = {
            "tool": tool,
            "param": param,
            "default": start,
            "chosen": chosen,
            "n": len(mine),
            "photos": len(set(photos)),
            "values": values,
        }
    return out


def photo_se(diffs: Sequence[float], photos: Sequence[str]) -> float:
    """Standard error of the mean of ``diffs`` over photos (each photo's mean is one sample)."""
    by_photo: dict[str, list[float]] = {}
    for d, photo in zip(diffs, photos, strict=True):
        by_photo.setdefault(photo, []).append(d)
    means = [statistics.fmean(v) for v in by_photo.values()]
    return statistics.stdev(means) / math.sqrt(len(means)) if len(means) > 1 else math.inf


def params_table(
    choices: dict[str, Any], start: Mapping[str, Mapping[str, float]] | None = None
) -> dict[str, dict[str, float]]:
    """Tool -> the parameters that differ from its declared defaults (what the agents run).

    ``start`` (a previous table) updated with every choice.
    """
    from tir_env.tools.base import tool_info

    table = {tool: dict(params) for tool, params in (start or {}).items()}
    for c in choices.values():
        table.setdefault(c["tool"], {})[c["param"]] = c["chosen"]
    return {
        tool: kept
        for tool, params in table.items()
        if (kept := {k: v for k, v in params.items() if v != tool_info(tool).params[k].default})
    }


def alone_report(
    start_file: Path,
    command: str,
    rule: str,
    choices: dict[str, Any],
    start: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """The ``start_file`` table with its ``alone`` section (and how it was fitted) set.

    The section holds, for each tool fitted alone, its values there: the pooled ones with
    the alone choice over them, written even where it is the declared default (an absent
    tool runs its pooled values), so a tool whose alone value is its pooled one reads the
    same either way.
    """
    report = json.loads(start_file.read_text())
    alone: dict[str, dict[str, float]] = {}
    for c in choices.values():
        alone.setdefault(c["tool"], dict(start.get(c["tool"], {})))[c["param"]] = c["chosen"]
    report.update(
        alone=alone,
        alone_command=command,
        alone_rule=f"plans of one call only; {rule}",
        alone_tools=choices,
    )
    return report


def alone_markdown_table(paths: Sequence[Path]) -> list[str]:
    """:func:`markdown_table` of the tables' ``alone`` fits (``--context alone``)."""
    return markdown_table(paths, "alone_tools")


def markdown_table(paths: Sequence[Path], section: str = "tools") -> list[str]:
    """The fitted parameters of each committed table, one row per tool (for gen_docs).

    Each value tried shows its mean gain over the default in dB (the standard error over
    photos in brackets); the chosen value is in bold. ``section``: the fit to show
    (``alone_tools``: the plans of one call).
    """
    lines = [
        "| tool | parameter | default | fitted | episodes | mean gain over the default, dB (se) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for path in paths:
        for key, c in json.loads(path.read_text())[section].items():
            tool = c.get("tool", key)
            tried = ", ".join(
                (
                    f"**{v['value']:g}: {v['gain']:+.2f}**"
                    if v["value"] == c["chosen"]
                    else f"{v['value']:g}: {v['gain']:+.2f}"
                )
                + ("" if v["value"] == c["default"] else f" ({v['se']:.2f})")
                for v in c["values"]
            )
            lines.append(
                f"| `{tool}` | {c['param']} | {c['default']:g} | {c['chosen']:g} | {c['n']} | "
                f"{tried} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="corpus:train@2", help="training photos only")
    parser.add_argument("--suites", nargs="+", default=list(SUITES))
    parser.add_argument("--stride", type=int, default=1, help="every k-th episode")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("agents/tuned_params.json"),
        help="the table to write (never overwritten: the default is the shipped table, delete "
        "it to replace it)",
    )
    parser.add_argument(
        "--plan",
        choices=("oracle", "perceived"),
        default="perceived",
        help="vary the oracle's plan, or fixed's perceived plan read out of fold (--cv)",
    )
    parser.add_argument("--cv", type=Path, default=Path("runs/cv"), help="fold networks")
    parser.add_argument("--variant", default="p40kq", help="perception_cv variant in --cv")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument(
        "--round",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: each tool's main parameter from the declared defaults; 2: the grids of "
        "GRIDS_2 around --start",
    )
    parser.add_argument(
        "--start", type=Path, help="the table to start from (round 2, --context alone)"
    )
    parser.add_argument(
        "--context",
        choices=("any", "alone"),
        default="any",
        help="any: every plan; alone: only plans of one call, fitting the --start table's "
        "'alone' section (the values a plan of that one call runs; the rest of the table is "
        "copied unchanged)",
    )
    parser.add_argument(
        "--rows", type=Path, help="also write every grid row here (JSON), for studies of them"
    )
    args = parser.parse_args(argv)
    if args.context == "alone" and args.start is None:
        parser.error("--context alone fits a section of a table: give it as --start")
    refuse_existing(parser, args.out, args.rows)  # before the minutes of play, not after
    torch.set_num_threads(1)
    start = tuned_params(args.start) if args.start else {}
    grids = GRIDS if args.round == 1 else GRIDS_2
    kwargs: dict[str, Any] = {"grids": grids, "start": start, "context": args.context}
    if args.plan == "oracle":
        rows = collect(args.images, args.suites, args.stride, **kwargs)
    else:
        rows = collect_out_of_fold(
            args.images, args.suites, args.stride, args.cv, args.variant, args.folds, **kwargs
        )
    if args.rows:
        write_text_atomic(args.rows, json.dumps(rows) + "\n")
    choices = choose(rows)
    command = (
        f"python -m benchmarks.tune_params --images {args.images} "
        f"--suites {' '.join(args.suites)} --stride {args.stride} --plan {args.plan}"
        + (
            f" --cv {args.cv} --variant {args.variant} --folds {args.folds}"
            * (args.plan != "oracle")
        )
        + f" --round {args.round}"
        + (f" --start {args.start}" if args.start else "")
        + (f" --context {args.context}" if args.context != "any" else "")
    )
    rule = (
        f"{args.plan} plan, one tool varied at a time; the value gaining most of those "
        f"whose paired gain > {MIN_Z:g} standard errors (over photos) and >= {MIN_GAIN:g} dB"
    )
    if args.context == "alone":
        report = alone_report(args.start, command, rule, choices, start)
    else:
        report = {
            "command": command,
            "images": args.images,
            "plan": args.plan,
            "rule": rule,
            "start": {tool: dict(p) for tool, p in start.items()},
            "params": params_table(choices, start),
            "tools": choices,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(args.out)
    for key, c in choices.items():
        best = max(c["values"], key=lambda v: v["gain"])
        print(
            f"{key:32s} start {c['default']:g} -> {c['chosen']:g} "
            f"(best {best['value']:g}: {best['gain']:+.3f} dB, se {best['se']:.3f}, n {c['n']})"
        )


if __name__ == "__main__":
    main()
