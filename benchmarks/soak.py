"""Soak benchmark: many episodes under injected faults; nothing lost, no growth (issue 19).

Not a timed test: it reports what it measured and checks stated bounds.

Part 1 (tools): ``episodes`` episodes of a random agent through the vector env
(:class:`~tir_env.vector_env.TIRVectorEnv`, ``num_envs`` sub-envs sharing one
:class:`~tir_env.tools.pool.LocalToolPool`, cache off so every call executes). The toolbox is
a few cheap classical tools wrapped by :class:`SoakTool`, which makes ``fault_rate`` of its
invocations fail, split evenly between raising, hanging past the pool's ``timeout_s`` and
returning NaN. Every finished episode is recorded (return, steps, tool errors).

Part 2 (api-vlm): ``api_episodes`` episodes of the ``api-vlm`` agent against the scripted
OpenAI-compatible server of :mod:`benchmarks.fake_openai`, which answers ``garbage_rate``
of its requests with a 200 whose body is not JSON. Every episode is recorded; the bad answers
appear as ``api_errors``.

Reported: episodes recorded (must equal episodes run), faults injected by kind, tool errors
seen by the env, RSS and thread counts at start, after a warm-up, at the end and at peak, and
whether growth stayed within the stated bounds (:class:`SoakConfig`).

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.soak            # writes benchmarks/results/soak.json
    python -m benchmarks.soak --episodes 50 --api-episodes 20 --out /tmp/soak.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from tir_env.files import write_text_atomic
from tir_env.spaces import max_params
from tir_env.tools.base import TOOLS, Tool, make_tool, tool_info

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "soak.json"
#: Cheap classical tools wrapped for the soak (each costs well under a millisecond at 32 px).
WRAPPED = ("gamma_correction", "constant_shift", "unsharp_mask", "clahe")
FAULTS = ("raise", "hang", "nan")


@dataclass(frozen=True)
class SoakConfig:
    """One soak run.

    Attributes:
        episodes: Episodes through the vector env (part 1).
        num_envs: Sub-envs of the vector env.
        max_steps: Tool calls before an episode is truncated.
        size: Patch and observation side in pixels (small keeps it quick on 2 CPU cores).
        fault_rate: Share of tool invocations that fail (raise, hang or NaN, evenly).
        timeout_s: The pool's ``timeout_s``; a hanging tool sleeps ``hang_factor`` times it.
        hang_factor: How far past the timeout a hang lasts (then the abandoned thread ends).
        api_episodes: Episodes of the ``api-vlm`` agent (part 2; 0 skips it).
        garbage_rate: Share of api requests answered with a non-JSON 200.
        seed: Seed of the agent, the faults and the server.
        warmup: Episodes before the "warm" RSS and thread readings (imports, caches).
        rss_bound_mb: Largest RSS growth allowed between the warm reading and the end.
        thread_bound: Most extra threads allowed at the end over the warm reading.
    """

    episodes: int = 1000
    num_envs: int = 8
    max_steps: int = 3
    size: int = 32
    fault_rate: float = 0.05
    timeout_s: float = 0.2
    hang_factor: float = 2.0
    api_episodes: int = 1000
    garbage_rate: float = 0.10
    seed: int = 0
    warmup: int = 50
    rss_bound_mb: float = 16.0
    thread_bound: int = 2


# ------------------------------------------------------------------ fault-injecting tools
class SoakTool(Tool):
    """Runs a wrapped classical tool, but fails ``fault_rate`` of its invocations.

    Class attributes set by :func:`install_soak_tools` hold the shared fault state. Not
    deterministic on purpose (a fault injector), which is why the soak's pool has no cache.
    """

    inner: ClassVar[str] = ""
    fault_rate: ClassVar[float] = 0.0
    hang_s: ClassVar[float] = 0.0
    rng: ClassVar[random.Random] = random.Random(0)
    lock: ClassVar[threading.Lock] = threading.Lock()
    injected: ClassVar[Counter[str]] = Counter()

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """The wrapped tool's output, or an injected fault."""
        with SoakTool.lock:
            draw = SoakTool.rng.random()
            fault = (
                FAULTS[int(draw * 3 / SoakTool.fault_rate)] if draw < SoakTool.fault_rate else None
            )
            if fault:
                SoakTool.injected[fault] += 1
        if fault == "raise":
            raise RuntimeError("injected fault")
        if fault == "hang":
            time.sleep(SoakTool.hang_s)
        out = make_tool(self.inner).apply(batch, params)
        return out * float("nan") if fault == "nan" else out


