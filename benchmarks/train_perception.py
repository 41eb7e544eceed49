"""Train perception v2 (presence, severity) and the ``tirqa`` quality head on the photo corpus.

One network (18 outputs: see :mod:`tir_env.perception`; the shipped
:class:`~tir_env.tools.learned.perception_features.PerceptionFeatureNet` with ``--arch
features``, trained by :mod:`benchmarks.perception_mlp`, or the earlier CNN
:class:`~tir_env.tools.learned.nets.PerceptionNetV2` with ``--arch cnn``) learns three things
from the same crops:

* **presence** of each of the eight AgenticIR types, binary cross-entropy, on clean crops and
  every combination of 1-3 types (not only the suites' pairs), with the published parameter
  ranges, applied in protocol order (85%) or a random order (15%: AgenticIR applies a
  combination in its listed order);
* **severity** of each present type (:meth:`Degradation.severity`), squared error, masked to
  the types present;
* **quality**: PSNR and SSIM against the clean crop, squared error, on degraded crops *and*
  on tool outputs (random classical tools with random parameters, and the ``median_paint``
  exploit that fools NIQE, a quarter of them), so that smoothing does not raise the score;
  plus a ranking loss within each group (a degraded crop and two tool outputs of it, ordered
  by their true PSNR), since an agent uses the score to pick among one image's candidates.

Crops are ``--crop`` pixels (96 by default, the tile size perception scores larger images
with, so pooled statistics match), cut from the corpus' train
photos after normalising each photo's long side to 1536 px and then scaling by 1, 0.7 or
0.5 (detail at several scales). A low-resolution crop is shown upsampled (bicubic) to the
crop size, as the env shows it. The val photos pick the per-type presence thresholds (the
F1-best on val) and are scored along the way; the test photos are never seen here
(``python -m benchmarks.perception_report`` scores them).

Usage::

    tir data photos --out ~/.cache/tir/photos
    python -m benchmarks.train_perception --out runs/perception   # the shipped recipe
    # about 9 min on 2 cores: 4-5 generating the 20,000 examples, 2-4 computing their
    # features, 1-2 training (the CNN: --arch cnn --steps 5000 --batch 32 --lr 0.002, 25 min)
    # new thresholds for trained weights in W (reuses the examples cached in W/examples):
    python -m benchmarks.train_perception --retune --init W/perception.safetensors --out W
    python -m benchmarks.train_perception --out /tmp/p --samples 600 --steps 50   # smoke run
"""

from __future__ import annotations

import json
import logging
import math
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from tir_env import data
from tir_env.degradations import make_degradation
from tir_env.degradations.base import protocol_sorted
from tir_env.degradations.protocols import (
    AGENTICIR_TYPES,
    MIO_GROUP_A,
    MIO_GROUP_B,
    MIO_GROUP_C,
)
from tir_env.errors import TIRError
from tir_env.images import resize, resize_u8, u8_to_batch
from tir_env.perception import N_OUTPUTS, PRESENCE, PSNR_RANGE, QUALITY, SEVERITY

logger = logging.getLogger(__name__)

#: Long side every photo is normalised to before the random scales.
NORMALISED_SIDE = 1536
#: Scales crops are cut at, relative to the normalised photo.
SCALES = (1.0, 0.7, 0.5)
#: Share of examples whose degradations are applied in a random order (else protocol order).
RANDOM_ORDER = 0.15
#: Probabilities of 0, 1, 2, 3 degradations in a sample.
COUNT_PROBS = (0.12, 0.3, 0.36, 0.22)
#: Quality targets closer than this (PSNR mapped onto 0-1: 0.02 = 0.7 dB) are not ranked.
RANK_MARGIN = 0.02


