"""A records folder's own tables (leaderboard.md, per-suite CSVs) follow its records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks.leaderboard import leaderboard_rows, load_records, refresh_tables, write_leaderboard

ROOT = Path(__file__).resolve().parents[1]
#: The committed folders whose CSVs a reader may take the numbers from.
COMMITTED = ("benchmarks/results/leaderboard", "benchmarks/results/heldout")
#: The columns compared (wall time is not: it changes with the machine's load).
COLUMNS = ("n", "psnr_in", "psnr", "ssim", "tool_executions", "tool_calls")


def _record(agent: str, output: float) -> dict:
    return {
        "agent": agent,
        "suite": "mio-a",
        "suite_version": "2",
        "image": "x",
        "degradations": ["noise"],
        "seed": 1,
        "actions": [],
        "metrics_input": {"psnr": 20.0},
        "metrics_output": {"psnr": output},
        "tool_executions": 1,
        "wall_time_s": 0.1,
    }


def _write_records(path: Path, output: float) -> Path:
    path.write_text(json.dumps(_record("fixed", output)) + "\n")
    return path


def _csv_psnr(folder: Path) -> float:
    (row,) = csv.DictReader((folder / "mio-a.csv").open(newline=""))
    return float(row["psnr"])


def test_rewritten_records_rewrite_the_folders_tables(tmp_path: Path) -> None:
    kept, bare = tmp_path / "kept", tmp_path / "bare"
    kept.mkdir()
    bare.mkdir()
    records = _write_records(kept / "mio-a__fixed.jsonl", 21.0)
    write_leaderboard(kept)
    assert _csv_psnr(kept) == pytest.approx(21.0)
    _write_records(records, 23.5)  # what `reproduce --remake` or `rescore` does to a record
    loose = _write_records(bare / "mio-a__fixed.jsonl", 22.0)
    assert refresh_tables([records, loose]) == [kept]
    assert _csv_psnr(kept) == pytest.approx(23.5)
    assert "23.500" in (kept / "leaderboard.md").read_text()
    assert not (bare / "mio-a.csv").exists()  # a folder without tables gets none


@pytest.mark.parametrize("folder", COMMITTED)
def test_committed_csvs_hold_what_the_records_say(folder: str) -> None:
    tables = leaderboard_rows(load_records(ROOT / folder))
    for suite, rows in tables.items():
        path = ROOT / folder / f"{suite}.csv"
        written = {r["agent"]: r for r in csv.DictReader(path.open(newline=""))}
        assert sorted(written) == sorted(str(r["agent"]) for r in rows), path
        for row in rows:
            for column in COLUMNS:
                got = float(written[str(row["agent"])][column])
                assert got == pytest.approx(float(row[column]), abs=1e-6), (
                    f"{path}: {row['agent']} {column} is {got}, the records say {row[column]}; "
                    f"rewrite it: tir leaderboard {folder}"
                )
