"""A photo's colour profile and EXIF, carried from the file read into the file written.

Restoration works on the pixel values as the file stores them. Those values mean the colours
of the photo's ICC profile: a phone's Display P3 or a camera's Adobe RGB photo shown without
its profile is read as sRGB, and its colours look washed out or shifted. EXIF holds what a
photo library sorts and finds photos by (date, camera, lens, exposure). So ``tir restore``
writes the result with the profile and EXIF of the photo it read, as a photo editor exports
(``--no-keep-metadata`` leaves them out), with three changes:

* the EXIF orientation is dropped: :func:`tir_env.images.load_image` already turned the pixels
  upright, and a viewer honouring the tag would turn them again;
* the EXIF pixel dimensions are set to the result's size (a photo downscaled with
  ``--max-side``); the embedded thumbnail is not carried (it would show the unrestored photo);
* a profile that does not describe RGB (a greyscale or CMYK file's, whose pixels are read as
  RGB) is left out, as it would misdescribe the result.

Metadata never costs a photo: unreadable EXIF or a profile is dropped with a warning, and a
format that cannot hold them (BMP), or a result its writer refuses with them, is written
without.

Example:
    >>> from tir_env.photo_metadata import read_metadata  # doctest: +SKIP
    >>> meta = read_metadata("IMG_0001.jpg")  # doctest: +SKIP
    >>> save_image("restored.png", result, metadata=meta)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: EXIF tags: orientation (IFD0), the Exif sub-IFD and its pixel dimensions.
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
PIXEL_X = 0xA002
PIXEL_Y = 0xA003
#: Tags of a TIFF file's own layout (size, sample format, strips and tiles, its embedded
#: profile, XMP and IPTC): PIL reads a TIFF's first directory as its EXIF, and these describe
#: that file, not the result.
TIFF_LAYOUT_TAGS = (
    *range(254, 260),  # subfile type, width, length, bits per sample, compression
    262,
    273,
    277,
    278,
    279,
    284,
    317,
    322,
    323,
    324,
    325,
    338,
    339,
    700,
    33723,
    34675,
)
#: Formats whose writer takes ``icc_profile`` and ``exif`` (PIL); BMP holds neither.
METADATA_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
#: A JPEG APP1 segment holds at most 64 KiB; larger EXIF is left out of a JPEG.
JPEG_EXIF_LIMIT = 65_533
#: An ICC profile's data colour space (header bytes 16-20) that describes RGB pixels.
RGB_SPACE = b"RGB "


@dataclass(frozen=True)
class PhotoMetadata:
    """What a written result keeps of the photo it was restored from.

    Attributes:
        icc_profile: The ICC profile (an RGB one), or ``None``.
        exif: EXIF bytes without the orientation tag, or ``None``.
    """

    icc_profile: bytes | None = None
    exif: bytes | None = None

    @property
    def empty(self) -> bool:
        """Whether there is nothing to carry."""
        return self.icc_profile is None and self.exif is None

    def describe(self) -> str:
        """What is carried, for a user ("colour profile and EXIF"; empty when nothing)."""
        parts = [("colour profile", self.icc_profile), ("EXIF", self.exif)]
        return " and ".join(name for name, value in parts if value is not None)


def read_metadata(path: str | Path) -> PhotoMetadata:
    """The colour profile and EXIF of an image file, ready to write beside restored pixels.

    Never raises for the metadata: what cannot be read is left out with a warning (the
    pixels are what matter; :func:`tir_env.images.load_image` reports an unreadable file).
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            icc = _rgb_profile(img.info.get("icc_profile"), path)
            exif = _exif_upright(img, path)
    except Exception as err:  # noqa: BLE001 (any fault in a header is only metadata lost)
        logger.warning("%s: metadata not read (%s); the result is written without it", path, err)
        return PhotoMetadata()
    return PhotoMetadata(icc_profile=icc, exif=exif)


def _rgb_profile(profile: Any, path: str | Path) -> bytes | None:
    if not isinstance(profile, bytes) or not profile:
        return None
    if profile[16:20] != RGB_SPACE:
        logger.info(
            "%s: its colour profile describes %r, not RGB; the RGB result is written without it",
            path,
            profile[16:20].decode("latin-1").strip() or "nothing",
        )
        return None
    return profile


def _exif_upright(img: Any, path: str | Path) -> bytes | None:
    """EXIF bytes without the orientation (the pixels were turned upright), or ``None``."""
    try:
        exif = img.getexif()
        if not exif:
            return None
        for tag in (ORIENTATION, *TIFF_LAYOUT_TAGS):
            exif.pop(tag, None)
        return bytes(exif.tobytes()) if exif else None
    except Exception as err:  # noqa: BLE001 (malformed EXIF: dropped, the photo is not)
        logger.warning("%s: unreadable EXIF (%s); the result is written without it", path, err)
        return None


def resized(metadata: PhotoMetadata, size: tuple[int, int]) -> PhotoMetadata:
    """``metadata`` with the EXIF pixel dimensions set to ``size`` (H, W) where it has them."""
    if metadata.exif is None:
        return metadata
    from PIL import Image

    try:
        exif = Image.Exif()
        exif.load(metadata.exif)
        sub = exif.get_ifd(EXIF_IFD)
        if PIXEL_X not in sub and PIXEL_Y not in sub:
            return metadata
        sub[PIXEL_X], sub[PIXEL_Y] = int(size[1]), int(size[0])
        return replace(metadata, exif=bytes(exif.tobytes()))
    except Exception as err:  # noqa: BLE001 (the size tags are a nicety; keep the rest)
        logger.debug("EXIF pixel dimensions not updated: %s", err)
        return metadata


def _readable_exif(exif: bytes) -> bool:
    """Whether ``exif`` parses as EXIF (a reader of the result would fail on it otherwise)."""
    from PIL import Image

    try:
        Image.Exif().load(exif)
    except Exception as err:  # noqa: BLE001 (any parse fault: not written)
        logger.warning("EXIF that does not parse (%s) is not written", err)
        return False
    return True


def save_options(metadata: PhotoMetadata | None, suffix: str) -> dict[str, bytes]:
    """PIL ``save`` keywords that write ``metadata`` in the format of ``suffix`` (may be empty)."""
    suffix = suffix.lower()
    if metadata is None or metadata.empty or suffix not in METADATA_SUFFIXES:
        return {}
    options = {}
    if metadata.icc_profile is not None:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif is not None and _readable_exif(metadata.exif):
        if suffix in (".jpg", ".jpeg") and len(metadata.exif) > JPEG_EXIF_LIMIT:
            size = len(metadata.exif)
            logger.warning("EXIF of %d bytes does not fit a JPEG; written without it", size)
        else:
            options["exif"] = metadata.exif
    return options


__all__ = ["PhotoMetadata", "read_metadata", "resized", "save_options"]
