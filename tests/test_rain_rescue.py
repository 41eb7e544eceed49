"""The rain-rescue study (:mod:`benchmarks.rain_rescue`): what each rescue reads."""

from __future__ import annotations

from typing import Any

from benchmarks import rain_rescue


def _row(combo: list[str], rain: float, dark: float, streaks: float) -> dict[str, Any]:
    return {
        "combo": combo,
        "rain": rain,
        "dark": dark,
        "rain_threshold": 0.8,
        "dark_threshold": 0.5,
        "streaks": streaks,
    }


ROWS = [
    _row(["rain"], 0.9, 0.0, 0.6),  # read at the record's threshold
    _row(["noise", "rain"], 0.2, 0.05, 0.6),  # missed, clear, far from dark: rescued by both
    _row(["rain", "dark"], 0.2, 0.4, 0.6),  # missed beside darkness: only the plain rescue
    _row(["jpeg", "rain"], 0.05, 0.0, 0.6),  # missed, under a tenth of the threshold
    _row(["defocus_blur", "rain"], 0.5, 0.0, 0.3),  # missed, streaks not clear
    _row(["motion_blur", "dark"], 0.2, 0.45, 0.5),  # no rain, near dark: a false read (plain)
    _row(["haze"], 0.2, 0.0, 0.5),  # no rain, far from dark: a false read for both
]


def test_each_rescue_reads_what_its_conditions_allow() -> None:
    plain, far = rain_rescue.summary(ROWS, False), rain_rescue.summary(ROWS, True)
    assert plain["missed"] == far["missed"] == 4 and plain["missed_beside_dark"] == 1
    assert (plain["rescued"], plain["rescued_beside_dark"], plain["false_reads"]) == (2, 1, 2)
    assert (far["rescued"], far["rescued_beside_dark"], far["false_reads"]) == (1, 0, 1)


def test_the_table_names_both_rescues() -> None:
    table = rain_rescue.markdown(
        {"command": "python -m benchmarks.rain_rescue", "images": "x", "photos": 1, "rows": ROWS}
    )
    assert "| clear streaks (rule 79997bb) | 5 | 4 (1) | 1 of 3 | 1 of 1 | 2 (2) |" in table
    assert "| and far from dark | 5 | 4 (1) | 1 of 3 | 0 of 1 | 1 (2) |" in table


def test_episodes_hold_every_rain_combination_and_a_seeded_draw_without() -> None:
    first = rain_rescue.episodes("corpus/photo", 3)
    assert first == rain_rescue.episodes("corpus/photo", 3)  # the same draw at every run
    assert sum("rain" not in combo for _, combo in first) == 3
    assert {s for s, c in first if "rain" in c} >= {"mio-a", "mio-b", "ood-d2", "ood-d3"}
