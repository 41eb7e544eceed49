"""Replay committed bench records and recompute some of their metrics (or only check them).

A ``tir bench`` record holds everything its episode needs: the run's env settings, the photo,
the degradations, the seed and every tool call the agent made. Replaying those calls (no agent
runs) regenerates the input and the agent's final image, so a metric whose definition changed
(NIQE refit on other photos) can be recomputed without rerunning the agents, and a committed
table can be checked against the code: the replay's final PSNR must equal the recorded one.

A file is rewritten (atomically) only when every one of its records replays within
``--atol`` dB; any other file is left as it was and reported by name, with the episode and
the two PSNRs. The leaderboard of each folder whose records changed is regenerated.

Usage::

    python -m benchmarks.rescore benchmarks/results/leaderboard benchmarks/results/heldout
    python -m benchmarks.rescore benchmarks/results/heldout --check   # replay only, write nothing
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.evaluate import read_jsonl, write_jsonl
from tir_env.env import TIREnv
from tir_env.errors import TIRError
from tir_env.spaces import encode_call
from tir_env.types import ToolCall

#: Replayed and recorded final PSNR may differ by this much (dB): float summation order.
ATOL_DB = 0.01


class ReplayMismatchError(TIRError, ValueError):
    """A record's actions, replayed, do not give its recorded PSNR (stale record or tools)."""


@dataclass
class FileReport:
    """What rescoring one record file did."""

    path: Path
    records: int = 0
    written: bool = False
    problems: list[str] = field(default_factory=list)
    largest_psnr_gap: float = 0.0


def record_files(paths: Sequence[Path]) -> Iterator[Path]:
    """The ``*.jsonl`` record files of ``paths`` (files, or folders searched recursively)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.jsonl"))
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(f"no record file or folder at {path}")


def called_tools(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every tool any record's actions call, in first-call order."""
    names: dict[str, None] = {}
    for record in records:
        for action in record.get("actions", []):
            if action is not None:
                names.setdefault(action["tool"], None)
    return list(names)


def replay_env(run: Mapping[str, Any], tools: Sequence[str]) -> TIREnv:
    """An env made as the run's was (its images, settings and toolbox), plus ``tools``.

    It scores PSNR only; other metrics are computed on demand by :func:`rescore_record`.
    """
    from tir_env.tools.presets import toolbox_tools

    box = list(toolbox_tools(run.get("toolbox", "classical")))
    env_kwargs = {**run["env"], "metrics": ("psnr",)}
    return TIREnv(
        images=run["images"],
        tools=tuple(box + [t for t in tools if t not in box]),
        **env_kwargs,
    )


def replay(
    env: TIREnv, record: Mapping[str, Any], metrics: Sequence[str] = ()
) -> tuple[float, dict[str, float], dict[str, float]]:
    """Play ``record``'s episode and actions in ``env``.

    Returns:
        The final PSNR (dB), and ``metrics`` of the input and of the final image, scored as
        the env scores its own working image (float, before any rounding to 8 bits).
    """
    _, info = env.reset(
        seed=int(record["seed"]),
        options={"image_id": record["image"], "degradations": tuple(record["degradations"])},
    )
    before = env.score(env.current_batch(), metrics) if metrics else {}
    psnr = float(info["metrics"]["psnr"])
    for action in record.get("actions", []):
        if action is None:
            break
        call = ToolCall(action["tool"], action["params"])
        *_, info = env.step(encode_call(call, env.tools))
        psnr = float(info["metrics"]["psnr"])
    after = env.score(env.current_batch(), metrics) if metrics else {}
    return psnr, before, after


