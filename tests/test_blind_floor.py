"""benchmarks.blind_floor: the blind estimators' power floor, compared on the same crops."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks import blind_floor
from tir_env.tools.classical import blur_estimation


def test_a_small_run_compares_every_blind_tool_and_restores_the_floor() -> None:
    torch.set_num_threads(1)
    before = blur_estimation.POWER_FLOOR
    report = blind_floor.measure("bundled:test", range(0, 1), 64, [1e-12, 1e-8])
    assert before == blur_estimation.POWER_FLOOR
    assert [c["sr_first"] for c in report["cases"]] == [True, True, False, False]
    for case in report["cases"]:
        (episode,) = case["episodes"]
        assert len(episode["psnr"]) == len(blind_floor.BLIND_TOOLS)
        assert all(len(row) == 2 for row in episode["psnr"])
    text = blind_floor.section(report)
    assert text.startswith(blind_floor.START) and text.endswith(blind_floor.END)
    assert "| motion_blur+low_resolution, after SR | motion_wiener_blind |" in text
    assert "Pooled change: after SR" in text
    assert "Motion tools after SR, one paired difference per seed" in text


def test_the_floor_is_read_when_the_estimator_runs() -> None:
    """The comparison sets the module's floor; the estimators must read it at each call."""
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    low, _ = blur_estimation._log_power_torch(image, symmetric=False)
    before = blur_estimation.POWER_FLOOR
    try:
        blur_estimation.POWER_FLOOR = 1e3  # far above every bin's power
        high, _ = blur_estimation._log_power_torch(image, symmetric=False)
    finally:
        blur_estimation.POWER_FLOOR = before
    assert (high > low).all()


def test_the_tool_table_keeps_the_blind_floor_section(tmp_path: Path) -> None:
    from benchmarks.speed import with_kept_sections

    page = tmp_path / "tools.md"
    section = f"{blind_floor.START}\nkept\n{blind_floor.END}"
    page.write_text(f"# old page\n\n{section}\n")
    new = with_kept_sections(page, "# new page\n", [(blind_floor.START, blind_floor.END)])
    assert new.startswith("# new page") and section in new


def _case(changes: list[list[float]], sr_first: bool = True) -> dict[str, object]:
    """One case: per seed (0, 1, ...), the first tools' PSNR changes between two floors."""
    width = len(blind_floor.BLIND_TOOLS)
    episodes = [
        {
            "seed": seed,
            "psnr": [[20.0, 20.0 + d] for d in row] + [[20.0, 20.0]] * (width - len(row)),
        }
        for seed, row in enumerate(changes)
    ]
    return {"sr_first": sr_first, "episodes": episodes}


def _report(*cases: dict[str, object]) -> dict[str, object]:
    return {"tools": list(blind_floor.BLIND_TOOLS), "cases": list(cases)}


def test_the_paired_summary_averages_a_crops_tools_before_the_test() -> None:
    """One difference per crop (the mean of its motion tools): mean, standard error, t."""
    report = _report(_case([[0.2, 0.4], [0.0, 0.2], [0.4, 0.6]]))  # per seed: 0.3, 0.1, 0.5
    summary = blind_floor.paired_summary(report, blind_floor.MOTION_TOOLS, True)
    assert summary["crops"] == 3
    assert abs(summary["mean"] - 0.3) < 1e-12
    assert abs(summary["se"] - 0.2 / 3**0.5) < 1e-12
    assert abs(summary["t"] - 0.3 / (0.2 / 3**0.5)) < 1e-9


def test_the_paired_summary_of_unchanged_crops_is_zero() -> None:
    report = _report(_case([[0.0, 0.0]] * 4))
    summary = blind_floor.paired_summary(report, blind_floor.MOTION_TOOLS, True)
    assert summary == {"mean": 0.0, "se": 0.0, "t": 0.0, "crops": 4.0}


def test_the_cases_of_one_seed_are_one_difference() -> None:
    """A seed's cases share its clean crop: averaged, not counted as separate crops."""
    two_cases = _report(_case([[0.2, 0.2], [0.0, 0.0]]), _case([[0.4, 0.4], [0.2, 0.2]]))
    summary = blind_floor.paired_summary(two_cases, blind_floor.MOTION_TOOLS, True)
    assert summary["crops"] == 2  # seeds 0 and 1, not 4 crops
    assert abs(summary["mean"] - 0.2) < 1e-12  # per seed: 0.3 and 0.1
    no_sr = _report(_case([[1.0, 1.0]]), _case([[9.0, 9.0]], sr_first=False))
    assert blind_floor.paired_summary(no_sr, blind_floor.MOTION_TOOLS, True)["mean"] == 1.0


def test_the_band_comparison_turns_the_upsampling_test_off_then_on() -> None:
    torch.set_num_threads(1)
    before = blur_estimation.UPSAMPLED_LOG_RATIO
    report = blind_floor.measure("bundled:test", range(0, 1), 64, [1e-12], compare="band")
    assert before == blur_estimation.UPSAMPLED_LOG_RATIO
    assert report["columns"] == list(blind_floor.BAND_COLUMNS)
    assert report["floors"] == [blur_estimation.POWER_FLOOR] * 2
    text = blind_floor.section(report)
    assert text.startswith(blind_floor.BAND_START) and text.endswith(blind_floor.BAND_END)
    assert "| full band | x4 band if upsampled |" in text


def test_the_merge_comparison_turns_keeping_the_input_off_then_on() -> None:
    from tir_env.tools.classical import deblurring

    torch.set_num_threads(1)
    report = blind_floor.measure("bundled:test", range(0, 1), 64, [1e-12], compare="merge")
    assert deblurring.KEEP_INPUT_ABOVE_BAND is True  # restored
    assert report["columns"] == list(blind_floor.MERGE_COLUMNS)
    text = blind_floor.section(report)
    assert text.startswith(blind_floor.MERGE_START) and text.endswith(blind_floor.MERGE_END)


def test_the_disk_comparison_tests_the_defocus_tools() -> None:
    from tir_env.tools.classical import blur_estimation as be

    torch.set_num_threads(1)
    report = blind_floor.measure("bundled:test", range(0, 1), 64, [1e-12], compare="disk")
    assert be.DISK_X4_BAND is True  # restored
    text = blind_floor.section(report)
    assert text.startswith(blind_floor.DISK_START) and text.endswith(blind_floor.DISK_END)
    assert "Defocus tools after SR, one paired difference per seed" in text
