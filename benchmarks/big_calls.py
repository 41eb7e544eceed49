r"""Where one agent beats or loses to another by a lot: which tasks made the difference.

``benchmarks.heldout_rounds`` gives paired differences per suite; on the crop suites most of
`exhaustive`'s lead over `fixed` comes from few episodes that differ by 5 dB or more, where
one agent made a darkness or haze call the other did not. This replays those episodes (a
``heldout_rounds`` result names them: suite, photo, seed) with both agents, reads the tasks
each called, and groups the episodes by how the task sets differ (``+dehazing``: only the
first agent called a dehazing tool), by set of photos and by sign, with the summed PSNR
difference: which of the first agent's extra calls pay and which cost.

Usage::

    python -m benchmarks.big_calls benchmarks/results/heldout_rounds/test9.json \
        --a exhaustive --b fixed --json benchmarks/results/heldout_rounds/big_calls_test9.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.heldout_rounds import shipped
from tir_env.files import write_text_atomic


def big_episodes(result: dict[str, Any], a: str, b: str, above: float) -> list[dict[str, Any]]:
    """The episodes where ``a`` and ``b`` end more than ``above`` dB apart (``a - b``)."""
    out = []
    for x, y in zip(result["episodes"][a], result["episodes"][b], strict=True):
        if (x["suite"], x["image"], x["seed"]) != (y["suite"], y["image"], y["seed"]):
            raise ValueError(f"{a}'s and {b}'s runs are not the same episodes")
        if abs(x["output"] - y["output"]) > above:
            out.append(
                {**{k: x[k] for k in ("suite", "image", "seed")}, "diff": x["output"] - y["output"]}
            )
    return out


def tasks_called(record: dict[str, Any]) -> set[str]:
    """The tasks of the tools an episode's record called."""
    from tir_env.tools import tool_info

    return {tool_info(action["tool"]).task for action in record["actions"] if action}


def replay(
    big: list[dict[str, Any]], agents: Sequence[str], images: str, limit: int, rounds: Sequence[int]
) -> dict[tuple[str, int], dict[str, set[str]]]:
    """Each big episode's tasks per agent, the episodes rebuilt as heldout_rounds built them."""
    from benchmarks.heldout_rounds import held_out_episodes
    from benchmarks.perception_cv import agent_records

    wanted = {(e["suite"], e["seed"]) for e in big}
    suites = sorted({e["suite"] for e in big})
    episodes = [
        (suite, spec)
        for suite, spec in held_out_episodes(images, limit, suites, *rounds)
        if (suite.name, spec.seed) in wanted
    ]
    calls: dict[tuple[str, int], dict[str, set[str]]] = defaultdict(dict)
    for agent in agents:
        for record in agent_records(agent, episodes, images):
            calls[(record["suite"], record["seed"])][agent] = tasks_called(record)
    return calls


def summarise(
    big: list[dict[str, Any]], calls: dict[tuple[str, int], dict[str, set[str]]], a: str, b: str
) -> list[dict[str, Any]]:
    """Episodes grouped by how ``a``'s tasks differ from ``b``'s, set of photos and sign."""
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for e in big:
        mine, theirs = calls[(e["suite"], e["seed"])][a], calls[(e["suite"], e["seed"])][b]
        change = ", ".join(
            sorted([f"+{t}" for t in mine - theirs] + [f"-{t}" for t in theirs - mine])
        )
        photos = "bundled" if shipped(e["image"]) else "corpus-only"
        groups[(change or "same tasks", photos, "gain" if e["diff"] > 0 else "loss")].append(
            e["diff"]
        )
    rows = [
        {"change": c, "photos": p, "sign": s, "episodes": len(d), "sum_db": sum(d)}
        for (c, p, s), d in groups.items()
    ]
    return sorted(rows, key=lambda r: (r["photos"], r["change"], r["sign"]))


def markdown(result: dict[str, Any]) -> list[str]:
    """The table: per change of tasks and set of photos, episodes and summed dB each way."""
    a, b = result["a"], result["b"]
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for r in result["rows"]:
        entry = merged.setdefault((r["photos"], r["change"]), {"gain": (0, 0.0), "loss": (0, 0.0)})
        entry[r["sign"]] = (r["episodes"], r["sum_db"])
    lines = [
        f"| photos | `{a}`'s tasks against `{b}`'s | episodes `{a}` gains | dB | "
        f"episodes `{a}` loses | dB | net dB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (photos, change), e in sorted(merged.items(), key=lambda kv: kv[0]):
        (ng, g), (nl, lost) = e["gain"], e["loss"]
        lines.append(
            f"| {photos} | {change} | {ng} | {g:+.1f} | {nl} | {lost:+.1f} | {g + lost:+.1f} |"
        )
    total = sum(r["sum_db"] for r in result["rows"])
    lines += [
        "",
        f"{len(result['episodes'])} of {result['of']} episodes differ by more than "
        f"{result['above']:g} dB; they sum to {total:+.1f} dB of `{a}` minus `{b}`, against "
        f"{result['total_db']:+.1f} over every episode. `+task`: only `{a}` called it; `-task`: "
        f"only `{b}` did.",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Replay the big episodes of a heldout_rounds result; print and write the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("rounds", type=Path, help="a benchmarks.heldout_rounds result")
    parser.add_argument("--a", default="exhaustive")
    parser.add_argument("--b", default="fixed")
    parser.add_argument("--above", type=float, default=5.0, help="dB apart to count as big")
    parser.add_argument("--json", type=Path, required=True, help="refuses to overwrite")
    args = parser.parse_args(argv)
    if args.json.exists():
        parser.error(f"{args.json} exists; choose another path or delete it first")
    result = json.loads(args.rounds.read_text())
    for agent in (args.a, args.b):
        if agent not in result["episodes"]:
            parser.error(f"{args.rounds} has no run of {agent!r}")
    big = big_episodes(result, args.a, args.b, args.above)
    calls = replay(big, (args.a, args.b), result["images"], result["limit"], result["rounds"])
    rows_a, rows_b = result["episodes"][args.a], result["episodes"][args.b]
    out = {
        "command": "python -m benchmarks.big_calls "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "a": args.a,
        "b": args.b,
        "above": args.above,
        "of": len(rows_a),
        "total_db": sum(x["output"] - y["output"] for x, y in zip(rows_a, rows_b, strict=True)),
        "episodes": big,
        "rows": summarise(big, calls, args.a, args.b),
    }
    print("\n".join(markdown(out)))
    write_text_atomic(args.json, json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
