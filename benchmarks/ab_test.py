r"""A paired A/B test of two agent settings on more episodes than a suite holds.

Five val photos give each suite only 40 episodes (one round: one crop and one draw of the
degradation parameters per photo and combination), too few to tell a quarter of a dB from
nothing when a setting changes a few episodes by several dB either way. This runs rounds
beyond the suites' own (round ``k`` is the suite's episode with ``k`` in its seed hash, a new
crop and new parameters of the same combination on the same photo; round 0 is the suite's
own episode, what ``tir bench`` records) and compares two agent specs on the very same
episodes: the paired mean difference with its standard error, over episodes and, more
conservatively, over photos (the episodes of one photo are not independent).

Usage::

    python -m benchmarks.ab_test --a exhaustive --b exhaustive:judge=true \
        --images corpus:val --rounds 0 4 --jobs 2 --json benchmarks/results/judge/ab_val.json

Agent specs are ``NAME`` or ``NAME:KEY=VALUE[,KEY=VALUE...]`` (as ``--agent-arg``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.evaluate import EpisodeSpec
from benchmarks.perception_cv import SUITES, agent_records, agent_spec
from tir_env.errors import ReservedPhotosError, TIRError
from tir_env.files import write_text_atomic
from tir_env.independent import refuse_reserved


def round_episodes(images: str, suites: Sequence[str], first: int, stop: int) -> list[tuple]:
    """(suite, episode) pairs of rounds ``first`` to ``stop - 1`` of every suite.

    Round ``k`` of a suite with ``s`` seeds per pair holds its seeds ``k*s .. k*s + s - 1``,
    so round 0 is exactly the suite's own episodes and later rounds never repeat them.
    """
    from benchmarks.suites import protocol_suite
    from tir_env import data

    ids = data.source(images).ids
    out = []
    for name in suites:
        suite = protocol_suite(name)  # a suite, or a training protocol played as one
        n = suite.seeds_per_pair
        out += [
            (suite, EpisodeSpec(image, combo, suite.seed(image, combo, k)))
            for r in range(first, stop)
            for image in ids
            for combo in suite.combos
            for k in range(r * n, (r + 1) * n)
        ]
    return out


class EpisodeTicks:
    """Counts a worker's ended episodes into a shared queue (picklable: a manager's proxy).

    :func:`run_spec` calls it with each record; :func:`count_ticks` drains the queue into a
    progress bar, so a bar over several processes moves with every episode, not every agent.
    """

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def __call__(self, record: dict[str, Any]) -> None:
        """Count one ended episode (only the count crosses the process boundary)."""
        del record
        self.queue.put(1)


def count_ticks(queue: Any, futures: Sequence[Any], bar: Any, wait: float = 0.5) -> None:
    """Advance ``bar`` by each tick in ``queue`` until every future is done, then drain it."""
    import queue as queues

    while True:
        finished = all(f.done() for f in futures)
        try:
            while True:
                bar.update(queue.get(timeout=0 if finished else wait))
        except queues.Empty:
            if finished:
                return


def run_spec(
    spec: str,
    episodes: list[tuple],
    images: str,
    weights: str | None = None,
    tuned: str | None = None,
    env: tuple[tuple[str, str], ...] = (),
    on_episode: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One agent spec's records (in a worker: one torch thread).

    ``weights``: a learned-weights folder the spec loads its networks from instead of the
    shipped ones (``$TIR_LEARNED_WEIGHTS`` in this worker only). ``tuned``: a table of fitted
    tool parameters it runs instead of ``agents/tuned_params.json`` (``$TIR_TUNED_PARAMS``).
    ``env``: environment variables set in this worker while it runs (a switch the code reads
    at each call, such as ``TIR_DISK_8BIT_FIT``). ``on_episode``: called with each record as
    its episode ends (:class:`EpisodeTicks`: a progress bar across processes).
    """
    import torch

    from agents.tuned import TUNED_ENV
    from tir_env.files import environ_set
    from tir_env.tools.learned.weights import weights_folder

    torch.set_num_threads(1)
    if weights is None and tuned is None and not env:
        return agent_records(spec, episodes, images, on_episode)
    _forget_networks()
    try:
        with contextlib.ExitStack() as stack:
            if weights is not None:
                stack.enter_context(weights_folder(weights))
            if tuned is not None:
                stack.enter_context(environ_set(TUNED_ENV, tuned))
            for name, value in env:
                stack.enter_context(environ_set(name, value))
            return agent_records(spec, episodes, images, on_episode)
    finally:
        _forget_networks()


def _forget_networks() -> None:
    """Drop every network and tool result this process holds, so the next read loads afresh.

    Perception and the quality-gain model cache their networks, ``make_tool`` its tools (a
    learned one with the network it loaded) and the shared pool their results: an arm run in
    a process that already ran the other would otherwise read the other's weights.
    """
    from tir_env import perception, quality_gain
    from tir_env.tools.base import make_tool
    from tir_env.tools.pool.default import set_default_pool

    perception.reload()
    quality_gain.reload()
    make_tool.cache_clear()  # a learned tool keeps the network it loaded
    previous = set_default_pool(None)
    if previous is not None:
        previous.close()


