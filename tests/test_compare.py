"""tir compare: two folders of records, paired by episode, with intervals over the photos."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import compare
from benchmarks.cli import main as tir
from tir_env.errors import NoRecordsError, OutputExistsError


def _write(
    folder: Path, name: str, rows: list[tuple[str, int, float]], metric: str = "psnr"
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {"image": image, "degradations": ["noise"], "seed": seed, "metrics_output": {metric: v}}
        )
        for image, seed, v in rows
    ]
    (folder / name).write_text("\n".join(lines) + "\n")


def _pair_folders(tmp_path: Path, changes: dict[str, list[float]]) -> tuple[Path, Path]:
    """Base at 20 dB; new at 20 + change, per photo the listed episodes' changes."""
    base, new = tmp_path / "base", tmp_path / "new"
    old = [(p, s, 20.0) for p, ds in changes.items() for s in range(len(ds))]
    fresh = [(p, s, 20.0 + d) for p, ds in changes.items() for s, d in enumerate(ds)]
    _write(base, "mio-a__fixed.jsonl", old)
    _write(new, "mio-a__fixed.jsonl", fresh)
    return base, new


def test_a_change_every_photo_shares_is_better_and_one_photo_alone_is_noise(
    tmp_path: Path,
) -> None:
    base, new = _pair_folders(tmp_path / "a", {f"p{i}": [1.0, 1.2] for i in range(5)})
    (c,) = compare.compare(base, new)
    assert c.episodes == 10 and c.photos == 5 and c.change == pytest.approx(1.1)
    assert c.verdict == "better" and c.better == 10 and c.worse == 0
    # one photo gains 10 dB, four lose a little: the mean is positive, but it is one photo
    base, new = _pair_folders(
        tmp_path / "b", {"p0": [10.0, 10.0], **{f"p{i}": [-0.5] * 2 for i in range(1, 5)}}
    )
    (c,) = compare.compare(base, new)
    assert c.change > 0 and c.verdict == "within noise" and c.worst[0] == -0.5


def test_the_standard_error_is_clustered_by_photo(tmp_path: Path) -> None:
    changes = {"a": [1.0, 3.0], "b": [0.0, 0.0], "c": [-1.0, 1.0]}
    base, new = _pair_folders(tmp_path, changes)
    (c,) = compare.compare(base, new)
    flat = [d for ds in changes.values() for d in ds]
    mean = sum(flat) / len(flat)
    sums = [sum(d - mean for d in ds) for ds in changes.values()]
    expected = math.sqrt(3 / 2 * sum(s * s for s in sums)) / len(flat)
    assert c.se == pytest.approx(expected)
    assert c.high - c.change == pytest.approx(compare.t95(2) * expected)


def test_a_lower_better_metric_counts_a_fall_as_a_gain(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    _write(base, "mio-a__fixed.jsonl", [("p", 0, 20.0)], metric="niqe")
    _write(new, "mio-a__fixed.jsonl", [("p", 0, 15.0)], metric="niqe")
    (c,) = compare.compare(base, new, metric="niqe")
    assert c.change == 5.0 and math.isnan(c.se) and "one photo" in compare._interval(c)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-20, 20), min_size=2, max_size=12))
