"""The only image conversions in TIR, plus loading, saving, resizing and hashing.

Two layouts exist:

* **observation**: ``uint8`` RGB, HWC, values in [0, 255];
* **working**: ``float32`` RGB, NCHW (a batch) in [0, 1], used by tools, degradations and
  metrics. ``hwc_float`` helpers give the numpy HWC float32 view that OpenCV-style code needs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tir_env.errors import ImageError
from tir_env.types import ImageF32, ImageU8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


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
    if not torch.isfinite(batch).all():
        raise ImageError(f"{what} contains NaN or Inf")
    if batch.numel() and (batch.min() < 0 or batch.max() > 1):
        raise ImageError(f"{what} must lie in [0, 1], got [{batch.min():.3g}, {batch.max():.3g}]")
    return batch


def u8_to_batch(image: ImageU8) -> torch.Tensor:
    """uint8 HWC [0, 255] -> float32 1x3xHxW [0, 1]."""
    check_u8(image)
    array = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0
    return torch.from_numpy(array).unsqueeze(0)


def batch_to_u8(batch: torch.Tensor) -> ImageU8:
    """float32 1x3xHxW (or 3xHxW) [0, 1] -> uint8 HWC, rounding to nearest."""
    if batch.ndim == 4:
        if batch.shape[0] != 1:
            raise ImageError(f"expected a batch of one image, got {batch.shape[0]}")
        batch = batch[0]
    array = batch.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return np.ascontiguousarray(array.transpose(1, 2, 0))


def batch_to_hwc(batch: torch.Tensor) -> list[ImageF32]:
    """float32 Nx3xHxW -> list of N float32 HWC numpy arrays (for OpenCV-style code)."""
    array = batch.detach().float().cpu().numpy().transpose(0, 2, 3, 1)
    return [np.ascontiguousarray(a) for a in array]


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
    """Bicubic resize of an Nx3xHxW batch to ``size=(H, W)``, antialiased, clamped to [0, 1]."""
    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    out = F.interpolate(batch, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def resize_u8(image: ImageU8, size: tuple[int, int]) -> ImageU8:
    """Bicubic resize of a uint8 HWC image to ``size=(H, W)``."""
    if image.shape[:2] == tuple(size):
        return image
    return batch_to_u8(resize(u8_to_batch(image), size))


def load_image(path: str | Path) -> ImageU8:
    """Read an image file as uint8 RGB HWC (alpha dropped, grey expanded).

    Raises:
        ImageError: the file is missing, unreadable or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ImageError(f"cannot read image {path}: {err}") from err
    return check_u8(np.ascontiguousarray(array), what=str(path))


def save_image(path: str | Path, image: ImageU8) -> Path:
    """Write a uint8 HWC RGB image (format from the suffix); return the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(check_u8(image)).save(path)
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
