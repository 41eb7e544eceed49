"""Structure checks: no module in ``tir_env`` grows past one job's worth of lines."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Longest a ``tir_env`` module may be (issue 18: "no module in tir_env over 500 lines").
MAX_LINES = 500


def long_modules(package: Path, limit: int) -> dict[str, int]:
    """``{relative path: line count}`` of the ``.py`` files under ``package`` over ``limit``."""
    counts = {
        str(path.relative_to(package.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(package.rglob("*.py"))
    }
    return {path: n for path, n in counts.items() if n > limit}


def test_no_tir_env_module_is_over_500_lines() -> None:
    too_long = long_modules(ROOT / "tir_env", MAX_LINES)
    assert not too_long, (
        f"modules over {MAX_LINES} lines: {too_long}; split them along their seams "
        "(one job per module)"
    )


@pytest.mark.parametrize("lines", [MAX_LINES, MAX_LINES + 1])
def test_the_check_counts_lines(tmp_path: Path, lines: int) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("x = 1\n" * lines, encoding="utf-8")
    assert bool(long_modules(package, MAX_LINES)) == (lines > MAX_LINES)