@dataclass(frozen=True)
class Config:
    """Training run settings.

    Attributes:
        out: Folder for the weights (``NAME.safetensors``), their record and checkpoints.
        name: Which network: ``perception`` (presence, severity and a quality head) or
            ``tirqa`` (a quality network the ``tirqa`` metric prefers to the head when its
            weights are present; none ships: docs/perception.md, "A quality network of
            its own").
        arch: ``features`` (the shipped :class:`PerceptionFeatureNet`: MLPs over image
            statistics, trained on cached features; steps, batch and lr below are its) or
            ``cnn`` (the earlier :class:`PerceptionNetV2`: ``--steps 5000 --batch 32 --lr
            0.002`` is its recipe).
        train: Image source of the training photos (``corpus:train``, a folder, ...).
        val: Image source of the validation photos.
        crop: Side of the training crops (a multiple of 8 and of 4).
        samples: Training examples generated once (cycled with flips and rotations).
        val_samples: Validation examples.
        tool_fraction: Share of examples that are a tool's output (quality head only).
        steps: Optimiser steps.
        batch: Examples per step.
        width: Channels of the CNN's first stage (``cnn``).
        hidden: Width of the MLPs' hidden layers (``features``).
        members: MLPs in the ensemble (``features``).
        profile: The features include the
            :func:`~tir_env.tools.learned.perception_features.direction_profile`
            (``features``; off in the shipped recipe: docs/perception.md, "Which direction is
            weak").
        blind: The features include the blind deblurring's kernel fits
            (:func:`~tir_env.tools.classical.kernel_fits.kernel_fit_features`;
            ``features``; off in the shipped recipe: docs/perception.md, "What the blind
            deblurring sees").
        lr: Peak learning rate (cosine decay).
        quality_weight: Weight of the quality loss.
        presence_weight: Weight of the presence and severity losses (0 for a network that
            only predicts quality).
        rank_weight: Weight of the within-group ranking loss of the quality head (a degraded
            crop and its tool outputs, ordered by true PSNR; what an agent picking among
            candidates needs). Needs ``group_tools``.
        group_tools: Tool outputs made from one degraded crop, kept next to it as a group
            (0: the shipped recipe, each tool output from its own crop).
        listed_order: Share of AgenticIR's listed combinations (groups A-C) applied in their
            listed order (what the v2 ``mio-*`` suites do) instead of protocol order.
        exploit_share: Share of tool outputs that are the ``median_paint`` exploit (0: drawn
            like any other tool).
        threshold_beta: Thresholds maximise F-beta on val; below 1 favours precision (an
            agent that runs a tool for a degradation that is not there usually does harm:
            F1-tuned thresholds made ``fixed`` run blind motion deblurring on most inputs).
        retune: Only recompute the thresholds (and val scores) of the weights in ``init``
            on the val examples, and write them to ``out``.
        init: Weights to start from (a ``perception.safetensors``), or empty for a new network.
        extra: Comma-separated ``.npz`` files of further training examples (the fields of
            :class:`Examples`), appended after the generated ones: the hard examples
            ``benchmarks.tirqa_mine`` finds (tool outputs a search that trusts ``tirqa``
            walks into). Empty: none (every shipped recipe).
        extra_limit: Keep this many of the ``extra`` examples, drawn at random with ``seed``
            (0: all of them).
        seed: Seed of every random draw.
        threads: Torch CPU threads.
    """

    out: str = "runs/perception"
    name: str = "perception"
    arch: str = "features"
    train: str = "corpus:train"
    val: str = "corpus:val"
    crop: int = 96
    samples: int = 20000
    val_samples: int = 1500
    tool_fraction: float = 0.3
    steps: int = 6000
    batch: int = 256
    width: int = 24
    hidden: int = 192
    members: int = 3
    profile: bool = False
    blind: bool = False
    lr: float = 1e-3
    quality_weight: float = 2.0
    presence_weight: float = 1.0
    rank_weight: float = 0.0
    group_tools: int = 0
    listed_order: float = 0.0
    exploit_share: float = 0.0
    threshold_beta: float = 0.5
    init: str = ""
    extra: str = ""
    extra_limit: int = 0
    retune: bool = False
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if self.arch not in ("features", "cnn"):
            raise ValueError(f"arch must be 'features' or 'cnn', got {self.arch!r}")
        if self.name not in ("perception", "tirqa"):
            raise ValueError(f"name must be 'perception' or 'tirqa', got {self.name!r}")


@dataclass
class Examples:
    """Training examples as arrays (uint8 images, float targets and masks)."""

    images: np.ndarray  # N x crop x crop x 3 uint8
    presence: np.ndarray  # N x 8 (0/1)
    severity: np.ndarray  # N x 8 (0-1, 0 where absent)
    labelled: np.ndarray  # N (1: presence/severity labels hold; 0: a tool output)
    quality: np.ndarray  # N x 2 (PSNR normalised to 0-1, SSIM)
    group: np.ndarray  # N (int: a degraded crop and its tool outputs share one id)

    def described(self, batch: int = 500) -> np.ndarray:
        """:func:`~tir_env.tools.learned.nets.descriptors` of every image (N x 16)."""
        from tir_env.tools.learned.nets import descriptors

        parts = [
            descriptors(to_batch(self.images[i : i + batch]))
            for i in range(0, len(self.images), batch)
        ]
        return torch.cat(parts).numpy()


# ------------------------------------------------------------------------------ data


