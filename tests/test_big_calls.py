"""Which calls make the big differences between two agents (benchmarks.big_calls)."""

from __future__ import annotations

import json

import pytest

from benchmarks import big_calls


def _row(image: str, seed: int, output: float) -> dict:
    return {"suite": "mio-a", "image": image, "seed": seed, "input": 15.0, "output": output}


def _result() -> dict:
    a = [_row("lomiri/x", 1, 30.0), _row("skimage/y", 2, 20.0), _row("lomiri/x", 3, 10.0)]
    b = [_row("lomiri/x", 1, 20.0), _row("skimage/y", 2, 19.0), _row("lomiri/x", 3, 25.0)]
    return {"episodes": {"a": a, "b": b}}


def test_big_episodes_keep_those_far_apart_and_check_the_pairing() -> None:
    big = big_calls.big_episodes(_result(), "a", "b", 5.0)
    assert [(e["seed"], e["diff"]) for e in big] == [(1, 10.0), (3, -15.0)]
    swapped = _result()
    swapped["episodes"]["b"].reverse()
    with pytest.raises(ValueError, match="not the same episodes"):
        big_calls.big_episodes(swapped, "a", "b", 5.0)


def test_summary_groups_by_change_of_tasks_photos_and_sign() -> None:
    big = big_calls.big_episodes(_result(), "a", "b", 0.5)
    calls = {
        ("mio-a", 1): {"a": {"denoising", "dehazing"}, "b": {"denoising"}},
        ("mio-a", 2): {"a": {"brightening"}, "b": {"brightening"}},
        ("mio-a", 3): {"a": {"dehazing"}, "b": {"brightening"}},
    }
    rows = big_calls.summarise(big, calls, "a", "b")
    assert {(r["change"], r["photos"], r["sign"], r["sum_db"]) for r in rows} == {
        ("+dehazing", "corpus-only", "gain", 10.0),
        ("same tasks", "bundled", "gain", 1.0),
        ("+dehazing, -brightening", "corpus-only", "loss", -15.0),
    }
    result = {"a": "a", "b": "b", "above": 0.5, "of": 3, "total_db": -4.0, "episodes": big}
    text = "\n".join(big_calls.markdown({**result, "rows": rows}))
    assert "| corpus-only | +dehazing | 1 | +10.0 | 0 | +0.0 | +10.0 |" in text
    assert "3 of 3 episodes differ by more than 0.5 dB; they sum to -4.0 dB" in text


def test_refuses_an_agent_the_result_lacks_and_an_existing_output(tmp_path) -> None:
    rounds = tmp_path / "r.json"
    rounds.write_text(json.dumps(_result()))
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit):
        big_calls.main([str(rounds), "--a", "greedy", "--b", "b", "--json", str(out)])
    out.write_text("{}")
    with pytest.raises(SystemExit):
        big_calls.main([str(rounds), "--a", "a", "--b", "b", "--json", str(out)])
    assert out.read_text() == "{}"


def test_a_big_calls_block_in_a_page_is_regenerated(tmp_path, monkeypatch) -> None:
    from benchmarks import gen_docs

    big = big_calls.big_episodes(_result(), "a", "b", 5.0)
    rows = [
        {
            "change": "+dehazing",
            "photos": "corpus-only",
            "sign": "gain",
            "episodes": 1,
            "sum_db": 10.0,
        }
    ]
    result = {"a": "a", "b": "b", "above": 5.0, "of": 3, "total_db": -4.0, "episodes": big}
    (tmp_path / "c.json").write_text(json.dumps({**result, "rows": rows}))
    monkeypatch.setattr(gen_docs, "ROOT", tmp_path)
    page = "x\n<!-- big-calls: c.json -->\nold\n<!-- /big-calls -->\n"
    text = gen_docs.with_study_tables(page)
    assert "old" not in text and "| corpus-only | +dehazing | 1 | +10.0 |" in text
