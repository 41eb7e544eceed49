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
    found = re.findall(
        r"^=*\s*((?:\d+ (?:passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)"
        r"|no tests ran).*?) in [\d.]+s",
        log,
        re.M,
    )
    if not found:
        raise ValueError("no pytest summary line in the log")
    return found[-1]


def env_rows(gpu: dict[str, Any], cpu: dict[str, Any]) -> list[str]:
    """Env steps/s on cuda and on the same machine's CPU, and cuda / CPU."""
    on_gpu, on_cpu = gpu["devices"]["cuda"], cpu["devices"]["cpu"]
    pairs = [("env", on_gpu["env_sps"], on_cpu["env_sps"])]
    for n, rate in on_gpu["vector_env_sps"].items():
        if n in on_cpu["vector_env_sps"]:  # runs with other N values share only some rows
            pairs.append((f"vector env N={n}", rate, on_cpu["vector_env_sps"][n]))
    if "baseline_n16_sps" in on_gpu and "baseline_n16_sps" in on_cpu:
        toolbox = gpu["config"]["baseline_toolbox"]
        pairs.append(
            (
                f"vector env N=16, `{toolbox}`",
                on_gpu["baseline_n16_sps"],
                on_cpu["baseline_n16_sps"],
            )
        )
    rows = ["| steps/s | cuda | CPU (same machine) | cuda / CPU |", "|---|---:|---:|---:|"]
    rows += [f"| {name} | {g:.1f} | {c:.1f} | {g / c:.2f}x |" for name, g, c in pairs]
    return rows


def tool_rows(
    gpu: dict[str, Any], cpu_record: dict[str, Any] | None, larger: Sequence[dict[str, Any]] = ()
) -> list[str]:
    """Per tool on cuda: ms per image per call and batched, the ratio, and the CPU record's.

    ``larger``: cuda records at other crop sizes, whose batched / per-call ratios add columns.
    """
    from benchmarks.tool_speed import ratio_cell

    on_cpu = {}
    if cpu_record is not None:
        on_cpu = {r["tool"]: r for r in cpu_record["devices"].get("cpu", {}).get("tools", [])}
    more = [{r["tool"]: r for r in other["devices"]["cuda"]["tools"]} for other in larger]
    size = gpu["config"]["size"]
    rows = [
        f"| tool | cuda per call ms ({size} px) | cuda batched ms | cuda batched / per call | "
        + "".join(
            f"cuda batched / per call at {o['config']['size']} px{_elsewhere(gpu, o)} | "
            for o in larger
        )
        + f"CPU record batched / per call ({cpu_record['config']['size'] if cpu_record else '-'}"
        " px) |",
        "|---|---:|---:|---:|" + "---:|" * (len(larger) + 1),
    ]
    for r in gpu["devices"]["cuda"]["tools"]:
        cpu = on_cpu.get(r["tool"])
        cells = [ratio_cell(m[r["tool"]]) if r["tool"] in m else "-" for m in more]
        cells.append("-" if cpu is None else f"{cpu['ratio']:.2f}x")
        rows.append(
            f"| {r['tool']} | {r['per_call_ms_per_image']:.2f} | {r['batched_ms_per_image']:.2f} "
            f"| {ratio_cell(r)} | " + " | ".join(cells) + " |"
        )
    return rows


