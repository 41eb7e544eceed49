"""The one registry idiom: declared names, built-ins found by walking, metadata on components."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.base import agent_names
from agents.baselines import preferred_tool
from tir_env.degradations.base import (
    DEGRADATIONS,
    degradation_names,
    make_degradation,
    protocol_order,
    protocol_sorted,
)
from tir_env.errors import PluginWarning, UnknownNameError
from tir_env.metrics import metric_info, metric_names
from tir_env.registry import Registry, declared_name
from tir_env.reward import REWARDS
from tir_env.tools.base import TOOLS, tool_info, tool_names
from tir_env.tools.presets import toolbox_tools
from tir_env.types import TASKS

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("tir_env", "agents", "benchmarks")

#: The registration orders before the registries were unified: the tools' order is the action
#: space of every trained policy and of the committed records, so it must never change.
CLASSICAL_TOOLS = [
    "bicubic_x4",
    "lanczos_x4_sharpen",
    "back_projection_x4",
    "nlm_denoise",
    "bilateral_denoise",
    "dct_denoise",
    "tv_denoise",
    "jpeg_shifted_dct",
    "jpeg_tv",
    "clahe",
    "gamma_correction",
    "constant_shift",
    "dark_channel_prior",
    "global_dehaze",
    "motion_wiener",
    "motion_wiener_blind",
    "motion_rl_blind",
    "defocus_wiener",
    "defocus_rl",
    "unsharp_mask",
    "derain_median",
    "derain_opening",
]
DEGRADATION_ORDER = [
    "low_resolution",
    "noise",
    "jpeg",
    "dark",
    "haze",
    "motion_blur",
    "defocus_blur",
    "rain",
    "gaussian_blur",
    "gaussian_noise",
    "jpeg_quality",
]
METRIC_ORDER = [
    "psnr",
    "ssim",
    "ms_ssim",
    "psnr_y",
    "ssim_y",
    "psnr_pyiqa",
    "ssim_pyiqa",
    "ms_ssim_pyiqa",
    "fsim",
    "gmsd",
    "vif",
    "nlpd",
    "niqe",
    "niqe_pyiqa",
    "tirqa",
    "lpips",
    "dists",
    "musiq",
    "clipiqa",
    "topiq_nr",
    "maniqa",
    "brisque",
]
AGENT_ORDER = [
    "agenticir",
    "random",
    "fixed",
    "oracle",
    "all-in-one",
    "ppo",
    "ppo-bc",
    "exhaustive",
    "exhaustive-ref",
    "greedy",
]
#: What used to sit in name-keyed side tables, now declared on each component.
FORMER_PREFERRED_TOOL = {
    "dehazing": "dark_channel_prior",
    "deraining": "derain_opening",
    "brightening": "gamma_correction",
    "motion_deblurring": "motion_wiener_blind",
    "defocus_deblurring": "defocus_wiener",
    "super_resolution": "back_projection_x4",
    "denoising": "dct_denoise",
    "jpeg_artifact_removal": "jpeg_tv",
}
FORMER_PROTOCOL_ORDER = [
    "haze",
    "rain",
    "dark",
    "motion_blur",
    "defocus_blur",
    "gaussian_blur",
    "low_resolution",
    "noise",
    "gaussian_noise",
    "jpeg",
    "jpeg_quality",
]
FORMER_DEFAULT_SCALES = {
    "psnr": 1.0,
    "ssim": 0.03,
    "ms_ssim": 0.02,
    "fsim": 0.02,
    "vif": 0.03,
    "gmsd": 0.01,
    "nlpd": 0.02,
    "lpips": 0.03,
    "dists": 0.02,
    "niqe": 0.5,
    "niqe_pyiqa": 0.5,
    "tirqa": 0.5,
    "brisque": 3.0,
    "musiq": 2.0,
    "clipiqa": 0.03,
    "topiq_nr": 0.03,
    "maniqa": 0.03,
}


def _function_local_project_imports(path: Path) -> list[str]:
    """``file:line module`` of every import of a project module inside a function."""
    found = []
    for func in ast.walk(ast.parse(path.read_text())):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {m}"
                for m in modules
                if m.partition(".")[0] in PROJECT
            ]
    return found


def test_no_base_py_imports_plugins_inside_a_function() -> None:
    bases = [p for package in PROJECT for p in (ROOT / package).rglob("base.py")]
    assert len(bases) >= 4  # tools, degradations, metrics, agents
    offenders = [hit for path in bases for hit in _function_local_project_imports(path)]
    assert offenders == []


def test_builtin_orders_are_unchanged() -> None:
    builtin = [n for n in tool_names() if TOOLS.is_builtin(n)]
    assert [n for n in builtin if tool_info(n).kind == "classical"] == CLASSICAL_TOOLS
    assert toolbox_tools("classical") == tuple(CLASSICAL_TOOLS)
    learned = [n for n in builtin if tool_info(n).kind == "learned"]
    assert learned and toolbox_tools("learned") == tuple(learned)
    assert degradation_names() == DEGRADATION_ORDER
    assert metric_names()[: len(METRIC_ORDER)] == METRIC_ORDER
    assert REWARDS.names()[:3] == ["psnr", "static", "adaptive"]
    # agents register in the order their modules are first imported (as before): the order
    # `tir agents` shows comes from a fresh process
    assert set(AGENT_ORDER) <= set(agent_names())
    listing = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "agents"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    assert [line.split()[0] for line in listing.splitlines()][: len(AGENT_ORDER)] == AGENT_ORDER


def test_metadata_replaces_the_side_tables() -> None:
    offered = tuple(tool_names())
    assert {t: preferred_tool(t, offered) for t in TASKS} == FORMER_PREFERRED_TOOL
    for task in TASKS:  # at most one preferred built-in per task
        assert sum(tool_info(t).preferred for t in tool_names(task=task)) == 1
    assert protocol_order() == FORMER_PROTOCOL_ORDER
    orders = [make_degradation(n).info.physical_order for n in degradation_names()]
    assert len(set(orders)) == len(orders)
    scales = {n: metric_info(n).step_scale for n in metric_names()}
    assert {n: s for n, s in scales.items() if s != 1.0 or n == "psnr"} == FORMER_DEFAULT_SCALES


def test_preferred_tool_falls_back_to_the_first_tool_of_the_task() -> None:
    assert preferred_tool("denoising", ("gamma_correction", "tv_denoise", "dct_denoise")) == (
        "dct_denoise"
    )
    assert preferred_tool("denoising", ("nlm_denoise", "tv_denoise")) == "nlm_denoise"
    assert preferred_tool("denoising", ("gamma_correction",)) is None


def test_an_unknown_degradation_is_an_error_not_sorted_last() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'haze'"):
        protocol_sorted(["noise", "hase"])


def test_did_you_mean_is_kept_in_every_registry() -> None:
    cases: list[tuple[Registry[Any], str, str]] = [
        (TOOLS, "gama_correction", "gamma_correction"),
        (DEGRADATIONS, "moton_blur", "motion_blur"),
        (REWARDS, "adaptiv", "adaptive"),
    ]
    for registry, typo, hint in cases:
        with pytest.raises(UnknownNameError, match=f"Did you mean '{hint}'"):
            registry.get(typo)


def test_importing_the_exploit_leaves_the_default_toolbox_alone() -> None:
    import tir_env.tools.exploits  # noqa: F401

    assert "median_paint" in tool_names()
    assert toolbox_tools("classical") == tuple(CLASSICAL_TOOLS)
    assert tool_names()[: len(CLASSICAL_TOOLS)] == CLASSICAL_TOOLS


@pytest.fixture
def tmp_package(temp_package: Callable[[str, dict[str, str]], str]) -> str:
    """A package ``tir_tmp_pkg`` whose registry's built-ins are its own modules."""
    files = {
        "__init__.py": """
            from tir_env.registry import Registry
            REG = Registry("thing", builtins=("tir_tmp_pkg",))
            class Thing:
                def __init__(self, name):
                    self.name = name
        """,
        "b_mod.py": "from tir_tmp_pkg import REG, Thing\nREG.register(Thing('b'))\n",
        "a_mod.py": "from tir_tmp_pkg import REG, Thing\nREG.register(Thing('a'))\n",
        "sub/__init__.py": "",
        "sub/c_mod.py": "from tir_tmp_pkg import REG, Thing\nREG.register(Thing('c'))\n",
        "optional.py": "import tir_tmp_dependency_not_installed\n",
    }
    return temp_package("tir_tmp_pkg", files)


