"""``tir compare BASE NEW``: did a change help, beyond the photos' noise?

Two folders of ``tir bench`` records (``SUITE__AGENT.jsonl``) of the same episodes, run before
and after a change (new weights, another option, another commit), are paired episode by episode
(same photo, degradations and seed) and compared per agent and suite: the mean change of a
metric, its standard error clustered by photo, a 95% interval (Student's t over the photos) and
how many episodes moved each way, with the largest single loss and gain.

Why clustered by photo: the episodes of one photo move together (a photo that is dark by nature
makes every darkness call on it wrong), so a suite of 5 photos has 5 independent draws, not 40.
On the held-out crop suites one darkness or haze decision moves an episode by 6-20 dB
(docs/tools.md, "What a false call costs"), so a mean change of a few tenths of a dB over five
photos is seldom more than noise: the table says which changes are.

Usage::

    tir compare benchmarks/results/heldout runs/my_change            # every suite and agent
    tir compare A B --agents fixed,exhaustive --metric ssim --out cmp.md
    tir compare benchmarks/results/heldout:fixed benchmarks/results/heldout:exhaustive
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Episode identity in a records file: (photo, degradations, seed).
Key = tuple[str, tuple[str, ...], int]


@dataclass(frozen=True)
class Comparison:
    """One agent on one suite, new records against base records of the same episodes.

    Attributes:
        suite: The suite (``mio-a``, ``mio-a@full``, ...).
        agent: The agent.
        episodes: Episodes in both folders (the paired ones).
        photos: Distinct photos among them (the independent draws).
        base: Mean metric of the base records over the paired episodes.
        new: Mean metric of the new records over the same episodes.
        change: ``new - base``, signed so that positive is better (NIQE: lower is better).
        se: Standard error of ``change`` clustered by photo (``nan`` with one photo).
        low: Lower end of its 95% interval (Student's t, photos - 1 degrees of freedom).
        high: Upper end of its 95% interval.
        better: Episodes the change made better.
        worse: Episodes it made worse.
        worst: The largest loss of one episode and which episode.
        best: The largest gain of one episode and which episode.
        unpaired: Episodes of either folder the other lacks (left out).
    """

    suite: str
    agent: str
    episodes: int
    photos: int
    base: float
    new: float
    change: float
    se: float
    low: float
    high: float
    better: int
    worse: int
    worst: tuple[float, str]
    best: tuple[float, str]
    unpaired: int = 0

    @property
    def verdict(self) -> str:
        """``better`` or ``worse`` when the interval excludes 0, else ``within noise``.

        With one photo there is no interval: ``undecided (one photo)``, however the episodes
        moved (they are one draw, not many).
        """
        if self.photos < 2:
            return "undecided (one photo)"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "within noise"


def read_folder(folder: Path) -> dict[tuple[str, str], dict[Key, dict[str, Any]]]:
    """(suite, agent) -> episode key -> record, from a folder's ``SUITE__AGENT.jsonl`` files.

    Raises:
        NoRecordsError: the folder is missing or holds no such file.
        DataError: a record lacks its episode's fields or repeats an episode (named with
            its file and line).
    """
    from tir_env.errors import NoRecordsError

    files = sorted(folder.glob("*__*.jsonl")) if folder.is_dir() else []
    if not files:
        raise NoRecordsError(f"{folder}: no SUITE__AGENT.jsonl records (made by tir bench --out)")
    out: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
    for path in files:
        suite, agent = path.stem.split("__", 1)
        out[(suite, agent)] = read_file(path)
    return out


def read_file(path: Path) -> dict[Key, dict[str, Any]]:
    """Episode key -> record, from one ``SUITE__AGENT.jsonl`` file of ``tir bench --out``.

    Raises:
        DataError: the file is not JSON lines, or a record lacks its episode's fields or
            repeats an episode (named with its file and line).
    """
    from benchmarks.evaluate import read_jsonl
    from tir_env.errors import DataError

    episodes: dict[Key, dict[str, Any]] = {}
    try:
        rows = read_jsonl(path)
    except ValueError as err:  # a JSON syntax error: name the file
        raise DataError(f"{path}: not JSON lines ({err})") from err
    for k, r in enumerate(rows, 1):
        try:
            key = (str(r["image"]), tuple(r["degradations"]), int(r["seed"]))
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}, record {k}: no episode fields ({err})") from err
        if key in episodes:
            raise DataError(f"{path}, record {k}: episode {_label(key)} is recorded twice")
        episodes[key] = r
    return episodes


def _value(record: dict[str, Any], metric: str) -> float:
    """The record's final ``metric`` score.

    Raises:
        DataError: the record has none (not scored, or not finite: stored as null).
    """
    from tir_env.errors import DataError

    value = (record.get("metrics_output") or {}).get(metric)
    if value is None:
        raise DataError(
            f"episode {record.get('image')} (seed {record.get('seed')}) has no final {metric}"
            " score: compare a metric both runs scored"
        )
    return float(value)


def t95(df: int) -> float:
    """Two-sided 95% quantile of Student's t with ``df`` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def _label(key: Key) -> str:
    return f"{'+'.join(key[1])} on {key[0]} (seed {key[2]})"


