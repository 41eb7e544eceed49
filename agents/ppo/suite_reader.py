"""Readers of every degradation type on the suites' crops (``fixed.sight=suite-reader``).

Perception v2 reads each type on its own and is trained on every combination of one to three
degradations alike. The benchmark suites hold only some combinations, and what perception
reads of the other types says which one a crop likely is (darkness comes with noise, rain,
JPEG, a blur, low resolution or haze; a crop read as hazy and blurred is rarely rained on).
This reader is, for each of the eight AgenticIR types, boosted trees over perception's eight
readings of the episode's input (the logits :func:`agents.ppo.dark_reader.features` makes),
fitted on the training protocols' crops of the corpus' train photos (single types, group A,
the training triples) with the label "the crop carries that type" (``python -m
benchmarks.train_suite_reader``). Its sets, cut at probability 0.5, are exact more often than
perception's thresholded ones on val crops of ``mio-a`` and ``mio-b``; on the unseen
triples it reads some types worse (docs/agents.md, "Fitted on the training protocols only").

It learns the prior over the combinations it was fitted on, so it is for the benchmark crops,
not for a photo of any kind: the perceived expert reading it (``tir experts collect --expert
perceived-reader``) and ``fixed.sight=suite-reader`` are for the crop suites. The trees are
stored as flat node arrays (:class:`tir_env.quality_trees.TreeEnsemble`), one ensemble per
type in one file (each type's arrays prefixed ``<type>.``), and read with numpy.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: File stem of the readers in the learned-weights folder.
WEIGHTS_NAME = "suite_reader"
#: A type is read as present at this probability or more (the trees are fitted on the
#: suites' own share of each type, so 0.5 is the most-probable-label cut).
THRESHOLD = 0.5


def path() -> Path:
    """Where the readers load from (the learned-weights folder)."""
    from tir_env.tools.learned.weights import weights_dir

    return weights_dir() / f"{WEIGHTS_NAME}.safetensors"


def available() -> bool:
    """Whether the learned-weights folder holds the readers."""
    return path().is_file()


def tensors(readers: Mapping[str, Any]) -> dict[str, Any]:
    """The arrays to save: each type's ensemble's (:meth:`TreeEnsemble.tensors`), prefixed."""
    return {f"{kind}.{k}": v for kind, trees in readers.items() for k, v in trees.tensors().items()}


def from_tensors(state: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Each type's ensemble from saved arrays (:func:`tensors`).

    Raises:
        CheckpointError: a type is missing, an ensemble is broken, or one reads other features.
    """
    from agents.ppo.dark_reader import feature_names
    from tir_env import quality_trees
    from tir_env.errors import CheckpointError
    from tir_env.perception import AGENTICIR_TYPES

    readers = {}
    for kind in AGENTICIR_TYPES:
        prefix = f"{kind}."
        inner = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not inner:
            raise CheckpointError(f"{source}: no reader of {kind} (refit it: {REFIT})")
        trees = quality_trees.from_tensors(inner, f"{source} ({kind})")
        if trees.n_features != len(feature_names()):
            raise CheckpointError(
                f"{source} ({kind}): reads {trees.n_features} features, this code makes "
                f"{len(feature_names())} (refit it: {REFIT})"
            )
        readers[kind] = trees
    return readers


#: The command that fits the readers (named in errors).
REFIT = "python -m benchmarks.train_suite_reader"


@functools.lru_cache(maxsize=4)
def _read(file: str) -> dict[str, Any]:
    from tir_env.tools.learned.weights import load_state

    return from_tensors(load_state(Path(file)), file)


def load() -> dict[str, Any]:
    """Each type's trees (read once a path).

    Raises:
        WeightsNotFoundError: the learned-weights folder has none.
        CheckpointError: the file is not the readers' (see :func:`from_tensors`).
    """
    return _read(str(path()))


def probabilities(input_probs: Mapping[str, float]) -> dict[str, float]:
    """Each type's probability of being in the crop, from perception's reading of the input."""
    from agents.ppo.dark_reader import features

    row = features(input_probs)[None]
    return {
        kind: float(1.0 / (1.0 + np.exp(-trees.predict(row)[0]))) for kind, trees in load().items()
    }


def present(input_probs: Mapping[str, float], threshold: float = THRESHOLD) -> list[str]:
    """The types read at ``threshold`` or more, in protocol order."""
    from tir_env.perception import AGENTICIR_TYPES

    probs = probabilities(input_probs)
    return [kind for kind in AGENTICIR_TYPES if probs[kind] >= threshold]


def perceived_tasks(env: Any) -> list[str] | None:
    """The tasks of the types the readers see in ``env``'s input (as perception's are read).

    ``None`` when there is no env or perception's weights are missing (plan for every task,
    as :func:`agents.baselines.perceived_tasks` does then).

    Raises:
        WeightsNotFoundError: perception is there but the readers are not.
    """
    from agents.ppo.guard import input_reading
    from tir_env.degradations import make_degradation

    if env is None:
        return None
    seen = input_reading(env)
    if seen is None:
        return None
    return [make_degradation(kind).info.task for kind in present(seen.probs)]
