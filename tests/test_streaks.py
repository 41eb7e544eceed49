"""The rain-streak cue (:mod:`tir_env.streaks`) and where perception reads it."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tir_env import data, perception, streaks
from tir_env.degradations import make_degradation
from tir_env.errors import ImageError
from tir_env.images import batch_to_u8, u8_to_batch
from tir_env.streaks import rain_streaks

needs_weights = pytest.mark.skipif(not perception.available(), reason="perception weights missing")


def _photo(name: str = "flower") -> np.ndarray:
    return data.bundled("test").load(name)  # 427 x 640: a whole photo


def _images(max_side: int) -> st.SearchStrategy[np.ndarray]:
    """Any uint8 HxWx3 image up to ``max_side`` on a side."""
    return hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, max_side), st.integers(1, max_side), st.just(3)),
        elements=st.integers(0, 255),
    )


def _rainy(image: np.ndarray, angle: float, value: float = 75.0) -> np.ndarray:
    params = {"length": 30.0, "angle": angle, "value": value, "seed": 1.0}
    return batch_to_u8(make_degradation("rain").apply(u8_to_batch(image), params))


@pytest.mark.parametrize("angle", [-30.0, -12.0, 0.0, 17.0, 29.0])
def test_the_protocols_rain_reads_as_streaks_the_clean_photo_does_not(angle: float) -> None:
    clean = _photo()
    assert rain_streaks(clean) < perception.WHOLE_RAIN_STREAKS
    assert rain_streaks(_rainy(clean, angle)) > 2 * perception.WHOLE_RAIN_STREAKS


def test_lines_that_run_across_are_not_rain() -> None:
    across = np.ascontiguousarray(_rainy(_photo(), 0.0).transpose(1, 0, 2))  # horizontal streaks
    assert rain_streaks(across) < 0.0


def test_coloured_lines_are_not_rain() -> None:
    clean = _photo()
    rainy = _rainy(clean, 0.0)
    red_only = clean.copy()
    red_only[..., 0] = rainy[..., 0]  # the same streaks, in one channel: not rain's light
    assert rain_streaks(red_only) < perception.WHOLE_RAIN_STREAKS < rain_streaks(rainy)


def test_brick_like_courses_are_not_rain() -> None:
    wall = np.full((512, 512, 3), 120, np.uint8)
    wall[::24] = 200  # bright mortar courses every 24 rows
    for row in range(0, 512, 24):  # and the joints between bricks, offset course by course
        wall[row : row + 24, (row // 24 % 2) * 24 :: 48] = 200
    assert rain_streaks(wall) < perception.WHOLE_RAIN_STREAKS


def test_a_camera_size_photo_is_read_in_tiles_as_its_parts_are() -> None:
    rainy = _rainy(_photo(), 5.0)
    big = np.tile(rainy, (6, 6, 1))  # 2562 x 3840: read in 8 x 8 tiles
    assert rain_streaks(big) == pytest.approx(rain_streaks(rainy), abs=0.1)


def test_an_image_smaller_than_a_block_has_no_streaks() -> None:
    assert rain_streaks(np.zeros((63, 500, 3), np.uint8)) == 0.0


@given(_images(300))
@settings(max_examples=40, deadline=None)
def test_the_cue_is_a_projected_mean_of_unit_vectors(image: np.ndarray) -> None:
    value = rain_streaks(image)
    assert math.isfinite(value) and -1.0 <= value <= 1.0


def test_what_is_not_an_image_is_refused() -> None:
    bad_images: list[np.ndarray] = [np.zeros((80, 80, 3), np.float32), np.zeros((80, 80), np.uint8)]
    for bad in bad_images:
        with pytest.raises(ImageError):
            rain_streaks(bad)


def _darkened(image: np.ndarray, params: dict[str, float]) -> np.ndarray:
    return batch_to_u8(make_degradation("dark").apply(u8_to_batch(image), params))


GAMMA = {"mode": 1.0, "gamma": 0.6}


@pytest.mark.parametrize("name", ["flower", "china", "coffee", "chelsea"])
def test_a_gamma_darkening_after_the_rain_steepens_the_streaks_rise(name: str) -> None:
    rainy = _rainy(_photo(name), 5.0)
    assert streaks.streak_rise_slope(_darkened(rainy, GAMMA)) > streaks.streak_rise_slope(rainy)


def test_added_lines_rise_the_same_over_every_background() -> None:
    ramp = np.repeat(np.linspace(20, 180, 512).astype(np.uint8)[None, :, None], 512, 0)
    image = np.repeat(ramp, 3, axis=2)
    image[:, 5::16] += 40  # 1 px lines, 40 levels above a background from dark to light
    assert abs(streaks.streak_rise_slope(image)) < 0.02  # the ramp moves the opening a little
    lifted = (255 * (image / 255.0) ** (1 / 0.6)).astype(np.uint8)  # a convex map after them
    assert streaks.streak_rise_slope(lifted) > 0.1


def test_shift_and_linear_darkening_never_reach_white_rain_does() -> None:
    rainy = _rainy(_photo(), 5.0)
    assert streaks.reaches_white(rainy) and streaks.rain_on_top(rainy)
    for params in ({"mode": 0.0, "shift": 40.0}, {"mode": 2.0, "max_value": 125.0}):
        darkened = _darkened(rainy, params)
        assert not streaks.reaches_white(darkened) and not streaks.rain_on_top(darkened)


def test_an_image_without_thin_lines_has_no_slope_and_no_rain_on_top() -> None:
    flat = np.full((300, 300, 3), 255, np.uint8)
    assert math.isnan(streaks.streak_rise_slope(flat))
    assert streaks.reaches_white(flat) and not streaks.rain_on_top(flat)


@given(_images(200))
@settings(max_examples=40, deadline=None)
def test_the_slope_is_a_number_or_nan_on_any_image(image: np.ndarray) -> None:
    slope = streaks.streak_rise_slope(image)
    assert math.isnan(slope) or math.isfinite(slope)
    assert isinstance(streaks.rain_on_top(image), bool)


def test_the_slope_refuses_what_is_not_an_image() -> None:
    for check in (streaks.streak_rise_slope, streaks.reaches_white, streaks.rain_on_top):
        with pytest.raises(ImageError):
            check(np.zeros((80, 80, 3), np.float32))


@needs_weights
def test_a_whole_photo_without_streaks_reads_no_rain_a_crop_of_it_its_record() -> None:
    record = perception.thresholds()
    wall = np.full((512, 512, 3), 120, np.uint8)
    wall[::24] = 200
    assert perception.image_thresholds(wall)["rain"] == math.inf
    assert perception.image_thresholds(_rainy(_photo(), 10.0))["rain"] == record["rain"]
    crop = np.ascontiguousarray(wall[: perception.WHOLE_MIN_SIDE - 1])
    assert perception.image_thresholds(crop)["rain"] == record["rain"]  # crops were not studied
    other = perception.RELEASE1_WEIGHTS_NAME  # the study read the shipped network only
    assert perception.image_thresholds(wall, other) == perception.thresholds(other)


@needs_weights
def test_a_vetoed_rain_reading_is_not_perceived(perceive_as: Callable[..., None]) -> None:
    perceive_as(rain=0.99)
    wall = np.full((512, 512, 3), 120, np.uint8)
    wall[::24] = 200
    assert perception.perceived_tasks(wall) == []
    assert perception.perceived_tasks(_rainy(_photo(), 0.0)) == ["deraining"]


@pytest.mark.parametrize(
    ("streaks", "share"), [(-0.3, math.inf), (0.19, math.inf), (0.2, 1.0), (0.9, 1.0)]
)
def test_whole_photos_read_rain_only_where_streaks_show(
    monkeypatch: pytest.MonkeyPatch, streaks: float, share: float
) -> None:
    from tir_env import photo_thresholds

    assert photo_thresholds.WHOLE_RAIN_STREAKS == 0.2  # the band the cases name
    monkeypatch.setattr(photo_thresholds, "rain_streaks", lambda image: streaks)
    limits = {"rain": 0.8, "noise": 0.3}
    whole = np.zeros((photo_thresholds.WHOLE_MIN_SIDE, 300, 3), np.uint8)
    assert photo_thresholds.adjusted(whole, limits) == {"rain": 0.8 * share, "noise": 0.3}
    crop = np.zeros((photo_thresholds.WHOLE_MIN_SIDE - 1, 300, 3), np.uint8)
    assert photo_thresholds.adjusted(crop, limits) == limits  # crops keep the record's
    assert limits == {"rain": 0.8, "noise": 0.3}  # the caller's dict is left as it was


@pytest.mark.parametrize(
    ("streaks", "dark", "share"),
    [
        (0.9, 0.0, 0.1),  # clear streaks, far from dark: rain at a tenth of its threshold
        (0.45, 0.29 * 0.6, 0.1),
        (0.44, 0.0, 1.0),  # streaks not clear
        (0.9, 0.3 * 0.6, 1.0),  # darkness read at the judge's floor: near dark
        (0.9, None, 1.0),  # no readings given: nothing known of darkness
        (0.1, 0.0, math.inf),  # no streaks: no rain
    ],
)
def test_rain_the_network_half_sees_is_read_where_far_from_dark(
    monkeypatch: pytest.MonkeyPatch, streaks: float, dark: float | None, share: float
) -> None:
    from tir_env import photo_thresholds

    assert (photo_thresholds.WHOLE_RAIN_STREAKS_CLEAR, photo_thresholds.FAR_FROM_DARK) == (
        0.45,
        0.3,
    )  # the bands the cases name
    monkeypatch.setattr(photo_thresholds, "rain_streaks", lambda image: streaks)
    limits = {"rain": 0.8, "dark": 0.6}
    probs = None if dark is None else {"rain": 0.2, "dark": dark}
    whole = np.zeros((photo_thresholds.WHOLE_MIN_SIDE, 300, 3), np.uint8)
    whole[..., 0] = 90  # in colour: a grey photo's darkness threshold is raised
    assert photo_thresholds.adjusted(whole, limits, probs)["rain"] == pytest.approx(0.8 * share)
    crop = np.zeros((photo_thresholds.WHOLE_MIN_SIDE - 1, 300, 3), np.uint8)
    assert photo_thresholds.adjusted(crop, limits, probs) == limits  # crops keep the record's


@needs_weights
def test_a_rainy_photo_far_from_dark_gets_its_rain_threshold_lowered() -> None:
    rainy = _rainy(_photo(), 10.0)
    seen = perception.perceive_photo(rainy)
    record = perception.thresholds()
    far = seen.probs["dark"] < perception.photo_thresholds.FAR_FROM_DARK * record["dark"]
    expected = record["rain"] * (perception.photo_thresholds.WHOLE_RAIN_SHARE if far else 1.0)
    assert seen.thresholds["rain"] == pytest.approx(expected)
