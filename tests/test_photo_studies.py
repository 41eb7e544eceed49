"""What the per-photo studies share (:mod:`benchmarks.photo_studies`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import photo_studies
from tir_env import data


def _two_rows(images: str, image_id: str, tag: str) -> list[dict[str, Any]]:
    return [{"image": image_id, "tag": tag, "k": k} for k in range(2)]


def test_rows_come_per_photo_in_order_without_the_bundled_test_photos() -> None:
    ids = photo_studies.study_ids("bundled:train")
    assert ids == list(data.source("bundled:train").ids)  # none of them is a test photo
    assert photo_studies.study_ids("bundled:test") == []
    rows = photo_studies.rows_per_photo(_two_rows, "bundled:train", 2, "x")
    assert [r["image"] for r in rows] == [i for i in ids for _ in range(2)]
    assert {r["tag"] for r in rows} == {"x"}


def test_a_study_is_written_whole_and_its_table_printed(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "new" / "study.json"
    photo_studies.write_study(out, {"a": 1}, lambda result: [f"| {result['a']} |"])
    assert json.loads(out.read_text()) == {"a": 1}
    assert capsys.readouterr().out == "| 1 |\n"
    assert (
        photo_studies.command("benchmarks.x", ["--a", "b c"]) == "python -m benchmarks.x --a 'b c'"
    )
