"""Perception's darkness threshold on greyscale images (``GREY_DARK_THRESHOLD``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tir_env import perception

needs_weights = pytest.mark.skipif(not perception.available(), reason="perception weights missing")


def _photo(seed: int = 0, side: int = perception.GREY_MIN_SIDE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (side, side + 16, 3), dtype=np.uint8)


def _grey(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., :1], 3, axis=2)


@given(st.integers(0, 255), st.integers(0, perception.GREY_TOLERANCE))
@settings(max_examples=25, deadline=None)
def test_equal_channels_within_the_tolerance_are_grey(level: int, spread: int) -> None:
    image = np.full((8, 8, 3), level, np.uint8)
    image[3, 4, 2] = min(255, level + spread) if level + spread <= 255 else level - spread
    assert perception.is_greyscale(image)


@given(st.integers(1, 40), st.integers(1, 40), st.data())
@settings(max_examples=40, deadline=None)
def test_one_coloured_pixel_anywhere_makes_an_image_colour(
    height: int, width: int, data: st.DataObject
) -> None:
    """Wherever it lies, on the rows read first or not."""
    image = _grey(_photo(side=max(height, width)))[:height, :width].copy()
    row, col = data.draw(st.integers(0, height - 1)), data.draw(st.integers(0, width - 1))
    image[row, col] = (200, 10, 10)
    assert not perception.is_greyscale(image)


def test_one_coloured_pixel_makes_an_image_colour() -> None:
    image = _grey(_photo())
    image[5, 7] = (200, 10, 10)
    assert not perception.is_greyscale(image)
    assert not perception.is_greyscale(_photo())


def _whole(record: dict[str, float]) -> dict[str, float]:
    """A record's thresholds as a whole photo of noise reads them.

    Noise at most the whole-photo threshold; no rain (random pixels show no streaks).
    """
    return record | {
        "noise": min(record["noise"], perception.WHOLE_NOISE_THRESHOLD),
        "rain": math.inf,
    }


@needs_weights
def test_a_whole_photo_reads_noise_at_the_whole_photo_threshold_a_crop_at_the_records() -> None:
    record = perception.thresholds()
    assert record["noise"] > perception.WHOLE_NOISE_THRESHOLD  # else the study changes nothing
    photo = _photo(side=perception.WHOLE_MIN_SIDE)
    assert perception.image_thresholds(photo) == _whole(record)
    crop = _photo(side=perception.WHOLE_MIN_SIDE - 1)
    assert perception.image_thresholds(crop) == record
    other = perception.RELEASE1_WEIGHTS_NAME  # the study read the shipped network only
    assert perception.image_thresholds(photo, other) == perception.thresholds(other)


@needs_weights
def test_only_a_grey_image_gets_the_raised_darkness_threshold() -> None:
    record = perception.thresholds()
    colour = perception.image_thresholds(_photo())
    grey = perception.image_thresholds(_grey(_photo()))
    assert colour == _whole(record)
    assert grey["dark"] == max(record["dark"], perception.GREY_DARK_THRESHOLD)
    assert {k: v for k, v in grey.items() if k != "dark"} == {
        k: v for k, v in _whole(record).items() if k != "dark"
    }
    small_crop = _grey(_photo(side=perception.GREY_MIN_SIDE - 1))  # crops were not studied
    assert perception.image_thresholds(small_crop) == record


@needs_weights
def test_perceived_tasks_read_a_grey_image_against_its_thresholds(perceive_as) -> None:
    perceive_as(dark=0.6)
    assert perception.perceived_tasks(_photo()) == ["brightening"]  # 0.6 >= the record's 0.5
    assert perception.perceived_tasks(_grey(_photo())) == []  # under 0.7 on a grey image
    assert perception.perceived_tasks(_grey(_photo()), threshold=0.5) == ["brightening"]


def test_is_greyscale_refuses_what_is_not_an_image() -> None:
    from tir_env.errors import ImageError

    for bad in (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8)):
        with pytest.raises(ImageError):
            perception.is_greyscale(bad)


@needs_weights
def test_another_network_keeps_its_record_thresholds_on_a_grey_image() -> None:
    grey = _grey(_photo())
    other = perception.RELEASE1_WEIGHTS_NAME  # an earlier network, as a judge may read
    assert perception.image_thresholds(grey, other) == perception.thresholds(other)
