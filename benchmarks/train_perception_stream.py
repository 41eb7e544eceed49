r"""Train the convolutional perception network on a stream of fresh crops, for a fixed time.

:mod:`benchmarks.train_perception` generates its examples once, then trains; on two cores
that caps the CNN at a few ten thousand crops seen a few times. With many cores and a GPU
the two can run at once: worker processes degrade fresh crops of the training photos
without pause (:func:`benchmarks.train_perception.make_examples`, the same recipe) and
push them into a buffer on the device, and the trainer samples its batches from everything
generated so far (flipped and turned), so the network sees every crop a few times and new
crops all along. The run stops after ``--minutes``; the learning rate follows a cosine over
that time.

Every ``--checkpoint-seconds`` it writes ``perception.safetensors`` and its record to
``--out`` (a run cut off by a time limit keeps its last checkpoint), with a curve of the
loss and of each type's ROC AUC on a probe set (the first crops made, never trained on:
new crops of the training photos, so it tracks fitting, not generalisation to new photos).
Thresholds are tuned afterwards on the val photos, on any machine::

    python -m benchmarks.train_perception_stream --out runs/perc_cnn --minutes 7
    python -m benchmarks.train_perception --retune --init runs/perc_cnn/perception.safetensors \\
        --out runs/perc_cnn --samples 0

The shipped network is not this one unless docs/perception.md says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import queue
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import train_perception as tp
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.errors import OutputExistsError, TIRError
from tir_env.perception import N_OUTPUTS, PRESENCE
from tir_env.tools.learned.nets import PerceptionNetV2, descriptors

logger = logging.getLogger(__name__)

#: The example arrays a worker sends and the buffer holds (see :class:`tp.Examples`).
FIELDS = ("images", "presence", "severity", "labelled", "quality")


@dataclass(frozen=True)
class StreamConfig:
    """Settings of a streamed training run.

    Attributes:
        out: Folder for ``perception.safetensors``, its record and ``curve.jsonl``.
        train: Image source of the training photos (``corpus:train@3``, a folder, ...).
        minutes: Training time (the generation workers start first; their warm-up counts).
        device: ``auto`` (cuda when present), ``cuda`` or ``cpu``.
        workers: Generation processes (0: every core but one).
        chunk: Examples a worker makes per message.
        capacity: Most examples the buffer holds (the oldest are overwritten).
        probe: Examples kept aside (never trained on) to score the curve.
        start_after: Examples in the buffer before the first step.
        widths: Channels of the first stage of each CNN trained (one network per width, all
            from the same batches; the first writes to ``out``, the others to
            ``out/width<N>``).
        hidden: Width of its head's hidden layer.
        batch: Examples per step.
        lr: Peak learning rate (3% linear warm-up, then a cosine to zero at ``minutes``).
        tool_fraction: Share of examples that are tools' outputs (quality head only).
        listed_order: Share of AgenticIR's listed combinations applied in their listed order.
        quality_weight: Weight of the quality loss.
        checkpoint_seconds: Seconds between checkpoints.
        seed: Seed of the workers' generators (worker i uses seed + 1 + i) and of the network.
        val: Image source of the val photos to tune each network's presence thresholds on
            once trained (as ``train_perception --retune`` does: F0.5 on 1,500 val crops),
            or empty to leave them at 0.5 (a machine without the val photos: tune later).
        val_samples: Val crops the thresholds are tuned on.
        init: Weights to start the first width's network from (a ``perception.safetensors``
            of the same width and hidden size; a continued run, with its own warm-up and
            cosine), or empty for a new network. Weights that do not fit raise
            :class:`~tir_env.errors.CheckpointError` before any step.
        export_photos: Instead of training, write ``train``'s photos to this folder small
            enough to carry to another machine (see :func:`export_photos`), and stop.
    """

    out: str = "runs/perception_stream"
    train: str = "corpus:train@3"
    minutes: float = 7.0
    device: str = "auto"
    workers: int = 0
    chunk: int = 32
    capacity: int = 400_000
    probe: int = 1024
    start_after: int = 2048
    widths: tuple[int, ...] = (64,)
    hidden: int = 256
    batch: int = 256
    lr: float = 2e-3
    tool_fraction: float = 0.1
    listed_order: float = 0.5
    quality_weight: float = 2.0
    checkpoint_seconds: float = 60.0
    seed: int = 0
    val: str = ""
    val_samples: int = 1500
    init: str = ""
    export_photos: str = ""

    def __post_init__(self) -> None:
        if self.minutes <= 0 or self.batch < 1 or self.chunk < 1 or self.capacity < self.batch:
            raise ValueError(
                "minutes must be > 0, batch and chunk >= 1, capacity >= batch; got "
                f"{self.minutes}, {self.batch}, {self.chunk}, {self.capacity}"
            )
        if not 1 <= self.start_after <= self.capacity or self.chunk > self.capacity:
            raise ValueError(
                "start_after must be in 1..capacity and chunk <= capacity; got "
                f"{self.start_after}, {self.chunk}, {self.capacity}"
            )
        if (
            self.probe < 1
            or self.val_samples < 1
            or self.workers < 0
            or self.hidden < 1
            or self.checkpoint_seconds <= 0
        ):
            raise ValueError(
                "probe, val_samples and hidden must be >= 1, workers >= 0, checkpoint_seconds "
                f"> 0; got {self.probe}, {self.val_samples}, {self.hidden}, {self.workers}, "
                f"{self.checkpoint_seconds}"
            )
        if not self.widths or min(self.widths) < 1 or len(set(self.widths)) < len(self.widths):
            raise ValueError(f"widths must be distinct and >= 1, got {self.widths}")
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"device must be auto, cuda or cpu, got {self.device!r}")


def recipe(cfg: StreamConfig, width: int | None = None) -> tp.Config:
    """The :class:`tp.Config` whose example recipe the workers follow."""
    return tp.Config(
        out=cfg.out,
        arch="cnn",
        train=cfg.train,
        tool_fraction=cfg.tool_fraction,
        listed_order=cfg.listed_order,
        width=width or cfg.widths[0],
        batch=cfg.batch,
        lr=cfg.lr,
        samples=0,
        steps=0,
        quality_weight=cfg.quality_weight,
        seed=cfg.seed,
    )


# ------------------------------------------------------------------------------ generation

#: Long side of the photos :func:`export_photos` re-encodes (a little above the 1536 px the
#: crops are normalised to, so the re-encoding's faint JPEG grid is resampled away).
EXPORT_SIDE = 1600


def export_photos(spec: str, out: Path) -> dict[str, int]:
    """Write the photos of ``spec`` to ``out``: small ones as they are, large ones re-encoded.

    A lent GPU machine takes a few tens of MB per call; the corpus' train photos are 97 MB.
    A photo longer than :data:`EXPORT_SIDE` is downscaled to it and saved as JPEG quality 95
    without chroma subsampling; training normalises it to 1536 px anyway (the resampling
    also erases that JPEG's 8-pixel grid). Smaller photos are copied byte for byte.

    Raises:
        OutputExistsError: ``out`` exists and is not empty (nothing is overwritten), or two
            photos would export to one name.
    """
    import shutil

    from PIL import Image

    from tir_env.images import load_image, resize_u8

    if out.exists() and any(out.iterdir()):
        raise OutputExistsError(f"{out} is not empty: choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    source, counts = tp.data.source(spec), {"copied": 0, "reencoded": 0}
    for image_id in source.ids:
        path = _file_of(source, image_id)
        image = load_image(str(path))
        side = max(image.shape[:2])
        # one flat folder: an id's folders become part of its name
        stem = Path(image_id.replace("/", "__")).with_suffix("").name
        target = out / (f"{stem}{path.suffix}" if side <= EXPORT_SIDE else f"{stem}.jpg")
        if target.exists():
            raise OutputExistsError(f"two photos export to {target.name}: rename one of them")
        if side <= EXPORT_SIDE:
            shutil.copy(path, target)
            counts["copied"] += 1
            continue
        k = EXPORT_SIDE / side
        small = resize_u8(image, (round(image.shape[0] * k), round(image.shape[1] * k)))
        Image.fromarray(small).save(target, quality=95, subsampling=0)
        counts["reencoded"] += 1
    return counts


def _file_of(source: tp.data.ImageSource, image_id: str) -> Path:
    """The file a folder or corpus source loads ``image_id`` from."""
    if source.paths is not None:
        return Path(source.paths[image_id])
    if source.root is None:
        raise ValueError(f"{source.name} is bundled with the package: nothing to export")
    return source.root / image_id


def preloaded_crops(spec: str, crop: int, threads: int) -> tp.PhotoCrops:
    """:class:`tp.PhotoCrops` with every photo at every scale already decoded (shared by fork)."""
    crops = tp.PhotoCrops(spec, crop)
    keys = [(i, s) for i in crops.source.ids for s in tp.SCALES]
    with ThreadPoolExecutor(max(1, threads)) as pool:  # decoding and resizing drop the GIL
        images = list(pool.map(lambda key: _loaded(crops, key), keys))
    crops.cache.update(zip(keys, images, strict=True))
    return crops


def _loaded(crops: tp.PhotoCrops, key: tuple[str, float]) -> np.ndarray:
    fresh = tp.PhotoCrops.__new__(tp.PhotoCrops)  # a private cache: threads share no dict
    fresh.source, fresh.crop, fresh.cache = crops.source, crops.crop, {}
    return fresh.photo(*key)


def produce(
    crops: tp.PhotoCrops, cfg: tp.Config, chunk: int, seed: int, out: Any, stop: Any
) -> None:
    """Worker loop: put chunks of fresh examples on ``out`` until ``stop`` is set."""
    torch.set_num_threads(1)
    logging.getLogger("tir_env").setLevel(logging.ERROR)  # per-photo notes, once per worker
    rng = np.random.default_rng(seed)
    while not stop.is_set():
        ex = tp.make_examples(crops, chunk, cfg, rng, "", progress=False)
        arrays = {f: getattr(ex, f) for f in FIELDS}
        while not stop.is_set():
            try:
                out.put(arrays, timeout=1.0)
                break
            except queue.Full:
                continue


# ------------------------------------------------------------------------------ buffer


class Buffer:
    """A ring of examples on the training device, sampled uniformly."""

    def __init__(self, capacity: int, crop: int, device: torch.device) -> None:
        self.capacity, self.filled, self.next, self.added = capacity, 0, 0, 0
        self.data = {
            "images": torch.zeros((capacity, crop, crop, 3), dtype=torch.uint8, device=device),
            "presence": torch.zeros((capacity, 8), device=device),
            "severity": torch.zeros((capacity, 8), device=device),
            "labelled": torch.zeros(capacity, device=device),
            "quality": torch.zeros((capacity, 2), device=device),
        }

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        """Append one chunk (overwriting the oldest examples once full)."""
        n = len(arrays["images"])
        device = self.data["images"].device
        index = ((self.next + torch.arange(n)) % self.capacity).to(device)
        for name, value in arrays.items():
            self.data[name][index] = torch.from_numpy(value).to(device)
        self.next = int((self.next + n) % self.capacity)
        self.filled = min(self.capacity, self.filled + n)
        self.added += n

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` random examples (with replacement)."""
        device = self.data["images"].device
        index = torch.randint(0, self.filled, (n,), generator=generator).to(device)
        return {name: value[index] for name, value in self.data.items()}


def as_input(images: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """uint8 NxHxWx3 -> float Nx3xHxW in [0, 1], turned by ``turns`` quarters and flipped."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    x = torch.rot90(x, turns, dims=(2, 3))
    return x.flip(3) if flip else x


# ------------------------------------------------------------------------------ training


def learning_rate(cfg: StreamConfig, elapsed: float, total: float) -> float:
    """Warm-up over the first 3% of ``total`` seconds of training, then a cosine to zero."""
    t = min(1.0, max(0.0, elapsed) / max(total, 1e-6))
    if t < 0.03:
        return cfg.lr * t / 0.03
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (t - 0.03) / 0.97))


def probe_scores(net: torch.nn.Module, probe: dict[str, torch.Tensor]) -> dict[str, float]:
    """Each type's ROC AUC on the probe examples (labelled ones only)."""
    net.eval()
    with torch.no_grad():
        x = as_input(probe["images"], 0, False)
        out = torch.cat([net(x[i : i + 256]) for i in range(0, len(x), 256)]).float()
    net.train()
    keep = (probe["labelled"] > 0.5).cpu().numpy()
    probs = torch.sigmoid(out[:, PRESENCE]).cpu().numpy()[keep]
    truth = probe["presence"].cpu().numpy()[keep] > 0.5
    return {name: roc_auc(probs[:, j], truth[:, j]) for j, name in enumerate(AGENTICIR_TYPES)}


def roc_auc(score: np.ndarray, truth: np.ndarray) -> float:
    """:func:`benchmarks.train_perception.roc_auc`, rounded to 4 places for the curve."""
    return round(tp.roc_auc(score, truth), 4)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when present, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def run(cfg: StreamConfig) -> dict[str, Any]:
    """Generate and train for ``cfg.minutes``; write weights, record and curve; return a record."""
    from tir_env.files import refuse_used_folder

    start = time.time()
    out = Path(cfg.out)
    refuse_used_folder(out, ("perception.safetensors", "curve.jsonl"), "continue one with --init")
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    workers = cfg.workers or max(1, (os.cpu_count() or 2) - 1)
    crops = preloaded_crops(cfg.train, tp.Config().crop, threads=workers + 1)
    logger.info("%d photos loaded in %.1f s", len(crops.source), time.time() - start)
    context = mp.get_context("fork")  # workers share the decoded photos
    chunks: Any = context.Queue(maxsize=4 * workers)
    stop = context.Event()
    procs = [
        context.Process(
            target=produce,
            args=(crops, recipe(cfg), cfg.chunk, cfg.seed + 1 + i, chunks, stop),
            daemon=True,
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        return _train(cfg, out, device, chunks, start, procs)
    finally:
        _stop_workers(procs, stop, chunks)


def _stop_workers(procs: list[Any], stop: Any, chunks: Any) -> None:
    """Stop the workers within seconds.

    A worker exits only once its queue's feeder thread has written everything it put, so
    the queue is drained while they exit; one still alive after the deadline is terminated
    (and the queue is not read again: it may hold half a message).
    """
    stop.set()
    deadline = time.time() + 15
    while any(p.is_alive() for p in procs) and time.time() < deadline:
        with contextlib.suppress(queue.Empty):
            chunks.get(timeout=0.1)
    for p in procs:
        if p.is_alive():
            p.terminate()
        p.join(timeout=1)


def _train(
    cfg: StreamConfig, out: Path, device: torch.device, chunks: Any, start: float, procs: list
) -> dict[str, Any]:
    workers = len(procs)
    runs = [Run(cfg, width, out, device) for width in cfg.widths]  # a bad --init fails first
    probe = _probe(chunks, cfg.probe, device, procs)
    buffer = Buffer(cfg.capacity, tp.Config().crop, device)
    generator = torch.Generator().manual_seed(cfg.seed)
    train_start, step, last_save = time.time(), 0, time.time()
    deadline = start + cfg.minutes * 60
    while time.time() < deadline:
        _drain(chunks, buffer, procs, block=buffer.filled < cfg.start_after)
        if buffer.filled < cfg.start_after:
            continue
        if step == 0:
            train_start = time.time()
        batch = buffer.sample(cfg.batch, generator)
        turns, flip = (int(v) for v in torch.randint(0, 4, (2,), generator=generator))
        x = as_input(batch["images"], turns, flip % 2 == 1)
        stats = descriptors(x)  # in float32: medians and percentiles
        lr = learning_rate(cfg, time.time() - train_start, deadline - train_start)
        for run_ in runs:
            run_.step(x, stats, batch, lr)
        step += 1
        if time.time() - last_save >= cfg.checkpoint_seconds:
            _check_alive(procs)
            last_save = time.time()
            for run_ in runs:
                run_.checkpoint(probe, buffer, start, _progress(step, buffer, train_start, workers))
    records = [
        run_.checkpoint(probe, buffer, start, _progress(step, buffer, train_start, workers))
        for run_ in runs
    ]
    logger.info("done: %s", json.dumps(records[0]["progress"]))
    if cfg.val:
        records = [tune(cfg, run_.out) for run_ in runs]
    return records[0]


def tune(cfg: StreamConfig, folder: Path) -> dict[str, Any]:
    """Tune ``folder``'s presence thresholds on ``cfg.val`` (``train_perception --retune``)."""
    weights = folder / "perception.safetensors"
    settings = tp.Config(
        out=str(folder),
        train=cfg.train,
        val=cfg.val,
        samples=0,
        val_samples=cfg.val_samples,
        listed_order=cfg.listed_order,
        init=str(weights),
        seed=cfg.seed,
        threads=1,
    )
    return tp.retune(settings)


class Run:
    """One network trained from the shared batches, with its optimiser, curve and folder."""

    def __init__(self, cfg: StreamConfig, width: int, out: Path, device: torch.device) -> None:
        self.cfg, self.width = cfg, width
        self.out = out if width == cfg.widths[0] else out / f"width{width}"
        self.net = PerceptionNetV2(N_OUTPUTS, width, cfg.hidden)
        if cfg.init and width == cfg.widths[0]:
            from tir_env.tools.learned.weights import load_into

            load_into(self.net, Path(cfg.init)).train().requires_grad_(True)
        self.net.to(device)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.autocast = torch.autocast("cuda", torch.bfloat16, enabled=device.type == "cuda")
        self.curve: list[dict[str, Any]] = []
        # summed on the device: reading a loss every step would wait for the GPU every step
        self.loss_sum, self.loss_n = torch.zeros((), device=device), 0

    def step(
        self, x: torch.Tensor, stats: torch.Tensor, batch: dict[str, torch.Tensor], lr: float
    ) -> None:
        """One optimiser step on a batch at learning rate ``lr``."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        with self.autocast:
            logits = self.net(x, stats)
        parts = tp.target_losses(
            logits.float(),
            batch["presence"],
            batch["severity"],
            batch["labelled"],
            batch["quality"],
        )
        loss = parts["presence"] + parts["severity"] + self.cfg.quality_weight * parts["quality"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.loss_sum, self.loss_n = self.loss_sum + loss.detach(), self.loss_n + 1

    def checkpoint(
        self,
        probe: dict[str, torch.Tensor],
        buffer: Buffer,
        start: float,
        progress: dict[str, Any],
    ) -> dict[str, Any]:
        """Score the probe, append to the curve, write weights and record; return the record."""
        loss = float(self.loss_sum) / max(1, self.loss_n)
        self.curve.append(_point(self.net, probe, progress["steps"], buffer, loss, start))
        self.loss_sum, self.loss_n = torch.zeros_like(self.loss_sum), 0
        return _save(self.net, self.out, self.cfg, self.width, self.curve, progress)


class WorkersDiedError(TIRError, RuntimeError):
    """Every example-making worker has exited: the run cannot get new examples."""


def _check_alive(procs: list[Any]) -> None:
    """Raise :class:`WorkersDiedError` when no worker is alive (their exit codes in it)."""
    if not any(p.is_alive() for p in procs):
        codes = sorted({p.exitcode for p in procs}, key=str)
        raise WorkersDiedError(
            f"all {len(procs)} example workers exited (exit codes {codes}); their tracebacks "
            "are above in the log"
        )


def _next_chunk(chunks: Any, procs: list[Any]) -> dict[str, np.ndarray]:
    """The next chunk, waiting while any worker lives."""
    while True:
        try:
            return chunks.get(timeout=5.0)
        except queue.Empty:
            _check_alive(procs)


def _probe(chunks: Any, n: int, device: torch.device, procs: list[Any]) -> dict[str, torch.Tensor]:
    """The first ``n`` examples made, kept aside (on ``device``)."""
    parts: list[dict[str, np.ndarray]] = []
    while sum(len(p["images"]) for p in parts) < n:
        parts.append(_next_chunk(chunks, procs))
    return {
        f: torch.from_numpy(np.concatenate([p[f] for p in parts])[:n]).to(device) for f in FIELDS
    }


def _drain(chunks: Any, buffer: Buffer, procs: list[Any], block: bool) -> None:
    """Move every waiting chunk into the buffer (waiting for one when ``block``)."""
    if block:
        buffer.add(_next_chunk(chunks, procs))
    while True:
        try:
            buffer.add(chunks.get_nowait())
        except queue.Empty:
            return


def _point(
    net: torch.nn.Module,
    probe: dict[str, torch.Tensor],
    step: int,
    buffer: Buffer,
    loss: float,
    start: float,
) -> dict[str, Any]:
    point = {
        "seconds": round(time.time() - start, 1),
        "step": step,
        "examples": buffer.added,
        "loss": round(loss, 5),
        "probe_auc": probe_scores(net, probe),
    }
    logger.info("%s", json.dumps(point))
    return point


def _progress(step: int, buffer: Buffer, train_start: float, workers: int) -> dict[str, Any]:
    seconds = max(1e-6, time.time() - train_start)
    return {
        "steps": step,
        "examples_generated": buffer.added,
        "train_seconds": round(seconds, 1),
        "steps_per_second": round(step / seconds, 2),
        "examples_per_second": round(buffer.added / seconds, 1),
        "workers": workers,
    }


def _save(
    net: torch.nn.Module,
    out: Path,
    cfg: StreamConfig,
    width: int,
    curve: list[dict[str, Any]],
    progress: dict[str, Any],
) -> dict[str, Any]:
    """Write the weights (on CPU, eval mode), their record and the curve."""
    out.mkdir(parents=True, exist_ok=True)
    head = tp.record_head(replace(recipe(cfg, width), out=str(out)))
    head["architecture"]["hidden"] = cfg.hidden
    record = {
        **head,
        "thresholds": dict.fromkeys(AGENTICIR_TYPES, 0.5),
        "stream_config": asdict(cfg),
        "command": command_of(cfg),
        "progress": progress,
        "probe_auc": curve[-1]["probe_auc"] if curve else {},
        "machine": _machine(),
    }
    cpu = _cpu_copy(net, width, cfg.hidden)
    tp.save(cpu, out, "perception", record)
    (out / "curve.jsonl").write_text("".join(json.dumps(p) + "\n" for p in curve))
    return record


def command_of(cfg: StreamConfig) -> str:
    """The ``tir train perception-stream`` command of ``cfg`` (its non-default settings)."""
    default = StreamConfig()
    words = ["tir train perception-stream"]
    for name, value in asdict(cfg).items():
        if value != getattr(default, name):
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
            words.append(f"--{name.replace('_', '-')} {shown}")
    return " ".join(words)


def _cpu_copy(net: torch.nn.Module, width: int, hidden: int) -> torch.nn.Module:
    copy = PerceptionNetV2(N_OUTPUTS, width, hidden)
    copy.load_state_dict({k: v.detach().float().cpu() for k, v in net.state_dict().items()})
    return copy.eval()


def _machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"


def parse_args(argv: Sequence[str] | None = None) -> StreamConfig:
    """Build a :class:`StreamConfig` from the command line (every field is a flag)."""
    from tir_env.config_cli import config_from_args

    return config_from_args(
        StreamConfig,
        argv,
        "tir train perception-stream",
        description=(__doc__ or "").split("\n\n")[0],
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = parse_args()
    if config.export_photos:
        print(json.dumps(export_photos(config.train, Path(config.export_photos))))
        sys.exit(0)
    result = run(config)
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=1))
