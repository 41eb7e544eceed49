"""Train the quality-gain model: the PSNR change a candidate makes, judged without the clean image.

Data: groups made from 128 px crops of the corpus' train photos (the env's crop size). In each
group a clean crop gets 0-3 AgenticIR degradations (every combination; AgenticIR's listed order
for its combinations half the time, else protocol order); the *before* image is that input, or
(30%) the input after one tool of a true degradation (a search agent's second step). Then
:data:`CANDIDATES` candidates are made from it: a tool of a true degradation's task (45%),
any classical tool (what a false perception runs; 45%), or the ``median_paint`` exploit (10%),
with default (half) or random parameters, and a second tool after it a quarter of the time.
Targets are the PSNR change against the clean crop per 64 px tile (each 128 px image is the
2 x 2 tiles :mod:`tir_env.quality_gain` scores it by); the model is an ensemble of MLPs over
:func:`~tir_env.tools.learned.nets.gain_features` of each tile pair, Huber loss.

The val photos score the ensemble and tune the decision margin (the predicted gain a
candidate must clear for its pick to pay, :func:`tir_env.quality_gain.margin`);
``python -m benchmarks.gain_report`` scores the test photos (never seen here) against
``tirqa`` and NIQE.

Usage::

    python -m benchmarks.train_gain --out runs/gain               # the shipped recipe
    # 17 min on 2 cores, most of it making the 4,000 groups (cached in runs/gain/data)
    python -m benchmarks.train_gain --out /tmp/g --groups 40 --val-groups 10 --epochs 1  # smoke
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from benchmarks.train_perception import (
    AGENTICIR_TYPES,
    PhotoCrops,
    as_shown,
    degrade_in_order,
    random_params,
    save,
    to_batch,
    tool_candidates,
)
from tir_env.errors import TIRError
from tir_env.images import u8_to_batch
from tir_env.quality_gain import DB_SCALE, TILE

logger = logging.getLogger(__name__)

#: Side of the crops groups are made from (the env's crop size; 2 x 2 tiles).
CROP = 128
#: Candidates per group.
CANDIDATES = 6
#: Probabilities of 0, 1, 2, 3 degradations in a group's input.
COUNT_PROBS = (0.1, 0.3, 0.35, 0.25)
#: Groups generated per worker task (each task seeded by its index: any worker count agrees).
CHUNK = 200


@dataclass(frozen=True)
class Config:
    """Training run settings.

    Attributes:
        out: Folder for ``quality_gain.safetensors``, its record, checkpoints and the data cache.
        train: Image source of the training photos (``corpus:train``, a folder, ...).
        val: Image source of the validation photos.
        groups: Training groups (one input, :data:`CANDIDATES` candidates, 4 tiles each).
        val_groups: Validation groups (they also tune the decision margin).
        epochs: Passes over the training tile pairs per ensemble member (more overfits the
            23 training photos: the val ranking peaks near 8).
        batch: Tile pairs per step.
        hidden: Width of each member's hidden layers.
        members: MLPs in the ensemble (averaged).
        lr: Peak learning rate (one-cycle schedule).
        seed: Seed of every random draw.
        workers: Processes generating the groups (the result does not depend on it).
        threads: Torch CPU threads while training.
    """

    out: str = "runs/gain"
    train: str = "corpus:train"
    val: str = "corpus:val"
    groups: int = 4000
    val_groups: int = 500
    epochs: int = 8
    batch: int = 256
    hidden: int = 128
    members: int = 3
    lr: float = 2e-3
    seed: int = 0
    workers: int = 2
    threads: int = 2


@dataclass
class Groups:
    """Groups as arrays (uint8 images at :data:`CROP`, float targets)."""

    clean: np.ndarray  # G x H x W x 3
    before: np.ndarray  # G x H x W x 3
    after: np.ndarray  # G x K x H x W x 3
    valid: np.ndarray  # G x K (0: the tool failed; the slot repeats ``before``)
    kind: np.ndarray  # G x K (0: a true degradation's tool, 1: any tool, 2: the exploit)
    gain: np.ndarray  # G x K (whole-image PSNR change, dB)
    tile_gain: np.ndarray  # G x K x T x 2 (PSNR change / DB_SCALE, SSIM change per tile)


# ------------------------------------------------------------------------------ data


def tool_tasks(tools: Sequence[str]) -> dict[str, list[str]]:
    """The candidate tools of each task."""
    from tir_env.tools import tool_info

    by_task: dict[str, list[str]] = {}
    for tool in tools:
        by_task.setdefault(tool_info(tool).task, []).append(tool)
    return by_task


def apply_tool(image: torch.Tensor, tool: str, rng: np.random.Generator) -> torch.Tensor | None:
    """``tool`` with default (half the time) or random parameters; None when it fails."""
    from tir_env.tools import make_tool, tool_info

    if tool_info(tool).scale > 1 and image.shape[-1] >= CROP:
        return None  # super-resolution only of a small (low-resolution) image
    params = {} if rng.random() < 0.5 else random_params(tool, rng)
    try:
        return make_tool(tool)(image, params)
    except TIRError:
        return None


def pick_tool(
    tasks: Sequence[str], by_task: dict[str, list[str]], every: Sequence[str], r: float, rng
) -> tuple[str, int]:
    """A candidate tool and its kind (see :class:`Groups`) from one uniform draw ``r``."""
    relevant = [t for task in tasks for t in by_task.get(task, [])]
    if r < 0.1:
        return "median_paint", 2
    if r < 0.55 and relevant:
        return relevant[int(rng.integers(len(relevant)))], 0
    return every[int(rng.integers(len(every)))], 1


def make_group(crops: PhotoCrops, rng: np.random.Generator, by_task, every) -> dict:
    """One group (see the module docstring) as uint8 arrays and targets."""
    from tir_env.degradations import make_degradation

    clean = u8_to_batch(crops.draw(rng))
    names = [str(t) for t in rng.choice(AGENTICIR_TYPES, int(rng.choice(4, p=COUNT_PROBS)), False)]
    before, _ = degrade_in_order(clean, names, rng, listed_order=0.5)
    tasks = [make_degradation(n).info.task for n in names]
    if tasks and rng.random() < 0.3:
        options = by_task.get(tasks[int(rng.integers(len(tasks)))], [])
        first = (
            apply_tool(before, options[int(rng.integers(len(options)))], rng) if options else None
        )
        before = before if first is None else first
    after, valid, kind = [], [], []
    for _ in range(CANDIDATES):
        tool, k = pick_tool(tasks, by_task, every, float(rng.random()), rng)
        out = apply_tool(before, tool, rng)
        if out is not None and rng.random() < 0.25:
            second, _ = pick_tool(tasks, by_task, every, 0.1 + 0.9 * float(rng.random()), rng)
            chained = apply_tool(out, second, rng)
            out = out if chained is None else chained
        after.append(as_shown(before if out is None else out, CROP))
        valid.append(out is not None)
        kind.append(k)
    return {
        "clean": clean,
        "before": as_shown(before, CROP),
        "after": torch.cat(after),
        "valid": np.array(valid),
        "kind": np.array(kind),
    }


def _u8(batch: torch.Tensor) -> np.ndarray:
    return (batch.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def tile_targets(clean: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
    """K x T x 2 per-tile (PSNR change / DB_SCALE, SSIM change) of ``after`` over ``before``."""
    from tir_env.metrics.fast import luma_u8, psnr, ssim_cs

    out = []
    for r in range(0, CROP, TILE):
        for c in range(0, CROP, TILE):
            t = (..., slice(r, r + TILE), slice(c, c + TILE))
            ref, b, a = clean[t], before[t], after[t]
            p_b, p_a = psnr(b, ref, floor=1e-6), psnr(a, ref.expand_as(a), floor=1e-6)
            s_b = ssim_cs(luma_u8(b), luma_u8(ref))[0]
            s_a = ssim_cs(luma_u8(a), luma_u8(ref.expand_as(a)))[0]
            out.append(torch.stack([(p_a - p_b) / DB_SCALE, s_a - s_b], dim=1))
    return torch.stack(out, dim=1).numpy().astype(np.float32)


def _chunk(args: tuple[str, int, int, int]) -> dict[str, np.ndarray]:
    """Groups ``start..start+n`` of a source (seeded by ``seed`` and ``start``)."""
    spec, seed, start, n = args
    torch.set_num_threads(1)
    import tir_env.tools.exploits  # noqa: F401  (registers median_paint)
    from tir_env.metrics.fast import psnr

    rng = np.random.default_rng([seed, start])
    crops = PhotoCrops(spec, CROP)
    every = [t for t in tool_candidates() if t != "median_paint"]
    by_task = tool_tasks(every)
    parts: dict[str, list] = {k: [] for k in Groups.__dataclass_fields__}
    for _ in range(n):
        g = make_group(crops, rng, by_task, every)
        ref = g["clean"]
        parts["clean"].append(_u8(ref)[0])
        parts["before"].append(_u8(g["before"])[0])
        parts["after"].append(_u8(g["after"]))
        parts["valid"].append(g["valid"])
        parts["kind"].append(g["kind"])
        gain = psnr(g["after"], ref.expand_as(g["after"]), floor=1e-6) - psnr(
            g["before"], ref, floor=1e-6
        )
        parts["gain"].append(gain.numpy().astype(np.float32))
        parts["tile_gain"].append(tile_targets(ref, g["before"], g["after"]))
    return {k: np.stack(v) for k, v in parts.items()}


def make_groups(spec: str, n: int, seed: int, workers: int) -> Groups:
    """``n`` groups of a source, generated in :data:`CHUNK`-sized tasks by ``workers``."""
    tasks = [(spec, seed, s, min(CHUNK, n - s)) for s in range(0, n, CHUNK)]
    if workers <= 1:
        chunks = [_chunk(t) for t in tqdm(tasks, desc=spec)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            chunks = list(tqdm(pool.map(_chunk, tasks), total=len(tasks), desc=spec))
    return Groups(**{k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]})


def cached_groups(spec: str, n: int, seed: int, workers: int, out: Path) -> Groups:
    """:func:`make_groups`, saved under ``out/data`` and reused by a rerun with the same key."""
    what = f"{spec}|{n}|{seed}|{CROP}|{CANDIDATES}|{COUNT_PROBS}|{CHUNK}|v1"
    path = out / "data" / f"{hashlib.sha256(what.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            return Groups(**{k: saved[k] for k in Groups.__dataclass_fields__})
    groups = make_groups(spec, n, seed, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **vars(groups))
    tmp.replace(path)
    return groups


# ------------------------------------------------------------------------------ training


def tile_view(images: np.ndarray, tile: np.ndarray) -> np.ndarray:
    """Tile ``tile[i]`` (0-3: row-major 2 x 2) of each uint8 image ``images[i]``."""
    per_row = CROP // TILE
    rows, cols = (tile // per_row) * TILE, (tile % per_row) * TILE
    return np.stack(
        [im[r : r + TILE, c : c + TILE] for im, r, c in zip(images, rows, cols, strict=True)]
    )


def tile_descriptors(groups: Groups, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of every before tile (G x T x D) and after tile (G x K x T x D), cached."""
    from tir_env.tools.learned.nets import descriptors

    key = hashlib.sha256(groups.after[:, :, ::7, ::7].tobytes()).hexdigest()[:16]
    path = out / "data" / f"descriptors-{key}.npz"
    if path.is_file():
        with np.load(path) as saved:
            return saved["before"], saved["after"]
    n_tiles = (CROP // TILE) ** 2

    def describe(images: np.ndarray) -> np.ndarray:  # N x H x W x 3 -> N x T x D
        rows = []
        for start in tqdm(range(0, len(images), 200), desc="descriptors", mininterval=10):
            part = images[start : start + 200]
            tiles = [tile_view(part, np.full(len(part), t)) for t in range(n_tiles)]
            rows.append(torch.stack([descriptors(to_batch(t)) for t in tiles], 1).numpy())
        return np.concatenate(rows)

    g, k = groups.after.shape[:2]
    before = describe(groups.before)
    after = describe(groups.after.reshape(g * k, CROP, CROP, 3)).reshape(g, k, n_tiles, -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".tmp.npz"), before=before, after=after)
    path.with_suffix(".tmp.npz").replace(path)
    return before, after


