"""Fault injection: a photo's colour profile and EXIF, read and written (``tir restore``).

Each test's docstring is ``<input or fault> | <behaviour>`` (docs/reliability.md is generated
from them).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from benchmarks.cli import main
from tir_env.images import OUTPUT_SUFFIXES, load_image, save_image
from tir_env.photo_metadata import (
    EXIF_IFD,
    JPEG_EXIF_LIMIT,
    ORIENTATION,
    PIXEL_X,
    PIXEL_Y,
    PhotoMetadata,
    read_metadata,
    resized,
)

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
DATE = 0x9003  # DateTimeOriginal, in the Exif sub-IFD
MAKE = 0x010F


def _photo(h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _exif(orientation: int = 6, width: int = 56, height: int = 40) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION], exif[MAKE] = orientation, "TIRCam"
    sub = exif.get_ifd(EXIF_IFD)
    sub[DATE], sub[PIXEL_X], sub[PIXEL_Y] = "2026:12:07 10:00:00", width, height
    return exif


def _camera_jpeg(path: Path, icc: bytes = SRGB) -> Path:
    """A camera's JPEG: stored landscape 56x40 with orientation 6 (shown portrait), a profile."""
    Image.fromarray(_photo()).save(path, exif=_exif().tobytes(), icc_profile=icc, quality=95)
    return path


def _read_exif(path: Path) -> Image.Exif:
    with Image.open(path) as img:
        return img.getexif()


def _profile(path: Path) -> bytes | None:
    with Image.open(path) as img:
        return img.info.get("icc_profile")


def test_restore_keeps_the_photos_profile_and_exif(tmp_path, capsys):
    """tir restore on a camera JPEG (an ICC profile, EXIF, orientation 6) | the result is upright and keeps the profile and the EXIF (orientation dropped, pixel size the result's); said on the 'wrote' line"""  # noqa: E501
    photo = _camera_jpeg(tmp_path / "IMG_0001.jpg")
    out = tmp_path / "o.png"
    assert main(["restore", str(photo), "--max-steps", "1", "-o", str(out)]) == 0
    assert load_image(out).shape == (56, 40, 3)  # portrait, as the camera meant it
    assert _profile(out) == SRGB
    exif = _read_exif(out)
    assert exif[MAKE] == "TIRCam" and ORIENTATION not in exif
    sub = exif.get_ifd(EXIF_IFD)
    assert sub[DATE] == "2026:12:07 10:00:00" and (sub[PIXEL_X], sub[PIXEL_Y]) == (40, 56)
    assert "kept its colour profile and EXIF" in capsys.readouterr().out


def test_restore_no_keep_metadata(tmp_path, capsys):
    """tir restore --no-keep-metadata on a camera JPEG | the result holds no profile and no EXIF"""
    photo = _camera_jpeg(tmp_path / "IMG_0001.jpg")
    out = tmp_path / "o.jpg"
    args = ["restore", str(photo), "--max-steps", "1", "--no-keep-metadata", "-o", str(out)]
    assert main(args) == 0
    assert _profile(out) is None and not _read_exif(out)
    assert "kept its" not in capsys.readouterr().out


def test_restore_before_after_keeps_the_profile_only(tmp_path):
    """tir restore --before-after on a camera JPEG | the strip keeps the photo's colour profile, not its EXIF (the strip is not the photo)"""  # noqa: E501
    photo = _camera_jpeg(tmp_path / "IMG_0001.jpg")
    out = tmp_path / "o.png"
    assert main(["restore", str(photo), "--max-steps", "1", "--before-after", "-o", str(out)]) == 0
    strip = tmp_path / "o_before_after.png"
    assert _profile(strip) == SRGB and not _read_exif(strip)


@pytest.mark.parametrize("suffix", [s for s in OUTPUT_SUFFIXES if s != ".bmp"])
def test_every_format_that_holds_metadata_keeps_it(tmp_path, suffix):
    """save_image with a profile and EXIF, each output format that holds them (png, jpg, webp, tif) | both read back as written, pixels as a plain save's"""  # noqa: E501
    meta = PhotoMetadata(icc_profile=SRGB, exif=_exif(orientation=1).tobytes())
    path = save_image(tmp_path / f"o{suffix}", _photo(), meta)
    plain = save_image(tmp_path / f"plain{suffix}", _photo())
    back = read_metadata(path)
    assert back.icc_profile == SRGB and back.exif is not None
    assert _read_exif(path)[MAKE] == "TIRCam"
    assert np.array_equal(load_image(path), load_image(plain))


