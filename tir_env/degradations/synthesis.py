"""Pixel-level synthesis shared by the degradations: seeds, noise, JPEG, haze, rain streaks.

The degradation classes (:mod:`tir_env.degradations.agenticir`,
:mod:`tir_env.degradations.rlrestore`) draw their parameters and call these functions; every
random draw comes from a generator built from a parameter (:func:`image_rng`), so the
functions are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import cv2
import numpy as np
import torch

from tir_env.degradations.depth import fit_depth
from tir_env.errors import ImageError, InvalidParameterError
from tir_env.images import batch_to_hwc, hwc_to_batch
from tir_env.types import ImageF32

#: Upper bound (exclusive) of the integer ``seed`` parameters; exact in float64 and JSON.
SEED_BOUND = 2**31

#: ITU-R BT.601 luma weights (R, G, B).
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

HwcFn = Callable[[ImageF32, int], ImageF32]


def param(params: Mapping[str, float], key: str, owner: str) -> float:
    """Return ``params[key]`` as a float, or raise a named error saying what is missing.

    Raises:
        InvalidParameterError: ``key`` is absent.
    """
    if key not in params:
        raise InvalidParameterError(
            f"degradation {owner!r} needs parameter {key!r}; got {sorted(params)}. "
            "Use the parameters returned by its sample()."
        )
    return float(params[key])


def draw_seed(rng: np.random.Generator) -> float:
    """Draw an integer pixel-noise seed in [0, 2**31) (stored as a float parameter)."""
    return float(rng.integers(0, SEED_BOUND))


def image_rng(seed: float, index: int) -> np.random.Generator:
    """The generator of image ``index`` of a batch degraded with ``seed``."""
    return np.random.default_rng([int(seed), index])


def per_image(batch: torch.Tensor, fn: HwcFn) -> torch.Tensor:
    """Apply ``fn(hwc_image, index)`` to every image of a batch on the CPU.

    The result comes back as float32 NCHW in [0, 1] on the batch's device.
    """
    images = [fn(image, i) for i, image in enumerate(batch_to_hwc(batch))]
    return hwc_to_batch(images).to(batch.device)


def filter_hwc(image: ImageF32, kernel: np.ndarray, border: int) -> ImageF32:
    """Correlate every channel of an HWC float32 image with a 2-D kernel (OpenCV)."""
    out = cv2.filter2D(image, -1, kernel.astype(np.float32), borderType=border)
    return out.reshape(image.shape).astype(np.float32)


def jpeg_roundtrip(image: ImageF32, quality: int) -> ImageF32:
    """Encode an RGB float image as a JPEG of ``quality`` (libjpeg via OpenCV) and decode it.

    The image is rounded to uint8 first; OpenCV's codec expects BGR, so channels are swapped
    on the way in and back. Chroma is subsampled 4:2:0 (OpenCV's default, as in AgenticIR).
    """
    u8 = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    bgr = np.ascontiguousarray(u8[..., ::-1])
    ok, encoded = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise ImageError(f"JPEG round trip failed for an image of shape {image.shape}")
    decoded = decoded.reshape(image.shape)
    return decoded[..., ::-1].astype(np.float32) / 255.0


def add_gaussian_noise(image: ImageF32, sigma: float, rng: np.random.Generator) -> ImageF32:
    """``clip(x + n)``, ``n ~ N(0, (sigma/255)^2)`` i.i.d. per pixel and channel (colour noise)."""
    noise = rng.standard_normal(image.shape) * (sigma / 255.0)
    return np.clip(image + noise, 0.0, 1.0).astype(np.float32)


def add_poisson_noise(image: ImageF32, scale: float, rng: np.random.Generator) -> ImageF32:
    """BasicSR's Poisson (shot) noise, ``generate_poisson_noise`` then ``add_poisson_noise``.

    With ``q = round(255 x) / 255`` and ``v = 2^ceil(log2(#unique values of q))`` (the number
    of grey levels, so ``v = 256`` for a typical photo)::

        n = scale * (Poisson(q * v) / v - q),   y = clip(x + n, 0, 1)

    so the noise standard deviation at intensity ``x`` is about ``scale * sqrt(x / v)``:
    ``scale = 1`` gives about 11/255 at mid-grey, ``scale = 3`` about 34/255.
    """
    q = np.rint(np.clip(image, 0.0, 1.0) * 255.0) / 255.0
    levels = 2.0 ** math.ceil(math.log2(len(np.unique(q))))
    noise = scale * (rng.poisson(q * levels) / levels - q)
    return np.clip(image + noise, 0.0, 1.0).astype(np.float32)


def symmetric_pad(batch: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad H and W by ``pad`` pixels mirroring with the edge repeated (MATLAB ``symmetric``)."""
    rows = torch.from_numpy(np.pad(np.arange(batch.shape[-2]), pad, mode="symmetric"))
    cols = torch.from_numpy(np.pad(np.arange(batch.shape[-1]), pad, mode="symmetric"))
    return batch[..., rows.to(batch.device), :][..., cols.to(batch.device)]


# ---------------------------------------------------------------- haze


def depth_proxy(image: ImageF32) -> np.ndarray:
    """A smooth stand-in for a monocular depth map, in (0, 1], farthest = 1.

    MiO100's haze uses a depth network's ``predict_depth.mat``; none ships here. The proxy
    mixes two cues of outdoor photographs::

        d = 0.3 + 0.5 * r + 0.2 * l,   then d / max(d)

    ``r`` is a vertical ramp (1 at the top row, 0 at the bottom: the ground is near, the
    horizon far). ``l`` is the luminance blurred at 1/8 of the image size and min-max
    normalised: bright regions (sky, hazy background) count as farther. This deliberately
    differs from an inverse-luminance cue, which would put the sky nearest. The constant 0.3
    keeps some haze everywhere, like a depth map divided by its maximum (AgenticIR's ``d/d.max()``).
    """
    h, w = image.shape[:2]
    ramp = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None]
    luma = (image @ LUMA).astype(np.float32)
    # Blur at a fixed 32x32 working size: sigma = 1/8 of the image at any resolution, cheaply.
    small = cv2.resize(luma, (32, 32), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=4.0, borderType=cv2.BORDER_REFLECT)
    cue = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w)
    span = float(cue.max() - cue.min())
    cue = (cue - cue.min()) / span if span > 1e-6 else np.zeros_like(cue)
    depth = 0.3 + 0.5 * ramp + 0.2 * cue
    return (depth / depth.max()).astype(np.float32)


