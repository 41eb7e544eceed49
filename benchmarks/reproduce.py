"""Rerun committed benchmark records and check they reproduce exactly.

A leaderboard is only worth citing if a rerun from the same commit gives the same numbers.
This command reruns ``tir bench SUITE`` for the given agents into a scratch folder and compares
every episode with the committed record of the same (image, combination, seed): the actions
and the tool executions must be equal, the input and output metrics equal up to float rounding
across CPUs (:data:`METRIC_TOLERANCE`; wall times may differ).

Usage::

    python -m benchmarks.reproduce mio-a --agents random,fixed,oracle,greedy,exhaustive,agenticir
    python -m benchmarks.reproduce mio-a --agents fixed,oracle --limit 1   # a quick check
    python -m benchmarks.reproduce mio-a --agents fixed --keep runs/remade  # keep the rerun

``--keep DIR`` keeps the rerun's records in ``DIR`` (a new folder). ``--remake``: where code
changed on purpose, each record file that no longer reproduces is rewritten (atomically) with
its rerun's records of the same episodes, in the same order, and the folder's own tables (its
``leaderboard.md`` and per-suite CSVs) are rewritten from the records; then regenerate the docs
(``python -m benchmarks.gen_docs``).

Exit status 0 when every compared episode is identical, 1 otherwise (the differences are
listed), 2 on a usage error (for example no committed records for an agent).
"""

from __future__ import annotations

import argparse
import math
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.evaluate import EpisodeSpec, read_jsonl, spec_of

#: Committed records compared by default.
RECORDS = Path("benchmarks/results/leaderboard")
#: What must be equal between a committed episode and its rerun.
COMPARED = ("actions", "tool_executions")
#: Metric blocks compared up to :data:`METRIC_TOLERANCE`.
METRICS = ("metrics_input", "metrics_output")
#: How far a rerun's metric may be from the record: metric -> (absolute, relative); others
#: :data:`DEFAULT_TOLERANCE`. Float kernels differ in the last bits between CPUs (oneDNN and
#: numpy pick SIMD code by CPU): the learned all-in-one network's outputs moved PSNR and SSIM
#: by under 5e-6 on another machine, and NIQE by up to 0.044 (0.2% of its value: its AGGD fit
#: snaps to a 0.001 grid, which moves scores by up to 0.5%: tir_env/metrics/niqe.py) where PSNR and
#: SSIM were equal. Anything larger is a real difference (another tool result, another choice).
METRIC_TOLERANCE: dict[str, tuple[float, float]] = {"niqe": (0.0, 5e-3)}
DEFAULT_TOLERANCE = (1e-4, 0.0)


def read_records(path: Path) -> dict[EpisodeSpec, dict[str, Any]]:
    """The records of one ``SUITE__AGENT.jsonl`` file by episode (image, combination, seed)."""
    return {spec_of(r): r for r in read_jsonl(path)}


def differences(
    committed: Mapping[EpisodeSpec, Mapping[str, Any]],
    rerun: Mapping[EpisodeSpec, Mapping[str, Any]],
    every_image: bool = True,
) -> list[str]:
    """One line per rerun episode that differs from its committed record (or has none).

    A committed episode the rerun lacks is a difference too: of any image with
    ``every_image``, else (a rerun of the first images, ``--limit``) of the images it ran.
    """
    out = []
    for key, new in sorted(rerun.items(), key=lambda item: _order(item[0])):
        old = committed.get(key)
        if old is None:
            out.append(f"{key}: no committed record")
            continue
        fields = [f for f in COMPARED if old.get(f) != new.get(f)]
        fields += [f for f in METRICS if not metrics_match(old.get(f), new.get(f))]
        if fields:
            out.append(f"{key}: differs in {', '.join(fields)}")
    ran = {spec.image_id for spec in rerun}  # after the differing ones, which print first
    out += [
        f"{key}: not in the rerun"
        for key in sorted(committed, key=_order)
        if key not in rerun and (every_image or key.image_id in ran)
    ]
    return out


