"""``tir tools``, ``tir agents`` and ``tir suites``: what is registered, and its options."""

from __future__ import annotations

import dataclasses

from benchmarks.commands.common import register_checkpoints
from benchmarks.commands.configs import AgentsConfig, SuitesConfig, ToolsConfig
from tir_env.help_text import plain_text


def cmd_tools(config: ToolsConfig) -> int:
    """List every registered tool with its task, kind, parameters and availability."""
    from tir_env.tools.base import TOOLS, tool_info, tool_names
    from tir_env.tools.presets import agenticir_status

    if not register_checkpoints(config):
        return 2
    print("| tool | task | kind | parameters | available |\n|---|---|---|---|---|")
    for name in tool_names():
        try:
            info = tool_info(name)
            check = getattr(TOOLS.get(name), "availability", None)
            problem = check() if callable(check) else None
        except Exception as err:  # noqa: BLE001 - report, don't crash the listing
            print(f"| {name} | ? | ? | ? | no: {err} |")
            continue
        params = ", ".join(
            f"{k} [{p.low:g}, {p.high:g}] = {p.default:g}" for k, p in info.params.items()
        )
        ok = "yes" if problem is None else f"no: {problem}"
        print(f"| {name} | {info.task} | {info.kind} | {params or '-'} | {ok} |")
    if config.preset == "agenticir":
        status = agenticir_status()
        print(f"\nagenticir preset: {len(status.available)} tools available")
        if status.missing:
            print(status.message())
    return 0


def cmd_suites(config: SuitesConfig) -> int:
    """List the benchmark suites."""
    from benchmarks.suites import SUITES

    for suite in SUITES.values():
        combos = "; ".join("+".join(c) for c in suite.combos)
        print(f"{suite.name:20s} v{suite.version}  {suite.description}\n{'':24s}{combos}")
    return 0


def cmd_agents(config: AgentsConfig) -> int:
    """List the registered agents (plug-ins included)."""
    from agents.base import AGENTS, agent_names

    for name in agent_names():
        try:
            factory = AGENTS.get(name)
        except Exception as err:  # noqa: BLE001 - a broken plug-in must not hide the others
            print(f"{name:16s} (cannot load: {err})")
            continue
        print(f"{name:16s} {plain_text(getattr(factory, 'description', '') or '')}")
        options = getattr(factory, "Options", None)
        if config.options and isinstance(options, type):
            for line in _option_lines(name, options):
                print(line)
    return 0


def _option_lines(agent: str, options: type) -> list[str]:
    """``--agent-arg`` help of one agent: ``agent.key=default`` and the field's doc (plain)."""
    from tir_env.config_cli import field_docs

    if not dataclasses.is_dataclass(options):
        return []
    docs = field_docs(options)
    keys = [(f"{agent}.{f.name}={f.default!s}", f.name) for f in dataclasses.fields(options)]
    width = max(len(k) for k, _ in keys)
    return [f"    {key:<{width}}  {plain_text(docs.get(name, ''))}" for key, name in keys]
