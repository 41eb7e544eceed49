"""Gradient-boosted trees that predict an image's PSNR from perception's statistics.

A study of the ``tirqa`` quality model (docs/perception.md, "How far a blind PSNR predictor
can get"): over the same 98 statistics the perception network reads
(:func:`~tir_env.tools.learned.perception_features.perception_features`), boosted trees
fitted on degraded crops and random tools' outputs of them rank held-out candidates better
than the network's quality head (Spearman 0.617 against 0.533, and an MLP fitted on the same
examples 0.478). When ``tirqa_trees.safetensors`` is in the learned-weights folder,
:func:`tir_env.perception.quality_batch` reads the PSNR from these trees instead of the
network (so the ``tirqa`` metric and the search agents that score with it do;
``perceive_photo(...).psnr`` stays the network's). The shipped folder holds the v3 trees, a
regression and a clean-crop classifier (docs/perception.md, "The trees with a clean-crop
classifier (v3)").
``benchmarks/train_tirqa_trees.py`` fits them (with scikit-learn) and writes the file;
reading them needs only numpy.

A file may hold a second ensemble, a classifier of clean crops (its arrays prefixed
``clean.``, and ``clean_psnr``): regression trees fitted on degraded crops and tools' outputs
alone read a clean crop at the PSNR of a degraded one (they never saw one), and clean crops
mixed into the regression's examples cost it ranking (docs/perception.md). With the
classifier the prediction is the mixture ``q * max(clean_psnr, r) + (1 - q) * r``, ``r`` the
regression's PSNR and ``q`` the classifier's probability that the image is clean.

The ensemble is stored as flat node arrays (every tree's nodes one after the other): a node
sends a row left when its feature is at most the threshold (a missing value where the node
says so), and a row's prediction is the baseline plus the value of the leaf it reaches in each
tree (scikit-learn's ``HistGradientBoostingRegressor`` semantics; leaf values include the
learning rate).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tir_env.errors import CheckpointError

#: File stem of the trees in the learned-weights folder.
WEIGHTS_NAME = "tirqa_trees"
#: Prefix of the clean-crop classifier's arrays in a file.
CLEAN_PREFIX = "clean."
#: Rows (images or tiles) whose statistics are computed in one batch (bounds the memory).
FEATURE_BATCH = 256
#: The arrays a file must hold (each ensemble).
FIELDS = ("feature", "threshold", "left", "right", "value", "leaf", "missing_left", "roots")


@dataclass(frozen=True)
class TreeEnsemble:
    """Boosted regression trees as flat node arrays (see the module docstring)."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    leaf: np.ndarray
    missing_left: np.ndarray
    roots: np.ndarray
    baseline: float
    n_features: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``x`` (N x ``n_features``).

        Raises:
            ValueError: ``x`` has another number of columns.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"trees read {self.n_features} features per row, got {x.shape}")
        # Every tree walks at once, one level per step (an N x trees array of nodes), and
        # the leaves' values are summed tree by tree from the baseline (a cumulative sum is
        # sequential), so the sum is the same float as one tree after another.
        rows = np.arange(len(x))[:, None]
        node = np.repeat(self.roots[None, :], len(x), axis=0)
        at_leaf = self.leaf[node]
        while not at_leaf.all():
            v = x[rows, self.feature[node]]
            go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            step = np.where(go_left, self.left[node], self.right[node])
            node = np.where(at_leaf, node, step)
            at_leaf = self.leaf[node]
        values = np.concatenate([np.full((len(x), 1), self.baseline), self.value[node]], axis=1)
        out = np.cumsum(values, axis=1)[:, -1]
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays to save (safetensors), the baseline and width among them."""
        out = {name: torch.from_numpy(np.ascontiguousarray(getattr(self, name))) for name in FIELDS}
        out["baseline"] = torch.tensor([self.baseline], dtype=torch.float64)
        out["n_features"] = torch.tensor([self.n_features], dtype=torch.int64)
        return out


@dataclass(frozen=True)
class QualityTrees:
    """The PSNR regression and, optionally, the clean-crop classifier (module docstring)."""

    psnr: TreeEnsemble
    clean: TreeEnsemble | None = None
    clean_psnr: float = 40.0

    @property
    def n_features(self) -> int:
        """Features per row."""
        return self.psnr.n_features

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted PSNR (dB) of the rows of ``x``.

        Raises:
            ValueError: ``x`` has another number of columns.
        """
        r = self.psnr.predict(x)
        if self.clean is None:
            return r
        q = 1.0 / (1.0 + np.exp(-self.clean.predict(x)))
        return q * np.maximum(self.clean_psnr, r) + (1.0 - q) * r

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays to save (safetensors): the regression's, then ``clean.``-prefixed ones."""
        out = self.psnr.tensors()
        if self.clean is not None:
            out.update({f"{CLEAN_PREFIX}{k}": v for k, v in self.clean.tensors().items()})
            out["clean_psnr"] = torch.tensor([self.clean_psnr], dtype=torch.float64)
        return out