def add_haze(
    image: ImageF32, airlight: float, beta: float, depth: np.ndarray | None = None
) -> ImageF32:
    """Atmospheric scattering (Koschmieder): ``I = J t + A (1 - t)``, ``t = exp(-beta d)``.

    ``depth`` is an HxW map in [0, 1] (1 = farthest; resized to the image if it differs, e.g.
    after ``low_resolution``); ``None`` uses :func:`depth_proxy` of the image.
    """
    d = depth_proxy(image) if depth is None else fit_depth(depth, image.shape[:2])
    t = np.exp(-beta * d)[..., None]
    return np.clip(image * t + airlight * (1.0 - t), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- rain

#: MiOIR's seed-spreading kernel: a drop becomes a small bright cross before streaking.
_DROP_KERNEL = np.array([[0.0, 0.1, 0.0], [0.1, 8.0, 0.1], [0.0, 0.1, 0.0]], dtype=np.float32)


def streak_kernel(length: int, angle: float) -> np.ndarray:
    """MiOIR's rain-streak kernel: a rotated, slightly thickened line segment.

    The ``length x length`` identity matrix (a 45-degree line) is rotated by ``angle - 45``
    degrees about its centre and scaled by ``1 - length/100`` (OpenCV ``warpAffine``), then
    blurred by a 3x3 Gaussian to give the streak a width of about 3 pixels. Not normalised.
    """
    centre = (length / 2.0, length / 2.0)
    rotation = cv2.getRotationMatrix2D(centre, angle - 45.0, 1.0 - length / 100.0)
    line = cv2.warpAffine(np.eye(length, dtype=np.float32), rotation, (length, length))
    return cv2.GaussianBlur(line, (3, 3), 0)


def rain_layer(
    shape: tuple[int, int], density: float, length: int, angle: float, rng: np.random.Generator
) -> np.ndarray:
    """A rain-streak intensity map in [0, 1] (MiOIR ``add_rain``).

    Seeds are drawn as ``u ~ U[0, 256)`` per pixel, kept where ``u >= 256 - density/100``
    (a fraction ``density / 25600`` of the pixels: 0.2-0.4 %), spread by
    :data:`_DROP_KERNEL`, streaked with :func:`streak_kernel` and min-max normalised.
    """
    seeds = rng.uniform(0.0, 256.0, shape).astype(np.float32)
    seeds[seeds < 256.0 - density * 0.01] = 0.0
    drops = cv2.filter2D(seeds, -1, _DROP_KERNEL)
    streaks = cv2.filter2D(drops, -1, streak_kernel(length, angle)).reshape(shape)
    low, high = float(streaks.min()), float(streaks.max())
    return (streaks - low) / (high - low) if high - low > 1e-12 else np.zeros_like(streaks)