def install_soak_tools(fault_rate: float, hang_s: float, seed: int) -> tuple[str, ...]:
    """Register ``soak_<tool>`` for each of :data:`WRAPPED`; return their names."""
    SoakTool.fault_rate, SoakTool.hang_s = fault_rate, hang_s
    SoakTool.rng, SoakTool.injected = random.Random(seed), Counter()
    names = []
    for inner in WRAPPED:
        info = dataclasses.replace(tool_info(inner), name=f"soak_{inner}")
        cls = type(f"Soak_{inner}", (SoakTool,), {"info": info, "inner": inner})
        TOOLS.add(info.name, cls, overwrite=True)
        names.append(info.name)
    make_tool.cache_clear()
    return tuple(names)


def remove_soak_tools(names: Sequence[str]) -> None:
    """Unregister what :func:`install_soak_tools` added."""
    for name in names:
        if name in TOOLS:
            TOOLS.remove(name)
    make_tool.cache_clear()


# ------------------------------------------------------------------ process readings
def rss_mb() -> float:
    """Resident set size of this process in MiB."""
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:  # Linux fallback
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reading() -> dict[str, float]:
    """RSS (MiB) and live thread count now."""
    return {"rss_mb": round(rss_mb(), 1), "threads": threading.active_count()}


# ------------------------------------------------------------------ part 1: vector env
def run_tools(cfg: SoakConfig) -> dict[str, Any]:
    """Part 1: ``cfg.episodes`` random-agent episodes through the vector env under faults."""
    from tir_env.tools.pool import LocalToolPool
    from tir_env.vector_env import TIRVectorEnv

    names = install_soak_tools(cfg.fault_rate, cfg.timeout_s * cfg.hang_factor, cfg.seed)
    pool = LocalToolPool("cpu", workers=2, cache_bytes=0, timeout_s=cfg.timeout_s)
    venv = TIRVectorEnv(
        num_envs=cfg.num_envs,
        pool=pool,
        tools=names,
        patch_size=cfg.size,
        obs_size=cfg.size,
        max_steps=cfg.max_steps,
        metrics=("psnr",),
    )
    rng = np.random.default_rng(cfg.seed)
    records: list[dict[str, Any]] = []
    readings: dict[str, dict[str, float]] = {"start": reading()}
    peak = dict(readings["start"])
    try:
        venv.reset(seed=cfg.seed)
        returns = np.zeros(cfg.num_envs)
        errors: list[list[str]] = [[] for _ in range(cfg.num_envs)]
        fresh = np.zeros(cfg.num_envs, dtype=bool)  # this step is an autoreset, not a call
        width = max_params(names)  # the size of the params Box
        while len(records) < cfg.episodes:
            # STOP one time in (max_steps + 1): most episodes run some calls, some stop early.
            tools = rng.integers(0, len(names) + 1, cfg.num_envs)
            actions = {"tool": tools, "params": rng.random((cfg.num_envs, width), np.float32)}
            _, rewards, terminated, truncated, info = venv.step(actions)
            for i in range(cfg.num_envs):
                if fresh[i]:
                    fresh[i], returns[i], errors[i] = False, 0.0, []
                    continue
                returns[i] += float(rewards[i])
                if info["error"][i]:
                    errors[i].append(str(info["error"][i]).split(":")[0])
                if (terminated[i] or truncated[i]) and len(records) < cfg.episodes:
                    records.append(
                        {
                            "return": float(returns[i]),
                            "steps": int(info["step"][i]),
                            "errors": list(errors[i]),
                            "image_id": str(info["image_id"][i]),
                        }
                    )
                    fresh[i] = True
            if len(records) >= cfg.warmup and "warm" not in readings:
                readings["warm"] = reading()
            now = reading()
            peak = {k: max(peak[k], now[k]) for k in peak}
        time.sleep(cfg.timeout_s * cfg.hang_factor + 0.1)  # let abandoned (hung) threads end
        readings["end"] = reading()  # the pool still open: its threads count
    finally:
        venv.close()
        pool.close()
        remove_soak_tools(names)
    readings["closed"] = reading()
    readings["peak"] = peak
    readings.setdefault("warm", readings["start"])
    kinds = Counter(e for r in records for e in r["errors"])
    return {
        "episodes_requested": cfg.episodes,
        "episodes_recorded": len(records),
        "returns_finite": all(math.isfinite(r["return"]) for r in records),
        "tool_calls": int(sum(r["steps"] for r in records)),
        "faults_injected": dict(SoakTool.injected),
        "tool_errors_seen": dict(kinds),
        "pool_stats": pool.stats.as_dict(),
        "readings": readings,
    }


