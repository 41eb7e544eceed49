"""Smoke test of the speed benchmark (tiny sizes; the numbers themselves are not checked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
    assert "Load average (1 min)" in text  # the machine is shared: how busy it was
    assert speed.CONV_TOOL not in TOOLS.names()  # the benchmark tool is unregistered after


def test_tir_speed_writes_json_and_its_docs_section(tmp_path: Path) -> None:
    """``tir speed`` (tiny settings): per-device report, the command, the marked section."""
    from benchmarks import throughput
    from benchmarks.cli import main

    out_json, out_md = tmp_path / "throughput.json", tmp_path / "performance.md"
    out_md.write_text("# Performance\n\nkept above\n")
    argv = ["speed", "--devices", "cpu", "cuda", "--envs", "1", "2", "--size", "16"]
    argv += ["--sub-steps", "2", "--repeats", "1", "--batch", "2", "--rewards", "psnr"]
    argv += ["--reward-sizes", "16", "--out-json", str(out_json), "--out-md", str(out_md)]
    argv += ["--no-tools"]
    assert main(argv) == 0
    report = json.loads(out_json.read_text())
    cpu = report["devices"]["cpu"]
    assert set(cpu["vector_env_sps"]) == {"1", "2"} and cpu["env_sps"] > 0
    assert [len(cpu["vector_env_sps_runs"][n]) for n in ("1", "2")] == [1, 1]  # one repeat
    assert cpu["env_sps_runs"] == [cpu["env_sps"]] and len(cpu["baseline_n16_sps_runs"]) == 1
    assert throughput._rate(10.0, [9.0, 12.5, 10.0]) == "10.0 (9.0-12.5)"  # the spread shown
    (cost,) = cpu["reward_cost"]  # one reward at one size
    assert cost["reward"] == "psnr" and cost["patch"] == 16 and cost["total_metric_over_tool"] > 0
    old = {"reward_cost": {"psnr": {k: v for k, v in cost.items() if k not in ("reward", "patch")}}}
    assert throughput.reward_rows(old, {"size": 64}) == [{**cost, "patch": 64}]  # older reports
    assert cpu["baseline_n16_sps"] > 0  # N=16 on the baseline toolbox (classical)
    assert cpu["baseline_n16_cpu_ms"] > 0 and set(cpu["vector_env_cpu_ms"]) == {"1", "2"}
    assert len(report["load_avg"]["start"]) == len(report["load_avg"]["end"]) == 3
    assert report["command"].startswith("tir speed") or "tir speed" in report["command"]
    text = out_md.read_text()
    assert text.startswith("# Performance\n\nkept above\n")
    assert text.count(throughput.START) == 1 and "| vector env N=2 |" in text
    assert "on the `classical` toolbox" in text and "Load average (1 min)" in text
    assert "ms of CPU per sub-step" in text
    if "cuda" in report["skipped_devices"]:
        assert "**cuda**: not measured" in text
    # A second run replaces the section instead of appending another one.
    assert main(argv) == 0
    assert out_md.read_text().count(throughput.START) == 1


def test_cpu_ms_per_substep_counts_this_process_threads() -> None:
    """CPU time of work in another thread of the process counts (the pool's workers)."""
    import threading

    from benchmarks.throughput import cpu_ms_per_substep

    def spin() -> float:
        def work() -> None:
            x = 0
            for i in range(2_000_000):
                x += i

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        return 1.0

    value, cpu_ms = cpu_ms_per_substep(spin, 2)
    assert value == 1.0 and cpu_ms > 1.0  # ~ 2e6 additions in another thread, over 2


def test_tool_batching_rows_carry_kind_and_device() -> None:
    from benchmarks.tool_speed import tool_batching

    rows = tool_batching(16, 2, 1, device="cpu", kinds=("learned",))
    assert rows and {r["kind"] for r in rows} == {"learned"}
    assert all(r["ratio"] > 0 for r in rows)


def test_available_devices_skips_cuda_without_a_gpu(monkeypatch: object) -> None:
    import torch

    from benchmarks.throughput import available_devices

    setattr_ = monkeypatch.setattr  # type: ignore[attr-defined]
    setattr_(torch.cuda, "is_available", lambda: False)
    assert available_devices(["cpu", "cuda"]) == (["cpu"], ["cuda"])
    setattr_(torch.cuda, "is_available", lambda: True)
    assert available_devices(["cpu", "cuda:0"]) == (["cpu", "cuda:0"], [])


def test_niqe_speed_compares_all_three_and_restores_the_registry() -> None:
    from benchmarks.niqe_speed import compare
    from tir_env.metrics import METRICS, make_metric, metric_on
    from tir_env.metrics.niqe import NIQEMetric

    report = compare(repeats=1, steps=2, patch=64)
    assert set(report) == {"cpu", "torch", "pyiqa"}
    used = {name: r["runs"][0]["implementation"] for name, r in report.items()}
    assert used == {
        "cpu": "NIQEMetric(cpu_features=True)",
        "torch": "NIQEMetric(cpu_features=False)",
        "pyiqa": "NIQEPyiqaMetric",
    }
    assert all(r["runs"][0]["metrics"] == "psnr,ssim,niqe" for r in report.values())
    assert isinstance(make_metric("niqe"), NIQEMetric)
    assert getattr(METRICS.get("niqe"), "cls", None) is NIQEMetric
    assert metric_on("niqe", "cpu").cpu_features  # type: ignore[attr-defined]


def test_tool_batching_table_says_what_a_cpu_batch_runs() -> None:
    """Rows carry the CPU path (reference, port, chunks); the table shows it and the load."""
    from benchmarks.tool_speed import _cpu_path, table, tool_batching

    rows = tool_batching(16, 2, 1, device="cpu", kinds=("classical",))
    by_tool = {r["tool"]: r for r in rows}
    assert by_tool["back_projection_x4"]["cpu_reference"]
    assert _cpu_path({**by_tool["bicubic_x4"], "cpu_batch": 4}) == "port, chunks of 4"
    assert by_tool["nlm_denoise"]["cpu_reference"] and by_tool["nlm_denoise"]["cpu_batch"] is None
    report: dict[str, Any] = {
        "size": 16,
        "batch": 2,
        "rows": rows,
        "machine": {"cpu": "x", "date": "d"},
    }
    report["machine"]["torch_threads"] = 1
    report["load_avg"] = {"start": [1.0, 1.0, 1.0], "end": [2.0, 1.0, 1.0]}
    text = table(report)
    assert "| back_projection_x4 | yes | reference |" in text
    assert "| nlm_denoise | yes | reference |" in text and "Load average (1 min) 1.0" in text
    assert "| motion_rl_blind | yes | port; Richardson-Lucy per image (OpenCV) |" in text


def test_tool_speed_records_the_command_it_ran(tmp_path: Path) -> None:
    """The table quotes the command actually run (not a fixed one), with its options."""
    from benchmarks.tool_speed import main

    out_json, out_md = tmp_path / "tools.json", tmp_path / "performance.md"
    argv = ["--size", "16", "--batch", "2", "--repeats", "1"]
    report = main([*argv, "--out-json", str(out_json), "--out-md", str(out_md)])
    assert "python -m benchmarks.tool_speed --size 16 --batch 2 --repeats 1" in report["command"]
    text = out_md.read_text()
    assert report["command"] in text
    rows = json.loads(out_json.read_text())["rows"]
    assert all(r["ratio"] > 0 and r["mixed_ratio"] > 0 for r in rows)
    assert "mixed parameters |" in text and "*Mixed parameters*" in text


def test_random_params_are_valid_distinct_and_seeded() -> None:
    """Each image's parameter set lies in the tool's ranges; the seed fixes the draw."""
    from benchmarks.tool_speed import random_params
    from tir_env.tools import make_tool

    tool = make_tool("jpeg_tv")
    drawn = random_params(tool, 6)
    assert drawn == random_params(tool, 6) and len({tuple(p.items()) for p in drawn}) == 6
    for params in drawn:
        assert tool.resolve(params) == params
        for name, spec in tool.info.params.items():
            assert spec.low <= params[name] <= spec.high


def test_regenerating_the_page_keeps_the_other_benchmarks_sections(tmp_path: Path) -> None:
    """``benchmarks.speed`` rewrites docs/performance.md but keeps the other benchmarks' parts."""
    from benchmarks import gpu_report, speed_baseline, throughput, tool_speed
    from benchmarks.speed import with_kept_sections

    page = tmp_path / "performance.md"
    batching = f"{tool_speed.START}\nbatching table\n{tool_speed.END}"
    speed = f"{throughput.START}\nthroughput table\n{throughput.END}"
    paired = f"{speed_baseline.START}\npaired table\n{speed_baseline.END}"
    gpu = f"{gpu_report.START}\ngpu tables\n{gpu_report.END}"
    page.write_text(f"# old page\n\n{batching}\n\n{speed}\n\n{paired}\n\n{gpu}\n")
    new = with_kept_sections(page, "# new page\n")
    assert new.startswith("# new page") and "old page" not in new
    assert batching in new and speed in new and paired in new and gpu in new


def test_steal_share_reads_the_eighth_state() -> None:
    """Steal is the eighth /proc/stat state over the first eight; missing readings give None."""
    from benchmarks.speed import cpu_counters, steal_share

    start = [100, 0, 50, 800, 0, 0, 0, 50, 0, 0]
    end = [200, 0, 100, 900, 0, 0, 0, 100, 0, 0]
    assert steal_share(start, end) == pytest.approx(50 / 300)
    assert steal_share(None, end) is None and steal_share(start, start) is None
    counters = cpu_counters()
    assert counters is None or (len(counters) >= 8 and all(v >= 0 for v in counters))


def test_tool_batching_reports_learned_tools_by_kind() -> None:
    """Learned rows name their prior and network chunk; the summary gives each kind's mean."""
    from benchmarks.tool_speed import _cpu_path, _kind_means, tool_batching

    rows = tool_batching(64, 6, 1, device="cpu", kinds=("learned",))
    by_tool = {r["tool"]: r for r in rows}
    sr = by_tool["learned_super_resolution"]
    assert sr["net_chunk"] == 1 and sr["prior"] == "back_projection_x4"
    assert _cpu_path(sr) == "back_projection_x4, then network in chunks of 1"
    assert _cpu_path(by_tool["learned_all_in_one"]) == "network in chunks of 4"
    mixed = [{**r, "kind": "classical", "tool": "c"} for r in rows[:1]] + rows
    assert _kind_means(mixed).startswith("classical tools mean **")
    assert "; learned tools mean **" in _kind_means(mixed)


def test_paired_seconds_alternates_which_side_goes_first() -> None:
    from benchmarks.tool_speed import paired_seconds

    order: list[str] = []
    paired_seconds(lambda: order.append("b"), lambda: order.append("p"), 4, False)
    assert order == ["b", "p", "p", "b", "b", "p", "p", "b"]


def test_a_ratio_cell_shows_the_range_of_its_repeats() -> None:
    """A tie shows as one: the range of the repeats next to their median."""
    from benchmarks.tool_speed import ratio_cell

    assert ratio_cell({"ratio": 1.034}) == "1.03x"  # a record from before the range
    assert ratio_cell({"ratio": 1.034, "ratio_range": [0.982, 1.071]}) == "1.03x (0.98-1.07)"


def test_a_ratio_cell_adds_the_range_of_its_blocks() -> None:
    from benchmarks.tool_speed import ratio_cell

    row = {"ratio": 1.03, "ratio_range": [0.95, 1.1], "block_ratios": [1.01, 1.04, 1.03]}
    assert ratio_cell(row) == "1.03x (0.95-1.10; blocks 1.01-1.04)"


def test_tool_batching_in_blocks_loops_over_every_tool_each_block(monkeypatch: object) -> None:
    """Blocks interleave the tools (a slow spell hits many a little); ratio = median of blocks."""
    import statistics

    from benchmarks import tool_speed

    order: list[str] = []
    block_ratio = iter([1.0, 3.0, 2.0, 1.0, 1.2, 0.9])

    def fake_block(tool: Any, x: Any, repeats: int, sync: bool, mixed: bool) -> Any:
        order.append(tool.name)
        ratio = next(block_ratio)
        return [(1.0, ratio)] * repeats, ratio

    monkeypatch.setattr(tool_speed, "_time_block", fake_block)  # type: ignore[attr-defined]
    monkeypatch.setattr(  # type: ignore[attr-defined]
        tool_speed, "tool_names", lambda kinds: ["gamma_correction", "bicubic_x4"]
    )
    rows = tool_speed.tool_batching(16, 2, 3, kinds=("classical",), mixed=True, blocks=3)
    assert order == ["gamma_correction", "bicubic_x4"] * 3
    gamma, bicubic = rows
    assert gamma["block_ratios"] == [1.0, 2.0, 1.2] and gamma["ratio"] == 1.2
    assert bicubic["block_ratios"] == [3.0, 1.0, 0.9] and bicubic["ratio"] == 1.0
    assert gamma["mixed_ratio"] == statistics.median([1.0, 2.0, 1.2])
    assert gamma["ratio_range"] == [1.0, 2.0]


def test_tool_speed_records_its_blocks(tmp_path: Path) -> None:
    from benchmarks.tool_speed import main

    out_json, out_md = tmp_path / "tools.json", tmp_path / "performance.md"
    argv = ["--size", "16", "--batch", "2", "--repeats", "1", "--blocks", "2", "--no-mixed"]
    report = main(
        [*argv, "--kinds", "learned", "--out-json", str(out_json), "--out-md", str(out_md)]
    )
    assert report["blocks"] == 2 and all(len(r["block_ratios"]) == 2 for r in report["rows"])
    assert "median over 2 blocks" in out_md.read_text()
