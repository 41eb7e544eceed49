"""Training of the shipped perception network, :class:`PerceptionFeatureNet`, on cached features.

The network reads an image only through
:func:`~tir_env.tools.learned.perception_features.perception_features`, so the features of
every example are computed once (a few minutes for 20,000 crops, cached next to the
examples) and training is a few thousand steps of small MLPs on them: about a minute on
two cores. Used by :func:`benchmarks.train_perception.main` when ``arch`` is ``features``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.perception import N_OUTPUTS

if TYPE_CHECKING:
    from benchmarks.train_perception import Config, Examples
    from tir_env.tools.learned.perception_features import PerceptionFeatureNet

logger = logging.getLogger(__name__)


def features_of(images: np.ndarray, batch: int = 500) -> np.ndarray:
    """:func:`perception_features` of uint8 NxHxWx3 images (N x N_PERCEPTION_FEATURES)."""
    from benchmarks.train_perception import to_batch
    from tir_env.tools.learned.perception_features import perception_features

    parts = [
        perception_features(to_batch(images[i : i + batch]))
        for i in tqdm(range(0, len(images), batch), desc="features", mininterval=10)
    ]
    return torch.cat(parts).numpy()


def cached_features(
    ex: Examples, out: Path, profile: bool = False, blind: bool = False
) -> np.ndarray:
    """:func:`features_of` the examples, saved under ``out/examples`` (keyed by the images).

    A rerun with the same examples (the same settings) reuses them; with ``profile`` or
    ``blind`` the cached features without them are reused and only the extra columns (the
    direction profile, the kernel fits) are computed.
    """
    from benchmarks.train_perception import to_batch
    from tir_env.tools.classical.kernel_fits import kernel_fit_features
    from tir_env.tools.learned.perception_features import direction_profile, n_features

    key = hashlib.sha256(ex.images.tobytes()).hexdigest()[:16]
    path = out / "examples" / f"features{n_features(profile, blind)}-{key}.npy"
    if path.is_file():
        return np.load(path)
    if profile or blind:
        # the kernel fits come last, after the profile (perception_features' order)
        extra = kernel_fit_features if blind else direction_profile
        base = cached_features(ex, out, profile) if blind else cached_features(ex, out)
        batches = range(0, len(ex.images), 500)
        columns = [
            extra(to_batch(ex.images[i : i + 500])).numpy()
            for i in tqdm(batches, desc=extra.__name__, mininterval=10)
        ]
        features = np.concatenate([base, np.concatenate(columns)], axis=1)
    else:
        features = features_of(ex.images)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, features)
    tmp.replace(path)
    return features


def quarter_turn(features: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Half the rows as the features of the image turned by 90 degrees (augmentation).

    Every feature is invariant to flips and quarter turns except the two blockiness
    directions, which a quarter turn swaps.
    """
    from tir_env.tools.learned.perception_features import QUARTER_TURN_SWAPS

    turned = torch.from_numpy(rng.random(len(features)) < 0.5)
    out = features.clone()
    for a, b in QUARTER_TURN_SWAPS:
        out[turned, a], out[turned, b] = features[turned, b], features[turned, a]
    return out


def new_network(cfg: Config, features: np.ndarray) -> PerceptionFeatureNet:
    """An untrained network standardising with the training features' mean and spread."""
    from tir_env.tools.learned.perception_features import PerceptionFeatureNet

    net = PerceptionFeatureNet(
        N_OUTPUTS, cfg.hidden, cfg.members, profile=cfg.profile, blind=cfg.blind
    )
    x = torch.from_numpy(features)
    net.center.copy_(x.mean(dim=0))
    net.spread.copy_(x.std(dim=0) + 1e-6)
    return net


def outputs(net: PerceptionFeatureNet, features: np.ndarray) -> torch.Tensor:
    """Raw outputs (N x 18) of cached feature rows, in eval mode."""
    net.eval()
    with torch.no_grad():
        out = net.head(torch.from_numpy(features))
    net.train()
    return out


def train(
    cfg: Config, train_set: Examples, val_set: Examples, out: Path, rng: np.random.Generator
) -> tuple[PerceptionFeatureNet, list[dict[str, float]], np.ndarray]:
    """Train on the cached features; return the network, its val curve and the val features."""
    from benchmarks.train_perception import (
        evaluate,
        group_batch,
        losses,
        optimise,
        record_head,
        save,
        total_loss,
    )

    features = cached_features(train_set, out, cfg.profile, cfg.blind)
    val_features = cached_features(val_set, out, cfg.profile, cfg.blind)
    net = new_network(cfg, features)
    if cfg.init:
        from tir_env.tools.learned.weights import load_state

        net.load_state_dict(load_state(Path(cfg.init)))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    x = torch.from_numpy(features)
    curve, default_limits = [], dict.fromkeys(AGENTICIR_TYPES, 0.5)
    ranked = cfg.rank_weight > 0 and cfg.group_tools > 0
    for step in tqdm(range(1, cfg.steps + 1), desc="train", mininterval=10):
        index = (
            group_batch(train_set, cfg.batch, rng) if ranked else rng.integers(0, len(x), cfg.batch)
        )
        parts = losses(net.head(quarter_turn(x[index], rng)), train_set, index, rank=ranked)
        loss = optimise(opt, sched, total_loss(parts, cfg, ranked))
        if step % max(1, cfg.steps // 8) == 0 or step == cfg.steps:
            scores = evaluate(net, val_set, default_limits, outputs(net, val_features))
            curve.append({"step": step, "loss": float(loss.detach()), **scores})
            logger.info("step %d: %s", step, curve[-1])
            save(net, out / "checkpoint", cfg.name, {"step": step, **record_head(cfg)})
    net.eval()
    return net, curve, val_features
