"""Pictures and tables made from episode records (benchmarks.report)."""

from __future__ import annotations

import numpy as np

from benchmarks.evaluate import EpisodeSpec, _stem
from benchmarks.report import captioned, demo_strip, episode_psnr, mean_psnr, ranked_agents
from tir_env.images import load_image, save_image


def _record(agent: str, image: str, seed: int, out: float, inp: float = 10.0) -> dict:
    return {
        "agent": agent,
        "image": image,
        "degradations": ["noise"],
        "seed": seed,
        "metrics_input": {"psnr": inp},
        "metrics_output": {"psnr": out},
    }


RECORDS = [
    _record("fixed", "a", 0, 20.0),
    _record("oracle", "a", 0, 24.0),
    _record("fixed", "b", 0, 22.0, inp=12.0),
    _record("oracle", "b", 0, 23.0, inp=12.0),
]


def test_agents_are_ranked_by_mean_output_psnr_and_the_input_counted_once() -> None:
    means = mean_psnr(RECORDS)
    assert means == {"fixed": 21.0, "oracle": 23.5, "input": 11.0}
    assert ranked_agents(["fixed", "random", "oracle"], RECORDS) == ["oracle", "fixed", "random"]
    assert ranked_agents(["fixed", "oracle"], []) == ["fixed", "oracle"]  # no records: as run
    assert episode_psnr(RECORDS)[("oracle", "b", ("noise",), 0)] == 23.0


def test_a_caption_is_a_band_under_the_tile_whatever_the_psnr() -> None:
    image = np.zeros((32, 48, 3), dtype=np.uint8)
    with_psnr, blank = captioned(image, 21.5, tile=64), captioned(image, None, tile=64)
    assert with_psnr.shape == blank.shape == (84, 96, 3)
    assert (blank[64:] == 255).all() and (with_psnr[64:] < 255).any()  # the text is drawn


def test_demo_strip_orders_columns_by_psnr_and_writes_one_png(tmp_path) -> None:
    images = tmp_path / "images"
    specs = [EpisodeSpec("a", ("noise",), 0), EpisodeSpec("b", ("noise",), 0)]
    shade = {"input": 0, "fixed": 100, "oracle": 200, "clean": 250}
    for spec in specs:
        for column, value in shade.items():
            save_image(
                images / column / f"{_stem(spec)}.png", np.full((32, 32, 3), value, np.uint8)
            )
    plain = load_image(demo_strip(images, ["fixed", "oracle"], specs))
    ranked = load_image(demo_strip(images, ["fixed", "oracle"], specs, RECORDS))
    assert ranked.shape[0] > plain.shape[0]  # the captions add a band to each row
    row = ranked[30]  # a pixel row through the first episode's tiles (under the header)
    second_tile = row[164 + 80]  # input | oracle | fixed | clean, 160 px tiles, 4 px gaps
    assert int(second_tile[0]) == 200
