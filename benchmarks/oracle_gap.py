r"""Where an agent loses to ``oracle``: the dB gap per episode, by the task it got wrong.

``oracle`` is told the degradations and runs each one's preferred tool in the protocol's
order, so on the same episodes (same photo, crop, degradations and seed) every dB an agent
is behind it comes from a plan that differs: a degradation left untreated (a *missed* task),
a tool for a degradation that is not there (a *false* task), or the right tasks with other
tools, parameters or order. This reads two records folders made by ``tir bench`` and says
how much of the gap each task's misses and false calls account for.

Usage::

    python -m benchmarks.oracle_gap ppo benchmarks/results/ppo_val/dagger-plain-ft2 \
        benchmarks/results/ppo_val/oracle

prints the Markdown that the ``<!-- oracle-gap: AGENT DIR ORACLE_DIR -->`` blocks of the docs
hold (``python -m benchmarks.gen_docs`` regenerates them).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.evaluate import EpisodeSpec, read_jsonl, spec_of
from tir_env.degradations import make_degradation
from tir_env.tools import tool_info

#: What names one episode in both folders: the suite and :func:`~benchmarks.evaluate.spec_of`.
EpisodeKey = tuple[str, EpisodeSpec]


@dataclass(frozen=True)
class EpisodeGap:
    """One episode that both the agent and ``oracle`` ran.

    Attributes:
        suite: The suite (``mio-a``, ...).
        gap_db: Agent's output PSNR minus ``oracle``'s (negative: behind).
        missed: Tasks of the episode's degradations that no call of the agent addressed.
        false: Tasks the agent called a tool for that no degradation of the episode needs.
        same_plan: The agent ran ``oracle``'s tools in ``oracle``'s order.
    """

    suite: str
    gap_db: float
    missed: frozenset[str]
    false: frozenset[str]
    same_plan: bool


def key(record: Mapping[str, Any]) -> EpisodeKey:
    """The episode a record is of: its suite, photo, degradations (in order) and seed."""
    return str(record["suite"]), spec_of(record)


def tools_called(record: Mapping[str, Any]) -> list[str]:
    """The tools a record's agent ran, in order (STOP and failed parses left out)."""
    return [a["tool"] for a in record["actions"] if a]


def episode_gap(agent: Mapping[str, Any], oracle: Mapping[str, Any]) -> EpisodeGap:
    """Compare one episode's agent record with ``oracle``'s record of it.

    Raises:
        ValueError: the two records are of different episodes.
    """
    if key(agent) != key(oracle):
        raise ValueError(f"records of different episodes: {key(agent)} and {key(oracle)}")
    needed = {make_degradation(name).info.task for name in agent["degradations"]}
    called = [tool_info(name).task for name in tools_called(agent)]
    return EpisodeGap(
        suite=str(agent["suite"]),
        gap_db=float(agent["metrics_output"]["psnr"]) - float(oracle["metrics_output"]["psnr"]),
        missed=frozenset(needed - set(called)),
        false=frozenset(set(called) - needed),
        same_plan=tools_called(agent) == tools_called(oracle),
    )


def read_folder(folder: Path, agent: str) -> dict[EpisodeKey, dict[str, Any]]:
    """Every record of ``agent`` in a ``tir bench`` folder, by episode."""
    records: dict[EpisodeKey, dict[str, Any]] = {}
    for path in sorted(folder.glob(f"*__{agent}.jsonl")):
        for record in read_jsonl(path):
            records[key(record)] = record
    return records


def episode_gaps(agent: str, agent_dir: Path, oracle_dir: Path) -> list[EpisodeGap]:
    """The gaps of the episodes both folders hold (``oracle``'s records named ``oracle``)."""
    mine = read_folder(agent_dir, agent)
    told = read_folder(oracle_dir, "oracle")
    return [episode_gap(mine[k], told[k]) for k in mine if k in told]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summary(gaps: Sequence[EpisodeGap]) -> dict[str, Any]:
    """Per suite: episodes, mean gap, plans equal to ``oracle``'s; per task: misses, false calls.

    A task's *lost* dB is the summed gap of the episodes where it was missed (or called
    falsely), as a share of the summed gap of all episodes behind ``oracle`` (an episode with
    two mistakes counts for both, so shares may add up past 1).
    """
    behind = -sum(g.gap_db for g in gaps if g.gap_db < 0) or 1.0
    suites = {}
    for suite in dict.fromkeys(g.suite for g in gaps):
        mine = [g for g in gaps if g.suite == suite]
        suites[suite] = {
            "episodes": len(mine),
            "mean_gap_db": _mean([g.gap_db for g in mine]),
            "same_plan": sum(g.same_plan for g in mine),
        }
    tasks: dict[str, dict[str, float]] = {}
    for task in sorted({t for g in gaps for t in g.missed | g.false}):
        row: dict[str, float] = {}
        for kind in ("missed", "false"):
            hit = [g.gap_db for g in gaps if task in getattr(g, kind)]
            row[f"{kind}_episodes"] = len(hit)
            row[f"{kind}_mean_gap_db"] = _mean(hit)
            row[f"{kind}_share_lost"] = -sum(min(v, 0.0) for v in hit) / behind
        tasks[task] = row
    return {"episodes": len(gaps), "suites": suites, "tasks": tasks}


def markdown(result: Mapping[str, Any]) -> str:
    """The two tables of a doc block: per suite, then per task (most dB lost first)."""
    lines = [
        "| suite | episodes | gap to `oracle` (dB) | same plan as `oracle` |",
        "|---|---:|---:|---:|",
    ]
    for suite, s in result["suites"].items():
        lines.append(f"| {suite} | {s['episodes']} | {s['mean_gap_db']:+.2f} | {s['same_plan']} |")
    lines += [
        "",
        "| task | missed in | gap there (dB) | share of the dB lost | called, not there, in "
        "| gap there (dB) | share of the dB lost |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = sorted(
        result["tasks"].items(),
        key=lambda item: -(item[1]["missed_share_lost"] + item[1]["false_share_lost"]),
    )
    for task, t in order:
        lines.append(
            f"| {task} | {int(t['missed_episodes'])} | {_cell(t, 'missed')} | "
            f"{t['missed_share_lost']:.0%} | {int(t['false_episodes'])} | {_cell(t, 'false')} | "
            f"{t['false_share_lost']:.0%} |"
        )
    return "\n".join(lines) + "\n"


def _cell(row: Mapping[str, float], kind: str) -> str:
    return f"{row[f'{kind}_mean_gap_db']:+.2f}" if row[f"{kind}_episodes"] else "-"


def table(agent: str, agent_dir: Path, oracle_dir: Path) -> str:
    """:func:`markdown` of the two folders' common episodes."""
    return markdown(summary(episode_gaps(agent, agent_dir, oracle_dir)))


def main(argv: Iterable[str] | None = None) -> None:
    """Print the tables for an agent's records folder against ``oracle``'s."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent", help="the agent whose records are compared (e.g. ppo)")
    parser.add_argument("agent_dir", type=Path, help="its tir bench records folder")
    parser.add_argument("oracle_dir", type=Path, help="oracle's records folder, same episodes")
    args = parser.parse_args(None if argv is None else list(argv))
    gaps = episode_gaps(args.agent, args.agent_dir, args.oracle_dir)
    if not gaps:
        parser.error(
            f"no episode of {args.agent!r} in {args.agent_dir} is also in {args.oracle_dir}"
        )
    print(markdown(summary(gaps)), end="")


if __name__ == "__main__":
    main()