class PhotoCrops:
    """Random crops of a source's photos at several scales (flat crops redrawn)."""

    def __init__(self, spec: str, crop: int) -> None:
        self.source = data.source(spec)
        self.crop = crop
        self.cache: dict[tuple[str, float], np.ndarray] = {}

    def photo(self, image_id: str, scale: float) -> np.ndarray:
        """A photo at ``scale`` of its normalised size (cached)."""
        key = (image_id, scale)
        if key not in self.cache:
            image = self.source.load(image_id)
            factor = scale * NORMALISED_SIDE / max(image.shape[:2])
            h, w = (max(self.crop, round(s * factor)) for s in image.shape[:2])
            self.cache[key] = resize_u8(image, (h, w)) if factor < 1 else np.asarray(image)
        return self.cache[key]

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One crop whose grey-level standard deviation is at least 4 (ten tries)."""
        for _ in range(10):
            image_id = self.source.ids[int(rng.integers(len(self.source)))]
            photo = self.photo(image_id, SCALES[int(rng.integers(len(SCALES)))])
            crop = data.random_patch(photo, self.crop, rng)
            if crop.std() >= 4.0:
                break
        return crop


def degrade_in_order(
    clean: torch.Tensor, names: Sequence[str], rng: np.random.Generator, listed_order: float = 0.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """Apply ``names`` in listed, protocol or random order; return the image and severities.

    A set that is one of AgenticIR's combinations is applied in its listed order some of the
    time (``listed_order``: the ``mio-*`` suites degrade in that order); otherwise in
    protocol order, or a random order (:data:`RANDOM_ORDER`).

    A random order is often unrecognisable (JPEG blocks blurred away, noise averaged out by
    a later downsampling) and labels it wrongly, so it is kept rare: enough to see the
    orders AgenticIR lists, not so much that the labels stop meaning what is visible.
    """
    listed = LISTED_COMBOS.get(frozenset(names)) if listed_order > 0 else None
    if listed is not None and rng.random() < listed_order:
        order = list(listed)
    elif rng.random() < RANDOM_ORDER:
        order = list(rng.permutation(names))
    else:
        order = protocol_sorted(names)
    image, severity = clean, {}
    for name in order:
        degradation = make_degradation(str(name))
        image, params = degradation(image, rng)
        severity[str(name)] = float(np.clip(degradation.severity(params), 0.0, 1.0))
    return image, severity


#: AgenticIR's listed combinations (groups A-C) by set, in their listed order.
LISTED_COMBOS: dict[frozenset[str], tuple[str, ...]] = {
    frozenset(c): c for c in MIO_GROUP_A + MIO_GROUP_B + MIO_GROUP_C
}


def as_shown(image: torch.Tensor, size: int) -> torch.Tensor:
    """The image at the crop size, 8-bit quantised (a low-resolution image upsampled)."""
    if image.shape[-1] != size or image.shape[-2] != size:
        image = resize(image, (size, size))
    return torch.round(image.clamp(0, 1) * 255) / 255


def quality_target(image: torch.Tensor, clean: torch.Tensor) -> tuple[float, float]:
    """(PSNR mapped onto 0-1 over :data:`PSNR_RANGE`, SSIM) of a shown image."""
    from tir_env.metrics.fast import luma_u8, psnr, ssim_cs

    low, high = PSNR_RANGE
    value = float(psnr(image, clean)[0])
    value = 60.0 if not math.isfinite(value) else value
    ssim = float(ssim_cs(luma_u8(image), luma_u8(clean))[0][0])
    return float(np.clip((value - low) / (high - low), 0, 1)), ssim


def tool_candidates() -> list[str]:
    """Classical tools and the ``median_paint`` exploit (what the quality head must judge)."""
    import tir_env.tools.exploits  # noqa: F401  (registers median_paint)
    from tir_env.tools import tool_names

    return [*tool_names(kinds=("classical",)), "median_paint"]


def random_params(tool: str, rng: np.random.Generator) -> dict[str, float]:
    """Uniform parameters over the tool's ranges (integers rounded)."""
    from tir_env.tools import tool_info

    params = {}
    for name, p in tool_info(tool).params.items():
        value = float(rng.uniform(p.low, p.high))
        params[name] = float(round(value)) if p.integer else value
    return params


def tool_output(
    image: torch.Tensor, tools: Sequence[str], rng: np.random.Generator, exploit_share: float = 0.0
) -> torch.Tensor | None:
    """One or two random tools applied to ``image`` (super-resolution only to small images).

    The first tool is the ``median_paint`` exploit with probability ``exploit_share`` (if
    above 0; else it is drawn like any other tool).
    """
    from tir_env.tools import make_tool, tool_info

    for call in range(int(rng.integers(1, 3))):
        small = image.shape[-1] < 64
        pool = [t for t in tools if (tool_info(t).scale > 1) == small or tool_info(t).scale == 1]
        exploit = (
            exploit_share > 0 and call == 0 and "median_paint" in pool
        ) and rng.random() < exploit_share
        tool = "median_paint" if exploit else pool[int(rng.integers(len(pool)))]
        try:
            image = make_tool(tool)(image, random_params(tool, rng))
        except TIRError:
            return None
    return image


