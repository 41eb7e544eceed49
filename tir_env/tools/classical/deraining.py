"""Deraining tools: an across-streak median and morphological openings."""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np

from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
    channel_min,
    fit_odd,
    to_u8,
)
from tir_env.types import ImageF32, Param


def dominant_orientation(y: np.ndarray) -> float:
    """Direction along which a grey image varies least, in degrees in [-90, 90).

    The eigenvector of the smallest eigenvalue of the gradient structure tensor
    ``sum(grad grad^T)``: the axis of streaks or of a blur. Same angle convention as
    :func:`motion_kernel`.
    """
    y = y.astype(np.float32)
    if min(y.shape) < 3:
        return 0.0
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)[1:-1, 1:-1].astype(np.float64)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)[1:-1, 1:-1].astype(np.float64)
    tensor = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    _, vectors = np.linalg.eigh(tensor)
    ux, uy = vectors[:, 0]  # smallest eigenvalue first; uy points down
    return (math.degrees(math.atan2(uy, ux)) + 90.0) % 180.0 - 90.0


def _rain_layer(image: ImageF32, background: np.ndarray, threshold: float) -> np.ndarray:
    """Achromatic positive residual ``min_c(I - B)`` above ``threshold`` (the rain estimate).

    Synthetic and real rain adds the same light to R, G and B, so the residual's minimum
    over channels keeps rain and drops coloured texture; a soft threshold drops noise.
    """
    residual = channel_min(image - background)
    return np.maximum(residual - threshold, 0.0)[..., None]


def _line_element(length: int, angle: float) -> np.ndarray:
    """Flat line structuring element of ``length`` pixels at ``angle`` degrees."""
    half = length // 2
    element = np.zeros((2 * half + 1, 2 * half + 1), np.uint8)
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    for s in np.linspace(-half, half, 4 * half + 1):
        element[half + round(s * dy), half + round(s * dx)] = 1
    return element


@register_tool
class MedianDerain(PerImageTool):
    """Rain-streak removal by an across-streak median and an achromatic residual."""

    info = ToolInfo(
        name="derain_median",
        task="deraining",
        params=spec(
            width=Param(3, 21, 11, "length of the median across the streaks", integer=True),
            threshold=Param(0.0, 0.2, 0.01, "residual brightness ignored as texture or noise"),
        ),
        cost_hint=7.0,
        description="Median across the estimated streak direction removes bright grey streaks.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Estimate the streak direction, median-filter across it, subtract the rain layer.

        The background is a grey-level median over a line perpendicular to the streaks
        (thin streaks vanish, structures along the streaks survive); the rain layer is
        :func:`_rain_layer` of the image against that background.
        """
        width = fit_odd(int(params["width"]), *image.shape[:2])
        if width < 3:
            return image
        coarse = cv2.medianBlur(to_u8(image), 3 if min(image.shape[:2]) >= 3 else 1)
        angle = dominant_orientation(channel_min(image - coarse / 255.0).clip(0, None))
        element = _line_element(width, angle + 90.0)
        background = _line_median(image, element)
        return image - _rain_layer(image, background, params["threshold"])


def _line_median(image: ImageF32, element: np.ndarray) -> np.ndarray:
    """Median of every pixel's neighbours on ``element`` (SciPy's ``median_filter`` footprint)."""
    from scipy.ndimage import median_filter

    return median_filter(image, footprint=element[..., None].astype(bool), mode="reflect")


@register_tool
class OpeningDerain(PerImageTool):
    """Rain-streak removal by grey-scale openings across and along the streaks."""

    info = ToolInfo(
        name="derain_opening",
        preferred=True,  # the fixed and oracle agents' tool for its task
        task="deraining",
        params=spec(
            width=Param(3, 15, 9, "length of the line opening across the streaks", integer=True),
            length=Param(1, 31, 5, "shortest streak kept in the rain layer", integer=True),
            threshold=Param(0.0, 0.2, 0.0, "residual brightness ignored as texture or noise"),
        ),
        cost_hint=1.0,
        description="Morphological top-hat across the estimated streak direction, kept if long.",
    )

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Top-hat across the streaks, then an opening along them, subtracted.

        An opening (erosion then dilation) with a line perpendicular to the streaks drops
        bright structures narrower than the line; the achromatic top-hat ``I - open(I)``
        (:func:`_rain_layer`) is opened again with a line *along* the streaks, so only
        long thin bright lines - the streaks - are removed, not short texture.
        """
        width = fit_odd(int(params["width"]), *image.shape[:2])
        if width < 3:
            return image
        tophat = image - cv2.morphologyEx(image, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        angle = dominant_orientation(channel_min(tophat).clip(0, None))
        across = _line_element(width, angle + 90.0)
        opened = cv2.morphologyEx(image, cv2.MORPH_OPEN, across, borderType=cv2.BORDER_REFLECT)
        rain = np.ascontiguousarray(_rain_layer(image, opened, params["threshold"])[..., 0])
        length = fit_odd(int(params["length"]), *image.shape[:2])
        along = _line_element(length, angle)
        rain = cv2.morphologyEx(rain, cv2.MORPH_OPEN, along, borderType=cv2.BORDER_REFLECT)
        return image - rain[..., None]
