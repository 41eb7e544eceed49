"""RL-Restore's three leveled distortions and its mild/moderate/severe level triples.

After ``data/train/generate_train.m`` and ``noise_combination.m`` of RL-Restore (Yu et al.,
CVPR 2018; notes/paper.md §9.1). Each distortion has 10 level bins between 11 edges:

==============  =====================================  ==============================
distortion      edges (MATLAB)                         level ``l`` (1..10) draws from
==============  =====================================  ==============================
gaussian_blur   ``blur_sig = 0:0.5:5`` (sigma)         ``[0.5 (l-1), 0.5 l]``
gaussian_noise  ``noi_sig = 0:5:50`` (sigma, 0-255)    ``[5 (l-1), 5 l]``
jpeg_quality    ``jpg_q = [100,80,60,50,40:-5:10]``    between ``jpg_q(l)`` and ``jpg_q(l+1)``
==============  =====================================  ==============================

Indexing: levels are 1-based as in the MATLAB code, where level ``l`` draws uniformly between
``edges(l)`` and ``edges(l+1)`` (1-based), i.e. ``EDGES[l - 1]`` and ``EDGES[l]`` here.
A higher level is always a stronger distortion (JPEG quality falls as the level rises).

A level triple ``(k, m, n)`` (blur, noise, JPEG) belongs to a severity when ``k + m + n - 2``
lies in its range: mild [9, 11], moderate [12, 17] (RL-Restore's training set), severe
[18, 20]. ``noise_combination.m`` lists every distinct ordered triple once and
``generate_train.m`` picks a row uniformly, so :func:`sample_severity` draws uniformly over
the valid ordered triples.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from tir_env.degradations.agenticir import (
    add_gaussian_noise,
    draw_seed,
    image_rng,
    jpeg_roundtrip,
    param,
    per_image,
)
from tir_env.degradations.base import Degradation, DegradationInfo, register_degradation
from tir_env.errors import InvalidParameterError, did_you_mean

Severity = Literal["mild", "moderate", "severe"]

NUM_LEVELS = 10
BLUR_SIGMAS: tuple[float, ...] = tuple(0.5 * i for i in range(NUM_LEVELS + 1))
NOISE_SIGMAS: tuple[float, ...] = tuple(5.0 * i for i in range(NUM_LEVELS + 1))
JPEG_QUALITIES: tuple[float, ...] = (100, 80, 60, 50, 40, 35, 30, 25, 20, 15, 10)
#: severity -> inclusive range of ``k + m + n - 2`` (``noise_combination.m``'s comment).
SEVERITY_RANGES: dict[str, tuple[int, int]] = {
    "mild": (9, 11),
    "moderate": (12, 17),
    "severe": (18, 20),
}
#: RL-Restore's synthesis order: blur -> noise -> JPEG (also their ``physical_order``).
LEVELED_ORDER: tuple[str, ...] = ("gaussian_blur", "gaussian_noise", "jpeg_quality")
#: Side of RL-Restore's Gaussian blur kernel (``fspecial('gaussian', 21, sigma)``).
BLUR_KERNEL_SIZE = 21


class LeveledDegradation(Degradation):
    """A distortion whose strength ``key`` is drawn inside one of 10 level bins.

    Attributes:
        edges: The 11 bin edges; level ``l`` lies between ``edges[l-1]`` and ``edges[l]``.
        key: Name of the strength parameter (``sigma`` or ``quality``).
    """

    edges: tuple[float, ...]
    key: str

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw a level uniformly in 1..10, then a value uniformly inside its bin."""
        return self.sample_level(int(rng.integers(1, NUM_LEVELS + 1)), rng)

    def sample_level(self, level: int, rng: np.random.Generator) -> dict[str, float]:
        """Draw the parameters of one level: ``{"level": l, key: value, ...}``.

        Raises:
            InvalidParameterError: ``level`` is not an integer in 1..10.
        """
        if int(level) != level or not 1 <= level <= NUM_LEVELS:
            raise InvalidParameterError(
                f"{self.info.name}: level must be an integer in 1..{NUM_LEVELS}, got {level}"
            )
        low, high = self.edges[level - 1], self.edges[level]
        value = low + rng.random() * (high - low)
        return {"level": float(level), self.key: self._finish(value)}

    def _finish(self, value: float) -> float:
        return float(value)


