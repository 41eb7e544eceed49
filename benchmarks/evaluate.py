"""Run agents on episodes and write one JSON record per episode.

A record holds everything a leaderboard needs and nothing it has to recompute: the
suite, image, degradations, agent, seed, the tool calls, every metric before and after,
tool executions and wall time.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from agents.base import Episode, make_agent, rollout
from tir_env.env import TIREnv
from tir_env.images import load_image, save_image
from tir_env.pairs import Pair, check_sizes


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
) -> list[dict[str, Any]]:
    """Run ``agent_name`` on every episode; optionally save each output image.

    ``agent`` is an already built instance (else it is made from ``agent_name``).

    Returns:
        One record per episode, in ``specs`` order.
    """
    if agent is None:
        agent = make_agent(agent_name, **(agent_kwargs or {}))
    env = TIREnv(**with_required_tools(env_kwargs, agent))
    records = []
    for spec in tqdm(specs, desc=agent_name, disable=not progress, leave=False):
        options = {"image_id": spec.image_id, "degradations": spec.degradations}
        ep = rollout(env, agent, seed=spec.seed, options=options)
        record = {**episode_record(ep, agent_name, spec, suite, version), **setting(env)}
        if env.haze_depth is not None:  # which depth map the haze used: proxy, folder, model
            record["haze_depth"] = env.haze_depth
        records.append(record)
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
) -> list[dict[str, Any]]:
    """Run ``agent_name`` on given degraded/clean pairs (published inputs, no synthesis).

    The seed of each episode (for agents that draw random numbers) is a hash of the pair's
    name and combination, so reruns repeat.

    Raises:
        DataError: a pair whose sizes do not match (see :func:`tir_env.pairs.check_sizes`).
    """
    agent = make_agent(agent_name, **(agent_kwargs or {}))
    env = TIREnv(**with_required_tools(env_kwargs, agent))
    records = []
    for pair in tqdm(pairs, desc=agent_name, disable=not progress, leave=False):
        degraded, clean = load_image(pair.degraded), load_image(pair.clean)
        check_sizes(pair, degraded.shape[:2], clean.shape[:2])
        spec = EpisodeSpec(pair.name, pair.degradations, _pair_seed(pair))
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
    return records


def _pair_seed(pair: Pair) -> int:
    return zlib.crc32(f"{pair.name}|{'+'.join(pair.degradations)}".encode())


def setting(env: TIREnv) -> dict[str, Any]:
    """What a record must say about how its input was made: order, crop and image size."""
    return {
        "degradation_order": env.config.degradation_order,
        "patch_size": env.config.patch_size,
        "image_size": list(env.clean_image().shape[:2]) if env.has_reference else None,
    }


def with_required_tools(env_kwargs: dict[str, Any], agent: Any) -> dict[str, Any]:
    """Env kwargs whose tool list includes the tools ``agent.required_tools`` names (if any)."""
    required = tuple(getattr(agent, "required_tools", ()) or ())
    if not required:
        return env_kwargs
    from tir_env.tools.presets import toolbox_tools

    tools = tuple(env_kwargs.get("tools") or toolbox_tools(env_kwargs.get("toolbox", "classical")))
    return {**env_kwargs, "tools": tools + tuple(t for t in required if t not in tools)}


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write records as JSON lines (one object per line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for record in records:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file written by :func:`write_jsonl`."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _stem(spec: EpisodeSpec) -> str:
    return f"{Path(spec.image_id).stem}__{'+'.join(spec.degradations)}__s{spec.seed}"


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
