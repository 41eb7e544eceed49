"""docs/perception.md's section on the shipped network, rendered from the committed results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import perception_ship


def test_the_section_renders_the_committed_cross_validation_and_thresholds() -> None:
    lines = perception_ship.section()
    assert lines[0].startswith("## The direction profile ships")
    assert "| | release 2 | profile, 40k | shipped |" in lines
    text = " ".join(" ".join(lines).split())
    tuned = json.loads(perception_ship.THRESHOLDS.read_text())
    for t, start in tuned["start"].items():  # every kept change is named
        if tuned["final"][t] != start:
            assert f"{t} {start:g} -> {tuned['final'][t]:g}" in text


def test_a_missing_result_leaves_the_section_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(perception_ship, "THRESHOLDS", tmp_path / "missing.json")
    assert not perception_ship.available() and perception_ship.section() == []