@register_degradation
class GaussianBlur(LeveledDegradation):
    """Isotropic Gaussian blur, 21x21 kernel, sigma in [0, 5] (RL-Restore).

    The kernel is ``fspecial('gaussian', 21, sigma)``: ``exp(-(x^2 + y^2) / 2 sigma^2)``,
    ``|x|, |y| <= 10``, normalised, applied separably with replicated borders (``imfilter``
    ``'replicate'``). ``sigma = 0`` is the identity.

    Parameters:
        level: Level bin, 1..10 (informative; ``apply`` uses ``sigma`` only).
        sigma: Standard deviation in pixels, inside ``[0.5 (level-1), 0.5 level]``.
    """

    info = DegradationInfo(
        name="gaussian_blur",
        task="defocus_deblurring",
        group="imaging",
        physical_order=5,
        protocol="rlrestore",
        description="Gaussian blur 21x21, sigma in 0:0.5:5 (10 level bins)",
    )
    edges = BLUR_SIGMAS
    key = "sigma"

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Blur every channel (see the class docstring)."""
        sigma = param(params, "sigma", self.info.name)
        if sigma <= 1e-6:
            return batch.clone()
        half = BLUR_KERNEL_SIZE // 2
        taps = torch.arange(-half, half + 1, dtype=torch.float64)
        g = torch.exp(-(taps**2) / (2.0 * sigma**2))
        g = (g / g.sum()).to(batch.device, torch.float32)
        channels = batch.shape[1]
        out = F.pad(batch, (half, half, half, half), mode="replicate")
        out = F.conv2d(out, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
        out = F.conv2d(out, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
        return out.clamp(0.0, 1.0)


@register_degradation
class GaussianNoise(LeveledDegradation):
    """Additive white Gaussian noise, sigma in [0, 50] on the 0-255 scale (RL-Restore).

    ``y = clip(x + N(0, (sigma/255)^2))``, i.i.d. per pixel and channel (MATLAB ``imnoise``
    ``'gaussian'``). ``sigma = 0`` is the identity.

    Parameters:
        level: Level bin, 1..10 (informative).
        sigma: Standard deviation (0-255 scale), inside ``[5 (level-1), 5 level]``.
        seed: Integer seed of the pixel noise.
    """

    info = DegradationInfo(
        name="gaussian_noise",
        task="denoising",
        group="imaging",
        physical_order=8,
        protocol="rlrestore",
        description="Gaussian noise, sigma in 0:5:50 on 0-255 (10 level bins)",
    )
    edges = NOISE_SIGMAS
    key = "sigma"

    def sample_level(self, level: int, rng: np.random.Generator) -> dict[str, float]:
        """Draw the level's sigma, then the pixel seed."""
        return {**super().sample_level(level, rng), "seed": draw_seed(rng)}

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Add the noise (see the class docstring)."""
        sigma = param(params, "sigma", self.info.name)
        seed = param(params, "seed", self.info.name)
        return per_image(batch, lambda x, i: add_gaussian_noise(x, sigma, image_rng(seed, i)))


@register_degradation
class JpegQuality(LeveledDegradation):
    """JPEG compression, quality in [10, 100] (RL-Restore's ``imwrite(..., 'Quality', q)``).

    The value drawn inside the bin is rounded to the integer quality libjpeg uses.

    Parameters:
        level: Level bin, 1..10 (informative).
        quality: Integer quality between ``JPEG_QUALITIES[level-1]`` and ``JPEG_QUALITIES[level]``.
    """

    info = DegradationInfo(
        name="jpeg_quality",
        task="jpeg_artifact_removal",
        group="compression",
        physical_order=10,
        protocol="rlrestore",
        description="JPEG quality in [100,80,60,50,40:-5:10] (10 level bins)",
    )
    edges = JPEG_QUALITIES
    key = "quality"

    def _finish(self, value: float) -> float:
        return float(round(value))

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Encode and decode every image as JPEG."""
        quality = round(param(params, "quality", self.info.name))
        return per_image(batch, lambda x, _: jpeg_roundtrip(x, quality))


@functools.cache
def valid_triples(severity: Severity) -> tuple[tuple[int, int, int], ...]:
    """All ordered level triples ``(blur, noise, jpeg)`` of a severity, each once.

    Raises:
        InvalidParameterError: unknown severity.
    """
    if severity not in SEVERITY_RANGES:
        raise InvalidParameterError(
            f"unknown RL-Restore severity {severity!r}.{did_you_mean(severity, SEVERITY_RANGES)} "
            f"Choose one of {', '.join(SEVERITY_RANGES)}."
        )
    low, high = SEVERITY_RANGES[severity]
    levels = range(1, NUM_LEVELS + 1)
    triples = itertools.product(levels, levels, levels)
    return tuple((k, m, n) for k, m, n in triples if low <= k + m + n - 2 <= high)


def sample_severity(
    severity: Severity, rng: np.random.Generator
) -> list[tuple[str, dict[str, float]]]:
    """Draw one RL-Restore distortion combination of a severity.

    A level triple is drawn uniformly from :func:`valid_triples`, then each distortion's value
    uniformly inside its level bin (blur, then noise and its seed, then JPEG).

    Returns:
        ``[("gaussian_blur", params), ("gaussian_noise", params), ("jpeg_quality", params)]``,
        in application order, ready for :func:`~tir_env.degradations.base.replay`.
    """
    triples = valid_triples(severity)
    levels = triples[int(rng.integers(len(triples)))]
    makers = (GaussianBlur(), GaussianNoise(), JpegQuality())
    return [(d.info.name, d.sample_level(lv, rng)) for d, lv in zip(makers, levels, strict=True)]