def test_swapping_the_folders_negates_the_change(values: list[float]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        changes = {f"p{i}": [v] for i, v in enumerate(values)}
        base, new = _pair_folders(Path(tmp), changes)
        (ab,) = compare.compare(base, new)
        (ba,) = compare.compare(new, base)
    assert ab.change == pytest.approx(-ba.change, abs=1e-9)
    assert ab.low == pytest.approx(-ba.high, abs=1e-9) and ab.better == ba.worse


def test_folders_without_common_episodes_are_a_named_error(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    _write(base, "mio-a__fixed.jsonl", [("p", 0, 20.0)])
    _write(new, "mio-a__fixed.jsonl", [("q", 0, 20.0)])
    with pytest.raises(NoRecordsError, match="share no episode"):
        compare.compare(base, new)
    with pytest.raises(NoRecordsError, match="no SUITE__AGENT.jsonl"):
        compare.compare(tmp_path / "missing", new)


def test_the_command_prints_writes_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, new = _pair_folders(tmp_path, {f"p{i}": [1.0] for i in range(3)})
    out = tmp_path / "cmp.md"
    assert tir(["compare", str(base), str(new), "--out", str(out)]) == 0
    assert "| mio-a | 3 | 3 |" in capsys.readouterr().out and out.is_file()
    assert tir(["compare", str(base), str(new), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert tir(["compare", str(base), str(new), "--metric", "ssim"]) == 2  # not in the records
    assert tir(["compare", str(base), str(tmp_path / "none")]) == 2
    with pytest.raises(OutputExistsError):
        compare.write_report("x", out)


def test_two_agents_of_one_folder_are_paired_by_episode(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    _write(folder, "mio-a__fixed.jsonl", [("p", 0, 20.0), ("q", 0, 22.0)])
    _write(folder, "mio-a__exhaustive.jsonl", [("p", 0, 21.0), ("q", 0, 22.5)])
    (c,) = compare.compare(f"{folder}:fixed", f"{folder}:exhaustive")
    assert c.agent == "exhaustive against fixed" and c.change == pytest.approx(0.75)
    with pytest.raises(ValueError, match="name an agent in both"):
        compare.compare(f"{folder}:fixed", folder)
    with pytest.raises(NoRecordsError):
        compare.compare(f"{folder}:fixed", f"{folder}:greedy")


def test_episodes_in_one_folder_only_are_counted_and_left_out(tmp_path: Path) -> None:
    base, new = tmp_path / "base", tmp_path / "new"
    _write(base, "mio-a__fixed.jsonl", [("p", 0, 20.0), ("p", 1, 20.0)])
    _write(new, "mio-a__fixed.jsonl", [("p", 0, 21.0), ("q", 0, 30.0)])
    (c,) = compare.compare(base, new)
    assert c.episodes == 1 and c.change == 1.0 and c.unpaired == 2
    assert "2 episodes are in one folder only" in compare.render([c], base, new, "psnr")


def test_a_repeated_or_malformed_record_is_a_named_error(tmp_path: Path) -> None:
    from tir_env.errors import DataError

    base, new = tmp_path / "base", tmp_path / "new"
    _write(base, "mio-a__fixed.jsonl", [("p", 0, 20.0)])
    _write(new, "mio-a__fixed.jsonl", [("p", 0, 21.0), ("p", 0, 10.0)])
    with pytest.raises(DataError, match="recorded twice"):
        compare.compare(base, new)
    (new / "mio-a__fixed.jsonl").write_text('{"image": "p", "seed": 0}\n')
    with pytest.raises(DataError, match="record 1"):
        compare.compare(base, new)
    (new / "mio-a__fixed.jsonl").write_text(
        '{"image": "p", "degradations": ["noise"], "seed": 0, "metrics_output": {"psnr": null}}\n'
    )
    with pytest.raises(DataError, match="no final psnr"):
        compare.compare(base, new)


def test_a_suite_in_one_folder_only_is_listed_as_left_out(tmp_path: Path) -> None:
    base, new = _pair_folders(tmp_path, {"p": [1.0]})
    _write(base, "mio-b__fixed.jsonl", [("p", 0, 20.0)])
    _write(base, "mio-c__fixed.jsonl", [("p", 0, 20.0)])
    _write(new, "mio-b__greedy.jsonl", [("p", 0, 20.0)])
    left_out = compare.one_sided(base, new)
    assert left_out == {str(base): {"fixed": ["mio-b", "mio-c"]}, str(new): {"greedy": ["mio-b"]}}
    assert compare.one_sided(base, new, ["greedy"]) == {str(new): {"greedy": ["mio-b"]}}
    text = compare.render(compare.compare(base, new), base, new, "psnr", left_out)
    assert f"- `{base}` only, 2 record files: fixed (mio-b, mio-c)." in text
    assert f"- `{new}` only, 1 record file: greedy (mio-b)." in text


def test_a_missing_folder_with_a_colon_is_not_split(tmp_path: Path) -> None:
    assert compare.split_spec(str(tmp_path / "no:such")) == (tmp_path / "no:such", None)
    assert compare.split_spec(f"{tmp_path}:fixed") == (tmp_path, "fixed")


def test_agents_with_named_agents_and_bad_json_are_named_errors(tmp_path: Path) -> None:
    from tir_env.errors import DataError

    base, new = _pair_folders(tmp_path, {"p": [1.0]})
    with pytest.raises(ValueError, match="--agents does not apply"):
        compare.compare(f"{base}:fixed", f"{new}:fixed", agents=("fixed",))
    (new / "mio-a__fixed.jsonl").write_text('{"image": "p"\n{"image": "q"}\n')
    with pytest.raises(DataError, match="mio-a__fixed.jsonl"):
        compare.compare(base, new)


def test_two_agents_of_one_folder_each_list_their_own_suites(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    for name in ("mio-a__fixed", "mio-b__fixed", "mio-a__greedy", "mio-c__greedy"):
        _write(folder, f"{name}.jsonl", [("p", 0, 20.0)])
    assert compare.one_sided(f"{folder}:fixed", f"{folder}:greedy") == {
        f"{folder}:fixed": {"fixed": ["mio-b"]},
        f"{folder}:greedy": {"greedy": ["mio-c"]},
    }
