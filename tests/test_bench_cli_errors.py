"""What ``tir bench``, ``tir compare`` and ``tir leaderboard`` tell a user who gets a flag wrong.

Each test is one problem a new user hit: ``--limit`` below 0, a false claim of kept records,
an ``--out`` that is a file, raw Python warnings inside the progress bar, a one-photo
comparison called "within noise", and a records file given where a folder is expected.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks import compare, evaluate
from benchmarks.cli import main as tir
from benchmarks.commands import bench
from benchmarks.suites import get_suite
from tir_env.errors import ConfigValueError, ImageReadError, SkippedWarning

BENCH = ["bench", "mio-a", "--agents", "fixed"]


@pytest.fixture
def no_episodes(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """Record the episodes each ``evaluate`` call is given instead of running them."""
    calls: list[list[Any]] = []

    def fake(agent: str, specs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(list(specs))
        return []

    monkeypatch.setattr(evaluate, "evaluate", fake)
    return calls


def _photo_ids(specs: list[Any]) -> list[str]:
    return list(dict.fromkeys(s.image_id for s in specs))


# 1. --limit


def test_a_negative_limit_is_a_usage_error_before_any_episode(
    tmp_path: Path, no_episodes: list[list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert tir([*BENCH, "--limit", "-1", "--out", str(out)]) == 2
    assert "--limit must be 0 (every photo) or more, got -1" in capsys.readouterr().err
    assert no_episodes == [] and not out.exists()


def test_limit_zero_runs_every_photo_as_documented(
    tmp_path: Path, no_episodes: list[list[Any]]
) -> None:
    every = get_suite("mio-a").episodes("test")
    tir([*BENCH, "--limit", "0", "--out", str(tmp_path)])  # no records: exit 2, calls count
    tir([*BENCH, "--limit", "1", "--out", str(tmp_path)])
    assert no_episodes[0] == every
    assert _photo_ids(no_episodes[1]) == _photo_ids(every)[:1]


def test_suite_episodes_refuse_a_negative_limit_and_read_zero_as_all() -> None:
    suite = get_suite("mio-a")
    assert suite.episodes("test", limit=0) == suite.episodes("test", limit=None)
    with pytest.raises(ConfigValueError, match="got -1"):
        suite.episodes("test", limit=-1)


# 2. no false claim of kept records


def _bad_images(folder: Path) -> Path:
    """A folder with a 1x1 PNG and a truncated JPEG (both unreadable for TIR)."""
    folder.mkdir()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(folder / "a_tiny.png")
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "b_cut.jpg", quality=90)
    whole = (folder / "b_cut.jpg").read_bytes()
    (folder / "b_cut.jpg").write_bytes(whole[: len(whole) // 2])
    return folder


def test_a_strict_stop_before_any_record_claims_none_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, out = _bad_images(tmp_path / "images"), tmp_path / "out"
    words = [*BENCH, "--images", str(images), "--patch-size", "32", "--strict"]
    assert tir([*words, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1x1" in err and "(no episode was recorded)" in err
    assert "kept in" not in err and not out.exists()


def test_a_failure_after_records_names_the_file_that_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def one_then_fail(agent: str, specs: Any, *args: Any, sink: Any, **kwargs: Any) -> list[Any]:
        sink({"image": "chelsea", "degradations": ["noise"], "seed": 1})
        raise ImageReadError("cannot read image coffee")

    monkeypatch.setattr(evaluate, "evaluate", one_then_fail)
    assert tir([*BENCH, "--limit", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    path = tmp_path / "mio-a__fixed.jsonl"
    assert f"(the episode recorded so far is kept in {path}; re-run to resume)" in err


def test_kept_note_counts_the_records_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    assert bench.kept_note(path) == " (no episode was recorded)"
    path.write_text("")
    assert bench.kept_note(path) == " (no episode was recorded)"
    path.write_text(json.dumps({"a": 1}) + "\n" + json.dumps({"a": 2}) + "\n")
    assert "the 2 episodes recorded so far are kept in" in bench.kept_note(path)


# 3. --out that is a file


def test_an_out_that_is_a_file_is_a_usage_error_naming_it(
    tmp_path: Path, no_episodes: list[list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"not a folder")
    assert tir([*BENCH, "--limit", "1", "--out", str(photo)]) == 2
    err = capsys.readouterr().err
    assert f"--out {photo} is a file; name a folder" in err
    assert "Errno" not in err and "kept in" not in err and no_episodes == []
    assert tir([*BENCH, "--limit", "1", "--out", str(photo / "runs")]) == 2
    assert f"lies under {photo}, which is a file" in capsys.readouterr().err


# 4. skipped-image warnings


def test_skipped_image_warnings_print_as_one_clean_line(tmp_path: Path) -> None:
    # pytest records warnings instead of printing them: run the command as a user does
    script = f"""
import warnings
from benchmarks import evaluate
from benchmarks.cli import main
from tir_env.errors import SkippedWarning

def fake(*args, **kwargs):
    warnings.warn("skipping the episodes of image 'x.png': it is 1x1", SkippedWarning, 2)
    warnings.warn("something else", DeprecationWarning, 2)
    return []

evaluate.evaluate = fake
main({[*BENCH, "--limit", "1", "--out", str(tmp_path)]!r})
"""
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    err = done.stderr
    assert "warning: skipping the episodes of image 'x.png': it is 1x1\n" in err
    assert "warning: DeprecationWarning: something else\n" in err
    assert "SkippedWarning" not in err and "evaluate(" not in err and ".py:" not in err


def test_one_line_warnings_keep_recorders_and_restore_the_formatter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = warnings.formatwarning
    with pytest.warns(SkippedWarning, match="x.png"), bench.one_line_warnings():
        warnings.warn("skipping x.png", SkippedWarning, stacklevel=1)
        assert warnings.formatwarning("a\nb", UserWarning, "f.py", 1, "src") == ""
    assert warnings.formatwarning is before
    assert capsys.readouterr().err == "warning: UserWarning: a b\n"


# 5. compare on one photo


def _one_photo(folder: Path, name: str, values: list[float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"image": "chelsea", "degradations": ["noise"], "seed": s, "metrics_output": {"psnr": v}}
        for s, v in enumerate(values)
    ]
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_one_photo_is_undecided_however_the_episodes_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _one_photo(tmp_path, "mio-a__fixed.jsonl", [20.0] * 8)
    _one_photo(tmp_path, "mio-a__random.jsonl", [12.0 - s for s in range(8)])
    (c,) = compare.compare(f"{tmp_path}:fixed", f"{tmp_path}:random")
    assert c.photos == 1 and c.worse == 8 and c.verdict == "undecided (one photo)"
    assert tir(["compare", f"{tmp_path}:fixed", f"{tmp_path}:random"]) == 0
    out = capsys.readouterr().out
    assert "| undecided (one photo) | 0 / 8 |" in out and "within noise" not in out


# 6. leaderboard on a file


def test_leaderboard_on_a_records_file_asks_for_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _one_photo(tmp_path, "mio-a__fixed.jsonl", [20.0])
    path = tmp_path / "mio-a__fixed.jsonl"
    assert tir(["leaderboard", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path} is a file" in err and "folder holding the records" in err
    assert str(tmp_path) in err and "not found" not in err
