"""``benchmarks.reproduce``: committed records are compared episode by episode."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from benchmarks.reproduce import differences, main, read_records


def _record(image: str, output: float, actions: list | None = None) -> dict:
    return {
        "image": image,
        "degradations": ["noise", "jpeg"],
        "seed": 7,
        "actions": actions or [{"tool": "dct_denoise", "params": {}}],
        "metrics_input": {"psnr": 20.0},
        "metrics_output": {"psnr": output},
        "tool_executions": 1,
        "wall_time_s": 0.1,
    }


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_identical_episodes_have_no_differences_wall_time_aside(tmp_path: Path) -> None:
    old = read_records(_write(tmp_path / "a.jsonl", [_record("x", 25.0)]))
    new = {k: {**v, "wall_time_s": 9.0} for k, v in old.items()}
    assert differences(old, new) == []


def test_a_changed_metric_or_action_or_missing_record_is_reported(tmp_path: Path) -> None:
    old = read_records(_write(tmp_path / "a.jsonl", [_record("x", 25.0), _record("y", 24.0)]))
    new = read_records(
        _write(
            tmp_path / "b.jsonl",
            [
                _record("x", 25.01),
                _record("y", 24.0, actions=[{"tool": "nlm_denoise", "params": {}}]),
                _record("z", 1.0),
            ],
        )
    )
    found = differences(old, new)
    assert len(found) == 3
    assert "metrics_output" in found[0] and "actions" in found[1]
    assert "no committed record" in found[2]


def test_a_committed_episode_the_rerun_lacks_is_reported(tmp_path: Path) -> None:
    two = [_record("x", 25.0), {**_record("x", 26.0), "seed": 8}, _record("y", 24.0)]
    old = read_records(_write(tmp_path / "a.jsonl", two))
    new = read_records(_write(tmp_path / "b.jsonl", [_record("x", 25.0)]))
    found = differences(old, new)
    assert len(found) == 2 and all("not in the rerun" in line for line in found)
    changed = read_records(_write(tmp_path / "c.jsonl", [_record("x", 99.0)]))
    assert "differs in" in differences(old, changed)[0]  # what differs prints first
    # a rerun of the first images (--limit) answers only for the images it ran
    (only,) = differences(old, new, every_image=False)
    assert "image_id='x'" in only and "seed=8" in only


@pytest.mark.parametrize(
    ("metric", "output", "same"),
    [
        ("psnr", 25.0 + 4e-6, True),  # float rounding of another CPU
        ("psnr", 25.001, False),
        ("psnr", float("nan"), False),
        ("niqe", 25.0 + 0.011, True),  # NIQE's grid snap amplifies the rounding
        ("niqe", 25.2, False),
    ],
)
def test_metrics_match_up_to_float_rounding_across_cpus(
    tmp_path: Path, metric: str, output: float, same: bool
) -> None:
    def rename(row: dict) -> dict:
        return {**row, "metrics_output": {metric: row["metrics_output"]["psnr"]}}

    old = read_records(_write(tmp_path / "a.jsonl", [rename(_record("x", 25.0))]))
    new = read_records(_write(tmp_path / "b.jsonl", [rename(_record("x", output))]))
    assert (differences(old, new) == []) is same


def test_missing_committed_records_are_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["mio-a", "--agents", "fixed", "--records", str(tmp_path)])
    assert exit_info.value.code == 2


def test_keep_into_an_existing_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:  # refused before anything reruns
        main(["mio-a", "--agents", "fixed", "--keep", str(tmp_path)])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_committed_mio_a_records_reproduce() -> None:
    """Rerun of the first image of the committed mio-a records (training-free agents)."""
    assert main(["mio-a", "--agents", "random,fixed,oracle,agenticir", "--limit", "1"]) == 0


def test_rerun_flags_come_from_the_records_run() -> None:
    from benchmarks.reproduce import recorded_bench_args

    run = {
        "images": "corpus:test",
        "agent_kwargs": {"search_size": 256, "guard": "gain", "strict": False},
    }
    assert recorded_bench_args("exhaustive-ref", run) == [
        "--images", "corpus:test",
        "--agent-arg", "exhaustive-ref.guard=gain",
        "--agent-arg", "exhaustive-ref.search_size=256",
        "--agent-arg", "exhaustive-ref.strict=false",
    ]  # fmt: skip
    assert recorded_bench_args("fixed", {"images": "test"}) == []
    assert recorded_bench_args("fixed", {}) == []  # records older than the run block


def test_a_rerun_covers_as_many_images_as_the_records_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import reproduce

    rows = [_record(image, 25.0) for image in ("a", "b")]
    _write(tmp_path / "mio-a__fixed.jsonl", [{**r, "run": {"images": "corpus:test"}} for r in rows])
    commands: list[list[str]] = []
    monkeypatch.setattr(reproduce.subprocess, "run", lambda cmd, **_: commands.append(cmd))
    reproduce.rerun("mio-a", ["fixed"], None, tmp_path / "out", tmp_path)
    reproduce.rerun("mio-a", ["fixed"], 1, tmp_path / "out", tmp_path)
    assert [c[c.index("--limit") + 1] for c in commands] == ["2", "1"]  # the records', then given
    assert commands[0][commands[0].index("--images") + 1] == "corpus:test"


def test_remake_rewrites_the_committed_episodes_from_the_rerun(tmp_path: Path) -> None:
    from benchmarks.reproduce import remake
    from tir_env.errors import DataError

    committed = _write(tmp_path / "mio-a__fixed.jsonl", [_record("b", 20.0), _record("a", 21.0)])
    rerun = _write(
        tmp_path / "rerun.jsonl", [_record("a", 23.0), _record("c", 9.0), _record("b", 22.0)]
    )
    remake(committed, rerun)
    rows = [json.loads(line) for line in committed.read_text().splitlines()]
    assert [(r["image"], r["metrics_output"]["psnr"]) for r in rows] == [("b", 22.0), ("a", 23.0)]
    before = committed.read_text()
    short = _write(tmp_path / "short.jsonl", [_record("a", 1.0)])
    with pytest.raises(DataError, match="lacks 1 episodes"):  # nothing half-written
        remake(committed, short)
    assert committed.read_text() == before


def test_a_remade_record_names_the_records_folder_not_the_scratch_one(tmp_path: Path) -> None:
    from benchmarks.reproduce import remake

    folder, scratch = tmp_path / "records", tmp_path / "tir-reproduce-x"
    folder.mkdir()
    scratch.mkdir()
    committed = _write(folder / "mio-a__fixed.jsonl", [_record("a", 20.0)])
    command = f"tir bench mio-a --agents fixed --out {scratch} --limit 1"
    rerun = _write(scratch / "mio-a__fixed.jsonl", [{**_record("a", 21.0), "command": command}])
    remake(committed, rerun)
    (row,) = [json.loads(line) for line in committed.read_text().splitlines()]
    assert row["command"] == f"tir bench mio-a --agents fixed --out {folder} --limit 1"


@pytest.mark.parametrize("joined", [False, True])
def test_out_named_reads_the_command_as_shell_words(tmp_path: Path, joined: bool) -> None:
    from benchmarks.reproduce import out_named

    scratch, folder = tmp_path / "tir reproduce x", tmp_path / "my records"
    out = [f"--out={scratch}"] if joined else ["--out", str(scratch)]
    command = shlex.join(["tir", "bench", "mio-a", *out])
    row = out_named({"command": command, "seed": 1}, scratch, folder)
    assert str(scratch) not in row["command"] and str(folder) in shlex.split(row["command"])[-1]
    assert row["seed"] == 1
    assert out_named({"command": "tir 'unclosed"}, scratch, folder)["command"] == "tir 'unclosed"


def test_remake_writes_no_file_unless_every_rerun_holds_its_episodes(tmp_path: Path) -> None:
    from benchmarks.reproduce import checked
    from tir_env.errors import DataError

    good = _write(tmp_path / "a.jsonl", [_record("a", 20.0)])
    good_rerun = _write(tmp_path / "a_rerun.jsonl", [_record("a", 21.0)])
    bad = _write(tmp_path / "b.jsonl", [_record("a", 20.0), _record("b", 20.0)])
    bad_rerun = _write(tmp_path / "b_rerun.jsonl", [_record("a", 21.0)])
    assert checked([(good, good_rerun)]) == [(good, good_rerun)]
    with pytest.raises(DataError, match="lacks 1 of its episodes"):
        checked([(good, good_rerun), (bad, bad_rerun)])


def test_remake_with_a_limit_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:  # refused before anything reruns
        main(["mio-a", "--agents", "fixed", "--remake", "--limit", "1"])
    assert exit_info.value.code == 2
