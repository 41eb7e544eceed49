"""docs/extending.md: every example is a complete file that runs, one per kind of component."""

from __future__ import annotations

import re
import runpy
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.base import AGENTS
from tir_env.degradations.base import DEGRADATIONS
from tir_env.metrics import METRICS, make_metric
from tir_env.registry import Registry
from tir_env.reward import REWARDS
from tir_env.tools.base import TOOLS, make_tool

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
REGISTRIES: dict[str, Registry[Any]] = {
    "tir.tools": TOOLS,
    "tir.degradations": DEGRADATIONS,
    "tir.metrics": METRICS,
    "tir.rewards": REWARDS,
    "tir.agents": AGENTS,
}
DECORATORS = ("@register_tool", "@register_degradation", "@register_metric")
DECORATORS += ("@register_reward", "@register_agent")


def code_blocks(language: str) -> list[str]:
    """The fenced ``language`` blocks of docs/extending.md, in order."""
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture
def clean_registries() -> Iterator[None]:
    """Forget whatever an example registers, so examples and other tests stay independent."""
    before = {group: set(reg.names()) for group, reg in REGISTRIES.items()}
    yield
    for group, registry in REGISTRIES.items():
        for name in set(registry.names()) - before[group]:
            registry.remove(name)
    make_tool.cache_clear()
    make_metric.cache_clear()


def test_one_example_per_kind_in_registry_order() -> None:
    blocks = code_blocks("python")
    assert [next(d for d in DECORATORS if d in block) for block in blocks] == list(DECORATORS)


@pytest.mark.parametrize("index", range(len(DECORATORS)), ids=[d[10:] for d in DECORATORS])
def test_example_runs_as_a_script(
    index: int, tmp_path: Path, clean_registries: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"example_{index}.py"
    path.write_text(code_blocks("python")[index])
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip()  # each example shows what it did


def test_entry_points_name_each_example() -> None:
    (toml,) = code_blocks("toml")
    groups = tomllib.loads(toml)["project"]["entry-points"]
    assert set(groups) == set(REGISTRIES)
    names = [name for group in groups.values() for name in group]
    blocks = code_blocks("python")
    assert all(f'"{name}"' in block for name, block in zip(names, blocks, strict=True))


def test_readme_links_the_page() -> None:
    assert "docs/extending.md" in (ROOT / "README.md").read_text()