def tile_features(groups: Groups, out: Path) -> np.ndarray:
    """:func:`~tir_env.tools.learned.nets.gain_features` of every (before, candidate) tile pair.

    G x K x T x F, cached under ``out/data`` (minutes on two cores).
    """
    from tir_env.tools.learned.nets import N_GAIN_FEATURES, change_features

    key = hashlib.sha256(groups.after[:, :, ::7, ::7].tobytes()).hexdigest()[:16]
    path = out / "data" / f"features-{key}.npy"
    if path.is_file():
        return np.load(path)
    d_before, d_after = tile_descriptors(groups, out)
    g, k = groups.gain.shape
    n_tiles = (CROP // TILE) ** 2
    change = np.zeros((g, k, n_tiles, N_GAIN_FEATURES - 3 * d_before.shape[-1]), np.float32)
    for start in tqdm(range(0, g, 100), desc="features", mininterval=10):
        part = slice(start, min(g, start + 100))
        m = part.stop - part.start
        for t in range(n_tiles):
            before = to_batch(tile_view(groups.before[part], np.full(m, t)))
            after = groups.after[part].reshape(m * k, CROP, CROP, 3)
            pairs = change_features(
                before.repeat_interleave(k, 0), to_batch(tile_view(after, np.full(m * k, t)))
            )
            change[part, :, t] = pairs.view(m, k, -1).numpy()
    d_b = np.repeat(d_before[:, None], k, axis=1)
    features = np.concatenate([d_b, d_after, d_after - d_b, change], axis=-1)
    np.save(path.with_suffix(".tmp.npy"), features)
    path.with_suffix(".tmp.npy").replace(path)
    return features


def train_member(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: Config, seed: int
) -> None:
    """Train one MLP of the ensemble on standardised features (Huber loss, 1 dB knee)."""
    torch.manual_seed(seed)
    steps = cfg.epochs * (len(x) // cfg.batch)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=max(1, steps))
    net.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x) - cfg.batch + 1, cfg.batch):
            index = order[start : start + cfg.batch]
            loss = F.smooth_l1_loss(net(x[index])[:, 0], y[index], beta=1.0 / DB_SCALE)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()


