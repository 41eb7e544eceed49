"""The whole-photo speed benchmark (:mod:`benchmarks.restore_speed`): same results, a table."""

from __future__ import annotations

import numpy as np

from benchmarks import restore_speed


def test_each_step_is_timed_both_ways_on_the_same_photo() -> None:
    photo = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    rows = restore_speed.measure(photo, repeats=1)
    assert [r["step"] for r in rows] == ["float planes", "darkest channel", "PNG"]
    assert all(r["before_s"] >= 0 and r["now_s"] >= 0 and r["speedup"] > 0 for r in rows)
    assert rows[-1]["bytes_now"] > 0 and rows[-1]["bytes_before"] > 0
    record = {"command": "c", "photo": "p", "size": [40, 56], "repeats": 1, "threads": 1}
    table = restore_speed.markdown({**record, "rows": rows})
    assert "56x40" in table[0] and any(line.startswith("| PNG |") for line in table)
