"""The diagnosis of the crop judge's additions beside noise (benchmarks.noisy_adds)."""

from __future__ import annotations

import pytest

from benchmarks.noisy_adds import SUITES, added, main, summary


def _probe(suite: str, kind: str, gain: float, **over: object) -> dict:
    row = {"suite": suite, "type": kind, "ratio": 0.5, "seen": False, "noisy": True}
    row |= {"true": gain > 0, "gain": gain, "predicted": 1.0, "reach": 1.0}
    return row | over


def test_only_the_judges_own_additions_beside_noise_count() -> None:
    rows = [
        _probe("mio-a", "dark", 10.0),
        _probe("ood-d2", "dark", -20.0),
        _probe("ood-d2", "dark", -5.0, seen=True),  # perception saw it: not an addition
        _probe("ood-d2", "haze", -5.0, predicted=-1.0),  # the judge rules it out
        _probe("ood-d2", "haze", -5.0, reach=1e3),  # beyond its reach: perception's call
        _probe("mio-c", "haze", -8.0, noisy=False),  # no noise seen: not blocked
    ]
    assert [added(r) for r in rows] == [True, True, False, False, False, True]
    counts = dict.fromkeys(SUITES, 10)
    s = summary(rows, counts)
    assert s["mio-a/dark"] == {"adds": 1, "right": 1, "db_per_episode": pytest.approx(1.0)}
    assert s["ood-d2/dark"]["db_per_episode"] == pytest.approx(-2.0)
    assert s["mio-c/haze"]["adds"] == 0
    assert s["all"]["db_per_episode"] == pytest.approx(-10.0 / 50)


def test_an_existing_report_is_refused_before_any_work(tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "report.json"
    out.write_text("{}")
    with pytest.raises(SystemExit):
        main(["--json", str(out)])
    assert out.read_text() == "{}"
