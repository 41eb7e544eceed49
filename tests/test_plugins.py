"""Third-party components through entry points, each from its own installed test package.

Each package is "installed" into a temporary folder on ``sys.path``: its module plus a
``*.dist-info`` holding ``METADATA`` and ``entry_points.txt``, which is all
``importlib.metadata`` needs. The tool, degradation, metric and agent then appear in
``tir tools`` / ``tir agents`` and run in ``TIR-v0`` and ``tir bench`` with no TIR file edited.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import tir_env  # noqa: F401  (registers TIR-v0)
from agents.base import AGENTS, make_agent, rollout
from benchmarks.cli import main
from benchmarks.evaluate import evaluate
from benchmarks.suites import Suite
from tir_env.degradations.base import DEGRADATIONS, protocol_sorted
from tir_env.errors import PluginLoadError, PluginWarning
from tir_env.metrics import METRICS, make_metric
from tir_env.registry import Registry
from tir_env.reward import REWARDS
from tir_env.tools.base import TOOLS, make_tool, tool_names
from tir_env.tools.presets import toolbox_tools

TOOL = "plugin_brighten"
DEGRADATION = "plugin_dim"
METRIC = "plugin_mean_level"
AGENT = "plugin-one-call"

#: distribution -> (module name, entry-point group, entry point, module source)
PACKAGES: dict[str, tuple[str, str, str, str]] = {
    "tir-plugin-tool": (
        "tir_plugin_tool",
        "tir.tools",
        f"{TOOL} = tir_plugin_tool:Brighten",
        f'''
        from tir_env.tools.base import Tool, ToolInfo, register_tool, spec
        from tir_env.types import Param


        @register_tool
        class Brighten(Tool):
            info = ToolInfo(
                name="{TOOL}",
                task="brightening",
                params=spec(amount=Param(0.0, 0.5, 0.1, "added to every pixel")),
                description="adds a constant",
            )

            def apply(self, batch, params):
                return (batch + params["amount"]).clamp(0, 1)
        ''',
    ),
    "tir-plugin-degradation": (
        "tir_plugin_degradation",
        "tir.degradations",
        f"{DEGRADATION} = tir_plugin_degradation:Dim",
        f'''
        from tir_env.degradations.base import Degradation, DegradationInfo, register_degradation


        @register_degradation
        class Dim(Degradation):
            info = DegradationInfo(
                name="{DEGRADATION}",
                task="brightening",
                group="imaging",
                physical_order=6.5,
                description="scales intensities by U[0.5, 0.8]",
            )

            def sample(self, rng):
                return {{"factor": float(rng.uniform(0.5, 0.8))}}

            def apply(self, batch, params):
                return batch * params["factor"]
        ''',
    ),
    "tir-plugin-metric": (
        "tir_plugin_metric",
        "tir.metrics",
        f"{METRIC} = tir_plugin_metric:MeanLevel",
        f'''
        from tir_env.metrics.base import Metric, MetricInfo, register_metric


        @register_metric
        class MeanLevel(Metric):
            info = MetricInfo(
                name="{METRIC}",
                needs_reference=False,
                lower_better=False,
                range=(0.0, 1.0),
                backend="tir",
                step_scale=0.05,
            )

            def compute(self, batch, reference):
                return batch.mean(dim=(1, 2, 3))
        ''',
    ),
    "tir-plugin-agent": (
        "tir_plugin_agent",
        "tir.agents",
        f"{AGENT} = tir_plugin_agent:OneCall",
        f'''
        from agents.base import PlanAgent, register_agent
        from tir_env.types import ToolCall


        @register_agent
        class OneCall(PlanAgent):
            name = "{AGENT}"
            description = "one call of the plug-in tool, if offered"

            def make_plan(self):
                offered = "{TOOL}" in self.env.tools
                return [ToolCall("{TOOL}", {{"amount": 0.2}})] if offered else []
        ''',
    ),
    "tir-plugin-broken": (
        "tir_plugin_broken",
        "tir.tools",
        "plugin_broken = tir_plugin_broken:Missing",
        "import tir_plugin_not_installed  # the dependency it forgot to declare\n",
    ),
}

REGISTRIES: tuple[Registry[Any], ...] = (TOOLS, DEGRADATIONS, METRICS, REWARDS, AGENTS)


def install(site: Path, dist: str, module: str, group: str, entry: str, source: str) -> None:
    """Write ``module`` and its distribution's metadata into ``site`` (a sys.path folder)."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")


