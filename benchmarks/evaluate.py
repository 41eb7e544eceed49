"""Run agents on episodes and write one JSON record per episode.

A record holds everything a leaderboard needs and nothing it has to recompute: the
suite, image, degradations, agent, seed, the tool calls, every metric before and after,
tool executions and wall time.

Nothing is lost: records can be appended and flushed one episode at a time
(:func:`append_jsonl`), so an interrupted run keeps what it made, and a re-run skips the
episodes already recorded (``done``). An episode whose image cannot be read is skipped with a
:class:`~tir_env.errors.SkippedWarning` (``strict=True`` raises instead).
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zlib
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from agents.base import Episode, make_agent, rollout
from tir_env import data
from tir_env.env import TIREnv
from tir_env.errors import RunMismatchError, SkippedWarning, TIRError
from tir_env.files import write_text_atomic
from tir_env.images import load_image, save_image
from tir_env.pairs import Pair, check_sizes

#: Fields of a bench's run configuration that define its episodes (the rest: the agent's).
EPISODE_FIELDS = ("suite", "suite_version", "images", "env")
#: Errors that mean "this image cannot be used" (decoding, missing file, bad shape): the
#: episode is skipped, not the bench.
IMAGE_ERRORS: tuple[type[BaseException], ...] = (TIRError, OSError, ValueError)


@dataclass(frozen=True)
class EpisodeSpec:
    """One evaluation episode: which photo, which degradations, which seed."""

    image_id: str
    degradations: tuple[str, ...]
    seed: int


def episode_record(
    ep: Episode, agent: str, spec: EpisodeSpec, suite: str, version: str
) -> dict[str, Any]:
    """The JSON record of one episode."""
    return {
        "suite": suite,
        "suite_version": version,
        "image": spec.image_id,
        "degradations": list(spec.degradations),
        "agent": agent,
        "seed": spec.seed,
        "actions": [r.call.to_dict() if r.call else None for r in ep.records],
        "errors": [r.error for r in ep.records if r.error],
        "tool_executions": ep.tool_executions,
        "wall_time_s": ep.wall_time_s,
        "total_reward": ep.total_reward,
        "metrics_input": _finite(ep.metrics_input),
        "metrics_output": _finite(ep.metrics_output),
        **ep.extra,
    }


def evaluate(
    agent_name: str,
    specs: Sequence[EpisodeSpec],
    env_kwargs: dict[str, Any],
    suite: str = "adhoc",
    version: str = "0",
    images_dir: Path | None = None,
    progress: bool = True,
    agent_kwargs: dict[str, Any] | None = None,
    agent: Any = None,
    done: Container[EpisodeSpec] = frozenset(),
    sink: Callable[[dict[str, Any]], None] | None = None,
    on_skip: Callable[[EpisodeSpec, BaseException], None] | None = None,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """Run ``agent_name`` on every episode; optionally save each output image.

    Args:
        agent_name: Registered agent name (also the records' ``agent``).
        specs: The episodes, in order.
        env_kwargs: Keyword arguments of the env.
        suite: Suite name written into each record.
        version: Suite version written into each record.
        images_dir: Save input, clean and output images under this folder.
        progress: Show a progress bar.
        agent_kwargs: Keyword arguments of the agent.
        agent: An already built instance (else it is made from ``agent_name``).
        done: Episodes already recorded: not run again (resuming a run).
        sink: Called with each record as soon as its episode ends (e.g. :func:`append_jsonl`),
            so an interrupted run keeps every finished episode.
        on_skip: Called with an episode skipped because its image cannot be read, and why.
        strict: Raise on an unreadable image instead of skipping its episode.

    Returns:
        One record per episode run (not skipped, not already ``done``), in ``specs`` order.
    """
    if agent is None:
        agent = make_agent(agent_name, **(agent_kwargs or {}))
    env = TIREnv(**with_required_tools(env_kwargs, agent))
    source = data.source(env.config.images)
    bad: dict[str, BaseException] = {}
    records = []
    for spec in tqdm(specs, desc=agent_name, disable=not progress, leave=False):
        if spec in done:
            continue
        error = bad.get(spec.image_id) or _unreadable(source, spec.image_id)
        if error is not None:
            if strict:
                raise error
            if spec.image_id not in bad:  # one warning per image, not per episode
                warnings.warn(
                    f"skipping the episodes of image {spec.image_id!r}: {error} "
                    "(--strict stops instead)",
                    SkippedWarning,
                    stacklevel=2,
                )
                bad[spec.image_id] = error
            if on_skip is not None:
                on_skip(spec, error)
            continue
        options = {"image_id": spec.image_id, "degradations": spec.degradations}
        ep = rollout(env, agent, seed=spec.seed, options=options)
        record = {**episode_record(ep, agent_name, spec, suite, version), **setting(env)}
        if env.haze_depth is not None:  # which depth map the haze used: proxy, folder, model
            record["haze_depth"] = env.haze_depth
        records.append(record)
        if sink is not None:
            sink(record)
        if images_dir is not None:
            save_image(images_dir / agent_name / f"{_stem(spec)}.png", env.current_image())
            save_image(images_dir / "input" / f"{_stem(spec)}.png", env.input_image())
            save_image(images_dir / "clean" / f"{_stem(spec)}.png", env.clean_image())
    return records


def evaluate_pairs(
    agent_name: str,
    pairs: Sequence[Pair],
    env_kwargs: dict[str, Any],
    suite: str,
    version: str,
    progress: bool = True,
    agent_kwargs: dict[str, Any] | None = None,
    done: Container[EpisodeSpec] = frozenset(),
    sink: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``agent_name`` on given degraded/clean pairs (published inputs, no synthesis).

    The seed of each episode (for agents that draw random numbers) is a hash of the pair's
    name and combination, so reruns repeat. ``done`` and ``sink`` as in :func:`evaluate`.

    Raises:
        DataError: a pair whose sizes do not match (see :func:`tir_env.pairs.check_sizes`).
    """
    agent = make_agent(agent_name, **(agent_kwargs or {}))
    env = TIREnv(**with_required_tools(env_kwargs, agent))
    records = []
    for pair in tqdm(pairs, desc=agent_name, disable=not progress, leave=False):
        spec = pair_spec(pair)
        if spec in done:
            continue
        degraded, clean = load_image(pair.degraded), load_image(pair.clean)
        check_sizes(pair, degraded.shape[:2], clean.shape[:2])
        options = {
            "image": degraded,
            "reference": clean,
            "image_id": pair.name,
            "degradations": pair.degradations,
        }
        ep = rollout(env, agent, seed=spec.seed, options=options)
        record = episode_record(ep, agent_name, spec, suite, version)
        record.update(
            degradation_order="given",
            patch_size=None,
            image_size=list(clean.shape[:2]),
            pair={"degraded": str(pair.degraded), "clean": str(pair.clean)},
        )
        records.append(record)
        if sink is not None:
            sink(record)
    return records


def pair_spec(pair: Pair) -> EpisodeSpec:
    """The episode of a given pair: its name, its degradations and a seed hashed from both."""
    seed = zlib.crc32(f"{pair.name}|{'+'.join(pair.degradations)}".encode())
    return EpisodeSpec(pair.name, pair.degradations, seed)


def setting(env: TIREnv) -> dict[str, Any]:
    """What a record must say about how it was made: order, crop, image size, NIQE's fit."""
    out: dict[str, Any] = {
        "degradation_order": env.config.degradation_order,
        "patch_size": env.config.patch_size,
        "image_size": list(env.clean_image().shape[:2]) if env.has_reference else None,
    }
    return out | fit_stamps(env.metric_names)


def fit_stamps(metrics: Sequence[str]) -> dict[str, str]:
    """``<name>_fit`` of each metric whose model was fit in this repo: what it was fit on.

    Such a metric's scale depends on its fit (:attr:`tir_env.metrics.MetricInfo.fit`).
    """
    from tir_env.metrics import metric_info

    stamps = {}
    for name in metrics:
        fit = metric_info(name).fit
        if fit is not None:
            stamps[f"{name}_fit"] = fit()
    return stamps


def _unreadable(source: data.ImageSource, image_id: str) -> BaseException | None:
    """Why ``image_id`` cannot be used, or None (the env reads it again, from its cache)."""
    try:
        source.load(image_id)
    except IMAGE_ERRORS as err:
        return err
    return None


def with_required_tools(env_kwargs: dict[str, Any], agent: Any) -> dict[str, Any]:
    """Env kwargs whose tool list includes the tools ``agent.required_tools`` names (if any)."""
    return with_tools(env_kwargs, tuple(getattr(agent, "required_tools", ()) or ()))


def with_tools(env_kwargs: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    """Env kwargs whose tool list (the toolbox's where unsaid) includes ``required``."""
    if not required:
        return env_kwargs
    from tir_env.tools.presets import toolbox_tools

    tools = tuple(env_kwargs.get("tools") or toolbox_tools(env_kwargs.get("toolbox", "classical")))
    return {**env_kwargs, "tools": tools + tuple(t for t in required if t not in tools)}


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write records as JSON lines (one object per line), atomically (temp + rename)."""
    return write_text_atomic(path, "".join(_line(r) for r in records))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record and flush it to disk, so a killed run keeps it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(_line(record))  # one write: a kill leaves at most one cut, unterminated line
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file written by :func:`write_jsonl` or :func:`append_jsonl`.

    A last line cut short (a run killed while appending it) is left out with a warning;
    a bad line anywhere else raises ``json.JSONDecodeError``.
    """
    text = path.read_text()
    lines = text.splitlines()
    records = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if k < len(lines) - 1 or text.endswith("\n"):
                raise
            warnings.warn(f"{path}: ignoring a last record cut short", SkippedWarning, stacklevel=2)
    return records


def spec_of(record: Mapping[str, Any]) -> EpisodeSpec:
    """The episode a record was made from (with the file's agent and suite, its key)."""
    return EpisodeSpec(record["image"], tuple(record["degradations"]), int(record["seed"]))


def resume_records(path: Path, run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Records already in ``path``, checked to come from the same run configuration.

    ``run`` is what defines the records (suite version, images, env and agent settings; see
    ``tir bench``); every record stores it under ``"run"``. A re-run with another ``--limit``
    only adds or skips episodes, so it is not part of ``run``. A last record cut short by a
    kill is dropped from the file so that appending continues on a clean line.

    Raises:
        RunMismatchError: ``path`` holds records of another configuration (or of an older
            version that did not store one).
    """
    run = json.loads(json.dumps(dict(run)))  # as stored: tuples are lists
    if not path.is_file():
        return []
    records = read_jsonl(path)
    if not path.read_text().endswith("\n") and path.stat().st_size:
        write_jsonl(path, records)  # drop the cut line before anything is appended to it
    for record in records:
        if record.get("run") != run:
            raise RunMismatchError(
                f"{path} holds records of another run configuration "
                f"({_difference(record.get('run'), run)}); a re-run only resumes the same "
                "configuration. Use another --out, or move the file away to start over."
            )
    return records


def check_same_episodes(paths: Iterable[Path], run: Mapping[str, Any]) -> None:
    """Refuse to add records to a table whose other record files were made on other episodes.

    One suite's table in one folder compares agents: each file there must share ``run``'s
    :data:`EPISODE_FIELDS` (suite version, images, env settings), whatever its agent.

    Raises:
        RunMismatchError: a file's first record was made with other episode settings.
    """
    mine = {k: v for k, v in json.loads(json.dumps(dict(run))).items() if k in EPISODE_FIELDS}
    for path in paths:
        first = next(iter(read_jsonl(path)), None) if path.is_file() else None
        if first is None:
            continue
        stored = first.get("run")
        theirs = (
            {k: v for k, v in stored.items() if k in EPISODE_FIELDS}
            if isinstance(stored, Mapping)
            else None
        )
        if theirs != mine:
            raise RunMismatchError(
                f"{path} was made on other episodes ({_difference(theirs, mine)}); its table "
                "would compare agents on different inputs. Use another --out, or move the "
                "file away."
            )


def _difference(old: Any, new: Mapping[str, Any]) -> str:
    if not isinstance(old, Mapping):
        return "the records store no run configuration"
    keys = sorted(set(old) | set(new), key=str)
    changed = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(changed)


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True) + "\n"


def _stem(spec: EpisodeSpec) -> str:
    return f"{Path(spec.image_id).stem}__{'+'.join(spec.degradations)}__s{spec.seed}"


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
