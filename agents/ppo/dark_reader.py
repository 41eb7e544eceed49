"""A darkness reader for ``ppo`` on the suites' crops (``ppo.trust_dark_reader=P``).

Perception v2 reads darkness on its own from a crop's statistics, and a crop darkened by the
protocol often looks like a photo that is dark by nature (docs/perception.md). Its other seven
readings help: the suites darken a crop only in some combinations (with noise, rain, JPEG, a
blur, low resolution or haze), and what else perception sees says which combination a crop is
likely from. This reader is boosted trees over perception's eight readings of the episode's
input, fitted on the training protocols' crops of the corpus' train photos (single types,
group A, the training triples) with the label "the crop was darkened" (``python -m
benchmarks.train_dark_reader``). It learns the prior over the combinations it was fitted on:
on ``mio-a``'s val crops it reads darkness better than perception alone, on the unseen
combinations of groups B and C and the ``ood`` suites worse (docs/agents.md, "Fitted on the
training protocols only"; a reader fitted on the evaluation suites' own combinations reads
them well only because it has seen them, docs/protocols.md, section 5).

It is for the benchmark crops ``ppo`` was trained on, not for a photo of any kind: the agent
reads it on crops only. The trees are
stored as flat node arrays (:class:`tir_env.quality_trees.TreeEnsemble`) and read with numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: File stem of the reader in the learned-weights folder.
WEIGHTS_NAME = "dark_reader"
#: Perception's probabilities are clipped to this distance from 0 and 1 before the logit.
EPS = 1e-6


def feature_names() -> list[str]:
    """The name of each feature, in the order :func:`features` returns them."""
    from tir_env.perception import AGENTICIR_TYPES

    return [f"input {t}" for t in AGENTICIR_TYPES]


def features(input_probs: Any) -> np.ndarray:
    """The reader's row: the logit of each of perception's eight probabilities on the input."""
    from tir_env.perception import AGENTICIR_TYPES

    p = np.array([float(input_probs[t]) for t in AGENTICIR_TYPES], dtype=np.float64)
    p = np.clip(p, EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


def path() -> Path:
    """Where the reader loads from (the learned-weights folder)."""
    from tir_env.tools.learned.weights import weights_dir

    return weights_dir() / f"{WEIGHTS_NAME}.safetensors"


def available() -> bool:
    """Whether the learned-weights folder holds the reader."""
    return path().is_file()


def load() -> Any:
    """The reader's trees (:class:`~tir_env.quality_trees.TreeEnsemble`), read once a path.

    Raises:
        WeightsNotFoundError: the learned-weights folder has none.
        CheckpointError: the file is not a tree ensemble, or reads other features.
    """
    from tir_env.quality_trees import ensemble_reading

    refit = "python -m benchmarks.train_dark_reader"
    return ensemble_reading(path(), (len(feature_names()),), refit)


def logit(input_probs: Any) -> float:
    """The log-odds that the crop was darkened, from perception's reading of the input."""
    return float(load().predict(features(input_probs)[None])[0])


def darkened(input_probs: Any) -> float:
    """The probability that the crop was darkened, from perception's reading of the input."""
    return float(1.0 / (1.0 + np.exp(-logit(input_probs))))