def metrics_match(old: Mapping[str, float] | None, new: Mapping[str, float] | None) -> bool:
    """Same metric names, each value within :data:`METRIC_TOLERANCE` (NaN matches NaN)."""
    if old is None or new is None or set(old) != set(new):
        return old == new
    return all(_close(k, old[k], new[k]) for k in old)


def _close(metric: str, old: float, new: float) -> bool:
    absolute, relative = METRIC_TOLERANCE.get(metric, DEFAULT_TOLERANCE)
    if math.isnan(old) or math.isnan(new):
        return math.isnan(old) and math.isnan(new)
    return math.isclose(old, new, rel_tol=relative, abs_tol=absolute)


def _order(spec: EpisodeSpec) -> tuple[str, tuple[str, ...], int]:
    return spec.image_id, spec.degradations, spec.seed


def rerun(
    suite: str, agents: Sequence[str], limit: int | None, out: Path, records: Path = RECORDS
) -> None:
    """``tir bench SUITE --agents AGENT ... --limit N --out OUT``, one child process per agent.

    Each agent reruns with the images and options its committed records were made with
    (:func:`recorded_bench_args`), on the first ``limit`` images, by default as many as its
    records hold (a run with ``--limit 5`` of a larger folder keeps no trace of the flag).
    """
    for agent in agents:
        committed = read_records(records / f"{suite}__{agent}.jsonl")
        first = next(iter(committed.values()), {})
        command = [sys.executable, "-m", "benchmarks.cli", "bench", suite, "--agents", agent]
        command += recorded_bench_args(agent, first.get("run") or {})
        # the records do not keep --limit: as many images as they hold (the first ones)
        images = limit if limit is not None else len({spec.image_id for spec in committed})
        command += ["--out", str(out), "--limit", str(images)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def recorded_bench_args(agent: str, run: Mapping[str, Any]) -> list[str]:
    """The ``tir bench`` flags that remake a record's run: its images and agent options.

    Args:
        agent: The agent's name.
        run: The record's ``run`` block (``images``, ``agent_kwargs``; older records lack it).
    """
    args: list[str] = []
    images = run.get("images")
    if images and images != "test":
        args += ["--images", str(images)]
    for key, value in sorted((run.get("agent_kwargs") or {}).items()):
        if isinstance(value, list):  # a tuple option, stored as a list
            text = ",".join(map(str, value))
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["--agent-arg", f"{agent}.{key}={text}"]
    return args


def compare(
    suite: str,
    agents: Sequence[str],
    records: Path,
    rerun_dir: Path,
    every_image: bool = True,
) -> dict[str, list[str]]:
    """Per agent, the differing episodes of ``rerun_dir`` against ``records``.

    ``every_image``: as :func:`differences` takes it.
    """
    return {
        agent: differences(
            read_records(records / f"{suite}__{agent}.jsonl"),
            read_records(rerun_dir / f"{suite}__{agent}.jsonl"),
            every_image,
        )
        for agent in agents
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Rerun, compare, print a summary; return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("suite", help="suite name, e.g. mio-a or mio-a@full")
    parser.add_argument("--agents", required=True, help="comma-separated agents")
    parser.add_argument("--records", type=Path, default=RECORDS, help="committed records folder")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the rerun's records in this new folder"
    )
    parser.add_argument(
        "--remake", action="store_true", help="rewrite each differing file from its rerun"
    )
    args = parser.parse_args(argv)
    if args.remake and args.limit is not None:
        parser.error("--remake reruns every image of the records: leave out --limit")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep} exists: name a new folder")
    agents = [a for a in args.agents.split(",") if a]
    missing = [a for a in agents if not (args.records / f"{args.suite}__{a}.jsonl").is_file()]
    if missing:
        parser.error(f"no committed records in {args.records} for: {', '.join(missing)}")
    from benchmarks.leaderboard import refresh_tables
    from tir_env.errors import DataError

    with tempfile.TemporaryDirectory(prefix="tir-reproduce-") as tmp:
        rerun(args.suite, agents, args.limit, Path(tmp), args.records)
        found = compare(args.suite, agents, args.records, Path(tmp), args.limit is None)
        counts = {a: len(read_records(Path(tmp) / f"{args.suite}__{a}.jsonl")) for a in agents}
        if args.keep is not None:
            keep_rerun(Path(tmp), args.keep)
        pairs = [
            (args.records / f"{name}.jsonl", Path(tmp) / f"{name}.jsonl")
            for name in (f"{args.suite}__{a}" for a in agents if args.remake and found[a])
        ]
        try:  # every file checked before the first is written: all of them or none
            remade = [remake(committed, new) for committed, new in checked(pairs)]
        except DataError as err:
            parser.error(f"{err}; nothing was remade")
    for agent, lines in found.items():
        print(f"{args.suite} / {agent}: {counts[agent]} episodes, {len(lines)} differ")
        for line in lines[:10]:
            print(f"  {line}")
    for path in remade:
        print(f"remade {path}")
    for folder in refresh_tables(remade):  # its CSVs and leaderboard.md read the records
        print(f"rewrote the tables of {folder}")
    return 0 if not any(found.values()) else 1


