"""The test-time reading study (benchmarks/perception_tta.py): its pieces, not its numbers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import perception_tta
from tir_env import perception


def test_dense_origins_read_three_tiles_where_there_were_two() -> None:
    assert perception.tile_origins(128) == [0, 32]
    assert perception_tta.dense_origins(128, 96, 6, perception.tile_origins) == [0, 16, 32]
    # outside one-to-two tiles the shipped starts are kept
    for side in (96, 300, 1024):
        dense = perception_tta.dense_origins(side, 96, 6, perception.tile_origins)
        assert dense == perception.tile_origins(side, 96, 6)


def test_reading_patches_and_restores_perception() -> None:
    raw, origins = perception.raw_outputs, perception.tile_origins
    with perception_tta.reading(mirror=True, dense=True):
        assert perception.raw_outputs is not raw and perception.tile_origins is not origins
    assert perception.raw_outputs is raw and perception.tile_origins is origins
    with pytest.raises(RuntimeError), perception_tta.reading(mirror=True, dense=False):
        raise RuntimeError
    assert perception.raw_outputs is raw


@pytest.mark.skipif(not perception.available(), reason="needs the perception weights")
def test_a_mirrored_reading_of_a_symmetric_crop_is_the_plain_one() -> None:
    half = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    crop = np.concatenate([half, half[:, ::-1]], axis=1)  # its own mirror image
    plain = perception.perceive_photo(crop, size=(128, 128)).probs
    with perception_tta.reading(mirror=True, dense=False):
        mirrored = perception.perceive_photo(crop, size=(128, 128)).probs
    assert mirrored == pytest.approx(plain, abs=1e-5)


def test_markdown_lists_every_type_and_suite() -> None:
    ways = {
        way: {
            "types": {t: {"f1": 0.5, "auc": 0.9} for t in perception_tta.AGENTICIR_TYPES},
            "exact": dict.fromkeys(perception_tta.SUITES, 0.25),
        }
        for way in perception_tta.WAYS
    }
    result = {"command": "c", "crops": 4, "images": "x", "ways": ways}
    text = "\n".join(perception_tta.markdown(result))
    assert all(f"| {t} |" in text for t in perception_tta.AGENTICIR_TYPES)
    assert all(f"| {s} |" in text for s in perception_tta.SUITES)
