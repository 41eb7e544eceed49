"""``tir speed``: throughput of the env, the vector env and every tool, per device.

Measured side by side in one run, medians of ``--repeats`` repeats, on random tools of the
``--toolbox`` (default: the full toolbox) at ``--size`` pixels:

* **env**: steps per second of one ``TIREnv`` (:func:`benchmarks.speed.env_rates`);
* **vector env**: sub-env steps per second of ``TIRVectorEnv`` at N = ``--envs`` (default
  1, 4, 16, 64), one shared pool (:func:`benchmarks.speed.vector_env_rates`), and at N=16 on
  ``--baseline-toolbox`` (default ``classical``, the toolbox of the issue's 48 steps/s at N=4);
  with each, the process's CPU time per sub-step (all threads), which other jobs on shared
  cores barely change: ``cores * 1000 / cpu ms`` is the rate the machine allows when idle;
* **tools**: each tool on a batch of ``--batch`` photo crops as one call against one call per
  image, ``--tool-repeats`` pairs (:func:`benchmarks.tool_speed.tool_batching`);
* **reward cost**: metric time / tool time per env step for ``--rewards``
  (:func:`benchmarks.speed.reward_cost`).

Every device of ``--devices`` is measured; ``cuda`` is skipped (and said so in the report)
when ``torch.cuda.is_available()`` is false. Writes ``benchmarks/results/throughput.json``
and the ``throughput`` section of ``docs/performance.md`` (between its markers; the rest of
the page belongs to ``benchmarks.speed`` and ``benchmarks.tool_speed``).

Usage::

    OMP_NUM_THREADS=1 tir speed --size 64
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shlex
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

# torch and the benchmarks import lazily: ``tir`` builds this parser for every command.
START, END = "<!-- throughput:start -->", "<!-- throughput:end -->"
#: The issue's vector env figure: 48 steps/s at N=4, classical tools, 64 px (issue 17).
BASELINE_SPS = 48.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeedConfig:
    """What ``tir speed`` measures.

    Attributes:
        devices: Devices to measure; ``cuda`` is skipped where no GPU is available.
        envs: Vector env sizes N.
        size: Patch side of the env episodes and the tool crops (pixels).
        batch: Images per batched tool call.
        sub_steps: Sub-env steps per timed vector-env repeat (``max(3, sub_steps // N)``
            lockstep steps, so every N costs about the same). Random tools cost from 0.1 to
            100 ms, so a repeat needs hundreds of calls for the mix to average out: with 192
            (about a second a repeat) the median at N=16 ranged over 96-155 steps/s in six runs
            of one afternoon, with 768 and 5 repeats 123-130 in two.
        repeats: Timed repeats of the env and vector-env runs (the median is reported).
        tool_repeats: Timed repeats of each tool's batched / per-call pair (the median ratio
            is reported). A pair takes milliseconds, and with 3 a cheap tool's ratio moved
            by 0.3 between runs on shared cores.
        toolbox: Toolbox preset whose tools the random actions draw from.
        baseline_toolbox: Toolbox of the issue's baseline figure (``BASELINE_SPS`` at N=4),
            on which the vector env at N=16 is measured too (``""``: not measured).
        reward: Reward of the env and vector-env runs (``psnr``: the env's default).
        rewards: Rewards whose metric / tool time ratio is measured.
        reward_sizes: Patch sides at which it is measured (``()``: ``size`` alone); 128 is
            the env's default patch and the size of the issue's baseline figure.
        tools: Measure per-tool batching (``False``: envs and reward cost only).
        tool_kinds: Kinds of tools in the per-tool table.
        threads: Torch intra-op threads.
        opencv_threads: OpenCV's threads (0: its default, every core: what a user gets and
            what the issue's baseline figure ran with).
        out_json: Where the JSON report goes (``""``: not written).
        out_md: Markdown page whose ``throughput`` section is rewritten (``""``: not written).
    """

    devices: tuple[str, ...] = ("cpu", "cuda")
    envs: tuple[int, ...] = (1, 4, 16, 64)
    size: int = 64
    batch: int = 16
    sub_steps: int = 768
    repeats: int = 5
    tool_repeats: int = 9
    toolbox: str = "full"
    baseline_toolbox: str = "classical"
    reward: str = "psnr"
    rewards: tuple[str, ...] = ("psnr", "adaptive")
    reward_sizes: tuple[int, ...] = (64, 128)
    tools: bool = True
    tool_kinds: tuple[str, ...] = ("classical", "learned")
    threads: int = 1
    opencv_threads: int = 0
    out_json: str = "benchmarks/results/throughput.json"
    out_md: str = "docs/performance.md"
    argv: tuple[str, ...] = field(default=(), compare=False)


def available_devices(wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(measured, skipped)``: ``cuda`` is skipped when torch sees no GPU."""
    import torch

    measured, skipped = [], []
    for device in wanted:
        if device.startswith("cuda") and not torch.cuda.is_available():
            skipped.append(device)
        else:
            measured.append(device)
    return measured, skipped


def cpu_ms_per_substep(run: Callable[[], _T], substeps: int) -> tuple[_T, float]:
    """``(run(), process CPU ms per sub-step)``: user + system time of every thread.

    ``substeps`` counts what ``run`` steps, its unrecorded warm-up steps included, so the
    figure also carries the setup of its envs (a few resets).
    """
    before = resource.getrusage(resource.RUSAGE_SELF)
    value = run()
    after = resource.getrusage(resource.RUSAGE_SELF)
    seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return value, 1e3 * seconds / max(1, substeps)


def measure_device(config: SpeedConfig, device: str) -> dict[str, Any]:
    """Every measurement of the report on one device."""
    from benchmarks import speed, tool_speed

    log.info("%s: env", device)
    kw: dict[str, Any] = dict(device=device, toolbox=config.toolbox, reward=config.reward)
    env = speed.env_rates(config.sub_steps, config.repeats, config.size, **kw)
    # medians, and every repeat's rate (``*_runs``): the spread shows how busy the cores were
    out: dict[str, Any] = {"env_sps": statistics.median(env), "env_sps_runs": env}
    out.update(vector_env_sps={}, vector_env_sps_runs={}, vector_env_cpu_ms={})

    def vector(n: int, **extra: Any) -> tuple[list[float], float]:
        steps = max(3, config.sub_steps // n)

        def run() -> list[float]:
            return speed.vector_env_rates(n, steps, config.repeats, config.size, **{**kw, **extra})

        return cpu_ms_per_substep(run, n * (steps + 1) * config.repeats)  # +1: warm-up

    for n in config.envs:
        log.info("%s: vector env N=%d", device, n)
        runs, cpu_ms = vector(n)
        out["vector_env_sps"][str(n)] = statistics.median(runs)
        out["vector_env_sps_runs"][str(n)], out["vector_env_cpu_ms"][str(n)] = runs, cpu_ms
    if config.baseline_toolbox:
        log.info("%s: vector env N=16 on %s", device, config.baseline_toolbox)
        runs, out["baseline_n16_cpu_ms"] = vector(16, toolbox=config.baseline_toolbox)
        out["baseline_n16_sps"], out["baseline_n16_sps_runs"] = statistics.median(runs), runs
    out["reward_cost"] = [
        {
            "reward": r,
            "patch": patch,
            **speed.reward_cost(r, config.sub_steps, patch, device=device),
        }
        for patch in config.reward_sizes or (config.size,)
        for r in config.rewards
    ]
    if config.tools:
        log.info("%s: tools", device)
        out["tools"] = tool_speed.tool_batching(
            config.size, config.batch, config.tool_repeats, device=device, kinds=config.tool_kinds
        )
    return out


def measure(config: SpeedConfig) -> dict[str, Any]:
    """The report: configuration, machine, the command, and per-device results."""
    from benchmarks import speed

    speed.set_threads(config.threads, config.opencv_threads)
    measured, skipped = available_devices(config.devices)
    omp = os.environ.get("OMP_NUM_THREADS")
    command = " ".join(
        [*([f"OMP_NUM_THREADS={omp}"] if omp else []), "tir speed"]
        + [shlex.quote(a) for a in config.argv]
    )
    report: dict[str, Any] = {
        "command": command,
        "config": {k: v for k, v in asdict(config).items() if k != "argv"},
        "machine": speed.machine(),
        "skipped_devices": skipped,
        "load_avg": {"start": list(os.getloadavg())},
    }
    counters = speed.cpu_counters()
    report["devices"] = {d: measure_device(config, d) for d in measured}
    # The machine is shared: say how busy it was (1-minute load average, before and after,
    # and the time the hypervisor gave to other machines meanwhile).
    report["load_avg"]["end"] = list(os.getloadavg())
    report["cpu_steal"] = speed.steal_share(counters, speed.cpu_counters())
    return report


def _summary(report: dict[str, Any]) -> list[str]:
    """Headline numbers against the issue's targets, one bullet per device."""
    lines = []
    for device, r in report["devices"].items():
        sps = r["vector_env_sps"]
        bits = [f"env {r['env_sps']:.1f} steps/s"]
        bits += [f"vector env N={n} {v:.1f}" for n, v in sps.items()]
        if "16" in sps:
            bits.append(
                f"N=16 / {BASELINE_SPS:g} (the issue's N=4 figure, measured on another day: "
                "the host's speed moves by tens of percent, so `benchmarks.speed_baseline` "
                "re-measures the baseline in the same run) = "
                f"{sps['16'] / BASELINE_SPS:.2f}x"
            )
        if "baseline_n16_sps" in r:
            base = r["baseline_n16_sps"]
            bits.append(
                f"vector env N=16 on the `{report['config']['baseline_toolbox']}` toolbox "
                f"{base:.1f} steps/s = {base / BASELINE_SPS:.2f}x the issue's N=4 figure"
            )
        cpu_ms = r.get("baseline_n16_cpu_ms")
        if cpu_ms:
            cores = report["machine"]["cores"]
            bits.append(
                f"there it used {cpu_ms:.2f} ms of CPU per sub-step (all threads; env setup "
                f"and warm-up included), so {cores} idle cores would allow at most "
                f"{cores * 1e3 / cpu_ms:.0f} steps/s"
            )
        for cost in reward_rows(r, report["config"]):
            if cost["reward"] == "adaptive":
                bits.append(
                    f"adaptive reward at {cost['patch']} px: metric / tool time "
                    f"{cost['metric_over_tool']:.2f} (median per step), "
                    f"{cost['total_metric_over_tool']:.2f} (totals)"
                )
        tools = r.get("tools")
        if tools:
            mean = statistics.mean(t["ratio"] for t in tools)
            worst = min(tools, key=lambda t: t["ratio"])
            bits.append(
                f"tools batched / per call: mean {mean:.2f}x, lowest {worst['ratio']:.2f}x "
                f"({worst['tool']})"
            )
        lines.append(f"- **{device}**: " + "; ".join(bits) + ".")
    for device in report["skipped_devices"]:
        lines.append(f"- **{device}**: not measured (torch.cuda.is_available() is false).")
    return lines


def _rate_rows(report: dict[str, Any], devices: list[str]) -> list[tuple[str, list[str]]]:
    """The steps/s table's rows: a name and one cell per device."""
    c = report["config"]
    results = [report["devices"][d] for d in devices]
    rows = [("env", [_rate(r["env_sps"], r.get("env_sps_runs")) for r in results])]
    for n in c["envs"]:
        cells = [
            _rate(r["vector_env_sps"][str(n)], r.get("vector_env_sps_runs", {}).get(str(n)))
            for r in results
        ]
        rows.append((f"vector env N={n}", cells))
    if all("baseline_n16_sps" in r for r in results):
        cells = [_rate(r["baseline_n16_sps"], r.get("baseline_n16_sps_runs")) for r in results]
        rows.append((f"vector env N=16, `{c['baseline_toolbox']}` toolbox", cells))
    return rows


def _rate(median: float, runs: list[float] | None) -> str:
    """``median (lowest-highest)``, or the median alone for reports without the repeats."""
    if not runs or len(runs) < 2:
        return f"{median:.1f}"
    return f"{median:.1f} ({min(runs):.1f}-{max(runs):.1f})"


def reward_rows(device_report: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
    """A device's reward-cost rows, each with its ``reward`` and ``patch``.

    Reports before ``reward_sizes`` kept one row per reward, at ``size``.
    """
    cost = device_report["reward_cost"]
    if isinstance(cost, list):
        return cost
    return [{"reward": k, "patch": config["size"], **v} for k, v in cost.items()]


def _load(report: dict[str, Any]) -> str:
    """The load-average sentence (older reports have none)."""
    load = report.get("load_avg")
    if not load or "end" not in load:
        return ""
    steal = report.get("cpu_steal")
    stolen = "" if steal is None else f"; {100 * steal:.1f}% of the cores' time stolen by the host"
    return (
        f" Load average (1 min) {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at "
        f"the end{stolen}: other jobs share the cores, so compare ratios within this run."
    )


def _opencv_threads(machine: dict[str, Any]) -> str:
    """``, N OpenCV thread(s)`` where the report records it (older reports do not)."""
    threads = machine.get("opencv_threads")
    return "" if threads is None else f", {threads} OpenCV thread(s)"


def section(report: dict[str, Any]) -> str:
    """The Markdown ``throughput`` section of ``docs/performance.md``."""
    c, m = report["config"], report["machine"]
    lines = [
        START,
        "## Throughput (`tir speed`)",
        "",
        "Generated by this command (all numbers from one run):",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (shared), GPU {m['cuda'] or 'none'}, torch "
        f"{m['torch']}, {m['torch_threads']} torch thread(s){_opencv_threads(m)}, {m['date']}. "
        "Random tools of "
        f"the `{c['toolbox']}` toolbox (random parameters, never STOP), {c['size']}x{c['size']} "
        f"patches, `max_steps=3` with autoreset, reward `{c['reward']}`, a fresh pool per "
        f"repeat; medians of {c['repeats']} repeats.{_load(report)}",
        "",
        *_summary(report),
    ]
    devices = list(report["devices"])
    if devices:
        lines += ["", "Steps per second: the median of the repeats (lowest-highest).", ""]
        lines += ["| steps/s | " + " | ".join(devices) + " |"]
        lines.append("|---|" + "---:|" * len(devices))
        for name, cells in _rate_rows(report, devices):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Reward cost: metric time / tool time per env step (random tools, no cache); "
            "*median ratio* is the median over steps, *total ratio* the summed metric time "
            "over the summed tool time (what a run pays).",
            "",
            "| device | patch | reward | metrics | tool ms | metric ms | median ratio | "
            "total ratio |",
            "|---|---:|---|---|---:|---:|---:|---:|",
        ]
        for d in devices:
            for r in reward_rows(report["devices"][d], c):
                lines.append(
                    f"| {d} | {r['patch']} | {r['reward']} | {r['metrics']} | {r['tool_ms']:.2f} | "
                    f"{r['metric_ms']:.2f} | {r['metric_over_tool']:.2f} | "
                    f"{r['total_metric_over_tool']:.2f} |"
                )
        lines += _tool_table(report, devices)
    return "\n".join([*lines, END])


def _tool_table(report: dict[str, Any], devices: list[str]) -> list[str]:
    """Per tool: ms per image one call at a time and batched, and the ratio, per device."""
    from benchmarks.tool_speed import ratio_cell

    with_tools = [d for d in devices if report["devices"][d].get("tools")]
    if not with_tools:
        return []
    c = report["config"]
    head = "| tool | " + " | ".join(
        f"{d} per call ms | {d} batched ms | {d} ratio" for d in with_tools
    )
    lines = [
        "",
        f"Per tool, batch {c['batch']} of {c['size']} px photo crops: ms per image one call "
        "at a time and in one batched call; ratio = batched / per-call throughput, the median "
        f"over {c.get('tool_repeats', c['repeats'])} repeats of the two timed back to back, "
        "in alternating order (in brackets the lowest and highest repeat, where recorded).",
        "",
        head + " |",
        "|---|" + "---:|---:|---:|" * len(with_tools),
    ]
    by_tool: dict[str, dict[str, dict[str, Any]]] = {}
    for d in with_tools:
        for row in report["devices"][d]["tools"]:
            by_tool.setdefault(row["tool"], {})[d] = row
    for tool, per in by_tool.items():
        cells = []
        for d in with_tools:
            r = per.get(d)
            cells.append(
                "- | - | -"
                if r is None
                else f"{r['per_call_ms_per_image']:.2f} | {r['batched_ms_per_image']:.2f} | "
                f"{ratio_cell(r)}"
            )
        lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    return lines


def write(report: dict[str, Any], config: SpeedConfig) -> None:
    """The JSON report and the Markdown section, each written atomically."""
    if config.out_json:
        _atomic_write(Path(config.out_json), json.dumps(report, indent=1) + "\n")
    if config.out_md:
        path = Path(config.out_md)
        text = path.read_text() if path.exists() else ""
        if START in text and END in text:
            head, rest = text.split(START, 1)
            text = head + section(report) + rest.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + section(report) + "\n"
        _atomic_write(path, text)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def run(config: SpeedConfig) -> dict[str, Any]:
    """Measure, write the files, return the report."""
    report = measure(config)
    write(report, config)
    return report
