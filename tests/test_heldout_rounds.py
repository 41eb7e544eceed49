"""The held-out comparisons on several rounds (benchmarks.heldout_rounds)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import heldout_rounds

torch.set_num_threads(1)


def _rows(outputs: list[float], photos: list[str]) -> list[dict]:
    return [
        {"suite": "s", "image": p, "seed": i, "input": 10.0, "output": out, "calls": 1}
        for i, (out, p) in enumerate(zip(outputs, photos, strict=True))
    ]


@given(
    st.lists(
        st.tuples(st.floats(0, 40), st.floats(-5, 5), st.sampled_from("pq")),
        min_size=2,
        max_size=30,
    )
)
def test_compare_gives_each_agents_paired_difference(items) -> None:
    photos = [p for _, _, p in items]
    base = _rows([x for x, _, _ in items], photos)
    other = _rows([x + d for x, d, _ in items], photos)
    result = heldout_rounds.compare({"fixed": base, "other": other}, "fixed")
    diffs = [d for _, d, _ in items]
    entry = result["all"]["agents"]["other"]
    assert entry["minus_versus"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-6)
    assert result["all"]["agents"]["fixed"]["minus_versus"] == 0.0
    assert result["s"]["episodes"] == len(items)
    by_photo = {p: [d for d, q in zip(diffs, photos, strict=True) if q == p] for p in photos}
    means = [sum(v) / len(v) for v in by_photo.values()]
    if len(means) > 1:  # the standard error is over the photos' mean differences
        mean = sum(means) / len(means)
        se = (sum((m - mean) ** 2 for m in means) / (len(means) - 1) / len(means)) ** 0.5
        assert entry["se_photos"] == pytest.approx(se, abs=1e-6)
    else:
        assert entry["se_photos"] is None


def test_compare_refuses_different_episodes() -> None:
    with pytest.raises(ValueError, match="not the same episodes"):
        heldout_rounds.compare(
            {"fixed": _rows([1.0, 2.0], ["p", "p"]), "b": _rows([1.0, 2.0], ["p", "q"])}, "fixed"
        )


def test_limit_keeps_the_first_photos() -> None:
    all_photos = heldout_rounds.held_out_episodes("test", 0, ["mio-b"], 0, 1)
    first = heldout_rounds.held_out_episodes("test", 2, ["mio-b"], 0, 1)
    kept = {spec.image_id for _, spec in first}
    assert len(kept) == 2 and 0 < len(first) < len(all_photos)


def test_main_runs_the_agents_and_refuses_to_overwrite(tmp_path, capsys) -> None:
    out = tmp_path / "r.json"
    argv = ["--agents", "fixed,oracle", "--images", "test", "--limit", "1", "--suites", "mio-b"]
    argv += ["--rounds", "0", "1", "--jobs", "1", "--json", str(out)]
    result = heldout_rounds.main(argv)
    assert result["comparison"]["all"]["episodes"] == len(result["episodes"]["fixed"]) > 0
    assert out.is_file() and "`oracle`" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        heldout_rounds.main(argv)
    with pytest.raises(SystemExit):
        heldout_rounds.main([*argv[:-1], str(tmp_path / "x.json"), "--versus", "ppo"])


def test_rerun_runs_only_the_named_agents_and_keeps_the_others_rows(tmp_path) -> None:
    import json

    out = tmp_path / "r.json"
    argv = ["--agents", "fixed,oracle", "--images", "test", "--limit", "1", "--suites", "mio-b"]
    made = heldout_rounds.main([*argv, "--rounds", "0", "1", "--jobs", "1", "--json", str(out)])
    record = json.loads(out.read_text())
    for row in record["episodes"]["fixed"] + record["episodes"]["oracle"]:
        row["output"] = -1.0  # marks: a rerun agent's rows are made again, a kept one's not
    out.write_text(json.dumps(record))
    again = heldout_rounds.main(["--rerun", str(out), "--agents", "oracle", "--json", str(out)])
    assert again["episodes"]["oracle"] == made["episodes"]["oracle"]
    assert all(row["output"] == -1.0 for row in again["episodes"]["fixed"])
    assert again["command"] == made["command"] and again["reruns"][0]["agents"] == ["oracle"]
    assert json.loads(out.read_text())["reruns"] == again["reruns"]
    with pytest.raises(SystemExit):  # not one of the record's agents
        heldout_rounds.main(["--rerun", str(out), "--agents", "ppo", "--json", str(out)])
    other = tmp_path / "other.json"
    other.write_text("keep")
    with pytest.raises(SystemExit):  # another existing file is never overwritten
        heldout_rounds.main(["--rerun", str(out), "--agents", "oracle", "--json", str(other)])
    assert other.read_text() == "keep"


@pytest.mark.parametrize(
    ("mean", "se", "bar", "expected"),
    [(1.0, 0.2, 0.0, "above"), (1.0, 0.6, 0.0, "undecided"), (-1.0, 0.2, 0.0, "below"),
     (-0.5, 0.1, -1.0, "above"), (0.3, None, 0.0, "undecided")],
)  # fmt: skip
def test_call_needs_two_standard_errors(mean, se, bar, expected) -> None:
    assert heldout_rounds.call(mean, se, bar) == expected


def test_checks_read_each_comparison_from_the_episodes() -> None:
    photos = ["p", "p", "q", "q"]
    fixed = [dict(r, suite="mio-b") for r in _rows([20.0, 21.0, 22.0, 23.0], photos)]
    exhaustive = [dict(r, output=r["output"] + 1.0) for r in fixed]
    result = {"episodes": {"fixed": fixed, "exhaustive": exhaustive}}
    lines = "\n".join(heldout_rounds.checks_markdown(result))
    assert "`exhaustive` - `fixed` | +0.0 |  | +1.00 ± 0.00 above |" in lines
    assert "`fixed` - input | +0.0 |  | +11.50 ± 2.00 above |" in lines
    assert "ppo" not in lines  # agents not run are left out


def test_first_round_sentence_reads_the_first_share_of_each_suite() -> None:
    photos = ["p", "q", "p", "q"]  # two rounds of two photos, round by round
    fixed = [dict(r, suite="mio-a") for r in _rows([20.0, 20.0, 20.0, 20.0], photos)]
    exhaustive = [dict(r, output=o) for r, o in zip(fixed, [21.0, 21.0, 19.0, 19.0], strict=True)]
    result = {"rounds": [0, 2], "episodes": {"fixed": fixed, "exhaustive": exhaustive}}
    assert "mio-a +1.00 -> +0.00 dB" in heldout_rounds.first_round_sentence(result)


def test_section_names_its_photos_and_rule(tmp_path, monkeypatch) -> None:
    photos = ["p", "q", "p", "q"]
    fixed = [dict(r, suite="mio-a") for r in _rows([20.0, 21.0, 22.0, 23.0], photos)]
    result = {
        "command": "python -m benchmarks.heldout_rounds ...",
        "rounds": [0, 2],
        "versus": "fixed",
        "agents": ["fixed"],
        "comparison": heldout_rounds.compare({"fixed": fixed}, "fixed"),
        "episodes": {"fixed": fixed},
    }
    path = tmp_path / "bundled.json"
    monkeypatch.setitem(heldout_rounds.SETS, "bundled", (path, "the test", "abc1234"))
    assert heldout_rounds.section("bundled") == ""  # nothing committed yet
    path.write_text(json.dumps(result))
    text = heldout_rounds.section("bundled")
    assert "## 2 rounds of the test" in text and "these 2 photos" in text
    assert "rule abc1234" in text and "8 episodes" not in text


def test_with_rounds_appends_each_committed_set_in_order(tmp_path, monkeypatch) -> None:
    from benchmarks import gen_docs

    sections = {"a": "## A", "b": "", "c": "## C"}  # b: not committed yet
    monkeypatch.setattr(heldout_rounds, "section", lambda kind: sections[kind])
    assert gen_docs.with_rounds("text\n", "a", "b", "c") == "text\n\n## A\n\n## C\n"
    assert gen_docs.with_rounds("text\n") == "text\n"


def test_subsets_split_the_bundled_photos_from_the_others() -> None:
    photos = ["lomiri/a", "skimage/chelsea", "plasma/b", "sklearn/china"] * 2
    fixed = [dict(r, suite="mio-a") for r in _rows([20.0] * 8, photos)]
    gains = [1.0, -1.0, 3.0, -3.0, 1.0, -1.0, 3.0, -3.0]
    other = [dict(r, output=r["output"] + g) for r, g in zip(fixed, gains, strict=True)]
    result = {"versus": "fixed", "agents": ["fixed", "other"]}
    result["episodes"] = {"fixed": fixed, "other": other}
    lines = heldout_rounds.subsets_markdown(result)
    assert lines[2].startswith("| mio-a | `other` | +2.00 ± 2.00 | -2.00 ± 2.00 | +0.00")
    only_corpus = {
        a: [r for r in rows if not heldout_rounds.shipped(r["image"])]
        for a, rows in result["episodes"].items()
    }
    assert heldout_rounds.subsets_markdown({**result, "episodes": only_corpus}) == []


def test_rounds_block_in_a_page_is_regenerated(tmp_path, monkeypatch) -> None:
    from benchmarks import gen_docs

    photos = ["lomiri/a", "skimage/chelsea"] * 2
    fixed = [dict(r, suite="mio-a") for r in _rows([20.0, 21.0, 22.0, 23.0], photos)]
    result = {"versus": "fixed", "agents": ["fixed"], "episodes": {"fixed": fixed}}
    result["comparison"] = heldout_rounds.compare({"fixed": fixed}, "fixed")
    (tmp_path / "r.json").write_text(json.dumps(result))
    monkeypatch.setattr(gen_docs, "ROOT", tmp_path)
    page = "a\n<!-- heldout-rounds: r.json -->\nold\n<!-- /heldout-rounds -->\nb\n"
    text = gen_docs.with_rounds_tables(page)
    assert "old" not in text and "| mio-a | 4 |" in text and "By set of photos" in text


def test_calls_show_after_the_mean_only_when_counted() -> None:
    photos = ["p", "q"]
    fixed = [dict(r, suite="mio-a") for r in _rows([20.0, 21.0], photos)]
    result = {"versus": "fixed", "agents": ["fixed"], "comparison": {}}
    result["comparison"] = heldout_rounds.compare({"fixed": fixed}, "fixed")
    assert "| 20.50 / 1.0 |" in "\n".join(heldout_rounds.markdown(result))
    uncounted = [{k: v for k, v in r.items() if k != "calls"} for r in fixed]
    result["comparison"] = heldout_rounds.compare({"fixed": uncounted}, "fixed")
    text = "\n".join(heldout_rounds.markdown(result))
    assert "| 20.50 |" in text and "tool calls" not in text


def test_record_row_counts_the_calls_before_stop() -> None:
    from benchmarks.ab_test import record_row

    record = {
        "suite": "mio-a",
        "image": "p",
        "degradations": ["noise"],
        "seed": 1,
        "metrics_input": {"psnr": 20.0},
        "metrics_output": {"psnr": 25.0},
        "actions": [{"tool": "a", "params": {}}, {"tool": "b", "params": {}}, None],
    }
    assert record_row(record)["calls"] == 2
    assert record_row({**record, "actions": [None]})["calls"] == 0


def test_one_suites_table_has_no_all_row_and_several_suites_keep_it() -> None:
    photos = ["p", "q"]
    one = [dict(r, suite="mio-a") for r in _rows([20.0, 21.0], photos)]
    result = {"versus": "fixed", "agents": ["fixed"]}
    result["comparison"] = heldout_rounds.compare({"fixed": one}, "fixed")
    rows = [line for line in heldout_rounds.markdown(result) if line.startswith("| ")]
    assert [r.split(" |")[0] for r in rows[1:]] == ["| mio-a"]
    two = one + [dict(r, suite="mio-b") for r in _rows([22.0, 23.0], photos)]
    result["comparison"] = heldout_rounds.compare({"fixed": two}, "fixed")
    rows = [line for line in heldout_rounds.markdown(result) if line.startswith("| ")]
    assert [r.split(" |")[0] for r in rows[1:]] == ["| mio-a", "| mio-b", "| all"]


def test_a_rerun_repeated_after_each_change_is_named_once_with_its_count() -> None:
    from benchmarks.heldout_rounds import _rerun_counts

    same = {"agents": ["ppo"], "command": "python -m benchmarks.heldout_rounds --rerun X"}
    other = {"agents": ["exhaustive", "greedy"], "command": "python -m ... --agents e,g"}
    counts = _rerun_counts({"reruns": [other, same, same, same]})
    assert list(counts.values()) == [1, 3]  # first-run order, each once
    assert sum(counts.values()) == 4 and _rerun_counts({}) == {}


def test_the_default_limit_reads_every_photo_but_of_corpus_test() -> None:
    from benchmarks.heldout_rounds import default_limit

    assert default_limit("corpus:test") == 5
    assert default_limit("independent") == default_limit("corpus:val@3") == 0
