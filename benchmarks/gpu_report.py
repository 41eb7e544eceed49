"""The GPU check's record as a docs section: what ran on the lent GPU machine, and how fast.

``bash benchmarks/gpu_check.sh OUT`` writes one file per step; the files committed in
``benchmarks/results/gpu`` are rendered here into the ``gpu-check`` section of
``docs/performance.md`` (``python -m benchmarks.gen_docs`` calls :func:`with_gpu_check`):

* the machine and the package versions it ran with, and the test counts per step;
* the env's steps per second on cuda against the same machine's CPU (one run each);
* each tool batched against one call at a time on cuda, beside the ratio this repository's
  own CPU record measured (``benchmarks/results/throughput.json``, another machine);
* the reward's cost on cuda;
* the VLM steps: the tiny model, and Qwen2-VL-2B's architecture at real size (random
  weights): parameters, step times, peak GPU memory.

Usage::

    python -m benchmarks.gpu_report            # print the section
    python -m benchmarks.gen_docs              # writes it into docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "gpu"
#: The CPU record this repository's docs show (``tir speed`` on the development machine).
CPU_RECORD = ROOT / "benchmarks" / "results" / "throughput.json"
START, END = "<!-- gpu-check:start -->", "<!-- gpu-check:end -->"
#: The steps of ``gpu_check.sh`` whose log ends in a pytest summary line.
TEST_STEPS = {
    "tests": "tool parity, learned-tool and pool tests (default and gpu tiers)",
    "tests_gpu_tier": "gpu tier of the tool, degradation and metric tests",
}


def _json(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / name).read_text())


def pytest_summary(log: str) -> str:
    """The last pytest summary line of a step's log (``"167 passed, 12 skipped"``)."""
    found = re.findall(r"^=*\s*(\d+ (?:passed|failed|error).*?) in [\d.]+s", log, re.M)
    if not found:
        raise ValueError("no pytest summary line in the log")
    return found[-1]


def env_rows(gpu: dict[str, Any], cpu: dict[str, Any]) -> list[str]:
    """Env steps/s on cuda and on the same machine's CPU, and cuda / CPU."""
    on_gpu, on_cpu = gpu["devices"]["cuda"], cpu["devices"]["cpu"]
    pairs = [("env", on_gpu["env_sps"], on_cpu["env_sps"])]
    for n, rate in on_gpu["vector_env_sps"].items():
        pairs.append((f"vector env N={n}", rate, on_cpu["vector_env_sps"][n]))
    toolbox = gpu["config"]["baseline_toolbox"]
    pairs.append(
        (f"vector env N=16, `{toolbox}`", on_gpu["baseline_n16_sps"], on_cpu["baseline_n16_sps"])
    )
    rows = ["| steps/s | cuda | CPU (same machine) | cuda / CPU |", "|---|---:|---:|---:|"]
    rows += [f"| {name} | {g:.1f} | {c:.1f} | {g / c:.2f}x |" for name, g, c in pairs]
    return rows