# ------------------------------------------------------------------ part 2: api-vlm
def run_api(cfg: SoakConfig) -> dict[str, Any]:
    """Part 2: ``cfg.api_episodes`` api-vlm episodes against a server answering garbage."""
    from agents.base import make_agent, rollout
    from benchmarks.fake_openai import FakeOpenAI
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    server = FakeOpenAI(garbage_rate=cfg.garbage_rate, seed=cfg.seed).start()
    env = TIREnv(
        pool=SyncToolPool(), patch_size=cfg.size, obs_size=cfg.size, max_steps=cfg.max_steps
    )
    agent = make_agent(
        "api-vlm", base_url=server.url, image_size=cfg.size, timeout=5, retries=1, backoff=0.001
    )
    readings = {"start": reading()}
    recorded, api_errors, format_errors, requests = 0, 0, 0, 0
    try:
        for k in range(cfg.api_episodes):
            ep = rollout(env, agent, seed=cfg.seed + k)
            server.requests.clear()  # the fake server logs each request: not the agent's memory
            recorded += 1
            if recorded == min(cfg.warmup, cfg.api_episodes):
                readings["warm"] = reading()
            api_errors += ep.extra["api_errors"]
            format_errors += ep.extra["format_errors"]
            requests += ep.extra["requests"]
    finally:
        server.close()
    return {
        "episodes_requested": cfg.api_episodes,
        "episodes_recorded": recorded,
        "requests": requests,
        "garbage_sent": server.garbage_sent,
        "api_errors_recorded": api_errors,
        "format_errors": format_errors,
        "readings": {**readings, "end": reading()},
    }


# ------------------------------------------------------------------ the run
def run_soak(cfg: SoakConfig) -> dict[str, Any]:
    """Both parts, and the checks of the stated bounds."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    tools = run_tools(cfg)
    tools_s = time.perf_counter() - start
    api = run_api(cfg) if cfg.api_episodes else None
    warm, end = tools["readings"]["warm"], tools["readings"]["end"]
    api_warm = api["readings"]["warm"] if api else {"rss_mb": 0.0, "threads": 0}
    api_end = api["readings"]["end"] if api else api_warm
    checks = {
        "every_tool_episode_recorded": tools["episodes_recorded"] == cfg.episodes,
        "returns_finite": tools["returns_finite"],
        "rss_growth_within_bound": end["rss_mb"] - warm["rss_mb"] <= cfg.rss_bound_mb
        and api_end["rss_mb"] - api_warm["rss_mb"] <= cfg.rss_bound_mb,
        "threads_within_bound": end["threads"] - warm["threads"] <= cfg.thread_bound
        and api_end["threads"] - api_warm["threads"] <= cfg.thread_bound,
        "threads_released_on_close": tools["readings"]["closed"]["threads"]
        <= tools["readings"]["start"]["threads"],
        "every_api_episode_recorded": api is None or api["episodes_recorded"] == cfg.api_episodes,
        "every_garbage_answer_recorded": api is None
        or api["api_errors_recorded"] >= api["garbage_sent"],
    }
    return {
        "command": " ".join(["python -m benchmarks.soak", shlex.join(sys.argv[1:])]).strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads 1",
        "config": dataclasses.asdict(cfg),
        "bounds": {
            "rss_growth_mb": cfg.rss_bound_mb,
            "extra_threads": cfg.thread_bound,
            "measured_from": f"after {cfg.warmup} warm-up episodes to the end (each part)",
        },
        "tools": tools,
        "api": api,
        "wall_s": {"tools": round(tools_s, 1), "total": round(time.perf_counter() - start, 1)},
        "checks": checks,
        "ok": all(checks.values()),
    }


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` atomically (temp file + rename): never a half-written result."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; write the result; exit 1 when a check fails."""
    defaults = SoakConfig()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    for field in dataclasses.fields(SoakConfig):
        value = getattr(defaults, field.name)
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    cfg = SoakConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SoakConfig)})
    result = run_soak(cfg)
    write_json(args.out, result)
    sys.stdout.write(json.dumps(result["checks"], indent=2) + f"\nwrote {args.out}\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
