r"""Fit the trees of the ``tone_dehaze`` tool (:mod:`tir_env.tools.learned.tone`) and write them.

Examples are episodes exactly as the env starts them (:func:`tir_env.episode.sample_start`: a
128 px crop, the whole photo's haze depth cut with it, the input quantised to 8 bits) on the
training photos, for every combination of the training protocols only (``single`` and
``train-d3`` in physical order, ``mio-a`` in its listed order: docs/protocols.md), ``--reps``
draws each, plus ``--clean`` clean crops per photo: haze or not, each example teaches what the
clean crop's luminance mean and log contrast were. A low-resolution input is upsampled to the
crop's size first (:func:`tir_env.tools.learned.tone.at_size`, plain bicubic), as a plan's
super-resolution would have made it. Two
``HistGradientBoostingRegressor`` s (scikit-learn) fit the two changes; the export is checked
against scikit-learn before it is written.

Usage::

    python -m benchmarks.train_tone_dehaze --out runs/tone/tone_dehaze.safetensors   # ~3 min

Put the file in a copy of the learned-weights folder to try it (``$TIR_LEARNED_WEIGHTS``, or
``benchmarks.ab_test --weights-b``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

#: The training protocols' combinations and the order each is applied in.
TRAINING: tuple[tuple[str, str], ...] = (
    ("single", "physical"),
    ("train-d3", "physical"),
    ("mio-a", "listed"),
)
#: The trees' settings (a small learning rate and many shallow trees; chosen once, not tuned).
TREES: dict[str, Any] = {
    "max_iter": 400,
    "learning_rate": 0.05,
    "max_leaf_nodes": 15,
    "random_state": 0,
}


Example = tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]


def episodes(
    images: str,
    reps: int,
    clean: int,
    seed: int,
    protocols: Sequence[tuple[str, str]] = TRAINING,
) -> Iterator[Example]:
    """Every example in a fixed order: clean crop, input at its size, input, combination.

    ``protocols``: (protocol, degradation order) pairs whose combinations make the examples.
    """
    from tir_env import data
    from tir_env.config import EnvConfig
    from tir_env.degradations.depth import depth_provider
    from tir_env.degradations.protocols import COMBOS
    from tir_env.episode import sample_start
    from tir_env.tools.learned.tone import at_size

    source, depth = data.source(images), depth_provider("proxy")
    rng = np.random.default_rng(seed)
    for image_id in tqdm(source.ids, desc="photos"):
        for protocol, order in protocols:
            config = EnvConfig(images=images, combos=protocol, degradation_order=order)  # type: ignore[arg-type]
            for combo in COMBOS[protocol]:
                for _ in range(reps):
                    options = {"image_id": image_id, "degradations": list(combo)}
                    start = sample_start(config, source, depth, options, rng)
                    size = (int(start.clean.shape[-2]), int(start.clean.shape[-1]))
                    yield start.clean, at_size(start.input, size), start.input, tuple(combo)
        for _ in range(clean):
            options = {"image_id": image_id, "degradations": ["noise"]}
            start = sample_start(EnvConfig(images=images), source, depth, options, rng)
            yield start.clean, start.clean, start.clean, ()


def examples(
    images: str, reps: int, clean: int, seed: int, haze: bool = False
) -> dict[str, np.ndarray]:
    """Features of every input and the two changes to its clean crop.

    ``haze``: also perception's haze reading of each input (as an agent reads it: the input at
    the clean crop's size) and whether it was hazed, for the haze head.
    """
    from tir_env import perception
    from tir_env.images import batch_to_u8
    from tir_env.tools.learned.tone import luminance_level, tone_features

    rows, targets, perceived, hazy = [], [], [], []
    for clean_crop, given, raw, combo in episodes(images, reps, clean, seed):
        rows.append(tone_features(given[0]))
        (m_in, s_in), (m_out, s_out) = luminance_level(given), luminance_level(clean_crop)
        targets.append([float(m_out - m_in), float(s_out - s_in)])
        if haze:
            size = (int(clean_crop.shape[-2]), int(clean_crop.shape[-1]))
            perceived.append(perception.perceive_photo(batch_to_u8(raw), size).probs["haze"])
            hazy.append("haze" in combo)
    out = {"x": np.stack(rows), "y": np.array(targets)}
    if haze:
        out |= {"perceived": np.array(perceived), "hazy": np.array(hazy)}
    return out


def fit(data: dict[str, np.ndarray]) -> dict[str, Any]:
    """The two exported ensembles, each checked against scikit-learn's own prediction.

    Raises:
        RuntimeError: an export predicts otherwise than the fitted model.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    from tir_env.quality_trees import from_sklearn
    from tir_env.tools.learned.tone import HAZE_HEAD, HEADS

    heads = {}
    for k, head in enumerate(HEADS):
        model = HistGradientBoostingRegressor(**TREES).fit(data["x"], data["y"][:, k])
        exported = from_sklearn(model)
        probe = data["x"][:256]
        if not np.allclose(exported.predict(probe), model.predict(probe), atol=1e-9):
            raise RuntimeError(f"the exported {head} trees predict otherwise than scikit-learn")
        heads[head] = exported
    if "hazy" in data:
        heads[HAZE_HEAD] = haze_head(data)
    return heads


def haze_head(data: dict[str, np.ndarray]) -> Any:
    """The haze classifier over the statistics and perception's logit, exported and checked.

    Raises:
        RuntimeError: the export's logit differs from scikit-learn's decision function.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    from tir_env.quality_trees import from_sklearn
    from tir_env.tools.learned.tone import logit

    x = np.c_[data["x"], [logit(float(p)) for p in data["perceived"]]]
    model = HistGradientBoostingClassifier(**TREES).fit(x, data["hazy"])
    exported = from_sklearn(model)
    if not np.allclose(exported.predict(x[:256]), model.decision_function(x[:256]), atol=1e-9):
        raise RuntimeError("the exported haze trees predict otherwise than scikit-learn")
    return exported


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Make the examples, fit, write the file and its record."""
    from tir_env.files import refuse_existing
    from tir_env.tools.learned.tone import N_FEATURES, tensors_of
    from tir_env.tools.learned.weights import save_state

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--images", default="corpus:train@3")
    parser.add_argument("--reps", type=int, default=2, help="draws of each combination per photo")
    parser.add_argument("--clean", type=int, default=4, help="clean crops per photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="a .safetensors file; no overwrite")
    parser.add_argument(
        "--haze-head",
        action="store_true",
        help="also fit the haze classifier (reads perception on every example: slower)",
    )
    args = parser.parse_args(argv)
    if args.out.suffix != ".safetensors":
        parser.error(f"--out {args.out}: give a .safetensors file")
    refuse_existing(parser, args.out, args.out.with_suffix(".json"))
    torch.set_num_threads(1)
    start = time.time()
    data = examples(args.images, args.reps, args.clean, args.seed, args.haze_head)
    heads = fit(data)
    record = {
        "command": "python -m benchmarks.train_tone_dehaze "
        + shlex.join(sys.argv[1:] if argv is None else list(argv)),
        "images": args.images,
        "protocols": [f"{p} ({o})" for p, o in TRAINING],
        "examples": len(data["x"]),
        "features": N_FEATURES,
        "heads": list(heads),
        "trees": TREES,
        "seconds": round(time.time() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_state(tensors_of(heads), args.out, record)
    print(f"wrote {args.out} ({record['examples']} examples, {record['seconds']} s)")
    return record


if __name__ == "__main__":
    main()
