"""Quality gain: how much a candidate improves on the image it was made from (predicted dB).

A no-reference score (``tirqa``, NIQE) judges one image alone, and cannot tell "removed the
noise" from "removed the texture" or a sharper photo from a ringing deconvolution: on the
held-out photos ``tirqa`` ranks one input's candidates against each other with Spearman 0.35
(docs/perception.md), and the search agents that trust it end below the input on ``mio-b``.
A search agent always holds the image a candidate was made from, though. The quality-gain
model (:class:`~tir_env.tools.learned.nets.QualityGainNet`, an ensemble of small MLPs over
classic cues of both images and of what changed between them, weights
``tir_env/assets/learned/quality_gain.safetensors``, trained by ``tir train gain``,
:mod:`benchmarks.train_gain`) looks at both and predicts the PSNR change (dB) from ``before``
to ``after`` against the clean image neither shows. Positive means the candidate is closer
to the clean image. It is still deployable: it never sees the clean image. Trained on corpus
photos with every combination of 0-3 degradations, candidates from the tools of the true
degradations (default and random parameters, chains of two), from any other tool (what a
false perception runs) and the ``median_paint`` exploit.

Images are compared at one size (``size``, or the larger of the two), 8-bit quantised, cut
into matching 64 px tiles on the 8-pixel grid (at most :data:`MAX_TILES`) whose predictions
are averaged.

Example:
    >>> import torch
    >>> from tir_env import quality_gain
    >>> before = torch.rand(1, 3, 64, 64)
    >>> quality_gain.predict_gain(before, before.repeat(2, 1, 1, 1))  # doctest: +SKIP
    tensor([0.01, 0.01])
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import torch

from tir_env.errors import CheckpointError, ImageError, WeightsNotFoundError
from tir_env.images import check_batch, resize
from tir_env.perception import tile_origins

#: File stem of the network's weights and record.
WEIGHTS_NAME = "quality_gain"
#: Side of the tiles images are compared on (the training crop size).
TILE = 64
#: Most tiles one comparison uses: up to 6 x 6, spread evenly.
MAX_TILES = 36
#: dB per unit of the network's first output.
DB_SCALE = 10.0

_lock = threading.Lock()


def available() -> bool:
    """Whether the network's weights file exists."""
    from tir_env.tools.learned.weights import weights_path

    return weights_path(WEIGHTS_NAME).is_file()


@functools.cache
def record() -> dict[str, Any]:
    """The network's JSON record (architecture, training and validation numbers).

    Raises:
        WeightsNotFoundError: the weights are missing.
        CheckpointError: the record is unreadable.
    """
    from tir_env.tools.learned.weights import checked_record, weights_path

    retrain = "retrain with `tir train gain` or set $TIR_LEARNED_WEIGHTS"
    if not available():  # the agents check the model at construction: the weights, too
        raise WeightsNotFoundError(
            f"quality-gain weights not found: {weights_path(WEIGHTS_NAME)}; {retrain}"
        )
    return checked_record(WEIGHTS_NAME, "quality-gain", retrain)


@functools.cache
def _model() -> torch.nn.Module:
    from tir_env.tools.learned import nets
    from tir_env.tools.learned.weights import load_into, weights_path

    arch = record().get("architecture", {})
    if arch.get("class") != "QualityGainNet":
        raise CheckpointError(
            f"{weights_path(WEIGHTS_NAME)} holds {arch.get('class', 'no known network')}, "
            "not QualityGainNet; retrain with `tir train gain`"
        )
    net = nets.QualityGainNet(int(arch.get("hidden", 128)), int(arch.get("members", 3)))
    return load_into(net, weights_path(WEIGHTS_NAME))


def reload() -> None:
    """Forget the loaded network, so the next call reads the weights file again."""
    _model.cache_clear()
    record.cache_clear()


def prepare_pair(
    before: torch.Tensor, after: torch.Tensor, size: tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both batches at one size (``size``, else the larger), 8-bit quantised, ``before`` broadcast.

    Raises:
        ImageError: not Nx3xHxW batches, or ``before`` neither one image nor one per ``after``.
    """
    check_batch(before)
    check_batch(after)
    if before.shape[0] not in (1, after.shape[0]):
        raise ImageError(
            f"before has {before.shape[0]} images; give 1 or one per candidate ({after.shape[0]})"
        )
    if size is None:
        sides = [(int(x.shape[-2]), int(x.shape[-1])) for x in (before, after)]
        size = max(sides, key=lambda s: s[0] * s[1])
    h, w = int(size[0]), int(size[1])

    def shown(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().cpu().float()
        if tuple(x.shape[-2:]) != (h, w):
            x = resize(x, (h, w))
        return torch.round(x.clamp(0, 1) * 255.0) / 255.0

    return shown(before).expand(after.shape[0], -1, -1, -1), shown(after)


def tile_pair(before: torch.Tensor, after: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Matching tiles of two same-size batches: (before tiles, after tiles, tiles per image)."""
    h, w = before.shape[-2:]
    side = max(1, int(MAX_TILES**0.5))
    rows, cols = tile_origins(h, TILE, side), tile_origins(w, TILE, side)
    spots = [(r, c) for r in rows for c in cols]
    t_h, t_w = min(TILE, h), min(TILE, w)

    def cut(x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, :, r : r + t_h, c : c + t_w] for r, c in spots]
        return torch.stack(parts, dim=1).flatten(0, 1)  # image-major: N*T x 3 x t x t

    return cut(before), cut(after), len(spots)


def margin() -> float:
    """Predicted gain (dB) a candidate must exceed to be worth taking, tuned on val photos.

    Predictions are noisy; the best of several noisy candidates is usually overrated (the
    winner's curse), so an agent that keeps its image unless a candidate clears this margin
    loses less. 0 when the record has none.
    """
    return float(record().get("margin_db", 0.0))


def raw_gain(
    before: torch.Tensor, after: torch.Tensor, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """The network's output (N: PSNR change / :data:`DB_SCALE`), tiles averaged.

    Raises:
        WeightsNotFoundError: the weights are missing.
        CheckpointError: they cannot be read.
        ImageError: bad batches (see :func:`prepare_pair`).
    """
    from tir_env.tools.learned.nets import gain_features

    b, a = prepare_pair(before, after, size)
    tb, ta, per_image = tile_pair(b, a)
    with _lock:
        model = _model()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(tb), 256):
            part = slice(start, start + 256)
            outputs.append(model(gain_features(tb[part], ta[part])))
    return torch.cat(outputs).view(len(a), per_image).mean(dim=1)


def predict_gain(
    before: torch.Tensor, after: torch.Tensor, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Predicted PSNR change (dB) from ``before`` to each image of ``after`` (a float tensor [N]).

    Args:
        before: The image the candidates were made from (1x3xHxW in [0, 1]) or one per candidate.
        after: The candidates (Nx3xH'xW'), any size: both are compared at ``size``.
        size: The size the restored image should have (the env's target size), if known.
    """
    return raw_gain(before, after, size) * DB_SCALE


__all__ = [
    "DB_SCALE",
    "MAX_TILES",
    "TILE",
    "WEIGHTS_NAME",
    "available",
    "margin",
    "predict_gain",
    "prepare_pair",
    "raw_gain",
    "record",
    "reload",
    "tile_pair",
]