def record_row(record: dict[str, Any]) -> dict[str, Any]:
    """What a comparison keeps of an episode's record: key, input and output PSNR, calls, cost.

    ``executions``: the tool executions the agent ran (its calls plus what it ran ahead:
    candidates, probes, vetoed calls).
    """
    return {
        "suite": record["suite"],
        "image": record["image"],
        "degradations": record["degradations"],
        "seed": record["seed"],
        "input": record["metrics_input"]["psnr"],
        "output": record["metrics_output"]["psnr"],
        "calls": sum(1 for action in record.get("actions") or [] if action),  # STOP is None
        "executions": record.get("tool_executions"),
    }


def summary(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Paired difference ``b - a`` overall, by suite and by photo, with standard errors.

    Raises:
        ValueError: the two lists are not the same episodes in the same order.
    """
    keys = [(r["suite"], r["image"], r["seed"]) for r in a]
    if keys != [(r["suite"], r["image"], r["seed"]) for r in b]:
        raise ValueError("the two runs are not the same episodes")
    out_a, out_b = (np.array([r["output"] for r in run]) for run in (a, b))
    diff = out_b - out_a
    images = np.array([r["image"] for r in a])
    suites = np.array([r["suite"] for r in a])
    by_photo = {p: float(diff[images == p].mean()) for p in sorted(set(images.tolist()))}
    return {
        "episodes": len(diff),
        "mean": float(diff.mean()),
        "se": standard_error(diff),
        "se_photos": standard_error(np.array(list(by_photo.values()))),
        "changed": int((np.abs(diff) > 1e-6).sum()),
        "better": int((diff > 1e-6).sum()),
        "worse": int((diff < -1e-6).sum()),
        "input": float(np.mean([r["input"] for r in a])),
        "a": float(out_a.mean()),
        "b": float(out_b.mean()),
        "by_suite": {
            s: {
                "episodes": int(m.sum()),
                "a": float(out_a[m].mean()),
                "b": float(out_b[m].mean()),
                "mean": float(diff[m].mean()),
                "se": standard_error(diff[m]),
            }
            for s in dict.fromkeys(suites.tolist())
            for m in [suites == s]
        },
        "by_photo": by_photo,
        **executions(a, b),
    }


def executions(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean tool executions an episode of each arm, overall and by suite (when recorded)."""
    if any(r.get("executions") is None for run in (a, b) for r in run):
        return {}  # rows written before executions were kept
    suites = [r["suite"] for r in a]

    def mean(run: Sequence[dict[str, Any]], suite: str | None = None) -> float:
        rows = zip(run, suites, strict=True)
        return float(np.mean([r["executions"] for r, s in rows if suite in (None, s)]))

    by_suite = {s: {"a": mean(a, s), "b": mean(b, s)} for s in dict.fromkeys(suites)}
    return {"executions": {"a": mean(a), "b": mean(b)}, "executions_by_suite": by_suite}


def standard_error(x: np.ndarray) -> float | None:
    """Standard error of the mean; ``None`` for fewer than two values (JSON has no NaN)."""
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None


def _fmt(se: float | None) -> str:
    return "n/a" if se is None else f"{se:.3f}"


def markdown(result: dict[str, Any]) -> list[str]:
    """The result as a table by suite, then one line overall."""
    s = result["summary"]
    a, b = result["a"], result["b"]
    if result.get("weights_b"):
        b = f"{b}` with `{result['weights_b']}"
    if result.get("tuned_b"):
        b = f"{b}` with parameters `{result['tuned_b']}"
    if result.get("env_b"):
        b = f"{b}` with `" + " ".join(f"{k}={v}" for k, v in result["env_b"].items())
    lines = [
        f"| suite | episodes | `{a}` | `{b}` | b - a (se) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in s["by_suite"].items():
        lines.append(
            f"| {name} | {row['episodes']} | {row['a']:.2f} | {row['b']:.2f} | "
            f"{row['mean']:+.3f} ({_fmt(row['se'])}) |"
        )
    lines.append(
        f"| all | {s['episodes']} | {s['a']:.2f} | {s['b']:.2f} | "
        f"{s['mean']:+.3f} ({_fmt(s['se'])}) |"
    )
    lines += [
        "",
        f"Input {s['input']:.2f} dB. `{b}` changed {s['changed']} of {s['episodes']} episodes "
        f"({s['better']} better, {s['worse']} worse); by photo, b - a = "
        + ", ".join(f"{v:+.2f}" for v in s["by_photo"].values())
        + f" (se over photos {_fmt(s['se_photos'])}).",
    ]
    if "executions" in s:
        per_suite = ", ".join(
            f"{k} {v['a']:.1f} / {v['b']:.1f}" for k, v in s["executions_by_suite"].items()
        )
        lines[-1] += (
            f" Tool executions an episode, a / b: {s['executions']['a']:.2f} / "
            f"{s['executions']['b']:.2f} ({per_suite})."
        )
    return lines


def run_arms(
    arms: Sequence[tuple[str, str | None, str | None, tuple[tuple[str, str], ...]]],
    episodes: list[tuple],
    images: str,
    jobs: int,
    what: str = "arms",
) -> list[list[dict[str, Any]]]:
    """Each arm's rows (spec, weights, tuned table, environment), with a bar over episodes.

    Each arm is one job of ``jobs`` processes (its networks load once); the bar, labelled
    with ``what`` the arms are, counts every arm's ended episodes (:class:`EpisodeTicks`).
    """
    from multiprocessing import Manager

    from tqdm import tqdm

    workers = max(1, min(jobs, len(arms)))
    with Manager() as manager, ProcessPoolExecutor(max_workers=workers) as pool:
        ticks = EpisodeTicks(manager.Queue())
        futures = [
            pool.submit(run_spec, spec, episodes, images, weights, tuned, env, ticks)
            for spec, weights, tuned, env in arms
        ]
        label = f"{len(arms)} {what} x {len(episodes)} episodes"
        with tqdm(total=len(arms) * len(episodes), desc=label, unit="episode") as bar:
            count_ticks(ticks.queue, futures, bar)
        return [[record_row(r) for r in f.result()] for f in futures]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both specs on the rounds' episodes; print and optionally write the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--a", required=True, help="baseline agent spec")
    parser.add_argument("--b", required=True, help="challenger agent spec")
    parser.add_argument("--images", default="corpus:val")
    parser.add_argument("--suites", nargs="+", default=list(SUITES))
    parser.add_argument("--rounds", nargs=2, type=int, default=(0, 4), metavar=("FIRST", "STOP"))
    parser.add_argument("--jobs", type=int, default=2, help="processes (one per agent spec)")
    parser.add_argument("--json", type=Path, help="write the result here (refuses to overwrite)")
    parser.add_argument(
        "--weights-b",
        default=None,
        help="a learned-weights folder --b loads its networks from (--a: the shipped ones), "
        "to compare networks under one agent: --a exhaustive --b exhaustive --weights-b DIR",
    )
    parser.add_argument(
        "--tuned-b",
        default=None,
        help="a table of fitted tool parameters --b runs instead of agents/tuned_params.json "
        "(tune_params --out FILE), to compare tables under one agent",
    )
    parser.add_argument(
        "--env-b",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable set for --b only (repeat the flag), for a switch the "
        "code reads at each call: --a fixed --b fixed --env-b TIR_DISK_8BIT_FIT=1",
    )
    args = parser.parse_args(argv)
    try:  # an A/B test chooses defaults: never on the independent set
        refuse_reserved([args.images], "an A/B test (it chooses defaults)")
    except ReservedPhotosError as err:
        parser.error(str(err))
    env_b = tuple(tuple(item.split("=", 1)) for item in args.env_b)
    if any(len(pair) != 2 or not pair[0] for pair in env_b):
        parser.error(f"--env-b {args.env_b}: want NAME=VALUE")
    if args.weights_b is not None and not Path(args.weights_b).is_dir():
        parser.error(f"--weights-b {args.weights_b}: no such folder")
    if args.tuned_b is not None:
        from agents.tuned import tuned_params

        try:  # a broken table is named here, not as a worker's traceback
            tuned_params(Path(args.tuned_b))
        except TIRError as err:
            parser.error(f"--tuned-b: {err}")
    if args.json and args.json.exists():
        parser.error(f"{args.json} exists; choose another path or delete it first")
    if not 0 <= args.rounds[0] < args.rounds[1]:
        parser.error(f"--rounds {args.rounds[0]} {args.rounds[1]}: want 0 <= FIRST < STOP")
    try:  # a bad spec is named here, not as a worker's traceback
        for spec in (args.a, args.b):
            agent_spec(spec)
        episodes = round_episodes(args.images, args.suites, *args.rounds)
    except TIRError as err:
        parser.error(str(err))
    runs = run_arms(
        ((args.a, None, None, ()), (args.b, args.weights_b, args.tuned_b, env_b)),
        episodes,
        args.images,
        args.jobs,
    )
    result = {
        "command": "python -m benchmarks.ab_test "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "a": args.a,
        "b": args.b,
        "images": args.images,
        "rounds": list(args.rounds),
        "weights_b": args.weights_b,
        "tuned_b": args.tuned_b,
        "env_b": dict(env_b),
        "summary": summary(*runs),
        "episodes": {"a": runs[0], "b": runs[1]},
    }
    print("\n".join(markdown(result)))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
