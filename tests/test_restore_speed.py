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


def test_each_learned_network_is_timed_in_both_layouts_with_the_same_output() -> None:
    from tir_env.tools.learned import SPECS
    from tir_env.tools.learned.weights import weights_path

    photo = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    rows = restore_speed.measure_networks(photo, repeats=1, tile=32)
    assert [r["network"] for r in rows] == [s.name for s in SPECS if weights_path(s.name).is_file()]
    assert all(r["max_difference"] < 1e-4 and r["speedup"] > 0 for r in rows)
    record = {"command": "c", "photo": "p", "size": [48, 64], "repeats": 1, "threads": 1}
    png = {"step": "PNG", "before_s": 1.0, "now_s": 1.0, "speedup": 1.0}
    png |= {"bytes_before": 2, "bytes_now": 2}
    table = restore_speed.markdown({**record, "rows": [png], "networks": rows})
    assert sum(line.startswith("| learned_") for line in table) == len(rows)
