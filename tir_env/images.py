"""The only image conversions in TIR, plus the one image reader, saving, tiling and hashing.

Two layouts exist:

* **observation**: ``uint8`` RGB, HWC, values in [0, 255];
* **working**: ``float32`` RGB, NCHW (a batch) in [0, 1], used by tools, degradations and
  metrics. ``hwc_float`` helpers give the numpy HWC float32 view that OpenCV-style code needs.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from tir_env.errors import (
    ImageError,
    ImageReadError,
    ImageTooLargeError,
    ImageTooSmallError,
    OutputExistsError,
    OutputPathError,
)
from tir_env.files import atomic_path
from tir_env.types import ImageF32, ImageU8

if TYPE_CHECKING:
    from tir_env.photo_metadata import PhotoMetadata

logger = logging.getLogger(__name__)

#: Suffixes every entry point reads (``tir restore``, ``--images``, ``images=DIR``, the corpus).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: Suffixes :func:`save_image` writes. GIF is read-only: it holds 256 colours, so writing a
#: restored photo as GIF would quantise it.
OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: How :func:`save_image` writes each format where PIL's defaults do not suit a restored photo.
#: PNG at zlib level 1, OpenCV's default: the same pixels, 8% larger than PIL's level 6 and
#: five times faster (6.3 s -> 1.3 s for a 20 MP photo, most of `tir restore`'s wall time).
#: JPEG and WebP at quality 95, JPEG without chroma subsampling: PIL's 75 (and 4:2:0) would
#: add back the blocks and colour bleeding a restoration removed.
SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    ".png": {"compress_level": 1},
    ".jpg": {"quality": 95, "subsampling": 0},
    ".jpeg": {"quality": 95, "subsampling": 0},
    ".webp": {"quality": 95},
}
#: Most pixels :func:`load_image` accepts (about 11000 x 11000, above every camera up to
#: 100 MP). Checked on the header, before any pixel is decoded, so a decompression bomb is
#: refused without allocating it. PIL's own ``Image.MAX_IMAGE_PIXELS`` is left as it is; its
#: warning is silenced (this limit replaces it) and its error is reported as
#: :class:`ImageTooLargeError`.
MAX_PIXELS = 120_000_000
#: Smallest side :func:`load_image` accepts: one 8x8 JPEG block, the smallest neighbourhood the
#: tools work on. Smaller images (1x1, 3x3, a 5000x2 strip) would be restored as a constant.
MIN_SIDE = 8
#: 16-bit and 32-bit single-channel modes PIL decodes without converting to 8 bits.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def check_u8(image: np.ndarray, what: str = "image") -> ImageU8:
    """Validate an observation-format image (uint8, HxWx3) and return it.

    Raises:
        ImageError: wrong dtype, number of dimensions or channels.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ImageError(f"{what} must be a uint8 numpy array, got {_describe(image)}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ImageError(f"{what} must be HxWx3 RGB, got shape {image.shape}")
    return image


def check_batch(batch: torch.Tensor, what: str = "batch") -> torch.Tensor:
    """Validate a working-format batch (float32, Nx3xHxW, finite, in [0, 1]).

    Raises:
        ImageError: wrong type, dtype, shape, range or non-finite values.
    """
    if not isinstance(batch, torch.Tensor) or batch.dtype != torch.float32:
        raise ImageError(f"{what} must be a float32 torch.Tensor, got {_describe(batch)}")
    if batch.ndim != 4 or batch.shape[1] != 3 or batch.shape[0] < 1:
        raise ImageError(f"{what} must be Nx3xHxW, got shape {tuple(batch.shape)}")
    if not batch.numel():
        return batch
    # One pass: min and max propagate NaN and hold any Inf (three passes before, on every
    # tool and metric call of a step)
    lowest, highest = (float(v) for v in torch.aminmax(batch))
    if not (math.isfinite(lowest) and math.isfinite(highest)):
        raise ImageError(f"{what} contains NaN or Inf")
    if lowest < 0 or highest > 1:
        raise ImageError(f"{what} must lie in [0, 1], got [{lowest:.3g}, {highest:.3g}]")
    return batch


def u8_to_batch(image: ImageU8) -> torch.Tensor:
    """uint8 HWC [0, 255] -> float32 1x3xHxW [0, 1]."""
    check_u8(image)
    # Planes first in uint8 (a writable C-order copy, as torch wants), then torch's
    # conversion: the same floats as dividing a float32 copy by 255 in numpy, six times
    # faster on a 20 MP photo (numpy's transposed float copy dominated `tir restore`).
    planes = image.transpose(2, 0, 1).copy()
    return torch.from_numpy(planes).to(torch.float32).div_(255.0).unsqueeze(0)


def channel_min(image: np.ndarray) -> np.ndarray:
    """The darkest of each pixel's channels, H x W (an HxWxC array).

    ``image.min(axis=-1)`` reduces along the short, innermost axis, twenty times slower than
    comparing the channel planes elementwise (0.38 s against 0.02 s on a 20 MP photo).
    """
    return functools.reduce(np.minimum, (image[..., c] for c in range(image.shape[-1])))


def channel_max(image: np.ndarray) -> np.ndarray:
    """The brightest of each pixel's channels, H x W (HSV's V for RGB; see :func:`channel_min`)."""
    return functools.reduce(np.maximum, (image[..., c] for c in range(image.shape[-1])))


def batch_to_u8(batch: torch.Tensor) -> ImageU8:
    """float32 1x3xHxW (or 3xHxW) [0, 1] -> uint8 HWC, rounding to nearest."""
    if batch.ndim == 4:
        if batch.shape[0] != 1:
            raise ImageError(f"expected a batch of one image, got {batch.shape[0]}")
        batch = batch[0]
    array = batch.detach().float().clamp(0, 1).mul_(255).round_().to(torch.uint8).cpu().numpy()
    return np.ascontiguousarray(array.transpose(1, 2, 0))


def round_to_8_bits(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` (any size) on the 1/255 grid, clamped to [0, 1]: what a saved file holds.

    The same values as :func:`u8_to_batch` of :func:`batch_to_u8`, for many images at once
    (the env rounds an episode's degraded input so, and studies of the tools should too).
    """
    return batch.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def batch_to_hwc(batch: torch.Tensor) -> list[ImageF32]:
    """float32 Nx3xHxW -> list of N float32 HWC numpy arrays (for OpenCV-style code)."""
    array = batch.detach().float().cpu().numpy().transpose(0, 2, 3, 1)
    return [np.ascontiguousarray(a) for a in array]


def store_hwc(target: torch.Tensor, image: np.ndarray) -> torch.Tensor:
    """Write an HWC image into a CxHxW ``target`` as :func:`hwc_to_batch` converts it.

    One transposing copy, then clipping to [0, 1] in place (NaN stays NaN, Inf becomes NaN),
    while the image is still in cache: per-image tools fill a batch this way rather than
    converting each result and copying it again.

    Returns:
        ``target``.
    """
    target.copy_(torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1))
    # one read-only pass decides: the Inf mask (a bool pass and a fill) only when an Inf or
    # NaN is there, the clamp only when a value is out of range; they were 40% of an x4
    # upsampler's per-image time (NaN propagates through aminmax and fails both tests)
    lowest, highest = torch.aminmax(target)
    if bool((lowest >= 0.0) & (highest <= 1.0)):
        return target
    if not bool(torch.isfinite(lowest) & torch.isfinite(highest)):
        target.masked_fill_(target.isinf(), float("nan"))
    return target.clamp_(0.0, 1.0)


def hwc_to_batch(images: list[ImageF32] | ImageF32) -> torch.Tensor:
    """float32 HWC numpy array(s) -> float32 Nx3xHxW, clipped to [0, 1].

    NaN stays NaN and Inf becomes NaN: a tool that produces one must fail its call
    (``check_output``), not be silently painted black or white.
    """
    stack = np.stack(images) if isinstance(images, list) else images[None]
    stack = stack.astype(np.float32)
    stack[np.isinf(stack)] = np.nan
    return torch.from_numpy(np.ascontiguousarray(np.clip(stack, 0, 1).transpose(0, 3, 1, 2)))


def resize(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of an Nx3xHxW batch to ``size=(H, W)``, antialiased, clamped to [0, 1].

    An output one pixel wide (and more than one high) is resized transposed: PyTorch's
    antialiased resize to a width of 1 mixes the rows up whenever the height changes (8x4
    -> 2x1 gave both rows the first row's value; found by ``tests/test_tool_parity.py``),
    while the transposed call, whose output is one pixel *high*, is the separable filter.
    """
    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    if size[1] == 1 and size[0] > 1:
        out = _interpolate(batch.transpose(-1, -2), (1, size[0])).transpose(-1, -2).contiguous()
    else:
        out = _interpolate(batch, size)
    return out.clamp_(0.0, 1.0)


def _interpolate(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(batch, size=size, mode="bicubic", align_corners=False, antialias=True)


def resize_u8(image: ImageU8, size: tuple[int, int]) -> ImageU8:
    """Bicubic resize of a uint8 HWC image to ``size=(H, W)``."""
    if image.shape[:2] == tuple(size):
        return image
    return batch_to_u8(resize(u8_to_batch(image), size))


def resize_to_u8(batch: torch.Tensor, size: tuple[int, int]) -> ImageU8:
    """``resize_u8(batch_to_u8(batch), size)`` of a 1x3xHxW batch, without the numpy round trip.

    The env renders its observation this way on every step. Quantising in torch gives the
    same floats as ``u8_to_batch(batch_to_u8(batch))`` (``round(255 x) / 255`` in float32),
    resized on the CPU as there, whatever the batch's device.
    """
    if tuple(batch.shape[-2:]) == tuple(size):
        return batch_to_u8(batch)
    quantised = batch.detach().to("cpu", torch.float32).clamp(0, 1).mul_(255).round_().div_(255.0)
    return batch_to_u8(resize(quantised, size))


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> ImageU8:
    """Read an image file as uint8 RGB HWC: the one image reader of every entry point.

    * EXIF orientation is applied (a portrait photo stays portrait).
    * 16-bit (and 32-bit) images are scaled to 8 bits (``v / 257`` for 16 bits), not clipped
      to white; the conversion is logged at INFO.
    * Alpha is composited on white, what a viewer shows on a white page (dropping it would
      reveal arbitrary colours under transparent pixels); a warning is logged when any pixel
      is transparent.
    * Grey, palette and CMYK images are expanded to RGB; a multi-frame file gives its first.

    Args:
        path: The image file (any format PIL reads; folders list :data:`IMAGE_SUFFIXES`).
        max_pixels: Most pixels accepted (:data:`MAX_PIXELS`).
        min_side: Smallest side accepted (:data:`MIN_SIDE`).

    Raises:
        ImageReadError: the file is missing, a folder, truncated, corrupt or not an image.
        ImageTooLargeError: more than ``max_pixels`` pixels (checked before decoding).
        ImageTooSmallError: a side shorter than ``min_side``.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not an image file" if path.is_dir() else "not found"
        raise ImageReadError(f"image file {what}: {path}")
    try:
        with warnings.catch_warnings():
            # max_pixels below replaces PIL's bomb warning; PIL's hard error stays (caught below).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_size(path, img.size, max_pixels, min_side)
                img.load()
                array = _to_rgb(_upright(img, path), path)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageTooLargeError(
            f"image {path} is too large to read safely ({err}); TIR's limit is "
            f"{max_pixels / 1e6:.0f} MP (a decompression-bomb guard); downscale it first"
        ) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err
    return check_u8(np.ascontiguousarray(array), what=str(path))


def _upright(img: Any, path: Path) -> Any:
    """``img`` turned as its EXIF orientation says; as stored when its EXIF is unreadable.

    A camera or editor sometimes writes broken EXIF; the pixels are fine, so the photo is read
    (with a warning) rather than refused.
    """
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img)
    except (SyntaxError, ValueError, OSError, KeyError, TypeError, struct.error) as err:
        logger.warning("%s: unreadable EXIF (%s); read as stored, not turned", path, err)
        return img


def _check_size(path: Path, size: tuple[int, int], max_pixels: int, min_side: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image {path} is {width}x{height} = {width * height / 1e6:.0f} MP, above the "
            f"{max_pixels / 1e6:.0f} MP limit (a decompression-bomb guard); downscale it first"
        )
    if min(width, height) < min_side:
        raise ImageTooSmallError(
            f"image {path} is {width}x{height}; TIR needs at least {min_side} pixels on each "
            "side (smaller images would be restored as a constant patch)"
        )


def _to_rgb(img: Any, path: Path) -> np.ndarray:
    """A decoded PIL image as uint8 HxWx3: wide modes scaled, alpha composited on white."""
    if img.mode in _WIDE_MODES:
        grey = _wide_to_u8(np.asarray(img), img.mode, path)
        return np.repeat(grey[..., None], 3, axis=2)
    if "A" in img.mode or "a" in img.mode or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"))
        alpha = rgba[..., 3:].astype(np.float32) / 255.0
        if alpha.min() < 1.0:
            logger.warning("%s: transparent pixels composited on white (TIR restores RGB)", path)
        rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _wide_to_u8(array: np.ndarray, mode: str, path: Path) -> np.ndarray:
    """A 16/32-bit or float single-channel array scaled (not clipped) to uint8."""
    values = array.astype(np.float64)
    top = float(values.max()) if values.size else 0.0
    if mode == "F" and top <= 1.0:
        full = 1.0  # float images in [0, 1]
    elif mode.startswith("I;16") or 255 < top <= 65535:
        full = 65535.0
    elif top <= 255:
        full = 255.0  # a 32-bit container holding 8-bit values
    else:
        full = top
    logger.info("%s: %s image scaled to 8 bits (value * 255 / %g)", path, mode, full)
    return np.clip(np.round(values * (255.0 / full)), 0, 255).astype(np.uint8)


def check_output_path(
    path: str | Path, overwrite: bool = False, inputs: Sequence[str | Path] = ()
) -> Path:
    """Validate where an image will be written, before any work is done.

    Args:
        path: The output file.
        overwrite: Allow replacing an existing file (never one of ``inputs``).
        inputs: Files the output must not be written over (the photo being restored).

    Returns:
        The path, ``~`` expanded.

    Raises:
        OutputPathError: a folder, no extension, an extension :func:`save_image` cannot write,
            or a parent that is a file.
        OutputExistsError: the file exists (and ``overwrite`` is off), or it is an input.
    """
    text = str(path)
    path = Path(path).expanduser()
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise OutputPathError(f"output {text} is a folder; name a file, e.g. {path / 'out.png'}")
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        what = f"extension {suffix!r}" if suffix else "no extension"
        raise OutputPathError(
            f"output {text} has {what}; use one of {', '.join(OUTPUT_SUFFIXES)} (e.g. out.png)"
        )
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputPathError(f"output {text}: {parent} is a file, not a folder")
    if path.exists():
        if any(_same_file(path, Path(p).expanduser()) for p in inputs):
            raise OutputExistsError(
                f"output {text} is the input photo; TIR never writes over its input, choose "
                "another name"
            )
        if not overwrite:
            raise OutputExistsError(
                f"output {text} already exists; choose another name or pass --overwrite"
            )
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file, hard links and case-only differences included.

    On a case-insensitive disk (macOS) ``IMG.PNG`` and ``IMG.png`` are one file, which
    ``resolve()`` does not say.
    """
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be read): not the same file
        return a.resolve() == b.resolve()


def save_image(path: str | Path, image: ImageU8, metadata: PhotoMetadata | None = None) -> Path:
    """Write a uint8 HWC RGB image atomically (temp file + rename); return the path.

    The format follows the suffix (:data:`OUTPUT_SUFFIXES`). A reader never sees a half-written
    file, and an interrupted write leaves any earlier file at ``path`` intact. ``metadata``: the
    colour profile and EXIF to write with it (:mod:`tir_env.photo_metadata`) where the format
    holds them; if the writer refuses them, the image is written without (with a warning).

    Raises:
        OutputPathError: the suffix names no format this function writes.
    """
    from PIL import Image

    from tir_env.photo_metadata import save_options

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise OutputPathError(f"cannot write {path}: use one of {', '.join(OUTPUT_SUFFIXES)}")
    pil = Image.fromarray(check_u8(image))
    options = {**SAVE_OPTIONS.get(suffix, {}), **save_options(metadata, suffix)}
    with atomic_path(path) as tmp:  # a plain new file: the umask's mode, as any other output
        try:
            pil.save(tmp, **options)
        except (ValueError, OSError, TypeError) as err:
            if options == SAVE_OPTIONS.get(suffix, {}):
                raise
            logger.warning("%s: written without the photo's metadata (%s)", path, err)
            pil.save(tmp, **SAVE_OPTIONS.get(suffix, {}))
    return path


def image_digest(batch: torch.Tensor) -> str:
    """Content hash of one image (shape and exact float bits); keys the tool-pool cache."""
    data = batch.detach().contiguous().cpu().numpy()
    h = hashlib.blake2b(digest_size=16)
    h.update(str(tuple(data.shape)).encode())
    h.update(data.tobytes())
    return h.hexdigest()


def hstack_strip(images: list[ImageU8], height: int = 256, gap: int = 4) -> ImageU8:
    """Resize images to a common height and lay them side by side on white."""
    tiles = [
        resize_u8(im, (height, max(1, round(im.shape[1] * height / im.shape[0])))) for im in images
    ]
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for tile in tiles:
        strip[:, x : x + tile.shape[1]] = tile
        x += tile.shape[1] + gap
    return strip


def _describe(obj: object) -> str:
    dtype = getattr(obj, "dtype", None)
    shape = getattr(obj, "shape", None)
    return f"{type(obj).__name__}(dtype={dtype}, shape={tuple(shape) if shape else None})"
