"""Expert trajectories: the exhaustive-search agent's best path, executed and recorded.

An expert trajectory is the path that ``exhaustive-ref`` (the task-order x tool tree scored by
PSNR against the clean image, :mod:`agents.search`) finds for one training episode, executed
through the env so every intermediate image is real, and ended by STOP. The expert paths come
from the shared expert dataset (:mod:`agents.experts`, ``tir experts collect``, also used by
PPO behaviour cloning): :func:`from_experts` re-executes its episodes. Perturbed variants
(:mod:`agents.vlm.perturb`) are re-executed the same way. :func:`to_messages` renders one as a
multi-turn dialogue with its intermediate images (:mod:`agents.vlm.prompt`).

Files: ``<dir>/trajectories.jsonl`` (one JSON object per trajectory: episode, calls, records)
and ``<dir>/images.npz`` (the uint8 images, ``t{i}_{k}`` = image k of trajectory i).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agents.vlm.errors import TrajectoryError
from tir_env.env import TIREnv
from tir_env.spaces import encode_call
from tir_env.types import ImageU8, StepRecord, ToolCall

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeKey:
    """Which episode a trajectory plays: ``env.reset(seed, options)`` with these values."""

    image_id: str
    degradations: tuple[str, ...]
    seed: int

    def options(self) -> dict[str, Any]:
        """The ``reset`` options that reproduce the episode."""
        return {"image_id": self.image_id, "degradations": self.degradations}


@dataclass
class Trajectory:
    """One executed path: its calls, the image after each, and the env's records.

    Attributes:
        key: The episode.
        calls: Tool calls as the policy would write them (omitted parameters = defaults).
        images: uint8 HxWx3 images: the input, then the image after each call.
        records: The env's step records, the final STOP included.
        source: ``"expert"`` or ``"perturbed"``.
    """

    key: EpisodeKey
    calls: list[ToolCall]
    images: list[ImageU8]
    records: list[StepRecord]
    source: str = "expert"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def total_reward(self) -> float:
        """Sum of the env's rewards along the path."""
        return float(sum(r.reward for r in self.records))

    def gain(self, metric: str = "psnr") -> float:
        """Final minus initial value of ``metric``."""
        first, last = self.records[0].metrics_before, self.records[-1].metrics_after
        return float(last.get(metric, np.nan) - first.get(metric, np.nan))


def execute(env: TIREnv, key: EpisodeKey, calls: Sequence[ToolCall], source: str) -> Trajectory:
    """Play ``calls`` then STOP from the episode's start; record every image and step."""
    env.reset(seed=key.seed, options=key.options())
    images = [env.current_image()]
    records: list[StepRecord] = []
    for call in list(calls)[: env.config.max_steps]:
        _, _, _, truncated, info = env.step(encode_call(call, env.tools))
        images.append(env.current_image())
        if truncated:
            break
    if len(images) - 1 < env.config.max_steps:
        _, _, _, _, info = env.step(encode_call(None, env.tools))
    else:
        info = {"history": env.history}
    records = list(info["history"])
    return Trajectory(key, list(calls)[: len(images) - 1], images, records, source)


def from_experts(
    folder: str | Path, pool: Any = None, stale: Literal["error", "drop"] = "error"
) -> list[Trajectory]:
    """The episodes of an expert dataset (:mod:`agents.experts`), re-executed with images.

    The dataset stores the expert's calls, not images; the env is deterministic, so each
    episode is played again from its (photo, combination, seed), and its final PSNR checked.

    Args:
        folder: The dataset.
        pool: Tool pool of the replays (``None``: a new one).
        stale: What a replay whose PSNR differs from the record does: ``error`` raises;
            ``drop`` leaves the episode out (with a warning counting them), for a dataset
            collected before a tool changed.

    Raises:
        ExpertDataError: no dataset at ``folder``, a corrupt shard, or (``stale="error"``) a
            replay whose PSNR differs from the record (other tools, photos or settings).
    """
    from agents import experts
    from tir_env.errors import ExpertDataError

    cfg = experts.config_of(folder)
    env = TIREnv(**experts.env_kwargs(cfg, metrics=("psnr", "ssim")), pool=pool)
    out, dropped = [], 0
    for r in experts.load_records(folder):
        key = EpisodeKey(r["image_id"], tuple(r["degradations"]), int(r["seed"]))
        t = execute(env, key, experts.calls_of(r), "expert")
        final = t.records[-1].metrics_after.get("psnr", np.nan)
        if not abs(final - r["final_psnr"]) < 1e-3 and stale == "drop":
            dropped += 1
            continue
        if not abs(final - r["final_psnr"]) < 1e-3:
            raise ExpertDataError(
                f"{folder}: episode {r['index']} replays to {final:.4f} dB, recorded "
                f"{r['final_psnr']} dB; the tools or photos changed since collection"
            )
        t.info["expert_index"] = r["index"]
        out.append(t)
    if dropped:
        logger.warning(
            "%s: left out %d episodes whose replay differs from the record (tools changed "
            "since collection); collect the dataset again to use them",
            folder,
            dropped,
        )
    return out