def pair(
    suite: str,
    agent: str,
    base: Mapping[Key, dict[str, Any]],
    new: Mapping[Key, dict[str, Any]],
    metric: str,
    lower_better: bool,
) -> Comparison | None:
    """The :class:`Comparison` of one agent on one suite (``None``: no episode in common)."""
    keys = [k for k in new if k in base]
    if not keys:
        return None
    sign = -1.0 if lower_better else 1.0
    old_values = [_value(base[k], metric) for k in keys]
    new_values = [_value(new[k], metric) for k in keys]
    changes = [sign * (b - a) for a, b in zip(old_values, new_values, strict=True)]
    n = len(changes)
    mean = sum(changes) / n
    by_photo: dict[str, float] = {}
    for key, d in zip(keys, changes, strict=True):
        by_photo[key[0]] = by_photo.get(key[0], 0.0) + (d - mean)
    k = len(by_photo)
    # Cluster-robust (CR1) standard error: the episodes of one photo are not independent.
    se = math.sqrt(k / (k - 1) * sum(s * s for s in by_photo.values())) / n if k > 1 else math.nan
    half = t95(k - 1) * se if k > 1 else math.nan
    ranked = sorted(zip(changes, keys, strict=True), key=lambda p: p[0])
    return Comparison(
        suite=suite,
        agent=agent,
        episodes=n,
        photos=k,
        base=sum(old_values) / n,
        new=sum(new_values) / n,
        change=mean,
        se=se,
        low=mean - half,
        high=mean + half,
        better=sum(d > 0 for d in changes),
        worse=sum(d < 0 for d in changes),
        worst=(ranked[0][0], _label(ranked[0][1])),
        best=(ranked[-1][0], _label(ranked[-1][1])),
        unpaired=len(base) + len(new) - 2 * n,
    )


def split_spec(text: str) -> tuple[Path, str | None]:
    """``FOLDER`` or ``FOLDER:AGENT`` -> (folder, agent or ``None``)."""
    folder, _, agent = text.rpartition(":")
    if Path(text).is_dir() or not folder or not Path(folder).is_dir():
        return Path(text), None  # a folder (its name may hold ':'), or one that is missing
    return Path(folder), agent or None


def compare(
    base: Path | str,
    new: Path | str,
    metric: str = "psnr",
    agents: Sequence[str] | None = None,
) -> list[Comparison]:
    """Every (suite, agent) both folders hold (of ``agents``, if given), paired by episode.

    ``base`` and ``new`` may name one agent each (``FOLDER:AGENT``): then that agent of
    ``new`` is paired with that of ``base`` on every suite both have (``exhaustive`` against
    ``fixed`` in one folder: ``tir compare DIR:fixed DIR:exhaustive``).

    Raises:
        NoRecordsError: a folder holds no records, or the two share no episode.
        UnknownNameError: ``metric`` is not a registered metric.
        DataError: a record is malformed or lacks the metric's final score.
        ValueError: only one of the two names an agent.
    """
    from tir_env.errors import NoRecordsError
    from tir_env.metrics import metric_info

    (base_dir, base_agent), (new_dir, new_agent) = split_spec(str(base)), split_spec(str(new))
    if (base_agent is None) != (new_agent is None):
        raise ValueError(f"{base} and {new}: name an agent in both (FOLDER:AGENT) or in neither")
    if agents and new_agent is not None:
        raise ValueError("--agents does not apply when FOLDER:AGENT names the agents")
    lower_better = metric_info(metric).lower_better
    old, fresh = read_folder(base_dir), read_folder(new_dir)
    out = []
    for suite, agent in sorted(fresh):
        if base_agent is not None and new_agent is not None:
            if agent != new_agent or (suite, base_agent) not in old:
                continue
            before, label = old[(suite, base_agent)], f"{new_agent} against {base_agent}"
        elif (suite, agent) not in old or (agents and agent not in agents):
            continue
        else:
            before, label = old[(suite, agent)], agent
        found = pair(suite, label, before, fresh[(suite, agent)], metric, lower_better)
        if found is not None:
            out.append(found)
    if not out:
        raise NoRecordsError(
            f"{base} and {new} share no episode"
            + (f" of {', '.join(agents)}" if agents else "")
            + ": run the same suites, images, limits and seeds"
        )
    return out


