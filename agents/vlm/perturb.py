"""Random perturbation of expert paths, to broaden what SFT teaches (TIR-Agent, Sec. 3).

TIR-Agent warm-starts its policy on expert trajectories that are randomly perturbed, so the
SFT policy does not collapse onto one task order and one tool per task and RL has something
to explore. Three operators, each applied with its own probability:

* **reorder** (probability ``p``): a random permutation of the task schedule (the order of
  the calls), different from the expert's when the path has two calls or more;
* **swap** (probability ``p``): one call's tool is replaced by another tool of the same task
  (drawn uniformly among the env's tools for that task), with default parameters;
* **jitter** (probability ``jitter`` per call, off by default): one parameter of the call is
  redrawn uniformly within a quarter of its range around its value, teaching that parameters
  are choices too (the expert only uses defaults).

A perturbed path is re-executed from the episode's start (:func:`agents.vlm.trajectories.
execute`), so its images and rewards are real, even where the perturbation made it worse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from agents.vlm.trajectories import Trajectory, execute
from tir_env.env import TIREnv
from tir_env.tools.base import tool_info
from tir_env.types import ToolCall


@dataclass(frozen=True)
class PerturbConfig:
    """How expert paths are perturbed.

    Attributes:
        p: Probability of each of the reorder and swap operators.
        reorder: Whether the reorder operator is used.
        swap: Whether the swap operator is used.
        jitter: Per-call probability of redrawing one parameter (0 disables it).
        copies: Perturbed variants made per expert trajectory.
    """

    p: float = 0.5
    reorder: bool = True
    swap: bool = True
    jitter: float = 0.0
    copies: int = 1

    def __post_init__(self) -> None:
        if not (0.0 <= self.p <= 1.0 and 0.0 <= self.jitter <= 1.0):
            raise ValueError(f"p and jitter must be in [0, 1], got {self.p}, {self.jitter}")
        if self.copies < 0:
            raise ValueError(f"copies must be >= 0, got {self.copies}")


def reorder(calls: Sequence[ToolCall], rng: np.random.Generator) -> list[ToolCall]:
    """A random permutation of ``calls``, different from the input when it has 2+ calls."""
    calls = list(calls)
    if len(calls) < 2:
        return calls
    while True:
        order = rng.permutation(len(calls))
        if list(order) != list(range(len(calls))):
            return [calls[i] for i in order]


def swap(
    calls: Sequence[ToolCall], tools: Sequence[str], rng: np.random.Generator
) -> list[ToolCall]:
    """Replace one call's tool by another of the same task (unchanged if there is none)."""
    calls = list(calls)
    order = rng.permutation(len(calls))
    for i in order:  # the first call whose task has an alternative tool
        task = tool_info(calls[i].tool).task
        others = [t for t in tools if t != calls[i].tool and tool_info(t).task == task]
        if others:
            calls[i] = ToolCall(others[int(rng.integers(len(others)))], {})
            return calls
    return calls


def jitter(call: ToolCall, rng: np.random.Generator) -> ToolCall:
    """Redraw one parameter within a quarter of its range around its current value."""
    spec = tool_info(call.tool).params
    if not spec:
        return call
    name = list(spec)[int(rng.integers(len(spec)))]
    p = spec[name]
    centre = float(call.params.get(name, p.default))
    half = (p.high - p.low) / 8
    value = float(np.clip(rng.uniform(centre - half, centre + half), p.low, p.high))
    value = float(round(value)) if p.integer else float(f"{value:.3g}")
    value = float(np.clip(value, p.low, p.high))
    return ToolCall(call.tool, {**call.params, name: value})


def perturb_path(
    calls: Sequence[ToolCall],
    tools: Sequence[str],
    rng: np.random.Generator,
    config: PerturbConfig = PerturbConfig(),
) -> list[ToolCall]:
    """Apply the operators of ``config`` to one path (see the module docstring)."""
    out = list(calls)
    if config.reorder and rng.random() < config.p:
        out = reorder(out, rng)
    if config.swap and rng.random() < config.p:
        out = swap(out, tools, rng)
    if config.jitter > 0:
        out = [jitter(c, rng) if rng.random() < config.jitter else c for c in out]
    return out


def perturb_all(
    env: TIREnv,
    experts: Sequence[Trajectory],
    config: PerturbConfig,
    seed: int = 0,
    progress: bool = True,
) -> list[Trajectory]:
    """``config.copies`` re-executed perturbed variants of every expert trajectory.

    Variants identical to their expert path are skipped (they would only duplicate it).
    """
    rng = np.random.default_rng(seed)
    out: list[Trajectory] = []
    for expert in tqdm(experts, desc="perturbed trajectories", disable=not progress):
        for _ in range(config.copies):
            calls = perturb_path(expert.calls, env.tools, rng, config)
            if calls != expert.calls:
                out.append(execute(env, expert.key, calls, "perturbed"))
    return out