def rescore_record(
    env: TIREnv, record: dict[str, Any], metrics: Sequence[str], atol: float = ATOL_DB
) -> float:
    """Replay ``record`` and overwrite its ``metrics`` of the input and the output in place.

    Returns:
        The gap between the replayed and the recorded final PSNR (dB).

    Raises:
        ReplayMismatchError: the gap exceeds ``atol`` (the record is left unchanged).
    """
    psnr, before, after = replay(env, record, metrics)
    recorded = record["metrics_output"].get("psnr")
    gap = abs(psnr - recorded) if recorded is not None else 0.0
    if gap > atol:
        raise ReplayMismatchError(
            f"{record['image']} {'+'.join(record['degradations'])} seed {record['seed']}: "
            f"replayed PSNR {psnr:.3f} dB, recorded {recorded:.3f}"
        )
    record["metrics_input"] = {**record["metrics_input"], **before}
    record["metrics_output"] = {**record["metrics_output"], **after}
    return gap


def rescore_file(
    path: Path,
    metrics: Sequence[str],
    stamp: Mapping[str, Any],
    atol: float = ATOL_DB,
    write: bool = True,
) -> FileReport:
    """Rescore every record of ``path`` that holds one of ``metrics``; write if all replayed."""
    records = read_jsonl(path)
    report = FileReport(path, len(records))
    if not all(isinstance(r, dict) and isinstance(r.get("metrics_output"), dict) for r in records):
        report.problems.append("malformed record: a line without a metrics_output object")
        return report
    todo = [r for r in records if any(m in r["metrics_output"] for m in metrics)]
    if not todo:
        return report
    runs = {repr(r["run"]) for r in todo if isinstance(r.get("run"), dict)}
    if len(runs) != 1 or len(todo) != sum(isinstance(r.get("run"), dict) for r in todo):
        report.problems.append("records without one common 'run' (not a tir bench file)")
        return report
    try:
        env = replay_env(todo[0]["run"], called_tools(todo))
    except Exception as err:  # noqa: BLE001  (a run the env rejects: name it, go on)
        report.problems.append(f"cannot rebuild its env: {err}")
        return report
    try:
        for record in tqdm(todo, desc=path.name, leave=False):
            try:
                gap = rescore_record(env, record, metrics, atol)
            except (TIRError, OSError) as err:
                report.problems.append(str(err))
                continue
            except Exception as err:  # noqa: BLE001  (a record the env rejects: name it, go on)
                report.problems.append(f"malformed record ({type(err).__name__}: {err})")
                continue
            report.largest_psnr_gap = max(report.largest_psnr_gap, gap)
            record.update(stamp)
    finally:
        env.close()
    if write and not report.problems:
        write_jsonl(path, records)
        report.written = True
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("paths", type=Path, nargs="+", help="record files or folders of them")
    p.add_argument("--metrics", nargs="+", default=["niqe"], help="metrics to recompute")
    p.add_argument("--atol", type=float, default=ATOL_DB, help="allowed final-PSNR gap, dB")
    p.add_argument("--check", action="store_true", help="replay and compare; write nothing")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Rescore (or check) the files; regenerate changed folders' leaderboards; 1 on a problem."""
    from benchmarks.evaluate import fit_stamps
    from benchmarks.leaderboard import refresh_tables

    args = parse_args(argv)
    stamp = fit_stamps(args.metrics)  # a rescored NIQE says which photos it was fit on
    reports = []
    for path in tqdm(list(record_files(args.paths)), desc="record files"):
        reports.append(rescore_file(path, args.metrics, stamp, args.atol, not args.check))
    refresh_tables([r.path for r in reports if r.written])
    bad = [r for r in reports if r.problems]
    done = len(reports) - len(bad) if args.check else sum(r.written for r in reports)
    print(
        f"{len(reports)} files, {sum(r.records for r in reports)} records; "
        f"{'replayed' if args.check else 'rewritten'}: {done}; "
        f"largest final-PSNR gap {max((r.largest_psnr_gap for r in reports), default=0):.4f} dB"
    )
    for report in bad:
        print(f"{report.path}: {len(report.problems)} problem(s), left unchanged", file=sys.stderr)
        for problem in report.problems[:3]:
            print(f"  {problem}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