def one_sided(
    base: Path | str, new: Path | str, agents: Sequence[str] | None = None
) -> dict[str, dict[str, list[str]]]:
    """Record files one folder holds and the other lacks (left out of :func:`compare`).

    Returns:
        For each folder with such files, each agent's suites there, sorted.
    """
    (base_dir, base_agent), (new_dir, new_agent) = split_spec(str(base)), split_spec(str(new))
    old, fresh = set(read_folder(base_dir)), set(read_folder(new_dir))
    if base_agent is not None and new_agent is not None:
        old = {(s, a) for s, a in old if a == base_agent}
        fresh = {(s, a) for s, a in fresh if a == new_agent}
        old_suites, new_suites = {s for s, _ in old}, {s for s, _ in fresh}
        only = {
            str(base): [(s, base_agent) for s in old_suites - new_suites],
            str(new): [(s, new_agent) for s in new_suites - old_suites],
        }
    else:
        wanted = (lambda a: a in agents) if agents else (lambda a: True)
        only = {
            str(base): [(s, a) for s, a in old - fresh if wanted(a)],
            str(new): [(s, a) for s, a in fresh - old if wanted(a)],
        }
    # keyed by the specs as given: DIR:fixed against DIR:exhaustive names one folder twice
    grouped: dict[str, dict[str, list[str]]] = {}
    for folder, files in only.items():
        for suite, agent in sorted(files, key=lambda f: (f[1], f[0])):
            grouped.setdefault(folder, {}).setdefault(agent, []).append(suite)
    return grouped


def _left_out_lines(left_out: Mapping[str, Mapping[str, Sequence[str]]]) -> list[str]:
    """The report's closing list: per folder, each agent with the suites only it holds."""
    lines = ["Left out, in one folder only:"]
    for folder, by_agent in left_out.items():
        files = sum(len(suites) for suites in by_agent.values())
        listed = "; ".join(f"{a} ({', '.join(suites)})" for a, suites in by_agent.items())
        noun = "record file" if files == 1 else "record files"
        lines.append(f"- `{folder}` only, {files} {noun}: {listed}.")
    return [*lines, ""]


def _interval(c: Comparison) -> str:
    if math.isnan(c.se):
        return "one photo: no interval"
    return f"{c.low:+.2f} to {c.high:+.2f}"


def render(
    comparisons: Sequence[Comparison],
    base: Path | str,
    new: Path | str,
    metric: str,
    left_out: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
) -> str:
    """A Markdown report: a table per agent, a row per suite, then the agent's mean.

    ``left_out``: record files of one folder only (:func:`one_sided`), listed at the end.
    """
    lines = [
        f"# `{new}` against `{base}`: {metric}",
        "",
        "Paired episodes (same photo, degradations and seed). *change*: mean over episodes,",
        "positive is better; *95% interval*: Student's t over the photos, whose episodes move",
        "together (clustered standard error); *better / worse*: episodes that moved each way.",
        "",
    ]
    for agent in sorted({c.agent for c in comparisons}):
        rows = [c for c in comparisons if c.agent == agent]
        lines += [
            f"## {agent}",
            "",
            "| suite | episodes | photos | before | after | change | 95% interval | verdict | "
            "better / worse | largest loss | largest gain |",
            "|---|---:|---:|---:|---:|---:|---|---|---|---|---|",
        ]
        for c in rows:
            lines.append(
                f"| {c.suite} | {c.episodes} | {c.photos} | {c.base:.3f} | {c.new:.3f} | "
                f"{c.change:+.3f} | {_interval(c)} | {c.verdict} | {c.better} / {c.worse} | "
                f"{c.worst[0]:+.2f}: {c.worst[1]} | {c.best[0]:+.2f}: {c.best[1]} |"
            )
        mean = sum(c.change for c in rows) / len(rows)
        lines += ["", f"Mean change over its {len(rows)} suites: {mean:+.3f}."]
        unpaired = sum(c.unpaired for c in rows)
        if unpaired:
            lines.append(f"{unpaired} episodes are in one folder only and were left out.")
        lines.append("")
    if left_out:
        lines += _left_out_lines(left_out)
    return "\n".join(lines)


def write_report(text: str, out: Path) -> None:
    """Write ``text`` to ``out``, a new file.

    Raises:
        OutputExistsError: ``out`` exists (nothing is overwritten).
    """
    from tir_env.errors import OutputExistsError

    if out.exists():
        raise OutputExistsError(f"{out} exists: choose a new file")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
