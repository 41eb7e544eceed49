"""The vector env against the code the speed issue started from, re-measured in the same run.

Issue 17 set its targets as multiples of figures measured once, on 2026-11-26, on a shared
machine whose speed moves by +-40% over hours (the same code used 8.6 to 12.9 ms of CPU per
sub-step on one afternoon). A ratio to a figure from another day mixes the code's speed-up
with the host's mood. This benchmark measures both sides now: it checks out the baseline
revision (by default the last commit before the issue's work, whose
``benchmarks/results/speed.json`` holds the issue's 25.9 and 48.2 steps/s) into a temporary
git worktree and times, in alternating rounds of fresh processes,

* the baseline's own ``benchmarks.speed.vector_env_sps`` at N=4 (its toolbox: the 22
  classical tools),
* this checkout's :func:`benchmarks.speed.vector_env_rates` at N=16 on each ``--toolbox``,

each for the same number of sub-env steps after an unrecorded warm-up run in the same
process (``--warmup-sub-steps``: enough random calls to reach nearly every tool, so lazy
imports, weight loading and first calls hardly count on either side; the baseline's own
record timed them in its first repeat; both benchmarks seed a run's random calls with its
repeat index, so the warm-up replays the first calls of the timed run, on each side alike,
through a fresh pool without a cache), and reports per round the ratio current /
baseline, whose median is the figure (rounds rotate the order of the arms). Random tools,
random parameters, never STOP, 64 px, ``max_steps=3``, one torch thread, OpenCV's default
threads, as in both benchmarks.

Writes ``benchmarks/results/speed_baseline.json`` and the section between the
``speed-baseline`` markers of ``docs/performance.md``.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.speed_baseline
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.speed import cpu_counters, machine, steal_share
from benchmarks.tool_speed import stored_or_measured

#: The last commit before issue 17's work (2026-11-30 00:15 UTC); its committed speed record
#: (2026-11-26) has the vector env at 25.9 steps/s for N=1 and 48.2 for N=4.
BASELINE_REV = "9f8a36fe70922ead0328851234bdef3fdfe84648"
ISSUE_FIGURE = 48.2  # the baseline's committed N=4 figure, steps/s
START, END = "<!-- speed-baseline:start -->", "<!-- speed-baseline:end -->"
COMMAND = "OMP_NUM_THREADS=1 python -m benchmarks.speed_baseline"
ROOT = Path(__file__).resolve().parent.parent

# Each arm runs in a fresh interpreter with its checkout first on the path; the last line of
# its output is the rate (steps/s) as JSON.
_GUARD = """
import os, sys, benchmarks.speed, tir_env
root = os.path.realpath(sys.argv[1])
for module in (tir_env, benchmarks.speed):  # not the editable install's copy
    assert os.path.realpath(module.__file__).startswith(root + os.sep), module.__file__
"""
_BASELINE_CODE = (
    _GUARD
    + """
import json, torch
torch.set_num_threads(1)
import benchmarks.speed as s
s.vector_env_sps({n}, steps={warm}, repeats=1)  # warm-up: imports, first calls
print(json.dumps(s.vector_env_sps({n}, steps={steps}, repeats=1)))
"""
)
_CURRENT_CODE = (
    _GUARD
    + """
