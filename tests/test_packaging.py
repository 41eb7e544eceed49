"""What the package declares: runtime dependencies are what the library imports."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_test_only_and_unused_packages_are_not_runtime_dependencies():
    runtime = _names(PYPROJECT["project"]["dependencies"])
    assert "hypothesis" not in runtime  # tests only: in the test and dev extras
    assert "piq" not in runtime  # nothing imports it (docs/metrics.md says why)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "hypothesis" in _names(extras["test"]) and "hypothesis" in _names(extras["dev"])


def test_the_makefile_installs_the_test_dependencies():
    """make test (and .ci/run, which runs it) installs the dev extra, which has hypothesis."""
    assert '-e ".[dev]"' in (ROOT / "Makefile").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_library_code_imports_neither_hypothesis_nor_piq():
    pattern = re.compile(r"^\s*(import|from)\s+(hypothesis|piq)\b", re.M)
    for package in ("tir_env", "agents", "benchmarks"):
        for path in (ROOT / package).rglob("*.py"):
            assert not pattern.search(path.read_text()), path


def test_every_declared_marker_marks_a_test():
    """pytest -m slow / -m weights / -m gpu each select at least one real test."""
    declared = [m.split(":")[0] for m in PYPROJECT["tool"]["pytest"]["ini_options"]["markers"]]
    text = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for marker in declared:
        assert f"@pytest.mark.{marker}\n" in text, marker


def test_psnr_is_written_once():
    """Only tir_env.metrics.fast computes 10 log10(...) (the tool-training loss is a loss)."""
    allowed = {ROOT / "tir_env" / "metrics" / "fast.py"}
    for package in ("tir_env", "agents", "benchmarks"):
        for path in (ROOT / package).rglob("*.py"):
            lines = [
                line
                for line in path.read_text().splitlines()
                if "log10(" in line and "mse + 1e-4" not in line and "``" not in line
            ]
            assert path in allowed or not lines, (path, lines)