def make_examples(
    crops: PhotoCrops,
    n: int,
    cfg: Config,
    rng: np.random.Generator,
    desc: str,
    progress: bool = True,
) -> Examples:
    """Generate ``n`` examples (see the module docstring).

    With ``cfg.group_tools == 0`` (the shipped recipe) a ``tool_fraction`` of the examples are
    one or two tools applied to their own degraded crop; otherwise every crop is a labelled
    example and some also get ``group_tools`` tool outputs right after it, sharing its group id
    (for the ranking loss), so that ``tool_fraction`` of the examples are still tool outputs.
    ``progress``: show a progress bar.
    """
    if cfg.group_tools > 0:
        return _grouped_examples(crops, n, cfg, rng, desc)
    size, tools = crops.crop, tool_candidates()
    ex = _empty_examples(n, size)
    for i in tqdm(range(n), desc=desc, mininterval=5, disable=not progress):
        clean = u8_to_batch(crops.draw(rng))
        image, found = _degraded(clean, cfg, rng)
        if rng.random() < cfg.tool_fraction:
            processed = tool_output(image, tools, rng, cfg.exploit_share)
            if processed is not None:  # a tool's output: only its quality is known
                image, ex.labelled[i] = processed, 0.0
        _store(ex, i, as_shown(image, size), clean, found)
    return ex


def _grouped_examples(
    crops: PhotoCrops, n: int, cfg: Config, rng: np.random.Generator, desc: str
) -> Examples:
    """:func:`make_examples` with groups of a degraded crop and its tool outputs."""
    size, tools = crops.crop, tool_candidates()
    ex = _empty_examples(n, size)
    with_tools = cfg.tool_fraction / (cfg.group_tools * max(1e-6, 1.0 - cfg.tool_fraction))
    i, crop_id = 0, 0
    progress = tqdm(total=n, desc=desc, mininterval=5)
    while i < n:
        clean = u8_to_batch(crops.draw(rng))
        image, found = _degraded(clean, cfg, rng)
        start = i
        _store(ex, i, as_shown(image, size), clean, found, crop_id)
        i += 1
        if rng.random() < with_tools:
            for _ in range(min(cfg.group_tools, n - i)):
                processed = tool_output(image, tools, rng, cfg.exploit_share)
                if processed is None:
                    continue
                _store(ex, i, as_shown(processed, size), clean, {}, crop_id)
                ex.labelled[i] = 0.0
                i += 1
        progress.update(i - start)
        crop_id += 1
    progress.close()
    return ex


def _empty_examples(n: int, size: int) -> Examples:
    return Examples(
        images=np.zeros((n, size, size, 3), np.uint8),
        presence=np.zeros((n, 8), np.float32),
        severity=np.zeros((n, 8), np.float32),
        labelled=np.ones(n, np.float32),
        quality=np.zeros((n, 2), np.float32),
        group=np.arange(n, dtype=np.int64),
    )


def _degraded(
    clean: torch.Tensor, cfg: Config, rng: np.random.Generator
) -> tuple[torch.Tensor, dict[str, float]]:
    """A random set of 0-3 types (:data:`COUNT_PROBS`) applied to ``clean``."""
    k = int(rng.choice(4, p=COUNT_PROBS))
    names = [str(t) for t in rng.choice(AGENTICIR_TYPES, size=k, replace=False)]
    return degrade_in_order(clean, names, rng, cfg.listed_order)


def _store(
    ex: Examples,
    i: int,
    shown: torch.Tensor,
    clean: torch.Tensor,
    found: dict[str, float],
    group: int | None = None,
) -> None:
    """Write example ``i``: the shown image, its labels and its quality against ``clean``."""
    ex.images[i] = _u8(shown)
    for j, name in enumerate(AGENTICIR_TYPES):
        ex.presence[i, j] = float(name in found)
        ex.severity[i, j] = found.get(name, 0.0)
    ex.quality[i] = quality_target(shown, clean)
    if group is not None:
        ex.group[i] = group


