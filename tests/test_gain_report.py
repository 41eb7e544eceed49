"""The quality-gain report's sections (benchmarks.gain_report)."""

from __future__ import annotations


def test_search_section_is_empty_until_committed_and_reads_the_rule(tmp_path) -> None:
    import json

    from benchmarks import gain_report

    assert gain_report.search_section(tmp_path) == []

    def write(name: str, mean: float, se: float) -> None:
        summary = {"episodes": 10, "a": 20.0, "b": 20.0 + mean, "mean": mean, "se": se}
        (tmp_path / name).write_text(json.dumps({"command": "python -m x", "summary": summary}))

    write("ab_exhaustive_gain.json", 0.2, 0.05)
    write("ab_greedy_gain.json", 0.2, 0.12)  # above +0.10 but not above two se
    write("ab_exhaustive_gain_r3.json", 0.3, 0.05)
    write("ab_greedy_gain_r3.json", 0.15, 0.05)
    text = "\n".join(gain_report.search_section(tmp_path))
    assert "| release 3 | `greedy` | 10 | 20.00 | 20.15 | +0.150 (0.050) |" in text
    assert "By the rule: shipped: fails; release 3: holds." in text
