r"""The held-out comparisons on more episodes: every agent on several rounds of each suite.

The held-out records (docs/heldout.md) hold one round of each suite on the five corpus test
photos that do not ship with the repo: 20-80 episodes a suite, where one darkness or haze call
moves an episode by 6-20 dB, so "`exhaustive` ends above `fixed`" can turn on two episodes.
Round ``k`` of a suite (:func:`benchmarks.ab_test.round_episodes`) is a new crop and new
degradation parameters of the same combination on the same photo; round 0 is the suite's own
episode, the one the records hold. This runs every agent on rounds ``FIRST`` to ``STOP - 1``
of the same photos and gives, per suite, each agent's mean output PSNR and its paired
difference from a baseline agent with two standard errors: over episodes, and over photos
(the episodes of one photo move together; the more honest of the two).

Usage::

    python -m benchmarks.heldout_rounds --rounds 0 8 \
        --json benchmarks/results/heldout_rounds/test.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ab_test import round_episodes, run_arms, standard_error
from benchmarks.compare import t95
from benchmarks.perception_cv import SUITES, agent_spec
from tir_env.errors import TIRError
from tir_env.files import write_text_atomic

RESULTS = Path("benchmarks/results/heldout_rounds/test.json")
#: The agents of the held-out records that decide from what they see, and the oracle.
AGENTS = ("fixed", "exhaustive", "greedy", "agenticir", "ppo", "vlm", "oracle")


def held_out_episodes(images: str, limit: int, suites: Sequence[str], first: int, stop: int):
    """``round_episodes`` of the first ``limit`` photos of ``images`` (0: all of them)."""
    episodes = round_episodes(images, suites, first, stop)
    if not limit:
        return episodes
    from tir_env import data

    kept = set(data.source(images).ids[:limit])
    return [(suite, spec) for suite, spec in episodes if spec.image_id in kept]


def default_limit(images: str) -> int:
    """How many photos ``--limit`` keeps when not given: 0 (all) but for ``corpus:test``'s 5.

    ``corpus:test``'s first five photos are the ones that do not ship with the repo (the
    held-out records); any other source is read whole (the independent set's 12 photos).
    """
    return 5 if images == "corpus:test" else 0


def photo_means(diff: np.ndarray, photos: np.ndarray) -> np.ndarray:
    """Each photo's mean of ``diff`` (photos in the order they first appear)."""
    return np.array([diff[photos == p].mean() for p in dict.fromkeys(photos.tolist())])


def compare(runs: dict[str, list[dict[str, Any]]], versus: str) -> dict[str, Any]:
    """Per suite and overall: each agent's mean and its paired difference from ``versus``.

    Raises:
        ValueError: the agents' runs are not the same episodes in the same order.
    """
    keys = [(r["suite"], r["image"], r["seed"]) for r in runs[versus]]
    for name, rows in runs.items():
        if [(r["suite"], r["image"], r["seed"]) for r in rows] != keys:
            raise ValueError(f"{name}'s run is not the same episodes as {versus}'s")
    suites = np.array([k[0] for k in keys])
    images = np.array([k[1] for k in keys])
    base = np.array([r["output"] for r in runs[versus]])
    inputs = np.array([r["input"] for r in runs[versus]])
    groups = {s: suites == s for s in dict.fromkeys(suites.tolist())}
    groups["all"] = np.ones(len(keys), dtype=bool)
    out: dict[str, Any] = {}
    for group, mask in groups.items():
        entry: dict[str, Any] = {
            "episodes": int(mask.sum()),
            "input": float(inputs[mask].mean()),
            "agents": {},
        }
        for name, rows in runs.items():
            output = np.array([r["output"] for r in rows])
            diff = (output - base)[mask]
            entry["agents"][name] = {
                "mean": float(output[mask].mean()),
                "minus_versus": float(diff.mean()),
                "se": standard_error(diff),
                "se_photos": standard_error(photo_means(diff, images[mask])),
            }
            if all("calls" in r for r in rows):  # results before the fix of 2026-12-05 lack it
                calls = [r["calls"] for r, m in zip(rows, mask, strict=True) if m]
                entry["agents"][name]["calls"] = float(np.mean(calls))
        out[group] = entry
    return out


def _rerun_counts(result: dict[str, Any]) -> dict[tuple[tuple[str, ...], str], int]:
    """Each distinct rerun (its agents and command) and how often it ran, first-run order.

    A result rerun after each change of an agent repeats the same command; the page names it
    once with its count.
    """
    counts: dict[tuple[tuple[str, ...], str], int] = {}
    for rerun in result.get("reruns", []):
        key = (tuple(rerun["agents"]), str(rerun["command"]))
        counts[key] = counts.get(key, 0) + 1
    return counts


def markdown(result: dict[str, Any]) -> list[str]:
    """One table: per suite, each agent's mean and its difference from the baseline."""
    versus, agents = result["versus"], result["agents"]
    head = " | ".join(f"`{a}`" for a in agents)
    lines = [f"| suite | episodes | input | {head} |", "|---|---:|---:|" + "---:|" * len(agents)]
    comparison = result["comparison"]
    for group, entry in comparison.items():
        if group == "all" and len(comparison) == 2:
            continue  # one suite: the overall row would repeat it
        cells = []
        for a in agents:
            e = entry["agents"][a]
            cell = f"{e['mean']:.2f}" + (f" / {e['calls']:.1f}" if "calls" in e else "")
            if a != versus:
                se = e["se_photos"]
                band = f" ± {2 * se:.2f}" if se is not None else ""
                cell += f" ({e['minus_versus']:+.2f}{band})"
            cells.append(cell)
        lines.append(
            f"| {group} | {entry['episodes']} | {entry['input']:.2f} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        f"In brackets: the paired difference from `{versus}` on the same episodes, ± two "
        "standard errors over the photos (each photo's mean difference)."
        + (" After the mean: tool calls per episode." if _has_calls(result) else ""),
    ]
    return lines


def shipped(image: str) -> bool:
    """Whether a corpus test photo ships with the repo (the bundled test photos)."""
    return image.split("/")[0] in ("skimage", "sklearn")


def subsets_markdown(result: dict[str, Any]) -> list[str]:
    """Each agent's difference from the baseline on the photos that ship and on the others.

    The bundled test photos are never trained or tuned on but ship with the repo and make
    the leaderboard; the corpus-only ones are what the docs call held out. ``[]`` when the
    result holds only one kind.
    """
    versus = result["versus"]
    rows = result["episodes"][versus]
    kinds = {"corpus-only": False, "bundled": True}
    if len({shipped(r["image"]) for r in rows}) < 2:
        return []
    lines = [
        f"| suite | agent | {' | '.join(kinds)} | all |",
        "|---|---|" + "---:|" * (len(kinds) + 1),
    ]
    for suite in dict.fromkeys(r["suite"] for r in rows):
        for agent in result["agents"]:
            if agent == versus:
                continue
            cells = []
            for keep in (*kinds.values(), None):
                sub = only_photos(result, keep)
                mean, se = paired(sub, agent, versus, suite)
                band = "" if se is None else f" ± {2 * se:.2f}"
                cells.append(f"{mean:+.2f}{band}")
            lines.append(f"| {suite} | `{agent}` | " + " | ".join(cells) + " |")
    return lines


def only_photos(result: dict[str, Any], bundled: bool | None) -> dict[str, Any]:
    """``result`` with only the episodes of the bundled (or the other) photos; None: all."""
    if bundled is None:
        return result
    episodes = {
        a: [r for r in rows if shipped(r["image"]) == bundled]
        for a, rows in result["episodes"].items()
    }
    return {**result, "episodes": episodes}


def _has_calls(result: dict[str, Any]) -> bool:
    """Whether the result counts tool calls (results before 2026-12-05 do not)."""
    return all("calls" in e for g in result["comparison"].values() for e in g["agents"].values())


def paired(result: dict[str, Any], a: str, b: str, suite: str) -> tuple[float, float | None]:
    """Mean of ``a`` minus ``b`` on ``suite``'s episodes, and its standard error over photos.

    ``b="input"``: the input. The standard error is over each photo's mean difference.
    """
    rows_a = [r for r in result["episodes"][a] if r["suite"] == suite]
    rows_b = rows_a if b == "input" else [r for r in result["episodes"][b] if r["suite"] == suite]
    if [(x["image"], x["seed"]) for x in rows_a] != [(y["image"], y["seed"]) for y in rows_b]:
        raise ValueError(f"{a}'s and {b}'s runs of {suite} are not the same episodes")
    key = "input" if b == "input" else "output"
    diff = np.array([x["output"] - y[key] for x, y in zip(rows_a, rows_b, strict=True)])
    photos = np.array([r["image"] for r in rows_a])
    return float(diff.mean()), standard_error(photo_means(diff, photos))


def call(mean: float, se: float | None, bar: float = 0.0) -> str:
    """``above``, ``below`` or ``undecided``: where ``bar`` lies against ``mean`` +- 2 ``se``.

    ``above`` when ``mean - 2 se`` clears ``bar``, ``below`` when ``mean + 2 se`` does not
    reach it, else ``undecided`` (rule 8f4fb2e), as without a standard error (one photo).
    """
    if se is None:  # one photo: no spread to judge by
        return "undecided"
    band = 2 * se
    if mean - band > bar:
        return "above"
    return "below" if mean + band < bar else "undecided"


#: The issues' held-out comparisons: (issue, agent, against, bar in dB, suites).
CHECKS: tuple[tuple[str, str, str, float, tuple[str, ...]], ...] = (
    *(("13", a, "input", 0.0, SUITES) for a in ("fixed", "exhaustive", "greedy")),
    ("13", "exhaustive", "fixed", 0.0, SUITES),
    ("15", "ppo", "oracle", 0.0, ("mio-a",)),
    ("15", "ppo", "oracle", -1.0, SUITES[1:]),
    ("15", "ppo", "fixed", 0.0, SUITES[1:]),
    ("15", "ppo", "exhaustive", 0.0, SUITES[1:]),
    ("14", "vlm", "oracle", -0.5, ("mio-a",)),
    *(("14", "vlm", a, 0.0, ("mio-b", "mio-c")) for a in ("fixed", "exhaustive", "ppo")),
)


def checks_markdown(result: dict[str, Any]) -> list[str]:
    """The issues' held-out comparisons, each suite called above, below or undecided."""
    lines = [
        "| issue | comparison | bar (dB) | " + " | ".join(SUITES) + " |",
        "|---|---|---:|" + "---|" * len(SUITES),
    ]
    for issue, a, b, bar, suites in CHECKS:
        if a not in result["episodes"] or (b != "input" and b not in result["episodes"]):
            continue
        cells = []
        held = {r["suite"] for r in result["episodes"][a]}
        for suite in SUITES:
            if suite not in suites or suite not in held:
                cells.append("")
                continue
            mean, se = paired(result, a, b, suite)
            band = "" if se is None else f" ± {2 * se:.2f}"
            cells.append(f"{mean:+.2f}{band} {call(mean, se, bar)}")
        what = f"`{a}` - " + ("input" if b == "input" else f"`{b}`")
        lines.append(f"| {issue} | {what} | {bar:+.1f} | " + " | ".join(cells) + " |")
    return lines


#: The committed rounds, each with its doc section's title and the rule that set it.
SETS: dict[str, tuple[Path, str, str]] = {
    "held-out": (RESULTS, "the held-out suites", "8f4fb2e"),
    "bundled": (RESULTS.with_name("bundled.json"), "the bundled test photos' suites", "b9d0a03"),
    "all-test": (RESULTS.with_name("test9.json"), "all nine test photos' suites", "ad61d0b"),
}


def section(kind: str = "held-out") -> str:
    """The doc section on a set's rounds (:data:`SETS`; "" before its result is committed)."""
    import textwrap

    path, title, rule = SETS[kind]
    if not path.is_file():
        return ""
    result = json.loads(path.read_text())
    first, stop = result["rounds"]
    rows = result["episodes"][result["versus"]]
    photos = len({r["image"] for r in rows})
    records = (
        "round 0 is the records' episodes"
        if first == 0
        else "none of them is round 0, the records' episodes"
    )
    intro = (
        f"One round of a suite is 4-16 episodes per photo on these {photos} photos, and one "
        f"darkness or haze call moves an episode by 6-20 dB. Rounds {first}-{stop - 1} of "
        f"every suite ({records}; round k a new crop and new degradation "
        f"parameters of the same combination on the same photo) give {len(rows)} episodes "
        f"per agent: `{result['command']}`. By rule {rule}, set before the run, this is the "
        "primary reading of the issues' comparisons on these photos: an agent is *above* "
        "another (or a bar) where the paired mean difference minus two standard errors over "
        "the photos clears it, *below* where the difference plus two standard errors does "
        "not reach it, and *undecided* otherwise. On so few photos two standard errors is a "
        f"lenient bar (a two-sided 95% interval on {photos - 1} degrees of freedom is "
        f"{t95(photos - 1):.1f} standard errors): *above* means likely, not shown "
        "beyond doubt. Nothing was changed on the strength of these rounds."
        + "".join(
            " Run again since, with the code of their time"
            + (f" ({times} times)" if times > 1 else "")
            + ": "
            + ", ".join(f"`{a}`" for a in agents)
            + f" (`{command}`)."
            for (agents, command), times in _rerun_counts(result).items()
        )
    )
    sentence = first_round_sentence(result)
    lines = [f"## {stop - first} rounds of {title}", "", *textwrap.wrap(intro, 96), ""]
    lines += [*markdown(result), ""]
    if sentence:
        lines += [*textwrap.wrap(sentence, 96), ""]
    lines += [
        "The issues' comparisons (difference ± two standard errors over photos; the call):",
        "",
        *checks_markdown(result),
    ]
    lines += by_set_lines(result)
    return "\n".join(lines)


def by_set_lines(result: dict[str, Any], width: int | None = 96) -> list[str]:
    """The note and table by set of photos (:func:`subsets_markdown`); ``[]`` for one set.

    ``width``: wrap the note to it (``None``: one line).
    """
    import textwrap

    table = subsets_markdown(result)
    if not table:
        return []
    note = SUBSETS_NOTE.format(versus=result["versus"])
    return ["", *(textwrap.wrap(note, width) if width else [note]), "", *table]


#: What the table by set of photos shows (:func:`subsets_markdown`).
SUBSETS_NOTE = (
    "By set of photos: the difference from `{versus}` (± two standard errors over the set's "
    "photos) on the corpus test photos that do not ship with the repo (what docs/heldout.md "
    "calls held out) and on the four bundled test photos (never trained or tuned on, but "
    "shipped and shown on the leaderboard)."
)


def first_round_sentence(result: dict[str, Any], a: str = "exhaustive", b: str = "fixed") -> str:
    """``a`` minus ``b`` per suite on the first round alone and on all rounds.

    The episodes run round by round, so a suite's first round is its first ``1 / rounds``
    share of episodes. "" when either agent was not run.
    """
    if a not in result["episodes"] or b not in result["episodes"]:
        return ""
    first, stop = result["rounds"]
    parts = []
    for suite in dict.fromkeys(r["suite"] for r in result["episodes"][b]):
        rows_a = [r for r in result["episodes"][a] if r["suite"] == suite]
        rows_b = [r for r in result["episodes"][b] if r["suite"] == suite]
        n = len(rows_a) // (stop - first)
        diff = [x["output"] - y["output"] for x, y in zip(rows_a, rows_b, strict=True)]
        parts.append(f"{suite} {np.mean(diff[:n]):+.2f} -> {np.mean(diff):+.2f}")
    records = " (the records' episodes)" if first == 0 else ""
    return (
        f"`{a}` minus `{b}`, round {first} alone{records} -> all {stop - first} rounds: "
        + ", ".join(parts)
        + " dB."
    )


def run_agents(
    agents: Sequence[str], episodes: list[tuple], images: str, jobs: int
) -> dict[str, list[dict[str, Any]]]:
    """Each agent spec's rows on ``episodes`` (``jobs`` agents at once), with a progress bar.

    An agent's whole run is one job (its networks load once); the bar counts the episodes
    every agent has ended (:func:`~benchmarks.ab_test.run_arms`).
    """
    arms = [(a, None, None, ()) for a in agents]
    return dict(zip(agents, run_arms(arms, episodes, images, jobs, "agents"), strict=True))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the agents on the rounds; print the table and write the result."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--agents", default=",".join(AGENTS), help="comma-separated specs")
    parser.add_argument("--versus", default="fixed", help="the baseline of the differences")
    parser.add_argument("--images", default="corpus:test")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="first N photos, 0: all; default: 5 for corpus:test (the 5 not shipped), all of "
        "any other source",
    )
    parser.add_argument("--suites", nargs="+", default=list(SUITES))
    parser.add_argument("--rounds", nargs=2, type=int, default=(0, 8), metavar=("FIRST", "STOP"))
    parser.add_argument("--jobs", type=int, default=2, help="processes (agents at once)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="refuses to overwrite")
    parser.add_argument(
        "--rerun",
        type=Path,
        default=None,
        metavar="RECORD",
        help="run only --agents again on RECORD's episodes, keep its other agents' rows, and "
        "write the whole result to --json (RECORD itself allowed: updated atomically)",
    )
    args = parser.parse_args(argv)
    if args.rerun is not None:
        return rerun(parser, args, argv)
    agents = [a for a in args.agents.split(",") if a]
    if args.versus not in agents:
        parser.error(f"--versus {args.versus} is not among --agents")
    if args.json.exists():
        parser.error(f"{args.json} exists; choose another path or delete it first")
    if not 0 <= args.rounds[0] < args.rounds[1]:
        parser.error(f"--rounds {args.rounds[0]} {args.rounds[1]}: want 0 <= FIRST < STOP")
    if args.limit is None:
        args.limit = default_limit(args.images)
    try:
        for spec in agents:
            agent_spec(spec)
        episodes = held_out_episodes(args.images, args.limit, args.suites, *args.rounds)
    except TIRError as err:
        parser.error(str(err))
    runs = run_agents(agents, episodes, args.images, args.jobs)
    result = {
        "command": _command(argv),
        "images": args.images,
        "limit": args.limit,
        "rounds": list(args.rounds),
        "versus": args.versus,
        "agents": agents,
        "comparison": compare(runs, args.versus),
        "episodes": runs,
    }
    print("\n".join([*markdown(result), "", *checks_markdown(result)]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return result


def _command(argv: Sequence[str] | None) -> str:
    """The command line that ran this (for the record)."""
    return "python -m benchmarks.heldout_rounds " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )


def rerun(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Any) -> dict[str, Any]:
    """``--rerun``: some agents of a committed record run again, the others' rows kept.

    The record keeps the command that made it and lists each rerun (its command and agents)
    under ``reruns``; the episodes are the record's own (its photos, suites and rounds).
    """
    if not args.rerun.is_file():
        parser.error(f"--rerun {args.rerun}: no such record")
    if args.json.exists() and args.json.resolve() != args.rerun.resolve():
        parser.error(f"{args.json} exists; choose another path or delete it first")
    record = json.loads(args.rerun.read_text())
    agents = [a for a in args.agents.split(",") if a]
    unknown = [a for a in agents if a not in record["agents"]]
    if unknown or not agents:
        parser.error(f"--agents {args.agents}: want some of the record's {record['agents']}")
    keys = record["episodes"][record["versus"]]
    suites = list(dict.fromkeys(r["suite"] for r in keys))
    episodes = held_out_episodes(record["images"], record["limit"], suites, *record["rounds"])
    runs = dict(record["episodes"])
    runs.update(run_agents(agents, episodes, record["images"], args.jobs))
    result = {
        **{k: v for k, v in record.items() if k not in ("comparison", "episodes", "reruns")},
        "reruns": [*record.get("reruns", []), {"command": _command(argv), "agents": agents}],
        "comparison": compare(runs, record["versus"]),  # checks the episodes line up
        "episodes": runs,
    }
    print("\n".join([*markdown(result), "", *checks_markdown(result)]))
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
