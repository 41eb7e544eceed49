"""Registering plug-ins: built-in names are refused at once, a re-run cell replaces its own."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from agents.base import AGENTS, Agent
from tir_env.degradations.base import DEGRADATIONS, Degradation, DegradationInfo
from tir_env.errors import ComponentReplacedWarning, NameTakenError
from tir_env.metrics import METRICS, Metric, MetricInfo, make_metric
from tir_env.registry import Registry
from tir_env.reward import REWARDS, Reward, RewardOutput
from tir_env.tools.base import TOOLS, Tool, ToolInfo, make_tool

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> type:
    return type("UserTool", (Tool,), {"info": ToolInfo(name=name, task="brightening")})


def _metric(name: str) -> type:
    info = MetricInfo(name=name, needs_reference=False, lower_better=False, range=(0.0, 1.0))
    return type("UserMetric", (Metric,), {"info": info, "compute": lambda s, b, r: b.mean()})


def _reward(name: str) -> type:
    return type("UserReward", (Reward,), {"name": name, "step": lambda s, b, a: RewardOutput(0)})


def _degradation(name: str) -> type:
    info = DegradationInfo(name=name, task="denoising", group="imaging", physical_order=5.0)
    return type("UserDegradation", (Degradation,), {"info": info})


def _agent(name: str) -> type:
    return type("UserAgent", (Agent,), {"name": name})


#: Each registry, a built-in name in it and a maker of a user component with a given name.
KINDS: dict[str, tuple[Registry[Any], str, Callable[[str], type]]] = {
    "tool": (TOOLS, "gamma_correction", _tool),
    "metric": (METRICS, "ssim", _metric),
    "reward": (REWARDS, "static", _reward),
    "degradation": (DEGRADATIONS, "noise", _degradation),
    "agent": (AGENTS, "random", _agent),
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_builtin_name_is_refused_and_the_builtin_stays(kind: str) -> None:
    registry, builtin, make = KINDS[kind]
    original = registry.get(builtin)
    with pytest.raises(NameTakenError, match=rf"{kind} '{builtin}' .*built-in.*another name"):
        registry.register(make(builtin))
    assert registry.get(builtin) is original and registry.is_builtin(builtin)


def test_builtin_names_are_refused_before_the_builtins_were_ever_looked_up() -> None:
    """The first thing a fresh process does: register a user component under a built-in name."""
    script = textwrap.dedent(
        """
        import gymnasium as gym
        import tir_env
        from tir_env.errors import NameTakenError
        from tests.test_registry_plugins import KINDS
        for kind, (registry, builtin, make) in KINDS.items():
            assert not registry._loaded, kind  # else this test would prove nothing
            try:
                registry.register(make(builtin))
            except NameTakenError as err:
                assert builtin in str(err) and "built-in" in str(err), err
            else:
                raise SystemExit(f"{kind} {builtin!r} was accepted")
            assert registry.is_builtin(builtin), kind
        for _ in range(2):  # TIR stays usable, every time
            gym.make("TIR-v0", patch_size=32, obs_size=32, reward="static").reset(seed=0)
        print("ok")
        """
    )
    # KINDS is imported from this module, whose imports must not load the registries first:
    # they only import base modules, which is what a user's script does.
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.fixture
def thing_package(temp_package: Callable[[str, dict[str, str]], str]) -> str:
    """A package ``tir_tmp_things`` whose registry's built-ins (``a``, ``b``) load lazily."""
    files = {
        "__init__.py": """
            from tir_env.registry import Registry
            REG = Registry("thing", builtins=("tir_tmp_things",))
        """,
        "a_mod.py": "from tir_tmp_things import REG\n@REG.register\nclass A:\n    name = 'a'\n",
        "b_mod.py": "from tir_tmp_things import REG\n@REG.register\nclass B:\n    name = 'b'\n",
    }
    return temp_package("tir_tmp_things", files)


@given(st.sampled_from(["a", "b"]), st.text("cdefgh_", min_size=1, max_size=8))
def test_registering_first_loads_the_builtins_then_refuses_their_names(
    thing_package: str, builtin: str, new: str
) -> None:
    for module in [m for m in sys.modules if m.startswith(thing_package)]:
        del sys.modules[module]  # a fresh, unloaded registry for each example
    reg = importlib.import_module(thing_package).REG
    with pytest.raises(NameTakenError, match=f"'{builtin}' is already registered by TIR's"):
        reg.register(type("Mine", (), {"name": builtin}))
    reg.register(type("Mine", (), {"name": new}))
    assert reg.names() == ["a", "b", new] and not reg.is_builtin(new)