def _u8(shown: torch.Tensor) -> np.ndarray:
    """A shown 1x3xHxW image in [0, 1] as HxWx3 uint8."""
    return (shown[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def cached_examples(
    cfg: Config, spec: str, n: int, out: Path, rng: np.random.Generator
) -> Examples:
    """:func:`make_examples`, saved under ``out`` and reused by a rerun with the same settings.

    The cache key hashes everything that shapes the examples, the generator's state at entry
    included; the state at exit is saved too, so a rerun continues with the same random
    stream as the first run.
    """
    import hashlib

    state = json.dumps(rng.bit_generator.state, sort_keys=True)
    what = f"{spec}|{n}|{cfg.crop}|{cfg.tool_fraction}|{RANDOM_ORDER}|{COUNT_PROBS}|{state}"
    if (cfg.group_tools, cfg.listed_order, cfg.exploit_share) != (0, 0.0, 0.0):
        what += f"|{cfg.group_tools}|{cfg.listed_order}|{cfg.exploit_share}"
    key = hashlib.sha256(what.encode()).hexdigest()[:16]
    path = out / "examples" / f"{key}.npz"
    if path.is_file():
        saved = np.load(path, allow_pickle=False)
        rng.bit_generator.state = json.loads(str(saved["rng_state"]))
        n_saved = len(saved["images"])  # caches of the shipped recipe hold no groups
        return Examples(
            *(
                saved[f] if f in saved else np.arange(n_saved, dtype=np.int64)
                for f in Examples.__dataclass_fields__
            )
        )
    examples = make_examples(PhotoCrops(spec, cfg.crop), n, cfg, rng, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    state = json.dumps(rng.bit_generator.state)
    np.savez(tmp, rng_state=np.array(state), **vars(examples))
    tmp.replace(path)
    return examples


def load_examples(path: Path) -> Examples:
    """Examples saved as ``.npz`` (every field of :class:`Examples`).

    Raises:
        DataError: the file is missing or lacks a field.
    """
    from tir_env.errors import DataError

    if not path.is_file():
        raise DataError(f"extra examples {path} not found (make them with benchmarks.tirqa_mine)")
    with np.load(path, allow_pickle=False) as saved:
        missing = [f for f in Examples.__dataclass_fields__ if f not in saved]
        if missing:
            raise DataError(f"extra examples {path} lack {', '.join(missing)}")
        return Examples(*(saved[f] for f in Examples.__dataclass_fields__))


def with_extra(train: Examples, paths: Sequence[Path], limit: int = 0, seed: int = 0) -> Examples:
    """``train`` followed by the examples in ``paths``, their groups renumbered after its own.

    Each field takes ``train``'s dtype. ``limit`` > 0 keeps that many of the added examples,
    drawn without replacement with ``seed`` (in their order).

    Raises:
        DataError: a file holds no examples, or images of another size than ``train``'s.
    """
    from tir_env.errors import DataError

    parts = [train]
    for path in paths:
        extra = load_examples(path)
        if not len(extra.images):
            raise DataError(f"extra examples {path} hold no examples")
        if extra.images.shape[1:] != train.images.shape[1:]:
            raise DataError(
                f"extra examples {path} are {extra.images.shape[1:]} images, the training "
                f"crops {train.images.shape[1:]}: mine them at --size {train.images.shape[1]}"
            )
        for name in Examples.__dataclass_fields__:
            setattr(extra, name, getattr(extra, name).astype(getattr(train, name).dtype))
        extra.group = extra.group - extra.group.min() + max(p.group.max() for p in parts) + 1
        parts.append(extra)
    if limit > 0:
        added = sum(len(p.images) for p in parts[1:])
        keep = np.sort(np.random.default_rng(seed).permutation(added)[:limit])
        fields = Examples.__dataclass_fields__
        added_fields = (np.concatenate([getattr(p, f) for p in parts[1:]]) for f in fields)
        extra = Examples(*(values[keep] for values in added_fields))
        parts = [train, extra]
    return Examples(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Examples.__dataclass_fields__)
    )


# ------------------------------------------------------------------------------ training


def augment(
    batch: torch.Tensor, described: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random flip and rotation by a multiple of 90 degrees (keeps the 8-pixel JPEG grid).

    The descriptors are invariant to both, except the two blockiness directions, which a
    quarter turn swaps.
    """
    turns = int(rng.integers(4))
    batch = torch.rot90(batch, turns, dims=(2, 3))
    if turns % 2:
        described = described.clone()
        described[:, [1, 2]] = described[:, [2, 1]]
    return (batch.flip(3) if rng.integers(2) else batch), described


def to_batch(images: np.ndarray) -> torch.Tensor:
    """uint8 NxHxWx3 -> float32 Nx3xHxW in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def losses(
    out: torch.Tensor, ex: Examples, index: np.ndarray, rank: bool = False
) -> dict[str, torch.Tensor]:
    """Presence BCE, masked severity and quality squared errors of one batch (and ranking)."""
    parts = target_losses(
        out,
        *(torch.from_numpy(a[index]) for a in (ex.presence, ex.severity, ex.labelled, ex.quality)),
    )
    parts["rank"] = rank_loss(out[:, QUALITY][:, 0], ex, index) if rank else out.sum() * 0.0
    return parts


def target_losses(
    out: torch.Tensor,
    presence: torch.Tensor,
    severity: torch.Tensor,
    labelled: torch.Tensor,
    quality: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """:func:`losses` without the ranking term, from target tensors on ``out``'s device.

    Args:
        out: Raw outputs (N x 18).
        presence: N x 8, 0/1.
        severity: N x 8, 0-1 (masked to the types present).
        labelled: N, 1 where presence and severity labels hold (0: a tool output).
        quality: N x 2, PSNR mapped onto 0-1 and SSIM.
    """
    labelled = labelled[:, None]
    sev_mask = presence * labelled
    sev_err = (torch.sigmoid(out[:, SEVERITY]) - severity) ** 2
    bce = F.binary_cross_entropy_with_logits(out[:, PRESENCE], presence, reduction="none")
    quality_err = torch.sigmoid(out[:, QUALITY]) - quality
    return {
        "presence": (bce * labelled).sum() / labelled.sum().clamp_min(1) / 8,
        "severity": (sev_err * sev_mask).sum() / sev_mask.sum().clamp_min(1),
        "quality": (quality_err**2).mean(),
    }


def rank_loss(score: torch.Tensor, ex: Examples, index: np.ndarray) -> torch.Tensor:
    """Logistic loss on every pair of one group whose true PSNRs differ by > RANK_MARGIN.

    The quality head must order a degraded crop and its tool outputs as PSNR does: an agent
    uses it to pick among candidates of one image, where absolute error matters less.
    """
    group = torch.from_numpy(ex.group[index])
    target = torch.from_numpy(ex.quality[index, 0])
    same = (group[:, None] == group[None, :]) & ~torch.eye(len(index), dtype=torch.bool)
    gap = target[:, None] - target[None, :]
    pairs = same & (gap > RANK_MARGIN)  # i truly better than j
    if not bool(pairs.any()):
        return score.sum() * 0.0
    margin = score[:, None] - score[None, :]
    return F.softplus(-margin[pairs]).mean()


def total_loss(parts: dict[str, torch.Tensor], cfg: Config, ranked: bool) -> torch.Tensor:
    """The weighted sum of :func:`losses`' parts (the ranking term only when ``ranked``)."""
    loss = cfg.presence_weight * (parts["presence"] + parts["severity"])
    loss = loss + cfg.quality_weight * parts["quality"]
    return loss + cfg.rank_weight * parts["rank"] if ranked else loss


def optimise(
    opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, loss: torch.Tensor
) -> torch.Tensor:
    """One optimiser and scheduler step on ``loss``; returns it."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return loss


def group_batch(ex: Examples, batch: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of about ``batch`` examples: random examples with every member of their groups."""
    members: set[int] = set()
    while len(members) < batch:
        members.update(_group_members(ex.group, int(rng.integers(len(ex.group)))))
    return np.array(sorted(members))[:batch]


def _group_members(group: np.ndarray, index: int) -> range:
    """The contiguous run of examples sharing ``group[index]``."""
    lo, hi = index, index + 1
    while lo > 0 and group[lo - 1] == group[index]:
        lo -= 1
    while hi < len(group) and group[hi] == group[index]:
        hi += 1
    return range(lo, hi)


def predict(net: torch.nn.Module, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """Raw outputs (Nx18) of uint8 NxHxWx3 images (descriptors computed by the network)."""
    net.eval()
    with torch.no_grad():
        outs = [net(to_batch(images[i : i + batch])) for i in range(0, len(images), batch)]
    net.train()
    return torch.cat(outs)


#: The presence thresholds a tuning chooses among.
THRESHOLD_GRID = np.arange(0.05, 0.96, 0.025)


def best_thresholds(probs: np.ndarray, truth: np.ndarray, beta: float = 1.0) -> dict[str, float]:
    """Per-type threshold (0.05-0.95) with the best F-beta on the given examples."""
    chosen = {}
    for j, name in enumerate(AGENTICIR_TYPES):
        scores = [f_beta(probs[:, j] >= t, truth[:, j] > 0.5, beta) for t in THRESHOLD_GRID]
        chosen[name] = round(float(THRESHOLD_GRID[int(np.argmax(scores))]), 3)
    return chosen


def roc_auc(score: Sequence[float] | np.ndarray, truth: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: present scores above absent ones, ties half (NaN if one-sided)."""
    score, truth = np.asarray(score, dtype=float), np.asarray(truth, dtype=bool)
    positives, negatives = score[truth], np.sort(score[~truth])
    if not len(positives) or not len(negatives):
        return math.nan
    below = np.searchsorted(negatives, positives, side="left")
    ties = np.searchsorted(negatives, positives, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (len(positives) * len(negatives)))


def f_beta(predicted: np.ndarray, truth: np.ndarray, beta: float) -> float:
    """F-beta of boolean predictions (beta < 1 weighs precision more)."""
    tp = float(np.sum(predicted & truth))
    precision = tp / max(1.0, float(np.sum(predicted)))
    recall = tp / max(1.0, float(np.sum(truth)))
    denom = beta**2 * precision + recall
    return (1 + beta**2) * precision * recall / denom if denom else 0.0


def f1_score(predicted: np.ndarray, truth: np.ndarray) -> float:
    """F1 of boolean predictions (0 when nothing is predicted or true)."""
    tp = float(np.sum(predicted & truth))
    denom = float(np.sum(predicted) + np.sum(truth))
    return 2 * tp / denom if denom else 0.0


def evaluate(
    net: torch.nn.Module,
    ex: Examples,
    limits: dict[str, float],
    out: torch.Tensor | None = None,
) -> dict[str, float]:
    """Exact-set rate, mean F1, severity MAE and quality Spearman on labelled examples.

    ``out``: the network's raw outputs on ``ex`` if already computed.
    """
    from scipy.stats import spearmanr

    out = predict(net, ex.images) if out is None else out
    keep = ex.labelled > 0.5
    probs = torch.sigmoid(out[:, PRESENCE]).numpy()[keep]
    truth = ex.presence[keep] > 0.5
    pred = probs >= np.array([limits[n] for n in AGENTICIR_TYPES])
    f1 = [f1_score(pred[:, j], truth[:, j]) for j in range(8)]
    sev = torch.sigmoid(out[:, SEVERITY]).numpy()[keep]
    sev_err = np.abs(sev - ex.severity[keep])[truth]
    q = torch.sigmoid(out[:, QUALITY]).numpy()
    return {
        "exact_set": float(np.mean(np.all(pred == truth, axis=1))),
        "mean_f1": float(np.mean(f1)),
        "min_f1": float(np.min(f1)),
        "severity_mae": float(sev_err.mean()) if sev_err.size else float("nan"),
        "psnr_spearman": float(spearmanr(q[:, 0], ex.quality[:, 0]).statistic),
    }


def cached_descriptors(ex: Examples, out: Path) -> np.ndarray:
    """:meth:`Examples.described`, saved under ``out/examples`` (keyed by the images' hash).

    Computing them takes minutes on two cores; a rerun with the same examples reuses them.
    """
    import hashlib

    key = hashlib.sha256(ex.images.tobytes()).hexdigest()[:16]
    path = out / "examples" / f"descriptors-{key}.npy"
    if path.is_file():
        return np.load(path)
    described = ex.described()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, described)
    tmp.replace(path)
    return described


def save(net: torch.nn.Module, out: Path, name: str, record: dict) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` atomically; return the weights' path."""
    from tir_env.tools.learned.weights import save_weights

    save_weights(net, out / f"{name}.safetensors", record)
    return out / f"{name}.safetensors"


def tune_thresholds(
    net: torch.nn.Module, val: Examples, beta: float, out: torch.Tensor | None = None
) -> dict[str, float]:
    """Per-type presence thresholds, F-beta-best on the labelled val examples."""
    keep = val.labelled > 0.5
    out = predict(net, val.images) if out is None else out
    probs = torch.sigmoid(out[:, PRESENCE]).numpy()[keep]
    return best_thresholds(probs, val.presence[keep], beta)


def retune(cfg: Config) -> dict:
    """Recompute the thresholds and val scores of ``cfg.init``; write weights and record."""
    from tir_env.perception import build
    from tir_env.tools.learned.weights import load_state

    torch.set_num_threads(cfg.threads)
    old = json.loads(Path(cfg.init).with_suffix(".json").read_text())
    net = build(old.get("architecture", {}))
    net.load_state_dict(load_state(Path(cfg.init)))
    net.eval()
    rng = np.random.default_rng(cfg.seed)
    cached_examples(cfg, cfg.train, cfg.samples, Path(cfg.out), rng)  # same stream as training
    val = cached_examples(cfg, cfg.val, cfg.val_samples, Path(cfg.out), rng)
    limits = tune_thresholds(net, val, cfg.threshold_beta)
    record = {
        **old,
        "thresholds": limits,
        "threshold_beta": cfg.threshold_beta,
        "val": evaluate(net, val, limits),
        "retuned_by": " ".join(["python -m benchmarks.train_perception", *sys.argv[1:]]),
    }
    save(net, Path(cfg.out), cfg.name, record)
    return record


def record_head(cfg: Config) -> dict:
    """What a record needs to load the network (checkpoints included)."""
    return {
        "name": cfg.name,
        "what": "presence (8 AgenticIR types), severity (0-1 each), quality (PSNR, SSIM)",
        "architecture": architecture(cfg),
        "outputs": {"presence": [0, 8], "severity": [8, 16], "quality": [16, 18]},
        "psnr_range": list(PSNR_RANGE),
        "types": list(AGENTICIR_TYPES),
        "config": asdict(cfg),
    }


def architecture(cfg: Config) -> dict[str, Any]:
    """The record's ``architecture`` entry (what :func:`tir_env.perception.build` reads)."""
    if cfg.arch == "features":
        return {
            "class": "PerceptionFeatureNet",
            "classes": N_OUTPUTS,
            "hidden": cfg.hidden,
            "members": cfg.members,
            "profile": cfg.profile,
            "blind": cfg.blind,
        }
    return {"class": "PerceptionNetV2", "classes": N_OUTPUTS, "width": cfg.width}


def main(cfg: Config) -> dict:
    """Generate the examples, train, pick thresholds on val, save; return the record."""
    start, cpu0 = time.time(), time.process_time()
    torch.set_num_threads(1)  # generation runs many tiny ops: threads only spin
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out)
    train = cached_examples(cfg, cfg.train, cfg.samples, out, rng)
    val = cached_examples(cfg, cfg.val, cfg.val_samples, out, rng)
    if cfg.extra:
        files = [Path(f) for f in cfg.extra.split(",")]
        train = with_extra(train, files, cfg.extra_limit, cfg.seed)
    data_seconds = time.time() - start
    torch.set_num_threads(cfg.threads)
    net: torch.nn.Module
    if cfg.arch == "features":
        from benchmarks import perception_mlp

        features_net, curve, val_features = perception_mlp.train(cfg, train, val, out, rng)
        net, val_out = features_net, perception_mlp.outputs(features_net, val_features)
    else:
        net, curve = train_cnn(cfg, train, val, out, rng)
        val_out = predict(net, val.images)
    limits = tune_thresholds(net, val, cfg.threshold_beta, val_out)
    record = {
        **record_head(cfg),
        "thresholds": limits,
        "threshold_beta": cfg.threshold_beta,
        "command": " ".join(["python -m benchmarks.train_perception", *sys.argv[1:]]),
        "val": evaluate(net, val, limits, val_out),
        "val_curve": curve,
        "data_seconds": round(data_seconds, 1),
        "wall_seconds": round(time.time() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    save(net, out, cfg.name, record)
    return record


def train_cnn(
    cfg: Config, train: Examples, val: Examples, out: Path, rng: np.random.Generator
) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """Train the convolutional :class:`PerceptionNetV2`; return it and its val curve."""
    from tir_env.tools.learned.nets import PerceptionNetV2

    net = PerceptionNetV2(N_OUTPUTS, cfg.width)
    if cfg.init:
        from tir_env.tools.learned.weights import load_state

        net.load_state_dict(load_state(Path(cfg.init)))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    curve, default_limits = [], dict.fromkeys(AGENTICIR_TYPES, 0.5)
    described = torch.from_numpy(cached_descriptors(train, out))
    for step in tqdm(range(1, cfg.steps + 1), desc="train", mininterval=10):
        index = (
            group_batch(train, cfg.batch, rng)
            if cfg.group_tools > 0
            else rng.integers(0, len(train.images), cfg.batch)  # --extra's examples too
        )
        images, stats = augment(to_batch(train.images[index]), described[index], rng)
        parts = losses(net(images, stats), train, index, rank=cfg.rank_weight > 0)
        loss = optimise(opt, sched, total_loss(parts, cfg, cfg.rank_weight > 0))
        if step % max(1, cfg.steps // 8) == 0 or step == cfg.steps:
            scores = evaluate(net, val, default_limits)
            curve.append({"step": step, "loss": float(loss.detach()), **scores})
            logger.info("step %d: %s", step, curve[-1])
            save(net, out / "checkpoint", cfg.name, {"step": step, **record_head(cfg)})
    net.eval()
    return net, curve


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Build a :class:`Config` from the command line (every field is a flag, its doc the help)."""
    from tir_env.config_cli import config_from_args
    from tir_env.independent import refuse_reserved

    refuse_reserved(sys.argv[1:] if argv is None else argv, "tir train perception")
    return config_from_args(
        Config, argv, "tir train perception", description=(__doc__ or "").split("\n\n")[0]
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = parse_args()
    result = retune(config) if config.retune else main(config)
    print(json.dumps({k: v for k, v in result.items() if k != "val_curve"}, indent=1))
