"""Every tool restores its own degradation: mean PSNR or SSIM rises on the test photos.

Inputs are the 64x64 centre crops of the 4 bundled test photos under the degradation that
the tool's task removes, 2 seeds each; the tool runs with its default parameters. Tools in
``benchmarks.tool_table.KNOWN_NOT_IMPROVING`` are skipped with their documented reason.
``python -m benchmarks.tool_table`` prints the same numbers at 128x128.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from benchmarks.tool_eval import evaluate_tool, task_degradations
from benchmarks.tool_table import KNOWN_NOT_IMPROVING
from tir_env.tools import tool_info, tool_names
from tir_env.types import TASKS

# Pretrained tools need user weights; they are checked where those weights are available.
NAMES = tool_names(kinds=("classical", "learned"))


@pytest.mark.parametrize("name", NAMES)
def test_tool_improves_its_degradation(name: str, test_batches: list[torch.Tensor]) -> None:
    if name in KNOWN_NOT_IMPROVING:
        pytest.skip(f"known not to improve: {KNOWN_NOT_IMPROVING[name]}")
    if tool_info(name).task not in task_degradations():
        pytest.skip(f"no degradation for task {tool_info(name).task!r}")
    effect = evaluate_tool(name, test_batches, seeds=[0, 1])
    assert effect.improves, (
        f"{name} on {effect.degradation}: PSNR {effect.psnr_before:.2f} -> "
        f"{effect.psnr_after:.2f}, SSIM {effect.ssim_before:.3f} -> {effect.ssim_after:.3f}"
    )


def test_known_not_improving_is_documented() -> None:
    for name, reason in KNOWN_NOT_IMPROVING.items():
        assert name in tool_names(), f"{name} is listed but not registered"
        assert len(reason) > 20, f"{name} needs a reason"


def test_tool_table_writes_markdown(tmp_path: Path) -> None:
    from benchmarks.tool_table import main

    out = tmp_path / "tools.md"
    effects = main(["--size", "32", "--seeds", "1", "--out", str(out)])
    text = out.read_text()
    assert text.startswith("# ") and "python -m benchmarks.tool_table --size 32" in text
    restorers = {t for t in tool_names(kinds=("classical",)) if tool_info(t).task in TASKS}
    assert {e.tool for e in effects} == restorers  # exploits (task "enhancement") are not rated
    for name in KNOWN_NOT_IMPROVING:
        assert f"`{name}` †" in text


def _benchmark_imports(module: str) -> set[str]:
    """The ``benchmarks.*`` modules ``benchmarks/<module>.py`` imports, at any depth."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{module}.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("benchmarks."):
            found.add(node.module or "")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("benchmarks.")}
    return found


def test_tool_evaluation_is_shared_without_an_import_cycle() -> None:
    table, train = _benchmark_imports("tool_table"), _benchmark_imports("train_tools")
    assert "benchmarks.tool_eval" in table and "benchmarks.tool_eval" in train
    assert "benchmarks.train_tools" not in table and "benchmarks.tool_table" not in train
    assert not {"benchmarks.tool_table", "benchmarks.train_tools"} & _benchmark_imports("tool_eval")
