"""Image sources a user names wrongly, or folders holding unusable files: errors say what to do."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

import tir_env  # noqa: F401 - registers TIR-v0
from tir_env import data
from tir_env.errors import DataError, ImageReadError, ImageTooSmallError


def _save(path: Path, side: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Two good photos, a JPEG cut in half and a 1x1 PNG."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        _save(folder / f"good{i}.png", 64, seed=i)
    _save(folder / "cut.jpg", 64, seed=9)
    whole = (folder / "cut.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    _save(folder / "tiny.png", 1)
    return folder


def test_a_file_given_as_images_is_named_a_file_with_how_to_name_images(
    mixed_folder: Path,
) -> None:
    photo = mixed_folder / "good0.png"
    with pytest.raises(DataError) as info:
        gym.make("TIR-v0", images=str(photo))
    message = str(info.value)
    assert f"{str(photo)!r} is a file, not a folder" in message
    assert "not found" not in message
    assert "corpus:<split>" in message and "test" in message  # the named sources
    assert "a folder of its own" in message


def test_a_missing_source_lists_the_named_sources_and_a_near_name() -> None:
    with pytest.raises(DataError, match="image folder not found: tset") as info:
        data.source("tset")
    assert "corpus:<split>" in str(info.value)
    assert "Did you mean 'test'?" in str(info.value)


def test_a_folder_keeps_listing_its_unusable_files(mixed_folder: Path) -> None:
    # Seeds pick images by index in this list: skipping bad files would move every seed.
    assert data.folder(mixed_folder).ids == ("cut.jpg", "good0.png", "good1.png", "tiny.png")


@pytest.mark.parametrize(
    ("image_id", "error"), [("cut.jpg", ImageReadError), ("tiny.png", ImageTooSmallError)]
)
def test_reset_on_an_unusable_file_names_it_and_how_to_fix(
    mixed_folder: Path, image_id: str, error: type[Exception]
) -> None:
    env = gym.make("TIR-v0", images=str(mixed_folder))
    with pytest.raises(error) as info:
        env.reset(seed=0, options={"image_id": image_id})
    message = str(info.value)
    assert str(mixed_folder / image_id) in message  # the file
    assert "remove it from the folder" in message and "a folder of readable photos" in message
    env.reset(seed=0, options={"image_id": "good0.png"})  # the good ones still load


def test_an_unusable_corpus_photo_points_at_verify(mixed_folder: Path) -> None:
    source = data.ImageSource(
        name="corpus:val", ids=("a",), root=mixed_folder, paths={"a": mixed_folder / "cut.jpg"}
    )
    with pytest.raises(ImageReadError, match="tir data photos --verify"):
        source.load("a")
