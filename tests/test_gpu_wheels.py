"""``benchmarks/gpu_wheels.txt``: the pinned wheels ``make gpu-wheels`` fetches (GPU machine)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_line_pins_one_version_and_the_makefile_reads_the_list() -> None:
    lines = [
        line
        for line in (ROOT / "benchmarks" / "gpu_wheels.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = [line.split("==")[0] for line in lines]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", line) for line in lines)
    assert len(set(names)) == len(names)  # two versions of one package stop the install there
    assert {"gymnasium", "stable-baselines3", "pyiqa", "spandrel"} <= set(names)
    assert "-r benchmarks/gpu_wheels.txt" in (ROOT / "Makefile").read_text()
    assert ".whl/" in (ROOT / ".gitignore").read_text().splitlines()
