"""Deraining tools: an across-streak median and morphological openings."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tir_env.dsp import pad_symmetric, per_sample, rank_select, window_max
from tir_env.images import channel_min
from tir_env.tools.base import ToolInfo, register_tool, spec
from tir_env.tools.classical._common import (
    PerImageTool,
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


#: A channel at or above this level counts as clipped by the streak added on it.
FULL_SCALE = 254.5 / 255.0


def _rain_layer(image: ImageF32, background: np.ndarray, threshold: float) -> np.ndarray:
    """Achromatic positive residual ``I - B`` above ``threshold`` (the rain estimate).

    Synthetic and real rain adds the same light to R, G and B, so the residual's minimum
    over channels keeps rain and drops coloured texture; a soft threshold drops noise.

    The sum is clipped at 1, so a channel that ends at full scale only says ``L >= 1 - B``
    of the rain ``L``: a minimum over all channels would take that bound for ``L`` and leave
    most of a streak on a bright or saturated colour. So the minimum runs over the channels
    below :data:`FULL_SCALE` (``min_c(I - B)`` where none is clipped), and over all three
    where all three are clipped.
    """
    residual = image - background
    clipped = image >= FULL_SCALE
    unclipped = np.where(clipped, np.inf, residual).min(axis=-1)
    layer = np.where(clipped.all(axis=-1), channel_min(residual), unclipped)
    return np.maximum(layer - threshold, 0.0)[..., None].astype(image.dtype)


def _remove_rain(image: ImageF32, rain: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``image - rain``, except that a clipped channel under rain takes the background.

    Subtracting ``L`` from a channel clipped at 1 leaves ``1 - L``, darker than what lay
    under the streak; the background estimate is the better guess there.
    """
    covered = (image >= FULL_SCALE) & (rain > 0)
    return np.where(covered, background, image - rain)


def _line_element(length: int, angle: float) -> np.ndarray:
    """Flat line structuring element of ``length`` pixels at ``angle`` degrees."""
    half = length // 2
    element = np.zeros((2 * half + 1, 2 * half + 1), np.uint8)
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    steps = np.linspace(-half, half, 4 * half + 1)
    # np.rint rounds halves to even, as round() did point by point (a fifth of the time of
    # derain_opening at 64 px)
    element[half + np.rint(steps * dy).astype(int), half + np.rint(steps * dx).astype(int)] = 1
    return element


# ------------------------------------------------- batched torch versions (float32 NCHW)


def dominant_orientation_torch(y: torch.Tensor) -> list[float]:
    """:func:`dominant_orientation` of every grey image of an N x 1 x H x W batch.

    The smallest eigenvector of the 2 x 2 structure tensor in closed form: the largest lies
    at ``phi = atan2(2 b, a - c) / 2``, the returned direction is ``phi + 90`` degrees,
    folded into [-90, 90). Where ``b = 0`` and ``a = c`` every direction is an eigenvector;
    LAPACK's answer there (the x axis, angle 0) is kept.
    """
    if min(y.shape[-2:]) < 3:
        return [0.0] * y.shape[0]
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel, sobel.T])[:, None].to(y)  # d/dx, d/dy (correlation)
    grad = F.conv2d(y.float(), kernels.float()).to(torch.float64)  # valid: the [1:-1] crop
    gx, gy = grad[:, 0].flatten(1), grad[:, 1].flatten(1)
    a, b, c = (gx * gx).sum(1), (gx * gy).sum(1), (gy * gy).sum(1)
    phi = torch.rad2deg(torch.atan2(2 * b, a - c)) / 2
    angle = torch.remainder(phi + 180.0, 180.0) - 90.0
    angle = torch.where((b == 0) & (a == c), torch.zeros_like(angle), angle)
    return angle.tolist()