def test_bmp_written_without_metadata(tmp_path):
    """save_image to .bmp with a profile and EXIF | written (BMP holds neither), pixels intact"""
    meta = PhotoMetadata(icc_profile=SRGB, exif=_exif(orientation=1).tobytes())
    path = save_image(tmp_path / "o.bmp", _photo(), meta)
    assert np.array_equal(load_image(path), _photo())


@pytest.mark.parametrize("space", [b"GRAY", b"CMYK", b"Lab "])
def test_a_profile_that_is_not_rgb_is_left_out(tmp_path, space, caplog):
    """a photo whose ICC profile describes grey, CMYK or Lab | not carried to the RGB result (it would misdescribe it); said at INFO"""  # noqa: E501
    fake = SRGB[:16] + space + SRGB[20:]
    photo = _camera_jpeg(tmp_path / "p.jpg", icc=fake)
    with caplog.at_level(logging.INFO, logger="tir_env.photo_metadata"):
        meta = read_metadata(photo)
    assert meta.icc_profile is None and meta.exif is not None
    assert "not RGB" in caplog.text


def test_broken_exif_photo_is_still_restored(tmp_path, capsys, caplog):
    """a photo whose EXIF does not parse | read as stored (a warning, not ImageReadError), restored and written without EXIF"""  # noqa: E501
    photo = tmp_path / "broken.png"
    Image.fromarray(_photo()).save(photo, exif=b"not exif at all", icc_profile=SRGB)
    assert load_image(photo).shape == (40, 56, 3)
    out = tmp_path / "o.png"
    with caplog.at_level(logging.WARNING):
        assert main(["restore", str(photo), "--max-steps", "1", "-o", str(out)]) == 0
    assert "unreadable EXIF" in caplog.text
    assert _profile(out) == SRGB and not _read_exif(out)


def test_oversized_exif_left_out_of_a_jpeg(tmp_path, caplog):
    """EXIF larger than a JPEG segment holds (64 KiB) | the JPEG is written without it (a warning), the profile kept"""  # noqa: E501
    exif = _exif(orientation=1)
    exif[0x010E] = "x" * (JPEG_EXIF_LIMIT + 10)  # ImageDescription
    meta = PhotoMetadata(icc_profile=SRGB, exif=exif.tobytes())
    with caplog.at_level(logging.WARNING):
        path = save_image(tmp_path / "o.jpg", _photo(), meta)
    assert "does not fit a JPEG" in caplog.text
    assert _profile(path) == SRGB and not _read_exif(path)


def test_resized_sets_the_pixel_dimensions():
    """EXIF of a photo downscaled (--max-side) | its pixel dimensions become the result's; without them, unchanged"""  # noqa: E501
    meta = resized(PhotoMetadata(exif=_exif().tobytes()), (30, 20))
    exif = Image.Exif()
    exif.load(meta.exif)
    sub = exif.get_ifd(EXIF_IFD)
    assert (sub[PIXEL_X], sub[PIXEL_Y]) == (20, 30) and exif[MAKE] == "TIRCam"
    bare = Image.Exif()
    bare[MAKE] = "TIRCam"
    plain = PhotoMetadata(exif=bare.tobytes())
    assert resized(plain, (30, 20)) == plain
    assert resized(PhotoMetadata(), (30, 20)) == PhotoMetadata()


@settings(max_examples=40, deadline=None)
@given(
    exif=st.one_of(st.none(), st.binary(max_size=300)),
    icc=st.one_of(st.none(), st.binary(min_size=1, max_size=300)),
    suffix=st.sampled_from(OUTPUT_SUFFIXES),
)
def test_any_metadata_bytes_never_cost_the_photo(tmp_path_factory, exif, icc, suffix):
    """any bytes as a photo's EXIF and ICC profile (hypothesis) | read_metadata never raises, and the result is written with the photo's pixels"""  # noqa: E501
    folder = tmp_path_factory.mktemp("meta")
    photo = folder / "p.png"
    options = {k: v for k, v in (("exif", exif), ("icc_profile", icc)) if v is not None}
    Image.fromarray(_photo()).save(photo, **options)
    meta = read_metadata(photo)
    pixels = load_image(photo)  # upright, should the bytes parse with an orientation
    path = save_image(folder / f"o{suffix}", pixels, meta)
    reference = save_image(folder / f"r{suffix}", pixels)
    assert np.array_equal(load_image(path), load_image(reference))
