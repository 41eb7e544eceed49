"""Smoke test of the speed benchmark (tiny sizes; the numbers themselves are not checked)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import speed
from tir_env.tools.base import TOOLS


def test_speed_main_writes_json_and_markdown(tmp_path: Path) -> None:
    out_json, out_md = tmp_path / "speed.json", tmp_path / "performance.md"
    argv = ["--sizes", "8", "--batches", "1", "2", "--calls", "2", "--repeats", "1"]
    argv += ["--groups", "1", "--group-size", "2", "--steps", "1", "--cache-size", "16"]
    argv += [
        "--threads",
        "1",
        "--vector-envs",
        "1",
        "--rewards",
        "psnr",
        "--out-json",
        str(out_json),
    ]
    argv += ["--out-md", str(out_md)]
    report = speed.main(argv)
    # max_batch=1, max_batch=2, then the default pool (two 8x8 images fit its pixel cap)
    assert [r["batch"] for r in report["conv"]] == [1, 2, 2]
    assert report["cache"]["cache"]["calls"] == report["cache"]["no_cache"]["calls"] == 2
    assert json.loads(out_json.read_text())["command"].endswith("--out-md " + str(out_md))
    text = out_md.read_text()
    assert (
        "python -m benchmarks.speed --sizes 8" in text and "| 8x8 | 2 | max_batch=2 | 2 |" in text
    )
    assert speed.CONV_TOOL not in TOOLS.names()  # the benchmark tool is unregistered after
