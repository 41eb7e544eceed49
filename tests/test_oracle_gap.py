"""benchmarks.oracle_gap: an agent's gap to oracle, split by the task it got wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import gen_docs, oracle_gap


def _record(
    agent: str, degradations: list[str], tools: list[str], psnr: float, seed: int = 1
) -> dict[str, Any]:
    return {
        "agent": agent,
        "suite": "mio-a",
        "image": "photo",
        "degradations": degradations,
        "seed": seed,
        "actions": [*({"tool": t, "params": {}} for t in tools), None],
        "metrics_output": {"psnr": psnr},
    }


def _write(folder: Path, agent: str, records: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (folder / f"mio-a__{agent}.jsonl").write_text(lines)


def test_missed_and_false_tasks_are_named() -> None:
    told = _record("oracle", ["rain", "dark"], ["gamma_correction", "derain_opening"], 25.0)
    mine = _record("ppo", ["rain", "dark"], ["derain_opening", "dark_channel_prior"], 17.0)
    gap = oracle_gap.episode_gap(mine, told)
    assert gap.gap_db == pytest.approx(-8.0)
    assert gap.missed == {"brightening"}
    assert gap.false == {"dehazing"}
    assert not gap.same_plan
    assert oracle_gap.episode_gap(told, told).same_plan


def test_records_of_other_episodes_are_refused() -> None:
    told = _record("oracle", ["rain"], ["derain_opening"], 25.0, seed=1)
    mine = _record("ppo", ["rain"], ["derain_opening"], 25.0, seed=2)
    with pytest.raises(ValueError, match="different episodes"):
        oracle_gap.episode_gap(mine, told)


def test_shares_are_of_the_dB_behind_oracle() -> None:
    gaps = [
        oracle_gap.EpisodeGap("mio-a", -6.0, frozenset({"brightening"}), frozenset(), False),
        oracle_gap.EpisodeGap("mio-a", -2.0, frozenset(), frozenset({"dehazing"}), False),
        oracle_gap.EpisodeGap("mio-a", +1.0, frozenset(), frozenset({"dehazing"}), False),
        oracle_gap.EpisodeGap("mio-a", 0.0, frozenset(), frozenset(), True),
    ]
    result = oracle_gap.summary(gaps)
    assert result["suites"]["mio-a"] == {"episodes": 4, "mean_gap_db": -1.75, "same_plan": 1}
    assert result["tasks"]["brightening"]["missed_share_lost"] == pytest.approx(0.75)
    # a false call that gained counts in the mean, not in the dB lost
    assert result["tasks"]["dehazing"]["false_episodes"] == 2
    assert result["tasks"]["dehazing"]["false_mean_gap_db"] == pytest.approx(-0.5)
    assert result["tasks"]["dehazing"]["false_share_lost"] == pytest.approx(0.25)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=8))
def test_each_kind_of_share_is_at_most_one(gaps_db: list[float]) -> None:
    gaps = [
        oracle_gap.EpisodeGap("s", g, frozenset({"denoising"}), frozenset({"deraining"}), False)
        for g in gaps_db
    ]
    for row in oracle_gap.summary(gaps)["tasks"].values():
        for kind in ("missed", "false"):
            assert 0.0 <= row[f"{kind}_share_lost"] <= 1.0 + 1e-9


def test_doc_block_is_made_from_the_folders(tmp_path: Path, monkeypatch: Any) -> None:
    told = _record("oracle", ["noise", "dark"], ["dct_denoise", "gamma_correction"], 24.0)
    mine = _record("ppo", ["noise", "dark"], ["dct_denoise"], 18.0)
    other = _record("ppo", ["noise"], ["dct_denoise"], 30.0, seed=9)  # oracle did not run it
    _write(tmp_path / "mine", "ppo", [mine, other])
    _write(tmp_path / "told", "oracle", [told])
    monkeypatch.setattr(gen_docs, "ROOT", tmp_path)
    text = "a\n<!-- oracle-gap: ppo mine told -->\nSTALE\n<!-- /oracle-gap -->\nb\n"
    out = gen_docs.with_oracle_gap_tables(text)
    assert "STALE" not in out
    assert "| mio-a | 1 | -6.00 | 0 |" in out
    assert "| brightening | 1 | -6.00 | 100% | 0 | - | 0% |" in out
    assert out.startswith("a\n") and out.endswith("<!-- /oracle-gap -->\nb\n")


def test_no_common_episode_is_a_usage_error(tmp_path: Path) -> None:
    _write(tmp_path / "mine", "ppo", [_record("ppo", ["noise"], ["dct_denoise"], 30.0)])
    (tmp_path / "told").mkdir()
    with pytest.raises(SystemExit):
        oracle_gap.main(["ppo", str(tmp_path / "mine"), str(tmp_path / "told")])
