"""Perception: which of the eight AgenticIR degradations an image carries, how strong, how good.

AgenticIR perceives the degradations first (with DepictQA) and explores only the matching
tools. Here one small network trained in-repo on the photo corpus does it
(:class:`~tir_env.tools.learned.perception_features.PerceptionFeatureNet`, MLPs over image
statistics; the record may also name the earlier CNN,
:class:`~tir_env.tools.learned.nets.PerceptionNetV2`; weights
``tir_env/assets/learned/perception.safetensors``, trained by ``tir train perception``,
:mod:`benchmarks.train_perception`; measured on held-out photos in ``docs/perception.md``).
It has three heads on one input:

* **presence**: one probability per type (multi-label), with a threshold per type tuned on
  the validation photos (kept in the weights' record);
* **severity**: for each type, its main parameter mapped onto 0-1 over the published range
  (:meth:`tir_env.degradations.base.Degradation.severity`: noise sigma, JPEG quality, blur
  level, rain density, ...); meaningful for the types that are present;
* **quality**: the PSNR (dB) and SSIM the image would score against its unseen clean
  original, the ``tirqa`` no-reference metric (:mod:`tir_env.metrics.tirqa`).

Quality comes from a second network of the same architecture when its weights exist
(``tirqa.safetensors``, :data:`QUALITY_WEIGHTS_NAME`): trained with a ranking loss over a
degraded crop and its tool outputs, it orders an agent's candidates better than the
presence network's quality head, which sharing its layers with presence does worse at
(``docs/perception.md``). Without those weights the presence network's head is used.

The network sees the image at native resolution, quantised to 8 bits, never resized down:
JPEG blocks and noise live in single pixels. Larger images are cut into 96x96 tiles on the
8-pixel JPEG grid (at most :data:`MAX_TILES`, spread evenly) and the tiles' outputs (logits)
averaged, weighted by each tile's texture (:func:`tile_weights`). A low-resolution image is
only recognisable at the size it should have: pass that ``size`` (the env passes its target
size); without one, an image whose short side is under :data:`MIN_SIDE` pixels is upsampled
4x (bicubic) first, the env's 32x32 low-resolution crop of a 128x128 patch.

Example:
    >>> import numpy as np, tir_env
    >>> probs = tir_env.perceive(np.zeros((64, 64, 3), np.uint8))  # doctest: +SKIP
    >>> sorted(probs)  # doctest: +SKIP
    ['dark', 'defocus_blur', 'haze', 'jpeg', 'low_resolution', 'motion_blur', 'noise', 'rain']
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from tir_env import photo_thresholds
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.errors import CheckpointError
from tir_env.images import check_batch, resize, u8_to_batch
from tir_env.photo_thresholds import (
    GREY_DARK_THRESHOLD,
    GREY_MIN_SIDE,
    GREY_TOLERANCE,
    WHOLE_MIN_SIDE,
    WHOLE_NOISE_THRESHOLD,
    WHOLE_RAIN_STREAKS,
    is_greyscale,
)
from tir_env.types import ImageU8

#: File stem of the network's weights and record.
WEIGHTS_NAME = "perception"
#: The network trained on corpus release 1, kept for the policies trained on its readings
#: (the shipped ``vlm``'s perception line: ``TurnText.perception_network``).
RELEASE1_WEIGHTS_NAME = "perception_r1"
#: File stem of the quality network's weights (optional: else the perception network's head).
QUALITY_WEIGHTS_NAME = "tirqa"
#: File stem of the network the darkness and haze judge (:mod:`agents.judge`) reads its
#: readings from (optional: else the perception network). The judge was fitted on one
#: network's readings as a share of its thresholds; a new perception network reads on
#: another scale, so the one the judge was fitted on stays under this name when it ships.
JUDGE_WEIGHTS_NAME = "perception_judge"
#: Side of the tiles a large image is cut into (the training crop size).
TILE = 96
#: Most tiles one image is scored on: up to 6 x 6, spread evenly over it.
MAX_TILES = 36
#: Smallest side the network sees; smaller images are upsampled to it.
MIN_INPUT = 32
#: Images with a shorter side than this are upsampled 4x first (a low-resolution crop).
MIN_SIDE = 64
#: Default presence threshold (the record's per-type thresholds replace it).
THRESHOLD = 0.5
#: PSNR range (dB) the quality head's 0-1 output spans.
PSNR_RANGE = (10.0, 45.0)
#: Output columns: presence logits, severity logits, quality (PSNR, SSIM) logits.
N_TYPES = len(AGENTICIR_TYPES)
PRESENCE = slice(0, N_TYPES)
SEVERITY = slice(N_TYPES, 2 * N_TYPES)
QUALITY = slice(2 * N_TYPES, 2 * N_TYPES + 2)
N_OUTPUTS = 2 * N_TYPES + 2

_lock = threading.Lock()


@dataclass(frozen=True)
class Perception:
    """What perception sees in one image.

    Attributes:
        probs: Probability that each type is present.
        severity: Predicted severity (0-1) of each type, meaningful where it is present.
        psnr: Predicted PSNR (dB) against the unseen clean image.
        ssim: Predicted SSIM against it.
        thresholds: Per-type presence thresholds used by :attr:`present`.
    """

    probs: dict[str, float]
    severity: dict[str, float]
    psnr: float
    ssim: float
    thresholds: dict[str, float]

    @property
    def present(self) -> list[str]:
        """Types at or above their threshold, in protocol order (empty: looks clean)."""
        return perceived(self.probs, self.thresholds)


@functools.cache
def record(name: str = WEIGHTS_NAME) -> dict[str, Any]:
    """A network's JSON record (architecture, thresholds, training and test numbers).

    Args:
        name: :data:`WEIGHTS_NAME` (presence, severity) or :data:`QUALITY_WEIGHTS_NAME`.

    Raises:
        WeightsNotFoundError: the weights are missing.
        CheckpointError: the record is unreadable.
    """
    from tir_env.tools.learned.weights import checked_record

    retrain = "retrain with `tir train perception` or set $TIR_LEARNED_WEIGHTS"
    return checked_record(name, name, retrain)


#: Perception architectures a weights record may name, and how to build each from it.
ARCHITECTURES = ("PerceptionFeatureNet", "PerceptionNetV2", "PerceptionEnsemble")


@functools.cache
def _model(name: str = WEIGHTS_NAME) -> torch.nn.Module:
    from tir_env.tools.learned.weights import load_into, weights_path

    arch = record(name).get("architecture", {})
    path = weights_path(name)
    if arch.get("class") not in ARCHITECTURES or int(arch.get("classes", 0)) != N_OUTPUTS:
        raise CheckpointError(
            f"{path} holds {arch.get('class', 'an older perception network')}, not perception "
            f"v2 (one of {', '.join(ARCHITECTURES)} with {N_OUTPUTS} outputs); retrain with "
            "`tir train perception` or point $TIR_LEARNED_WEIGHTS at v2 weights"
        )
    return load_into(build(arch), path)


def build(arch: Mapping[str, Any]) -> torch.nn.Module:
    """An untrained perception network of the architecture a record describes."""
    if arch.get("class") == "PerceptionEnsemble":
        from tir_env.tools.learned.nets import PerceptionEnsemble

        members = [build(member) for member in arch.get("members", [])]
        return PerceptionEnsemble(members, arch.get("output_weights"))
    if arch.get("class") == "PerceptionFeatureNet":
        from tir_env.tools.learned.perception_features import PerceptionFeatureNet

        return PerceptionFeatureNet(
            N_OUTPUTS,
            int(arch.get("hidden", 192)),
            int(arch.get("members", 3)),
            profile=bool(arch.get("profile", False)),  # records before it: without
            blind=bool(arch.get("blind", False)),
        )
    from tir_env.tools.learned.nets import PerceptionNetV2

    return PerceptionNetV2(N_OUTPUTS, int(arch.get("width", 24)), int(arch.get("hidden", 128)))


def reload() -> None:
    """Forget the loaded network, so the next call reads the weights file again."""
    from tir_env import quality_trees

    _model.cache_clear()
    record.cache_clear()
    quality_trees.reload()


def available() -> bool:
    """Whether the network's weights file exists (``perceive`` can run)."""
    from tir_env.tools.learned.weights import weights_path

    return weights_path(WEIGHTS_NAME).is_file()


