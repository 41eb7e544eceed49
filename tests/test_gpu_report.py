"""``benchmarks.gpu_report``: the GPU check's record rendered as a docs section (no GPU needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_report
from benchmarks.gen_docs import DOCS


def test_pytest_summary_reads_the_last_summary_line() -> None:
    log = "....\n3 passed in 1.0s\nmore\n===== 167 passed, 12 skipped in 20.09s =====\n"
    assert gpu_report.pytest_summary(log) == "167 passed, 12 skipped"
    with pytest.raises(ValueError, match="no pytest summary"):
        gpu_report.pytest_summary("Traceback ... ImportError\n")


def test_committed_record_renders_and_the_doc_is_current() -> None:
    section = gpu_report.section()
    assert section.startswith(gpu_report.START) and section.endswith(gpu_report.END)
    assert "NVIDIA H200" in section and "qwen2-vl-2b" in section
    assert gpu_report.section() in (DOCS / "performance.md").read_text()  # gen_docs was run


def test_env_rows_divide_cuda_by_the_same_machines_cpu() -> None:
    def report(device: str, scale: float) -> dict:
        rates = {"1": 10 * scale, "4": 20 * scale}
        return {
            "config": {"baseline_toolbox": "classical"},
            "devices": {
                device: {"env_sps": 5 * scale, "vector_env_sps": rates, "baseline_n16_sps": scale}
            },
        }

    rows = gpu_report.env_rows(report("cuda", 3.0), report("cpu", 2.0))
    assert len(rows) == 2 + 4 and all(row.endswith("| 1.50x |") for row in rows[2:])


def test_a_changed_record_changes_the_section(tmp_path: Path) -> None:
    record = tmp_path / "gpu"
    shutil.copytree(gpu_report.RECORD, record)
    report = json.loads((record / "vlm_2b_gpu_check.json").read_text())
    report["grpo"]["peak_memory_gib"] = 99.5
    (record / "vlm_2b_gpu_check.json").write_text(json.dumps(report))
    (record / "tests.txt").write_text("F..\n1 failed, 2 passed in 3.00s\n")
    section = gpu_report.section(record)
    assert "| 99.50 |" in section and "1 failed, 2 passed" in section
    page = f"# page\n\n{gpu_report.START}\nold\n{gpu_report.END}\n\ntail\n"
    assert gpu_report.with_gpu_check(page, record) == f"# page\n\n{section}\n\ntail\n"
    assert gpu_report.with_gpu_check("no markers", record) == "no markers"


def test_issue_17_point_is_judged_from_the_numbers() -> None:
    gpu = {"devices": {"cuda": {"vector_env_sps": {"64": 2100.0}}}}
    cpu = {
        "machine": {"cpu": "x", "cores": 2},
        "devices": {"cpu": {"vector_env_sps": {"64": 100.0}}},
    }
    assert "21.00x, met." in gpu_report._issue_17_point(gpu, cpu)[1]
    gpu["devices"]["cuda"]["vector_env_sps"]["64"] = 300.0
    assert "3.00x, not met." in gpu_report._issue_17_point(gpu, cpu)[1]
    assert gpu_report._issue_17_point(gpu, None) == []


def test_classical_routing_smoke_on_cpu_and_its_refusals(tmp_path: Path) -> None:
    from benchmarks import classical_routing

    out = tmp_path / "routing.json"
    assert (
        classical_routing.main(
            [
                "--device",
                "cpu",
                "--envs",
                "2",
                "--repeats",
                "1",
                "--size",
                "16",
                "--groups",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert set(report["medians"]) == {"cpu", "device"}
    assert set(report["device_over_cpu"]) == {"grpo_s", "vector_2_sps"}
    assert classical_routing.main(["--device", "cpu", "--out", str(out)]) == 2  # no overwrite
    assert classical_routing.main(["--device", "cpu", "--repeats", "0"]) == 2
    if not torch.cuda.is_available():
        assert classical_routing.main(["--device", "cuda"]) == 3


def test_a_partial_record_still_renders(tmp_path: Path) -> None:
    """A step that failed or never ran leaves its files out: the section says so, no crash."""
    record = tmp_path / "gpu"
    shutil.copytree(gpu_report.RECORD, record)
    for name in (
        "vlm_gpu_check.json",
        "vlm_2b_gpu_check.json",
        "machine.txt",
        "tests_gpu_tier.txt",
    ):
        (record / name).unlink()
    (record / "throughput_cpu.json").unlink()
    (record / "tests.txt").write_text(
        "sss.\nSKIPPED [2] tests/test_pool.py:450: Ray is not installed\n"
        "SKIPPED [1] tests/test_pool.py:470: Ray is not installed\n"
        "1 passed, 3 skipped in 1.00s\n"
    )
    section = gpu_report.section(record)
    assert "No VLM check in the record" in section and "machine.txt not in the record" in section
    assert "not run (no log in the record)" in section
    # one reason over several test sites is counted once, summed
    assert "1 passed, 3 skipped (skipped: Ray is not installed, 3)" in section
    (record / "tests.txt").write_text("ImportError: no module named gymnasium\n")
    assert "failed before its tests ran" in gpu_report.section(record)


@pytest.mark.parametrize(
    ("line", "summary"),
    [
        ("12 skipped, 300 deselected in 1.0s", "12 skipped, 300 deselected"),
        ("no tests ran in 0.01s", "no tests ran"),
        ("===== 3 xfailed in 1.00s =====", "3 xfailed"),
        ("1 failed, 2 passed, 1 warning in 3.00s", "1 failed, 2 passed, 1 warning"),
    ],
)
def test_pytest_summary_reads_every_outcome(line: str, summary: str) -> None:
    assert gpu_report.pytest_summary(f"...\n{line}\n") == summary


def test_a_record_without_its_speed_step_keeps_the_old_section(tmp_path: Path) -> None:
    record = tmp_path / "gpu"
    shutil.copytree(gpu_report.RECORD, record)
    (record / "throughput.json").unlink()
    with pytest.raises(FileNotFoundError, match="--only=speed"):
        gpu_report.section(record)
    page = f"{gpu_report.START}\nkept\n{gpu_report.END}\n"
    assert gpu_report.with_gpu_check(page, record) == page


def test_records_from_another_card_are_named(tmp_path: Path) -> None:
    """A larger-size speed record or a routing record from another lease names its card."""
    record = tmp_path / "gpu"
    shutil.copytree(gpu_report.RECORD, record)
    for name, card in (("throughput.json", "Card A"), ("throughput_256.json", "Card B")):
        data = json.loads((record / name).read_text())
        data["machine"]["cuda"] = card
        (record / name).write_text(json.dumps(data))
    routing = json.loads((record / "routing.json").read_text())
    routing["gpu"] = "Card B"
    (record / "routing.json").write_text(json.dumps(routing))
    section = gpu_report.section(record)
    assert "at 256 px on another lent machine, Card B" in section
    assert "at 256 px (on Card B," in section
    assert "(on Card B, another lent machine)" in section
    routing["gpu"] = "Card A"
    (record / "routing.json").write_text(json.dumps(routing))
    data = json.loads((record / "throughput_256.json").read_text())
    data["machine"]["cuda"] = "Card A"
    (record / "throughput_256.json").write_text(json.dumps(data))
    section = gpu_report.section(record)
    assert "another lent machine" not in section and "Card B" not in section
    assert "at 256 px on the same machine" in section