def _line_stack(
    padded: torch.Tensor, offsets: list[np.ndarray], pad: int, size: Sequence[int]
) -> torch.Tensor:
    """Every image's pixels shifted by each of its offsets: N x L x C x H x W.

    ``offsets[i]`` is an L_i x 2 array of (row, column) shifts of image ``i``; shorter
    lists are filled with the shift (0, 0), and ``L = max L_i``.
    """
    n, c, hp, wp = padded.shape
    h, w = size
    length = max(len(o) for o in offsets)
    shifts = np.zeros((n, length, 2), np.int64)
    for i, o in enumerate(offsets):
        shifts[i, : len(o)] = o
    shift = torch.from_numpy(shifts[..., 0] * wp + shifts[..., 1]).to(padded.device)  # N x L
    rows = torch.arange(pad, pad + h, device=padded.device)[:, None] * wp
    base = (rows + torch.arange(pad, pad + w, device=padded.device)[None, :]).flatten()
    index = (shift[..., None] + base).reshape(n, 1, length * h * w).expand(-1, c, -1)
    out = padded.flatten(2).gather(2, index).reshape(n, c, length, h, w)
    return out.transpose(1, 2)


def _element_offsets(element: np.ndarray) -> np.ndarray:
    """(row, column) offsets of a structuring element's pixels from its centre."""
    rows, cols = np.nonzero(element)
    return np.stack([rows - element.shape[0] // 2, cols - element.shape[1] // 2], axis=1)


def _shifted(batch: torch.Tensor, offsets: list[np.ndarray]) -> torch.Tensor | list[torch.Tensor]:
    """Each image shifted by each of its offsets, borders mirrored (``BORDER_REFLECT``).

    One element for the whole batch (one image, or images sharing a streak direction):
    a list of L slices of the padded batch. Otherwise an N x L x C x H x W gather
    (:func:`_line_stack`), images with fewer offsets repeating the shift (0, 0).
    """
    pad = max(int(np.abs(o).max()) for o in offsets)
    padded = pad_symmetric(batch, pad, pad)
    h, w = batch.shape[-2:]
    if all(np.array_equal(o, offsets[0]) for o in offsets[1:]):
        return [padded[..., pad + r : pad + r + h, pad + c : pad + c + w] for r, c in offsets[0]]
    return _line_stack(padded, offsets, pad, (h, w))


def _line_min_max(batch: torch.Tensor, offsets: list[np.ndarray], largest: bool) -> torch.Tensor:
    """Flat erosion (min) or dilation (max) over per-image elements, ``BORDER_REFLECT``."""
    values = _shifted(batch, offsets)
    if isinstance(values, list):
        return functools.reduce(torch.maximum if largest else torch.minimum, values)
    return values.amax(dim=1) if largest else values.amin(dim=1)


def _by_element(
    fn: Callable[[torch.Tensor, list[np.ndarray]], torch.Tensor],
    batch: torch.Tensor,
    offsets: list[np.ndarray],
    group: bool | None,
) -> torch.Tensor:
    """``fn`` once per distinct element (``group``) or once on the whole batch.

    ``group=None`` groups on a CPU, where slices of images sharing an element cost no
    more per image than one gather for all (measured), and gathers on other devices,
    where one kernel launch for the batch beats a loop.
    """
    if group is None:
        group = batch.device.type == "cpu"
    keys = [o.tobytes() for o in offsets]
    if not group or len(set(keys)) == 1:
        return fn(batch, offsets)
    out = torch.empty_like(batch)
    for key in dict.fromkeys(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        out[idx] = fn(batch[idx], [offsets[i] for i in idx])
    return out


def _line_open(
    batch: torch.Tensor, offsets: list[np.ndarray], group: bool | None = None
) -> torch.Tensor:
    """``cv2.morphologyEx(MORPH_OPEN, borderType=BORDER_REFLECT)`` with per-image elements."""

    def opening(x: torch.Tensor, o: list[np.ndarray]) -> torch.Tensor:
        return _line_min_max(_line_min_max(x, o, False), o, True)

    return _by_element(opening, batch, offsets, group)


def _line_median_torch(
    batch: torch.Tensor, offsets: list[np.ndarray], group: bool | None = None
) -> torch.Tensor:
    """:func:`_line_median` with per-image elements (SciPy's rank ``L // 2`` of L values).

    Gathered together, images with shorter elements get ``-inf`` and ``+inf`` fillers in
    numbers that put their own rank-``L_i // 2`` value at the common rank ``L // 2``.
    """
    return _by_element(_line_median_all, batch, offsets, group)


def _line_median_all(batch: torch.Tensor, offsets: list[np.ndarray]) -> torch.Tensor:
    """:func:`_line_median_torch` of the whole batch at once."""
    values = _shifted(batch, offsets)
    if isinstance(values, list):
        return rank_select(values, len(values) // 2)
    total = values.shape[1]
    slot = torch.arange(total, device=batch.device)
    for i, o in enumerate(offsets):
        if len(o) < total:
            below = total // 2 - len(o) // 2  # fillers below the median, the rest above
            fill = torch.where(slot < len(o) + below, -math.inf, math.inf).to(batch)
            values[i, len(o) :] = fill[len(o) :, None, None, None]
    return rank_select(values.unbind(1), total // 2)


def _open3_torch(batch: torch.Tensor) -> torch.Tensor:
    """``cv2.morphologyEx(MORPH_OPEN, ones((3, 3)))`` with its default border (outside ignored)."""
    eroded = -window_max(F.pad(-batch, (1, 1, 1, 1), value=-math.inf), 3, 3)
    return window_max(F.pad(eroded, (1, 1, 1, 1), value=-math.inf), 3, 3)


def _median3_u8_torch(batch: torch.Tensor) -> torch.Tensor:
    """``cv2.medianBlur(to_u8(x), 3)`` (replicated borders) as float grey levels 0-255."""
    u8 = torch.clamp(batch * 255.0 + 0.5, 0, 255).floor()
    padded = F.pad(u8, (1, 1, 1, 1), mode="replicate")
    h, w = batch.shape[-2:]
    shifted = [padded[..., r : r + h, c : c + w] for r in range(3) for c in range(3)]
    return rank_select(shifted, 4)


def _rain_layer_torch(
    batch: torch.Tensor, background: torch.Tensor, threshold: torch.Tensor
) -> torch.Tensor:
    """:func:`_rain_layer` of a batch: N x 1 x H x W."""
    residual = batch - background
    clipped = batch >= FULL_SCALE
    unclipped = torch.where(clipped, math.inf, residual).amin(dim=1, keepdim=True)
    every = clipped.all(dim=1, keepdim=True)
    layer = torch.where(every, residual.amin(dim=1, keepdim=True), unclipped)
    return (layer - threshold).clamp_min(0.0)


def _remove_rain_torch(
    batch: torch.Tensor, rain: torch.Tensor, background: torch.Tensor
) -> torch.Tensor:
    """:func:`_remove_rain` of a batch (``rain``: N x 1 x H x W)."""
    covered = (batch >= FULL_SCALE) & (rain > 0)
    return torch.where(covered, background, batch - rain)


def _per_image(value: float | torch.Tensor, n: int) -> list[float]:
    """A scalar or per-image ``(N,)`` parameter as N Python floats."""
    return torch.as_tensor(value, dtype=torch.float64).flatten().expand(n).tolist()


@register_tool
class MedianDerain(PerImageTool):
    """Rain-streak removal by an across-streak median and an achromatic residual."""

    batch_params = frozenset({"width", "threshold"})
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:meth:`restore` on the whole batch in torch (parameters may be per-image tensors).

        Each image has its own streak direction, so its own line; the medians over all
        lines are one gather and one ``kthvalue`` for the batch.
        """
        n, _, h, w = batch.shape
        widths = [fit_odd(int(v), h, w) for v in _per_image(params["width"], n)]
        todo = [i for i, width in enumerate(widths) if width >= 3]
        out = batch.clone()
        if not todo:
            return out
        x = batch[todo]
        coarse = _median3_u8_torch(x).to(torch.float64) / 255.0
        residual = (x.to(torch.float64) - coarse).amin(dim=1, keepdim=True).clamp_min(0.0)
        angles = dominant_orientation_torch(residual.float())
        offsets = [
            _element_offsets(_line_element(widths[i], a + 90.0))
            for i, a in zip(todo, angles, strict=True)
        ]
        background = _line_median_torch(x, offsets)
        threshold = per_sample(params["threshold"], batch)
        threshold = threshold[todo] if threshold.shape[0] > 1 else threshold
        out[todo] = _remove_rain_torch(x, _rain_layer_torch(x, background, threshold), background)
        return out

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Estimate the streak direction, median-filter across it, subtract the rain layer.

        The background is a grey-level median over a line perpendicular to the streaks
        (thin streaks vanish, structures along the streaks survive); the rain layer is
        :func:`_rain_layer` of the image against that background, and a channel
        clipped under a streak takes the background (:func:`_remove_rain`), as in
        ``derain_opening``.
        """
        width = fit_odd(int(params["width"]), *image.shape[:2])
        if width < 3:
            return image
        coarse = cv2.medianBlur(to_u8(image), 3 if min(image.shape[:2]) >= 3 else 1)
        angle = dominant_orientation(channel_min(image - coarse / 255.0).clip(0, None))
        element = _line_element(width, angle + 90.0)
        background = _line_median(image, element)
        rain = _rain_layer(image, background, params["threshold"])
        return _remove_rain(image, rain, background)


def _line_median(image: ImageF32, element: np.ndarray) -> np.ndarray:
    """Median of every pixel's neighbours on ``element`` (SciPy's ``median_filter`` footprint)."""
    from scipy.ndimage import median_filter

    return median_filter(image, footprint=element[..., None].astype(bool), mode="reflect")


@register_tool
class OpeningDerain(PerImageTool):
    """Rain-streak removal by grey-scale openings across and along the streaks."""

    cpu_reference = True  # its OpenCV reference is faster than the port on a CPU
    batch_params = frozenset({"width", "length", "threshold"})
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

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """:meth:`restore` on the whole batch in torch (parameters may be per-image tensors).

        Each image has its own streak direction, so its own lines; every opening is one
        gather and one min or max for the batch.
        """
        n, _, h, w = batch.shape
        widths = [fit_odd(int(v), h, w) for v in _per_image(params["width"], n)]
        lengths = [fit_odd(int(v), h, w) for v in _per_image(params["length"], n)]
        todo = [i for i, width in enumerate(widths) if width >= 3]
        out = batch.clone()
        if not todo:
            return out
        x = batch[todo]
        tophat = (x - _open3_torch(x)).amin(dim=1, keepdim=True).clamp_min(0.0)
        angles = dominant_orientation_torch(tophat)
        pairs = list(zip(todo, angles, strict=True))
        across = [_element_offsets(_line_element(widths[i], a + 90.0)) for i, a in pairs]
        along = [_element_offsets(_line_element(lengths[i], a)) for i, a in pairs]
        threshold = per_sample(params["threshold"], batch)
        threshold = threshold[todo] if threshold.shape[0] > 1 else threshold
        opened = _line_open(x, across)
        rain = _line_open(_rain_layer_torch(x, opened, threshold), along)
        out[todo] = _remove_rain_torch(x, rain, opened)
        return out

    def restore(self, image: ImageF32, params: Mapping[str, float]) -> np.ndarray:
        """Top-hat across the streaks, then an opening along them, subtracted.

        An opening (erosion then dilation) with a line perpendicular to the streaks drops
        bright structures narrower than the line; the achromatic top-hat ``I - open(I)``
        (:func:`_rain_layer`) is opened again with a line *along* the streaks, so only
        long thin bright lines - the streaks - are removed, not short texture. A channel
        clipped at full scale does not bound the rain, and under a streak it takes the opened
        background (:func:`_rain_layer`, :func:`_remove_rain`).
        """
        width = fit_odd(int(params["width"]), *image.shape[:2])
        if width < 3:
            return image
        tophat = image - cv2.morphologyEx(image, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        angle = dominant_orientation(channel_min(tophat).clip(0, None))
        across = _line_element(width, angle + 90.0)
        opened = cv2.morphologyEx(image, cv2.MORPH_OPEN, across, borderType=cv2.BORDER_REFLECT)
        layer = _rain_layer(image, opened, params["threshold"])
        rain = np.ascontiguousarray(layer[..., 0])
        length = fit_odd(int(params["length"]), *image.shape[:2])
        along = _line_element(length, angle)
        rain = cv2.morphologyEx(rain, cv2.MORPH_OPEN, along, borderType=cv2.BORDER_REFLECT)
        return _remove_rain(image, rain[..., None], opened)
