"""benchmarks.executions_check: what an agent is charged against what the pool ran."""

from __future__ import annotations

import pytest

from benchmarks.executions_check import check, main, report


@pytest.mark.parametrize("agent", ["ppo", "fixed"])
def test_the_agents_are_charged_what_the_pool_ran(agent):
    result = check(agent, "mio-b", "test", 0, 1)
    assert result["episodes"] == 16
    assert result["charged"] == pytest.approx(result["ran"])
    assert result["episodes_charged_more"] == result["episodes_ran_more"] == 0
    assert "charged" in report(result)


def test_the_report_refuses_to_overwrite(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{}")
    with pytest.raises(SystemExit, match="exists"):
        main(["--json", str(path)])
    assert path.read_text() == "{}"
