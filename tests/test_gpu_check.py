"""``benchmarks/gpu_check.sh``: argument handling and the clear no-GPU exit (no GPU needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def _run(*args: str, out: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    if out is not None:
        env["OUT"] = str(out)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_help_describes_usage_and_exit_codes() -> None:
    done = _run("--help")
    assert done.returncode == 0
    assert "Usage: bash benchmarks/gpu_check.sh" in done.stdout and "3 no CUDA" in done.stdout


@pytest.mark.parametrize("args", [("--bogus",), ("a", "b")])
def test_bad_arguments_exit_2(args: tuple[str, ...]) -> None:
    done = _run(*args)
    assert done.returncode == 2 and "gpu_check.sh:" in done.stderr


def test_dry_run_lists_every_step_and_the_out_dir(tmp_path: Path) -> None:
    done = _run("--dry-run", str(tmp_path / "given"))
    assert done.returncode == 0
    steps = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("== ")]
    assert steps == ["machine", "tests", "tests_gpu_tier", "speed", "speed_cpu", "vlm", "vlm_2b"]
    assert f"--out-json {tmp_path / 'given'}/throughput.json" in done.stdout
    assert "--devices cuda" in done.stdout and "test_tool_parity.py" in done.stdout
    assert not (tmp_path / "given").exists()  # a dry run writes nothing


def test_out_dir_defaults_to_the_out_variable(tmp_path: Path) -> None:
    done = _run("--dry-run", out=tmp_path / "from_env")
    assert f"{tmp_path / 'from_env'}/throughput.json" in done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_without_cuda_it_says_so_and_runs_nothing(tmp_path: Path) -> None:
    done = _run(str(tmp_path / "out"))
    assert done.returncode == 3
    assert "no CUDA device" in done.stderr and "--allow-cpu" in done.stderr
    assert not (tmp_path / "out").exists()


def test_only_runs_the_named_steps_and_rejects_unknown_ones() -> None:
    done = _run("--dry-run", "--only=vlm,speed")
    steps = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("== ")]
    assert done.returncode == 0 and steps == ["speed", "vlm"]  # the script's order, not --only's
    bad = _run("--dry-run", "--only=vlm,warp_drive")
    assert bad.returncode == 2 and "unknown step 'warp_drive'" in bad.stderr
    for args in (("--only=",), ("--only=vlm,,speed",), ("--only=vlm speed",), ("--only=*",)):
        refused = _run("--dry-run", *args)
        assert refused.returncode == 2 and "--only" in refused.stderr, args
    twice = _run("--dry-run", "--only=vlm", "--only=speed")
    assert twice.returncode == 2 and "one --only" in twice.stderr