def predict_groups(net: torch.nn.Module, features: np.ndarray) -> np.ndarray:
    """Predicted whole-image PSNR change (dB, mean of the tiles) of every candidate: G x K."""
    g, k, t, f = features.shape
    with torch.no_grad():
        out = net(torch.from_numpy(features.reshape(-1, f)))
    return out.view(g, k, t).mean(dim=2).numpy() * DB_SCALE


def best_margin(pred: np.ndarray, groups: Groups) -> float:
    """The margin (dB, 0-5 in 0.25 steps) whose picks gain most on ``groups``."""
    margins = np.arange(0.0, 5.01, 0.25)
    gains = [ranking_scores(pred - m, groups)["picked_gain_db"] for m in margins]
    return float(margins[int(np.argmax(gains))])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties by order; nan for fewer than 3 values or no spread)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def ranking_scores(pred: np.ndarray, groups: Groups) -> dict[str, float]:
    """How well ``pred`` (G x K, higher = better) chooses among each group's candidates.

    Each group's options are its valid candidates plus keeping ``before`` (true and predicted
    gain 0 for a gain predictor; pass ``pred`` relative to ``before`` for any scorer).
    """
    within, regret, picked, sign_ok, sign_n = [], [], [], 0, 0
    for g in range(len(pred)):
        ok = groups.valid[g].astype(bool)
        truth = np.concatenate([[0.0], groups.gain[g][ok]])
        guess = np.concatenate([[0.0], pred[g][ok]])
        within.append(spearman(guess, truth))
        choice = int(np.argmax(guess))
        regret.append(float(truth.max() - truth[choice]))
        picked.append(float(truth[choice]))
        big = np.abs(truth[1:]) > 0.5
        sign_ok += int(((guess[1:] > 0) == (truth[1:] > 0))[big].sum())
        sign_n += int(big.sum())
    ok = groups.valid.astype(bool)
    exploit = ok & (groups.kind == 2)
    return {
        "spearman_all": spearman(pred[ok], groups.gain[ok]),
        "spearman_within": float(np.nanmean(within)),
        "pick_regret_db": float(np.mean(regret)),
        "picked_gain_db": float(np.mean(picked)),
        "best_gain_db": float(
            np.mean([max(0.0, groups.gain[g][ok[g]].max(initial=0)) for g in range(len(pred))])
        ),
        "sign_accuracy": sign_ok / max(1, sign_n),
        "exploit_scored_up": float((pred[exploit] > 0).mean()) if exploit.any() else float("nan"),
        "exploit_true_up": float((groups.gain[exploit] > 0).mean())
        if exploit.any()
        else float("nan"),
    }