import json
import benchmarks.speed as s
s.set_threads(1)
s.vector_env_rates({n}, steps={warm}, repeats=1, toolbox={toolbox!r})  # warm-up
print(json.dumps(s.vector_env_rates({n}, steps={steps}, repeats=1, toolbox={toolbox!r})[0]))
"""
)


class BaselineUnavailableError(RuntimeError):
    """The baseline revision cannot be checked out (not a git clone, or the commit is absent)."""


@contextlib.contextmanager
def baseline_checkout(rev: str, existing: str | None = None) -> Iterator[Path]:
    """A checkout of ``rev``: ``existing`` as given, else a temporary git worktree.

    Raises:
        BaselineUnavailableError: ``existing`` has no ``tir_env``, or git cannot check
            ``rev`` out of this clone (a shallow clone or a source archive).
    """
    if existing is not None:
        path = Path(existing)
        if not (path / "tir_env").is_dir() or not (path / "benchmarks" / "speed.py").is_file():
            raise BaselineUnavailableError(f"{path} is not a TIR checkout (no tir_env/)")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="tir-baseline-") as tmp:
        path = Path(tmp) / "checkout"
        done = _git("worktree", "add", "--detach", str(path), rev)
        if done.returncode != 0:
            raise BaselineUnavailableError(
                f"git cannot check out {rev} here ({done.stderr.strip()}); run from a full "
                "clone (git fetch --unshallow) or pass --baseline-dir with a checkout of it"
            )
        try:
            yield path
        finally:
            if _git("worktree", "remove", "--force", str(path)).returncode != 0:
                print(f"warning: could not remove the worktree {path}", file=sys.stderr)
            _git("worktree", "prune")  # no stale entry in .git/worktrees, whatever happened


def _git(*words: str, where: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``git -C where WORDS``; a missing git is :class:`BaselineUnavailableError`."""
    try:
        return subprocess.run(
            ["git", "-C", str(where), *words], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise BaselineUnavailableError(
            "git is not installed; pass --baseline-dir with a checkout of the baseline"
        ) from None


def revision(where: Path) -> dict[str, Any]:
    """The commit checked out at ``where`` and whether its tracked files are changed."""
    head = _git("rev-parse", "HEAD", where=where)
    dirty = _git("status", "--porcelain", "--untracked-files=no", where=where)
    return {
        "commit": head.stdout.strip() if head.returncode == 0 else None,
        "changed": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None,
    }


def run_arm(checkout: Path, code: str) -> float:
    """Run ``code`` in a fresh interpreter with ``checkout`` first on the path; its rate."""
    # the checkout first; the user's own path entries after it
    path = os.pathsep.join(p for p in (str(checkout), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(checkout)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark arm failed in {checkout}:\n{done.stderr[-2000:]}")
    try:
        return float(json.loads(lines[-1]))
    except (ValueError, TypeError):
        raise RuntimeError(f"benchmark arm in {checkout} printed no rate: {lines[-1]!r}") from None


def arms(
    toolboxes: Sequence[str], sub_steps: int, warmup: int, n_base: int, n_cur: int
) -> list[dict[str, Any]]:
    """The arms of one round: the baseline at ``n_base``, then this code on each toolbox.

    ``sub_steps`` timed and ``warmup`` untimed sub-env steps each, as lockstep steps of
    ``n`` envs (at least one).
    """

    def steps(n: int, sub: int) -> int:
        return max(1, sub // n)

    base = _BASELINE_CODE.format(
        n=n_base, steps=steps(n_base, sub_steps), warm=steps(n_base, warmup)
    )
    out: list[dict[str, Any]] = [{"name": "baseline", "envs": n_base, "code": base}]
    for box in toolboxes:
        code = _CURRENT_CODE.format(
            n=n_cur, steps=steps(n_cur, sub_steps), warm=steps(n_cur, warmup), toolbox=box
        )
        out.append({"name": box, "envs": n_cur, "code": code})
    return out


def measure(checkout: Path, plan: list[dict[str, Any]], rounds: int) -> list[dict[str, float]]:
    """``rounds`` rounds of every arm of ``plan``; each round's rates by arm name.

    The order of the arms rotates from round to round, so none always runs first.
    """
    results = []
    for r in range(rounds):
        shift = r % len(plan)
        rates: dict[str, float] = {}
        for arm in plan[shift:] + plan[:shift]:
            where = checkout if arm["name"] == "baseline" else ROOT
            rates[arm["name"]] = run_arm(where, arm["code"])
            print(f"round {r + 1}/{rounds}: {arm['name']} {rates[arm['name']]:.1f} steps/s")
        results.append(rates)
    return results


def summary(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per toolbox: median rate, and the median, lowest and highest per-round ratio."""
    rounds = report["rounds"]
    base = [r["baseline"] for r in rounds]
    out = {"baseline": {"rate": statistics.median(base), "low": min(base), "high": max(base)}}
    for box in report["toolboxes"]:
        ratios = [r[box] / r["baseline"] for r in rounds]
        rates = [r[box] for r in rounds]
        out[box] = {
            "rate": statistics.median(rates),
            "ratio": statistics.median(ratios),
            "ratio_low": min(ratios),
            "ratio_high": max(ratios),
            "vs_issue_figure": statistics.median(rates) / ISSUE_FIGURE,
        }
    return out


def table(report: dict[str, Any]) -> str:
    """The Markdown section (between the markers) for ``docs/performance.md``."""
    found = summary(report)
    m = report["machine"]
    n_base, n_cur = report["baseline_envs"], report["envs"]
    steal = report.get("cpu_steal")
    lines = [
        START,
        "## The vector env against the issue's baseline, in one run",
        "",
        f"Generated by `{report['command']}` on {m.get('cpu')} ({m.get('date')}); baseline "
        f"`{report['baseline_rev'][:7]}`, the code before the toolbox work, whose committed "
        f"record (2026-11-26) has {ISSUE_FIGURE} steps/s at N={n_base}. Both sides measured "
        f"now, in {len(report['rounds'])} alternating rounds of fresh processes, "
        f"{report['sub_steps']} sub-env steps per arm after "
        f"{report.get('warmup_sub_steps', 0)} untimed ones in the same process "
        "(random tools and parameters, 64 px, `max_steps=3`, one torch thread); "
        f"the ratio is this checkout's N="
        f"{n_cur} rate over the baseline's N={n_base} rate in the same round, median "
        "(lowest-highest) over rounds. It separates the code's speed-up from the host's "
        "speed, which moves by tens of percent over hours"
        + (f" ({100 * steal:.1f}% of the cores' time stolen by the host here)." if steal else "."),
        "",
        f"| arm | envs | steps/s (median) | / baseline N={n_base}, same round | "
        f"/ {ISSUE_FIGURE} (the fixed figure) |",
        "|---|---:|---:|---:|---:|",
        f"| baseline `{report['baseline_rev'][:7]}` | {n_base} | "
        f"{found['baseline']['rate']:.1f} ({found['baseline']['low']:.1f}-"
        f"{found['baseline']['high']:.1f}) | 1 | "
        f"{found['baseline']['rate'] / ISSUE_FIGURE:.2f}x |",
    ]
    for box in report["toolboxes"]:
        row = found[box]
        lines.append(
            f"| this checkout, `{box}` toolbox | {n_cur} | {row['rate']:.1f} | "
            f"**{row['ratio']:.2f}x** ({row['ratio_low']:.2f}-{row['ratio_high']:.2f}) | "
            f"{row['vs_issue_figure']:.2f}x |"
        )
    lines.append(END)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure (or with ``--doc-only`` read back), write the JSON and the doc section."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default=BASELINE_REV, help="the baseline git revision")
    p.add_argument("--baseline-dir", help="an existing checkout of the baseline instead")
    p.add_argument("--toolbox", nargs="+", default=["full", "classical"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sub-steps", type=int, default=768, help="sub-env steps per arm")
    p.add_argument(
        "--warmup-sub-steps", type=int, default=192, help="untimed sub-env steps per arm first"
    )
    p.add_argument("--baseline-envs", type=int, default=4)
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--out-json", default="benchmarks/results/speed_baseline.json")
    p.add_argument("--out-md", default="docs/performance.md")
    p.add_argument("--doc-only", action="store_true", help="rewrite the doc from the JSON")
    args = p.parse_args(argv)
    if "baseline" in args.toolbox:
        p.error("--toolbox: 'baseline' names the baseline's arm; use the toolboxes' names")

    def run() -> dict[str, Any]:
        start = cpu_counters()
        with baseline_checkout(args.baseline, args.baseline_dir) as checkout:
            plan = arms(
                args.toolbox, args.sub_steps, args.warmup_sub_steps, args.baseline_envs, args.envs
            )
            rounds = measure(checkout, plan, args.rounds)
            base = revision(checkout)
        words = ["python -m benchmarks.speed_baseline", *(sys.argv[1:] if argv is None else argv)]
        return {
            "command": " ".join(["OMP_NUM_THREADS=1", *words]),
            # what was measured: a --baseline-dir may hold another commit than --baseline
            "baseline_rev": base["commit"] or args.baseline,
            "baseline_changed": base["changed"],
            "current": revision(ROOT),
            "baseline_envs": args.baseline_envs,
            "envs": args.envs,
            "toolboxes": list(args.toolbox),
            "sub_steps": args.sub_steps,
            "warmup_sub_steps": args.warmup_sub_steps,
            "machine": machine(),
            "rounds": rounds,
            "cpu_steal": steal_share(start, cpu_counters()),
        }

    return stored_or_measured(args.out_json, args.out_md, args.doc_only, run, table, (START, END))


if __name__ == "__main__":
    main()
