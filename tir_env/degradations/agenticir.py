"""The eight AgenticIR MiO100 degradation types (notes/paper.md §8.1).

Re-implemented from the synthesis parameters of AgenticIR (Zhu et al., ICLR 2025),
``dataset/add_single_degradation.py``, which borrows from BasicSR (noise), imagecorruptions
(motion and defocus blur), MiOIR (haze, rain) and RESIDE (haze parameters). Differences from
that script, all deliberate:

* everything works on float32 RGB in [0, 1]; intermediate results are not rounded to uint8
  (only JPEG, whose codec needs it, quantises);
* ``haze`` takes its depth from a folder of maps or a local depth model when given one
  (:mod:`tir_env.degradations.depth`), else from a proxy computed from the image, because
  MiO100's per-image ``predict_depth.mat`` files do not ship (see :func:`depth_proxy`);
* every random draw comes from the caller's generator or from an integer ``seed`` parameter,
  so ``apply`` is deterministic and a record of the parameters reproduces the image.

Image ``i`` of a batch draws its pixel noise from ``numpy.random.default_rng([seed, i])``
(:func:`image_rng`), so the first image of a batch degrades exactly like the image alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch

from tir_env.degradations.base import Degradation, DegradationInfo, register_degradation
from tir_env.degradations.synthesis import (  # noqa: F401 - public here before the split
    LUMA,
    SEED_BOUND,
    HwcFn,
    add_gaussian_noise,
    add_haze,
    add_poisson_noise,
    depth_proxy,
    draw_seed,
    filter_hwc,
    image_rng,
    jpeg_roundtrip,
    param,
    per_image,
    rain_layer,
    streak_kernel,
    symmetric_pad,
)
from tir_env.dsp import disk_kernel, motion_kernel
from tir_env.errors import ImageError, InvalidParameterError
from tir_env.images import resize
from tir_env.types import ImageF32

#: imagecorruptions' motion-blur severities: severity -> (radius, Gaussian sigma) in pixels.
MOTION_SEVERITIES: tuple[tuple[int, float], ...] = ((10, 3.0), (15, 5.0), (15, 8.0))
#: imagecorruptions' defocus severities: severity -> (disk radius, anti-alias sigma).
DEFOCUS_SEVERITIES: tuple[tuple[int, float], ...] = ((3, 0.1), (4, 0.5), (6, 0.5))


# ---------------------------------------------------------------- low resolution


#: Input pixels on each side that MATLAB's x1/4 cubic kernel reaches (support 2 x 4).
_LR_PAD = 8


@register_degradation
class LowResolution(Degradation):
    """Bicubic downsampling by 4 (AgenticIR ``lr``: BasicSR's MATLAB-style ``imresize``).

    ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)`` uses MATLAB
    ``imresize``'s antialiased cubic kernel (a = -0.5, support stretched by the scale); padding
    the input symmetrically by 8 pixels first (then dropping 2 output pixels per side)
    reproduces MATLAB's border handling too, so the result equals BasicSR's ``imresize(x, 0.25)``
    up to float rounding. No parameters. Output is H/4 x W/4; H and W must be divisible by 4.
    """

    info = DegradationInfo(
        name="low_resolution",
        task="super_resolution",
        group="imaging",
        physical_order=6,
        downscale=4,
        description="bicubic x1/4, antialiased (MATLAB imresize); no parameters",
    )

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """No parameters: the operator is fixed."""
        return {}

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Downsample by 4 (see the class docstring).

        Raises:
            ImageError: H or W is not a positive multiple of 4.
        """
        h, w = batch.shape[-2:]
        if h % 4 or w % 4 or min(h, w) < 4:
            raise ImageError(
                f"low_resolution needs H and W divisible by 4, got {h}x{w}; "
                "crop the clean image to a multiple of 4 first"
            )
        crop = _LR_PAD // 4
        small = resize(symmetric_pad(batch, _LR_PAD), (h // 4 + 2 * crop, w // 4 + 2 * crop))
        return small[..., crop:-crop, crop:-crop].contiguous()


# ---------------------------------------------------------------- noise


@register_degradation
class Noise(Degradation):
    """Gaussian or Poisson noise with probability 1/2 each (AgenticIR ``add_noise``, BasicSR).

    Parameters:
        poisson: 0 for Gaussian, 1 for Poisson.
        sigma: Gaussian standard deviation on the 0-255 scale, U[20, 50) (only if ``poisson=0``).
        scale: Poisson noise multiplier, U[1, 3) (only if ``poisson=1``); see
            :func:`add_poisson_noise` for the mapping to a noise level.
        seed: Integer seed of the pixel noise.

    Gaussian: ``y = clip(x + N(0, (sigma/255)^2))``, colour noise (BasicSR ``gray_prob=0``).
    """

    info = DegradationInfo(
        name="noise",
        task="denoising",
        group="imaging",
        physical_order=7,
        description="Gaussian sigma U[20,50] or Poisson scale U[1,3], p=0.5 each",
    )

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Pick the noise type, then its level, then the pixel seed."""
        if rng.random() < 0.5:
            return {"poisson": 0.0, "sigma": rng.uniform(20.0, 50.0), "seed": draw_seed(rng)}
        return {"poisson": 1.0, "scale": rng.uniform(1.0, 3.0), "seed": draw_seed(rng)}

    def severity(self, params: Mapping[str, float]) -> float:
        """Gaussian ``(sigma - 20) / 30``; Poisson ``(scale - 1) / 2``."""
        if param(params, "poisson", self.info.name) >= 0.5:
            return (param(params, "scale", self.info.name) - 1.0) / 2.0
        return (param(params, "sigma", self.info.name) - 20.0) / 30.0

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Add the noise (see the class docstring)."""
        seed = param(params, "seed", self.info.name)
        if param(params, "poisson", self.info.name) >= 0.5:
            scale = param(params, "scale", self.info.name)
            return per_image(batch, lambda x, i: add_poisson_noise(x, scale, image_rng(seed, i)))
        sigma = param(params, "sigma", self.info.name)
        return per_image(batch, lambda x, i: add_gaussian_noise(x, sigma, image_rng(seed, i)))


# ---------------------------------------------------------------- jpeg


@register_degradation
class Jpeg(Degradation):
    """JPEG compression at an integer quality in [10, 30) (AgenticIR ``add_jpeg_comp_artifacts``).

    Parameters:
        quality: libjpeg quality factor, integer, uniform over {10, ..., 29}.
    """

    info = DegradationInfo(
        name="jpeg",
        task="jpeg_artifact_removal",
        group="compression",
        physical_order=9,
        description="JPEG quality integer U[10,30) (OpenCV/libjpeg, 4:2:0)",
    )

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw the quality factor."""
        return {"quality": float(rng.integers(10, 30))}

    def severity(self, params: Mapping[str, float]) -> float:
        """``(29 - quality) / 19``: quality 29 is 0, quality 10 is 1."""
        return (29.0 - param(params, "quality", self.info.name)) / 19.0

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Encode and decode every image (see :func:`jpeg_roundtrip`)."""
        quality = round(param(params, "quality", self.info.name))
        return per_image(batch, lambda x, _: jpeg_roundtrip(x, quality))


# ---------------------------------------------------------------- dark


@register_degradation
class Dark(Degradation):
    """Low light: darken the HSV value channel V = max(R, G, B) (AgenticIR ``darken``).

    One of three maps, chosen uniformly (``mode``), with V on the 0-255 scale:

    * ``mode=0``, constant shift: ``V' = max(V - shift, 0)``, ``shift`` integer in [30, 50);
    * ``mode=1``, gamma: ``V' = 255 (V/255)^(1/gamma)``, ``gamma`` in [0.5, 0.7); the exponent
      ``1/gamma`` lies in (1.43, 2], above 1, so every value gets darker;
    * ``mode=2``, linear map: ``V' = (V - Vmin) / (Vmax - Vmin) * max_value``, ``max_value``
      integer in [100, 150) (a flat image, Vmax = Vmin, maps to ``V * max_value / 255``).

    Changing V with hue and saturation fixed multiplies R, G and B by ``V'/V``, which is how
    the map is applied (exactly OpenCV's HSV round trip, without its uint8 rounding).
    """

    info = DegradationInfo(
        name="dark",
        task="brightening",
        group="scene",
        physical_order=2,
        description=(
            "HSV-V: shift U{30..49}, gamma U[0.5,0.7) (V^(1/gamma)) or linear map to "
            "max U{100..149}, one of three uniformly"
        ),
    )

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Pick the map, then its parameter."""
        mode = int(rng.integers(0, 3))
        if mode == 0:
            return {"mode": 0.0, "shift": float(rng.integers(30, 50))}
        if mode == 1:
            return {"mode": 1.0, "gamma": rng.uniform(0.5, 0.7)}
        return {"mode": 2.0, "max_value": float(rng.integers(100, 150))}

    def severity(self, params: Mapping[str, float]) -> float:
        """Per map: shift `(s - 30) / 19`, gamma `(0.7 - g) / 0.2`, linear `(149 - m) / 49`."""
        mode = round(param(params, "mode", self.info.name))
        if mode == 0:
            return (param(params, "shift", self.info.name) - 30.0) / 19.0
        if mode == 1:
            return (0.7 - param(params, "gamma", self.info.name)) / 0.2
        return (149.0 - param(params, "max_value", self.info.name)) / 49.0

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Darken V and rescale RGB by ``V'/V`` (see the class docstring)."""
        value = batch.amax(dim=1, keepdim=True)
        darker = self._map_value(value, params)
        gain = torch.where(value > 0, darker / value.clamp_min(1e-12), torch.zeros_like(value))
        return (batch * gain).clamp(0.0, 1.0)

    def _map_value(self, value: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        mode = round(param(params, "mode", self.info.name))
        if mode == 0:
            return (value - param(params, "shift", self.info.name) / 255.0).clamp_min(0.0)
        if mode == 1:
            return value.pow(1.0 / param(params, "gamma", self.info.name))
        if mode == 2:
            top = param(params, "max_value", self.info.name) / 255.0
            vmin = value.amin(dim=(1, 2, 3), keepdim=True)
            span = value.amax(dim=(1, 2, 3), keepdim=True) - vmin
            stretched = (value - vmin) / span.clamp_min(1e-12) * top
            return torch.where(span > 1e-12, stretched, value * top)
        raise InvalidParameterError(f"dark: mode must be 0, 1 or 2, got {mode}")


# ---------------------------------------------------------------- haze


@register_degradation
class Haze(Degradation):
    """Haze by the atmospheric scattering model (AgenticIR ``add_haze``, from MiOIR/RESIDE).

    ``I(x) = J(x) t(x) + A (1 - t(x))`` with ``t(x) = exp(-beta d(x))``. ``d`` is the depth
    map given to :meth:`with_depth` (a folder map or a model's prediction of the clean photo,
    :mod:`tir_env.degradations.depth`), else :func:`depth_proxy` of the image being hazed.

    Parameters:
        A: Global atmospheric light, U[0.7, 1.0).
        beta: Scattering coefficient, U[0.6, 1.8).
    """

    info = DegradationInfo(
        name="haze",
        task="dehazing",
        group="scene",
        physical_order=0,
        description=(
            "I = J t + A (1-t), t = exp(-beta d), A U[0.7,1), beta U[0.6,1.8); depth: folder, "
            "model or proxy"
        ),
    )

    def __init__(self, depth: np.ndarray | None = None) -> None:
        self.depth = depth

    def with_depth(self, depth: np.ndarray | None) -> Degradation:
        """This haze with a depth map: HxW (every image) or NxHxW (one per image), 1 = far."""
        return Haze(depth)

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw the atmospheric light and the scattering coefficient."""
        return {"A": rng.uniform(0.7, 1.0), "beta": rng.uniform(0.6, 1.8)}

    def severity(self, params: Mapping[str, float]) -> float:
        """Scattering coefficient ``(beta - 0.6) / 1.2``."""
        return (param(params, "beta", self.info.name) - 0.6) / 1.2

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Haze every image with the given depth map, or else with its own depth proxy."""
        airlight = param(params, "A", self.info.name)
        beta = param(params, "beta", self.info.name)
        depth = self.depth
        if depth is not None and depth.ndim == 3 and depth.shape[0] != batch.shape[0]:
            raise ImageError(f"haze: {depth.shape[0]} depth maps for {batch.shape[0]} images")

        def haze(x: ImageF32, i: int) -> ImageF32:
            d = depth if depth is None or depth.ndim == 2 else depth[i]
            return add_haze(x, airlight, beta, d)

        return per_image(batch, haze)


# ---------------------------------------------------------------- motion blur


@register_degradation
class MotionBlur(Degradation):
    """Linear motion blur (AgenticIR ``add_motion_blur``, from imagecorruptions).

    The kernel is :func:`motion_kernel`; every channel is correlated with it, borders
    reflected (OpenCV ``BORDER_REFLECT``).

    Parameters:
        severity: 0, 1 or 2 -> (radius, sigma) = (10, 3), (15, 5), (15, 8).
        angle: Direction in degrees, U[-90, 90).
    """

    info = DegradationInfo(
        name="motion_blur",
        task="motion_deblurring",
        group="imaging",
        physical_order=3,
        description="severity {0,1,2} -> (radius, sigma) (10,3), (15,5), (15,8); angle U(-90,90)",
    )

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw the severity and the direction."""
        return {"severity": float(rng.integers(0, 3)), "angle": rng.uniform(-90.0, 90.0)}

    def severity(self, params: Mapping[str, float]) -> float:
        """Kernel level ``severity / 2`` (levels 0, 1, 2 of :data:`MOTION_SEVERITIES`)."""
        return param(params, "severity", self.info.name) / 2.0

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Blur every channel with the motion kernel."""
        radius, sigma = _pick(MOTION_SEVERITIES, params, self.info.name)
        angle = param(params, "angle", self.info.name)
        kernel = motion_kernel(radius, sigma, angle, half=2 * radius + 1)
        return per_image(batch, lambda x, _: filter_hwc(x, kernel, cv2.BORDER_REFLECT))


def _pick(
    table: tuple[tuple[int, float], ...], params: Mapping[str, float], owner: str
) -> tuple[int, float]:
    severity = round(param(params, "severity", owner))
    if not 0 <= severity < len(table):
        raise InvalidParameterError(f"{owner}: severity must be 0, 1 or 2, got {severity}")
    return table[severity]


# ---------------------------------------------------------------- defocus blur


@register_degradation
class DefocusBlur(Degradation):
    """Defocus (disk) blur (AgenticIR ``add_defocus_blur``, from imagecorruptions).

    Every channel is correlated with :func:`disk_kernel`, borders mirrored (OpenCV's default
    ``BORDER_REFLECT_101``, as in the original).

    Parameters:
        severity: 0, 1 or 2 -> (radius, alias sigma) = (3, 0.1), (4, 0.5), (6, 0.5).
    """

    info = DegradationInfo(
        name="defocus_blur",
        task="defocus_deblurring",
        group="imaging",
        physical_order=4,
        description="disk blur, severity {0,1,2} -> (radius, alias sigma) (3,.1), (4,.5), (6,.5)",
    )

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw the severity."""
        return {"severity": float(rng.integers(0, 3))}

    def severity(self, params: Mapping[str, float]) -> float:
        """Disk level ``severity / 2`` (levels 0, 1, 2 of :data:`DEFOCUS_SEVERITIES`)."""
        return param(params, "severity", self.info.name) / 2.0

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Blur every channel with the disk kernel."""
        radius, alias_sigma = _pick(DEFOCUS_SEVERITIES, params, self.info.name)
        kernel = disk_kernel(radius, alias_sigma, dtype=np.float32)
        return per_image(batch, lambda x, _: filter_hwc(x, kernel, cv2.BORDER_REFLECT_101))


# ---------------------------------------------------------------- rain


@register_degradation
class Rain(Degradation):
    """Rain streaks added to every channel (AgenticIR ``add_rain``, from MiOIR).

    ``y = clip(x + R)`` with ``R`` from :func:`rain_layer` (white streaks, peak 1).

    Parameters:
        value: Streak density, integer in [50, 100).
        length: Streak length in pixels, integer in [20, 40).
        angle: Streak angle in degrees, integer in [-30, 30).
        seed: Integer seed of the streak positions.
    """

    info = DegradationInfo(
        name="rain",
        task="deraining",
        group="scene",
        physical_order=1,
        description="streaks: density U{50..99}, length U{20..39}, angle U{-30..29} degrees",
    )

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw the streak length, angle and density, then the position seed."""
        return {
            "length": float(rng.integers(20, 40)),
            "angle": float(rng.integers(-30, 30)),
            "value": float(rng.integers(50, 100)),
            "seed": draw_seed(rng),
        }

    def severity(self, params: Mapping[str, float]) -> float:
        """Streak density ``(value - 50) / 49``."""
        return (param(params, "value", self.info.name) - 50.0) / 49.0

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Add an independent rain layer to every image of the batch."""
        density = param(params, "value", self.info.name)
        length = round(param(params, "length", self.info.name))
        angle = param(params, "angle", self.info.name)
        seed = param(params, "seed", self.info.name)
        if length < 2:
            raise InvalidParameterError(f"rain: length must be at least 2 pixels, got {length}")

        def rain(x: ImageF32, i: int) -> ImageF32:
            layer = rain_layer(x.shape[:2], density, length, angle, image_rng(seed, i))
            return np.clip(x + layer[..., None], 0.0, 1.0)

        return per_image(batch, rain)
