"""The PPO policy's features extractor: CNN over current and input image, MLP over history.

One CNN (shared weights) encodes the current and the input image. Its stem is a 4 x 4,
stride-4 convolution: it sees every pixel of a full-resolution patch (noise, JPEG blocks and
blur live at the pixel scale, and a bicubic downscale to a small observation erases much of
them) at the cost of a 4x smaller map; stride-2 convolutions and global average + max pooling
follow, so any size from 32 x 32 up works (SB3's NatureCNN needs 36). A linear head on the
pooled features names the degradations (one logit per type): :func:`pretrain_perception` fits
it, with the CNN, on labelled degraded patches before PPO starts, and the recipe then freezes
both (``freeze=True``), so the policy learns on features that say what is wrong with the image.

Features: ``[pool(image), sigmoid(head(image)), pool(input), sigmoid(head(input)),
perceived, mlp(history)]``, where ``perceived`` (``perceived_dim > 0`` only) is perception
v2's readings of both images from the observation (:mod:`agents.ppo.perceived`).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from agents.ppo import perceived


class TIRFeatures(BaseFeaturesExtractor):
    """Features of a ``Dict(image, input, history)`` observation.

    Images arrive as float CHW in [0, 1] (SB3 divides uint8 image spaces by 255); ``history``
    is flattened whatever its shape.

    Args:
        observation_space: The policy's Dict observation space (images channels first).
        channels: Output channels of the stem and of each following stride-2 convolution.
        history_dim: Width of the history MLP's output.
        n_labels: Degradation types named by the perception head.
        freeze: Keep the CNN and the perception head fixed (no gradient from PPO).
        perceived_dim: Width of the observation's ``perceived`` vector, appended as it is
            (0: the observation has none).

    Raises:
        ValueError: images smaller than 32 x 32, not channels first, or keys missing.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        channels: tuple[int, ...] = (16, 32, 64, 64),
        history_dim: int = 64,
        n_labels: int = 8,
        freeze: bool = False,
        perceived_dim: int = 0,
    ) -> None:
        required = {"image", "input", "history"} | ({perceived.KEY} if perceived_dim else set())
        missing = required - set(observation_space.spaces)
        if missing:
            raise ValueError(f"observation space lacks {sorted(missing)}")
        c, h, w = observation_space["image"].shape  # type: ignore[misc]
        if c != 3 or min(h, w) < 32:
            raise ValueError(f"images must be CHW with 3 channels and >= 32 px, got {(c, h, w)}")
        history_in = int(np.prod(observation_space["history"].shape))  # type: ignore[arg-type]
        pooled = 2 * channels[-1]
        width = 2 * (pooled + n_labels) + perceived_dim + history_dim
        super().__init__(observation_space, features_dim=width)
        self.perceived_dim = perceived_dim
        layers: list[nn.Module] = []
        previous = c
        for i, out in enumerate(channels):
            stem = i == 0
            conv = (
                nn.Conv2d(previous, out, 4, stride=4) if stem else nn.Conv2d(previous, out, 3, 2, 1)
            )
            layers += [conv, nn.GroupNorm(min(4, out), out), nn.ReLU()]
            previous = out
        self.cnn = nn.Sequential(*layers)
        self.perception = nn.Linear(pooled, n_labels)
        self.history = nn.Sequential(nn.Flatten(), nn.Linear(history_in, history_dim), nn.ReLU())
        if freeze:
            for p in self.perception_parameters():
                p.requires_grad_(False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Average- and max-pooled CNN features of images in [0, 1]."""
        maps = self.cnn(images - 0.5)
        return torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)

    def degradation_logits(self, images: torch.Tensor) -> torch.Tensor:
        """One logit per degradation type for each image (N x n_labels)."""
        return self.perception(self.encode(images))

    def perception_parameters(self) -> list[nn.Parameter]:
        """Parameters of the CNN and the perception head."""
        return [*self.cnn.parameters(), *self.perception.parameters()]

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[pool(image), p(image), pool(input), p(input), perceived, mlp(history)]``."""
        parts = []
        for key in ("image", "input"):
            pooled = self.encode(observations[key])
            parts += [pooled, torch.sigmoid(self.perception(pooled))]
        if self.perceived_dim:
            parts.append(observations[perceived.KEY].float())
        # the history comes last: behaviour cloning caches everything before it
        return torch.cat([*parts, self.history(observations["history"])], dim=1)


def pretrain_perception(
    features: TIRFeatures,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    log: Callable[[int, float], None] | None = None,
) -> float:
    """Fit the CNN and perception head to name degradations (multi-label cross-entropy).

    Batches are augmented with a random rotation by a multiple of 90 degrees, a horizontal flip
    and a permutation of the colour channels (6 training photos are few; none of these changes
    which degradations an image shows).

    Args:
        features: The extractor to train (its ``freeze`` setting is restored afterwards).
        images: uint8 N x 3 x S x S.
        labels: float N x n_labels in {0, 1}.
        epochs: Passes over the data.
        seed: Seeds the shuffling and the augmentations.
        batch_size: Images per step.
        lr: Adam step size.
        log: Called with ``(epoch, mean loss)`` after every epoch.

    Returns:
        The mean loss of the last epoch.
    """
    params = features.perception_parameters()
    frozen = [not p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    mean_loss = float("nan")
    for epoch in range(epochs):
        order, losses = torch.randperm(len(images), generator=generator), []
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            x = _augment(images[idx].float() / 255.0, generator)
            loss = nn.functional.binary_cross_entropy_with_logits(
                features.degradation_logits(x), labels[idx]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        mean_loss = float(np.mean(losses))
        if log is not None:
            log(epoch, mean_loss)
    for p, was_frozen in zip(params, frozen, strict=True):
        p.requires_grad_(not was_frozen)
    return mean_loss


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    k = int(torch.randint(4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if bool(torch.rand(1, generator=generator) < 0.5):
        x = x.flip(3)
    return x[:, torch.randperm(3, generator=generator)]
