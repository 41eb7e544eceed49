"""``tir bench`` (agents on a suite, resumable records) and ``tir leaderboard``."""

from __future__ import annotations

import json
import shlex
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.commands.common import depth_source, register_checkpoints
from benchmarks.commands.configs import BenchConfig, CompareConfig, LeaderboardConfig


def cmd_bench(config: BenchConfig) -> int:
    """Run agents on a suite; append one JSONL per agent (resumable); write the leaderboard.

    Re-running into the same ``--out`` skips the episodes already recorded there; a re-run
    whose configuration differs (suite version, images, env or agent settings) is refused
    before any episode runs. ``--limit`` is not part of the configuration: a larger one adds
    episodes, a smaller one runs nothing new; ``--limit 0`` (as no ``--limit``) runs every
    photo, as ``python -m benchmarks.heldout_rounds --limit 0`` does. A negative ``--limit``
    or an ``--out`` that is a file is refused (status 2) before anything runs, and a skipped
    image's warning prints as one line above the progress bar.
    """
    problem = bench_usage_error(config)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with one_line_warnings():
        return _bench(config)


def bench_usage_error(config: BenchConfig) -> str | None:
    """Why ``config`` cannot run, checked before any work (``None``: it can).

    Refused: a negative ``--limit`` (0 means every photo) and an ``--out`` that is, or lies
    under, an existing path that is not a folder.
    """
    if config.limit is not None and config.limit < 0:
        return f"--limit must be 0 (every photo) or more, got {config.limit}"
    out = Path(config.out).expanduser()
    for path in (out, *out.parents):
        if path.exists():
            if path.is_dir():
                return None
            where = "is a file" if path == out else f"lies under {path}, which is a file"
            return f"--out {config.out} {where}; name a folder"
    return None


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Within the block, print each warning as one line above the progress bar.

    ``SkippedWarning`` prints as ``warning: MESSAGE``, any other as ``warning: CATEGORY:
    MESSAGE``, with no file, line number or source line. The block's
    :func:`warnings.formatwarning` writes the line itself through ``tqdm.write`` (which
    lifts the bar out of the way) and hands the printer an empty string, so warnings that a
    caller records (``catch_warnings(record=True)``, ``pytest.warns``) are recorded as before:
    recording never formats. The previous formatter comes back after the block.
    """
    from tqdm.auto import tqdm

    from tir_env.errors import SkippedWarning

    def one_line(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
        text = " ".join(str(message).split())
        kind = "" if issubclass(category, SkippedWarning) else f"{category.__name__}: "
        tqdm.write(f"warning: {kind}{text}", file=sys.stderr)
        return ""

    before = warnings.formatwarning
    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = before


def _bench(config: BenchConfig) -> int:
    """:func:`cmd_bench` on a config that :func:`bench_usage_error` passed."""
    from benchmarks.evaluate import check_same_episodes, pair_spec, resume_records, spec_of
    from benchmarks.suites import get_suite
    from tir_env.errors import TIRError
    from tir_env.tools.presets import toolbox_tools

    if not register_checkpoints(config):
        return 2
    suite = get_suite(config.suite)
    if config.pairs and (config.images or config.whole or config.patch_size):
        print("error: --pairs brings its own images; drop --images/--whole/--patch-size")
        return 2
    if config.whole or config.patch_size:
        suite = suite.at_size(None if config.whole else config.patch_size)
    use_tool_timeout(tool_timeout(config, whole=suite.patch_size is None or bool(config.pairs)))
    images = config.images or "test"
    specs = suite.episodes(images, limit=config.limit)
    out = Path(config.out)
    env_kwargs = suite.env_kwargs(images)
    # Another toolbox is another entry: label it, so rows and files do not collide.
    other = bool(config.toolbox) and config.toolbox != env_kwargs.get("toolbox", "classical")
    if config.toolbox:
        env_kwargs["toolbox"] = config.toolbox
    plans: list[_Plan] = []
    try:
        options = parse_agent_args(config.agent_arg, config.agents)  # before any episode
        toolbox_tools(env_kwargs.get("toolbox", "classical"))
        if config.depth != "proxy":
            env_kwargs["depth"] = depth_source(config)
        pairs = suite_pairs(config.pairs, suite) if config.pairs else None
        if config.pairs and pairs is not None:
            suite = replace(suite, name=f"{suite.base_name}@pairs", patch_size=None)
            specs = [pair_spec(p) for p in pairs]
            images = f"pairs:{Path(config.pairs).expanduser().resolve()}"
        for agent in config.agents:  # every refusal comes before any episode runs
            label = f"{agent}@{config.toolbox}" if other else agent
            run = _bench_run(config, suite, images, env_kwargs, label, options[agent])
            path = out / f"{suite.name}__{label}.jsonl"
            siblings = [p for p in sorted(out.glob(f"{suite.name}__*.jsonl")) if p != path]
            check_same_episodes(siblings, run)
            done = {spec_of(r) for r in resume_records(path, run)}
            plans.append(_Plan(agent, label, options[agent], run, path, done))
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    skipped = 0
    for plan in plans:
        ran = _run_plan(config, suite, specs, pairs, env_kwargs, plan)
        if ran is None:
            return 2
        skipped += ran
    return _bench_leaderboard(out, skipped)


#: Tool timeout (seconds) on whole photos when ``--tool-timeout`` is not given.
WHOLE_PHOTO_TOOL_TIMEOUT_S = 300.0


def tool_timeout(config: BenchConfig, whole: bool) -> float | None:
    """The tool timeout a bench runs with (``None``: the pool's default, for crops)."""
    if config.tool_timeout is not None:
        return config.tool_timeout
    return WHOLE_PHOTO_TOOL_TIMEOUT_S if whole else None


def use_tool_timeout(seconds: float | None) -> None:
    """Make the process's default pool one whose tool calls time out after ``seconds``.

    The bench's envs share the default pool; ``None`` keeps it as it is.
    """
    if seconds is None:
        return
    from tir_env.tools.pool import make_pool, pool_config, set_default_pool

    previous = set_default_pool(make_pool(pool_config(timeout_s=seconds)))
    if previous is not None:
        previous.close()


@dataclass(frozen=True)
class _Plan:
    """One agent's part of a bench, checked before any episode runs."""

    agent: str
    label: str  # the agent, with @TOOLBOX when --toolbox is not the suite's
    kwargs: dict[str, Any]  # its --agent-arg options, typed
    run: dict[str, Any]  # what its records must match to resume
    path: Path
    done: set[Any]  # episodes already recorded in path


def _run_plan(
    config: BenchConfig,
    suite: Any,
    specs: Sequence[Any],
    pairs: Sequence[Any] | None,
    env_kwargs: dict[str, Any],
    plan: _Plan,
) -> int | None:
    """Run one agent's episodes not yet done; the count of skipped ones (``None``: failed)."""
    from benchmarks.evaluate import evaluate, evaluate_pairs
    from tir_env.errors import TIRError

    agent, path, done, kwargs = plan.agent, plan.path, plan.done, plan.kwargs
    command = "tir " + shlex.join(config.argv or sys.argv[1:])
    fields = {"agent": plan.label, "command": command, "run": plan.run}
    sink = _bench_sink(path, fields, config.toolbox)
    bad: list[str] = []
    try:
        if pairs is not None:
            records = evaluate_pairs(
                agent, pairs, env_kwargs, suite.name, suite.version, agent_kwargs=kwargs,
                done=done, sink=sink,
            )  # fmt: skip
        else:
            toolbox = (config.toolbox or "") if plan.label != agent else ""
            folder = Path(config.out) / "images" / suite.name / toolbox
            records = evaluate(
                agent, specs, env_kwargs, suite.name, suite.version,
                images_dir=folder if config.save_images else None,
                agent_kwargs=kwargs, done=done, sink=sink,
                on_skip=lambda spec, _: bad.append(spec.image_id), strict=config.strict,
            )  # fmt: skip
    except (TIRError, OSError) as err:
        note = kept_note(path)
        print(f"error: agent {agent!r} on suite {suite.name!r}: {err}{note}", file=sys.stderr)
        return None
    kept = sum(1 for s in specs if s in done)
    line = f"{suite.name} / {plan.label}: {len(records)} episodes run, {kept} already in {path}"
    if bad:
        line += f", {len(bad)} skipped (unreadable images: {', '.join(sorted(set(bad)))})"
    print(line)
    return len(bad)


def kept_note(path: Path) -> str:
    """What a failed bench leaves in ``path``: its records, told only when there are some."""
    try:
        kept = sum(1 for line in path.read_text().splitlines() if line.strip())
    except OSError:  # never written (or unreadable): claim nothing
        kept = 0
    if not kept:
        return " (no episode was recorded)"
    told = "episode recorded so far is" if kept == 1 else f"{kept} episodes recorded so far are"
    return f" (the {told} kept in {path}; re-run to resume)"


def split_agent_args(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``AGENT.KEY=VALUE`` (or ``KEY=VALUE``: every agent) -> ``{agent or "*": {key: value}}``.

    Raises:
        ConfigValueError: an item without ``=`` or without a key.
    """
    from tir_env.errors import ConfigValueError

    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        agent, _, name = key.rpartition(".")
        if not eq or not name:
            raise ConfigValueError(
                f"--agent-arg {item!r}: write AGENT.KEY=VALUE (or KEY=VALUE for every agent), "
                "e.g. --agent-arg ppo.deterministic=false"
            )
        out.setdefault(agent or "*", {})[name] = value
    return out


def parse_agent_args(items: Sequence[str], agents: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each agent's ``--agent-arg`` options, parsed once by the types of its ``Options``.

    Returns:
        ``{agent: {key: typed value}}`` for every agent of ``agents`` (only the keys given;
        raw strings for an agent factory that declares no ``Options``).

    Raises:
        ConfigValueError: a malformed item, or a value that does not fit its field's type.
        UnknownConfigFieldError: a key the agent's ``Options`` lacks, or an agent name that is
            not among ``agents`` (both with a did-you-mean).
        UnknownNameError: an agent that is not registered.
    """
    from agents.base import agent_options
    from tir_env.errors import UnknownConfigFieldError, did_you_mean

    given = split_agent_args(items)
    for name in given:
        if name != "*" and name not in agents:
            raise UnknownConfigFieldError(
                f"--agent-arg names agent {name!r}, which is not in --agents "
                f"({', '.join(agents)})" + did_you_mean(name, list(agents))
            )
    parsed: dict[str, dict[str, Any]] = {}
    for agent in agents:
        values = {**given.get("*", {}), **given.get(agent, {})}
        options = agent_options(agent, values)
        parsed[agent] = values if options is None else {k: getattr(options, k) for k in values}
    return parsed


def suite_pairs(folder: str, suite: Any) -> list[Any]:
    """The pairs under ``folder`` that belong to ``suite`` (all of them if unlabelled).

    Raises:
        DataError: bad folder layout (see :mod:`tir_env.pairs`) or no pair of this suite.
    """
    from tir_env.errors import DataError
    from tir_env.pairs import find_pairs

    found = find_pairs(folder)
    chosen = [p for p in found if not p.degradations or p.degradations in suite.combos]
    if not chosen:
        combos = sorted({"+".join(p.degradations) for p in found})
        raise DataError(
            f"none of the {len(found)} pairs under {folder} is a combination of suite "
            f"{suite.base_name!r} (found {combos}); pick the suite of those combinations"
        )
    return chosen


def _bench_run(
    config: BenchConfig,
    suite: Any,
    images: str,
    env_kwargs: dict[str, Any],
    label: str,
    agent_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """What defines a bench's records (stored in each; a re-run must match it to resume)."""
    folder = Path(images).expanduser()
    env = {k: v for k, v in env_kwargs.items() if k not in ("images", "toolbox")}
    run = {
        "suite": suite.name,
        "suite_version": suite.version,
        "images": str(folder.resolve()) if folder.is_dir() else images,
        "env": env,
        "agent": label,
        "agent_kwargs": agent_kwargs,
        "toolbox": env_kwargs.get("toolbox", "classical"),
        "register": list(config.register),
        "config": list(config.config),
    }
    return dict(json.loads(json.dumps(run, sort_keys=True, default=str)))


def _bench_sink(
    path: Path, fields: dict[str, Any], toolbox: str | None
) -> Callable[[dict[str, Any]], None]:
    """Label a record as this run's and append it to ``path`` at once."""
    from benchmarks.evaluate import append_jsonl

    def sink(record: dict[str, Any]) -> None:
        record.update(fields)
        if toolbox:
            record["toolbox"] = toolbox
        append_jsonl(path, record)

    return sink


def _bench_leaderboard(out: Path, skipped: int) -> int:
    """The leaderboard of every record under ``out``, and the count of skipped episodes."""
    from benchmarks.leaderboard import write_leaderboard
    from tir_env.errors import NoRecordsError

    if skipped:
        print(
            f"skipped {skipped} episodes whose image could not be read "
            "(warnings above; --strict stops instead)"
        )
    try:
        # Tables cover every record under ``out``, not just this run: the header lists each
        # record file's command, not argv.
        paths = write_leaderboard(out)
    except NoRecordsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((out / "leaderboard.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_leaderboard(config: LeaderboardConfig) -> int:
    """Tables and plots from the JSONL files under a folder."""
    from benchmarks.leaderboard import write_leaderboard
    from tir_env.errors import NoRecordsError

    if Path(config.dir).is_file():
        print(
            f"error: {config.dir} is a file; `tir leaderboard` takes the folder holding the "
            f"records (here: tir leaderboard {shlex.quote(str(Path(config.dir).parent))})",
            file=sys.stderr,
        )
        return 2
    out = Path(config.out or config.dir)
    try:
        write_leaderboard(Path(config.dir), out)
    except NoRecordsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((out / "leaderboard.md").read_text())
    return 0


def cmd_compare(config: CompareConfig) -> int:
    """Print (and write) the paired comparison of two folders of records."""
    from benchmarks.compare import compare, one_sided, render, write_report
    from tir_env.errors import (
        DataError,
        NoRecordsError,
        OutputExistsError,
        UnknownNameError,
    )

    base, new = config.base, config.new
    try:
        rows = compare(base, new, config.metric, config.agents)
        left_out = one_sided(base, new, config.agents)
        text = render(rows, base, new, config.metric, left_out)
        if config.out:
            write_report(text, Path(config.out))
    except (DataError, NoRecordsError, OutputExistsError, UnknownNameError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0