def from_sklearn(model: Any) -> TreeEnsemble:
    """A fitted ``HistGradientBoosting`` regressor (or binary classifier: its logit) as arrays.

    Numeric features only.
    """
    parts: dict[str, list[np.ndarray]] = {name: [] for name in FIELDS if name != "roots"}
    roots, offset = [], 0
    for (predictor,) in model._predictors:  # one tree per iteration (regressor, binary)
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported")
        roots.append(offset)
        parts["feature"].append(nodes["feature_idx"].astype(np.int64))
        parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
        parts["left"].append(nodes["left"].astype(np.int64) + offset)
        parts["right"].append(nodes["right"].astype(np.int64) + offset)
        parts["value"].append(nodes["value"].astype(np.float64))
        parts["leaf"].append(nodes["is_leaf"].astype(bool))
        parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
        offset += len(nodes)
    arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    return TreeEnsemble(
        **arrays,
        roots=np.array(roots, dtype=np.int64),
        baseline=float(np.ravel(model._baseline_prediction)[0]),
        n_features=int(model.n_features_in_),
    )


def from_tensors(state: dict[str, torch.Tensor], source: str = "trees") -> TreeEnsemble:
    """The ensemble from saved arrays (:meth:`TreeEnsemble.tensors`).

    Raises:
        CheckpointError: an array is missing or the node links point outside the arrays.
    """
    missing = [k for k in (*FIELDS, "baseline", "n_features") if k not in state]
    if missing:
        raise CheckpointError(f"{source}: not a tree ensemble (missing {', '.join(missing)})")
    arrays = {name: state[name].numpy() for name in FIELDS}
    n = len(arrays["value"])
    links = np.concatenate([arrays["left"], arrays["right"], arrays["roots"]])
    inner = ~arrays["leaf"].astype(bool)
    if (
        len({len(arrays[k]) for k in FIELDS if k != "roots"}) != 1
        or ((links < 0) | (links >= n))[
            np.concatenate([inner, inner, np.ones(len(arrays["roots"]), bool)])
        ].any()
    ):
        raise CheckpointError(f"{source}: its node arrays do not form trees")
    arrays["leaf"] = arrays["leaf"].astype(bool)
    arrays["missing_left"] = arrays["missing_left"].astype(bool)
    return TreeEnsemble(
        **arrays,
        baseline=float(state["baseline"][0]),
        n_features=int(state["n_features"][0]),
    )


def quality_from_tensors(state: dict[str, torch.Tensor], source: str = "trees") -> QualityTrees:
    """The regression and, where the file holds one, the clean-crop classifier.

    Raises:
        CheckpointError: an array is missing or the node links point outside the arrays.
    """
    psnr = from_tensors({k: v for k, v in state.items() if not k.startswith(CLEAN_PREFIX)}, source)
    inner = {k[len(CLEAN_PREFIX) :]: v for k, v in state.items() if k.startswith(CLEAN_PREFIX)}
    if not inner:
        return QualityTrees(psnr)
    if "clean_psnr" not in state:
        raise CheckpointError(f"{source}: a clean classifier without clean_psnr")
    clean = from_tensors(inner, f"{source} (clean classifier)")
    if clean.n_features != psnr.n_features:
        raise CheckpointError(f"{source}: the two ensembles read different features")
    return QualityTrees(psnr, clean, float(state["clean_psnr"][0]))


