"""Generate ``docs/reliability.md`` from the fault-injection tests and the soak result.

Every test function in ``tests/test_faults_*.py`` has a one-line docstring
``<input or fault> | <behaviour>``; this module reads them with :mod:`ast` (nothing is
imported or run) and writes one table row per test, then the numbers of the last soak run
(``benchmarks/results/soak.json``, made by ``python -m benchmarks.soak``). A test without a
docstring of that form fails the generation, naming the file, line and test.

Usage: ``python -m benchmarks.reliability_doc`` (also run by ``python -m benchmarks.gen_docs``).
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tir_env.errors import TIRError

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SOAK = ROOT / "benchmarks" / "results" / "soak.json"
OUT = ROOT / "docs" / "reliability.md"
PATTERN = "test_faults_*.py"
SEPARATOR = " | "

INTRO = """\
# Reliability: bad input and faults

What TIR does when its input is bad or something fails: photos, outputs, benchmark and
training runs, the env, the tool pool, tool registration and the `api-vlm` agent. Each row is
a fault-injection test in the default test tier (`pytest tests/test_faults_*.py`); the table is
generated from the tests' one-line docstrings (`<input or fault> | <behaviour>`) by
`python -m benchmarks.reliability_doc`, so it cannot drift from what is tested.
"""


class FaultDocError(TIRError, ValueError):
    """A fault-injection test lacks the one-line ``<input or fault> | <behaviour>`` docstring."""


@dataclass(frozen=True)
class FaultRow:
    """One documented fault test.

    Attributes:
        fault: The input or fault injected.
        behaviour: What TIR does about it.
        test: ``file::name`` of the test.
    """

    fault: str
    behaviour: str
    test: str


def _test_functions(tree: ast.Module) -> Iterable[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Test functions at module level and in ``Test*`` classes (pytest's collection rules)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    item.name.startswith("test")
                ):
                    yield item


def parse_docstring(doc: str | None) -> tuple[str, str] | None:
    """``(fault, behaviour)`` from a one-line ``fault | behaviour`` docstring, else ``None``."""
    if doc is None:
        return None
    text = doc.strip()
    if "\n" in text or SEPARATOR not in text:
        return None
    fault, behaviour = (part.strip() for part in text.split(SEPARATOR, 1))
    return (fault, behaviour) if fault and behaviour else None


def fault_rows(path: Path) -> tuple[list[FaultRow], list[str]]:
    """The rows of one test file, and a message for each test with a malformed docstring."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rows, problems = [], []
    for node in _test_functions(tree):
        parsed = parse_docstring(ast.get_docstring(node, clean=True))
        if parsed is None:
            problems.append(
                f"{path.name}:{node.lineno}: {node.name} needs a one-line docstring "
                f"'<input or fault>{SEPARATOR}<behaviour>'"
            )
            continue
        rows.append(FaultRow(parsed[0], parsed[1], f"{path.name}::{node.name}"))
    return rows, problems


def collect(tests: Path = TESTS) -> list[FaultRow]:
    """Every row of every ``tests/test_faults_*.py``, file by file in name order.

    Raises:
        FaultDocError: a test lacks the docstring format (all offenders are listed), or no
            fault test file exists.
    """
    files = sorted(tests.glob(PATTERN))
    if not files:
        raise FaultDocError(f"no {PATTERN} files in {tests}")
    rows: list[FaultRow] = []
    problems: list[str] = []
    for path in files:
        file_rows, file_problems = fault_rows(path)
        rows += file_rows
        problems += file_problems
    if problems:
        raise FaultDocError(
            f"{len(problems)} fault test(s) lack the docstring format:\n  " + "\n  ".join(problems)
        )
    return rows


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: Sequence[FaultRow]) -> str:
    """The Markdown table of ``rows``."""
    lines = ["| input or fault | behaviour | test |", "|---|---|---|"]
    lines += [f"| {_cell(r.fault)} | {_cell(r.behaviour)} | `{r.test}` |" for r in rows]
    return "\n".join(lines) + "\n"


def soak_section(path: Path = SOAK) -> str:
    """The soak numbers of ``path`` (or how to make them, when it is missing)."""
    if not path.is_file():
        return (
            "## Soak\n\nNo soak result yet: run `OMP_NUM_THREADS=1 python -m benchmarks.soak` "
            f"(writes `{path.relative_to(ROOT)}`).\n"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    cfg, tools, api = data["config"], data["tools"], data.get("api")
    readings = tools["readings"]
    lines = [
        "## Soak",
        "",
        f"`{data['command']}` ({data['date']}, {data['machine']}), from "
        f"`{path.relative_to(ROOT)}`:",
        "",
        f"- **Tools**: {tools['episodes_recorded']} of {tools['episodes_requested']} episodes "
        f"recorded through the vector env ({cfg['num_envs']} sub-envs, {cfg['size']} px, one "
        f"shared pool, `timeout_s={cfg['timeout_s']}`), {tools['tool_calls']} tool calls, "
        f"{cfg['fault_rate']:.0%} of invocations faulty: injected "
        f"{_counts(tools['faults_injected'])}; errors the env recorded "
        f"{_counts(tools['tool_errors_seen'])}; every return finite: "
        f"{tools['returns_finite']}.",
    ]
    if api:
        lines.append(
            f"- **api-vlm**: {api['episodes_recorded']} of {api['episodes_requested']} episodes "
            f"recorded, {api['requests']} requests, {api['garbage_sent']} answered with a "
            f"non-JSON 200 ({cfg['garbage_rate']:.0%} asked), {api['api_errors_recorded']} "
            "recorded as api errors."
        )
    lines += [
        "",
        "| reading (tools part) | RSS (MiB) | threads |",
        "|---|---|---|",
    ]
    for name in ("start", "warm", "end", "peak", "closed"):
        if name in readings:
            r = readings[name]
            lines.append(f"| {name} | {r['rss_mb']} | {r['threads']} |")
    if api:
        for name in ("start", "warm", "end"):
            if name in api["readings"]:
                r = api["readings"][name]
                lines.append(f"| api-vlm {name} | {r['rss_mb']} | {r['threads']} |")
    bounds = data["bounds"]
    checks = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in data["checks"].items())
    lines += [
        "",
        f"Stated bounds, {bounds['measured_from']}: RSS growth <= {bounds['rss_growth_mb']} MiB, "
        f"at most {bounds['extra_threads']} extra threads. Checks: {checks}. Wall time: "
        f"{data['wall_s']['total']} s ({data['wall_s']['tools']} s for the tools part).",
    ]
    return "\n".join(lines) + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"


def reliability_markdown(tests: Path = TESTS, soak: Path = SOAK) -> str:
    """The whole page."""
    rows = collect(tests)
    return f"{INTRO}\n## Fault tests ({len(rows)})\n\n{table(rows)}\n{soak_section(soak)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``docs/reliability.md``; exit 1 (with the offenders) on a malformed docstring."""
    del argv
    try:
        text = reliability_markdown()
    except FaultDocError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    OUT.write_text(text)
    sys.stdout.write(f"wrote {OUT}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
