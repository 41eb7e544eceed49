"""The greyscale darkness study's tables (``benchmarks.grey_dark``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks import grey_dark


def _result(values: list[tuple[float, float, float, float]]) -> dict:
    versions = grey_dark.VERSIONS
    rows = [dict(zip(versions, v, strict=True), image=f"p{i}") for i, v in enumerate(values)]
    return {"command": "python -m benchmarks.grey_dark", "side": 1024, "rows": rows}


def test_counts_are_the_photos_at_or_above_each_threshold() -> None:
    result = _result([(0.1, 0.65, 0.3, 0.95), (0.5, 0.2, 0.7, 0.7)])
    by = {c["threshold"]: c for c in grey_dark.counts(result["rows"])}
    assert by[0.5] == {"threshold": 0.5, "colour": 1, "grey": 1, "colour_dark": 1, "grey_dark": 2}
    assert by[0.7]["grey"] == 0 and by[0.7]["colour_dark"] == 1 and by[0.9]["grey_dark"] == 1
    table = grey_dark.markdown(result)
    assert "| 0.5 | 1/2 | 1/2 | 1/2 | 2/2 |" in table


def test_grey_is_the_luma_in_three_equal_channels() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = (255, 0, 0)
    out = grey_dark.grey(image)
    assert out.shape == image.shape and (out[..., 0] == out[..., 2]).all()
    assert out[0, 0, 0] == 76 and out[1, 1, 0] == 0  # 0.299 * 255


def test_the_section_needs_both_studies(tmp_path: Path) -> None:
    train, val = tmp_path / "train.json", tmp_path / "val.json"
    assert grey_dark.section(train, val) == ""
    train.write_text(json.dumps(_result([(0.1, 0.6, 0.55, 0.8)] * 3)))
    val.write_text(json.dumps(_result([(0.1, 0.2, 0.3, 0.9)])))
    text = grey_dark.section(train, val)
    assert text.startswith("## Greyscale photos") and "| 0.7 | 0/3 | 0/3 | 0/3 | 3/3 |" in text


def test_the_committed_studies_render_into_the_doc() -> None:
    from benchmarks.gen_docs import DOCS

    section = grey_dark.section()
    assert section and section in (DOCS / "perception.md").read_text()