def _cell(name: str, value: int) -> type:
    """The class a notebook cell defines: same module and qualified name on every run."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(f"class Cell:\n    name = {name!r}\n    value = {value}\n", namespace)  # noqa: S102
    cls: type = namespace["Cell"]
    return cls


def test_a_rerun_cell_replaces_its_own_definition_with_a_warning() -> None:
    reg: Registry[Any] = Registry("thing")
    replaced: list[str] = []
    reg.on_replace(replaced.append)
    reg.register(_cell("x", 1))
    with pytest.warns(ComponentReplacedWarning, match=r"'x' registered again .*__main__\.Cell"):
        reg.register(_cell("x", 2))
    assert reg.get("x").value == 2 and replaced == ["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.register(reg.get("x"))  # the very same object: a silent no-op
    other = type("Other", (), {"name": "x"})
    with pytest.raises(NameTakenError, match=r"__main__\.Cell; .*Other cannot take its name"):
        reg.register(other)  # a different class under a taken name is still refused


def test_the_same_definition_never_replaces_a_builtin() -> None:
    builtin = TOOLS.get("gamma_correction")
    namespace = {
        "__module__": builtin.__module__,
        "__qualname__": builtin.__qualname__,
        "info": ToolInfo(name="gamma_correction", task="brightening"),
    }
    twin = type(builtin.__name__, (Tool,), namespace)  # what reloading its module makes
    with pytest.raises(NameTakenError, match="built-in"):
        TOOLS.register(twin)
    assert TOOLS.get("gamma_correction") is builtin


def _cell_tool(scale: float) -> type:
    namespace: dict[str, Any] = {"__name__": "__main__", "Tool": Tool, "ToolInfo": ToolInfo}
    code = (
        "class CellTool(Tool):\n"
        "    info = ToolInfo(name='test_cell_tool', task='brightening')\n"
        f"    def apply(self, batch, params):\n        return batch * {scale}\n"
    )
    exec(code, namespace)  # noqa: S102
    cls: type = namespace["CellTool"]
    return cls


def _cell_metric(value: float) -> type:
    namespace: dict[str, Any] = {"__name__": "__main__", "Metric": Metric, "torch": torch}
    namespace["MetricInfo"] = MetricInfo
    code = (
        "class CellMetric(Metric):\n"
        "    info = MetricInfo(name='test_cell_metric', needs_reference=False,\n"
        "                      lower_better=False, range=(0.0, 1.0))\n"
        f"    def compute(self, batch, reference):\n"
        f"        return torch.full((batch.shape[0],), {value})\n"
    )
    exec(code, namespace)  # noqa: S102
    cls: type = namespace["CellMetric"]
    return cls


def test_a_rerun_cell_drops_cached_tool_and_metric_instances() -> None:
    batch = torch.full((1, 3, 8, 8), 0.5)
    try:
        TOOLS.register(_cell_tool(1.0))
        assert make_tool("test_cell_tool")(batch).mean().item() == pytest.approx(0.5)
        with pytest.warns(ComponentReplacedWarning):
            TOOLS.register(_cell_tool(0.5))
        assert make_tool("test_cell_tool")(batch).mean().item() == pytest.approx(0.25)

        METRICS.register(_cell_metric(0.1))
        assert make_metric("test_cell_metric")(batch).item() == pytest.approx(0.1)
        with pytest.warns(ComponentReplacedWarning):
            METRICS.register(_cell_metric(0.7))
        assert make_metric("test_cell_metric")(batch).item() == pytest.approx(0.7)
    finally:
        TOOLS.remove("test_cell_tool")
        METRICS.remove("test_cell_metric")
        make_tool.cache_clear()
        make_metric.cache_clear()


def test_a_users_spec_of_a_builtin_class_under_a_builtin_name_is_refused_first() -> None:
    """A user's MetricSpec wraps a built-in class: who registers decides, not the class."""
    script = textwrap.dedent(
        """
        import gymnasium as gym
        import tir_env
        from tir_env.errors import NameTakenError
        from tir_env.metrics.base import METRICS, MetricInfo, register_metric
        from tir_env.metrics.pyiqa_backend import MetricSpec, PyiqaMetric
        assert not METRICS._loaded
        info = MetricInfo(name="lpips", needs_reference=True, lower_better=True,
                          range=(0.0, 1.0), backend="pyiqa")
        try:
            register_metric(MetricSpec(info, PyiqaMetric, pyiqa_name="lpips-vgg"))
        except NameTakenError as err:
            assert "lpips" in str(err) and "built-in" in str(err), err
        else:
            raise SystemExit("a user's spec took 'lpips'")
        gym.make("TIR-v0", patch_size=32, obs_size=32).reset(seed=0)  # TIR stays usable
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
