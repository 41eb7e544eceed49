"""The paired A/B test of agent settings (benchmarks.ab_test) on the bundled photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import ab_test
from benchmarks.suites import get_suite

torch.set_num_threads(1)


def test_round_zero_is_the_suite_and_later_rounds_are_new() -> None:
    suite = get_suite("mio-b")
    zero = [spec for _, spec in ab_test.round_episodes("test", ["mio-b"], 0, 1)]
    assert zero == suite.episodes("test")
    later = [spec for _, spec in ab_test.round_episodes("test", ["mio-b"], 1, 3)]
    assert len(later) == 2 * len(zero)
    seeds = [s.seed for s in zero + later]
    assert len(set(seeds)) == len(seeds)


def _rows(outputs: list[float], images: list[str]) -> list[dict]:
    return [
        {"suite": "s", "image": im, "seed": i, "input": 10.0, "output": out}
        for i, (out, im) in enumerate(zip(outputs, images, strict=True))
    ]


@given(
    st.lists(
        st.tuples(st.floats(0, 40), st.floats(-5, 5), st.sampled_from("pq")),
        min_size=2,
        max_size=30,
    )
)
def test_summary_is_the_paired_mean(items: list[tuple[float, float, str]]) -> None:
    a = _rows([x for x, _, _ in items], [p for _, _, p in items])
    b = _rows([x + d for x, d, _ in items], [p for _, _, p in items])
    s = ab_test.summary(a, b)
    diffs = [y["output"] - x["output"] for x, y in zip(a, b, strict=True)]
    assert s["mean"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-6)
    assert s["episodes"] == len(items)
    assert s["better"] + s["worse"] <= s["changed"] <= len(items)
    assert set(s["by_photo"]) == {p for _, _, p in items}


def test_summary_refuses_different_episodes() -> None:
    a = _rows([1.0, 2.0], ["p", "p"])
    b = _rows([1.0, 2.0], ["p", "q"])
    with pytest.raises(ValueError, match="not the same episodes"):
        ab_test.summary(a, b)


def test_main_runs_both_specs_and_refuses_to_overwrite(tmp_path) -> None:
    out = tmp_path / "ab.json"
    argv = ["--a", "fixed", "--b", "fixed:params=default", "--images", "test[0/4]"]
    argv += ["--suites", "mio-b", "--rounds", "0", "1", "--jobs", "1", "--json", str(out)]
    result = ab_test.main(argv)
    assert result["summary"]["episodes"] == len(get_suite("mio-b").episodes("test[0/4]"))
    assert json.loads(out.read_text())["summary"] == result["summary"]
    with pytest.raises(SystemExit):
        ab_test.main(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--a", "fixed", "--b", "fixed:no_such_option=1"],
        ["--a", "no-such-agent", "--b", "fixed"],
        ["--a", "fixed", "--b", "fixed", "--rounds", "3", "1"],
        ["--a", "fixed", "--b", "fixed", "--suites", "no-such-suite"],
        ["--a", "fixed", "--b", "fixed", "--env-b", "NO_EQUALS_SIGN"],
        ["--a", "fixed", "--b", "fixed", "--env-b", "=1"],
    ],
)
def test_bad_arguments_are_named_before_any_episode(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ab_test.main([*argv, "--images", "test[0/4]"])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def _blind_weights(folder: Path) -> Path:
    """The shipped weights, but a perception record whose thresholds no reading reaches."""
    from tir_env.tools.learned.weights import SHIPPED_DIR

    folder.mkdir()
    for f in SHIPPED_DIR.iterdir():
        (folder / f.name).symlink_to(f)
    record = json.loads((SHIPPED_DIR / "perception.json").read_text())
    record["thresholds"] = dict.fromkeys(record["thresholds"], 2.0)
    (folder / "perception.json").unlink()
    (folder / "perception.json").write_text(json.dumps(record))
    return folder


def test_weights_b_loads_the_b_arm_from_its_folder(tmp_path) -> None:
    episodes = ab_test.round_episodes("test[0/4]", ["mio-b"], 0, 1)[:1]

    def plan(weights: Path | None = None) -> list:
        run = ab_test.run_spec(
            "fixed", episodes, "test[0/4]", None if weights is None else str(weights)
        )
        return [a["tool"] for a in run[0]["actions"] if a]

    shipped = plan()
    assert shipped  # the episode is degraded and the shipped perception sees it
    # this process loaded the shipped network first; the arm still reads its own folder
    assert plan(_blind_weights(tmp_path / "blind")) == []
    assert plan() == shipped  # and the shipped weights are back after it


def test_weights_b_must_be_a_folder(tmp_path, capsys) -> None:
    argv = ["--a", "fixed", "--b", "fixed", "--images", "test[0/4]"]
    with pytest.raises(SystemExit) as exit_info:
        ab_test.main([*argv, "--weights-b", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert "no such folder" in capsys.readouterr().err


def test_forgetting_networks_drops_the_tools_that_hold_one() -> None:
    from tir_env.tools.base import make_tool

    before = make_tool("learned_dehazing")
    ab_test._forget_networks()
    assert make_tool("learned_dehazing") is not before  # a fresh tool loads its weights anew


def test_executions_are_summarised_when_recorded() -> None:
    a = [{**row, "executions": 2} for row in _rows([1.0, 2.0], ["p", "q"])]
    b = [
        {**row, "executions": e}
        for row, e in zip(_rows([1.5, 2.0], ["p", "q"]), (3, 5), strict=True)
    ]
    s = ab_test.summary(a, b)
    assert s["executions"] == {"a": 2.0, "b": 4.0}
    assert s["executions_by_suite"] == {"s": {"a": 2.0, "b": 4.0}}
    result = {"a": "x", "b": "y", "summary": s}
    assert (
        "Tool executions an episode, a / b: 2.00 / 4.00 (s 2.0 / 4.0)."
        in ab_test.markdown(result)[-1]
    )
    # rows written before executions were kept: no executions, as before
    old = ab_test.summary(_rows([1.0], ["p"]) * 2, _rows([1.0], ["p"]) * 2)
    assert "executions" not in old
    assert "executions" not in ab_test.markdown({"a": "x", "b": "y", "summary": old})[-1]


def test_tuned_b_runs_the_b_arm_with_its_table_and_restores_the_shipped_one(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.tuned import TUNED_FILE, tuned_file

    table = tmp_path / "refit.json"
    monkeypatch.setattr(ab_test, "agent_records", lambda *_: [{"table": str(tuned_file())}])
    assert ab_test.run_spec("fixed", [], "test", tuned=str(table)) == [{"table": str(table)}]
    assert tuned_file() == TUNED_FILE


def test_a_broken_tuned_b_table_is_a_usage_error(tmp_path, capsys) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"params": ')
    argv = ["--a", "fixed", "--b", "fixed", "--images", "test[0/4]", "--tuned-b", str(broken)]
    with pytest.raises(SystemExit) as exit_info:
        ab_test.main(argv)
    assert exit_info.value.code == 2
    assert "--tuned-b" in capsys.readouterr().err


def test_env_b_is_set_in_the_b_arm_only_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("TIR_AB_PROBE", raising=False)
    monkeypatch.setattr(
        ab_test, "agent_records", lambda *_: [{"probe": os.environ.get("TIR_AB_PROBE")}]
    )
    env = (("TIR_AB_PROBE", "1"),)
    assert ab_test.run_spec("fixed", [], "test", env=env) == [{"probe": "1"}]
    assert ab_test.run_spec("fixed", [], "test") == [{"probe": None}]
    assert "TIR_AB_PROBE" not in os.environ


def test_episode_ticks_move_the_bar_once_per_episode_across_workers() -> None:
    import queue
    from concurrent.futures import Future

    ticks = ab_test.EpisodeTicks(queue.Queue())
    for _ in range(5):
        ticks({"output": 20.0})
    done: Future[list] = Future()
    done.set_result([])

    class Bar:
        n = 0

        def update(self, k: int) -> None:
            self.n += k

    bar = Bar()
    ab_test.count_ticks(ticks.queue, [done], bar, wait=0.01)
    assert bar.n == 5 and ticks.queue.empty()
