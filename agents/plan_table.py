"""Oracle's plans fitted per combination of degradations (``oracle.plans=table``).

``oracle`` runs each true degradation's preferred tool at its declared defaults, last-applied
first, whatever the combination. ``agents/plan_table.json``, written by ``python -m
benchmarks.plan_table`` from the suites' episodes on the corpus' train photos, holds for each
combination whose best plan beat that one clearly (docs/agents.md, "Plans fitted per
combination") the plan that did: other presets of the same tasks, or another order. A
combination it does not list keeps oracle's plan. ``oracle-table`` is the expert (``tir
experts collect --expert oracle-table``) and DAgger teacher that plans this way.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from tir_env.degradations import make_degradation
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.errors import ConfigValueError, UnknownNameError
from tir_env.tools.base import tool_info
from tir_env.types import ToolCall

#: ``default``: oracle's plan for every combination; ``table``: the fitted one where listed.
PlansChoice = Literal["default", "table"]
#: Where the fitted plans live (committed; regenerate with ``benchmarks.plan_table``).
PLAN_TABLE_FILE = Path(__file__).with_name("plan_table.json")


def combo_key(degradations: Sequence[str]) -> str:
    """The table's key of a combination: its degradations sorted, joined by ``+``."""
    return "+".join(sorted(degradations))


@functools.cache
def plan_table(path: Path = PLAN_TABLE_FILE) -> Mapping[str, tuple[ToolCall, ...]]:
    """Combination key -> its fitted plan, each checked against the registries.

    Raises:
        ConfigValueError: the file is missing or not JSON, or a plan names an unknown
            degradation or tool, a parameter out of range, or a tool of a task that none of
            the combination's degradations has (regenerate it with ``python -m
            benchmarks.plan_table``).
    """
    fix = f"regenerate it with `python -m benchmarks.plan_table --out {path}`"
    try:
        plans = json.loads(path.read_text())["plans"]
        items = list(plans.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigValueError(f"plan table {path} unreadable ({err}); {fix}") from err
    return {combo: _checked(combo, plan, path, fix) for combo, plan in items}


def _checked(combo: str, plan: object, path: Path, fix: str) -> tuple[ToolCall, ...]:
    """``plan`` as tool calls of the combination's tasks, each within its declared ranges."""
    where = f"plan table {path}, {combo!r}"
    try:
        tasks = {make_degradation(name).info.task for name in combo.split("+")}
        calls = tuple(ToolCall.from_dict(entry) for entry in plan)  # type: ignore[attr-defined]
        for call in calls:
            info = tool_info(call.tool)
            _check_ranges(call)
            if info.task not in tasks:
                raise ConfigValueError(f"{call.tool} ({info.task}) removes none of {combo}")
    except (UnknownNameError, ConfigValueError, KeyError, TypeError, ValueError) as err:
        raise ConfigValueError(f"{where}: {err}; {fix}") from err
    if not calls:
        raise ConfigValueError(f"{where}: an empty plan; {fix}")
    return calls


def _check_ranges(call: ToolCall) -> None:
    spec = tool_info(call.tool).params
    for name, value in call.params.items():
        if name not in spec:
            raise ConfigValueError(f"{call.tool} has no parameter {name!r}")
        if not spec[name].low <= value <= spec[name].high:
            raise ConfigValueError(
                f"{call.tool}.{name}={value} is outside [{spec[name].low}, {spec[name].high}]"
            )


def degradations_of_tasks(tasks: Sequence[str]) -> list[str] | None:
    """The AgenticIR degradations the ``tasks`` remove, one per task.

    ``None`` if a task removes none of them (``all_in_one``, ``enhancement``).
    """
    by_task = {make_degradation(name).info.task: name for name in AGENTICIR_TYPES}
    names = [by_task.get(task) for task in tasks]
    return None if None in names else [n for n in names if n is not None]


def table_plan(degradations: Sequence[str], tools: tuple[str, ...]) -> list[ToolCall] | None:
    """The fitted plan of this combination, if the table lists it and the env has its tools."""
    plan = plan_table().get(combo_key(degradations))
    if plan is None or any(call.tool not in tools for call in plan):
        return None
    return list(plan)
