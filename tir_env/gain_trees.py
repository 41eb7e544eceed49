"""Gain trees: the PSNR change from one image to another, read from both images' statistics.

A search agent holds the image its candidates were made from. ``tirqa`` judges each candidate
alone, so what a candidate's content says about its PSNR (a textured crop reads lower than a
flat one whatever was done to it) is noise that differs from candidate to candidate only by
what the tools changed, yet swamps it: on 400 groups of val crops ``tirqa`` ranks one input's
candidates with a mean Spearman of 0.40. Trees that read both images' statistics and their
difference predict the change itself, and the content they share cancels (docs/quality_gain.md,
"Gain trees": within-group Spearman 0.50 on the same kind of val groups). Boosted regression
trees (scikit-learn's ``HistGradientBoostingRegressor``, stored as
:class:`~tir_env.quality_trees.TreeEnsemble` arrays, read with numpy) over
``[before, after, after - before]`` of perception's 98 statistics, fitted by
``python -m benchmarks.train_gain_trees`` on crops of the training photos and random tools'
outputs of them (one and two steps).

Images are compared at one size (:func:`tir_env.quality_gain.prepare_pair`: the target size,
else the larger), read whole up to twice perception's tile, else by matching tiles whose
predictions are averaged with the weights perception gives the ``before`` tiles.

The search agents use them with ``metric="gain-trees"`` (:class:`agents.search.SearchOptions`),
an option: as their default scorer they ended 0.26 dB (``exhaustive``) and 0.24 dB (``greedy``)
below ``tirqa`` on 1,200 val episodes, losing most on the combinations they were not fitted on.
The trees are not in the shipped folder; ``benchmarks/results/gain_trees/`` holds them.

Example:
    >>> import torch
    >>> from tir_env import gain_trees
    >>> before = torch.rand(1, 3, 128, 128)
    >>> gain_trees.predict_gain(before, before.repeat(2, 1, 1, 1))  # doctest: +SKIP
    tensor([0.02, 0.02])
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tir_env.errors import CheckpointError, WeightsNotFoundError

#: File stem of the trees (and their JSON record) in the learned-weights folder.
WEIGHTS_NAME = "gain_trees"
#: Statistics per image (perception's, with the direction profile).
N_STATS = 98
#: How to make the file again (named in errors).
REFIT = "python -m benchmarks.train_gain_trees --out FILE"


def path() -> Path:
    """Where the trees load from (the learned-weights folder)."""
    from tir_env.tools.learned.weights import weights_dir

    return weights_dir() / f"{WEIGHTS_NAME}.safetensors"


def available() -> bool:
    """Whether the trees are in the learned-weights folder."""
    return path().is_file()


def pair_features(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The rows the trees read: ``[before, after, after - before]`` (N x 3 * :data:`N_STATS`)."""
    before = np.broadcast_to(before, after.shape)
    return np.concatenate([before, after, after - before], axis=1)


@functools.lru_cache(maxsize=2)
def _load(file: str) -> Any:
    from tir_env import quality_trees

    if not Path(file).is_file():
        raise WeightsNotFoundError(f"gain trees not found: {file}; fit them: {REFIT}")
    return quality_trees.ensemble_reading(Path(file), (3 * N_STATS,), REFIT)


def load() -> Any:
    """The trees of the learned-weights folder (read once per path).

    Raises:
        WeightsNotFoundError: there are none.
        CheckpointError: the file is not a tree ensemble over pairs of statistics.
    """
    return _load(str(path()))


def reload() -> None:
    """Forget the loaded trees (the next :func:`load` reads the file again)."""
    _load.cache_clear()
    record.cache_clear()


@functools.cache
def record() -> dict[str, Any]:
    """The trees' JSON record (how they were fitted), ``{}`` when the file has none.

    Raises:
        WeightsNotFoundError: the trees are missing.
        CheckpointError: the record is not JSON.
    """
    load()
    file = path().with_suffix(".json")
    if not file.is_file():
        return {}
    try:
        return dict(json.loads(file.read_text()))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{file}: not a JSON record ({err}); fit again: {REFIT}") from err


def margin() -> float:
    """Predicted gain (dB) a candidate must exceed to beat keeping the image (the record's)."""
    return float(record().get("margin_db", 0.0))


def predict_gain(
    before: torch.Tensor, after: torch.Tensor, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Predicted PSNR change (dB) from ``before`` to each image of ``after`` (float tensor [N]).

    Args:
        before: The image the candidates were made from (1x3xHxW in [0, 1]) or one per candidate.
        after: The candidates (Nx3xH'xW'), any size: both are compared at ``size``.
        size: The size the restored image should have (the env's target size), if known.

    Raises:
        WeightsNotFoundError: the trees are missing.
        CheckpointError: they cannot be read.
        ImageError: bad batches (see :func:`tir_env.quality_gain.prepare_pair`).
    """
    from tir_env.quality_gain import prepare_pair
    from tir_env.quality_trees import reading_rows, row_weights, statistics, weighted_means

    trees = load()
    b, a = prepare_pair(before, after, size)
    shared = before.shape[0] == 1  # one image before every candidate: its statistics once
    pairs_b, pairs_a, weights = [], [], []
    for k, (one_b, one_a) in enumerate(zip(b, a, strict=True)):
        rows_b, rows_a = reading_rows(one_b[None]), reading_rows(one_a[None])  # same tiles
        if not shared or k == 0:
            pairs_b.append(rows_b)
        pairs_a.append(rows_a)
        weights.append(row_weights(rows_b))
    stats_b, stats_a = statistics(torch.cat(pairs_b)), statistics(torch.cat(pairs_a))
    if shared:
        stats_b = np.tile(stats_b, (len(a), 1))
    return weighted_means(trees.predict(pair_features(stats_b, stats_a)), weights)


__all__ = [
    "N_STATS",
    "WEIGHTS_NAME",
    "available",
    "load",
    "margin",
    "pair_features",
    "path",
    "predict_gain",
    "record",
    "reload",
]
