"""The generator of docs/reliability.md (benchmarks/reliability_doc.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability_doc import (
    OUT,
    FaultDocError,
    collect,
    parse_docstring,
    reliability_markdown,
)

GOOD = '''
def test_good():
    """a bad input | a named error"""
'''


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_rows_come_from_one_line_docstrings(tmp_path):
    _write(
        tmp_path,
        "test_faults_a.py",
        GOOD + '\nclass TestX:\n    def test_m(self):\n        """x | y"""\n',
    )
    rows = collect(tmp_path)
    assert [(r.fault, r.behaviour, r.test) for r in rows] == [
        ("a bad input", "a named error", "test_faults_a.py::test_good"),
        ("x", "y", "test_faults_a.py::test_m"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        "def test_bare():\n    pass\n",
        'def test_two_lines():\n    """a | b\n\n    more\n    """\n',
        'def test_no_bar():\n    """a fault, a behaviour"""\n',
        'def test_empty_side():\n    """ | b"""\n',
    ],
    ids=["none", "two-lines", "no-separator", "empty-side"],
)
def test_malformed_docstring_fails_loudly(tmp_path, body):
    _write(tmp_path, "test_faults_a.py", GOOD)
    _write(tmp_path, "test_faults_b.py", body)
    name = body.split("(")[0].removeprefix("def ")
    with pytest.raises(FaultDocError, match=f"test_faults_b.py:1: {name}"):
        collect(tmp_path)


def test_no_fault_files_is_an_error(tmp_path):
    with pytest.raises(FaultDocError, match="no test_faults"):
        collect(tmp_path)


def test_pipes_in_text_are_escaped():
    assert parse_docstring("a | b | c") == ("a", "b | c")
    from benchmarks.reliability_doc import FaultRow, table

    assert "b \\| c" in table([FaultRow("a", "b | c", "f::t")])


def test_reliability_doc_is_up_to_date():
    assert OUT.read_text() == reliability_markdown(), "run: python -m benchmarks.reliability_doc"