def test_builtins_are_found_by_walking_their_package(tmp_package: str) -> None:
    reg = importlib.import_module(tmp_package).REG
    # every module is found with no list naming it; a missing optional dependency skips one
    assert reg.names() == ["a", "b", "c"]
    assert all(reg.is_builtin(n) for n in reg.names())


def test_a_builtin_lookup_skips_the_sources_and_other_lookups_run_them(
    tmp_package: str,
) -> None:
    """Sources add components under new names: a built-in's lookup need not wait for them."""
    reg = importlib.import_module(tmp_package).REG
    late = type("Late", (), {"name": "late"})  # defined here: not a built-in
    calls: list[str] = []

    def source() -> None:
        calls.append("run")
        if "late" not in reg._items:  # a component that appears with a file, say
            reg.add("late", late)

    reg.add_source(source)
    assert reg.get("a").name == "a"  # the first lookup loads the built-ins, sources too
    runs = len(calls)
    assert reg.get("b").name == "b" and len(calls) == runs  # a built-in: no source run
    assert reg.get("late") is late and len(calls) == runs + 1
    assert "late" in reg.names() and len(calls) == runs + 2  # a listing runs them
    reg.remove("a")
    with pytest.raises(UnknownNameError):
        reg.get("a")  # a removed built-in is not found by the shortcut either


