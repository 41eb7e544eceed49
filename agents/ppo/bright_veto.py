"""A learned veto over ``ppo``'s brightening calls on crops (``ppo.bright_veto=P``).

Most of the dB ``ppo`` loses to ``fixed`` on photos it never saw is a brightening of a crop
that was never darkened: a dusky photo, denoised, then brightened (docs/agents.md, "Where
``ppo`` loses to ``oracle``"). Replayed without its brightening calls, the shipped policy's
episodes on fresh val rounds would end 0.09-0.17 dB an episode higher on average: as a whole
its brightening costs more where it is wrong than it earns where it is right. The quality-gain
guard cannot tell the two apart (it predicts about +3 dB either way).

This is a classifier that reads, at the moment the policy would brighten, what the agent can
see: perception's reading of the episode's input, its reading of the image now, the
brightness (HSV value) statistics of the image now, and which tasks the episode has run. It
predicts whether the brightening will pay, and was fitted on the shipped policy's own
brightening calls on the training protocols' crops of the corpus' train photos (never the
evaluation suites' other combinations: docs/protocols.md, section 5), each labelled by
replaying its episode with and without them (``python -m benchmarks.train_bright_veto``).
Where it predicts a probability under ``P``, brightening is masked for the rest of the
episode: nothing runs ahead, so a veto costs no tool execution.

The classifier is boosted trees stored as flat node arrays
(:class:`tir_env.quality_trees.TreeEnsemble`: the file's trees give the logit), read with
numpy alone.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: File stem of the classifier in the learned-weights folder.
WEIGHTS_NAME = "bright_veto"
#: The task whose calls it vetoes.
TASK = "brightening"
#: The tasks whose having run it reads (every task but brightening).
PRIOR_TASKS = (
    "denoising",
    "jpeg_artifact_removal",
    "super_resolution",
    "motion_deblurring",
    "defocus_deblurring",
    "deraining",
    "dehazing",
)
#: Statistics of the image's HSV value (max of R, G, B) it reads, in order.
VALUE_STATS = ("p99.5", "median", "p5", "black share", "mean", "std")


def feature_names(reader: bool = False) -> list[str]:
    """The name of each feature, in the order :func:`features` returns them.

    ``reader``: the darkness reader's logit last (:mod:`agents.ppo.dark_reader`), for a
    classifier fitted with it.
    """
    from tir_env.perception import AGENTICIR_TYPES

    return [
        *(f"input {t}" for t in AGENTICIR_TYPES),
        *(f"now {t}" for t in AGENTICIR_TYPES),
        *(f"value {s}" for s in VALUE_STATS),
        *(f"done {t}" for t in PRIOR_TASKS),
        "calls",
        *(["input darkened (dark reader)"] if reader else []),
    ]


def _logits(probs: Any) -> list[float]:
    """The logit of each of perception's eight probabilities (as the darkness reader reads)."""
    from agents.ppo import dark_reader

    return list(dark_reader.features(probs))


def value_stats(image: torch.Tensor) -> list[float]:
    """:data:`VALUE_STATS` of a 1x3xHxW float image in [0, 1]."""
    v = image[0].amax(dim=0).flatten().double().numpy()
    quantiles = np.quantile(v, [0.995, 0.5, 0.05])
    return [*map(float, quantiles), float((v < 0.02).mean()), float(v.mean()), float(v.std())]


def features(
    input_probs: Any,
    image: torch.Tensor,
    size: tuple[int, int] | None,
    tasks_done: Collection[str],
    calls: int,
    reader: bool = False,
) -> np.ndarray:
    """The classifier's row (:func:`feature_names`) at a brightening decision.

    Args:
        input_probs: Perception's probabilities on the episode's input (type -> probability).
        image: The image now, 1x3xHxW float in [0, 1].
        size: The size it should have (perception reads a low-resolution image at it).
        tasks_done: The tasks the episode has called so far.
        calls: How many tool calls the episode has made so far.
        reader: Append the darkness reader's logit (a classifier fitted with it).
    """
    from tir_env import perception
    from tir_env.images import batch_to_u8

    now = perception.perceive(batch_to_u8(image), size=size)
    done = [float(t in tasks_done) for t in PRIOR_TASKS]
    row = [*_logits(input_probs), *_logits(now), *value_stats(image), *done, float(calls)]
    if reader:
        from agents.ppo import dark_reader

        row.append(dark_reader.logit(input_probs))
    return np.asarray(row, dtype=np.float64)


def path() -> Path:
    """Where the classifier loads from (the learned-weights folder)."""
    from tir_env.tools.learned.weights import weights_dir

    return weights_dir() / f"{WEIGHTS_NAME}.safetensors"


def load() -> Any:
    """The classifier's trees (:class:`~tir_env.quality_trees.TreeEnsemble`), read once a path.

    A classifier fitted with the darkness reader's logit (:func:`reads_reader`) needs the
    reader in the same folder.

    Raises:
        WeightsNotFoundError: the learned-weights folder has none (or, for a classifier that
            reads it, no darkness reader).
        CheckpointError: the file is not a tree ensemble, or reads other features.
    """
    from tir_env.quality_trees import ensemble_reading

    sizes = (len(feature_names()), len(feature_names(reader=True)))
    trees = ensemble_reading(path(), sizes, "python -m benchmarks.train_bright_veto")
    if trees.n_features == sizes[1]:
        from agents.ppo import dark_reader

        dark_reader.load()
    return trees


def reads_reader() -> bool:
    """Whether the classifier was fitted with the darkness reader's logit (its last feature)."""
    return bool(load().n_features == len(feature_names(reader=True)))


def pays(row: np.ndarray) -> float:
    """The classifier's probability that brightening pays, for one :func:`features` row."""
    logit = float(load().predict(np.asarray(row, dtype=np.float64)[None])[0])
    return float(1.0 / (1.0 + np.exp(-logit)))