@functools.lru_cache(maxsize=8)
def read_ensemble(file: str) -> TreeEnsemble:
    """One tree-ensemble file of a weights folder, read once per path.

    Raises:
        WeightsNotFoundError: the file does not exist.
        CheckpointError: it is not a tree ensemble.
    """
    from tir_env.tools.learned.weights import load_state

    return from_tensors(load_state(Path(file)), file)


def ensemble_reading(file: Path, sizes: tuple[int, ...], refit: str) -> TreeEnsemble:
    """:func:`read_ensemble` of ``file``, refused unless it reads one of ``sizes`` features.

    Raises:
        WeightsNotFoundError: the file does not exist.
        CheckpointError: it is not a tree ensemble, or reads another number of features
            (the message names ``refit``, the command that fits it again).
    """
    trees = read_ensemble(str(file))
    if trees.n_features not in sizes:
        made = " or ".join(str(n) for n in sizes)
        raise CheckpointError(
            f"{file}: reads {trees.n_features} features, this code makes {made} (refit it: {refit})"
        )
    return trees


def path() -> Path:
    """Where the trees load from (the learned-weights folder)."""
    from tir_env.tools.learned.weights import weights_dir

    return weights_dir() / f"{WEIGHTS_NAME}.safetensors"


def available() -> bool:
    """Whether trees are in the learned-weights folder."""
    return path().is_file()


@functools.lru_cache(maxsize=2)
def _load(file: str) -> QualityTrees:
    from tir_env.tools.learned.weights import load_state

    return quality_from_tensors(load_state(Path(file)), file)


def load() -> QualityTrees:
    """The trees of the learned-weights folder (read once per path).

    Raises:
        WeightsNotFoundError: there are none.
        CheckpointError: the file is not a tree ensemble.
    """
    return _load(str(path()))


def reload() -> None:
    """Forget the loaded trees (the next :func:`load` reads the file again)."""
    _load.cache_clear()


def predict_psnr(prepared: torch.Tensor) -> torch.Tensor:
    """Predicted PSNR (dB) of prepared images (N, float32), from their statistics.

    An image up to twice perception's tile is read whole, as the trees were fitted on
    128 px crops; a larger one by tiles, the predictions averaged with perception's tile
    weights. The statistics of every image's rows are computed in batches (as the trees'
    training groups were), about twice as fast as image by image.
    """
    trees = load()
    parts, weights = [], []
    for image in prepared.float():
        rows = reading_rows(image[None])
        parts.append(rows)
        weights.append(row_weights(rows))
    # one pass over the trees for every image's rows: the walk's cost is per tree, not per row
    predicted = trees.predict(statistics(torch.cat(parts)))
    return weighted_means(predicted, weights)


def reading_rows(image: torch.Tensor) -> torch.Tensor:
    """The rows the trees read of one prepared 1x3xHxW image: itself, or its tiles if large.

    An image up to twice perception's tile is read whole (the trees were fitted on 128 px
    crops); a larger one by perception's tiles.
    """
    from tir_env import perception

    return perception.tiles(image) if max(image.shape[-2:]) > 2 * perception.TILE else image


def row_weights(rows: torch.Tensor) -> np.ndarray:
    """How much each of one image's rows counts (perception's tile weights, float64)."""
    from tir_env import perception

    return perception.tile_weights(rows).double().numpy()


def statistics(rows: torch.Tensor) -> np.ndarray:
    """Perception's statistics of ``rows`` (float64), computed :data:`FEATURE_BATCH` at a time.

    In batches, as the trees' training groups were: about twice as fast as row by row.
    """
    from tir_env.tools.learned.perception_features import perception_features

    with torch.no_grad():
        parts = [
            perception_features(rows[start : start + FEATURE_BATCH], profile=True)
            for start in range(0, len(rows), FEATURE_BATCH)
        ]
    return torch.cat(parts).double().numpy()


def weighted_means(predicted: np.ndarray, weights: list[np.ndarray]) -> torch.Tensor:
    """Each image's weighted mean of its rows' predictions (rows image-major), float32 [N]."""
    ends = np.cumsum([len(w) for w in weights])
    out = [
        float((predicted[end - len(w) : end] * w).sum())
        for w, end in zip(weights, ends, strict=True)
    ]
    return torch.tensor(out, dtype=torch.float32)
