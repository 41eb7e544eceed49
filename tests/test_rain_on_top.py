"""The rain-on-top study (:mod:`benchmarks.rain_on_top`): its record and its table."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import rain_on_top


def test_the_study_records_every_copy_and_renders_a_table_per_side(tmp_path: Path) -> None:
    out = tmp_path / "cue.json"
    result = rain_on_top.main(["--images", "bundled:train", "--side", "256", "--json", str(out)])
    rows = result["sides"]["256"]
    assert out.exists() and result["photos"] == len(rows) > 0
    for row in rows:
        assert set(rain_on_top.COPIES) <= set(row)
        for copy in ("rain, then shift 40", "rain, then linear to 125"):
            assert not row[copy]["white"] and not row[copy]["on_top"]  # they cap the brightest
    table = rain_on_top.markdown(result)
    assert "| copy, 256 px |" in "\n".join(table)
    assert sum(line.startswith("- `") for line in table) == len(rows)  # few photos: listed


def test_the_study_never_overwrites_a_record(tmp_path: Path) -> None:
    out = tmp_path / "cue.json"
    out.write_text("{}")
    with pytest.raises(SystemExit):
        rain_on_top.main(["--images", "bundled:train", "--json", str(out)])
    assert out.read_text() == "{}"
