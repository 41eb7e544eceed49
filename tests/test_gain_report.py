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


def test_trees_section_is_empty_until_made_and_judges_each_agent(tmp_path) -> None:
    import json

    from benchmarks import gain_report

    assert gain_report.trees_section(tmp_path) == []
    scores = {"spearman_within": 0.5, "spearman_change": 0.6, "pick_gain_db": 1.2}
    record = {
        "command": "python -m benchmarks.train_gain_trees --out x",
        "pairs": 36000,
        "groups": 6000,
        "train": "corpus:train@3",
        "protocols": ["single", "mio-a"],
        "second_steps": 2,
        "seconds": 60.0,
        "val": {
            "groups": 400,
            "photos": "corpus:val@3",
            "gain_trees": {**scores, "pick_lost_db": 0.7},
            "tirqa": {**scores, "spearman_within": 0.4, "pick_lost_db": 1.0},
        },
    }
    (tmp_path / "record.json").write_text(json.dumps(record))
    text = "\n".join(gain_report.trees_section(tmp_path))
    assert "| Spearman within a group (mean) | 0.500 | 0.400 |" in text
    assert "by the rule" not in text  # no A/B yet

    def write(agent: str, mean: float, se_photos: float) -> None:
        summary = {
            "episodes": 10,
            "a": 20.0,
            "b": 20.0 + mean,
            "mean": mean,
            "se_photos": se_photos,
            "by_suite": {"mio-a": {"mean": mean, "se": 0.01}},
        }
        kept = {"output": 25.0, "calls": 2, "degradations": ["haze", "noise"]}
        dropped = {"output": 20.0, "calls": 1, "degradations": ["haze", "noise"]}
        episodes = {"a": [kept, kept], "b": [dropped, {**kept, "output": 24.0}]}
        (tmp_path / f"ab_{agent}.json").write_text(
            json.dumps({"command": "python -m y", "summary": summary, "episodes": episodes})
        )

    write("exhaustive", 0.2, 0.05)
    write("greedy", 0.2, 0.12)  # above +0.10 but not above two se over photos
    text = "\n".join(gain_report.trees_section(tmp_path))
    assert "| `exhaustive` | 10 | 20.00 | 20.20 | +0.200 | 0.050 | holds |" in text
    assert "| `greedy` | 10 | 20.00 | 20.20 | +0.200 | 0.120 | fails |" in text
    assert "| `greedy` | +0.20 (0.01) |" in text
    assert "Takes it by default: `exhaustive`." in text
    assert "`exhaustive` 83%, `greedy` 83%" in text  # 5 of the 6 dB lost: a dropped call