def record_head(cfg: Config) -> dict:
    """What a record needs to load the network (checkpoints included)."""
    return {
        "name": "quality_gain",
        "what": "PSNR change (dB) from before to after, without the clean image",
        "architecture": {"class": "QualityGainNet", "hidden": cfg.hidden, "members": cfg.members},
        "tile": TILE,
        "db_scale": DB_SCALE,
        "config": asdict(cfg),
    }


def main(cfg: Config) -> dict:
    """Generate (or load) the groups, train the ensemble, tune the margin on val, save."""
    from tir_env.tools.learned.nets import QualityGainNet

    start, cpu0 = time.time(), time.process_time()
    torch.set_num_threads(1)
    out = Path(cfg.out)
    train = cached_groups(cfg.train, cfg.groups, cfg.seed, cfg.workers, out)
    val = cached_groups(cfg.val, cfg.val_groups, cfg.seed + 1, cfg.workers, out)
    features, val_features = tile_features(train, out), tile_features(val, out)
    data_seconds = time.time() - start
    torch.set_num_threads(cfg.threads)
    keep = train.valid.astype(bool)
    x = torch.from_numpy(features[keep].reshape(-1, features.shape[-1]))
    y = torch.from_numpy(train.tile_gain[..., 0][keep].reshape(-1))
    torch.manual_seed(cfg.seed)  # the members' initial weights
    net = QualityGainNet(cfg.hidden, cfg.members)
    net.center.copy_(x.mean(dim=0))
    net.spread.copy_(x.std(dim=0) + 1e-6)
    standardised = (x - net.center) / net.spread  # what the ensemble's forward feeds each member
    for i, member in enumerate(tqdm(net.members, desc="members")):
        train_member(member, standardised, y, cfg, cfg.seed * 100 + i)
    pred = predict_groups(net, val_features)
    margin = best_margin(pred, val)
    record = {
        **record_head(cfg),
        "margin_db": margin,
        "command": " ".join(["python -m benchmarks.train_gain", *sys.argv[1:]]),
        "val": ranking_scores(pred, val),
        "val_with_margin": ranking_scores(pred - margin, val),
        "data_seconds": round(data_seconds, 1),
        "wall_seconds": round(time.time() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "machine": f"{platform.machine()}, {cfg.threads} threads",
    }
    save(net, out, "quality_gain", record)
    return record


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Build a :class:`Config` from the command line (every field is a flag, its doc the help)."""
    from tir_env.config_cli import config_from_args

    return config_from_args(
        Config, argv, "tir train gain", description=(__doc__ or "").split("\n\n")[0]
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = main(parse_args())
    print(json.dumps({k: v for k, v in result.items() if k != "val_curve"}, indent=1))