def checked(pairs: Sequence[tuple[Path, Path]]) -> Sequence[tuple[Path, Path]]:
    """``pairs`` of (committed file, its rerun), once every rerun holds all its episodes.

    Raises:
        DataError: a rerun lacks one of its committed file's episodes.
    """
    from tir_env.errors import DataError

    for committed, rerun_file in pairs:
        lost = _lost(read_records(committed), read_records(rerun_file))
        if lost:
            raise DataError(
                f"the rerun of {committed} lacks {len(lost)} of its episodes, e.g. {lost[0]}"
            )
    return pairs


def remake(committed: Path, rerun_file: Path) -> Path:
    """Rewrite ``committed`` with ``rerun_file``'s records of its episodes, in its order.

    Raises:
        DataError: the rerun lacks one of the committed episodes (nothing is written).
    """
    from benchmarks.evaluate import write_jsonl
    from tir_env.errors import DataError

    old, new = read_records(committed), read_records(rerun_file)
    lost = _lost(old, new)
    if lost:
        raise DataError(f"{rerun_file} lacks {len(lost)} episodes of {committed}, e.g. {lost[0]}")
    return write_jsonl(
        committed, [out_named(new[spec], rerun_file.parent, committed.parent) for spec in old]
    )


def out_named(record: Mapping[str, Any], scratch: Path, folder: Path) -> dict[str, Any]:
    """``record`` with its ``command``'s ``--out`` naming ``folder``, not the rerun's ``scratch``.

    The rerun wrote into a temporary folder deleted after it; the remade (or kept) file lives
    in ``folder``, which is what the command should name to be run again. The command is
    read and rewritten as shell words (``tir bench`` writes it with :func:`shlex.join`).
    """
    command = record.get("command")
    if not isinstance(command, str):
        return dict(record)
    try:
        words = shlex.split(command)
    except ValueError:  # not shell words: leave it as it is
        return dict(record)
    renamed = [
        str(folder) if i and words[i - 1] == "--out" and word == str(scratch) else word
        for i, word in enumerate(words)
    ]
    renamed = [f"--out={folder}" if w == f"--out={scratch}" else w for w in renamed]
    return {**record, "command": shlex.join(renamed)}


def keep_rerun(tmp: Path, keep: Path) -> None:
    """Copy the rerun's folder to ``keep``, its records' commands naming it (:func:`out_named`)."""
    from benchmarks.evaluate import write_jsonl

    shutil.copytree(tmp, keep)
    for path in sorted(keep.glob("*.jsonl")):
        write_jsonl(path, [out_named(r, tmp, keep) for r in read_jsonl(path)])


def _lost(
    committed: Mapping[EpisodeSpec, Any], rerun_records: Mapping[EpisodeSpec, Any]
) -> list[EpisodeSpec]:
    """The committed episodes a rerun lacks."""
    return [spec for spec in committed if spec not in rerun_records]


if __name__ == "__main__":
    sys.exit(main())