# ------------------------------------------------------------------------------ files
def save(trajectories: Sequence[Trajectory], folder: str | Path) -> Path:
    """Write ``trajectories.jsonl`` and ``images.npz`` under ``folder``; return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    with (folder / "trajectories.jsonl").open("w") as fh:
        for i, t in enumerate(trajectories):
            for k, image in enumerate(t.images):
                arrays[f"t{i}_{k}"] = image
            fh.write(json.dumps(_to_json(t), sort_keys=True) + "\n")
    np.savez_compressed(folder / "images.npz", **arrays)  # type: ignore[arg-type]
    return folder


def load(folder: str | Path) -> list[Trajectory]:
    """Read trajectories written by :func:`save`.

    Raises:
        TrajectoryError: the folder or one of its files is missing or corrupt.
    """
    folder = Path(folder)
    meta, npz = folder / "trajectories.jsonl", folder / "images.npz"
    for path in (meta, npz):
        if not path.is_file():
            raise TrajectoryError(
                f"trajectory file {path} not found; make an expert dataset with "
                "`tir experts collect` or `tir train sft --collect`"
            )
    try:
        with np.load(npz, allow_pickle=False) as arrays:
            rows = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
            return [_from_json(i, row, arrays) for i, row in enumerate(rows)]
    except (ValueError, KeyError, OSError) as err:
        raise TrajectoryError(f"corrupt trajectory folder {folder}: {err}") from err


def _to_json(t: Trajectory) -> dict[str, Any]:
    return {
        "image_id": t.key.image_id,
        "degradations": list(t.key.degradations),
        "seed": t.key.seed,
        "calls": [c.to_dict() for c in t.calls],
        "records": [r.to_dict() for r in t.records],
        "n_images": len(t.images),
        "source": t.source,
        "info": t.info,
    }


def _from_json(i: int, row: dict[str, Any], arrays: Any) -> Trajectory:
    key = EpisodeKey(row["image_id"], tuple(row["degradations"]), int(row["seed"]))
    images = [np.asarray(arrays[f"t{i}_{k}"], dtype=np.uint8) for k in range(row["n_images"])]
    records = [_record(r) for r in row["records"]]
    calls = [ToolCall.from_dict(c) for c in row["calls"]]
    return Trajectory(key, calls, images, records, row.get("source", "expert"), row.get("info", {}))


def _record(data: dict[str, Any]) -> StepRecord:
    nan = float("nan")
    clean = {k: (nan if v is None else float(v)) for k, v in data["metrics_before"].items()}
    after = {k: (nan if v is None else float(v)) for k, v in data["metrics_after"].items()}
    call = ToolCall.from_dict(data["call"]) if data["call"] else None
    reward = nan if data["reward"] is None else float(data["reward"])
    return StepRecord(call, clean, after, reward, data["seconds"], data["error"], data["cached"])


def answers(t: Trajectory, max_steps: int) -> list[ToolCall | None]:
    """The policy's answers along ``t``: its calls, then STOP unless the budget ran out."""
    calls: list[ToolCall | None] = list(t.calls[:max_steps])
    return calls + [None] if len(calls) < max_steps else calls


def tool_records(t: Trajectory) -> list[StepRecord]:
    """The records of ``t``'s tool calls (the final STOP left out)."""
    return [r for r in t.records if r.call is not None]