def tool_rows(gpu: dict[str, Any], cpu_record: dict[str, Any] | None) -> list[str]:
    """Per tool on cuda: ms per image per call and batched, the ratio, and the CPU record's."""
    from benchmarks.tool_speed import ratio_cell

    on_cpu = {}
    if cpu_record is not None:
        on_cpu = {r["tool"]: r for r in cpu_record["devices"].get("cpu", {}).get("tools", [])}
    rows = [
        "| tool | cuda per call ms | cuda batched ms | cuda batched / per call | "
        "CPU record batched / per call |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in gpu["devices"]["cuda"]["tools"]:
        cpu = on_cpu.get(r["tool"])
        cpu_cell = "-" if cpu is None else f"{cpu['ratio']:.2f}x"
        rows.append(
            f"| {r['tool']} | {r['per_call_ms_per_image']:.2f} | {r['batched_ms_per_image']:.2f} "
            f"| {ratio_cell(r)} | {cpu_cell} |"
        )
    return rows


def vlm_rows(reports: Sequence[dict[str, Any]]) -> list[str]:
    """One row per VLM check: size, build, SFT and GRPO step times and peak memory."""
    rows = [
        "| model | parameters | build s | SFT s | SFT peak GiB | SFT val loss "
        "before -> after | GRPO group | GRPO s | GRPO peak GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        sft, grpo = r["sft"], r["grpo"]
        before, after = sft["val_loss"]
        rows.append(
            f"| {r['arch']} ({r['model']['dtype'].removeprefix('torch.')}) | "
            f"{r['model']['parameters']:,} | {r['build_seconds']:.1f} | {sft['seconds']:.1f} | "
            f"{sft['peak_memory_gib']:.2f} | {before:.2f} -> {after:.2f} | {grpo['group_size']} | "
            f"{grpo['seconds']:.1f} | {grpo['peak_memory_gib']:.2f} |"
        )
    return rows


def _env_verdict(gpu: dict[str, Any], cpu: dict[str, Any]) -> str:
    """One sentence on the env's cuda / CPU ratios, read from the numbers."""
    on_gpu, on_cpu = gpu["devices"]["cuda"], cpu["devices"]["cpu"]
    ratios = [on_gpu["env_sps"] / on_cpu["env_sps"]] + [
        rate / on_cpu["vector_env_sps"][n] for n, rate in on_gpu["vector_env_sps"].items()
    ]
    text = (
        f"At {gpu['config']['size']} px the env runs at {min(ratios):.2f}x to "
        f"{max(ratios):.2f}x its speed on the same machine's {cpu['machine']['cores']} CPU cores"
    )
    if max(ratios) < 1.5:
        text += (
            ": a step at this size is dominated by Python, op dispatch and small kernels, not "
            "by arithmetic, so the GPU's gain is in batched tool calls and in the models"
        )
    return text + "."


def _tool_summary(gpu: dict[str, Any], cpu_record: dict[str, Any] | None) -> str:
    ratios = [r["ratio"] for r in gpu["devices"]["cuda"]["tools"]]
    text = (
        f"Batching pays on the GPU: one batched call of {gpu['config']['batch']} crops against "
        f"one call per crop is {sum(ratios) / len(ratios):.1f}x faster per image on average "
        f"(lowest {min(ratios):.2f}x, highest {max(ratios):.2f}x)"
    )
    if cpu_record is None or not cpu_record["devices"].get("cpu", {}).get("tools"):
        return text + "."
    cpu = [r["ratio"] for r in cpu_record["devices"]["cpu"]["tools"]]
    return (
        text + f"; the CPU record's mean is {sum(cpu) / len(cpu):.2f}x "
        f"({cpu_record['machine']['cpu']}, {cpu_record['machine']['cores']} cores)."
    )


def section(folder: Path = RECORD, cpu_record_path: Path = CPU_RECORD) -> str:
    """The Markdown ``gpu-check`` section from the record in ``folder``."""
    from benchmarks.throughput import reward_rows

    gpu, cpu = _json(folder, "throughput.json"), _json(folder, "throughput_cpu.json")
    cpu_record = json.loads(cpu_record_path.read_text()) if cpu_record_path.exists() else None
    machine = (folder / "machine.txt").read_text().strip().splitlines()
    vlms = [_json(folder, name) for name in ("vlm_gpu_check.json", "vlm_2b_gpu_check.json")]
    m = gpu["machine"]
    lines = [
        START,
        "## On a GPU (`bash benchmarks/gpu_check.sh`)",
        "",
        "Generated by `python -m benchmarks.gen_docs` from the record in "
        "`benchmarks/results/gpu` (one run of the script on the lent machine, "
        f"{m['date']}). Machine: {machine[0]} (name, memory, driver); {m['cpu']}, "
        f"{m['cores']} cores; {machine[1]}; {machine[2]}.",
        "",
    ]
    for step, what in TEST_STEPS.items():
        lines.append(f"- {what}: {pytest_summary((folder / f'{step}.txt').read_text())}.")
    lines += [
        "",
        "Skipped there: the Ray pool's tests (Ray is not on that machine's image); the CUDA "
        "tests that CPU runs skip all ran.",
        "",
        "### The env, on cuda and on the same machine's CPU",
        "",
        f"`{gpu['command']}` and `{cpu['command']}`: random tools of the "
        f"`{gpu['config']['toolbox']}` toolbox on {gpu['config']['size']} px patches, medians "
        f"of {gpu['config']['repeats']} repeats.",
        "",
        *env_rows(gpu, cpu),
        "",
        _env_verdict(gpu, cpu),
        "",
        "### Tools batched against one call at a time, on cuda",
        "",
        _tool_summary(gpu, cpu_record),
        "",
        *tool_rows(gpu, cpu_record),
        "",
        "### Reward cost on cuda",
        "",
        "| patch | reward | metrics | tool ms | metric ms | median metric / tool | "
        "total metric / tool |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in reward_rows(gpu["devices"]["cuda"], gpu["config"]):
        lines.append(
            f"| {r['patch']} | {r['reward']} | {r['metrics']} | {r['tool_ms']:.2f} | "
            f"{r['metric_ms']:.2f} | {r['metric_over_tool']:.2f} | "
            f"{r['total_metric_over_tool']:.2f} |"
        )
    lines += [
        "",
        "### The VLM on cuda",
        "",
        "`python -m benchmarks.vlm_gpu_check --device cuda [--arch qwen2-vl-2b --group-size 8]`:"
        " one SFT step and one GRPO step with LoRA, each timed whole (loading the model and "
        "the evaluations before and after included). The real-size model has random weights "
        "(no download), so its GRPO samples are not tool calls (format errors); the step's "
        "time and memory are the real ones.",
        "",
        *vlm_rows(vlms),
        END,
    ]
    return "\n".join(lines)


def with_gpu_check(text: str, folder: Path = RECORD) -> str:
    """``text`` with its ``gpu-check`` section regenerated (unchanged where it has none)."""
    if START not in text or END not in text or not (folder / "throughput.json").exists():
        return text
    head, rest = text.split(START, 1)
    return head + section(folder) + rest.split(END, 1)[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the section rendered from a record folder."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_report")
    parser.add_argument("--record", type=Path, default=RECORD, help="gpu_check.sh's OUT folder")
    args = parser.parse_args(argv)
    print(section(args.record))  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