def quality_network() -> str:
    """Which network predicts quality: `tirqa` when its weights exist, else perception."""
    from tir_env.tools.learned.weights import weights_path

    return QUALITY_WEIGHTS_NAME if weights_path(QUALITY_WEIGHTS_NAME).is_file() else WEIGHTS_NAME


def judge_network() -> str:
    """Which network the judge reads: `perception_judge` when its weights exist, else perception."""
    from tir_env.tools.learned.weights import weights_path

    return JUDGE_WEIGHTS_NAME if weights_path(JUDGE_WEIGHTS_NAME).is_file() else WEIGHTS_NAME


def thresholds(network: str = WEIGHTS_NAME) -> dict[str, float]:
    """Per-type presence thresholds from a network's record (tuned on validation photos)."""
    tuned = record(network).get("thresholds", {})
    return {name: float(tuned.get(name, THRESHOLD)) for name in AGENTICIR_TYPES}


def prepare(batch: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """The network's input: 8-bit quantised, at ``size`` if given (see the module docstring)."""
    check_batch(batch)
    h, w = batch.shape[-2:]
    if size is not None and (h, w) != tuple(size):
        h, w = int(size[0]), int(size[1])
    elif size is None and min(h, w) < MIN_SIDE:
        h, w = 4 * h, 4 * w
    if min(h, w) < MIN_INPUT:  # too small for the network's pooling and descriptors
        scale = MIN_INPUT / min(h, w)
        h, w = max(MIN_INPUT, round(h * scale)), max(MIN_INPUT, round(w * scale))
    # Quantised after any resize, as training shows images (8-bit, at the clean size).
    return torch.round(resize(batch, (h, w)) * 255.0) / 255.0


def tile_origins(length: int, tile: int = TILE, limit: int = 8) -> list[int]:
    """Tile starts along one side: on the 8-pixel grid, covering it, at most ``limit`` tiles."""
    count = min(limit, -(-length // tile))
    if length <= tile or count <= 1:
        return [0]
    last = (length - tile) // 8 * 8
    return sorted({round(i * last / (count - 1)) // 8 * 8 for i in range(count)})


def tiles(image: torch.Tensor) -> torch.Tensor:
    """A 1x3xHxW image as a Tx3xtxt batch of tiles (the image itself if small)."""
    h, w = image.shape[-2:]
    if max(h, w) <= TILE:
        return image
    side = max(1, int(MAX_TILES**0.5))
    rows, cols = tile_origins(h, limit=side), tile_origins(w, limit=side)
    t_h, t_w = min(TILE, h), min(TILE, w)
    return torch.cat([image[..., r : r + t_h, c : c + t_w] for r in rows for c in cols])


def raw_outputs(prepared: torch.Tensor, name: str = WEIGHTS_NAME) -> torch.Tensor:
    """A network's outputs (Nx18 logits) of prepared images, tiles averaged per image.

    Args:
        prepared: Output of :func:`prepare`.
        name: Which network (:data:`WEIGHTS_NAME` or :data:`QUALITY_WEIGHTS_NAME`).

    Raises:
        WeightsNotFoundError: the weights are missing.
        CheckpointError: they cannot be read.
    """
    with _lock:
        model = _model(name)
    with torch.no_grad():
        if max(prepared.shape[-2:]) <= TILE:
            return model(prepared.to(torch.float32))
        outputs = []
        for x in prepared:
            parts = tiles(x[None])
            outputs.append((model(parts) * tile_weights(parts)[:, None]).sum(dim=0))
        return torch.stack(outputs)


def tile_weights(parts: torch.Tensor) -> torch.Tensor:
    """How much each tile's outputs count (T, summing to 1): its grey-level spread.

    A flat tile (sky, a wall) shows no blur, noise or compression whatever the photo carries,
    so a plain mean lets a photo's flat regions outvote the textured ones that hold the
    evidence: on whole val photos ``fixed`` gained +5.55 dB with the plain mean and +6.43
    with this weighting (docs/perception.md).
    """
    spread = parts.mean(dim=1).flatten(1).std(dim=1) + 1e-3
    return spread / spread.sum()


def perceive_batch(prepared: torch.Tensor) -> torch.Tensor:
    """Presence probabilities (Nx8, in ``AGENTICIR_TYPES`` order) of prepared images."""
    return torch.sigmoid(raw_outputs(prepared)[:, PRESENCE])


def quality_batch(prepared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted (PSNR dB, SSIM) of prepared images, each a float tensor [N].

    From the quality network when its weights exist (:func:`quality_network`); the PSNR from
    the trees of :mod:`tir_env.quality_trees` when they are in the weights folder (shipped).
    The network runs either way: its SSIM is the one there is. For the PSNR alone (the
    `tirqa` metric) :func:`quality_psnr` skips it.
    """
    from tir_env import quality_trees

    psnr, ssim = _quality(raw_outputs(prepared, quality_network()))
    if quality_trees.available():
        psnr = quality_trees.predict_psnr(prepared)
    return psnr, ssim


def quality_psnr(prepared: torch.Tensor) -> torch.Tensor:
    """Predicted PSNR (dB, float tensor [N]) of prepared images: ``quality_batch(...)[0]``.

    The same numbers without the quality network's pass when the trees are shipped (the
    network's SSIM is not asked for): a `tirqa` call then costs half as much.
    """
    from tir_env import quality_trees

    if quality_trees.available():
        return quality_trees.predict_psnr(prepared)
    return _quality(raw_outputs(prepared, quality_network()))[0]


def _quality(outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(PSNR dB, SSIM) from a network's raw outputs."""
    q = torch.sigmoid(outputs[:, QUALITY])
    low, high = PSNR_RANGE
    return low + (high - low) * q[:, 0], q[:, 1]


def perceive(
    image: ImageU8, size: tuple[int, int] | None = None, network: str = WEIGHTS_NAME
) -> dict[str, float]:
    """Probability of each AgenticIR degradation type in a uint8 RGB HWC image.

    Args:
        image: The image, any size (tiled at native resolution).
        size: The size it should have (H, W), if known: a low-resolution image is
            recognised at that size.
        network: Which perception weights (:data:`WEIGHTS_NAME`, the shipped one; a policy
            trained on an earlier network's readings names that one, e.g.
            :data:`RELEASE1_WEIGHTS_NAME`).

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
        WeightsNotFoundError: the network's weights are missing.
    """
    return perceive_photo(image, size, network).probs


def perceive_photo(
    image: ImageU8, size: tuple[int, int] | None = None, network: str = WEIGHTS_NAME
) -> Perception:
    """Presence, severity and predicted quality of one image of any size (see :func:`perceive`).

    The quality comes from the ``tirqa`` network when its weights exist and ``network`` is the
    shipped one, else from ``network``'s own quality head.
    """
    prepared = prepare(u8_to_batch(image), size)
    out = raw_outputs(prepared, network)
    name = quality_network() if network == WEIGHTS_NAME else network
    psnr, ssim = _quality(out if name == network else raw_outputs(prepared, name))
    probs, sev = (torch.sigmoid(out[0, s]) for s in (PRESENCE, SEVERITY))
    readings = {n: float(p) for n, p in zip(AGENTICIR_TYPES, probs, strict=True)}
    return Perception(
        probs=readings,
        severity={n: float(s) for n, s in zip(AGENTICIR_TYPES, sev, strict=True)},
        psnr=float(psnr[0]),
        ssim=float(ssim[0]),
        thresholds=image_thresholds(image, network, readings),
    )


def image_thresholds(
    image: ImageU8, network: str = WEIGHTS_NAME, probs: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The presence thresholds for ``image``: the record's, adjusted on whole photos.

    The shipped network's are adjusted to the image (:func:`tir_env.photo_thresholds.adjusted`:
    greyscale photos, whole photos' noise and rain); another network, the judge's among them,
    keeps its record's, as the studies read the shipped one only. ``probs``: the network's
    readings of ``image``, where an adjustment depends on another type's (rain where the
    photo is far from dark).

    Raises:
        ImageError: ``image`` is not uint8 HxWx3.
    """
    limits = dict(thresholds(network))
    if network != WEIGHTS_NAME:
        return limits
    return photo_thresholds.adjusted(image, limits, probs)


def perceived(
    probs: Mapping[str, float], threshold: float | Mapping[str, float] | None = None
) -> list[str]:
    """Degradations at or above their threshold, in protocol order; empty if none is.

    Args:
        probs: Output of :func:`perceive`.
        threshold: One threshold for all types, one per type, or ``None`` for the
            record's tuned thresholds (0.5 when there is no record).

    An empty list means the image looks clean: an agent should leave it alone.
    """
    from tir_env.degradations.base import protocol_sorted

    if threshold is None:
        threshold = thresholds() if available() else THRESHOLD
    limits = threshold if isinstance(threshold, Mapping) else dict.fromkeys(probs, threshold)
    chosen = [name for name, p in probs.items() if p >= limits.get(name, THRESHOLD)]
    return protocol_sorted(chosen)


def perceived_tasks(
    image: ImageU8, threshold: float | None = None, size: tuple[int, int] | None = None
) -> list[str]:
    """Tasks of the degradations perceived in ``image`` (see :func:`perceived`)."""
    from tir_env.degradations import make_degradation

    seen = perceive_photo(image, size)
    found = perceived(seen.probs, seen.thresholds if threshold is None else threshold)
    return [make_degradation(n).info.task for n in found]


__all__ = [
    "JUDGE_WEIGHTS_NAME",
    "MAX_TILES",
    "MIN_SIDE",
    "QUALITY_WEIGHTS_NAME",
    "RELEASE1_WEIGHTS_NAME",
    "GREY_DARK_THRESHOLD",
    "GREY_MIN_SIDE",
    "GREY_TOLERANCE",
    "THRESHOLD",
    "TILE",
    "WEIGHTS_NAME",
    "WHOLE_MIN_SIDE",
    "WHOLE_NOISE_THRESHOLD",
    "WHOLE_RAIN_STREAKS",
    "Perception",
    "available",
    "image_thresholds",
    "is_greyscale",
    "judge_network",
    "perceive",
    "perceive_batch",
    "perceive_photo",
    "perceived",
    "perceived_tasks",
    "prepare",
    "quality_batch",
    "quality_psnr",
    "quality_network",
    "record",
    "reload",
    "thresholds",
    "tile_weights",
]
