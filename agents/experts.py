"""The expert trajectory dataset, shared by VLM SFT and PPO behaviour cloning.

``tir experts collect`` runs the strongest expert available, ``exhaustive-ref`` (the task-order x
tool tree scored by PSNR against the clean image, :mod:`agents.search`), on training photos
(the corpus's ``train`` split by default; photos are split, never crops) with every training
combination (:data:`tir_env.degradations.protocols.TRAINING`: single degradations, group A's
pairs, the training triples and RL-Restore's training severity). Each chunk of ``num_envs``
episodes is planned through one :class:`~tir_env.vector_env.TIRVectorEnv` and its shared,
caching tool pool, then replayed in lockstep through the vector env (the replays are cache
hits), and the real per-step PSNR is recorded. ``--expert oracle`` records ``oracle``'s plans
instead (the true degradations' preferred tools, last-applied first): a weaker expert, but one
whose next call is a function of what the image shows, which a policy can learn to follow.

Files under ``OUT``:

``manifest.json``
    ``format``, ``expert``, the collection config, the protocols and their combinations, the
    image source (corpus split and sha256 of the corpus manifest), counts, the tir version,
    the command, and every finished shard with its sha256.
``shard-NNNNN.jsonl``
    ``shard_size`` episodes, one JSON object per line (:func:`episode_record`). Finished shards
    are renamed from ``shard-NNNNN.jsonl.partial``, to which episodes are appended (and
    fsynced) one by one while the shard is collected.
``shard-NNNNN.npz`` (``--arrays`` only)
    The uint8 HxWx3 images of each episode, ``e<index>_<k>`` = after ``k`` calls.

The env is deterministic given (photo, combination, seed), so images are regenerated rather
than stored: :func:`replay` re-plays a record's calls and checks its PSNR.

Resuming: a rerun into the same ``OUT`` with the same settings keeps every finished shard whose
sha256 matches the manifest, keeps the complete episodes of the partial shard (a torn last
line is dropped), and continues from there; a finished shard that is missing, cut short or
corrupt is collected again. Different settings raise :class:`ExpertDataError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tir_env import data
from tir_env.degradations.protocols import COMBOS, SEVERITIES, TRAINING, Combo
from tir_env.errors import ExpertDataError
from tir_env.spaces import encode_call
from tir_env.tools.pool import ToolPool
from tir_env.types import ImageU8, ToolCall

logger = logging.getLogger(__name__)

FORMAT = "tir-experts/1"
EXPERT = "exhaustive-ref"
#: Experts the dataset can be collected from: agents that plan a whole episode at reset.
#: ``oracle`` (the true degradations' preferred tools, in order) is a plan a policy can
#: follow exactly from what it sees; ``exhaustive-ref`` searches with the clean image.
#: ``oracle-table`` is ``oracle`` with the plans fitted per combination on train photos
#: (``oracle.plans=table``, :mod:`agents.plan_table`). ``perceived`` is ``oracle``'s plan for
#: what perception v2 sees instead of the truth (``fixed`` with the declared parameters and the
#: classical tools): an expert that knows no more than a policy shown perception's readings,
#: so a clone can follow it (DAgger asks it on its datasets: ``tir train ppo-bc --dagger-rounds``).
#: ``perceived-reader`` is the same plan for what the suites' readers see
#: (:mod:`agents.ppo.suite_reader`: perception's readings read with the suites' prior; crops).
#: Both plan perception's call without ``fixed``'s judge (``guard=none``): the plan the shipped
#: policies were cloned from, and one a policy shown perception's readings can follow.
EXPERTS = ("exhaustive-ref", "oracle", "oracle-table", "perceived", "perceived-reader")
#: Expert name -> (agent, its options), for the experts that are an agent with options.
EXPERT_AGENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "oracle-table": ("oracle", {"plans": "table"}),
    "perceived": ("fixed", {"params": "default", "learned": (), "guard": "none"}),
    "perceived-reader": (
        "fixed",
        {"params": "default", "learned": (), "sight": "suite-reader", "guard": "none"},
    ),
}


@dataclass(frozen=True)
class CollectConfig:
    """What ``tir experts collect`` collects (every field is a ``--flag``).

    Attributes:
        out: Dataset folder (created; a rerun resumes it).
        split: Corpus split of the photos (``train``; ``val`` for a held-out dataset).
        images: Image source overriding ``split`` (``bundled:train``, a folder, ...).
        protocols: Combination protocols (names of ``COMBOS``); default: the training ones.
        episodes_per_pair: Episodes per (photo, combination).
        patch_size: Side of the clean crops (the suites' default is 128).
        max_steps: The env's step budget (the expert plans at most 3 calls).
        num_envs: Episodes planned and replayed together through the vector env.
        shard_size: Episodes per shard file.
        seed: Seeds every episode (with the photo, combination and repeat) and the order.
        expert: The agent whose plans are recorded (one of :data:`EXPERTS`).
        limit: Collect only the first ``limit`` episodes of the order (``None``: all).
        arrays: Also store each episode's images in ``.npz`` shards.
        progress: Show a progress bar.
    """

    out: str = "runs/experts"
    split: str = "train"
    images: str | None = None
    protocols: tuple[str, ...] = TRAINING
    episodes_per_pair: int = 1
    patch_size: int = 128
    max_steps: int = 5
    num_envs: int = 4
    shard_size: int = 50
    seed: int = 0
    expert: str = EXPERT
    limit: int | None = None
    arrays: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = [p for p in self.protocols if p not in COMBOS]
        if unknown:
            raise ExpertDataError(f"unknown protocols {unknown}; choose from {sorted(COMBOS)}")
        if len([p for p in self.protocols if p in SEVERITIES]) > 1:
            raise ExpertDataError("at most one RL-Restore severity per dataset")
        if self.expert not in EXPERTS:
            raise ExpertDataError(f"unknown expert {self.expert!r}; choose from {list(EXPERTS)}")
        if min(self.episodes_per_pair, self.num_envs, self.shard_size) < 1:
            raise ExpertDataError("episodes_per_pair, num_envs and shard_size must be >= 1")

    @property
    def source(self) -> str:
        """The image source spec: ``images``, else ``corpus:<split>``."""
        return self.images or f"corpus:{self.split}"

    def identity(self) -> dict[str, Any]:
        """The settings that define the dataset's episodes (a resume must match them).

        ``limit`` is not one of them: the order does not depend on it, so a rerun with a
        larger limit extends the dataset.
        """
        keep = ("split", "images", "protocols", "episodes_per_pair", "patch_size", "max_steps")
        out = {k: getattr(self, k) for k in (*keep, "seed", "shard_size")}
        return json.loads(json.dumps(out))


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode of the dataset: ``env.reset(seed=seed, options=options())``."""

    index: int
    protocol: str
    image_id: str
    degradations: Combo
    seed: int

    def options(self) -> dict[str, Any]:
        """The ``reset`` options that reproduce the episode."""
        return {"image_id": self.image_id, "degradations": self.degradations}


# ------------------------------------------------------------------------------ episodes
def episode_specs(
    image_ids: Sequence[str], protocols: Sequence[str], episodes_per_pair: int, seed: int
) -> list[EpisodeSpec]:
    """Every episode, in collection order.

    Seeds are a hash of (protocol, photo, combination, repeat, seed), so adding photos never
    changes existing episodes. Each protocol's episodes are shuffled (seeded), and protocols
    take turns, so a ``limit`` covers photos and protocols evenly.
    """
    rng = np.random.default_rng(seed)
    queues: list[list[tuple[str, str, Combo, int]]] = []
    for protocol in protocols:
        items = [
            (protocol, image, tuple(combo), _seed(protocol, image, tuple(combo), k, seed))
            for image in image_ids
            for combo in COMBOS[protocol]
            for k in range(episodes_per_pair)
        ]
        queues.append([items[int(i)] for i in rng.permutation(len(items))])
    order = [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
    return [EpisodeSpec(n, *item) for n, item in enumerate(order)]


def _seed(protocol: str, image: str, combo: Combo, k: int, seed: int) -> int:
    return zlib.crc32(f"experts|{protocol}|{image}|{'+'.join(combo)}|{k}|{seed}".encode())


def env_kwargs(cfg: CollectConfig, metrics: tuple[str, ...] = ("psnr",)) -> dict[str, Any]:
    """``EnvConfig`` fields of the collecting (and replaying) envs.

    The combinations are given per episode; the env's ``combos`` only matters for RL-Restore's
    leveled triple, whose levels the env samples from its severity protocol.
    """
    severity = [p for p in cfg.protocols if p in SEVERITIES]
    combos: Any = severity[0] if severity else tuple(c for p in cfg.protocols for c in COMBOS[p])
    return dict(
        images=cfg.source,
        combos=combos,
        patch_size=cfg.patch_size,
        obs_size=min(64, cfg.patch_size),
        max_steps=cfg.max_steps,
        metrics=metrics,
    )


def crop_window(photo_shape: Sequence[int], size: int, seed: int) -> dict[str, int]:
    """Where ``env.reset(seed=seed, options={image_id, ...})`` cuts its clean crop.

    Mirrors the first draws of the env's generator (:func:`tir_env.data.random_patch`):
    ``top`` and ``left`` index the photo, upscaled first when a side is below ``size``
    (``height`` and ``width`` are the photo's size at that point).
    """
    from gymnasium.utils import seeding

    rng, _ = seeding.np_random(seed)
    h, w = int(photo_shape[0]), int(photo_shape[1])
    if min(h, w) < size:
        scale = size / min(h, w)
        h, w = max(size, round(h * scale)), max(size, round(w * scale))
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return {"top": top, "left": left, "size": size, "height": h, "width": w}


# ------------------------------------------------------------------------------ collection
def collect(cfg: CollectConfig, pool: ToolPool | None = None, command: str = "") -> dict[str, Any]:
    """Collect (or resume) the dataset at ``cfg.out``; return its manifest.

    Raises:
        ExpertDataError: ``cfg.out`` holds a dataset made with other settings.
        DataError: the image source is missing (e.g. the corpus is not built).
    """
    from gymnasium.vector import AutoresetMode

    from tir_env.vector_env import TIRVectorEnv

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    source = data.source(cfg.source)
    specs = episode_specs(source.ids, cfg.protocols, cfg.episodes_per_pair, cfg.seed)
    specs = specs[: cfg.limit] if cfg.limit is not None else specs
    manifest = _open_manifest(out, cfg, specs, source, command)
    shards = [specs[i : i + cfg.shard_size] for i in range(0, len(specs), cfg.shard_size)]
    done = _finished_shards(out, manifest, shards)
    # NEXT_STEP: a sub-env whose plan ended early is reset (a random episode, discarded)
    # while the others finish theirs; stepping an ended episode is an error since issue 19.
    venv = TIRVectorEnv(
        cfg.num_envs, pool=pool, autoreset_mode=AutoresetMode.NEXT_STEP, **env_kwargs(cfg)
    )
    bar = tqdm(total=len(specs), desc="expert episodes", disable=not cfg.progress)
    bar.update(sum(len(shards[i]) for i in done))
    began, cpu, collected = time.perf_counter(), time.process_time(), 0
    for number, shard in enumerate(shards):
        if number in done:
            continue
        partial = out / f"{_shard_name(number)}.jsonl.partial"
        records = _read_partial(partial, shard)
        bar.update(len(records))
        with partial.open("a") as fh:
            for chunk in _chunks(shard[len(records) :], cfg.num_envs):
                for record in collect_chunk(venv, chunk, source, cfg.patch_size, cfg.expert):
                    fh.write(json.dumps(record, sort_keys=True) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                    records.append(record)
                    collected += 1
                    bar.update(1)
        manifest["shards"].append(_finish_shard(out, number, records, cfg, venv))
        manifest["shards"].sort(key=lambda s: s["file"])
        seconds = time.perf_counter() - began
        manifest["speed"] = {  # of this run (a resumed run counts its own episodes)
            "episodes": collected,
            "seconds": round(seconds, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1),
        }
        _write_manifest(out, _with_counts(manifest, out))
    bar.close()
    venv.close()
    return _read_manifest(out)


def collect_chunk(
    venv: Any,
    chunk: Sequence[EpisodeSpec],
    source: Any,
    patch_size: int,
    expert_name: str = EXPERT,
) -> list[dict[str, Any]]:
    """Plan each episode with the expert, replay all of them in lockstep; their records.

    Sub-envs beyond ``len(chunk)`` replay the first episode again (pool cache hits) and are
    discarded, so every sub-env always has an episode to step.
    """
    from agents.base import make_agent

    envs = venv.tir_envs if hasattr(venv, "tir_envs") else [e.unwrapped for e in venv.envs]
    plans: list[list[ToolCall]] = []
    starts: list[dict[str, Any]] = []
    executions: list[int] = []
    for i in range(venv.num_envs):
        spec = chunk[i] if i < len(chunk) else chunk[0]
        _, info = venv.reset_at(i, seed=spec.seed, options=spec.options())
        if i >= len(chunk):
            plans.append(plans[0])
            continue
        agent, options = EXPERT_AGENTS.get(expert_name, (expert_name, {}))
        expert = make_agent(agent, **options)
        expert.reset(envs[i], info)
        plans.append(list(expert.plan))  # type: ignore[attr-defined]
        starts.append(info)
        executions.append(int(expert.tool_executions))
    histories = _replay_lockstep(venv, envs, plans)
    return [
        episode_record(spec, plans[i], histories[i], starts[i], executions[i], source, patch_size)
        for i, spec in enumerate(chunk)
    ]


def _replay_lockstep(
    venv: Any, envs: Sequence[Any], plans: Sequence[Sequence[ToolCall]]
) -> list[list[Any]]:
    """Step every sub-env's plan, then STOP, together; each sub-env's step records."""
    tools = envs[0].tools
    out: list[list[Any] | None] = [None] * len(envs)
    for t in range(max(len(p) for p in plans) + 1):
        actions = [encode_call(p[t] if t < len(p) else None, tools) for p in plans]
        batch = {
            "tool": np.array([a["tool"] for a in actions], dtype=np.int64),
            "params": np.stack([a["params"] for a in actions]),
        }
        _, _, terminated, truncated, _ = venv.step(batch)
        for i, env in enumerate(envs):
            if out[i] is None and (terminated[i] or truncated[i]):
                out[i] = env.history  # read now: the next step resets a finished sub-env
    return [h if h is not None else [] for h in out]


def episode_record(
    spec: EpisodeSpec,
    plan: Sequence[ToolCall],
    history: Sequence[Any],
    start: dict[str, Any],
    tool_executions: int,
    source: Any,
    patch_size: int,
) -> dict[str, Any]:
    """The JSON record of one expert episode.

    Keys: ``index``, ``protocol``, ``image_id``, ``crop`` (:func:`crop_window`),
    ``degradations`` (the combination), ``applied`` (each degradation's sampled parameters),
    ``seed``, ``calls`` (``{tool, params}``; omitted parameters take their defaults),
    ``psnr_steps`` (PSNR after each call), ``input_psnr``, ``final_psnr`` and
    ``tool_executions`` (the expert's search cost: distinct tool runs while planning).
    """
    steps = [r for r in history if r.call is not None]
    psnr = [float(r.metrics_after["psnr"]) for r in steps]
    input_psnr = float(start["metrics_input"]["psnr"])
    applied = zip(start["degradations"], start["degradation_params"], strict=True)
    return {
        "index": spec.index,
        "protocol": spec.protocol,
        "image_id": spec.image_id,
        "crop": crop_window(source.load(spec.image_id).shape, patch_size, spec.seed),
        "degradations": list(spec.degradations),
        "applied": [[name, _jsonable(params)] for name, params in applied],
        "seed": spec.seed,
        "calls": [c.to_dict() for c in plan[: len(steps)]],
        "psnr_steps": [round(p, 4) for p in psnr],
        "input_psnr": round(input_psnr, 4),
        "final_psnr": round(psnr[-1] if psnr else input_psnr, 4),
        "tool_executions": tool_executions,
    }


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.item() if hasattr(v, "item") else v for k, v in params.items()}


def _chunks(items: Sequence[EpisodeSpec], n: int) -> Iterator[Sequence[EpisodeSpec]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# ------------------------------------------------------------------------------ files
def _shard_name(number: int) -> str:
    return f"shard-{number:05d}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _read_manifest(out: Path) -> dict[str, Any]:
    path = out / "manifest.json"
    if not path.is_file():
        raise ExpertDataError(
            f"no expert dataset at {out} (missing manifest.json); make one with "
            f"`tir experts collect --out {out}`"
        )
    try:
        manifest = dict(json.loads(path.read_text()))
    except ValueError as err:
        raise ExpertDataError(f"{path} is unreadable ({err}); collect again") from err
    if manifest.get("format") != FORMAT:
        raise ExpertDataError(f"{path} is not a TIR expert dataset ({manifest.get('format')!r})")
    return manifest


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    _atomic_write(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())


def _open_manifest(
    out: Path, cfg: CollectConfig, specs: Sequence[EpisodeSpec], source: Any, command: str
) -> dict[str, Any]:
    """The existing manifest (same settings) or a new one."""
    if (out / "manifest.json").is_file():
        manifest = _read_manifest(out)
        # Datasets from before ``--expert`` existed are exhaustive-ref's.
        made_by = manifest.get("expert", EXPERT)
        if manifest["config"] != cfg.identity() or made_by != cfg.expert:
            raise ExpertDataError(
                f"{out} holds an expert dataset made with other settings "
                f"(expert {made_by!r}, {manifest['config']}); use another --out or the same "
                "settings to resume"
            )
        manifest["episodes_planned"] = len(specs)
        return manifest
    import tir_env

    manifest = {
        "format": FORMAT,
        "expert": cfg.expert,
        "config": cfg.identity(),
        "protocols": {p: [list(c) for c in COMBOS[p]] for p in cfg.protocols},
        "images": {"source": source.name, "ids": len(source.ids), **_source_hash(source)},
        "episodes_planned": len(specs),
        "tir_version": tir_env.__version__,
        "command": command,
        "shards": [],
    }
    _write_manifest(out, manifest)
    return manifest


def _source_hash(source: Any) -> dict[str, str]:
    """sha256 of the corpus manifest (corpus sources) or of the sorted photo ids."""
    root = getattr(source, "root", None)
    if source.paths is not None and root is not None and (root / "manifest.json").is_file():
        return {"corpus_manifest_sha256": _sha256(root / "manifest.json")}
    ids = "\n".join(source.ids).encode()
    return {"ids_sha256": hashlib.sha256(ids).hexdigest()}


def _with_counts(manifest: dict[str, Any], out: Path) -> dict[str, Any]:
    records = [r for s in manifest["shards"] for r in _read_lines(out / s["file"])]
    by_protocol: dict[str, int] = {}
    for r in records:
        by_protocol[r["protocol"]] = by_protocol.get(r["protocol"], 0) + 1
    calls = sum(len(r["calls"]) for r in records)
    return {
        **manifest,
        "counts": {
            "episodes": len(records),
            "calls": calls,
            "photos": len({r["image_id"] for r in records}),
            "by_protocol": by_protocol,
        },
    }


def _finished_shards(
    out: Path, manifest: dict[str, Any], shards: Sequence[Sequence[EpisodeSpec]]
) -> set[int]:
    """Shards already complete and intact; broken ones are dropped (and collected again)."""
    done, kept = set(), []
    for entry in manifest["shards"]:
        number = int(entry["number"])
        path = out / entry["file"]
        intact = path.is_file() and _sha256(path) == entry["sha256"]
        if intact and number < len(shards) and entry["episodes"] == len(shards[number]):
            done.add(number)
            kept.append(entry)
        elif intact and number < len(shards) and entry["episodes"] < len(shards[number]):
            # The last shard of a smaller --limit: extend it.
            os.replace(path, out / f"{_shard_name(number)}.jsonl.partial")
        else:
            logger.warning("expert shard %s is missing, cut short or corrupt: redoing it", path)
            path.unlink(missing_ok=True)
    manifest["shards"] = kept
    return done


def _read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_partial(path: Path, shard: Sequence[EpisodeSpec]) -> list[dict[str, Any]]:
    """The complete, in-order episodes of a partial shard; the file is cut back to them."""
    if not path.is_file():
        return []
    records: list[dict[str, Any]] = []
    for line in path.read_bytes().split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            break  # a torn last line (killed mid-write)
        if len(records) >= len(shard) or record.get("index") != shard[len(records)].index:
            break
        records.append(record)
    _atomic_write(path, b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in records))
    return records


def _finish_shard(
    out: Path, number: int, records: Sequence[dict[str, Any]], cfg: CollectConfig, venv: Any
) -> dict[str, Any]:
    """Rename the partial shard into place (arrays first, if asked); its manifest entry."""
    name = _shard_name(number)
    entry: dict[str, Any] = {"number": number, "file": f"{name}.jsonl", "episodes": len(records)}
    if cfg.arrays:
        env = venv.tir_envs[0]
        arrays = {
            f"e{r['index']}_{k}": image for r in records for k, image in enumerate(replay(r, env))
        }
        tmp = out / f"{name}.tmp.npz"
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, out / f"{name}.npz")
        entry["arrays"] = f"{name}.npz"
        entry["arrays_sha256"] = _sha256(out / f"{name}.npz")
    os.replace(out / f"{name}.jsonl.partial", out / entry["file"])
    entry["sha256"] = _sha256(out / entry["file"])
    return entry


# ------------------------------------------------------------------------------ reading
def load_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a dataset (raises :class:`ExpertDataError` when there is none)."""
    return _read_manifest(Path(folder))


def load_records(folder: str | Path) -> list[dict[str, Any]]:
    """Every episode record of the finished shards, in collection order.

    Raises:
        ExpertDataError: no dataset, or a shard whose sha256 differs from the manifest.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    records = []
    for entry in manifest["shards"]:
        path = folder / entry["file"]
        if not path.is_file() or _sha256(path) != entry["sha256"]:
            raise ExpertDataError(
                f"expert shard {path} is missing or corrupt; rerun `tir experts collect "
                f"--out {folder}` with the same settings to collect it again"
            )
        records += _read_lines(path)
    return sorted(records, key=lambda r: r["index"])


def config_of(folder: str | Path) -> CollectConfig:
    """The collection settings of a dataset (to build envs that replay it)."""
    manifest = _read_manifest(Path(folder))
    cfg = dict(manifest["config"])
    cfg["protocols"] = tuple(cfg["protocols"])
    expert = manifest.get("expert", EXPERT)
    return CollectConfig(out=str(folder), progress=False, expert=expert, **cfg)


def calls_of(record: dict[str, Any]) -> list[ToolCall]:
    """The expert's tool calls of a record."""
    return [ToolCall.from_dict(c) for c in record["calls"]]


def replay(record: dict[str, Any], env: Any, atol: float = 1e-3) -> list[ImageU8]:
    """Regenerate a record's images (input, then after each call) and check its PSNR.

    Args:
        record: An episode record.
        env: A ``TIREnv`` built with :func:`env_kwargs` of the dataset's settings.
        atol: Allowed PSNR difference (dB) to the recorded values.

    Raises:
        ExpertDataError: the replay's PSNR differs (other tools, data or settings).
    """
    env.reset(seed=int(record["seed"]), options=replay_options(record))
    images = [env.current_image()]
    psnr = []
    for call in calls_of(record):
        _, _, _, _, info = env.step(encode_call(call, env.tools))
        images.append(env.current_image())
        psnr.append(float(info["metrics"]["psnr"]))
    if not np.allclose(psnr, record["psnr_steps"], atol=atol):
        raise ExpertDataError(
            f"replaying episode {record['index']} gave PSNR {psnr}, recorded "
            f"{record['psnr_steps']}: the tools, photos or env settings differ from collection"
        )
    return images


def replay_options(record: dict[str, Any]) -> dict[str, Any]:
    """The ``reset`` options of a record's episode (with ``seed=record["seed"]``)."""
    return {"image_id": record["image_id"], "degradations": tuple(record["degradations"])}


def summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean input and final PSNR, calls per episode, and the expert's search cost."""
    if not records:
        return {"episodes": 0}
    return {
        "episodes": len(records),
        "input_psnr": float(np.mean([r["input_psnr"] for r in records])),
        "final_psnr": float(np.mean([r["final_psnr"] for r in records])),
        "calls_per_episode": float(np.mean([len(r["calls"]) for r in records])),
        "tool_executions_per_episode": float(np.mean([r["tool_executions"] for r in records])),
    }


def config_dict(cfg: CollectConfig) -> dict[str, Any]:
    """Every field of ``cfg`` as JSON-ready values."""
    return json.loads(json.dumps(asdict(cfg)))


# ------------------------------------------------------------------------------ CLI
def parse_args(argv: Sequence[str] | None = None) -> CollectConfig:
    """``--field value`` for every :class:`CollectConfig` field (:mod:`tir_env.config_cli`)."""
    from tir_env.config_cli import config_from_args

    return config_from_args(CollectConfig, argv, "tir experts collect")


def cli(argv: Sequence[str] | None = None) -> int:
    """``tir experts collect [options]``: collect or resume, then print the dataset summary."""
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    words = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_args(words)
    manifest = collect(cfg, command="tir experts collect " + " ".join(words))
    report = {**manifest.get("counts", {}), **summary(load_records(cfg.out))}
    report["speed"] = manifest.get("speed")
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0