def reward_compare_rows(gpu: dict[str, Any], cpu: dict[str, Any]) -> list[str]:
    """The reward's metric time on cuda and on the same machine's CPU, per patch and reward."""
    from benchmarks.throughput import reward_rows

    on_cpu = {
        (r["patch"], r["reward"]): r for r in reward_rows(cpu["devices"]["cpu"], cpu["config"])
    }
    rows = [
        "| patch | reward | metrics | cuda tool ms | CPU tool ms | cuda metric ms | "
        "CPU metric ms | CPU / cuda metric time |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for g in reward_rows(gpu["devices"]["cuda"], gpu["config"]):
        c = on_cpu.get((g["patch"], g["reward"]))
        if c is None:
            continue
        rows.append(
            f"| {g['patch']} | {g['reward']} | {g['metrics']} | {g['tool_ms']:.2f} | "
            f"{c['tool_ms']:.2f} | {g['metric_ms']:.2f} | {c['metric_ms']:.2f} | "
            f"{c['metric_ms'] / g['metric_ms']:.2f}x |"
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
        rate / on_cpu["vector_env_sps"][n]
        for n, rate in on_gpu["vector_env_sps"].items()
        if n in on_cpu["vector_env_sps"]
    ]
    return (
        f"At {gpu['config']['size']} px the env runs at {min(ratios):.2f}x to "
        f"{max(ratios):.2f}x its speed on the same machine's {cpu['machine']['cores']} CPU cores."
    )


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


#: ``tir speed`` records of the check: (cuda, the same machine's CPU), by crop size.
SPEED_PAIRS = (
    ("throughput.json", "throughput_cpu.json"),
    ("throughput_256.json", "throughput_256_cpu.json"),
)


def _speed_pairs(folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (_json(folder, gpu), _json(folder, cpu))
        for gpu, cpu in SPEED_PAIRS
        if (folder / gpu).exists() and (folder / cpu).exists()
    ]


def card(record: dict[str, Any]) -> str:
    """Where a ``tir speed`` record ran: its GPU and date (``"NVIDIA H200, <date>"``)."""
    m = record["machine"]
    return f"{m.get('cuda') or 'no GPU'}, {m['date']}"


def _elsewhere(gpu: dict[str, Any], other: dict[str, Any]) -> str:
    """`` (on NVIDIA H200, <date>)`` when ``other`` ran on another card than the check, else ''."""
    same = other["machine"].get("cuda") == gpu["machine"].get("cuda")
    return "" if same else f" (on {card(other)})"


def _head(folder: Path, gpu: dict[str, Any], larger: Sequence[dict[str, Any]] = ()) -> list[str]:
    machine_file = folder / "machine.txt"
    machine = machine_file.read_text().strip().splitlines() if machine_file.exists() else []
    m = gpu["machine"]
    what = "; ".join(machine) if machine else "machine.txt not in the record"
    # Records of other runs (a larger crop size, the routing) may come from another lease and
    # another card: say which, so no ratio is read across machines unawares.
    extra = "".join(
        f", and `tir speed` at {o['config']['size']} px "
        + (
            "on the same machine"
            if not _elsewhere(gpu, o)
            else f"on another lent machine, {card(o)}"
        )
        for o in larger
    )
    lines = [
        START,
        "## On a GPU (`bash benchmarks/gpu_check.sh`)",
        "",
        "Generated by `python -m benchmarks.gen_docs` from the record in "
        "`benchmarks/results/gpu` (the script's run on the lent machine, "
        f"{m['date']}{extra}). Machine: {m['cpu']}, {m['cores']} cores; {what}.",
        "",
    ]
    for step, label in TEST_STEPS.items():
        lines.append(f"- {label}: {step_outcome(folder / f'{step}.txt')}.")
    return lines


def step_outcome(log: Path) -> str:
    """A test step's summary line and its skip reasons, or what stopped it."""
    if not log.exists():
        return "not run (no log in the record)"
    text = log.read_text()
    try:
        summary = pytest_summary(text)
    except ValueError:
        return f"no pytest summary: the step failed before its tests ran (see {log.name})"
    counts: dict[str, int] = {}
    for n, why in re.findall(r"^SKIPPED \[(\d+)\] [^:]+:\d+: (.+)$", text, re.M):
        counts[why] = counts.get(why, 0) + int(n)  # one line per test site: sum by reason
    if counts:
        summary += " (skipped: " + "; ".join(f"{why}, {n}" for why, n in counts.items()) + ")"
    elif "skipped" in summary:
        summary += " (the log gives no reasons: gpu_check.sh passes -rs since session 39)"
    return summary


def _env_part(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    if not pairs:
        return []
    lines = ["", "### The env, on cuda and on the same machine's CPU"]
    for gpu, cpu in pairs:
        c = gpu["config"]
        lines += [
            "",
            f"`{gpu['command']}` and `{cpu['command']}`{_elsewhere(pairs[0][0], gpu)}: random "
            f"tools of the `{c['toolbox']}` toolbox on {c['size']} px patches, medians of "
            f"{c['repeats']} repeats.",
            "",
            *env_rows(gpu, cpu),
            "",
            _env_verdict(gpu, cpu),
        ]
    return lines


def _issue_17_point(
    gpu: dict[str, Any], cpu_record: dict[str, Any] | None, routing: bool = False
) -> list[str]:
    """Issue 17's GPU point (vector env at N=64 >= 20x the CPU figure), judged on the record.

    ``routing``: the record has ``benchmarks.classical_routing``'s table, which the text cites.
    """
    on_gpu = gpu["devices"]["cuda"]["vector_env_sps"].get("64")
    on_cpu = None
    if cpu_record is not None:
        on_cpu = cpu_record["devices"].get("cpu", {}).get("vector_env_sps", {}).get("64")
    if cpu_record is None or on_gpu is None or on_cpu is None:
        return []
    ratio = on_gpu / on_cpu
    classical = [
        r["ratio"]
        for r in gpu["devices"]["cuda"].get("tools", [])
        if not r["tool"].startswith("learned_")
    ]
    text = (
        f"Issue 17 asked for a vector env at N=64 on the GPU 20x the CPU figure: {on_gpu:.1f} "
        f"steps/s against {on_cpu:.1f} in this repository's CPU record "
        f"({cpu_record['machine']['cpu']}, {cpu_record['machine']['cores']} cores) is "
        f"{ratio:.2f}x, {'met' if ratio >= 20 else 'not met'}. Why the env gains little: by "
        "default the pool runs classical tools on CPU threads whatever its device "
        "(`PoolConfig.device` moves the learned tools), random actions rarely give one tool "
        "many calls in a step, and an env step's own work (observation, metrics, bookkeeping) "
        "is per env."
    )
    if classical:
        text += (
            " The tools' table below calls each tool directly on cuda tensors: classical "
            f"tools batch {min(classical):.1f}-{max(classical):.1f}x there"
        )
        text += (
            ", but sending the pool's classical calls to the GPU made the env slower (the "
            "routing table below)."
            if routing
            else "."
        )
    return ["", text]


def _reward_part(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    lines = ["", "### Reward cost: metric time on cuda and on the same machine's CPU", ""]
    rows = [row for gpu, cpu in pairs for row in reward_compare_rows(gpu, cpu)[2:]]
    if not rows:
        return []
    return [*lines, *reward_compare_rows(*pairs[0])[:2], *rows]


def _routing_part(folder: Path, gpu: dict[str, Any]) -> list[str]:
    """``benchmarks.classical_routing``'s record: classical tools on CPU threads or the GPU."""
    if not (folder / "routing.json").exists():
        return []
    r = _json(folder, "routing.json")
    med, gain = r["medians"], r["device_over_cpu"]
    rows = [
        "| workload | classical on CPU threads | classical on the GPU | GPU routing speed-up |",
        "|---|---:|---:|---:|",
        f"| GRPO-like: 8 groups x 8 rollouts x 3 steps, {r['size']} px, s | "
        f"{med['cpu']['grpo_s']:.3f} | {med['device']['grpo_s']:.3f} | {gain['grpo_s']:.2f}x |",
    ]
    vectors = [k for k in med["cpu"] if k.startswith("vector_")]
    for key in sorted(vectors, key=lambda k: int(k.split("_")[1])):
        n = key.split("_")[1]
        rows.append(
            f"| vector env N={n}, `classical` toolbox, steps/s | {med['cpu'][key]:.1f} | "
            f"{med['device'][key]:.1f} | {gain[key]:.2f}x |"
        )
    parity = folder / "classical_cuda_parity.txt"
    lines = [
        "",
        "### Classical tools on CPU threads or on the GPU",
        "",
        f"`{r['command']}`"
        + (
            ""
            if r.get("gpu") == gpu["machine"].get("cuda")
            else f" (on {r.get('gpu')}, another lent machine)"
        )
        + f": medians of {r['repeats']} repeats, the two routings alternating "
        'in each, after a warm-up round. `PoolConfig(classical_device="device")` sends '
        "classical calls to the pool's GPU lane.",
        "",
        *rows,
    ]
    if parity.exists():
        lines += [
            "",
            "Every classical tool through the GPU lane against the CPU pool (PSNR between the "
            f"two >= 40 dB), `pytest -m gpu tests/test_pool.py`: {step_outcome(parity)}.",
        ]
    return lines


def section(folder: Path = RECORD, cpu_record_path: Path = CPU_RECORD) -> str:
    """The Markdown ``gpu-check`` section from the record in ``folder``."""
    if not (folder / "throughput.json").exists():
        raise FileNotFoundError(
            f"{folder / 'throughput.json'} is missing: the record has no speed step, which the "
            "section is built on (rerun it: bash benchmarks/gpu_check.sh --only=speed,speed_cpu)"
        )
    pairs = _speed_pairs(folder)
    gpu = _json(folder, "throughput.json")
    cpu_record = json.loads(cpu_record_path.read_text()) if cpu_record_path.exists() else None
    vlms = [
        _json(folder, name)
        for name in ("vlm_gpu_check.json", "vlm_2b_gpu_check.json")
        if (folder / name).exists()
    ]
    lines = [
        *_head(folder, gpu, [g for g, _ in pairs[1:]]),
        *_env_part(pairs),
        *_issue_17_point(gpu, cpu_record, (folder / "routing.json").exists()),
        "",
        "### Tools batched against one call at a time, on cuda",
        "",
        _tool_summary(gpu, cpu_record),
        "",
        *tool_rows(gpu, cpu_record, [g for g, _ in pairs[1:] if g["devices"]["cuda"].get("tools")]),
        *_routing_part(folder, gpu),
        *_reward_part(pairs),
        "",
        "### The VLM on cuda",
        "",
        "`python -m benchmarks.vlm_gpu_check --device cuda [--arch qwen2-vl-2b --group-size 8]`:"
        " one SFT step and one GRPO step with LoRA, each timed whole (loading the model and "
        "the evaluations before and after included). The real-size model has random weights "
        "(no download), so its GRPO samples are not tool calls (format errors); the step's "
        "time and memory are the real ones.",
        "",
        *(
            vlm_rows(vlms)
            if vlms
            else ["No VLM check in the record (its step failed or never ran)."]
        ),
        END,
    ]
    return "\n".join(lines)


def with_gpu_check(text: str, folder: Path = RECORD) -> str:
    """``text`` with its ``gpu-check`` section regenerated.

    Unchanged where the page has no section, or the record no ``throughput.json`` (the speed
    step is the section's backbone: a record without it keeps the section it had).
    """
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