def reload_all() -> list[str]:
    """Reload every registry's plug-ins; the texts of the plug-in warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for registry in REGISTRIES:
            registry.reload_plugins()
    return [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


@pytest.fixture(scope="module")
def plugin_warnings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Install the test packages for this module; yield the warnings their loading gave."""
    site = tmp_path_factory.mktemp("site-packages")
    for dist, (module, group, entry, source) in PACKAGES.items():
        install(site, dist, module, group, entry, source)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield reload_all()
    finally:
        sys.path.remove(str(site))
        for module, *_ in PACKAGES.values():
            sys.modules.pop(module, None)
        reload_all()
        make_tool.cache_clear()
        make_metric.cache_clear()


@pytest.fixture
def tiny_env_kwargs() -> dict[str, object]:
    return {
        "images": "test",
        "patch_size": 32,
        "obs_size": 32,
        "max_steps": 2,
        "tools": ("gamma_correction", TOOL),
        "combos": ((DEGRADATION,),),
        "metrics": ("psnr", METRIC),
    }


def test_plugins_are_registered_with_their_distribution(plugin_warnings: list[str]) -> None:
    assert TOOLS.origin(TOOL) == "tir-plugin-tool 0.1"
    assert DEGRADATIONS.origin(DEGRADATION) == "tir-plugin-degradation 0.1"
    assert METRICS.origin(METRIC) == "tir-plugin-metric 0.1"
    assert AGENTS.origin(AGENT) == "tir-plugin-agent 0.1"
    assert not TOOLS.is_builtin(TOOL) and TOOLS.is_builtin("gamma_correction")
    # plug-ins come after every built-in, so the built-ins' indices never move
    assert tool_names()[-1] == TOOL
    # a plug-in degradation slots into the physical order by its declared position
    assert protocol_sorted(["noise", DEGRADATION, "low_resolution"]) == [
        "low_resolution",
        DEGRADATION,
        "noise",
    ]


def test_a_broken_plugin_warns_names_its_distribution_and_spares_the_rest(
    plugin_warnings: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (message,) = [m for m in plugin_warnings if "plugin_broken" in m]
    assert "tir-plugin-broken 0.1" in message and "tir_plugin_not_installed" in message
    assert "gamma_correction" in tool_names() and TOOL in tool_names()
    with pytest.raises(PluginLoadError, match="tir-plugin-broken 0.1"):
        TOOLS.get("plugin_broken")
    assert main(["tools"]) == 0
    assert "| gamma_correction |" in capsys.readouterr().out


def test_plugins_leave_the_default_toolbox_alone(plugin_warnings: list[str]) -> None:
    classical = toolbox_tools("classical")
    assert TOOL not in classical and "gamma_correction" in classical
    assert TOOL in toolbox_tools("full")


def test_plugins_appear_in_tir_tools_and_tir_agents(
    plugin_warnings: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tools"]) == 0
    assert f"| {TOOL} | brightening | classical |" in capsys.readouterr().out
    assert main(["agents"]) == 0
    assert AGENT in capsys.readouterr().out


def test_plugins_run_in_tir_v0(
    plugin_warnings: list[str], tiny_env_kwargs: dict[str, object]
) -> None:
    env = gym.make("TIR-v0", **tiny_env_kwargs)
    episode = rollout(env, make_agent(AGENT), seed=3)
    assert episode.degradations == [DEGRADATION]
    assert [r.call.tool for r in episode.records if r.call] == [TOOL]
    assert episode.records[0].ok
    # brightening a dimmed image raises the plug-in metric
    assert episode.metrics_output[METRIC] > episode.metrics_input[METRIC]
    env.close()


def test_plugin_tool_and_agent_run_in_tir_bench(plugin_warnings: list[str], tmp_path: Path) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "mio-b", "--agents", AGENT, "--toolbox", "full", "--limit", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / f"mio-b__{AGENT}@full.jsonl").open()]
    assert records and all(r["agent"] == f"{AGENT}@full" for r in records)
    assert {tuple(a["tool"] for a in r["actions"] if a) for r in records} == {(TOOL,)}


def test_plugin_degradation_and_metric_run_in_the_bench_evaluator(
    plugin_warnings: list[str],
) -> None:
    # `tir bench` plays the frozen suites; a suite of the plug-ins' own goes through the same
    # evaluator (benchmarks.evaluate.evaluate) that `tir bench` runs for every agent.
    suite = Suite("plugins", "0", ((DEGRADATION,),), patch_size=32, metrics=("psnr", METRIC))
    kwargs = {**suite.env_kwargs("test"), "tools": ("gamma_correction", TOOL)}
    records = evaluate(AGENT, suite.episodes("test", limit=1), kwargs, suite.name, progress=False)
    assert records and all(r["degradations"] == [DEGRADATION] for r in records)
    assert all(r["metrics_output"][METRIC] > r["metrics_input"][METRIC] for r in records)
