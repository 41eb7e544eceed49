"""How an episode of :class:`~tir_env.env.TIREnv` starts: reset options, image and degradations.

:func:`sample_start` draws the clean patch and its degradation combination from the env's
generator (the env docstring's *Starting State*); the option checks refuse what would
otherwise silently mean "draw at random".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tir_env import data
from tir_env.config import EnvConfig
from tir_env.degradations import degrade, replay
from tir_env.degradations.depth import DepthProvider
from tir_env.degradations.protocols import RLRESTORE_TYPES, SEVERITIES
from tir_env.degradations.rlrestore import sample_severity
from tir_env.errors import InvalidOptionError, TIRError
from tir_env.images import check_u8, resize, round_to_8_bits, u8_to_batch
from tir_env.types import ImageU8


@dataclass(frozen=True)
class EpisodeStart:
    """What a sampled episode starts from.

    Attributes:
        image_id: The photo the patch was cut from.
        clean: The clean patch, float32 1x3xHxW.
        input: The degraded patch, quantised to uint8 levels (as a saved file would be).
        applied: The degradations applied, in order, with their parameters.
        depth: Where the haze depth came from (``None`` when the combination has no haze).
    """

    image_id: str
    clean: torch.Tensor
    input: torch.Tensor
    applied: list[tuple[str, dict[str, float]]]
    depth: str | None


@dataclass(frozen=True)
class GivenStart:
    """What an episode on a given image starts from (``reset(options={"image": ...})``).

    Attributes:
        image_id: ``options["image_id"]``, or ``"given"``.
        input: The given image, float32 1x3xHxW.
        clean: The given ``reference``, if any.
        photo: The whole photo the image was cut from (``options["photo"]``), if given.
        applied: The degradations ``options`` names (labels, no parameters).
    """

    image_id: str
    input: torch.Tensor
    clean: torch.Tensor | None
    photo: ImageU8 | None
    applied: list[tuple[str, dict[str, float]]]


def given_start(options: Mapping[str, Any], reward: str, needs_reference: bool) -> GivenStart:
    """The episode ``options`` give: their image, reference, photo and degradation labels.

    Raises:
        ImageError: an image, reference or photo that is not uint8 HxWx3.
        TIRError: no reference, and the env's ``reward`` needs one.
    """
    reference, photo = options.get("reference"), options.get("photo")
    start = GivenStart(
        image_id=option_image_id(options) or "given",
        input=u8_to_batch(check_u8(options["image"], "options['image']")),
        clean=None if reference is None else u8_to_batch(check_u8(reference, "reference")),
        photo=None if photo is None else check_u8(photo, "options['photo']"),
        # Given pairs may name their degradations (published inputs): labels, no parameters.
        applied=[(str(name), {}) for name in options.get("degradations") or ()],
    )
    if start.clean is None and needs_reference:
        raise TIRError(
            f"reward {reward!r} needs a reference image; pass options['reference'] or use a "
            "no-reference reward"
        )
    return start


def photo_size(
    photo: ImageU8, input_shape: Sequence[int], target: tuple[int, int] | None
) -> tuple[int, int] | None:
    """The size to perceive ``photo`` at: its own times the input's restoration scale.

    ``target`` is the size the input (of ``input_shape``, ...xHxW) should have once
    restored; ``None`` (no reference) leaves the photo at its own size.
    """
    if target is None:
        return None
    h, w = input_shape[-2:]
    return round(photo.shape[0] * target[0] / h), round(photo.shape[1] * target[1] / w)


def sample_start(
    config: EnvConfig,
    source: data.ImageSource,
    depth_source: DepthProvider,
    options: Mapping[str, Any],
    rng: np.random.Generator,
) -> EpisodeStart:
    """Draw (or take from ``options``) the photo, the patch and the degradation combination.

    Every random draw comes from ``rng`` (the env's ``np_random``), in a fixed order: photo,
    patch window, combination, then the degradations' own parameters.

    Raises:
        InvalidOptionError: a malformed ``image_id`` or ``degradations`` option, or a
            ``photo`` without the ``image`` cut from it.
    """
    if "photo" in options:
        raise InvalidOptionError("options['photo'] goes with options['image'], the cut of it")
    ids = source.ids
    image_id = option_image_id(options)
    image_id = image_id if image_id is not None else ids[int(rng.integers(len(ids)))]
    photo = source.load(image_id)
    size = config.patch_size
    window = (
        data.whole_window(photo.shape)
        if size is None
        else data.patch_window(photo.shape, size, rng)
    )
    clean = u8_to_batch(data.crop(photo, window))
    combos = config.combo_list
    combo = option_degradations(options)
    if combo is None:
        combo = tuple(combos[int(rng.integers(len(combos)))])
    depth, depth_label = None, None
    if "haze" in combo:  # the whole photo's depth, cut with the patch's window
        whole, depth_label = depth_source.depth(image_id, photo)
        depth = None if whole is None else data.crop(whole, window)
    severity = SEVERITIES.get(config.combos) if isinstance(config.combos, str) else None
    if severity is not None and tuple(combo) == RLRESTORE_TYPES:
        applied = sample_severity(severity, rng)  # type: ignore[arg-type]
        degraded = replay(clean, applied)
    else:
        order = config.degradation_order
        degraded, applied = degrade(clean, tuple(combo), rng, order, depth=depth)
    degraded_u8 = round_to_8_bits(degraded.detach().float())  # quantised, as a file would be
    return EpisodeStart(image_id, clean, degraded_u8, applied, depth_label)


def option_image_id(options: Mapping[str, Any]) -> str | None:
    """``options["image_id"]`` checked: absent -> ``None``; else a non-empty string.

    Raises:
        InvalidOptionError: not a string, or empty (which would otherwise mean "random").
    """
    if "image_id" not in options or options["image_id"] is None:
        return None
    value = options["image_id"]
    if not isinstance(value, str) or not value.strip():
        raise InvalidOptionError(
            f"options['image_id'] must be a non-empty string, got {value!r}; omit the key "
            "(or pass None) to draw a random image"
        )
    return value


def option_degradations(options: Mapping[str, Any]) -> tuple[str, ...] | None:
    """``options["degradations"]`` checked: absent -> ``None``; one name -> a 1-tuple.

    A single string is one degradation name (never read as its characters).

    Raises:
        InvalidOptionError: empty, not a string or sequence of strings.
    """
    if "degradations" not in options or options["degradations"] is None:
        return None
    value = options["degradations"]
    names = (value,) if isinstance(value, str) else value
    if (
        not isinstance(names, Sequence)
        or not names
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise InvalidOptionError(
            "options['degradations'] must be a degradation name or a non-empty tuple of "
            f"names (e.g. ('noise', 'jpeg')), got {value!r}; omit the key (or pass None) to "
            "draw a combination"
        )
    return tuple(names)


def restored_size(clean: torch.Tensor | None, degraded: torch.Tensor) -> tuple[int, int]:
    """(H, W) a working image may reach: the reference's size, else 4x the input's."""
    ref, scale = (clean, 1) if clean is not None else (degraded, 4)
    return int(ref.shape[-2]) * scale, int(ref.shape[-1]) * scale


def bounded(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``image`` downscaled to ``size`` where it is larger (its :func:`restored_size`).

    Super-resolution on an image that is already full size would grow it without bound;
    the working image never exceeds the reference size (4x the input without one).
    """
    if image.shape[-2] > size[0] or image.shape[-1] > size[1]:
        return resize(image, size)
    return image