def test_hand_registered_components_come_after_the_builtins(tmp_package: str) -> None:
    package = importlib.import_module(tmp_package)
    early = type("Early", (), {"name": "early"})
    package.REG.register(early)  # before the first lookup, as an experiment's import would
    assert package.REG.names() == ["a", "b", "c", "early"]
    assert not package.REG.is_builtin("early")


def test_register_is_keyed_on_the_declared_name() -> None:
    reg: Registry[object] = Registry("thing")
    tool = TOOLS.get("gamma_correction")
    assert reg.register(tool) is tool and reg.names() == ["gamma_correction"]
    reg.register(tool)  # the same object again: a no-op (a re-imported module)
    with pytest.raises(ValueError, match="already registered"):
        reg.register(type("Other", (), {"name": "gamma_correction"}))
    with pytest.raises(TypeError, match="declares no name"):
        reg.register(object())
    assert declared_name(type("A", (), {"name": "a"})) == "a"


def test_a_plugin_cannot_replace_a_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    ep = metadata.EntryPoint(name="gamma", value="os.path:join", group="tir.things")
    reg: Registry[object] = Registry("thing", entry_point_group="tir.things")
    reg.add("gamma", 1)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [ep])
    with pytest.warns(PluginWarning, match="already registered"):
        reg.reload_plugins()
        reg.names()
    assert reg.get("gamma") == 1


@given(st.permutations(FORMER_PROTOCOL_ORDER), st.integers(1, len(FORMER_PROTOCOL_ORDER)))
def test_protocol_sorted_is_the_former_order_whatever_the_input_order(
    names: list[str], k: int
) -> None:
    chosen = names[:k]
    assert protocol_sorted(chosen) == [n for n in FORMER_PROTOCOL_ORDER if n in chosen]


def test_builtins_are_listed_root_by_root_whatever_was_imported_first(
    temp_package: Callable[[str, dict[str, str]], str],
) -> None:
    register = "from tir_tmp_roots import REG\nREG.register(type('{0}', (), {{'name': '{0}'}}))\n"
    package = temp_package(
        "tir_tmp_roots",
        {
            "__init__.py": """
                from tir_env.registry import Registry
                REG = Registry("thing", builtins=("tir_tmp_roots.first", "tir_tmp_roots.second"))
            """,
            "first.py": register.format("first"),
            "second.py": register.format("second"),
        },
    )
    importlib.import_module(f"{package}.second")  # the second root's module, by hand, first
    reg = importlib.import_module(package).REG
    reg.register(type("Mine", (), {"name": "mine"}))  # imports the built-ins, then registers
    assert reg.names() == ["first", "second", "mine"]
    # as with the tools: importing tir_env.tools.learned before the first lookup used to put
    # the learned tools before the classical ones in the "full" toolbox
    assert tool_names()[: len(CLASSICAL_TOOLS)] == CLASSICAL_TOOLS


def test_a_builtin_class_registered_by_hand_is_not_a_builtin(tmp_package: str) -> None:
    """Who registers decides, not where the class is defined (a user's spec of a built-in)."""
    package = importlib.import_module(tmp_package)
    package.REG.register(package.Thing("mine"))  # Thing is defined by the built-in package
    assert package.REG.names() == ["a", "b", "c", "mine"]
    assert not package.REG.is_builtin("mine")
    assert all(package.REG.is_builtin(n) for n in "abc")


def test_a_source_run_while_a_builtin_module_imports_adds_no_builtin(
    temp_package: Callable[[str, dict[str, str]], str],
) -> None:
    """A lookup made in a built-in module's body runs the sources: theirs are not built-ins."""
    package = temp_package(
        "tir_tmp_src",
        {
            "__init__.py": """
                from tir_env.registry import Registry
                REG = Registry("thing", builtins=("tir_tmp_src",))
                class Thing:
                    def __init__(self, name):
                        self.name = name
            """,
            "a_mod.py": """
                from tir_tmp_src import REG, Thing
                REG.register(Thing("a"))
                REG.names()  # a lookup while the built-ins load: it runs the sources
            """,
        },
    )
    module = importlib.import_module(package)
    reg = module.REG
    runs: list[bool] = []

    def source() -> None:  # a user's checkpoint appearing with a file, say
        runs.append(reg._loading)
        if "late" not in reg._items:
            reg.add("late", module.Thing("late"))

    reg.add_source(source)
    assert reg.names() == ["a", "late"]
    assert runs[0]  # the first run was the built-in module's lookup, while loading
    assert reg.is_builtin("a") and not reg.is_builtin("late")
