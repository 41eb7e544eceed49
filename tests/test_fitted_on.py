"""What each shipped learned piece was fitted on (benchmarks.fitted_on, docs/protocols.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import fitted_on
from benchmarks.gen_docs import DOCS
from tir_env.degradations.protocols import COMBOS

TRAINING = ("single", "mio-a", "train-d3")


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"protocols": list(TRAINING)}, TRAINING),
        ({"command": "python -m x --protocols single mio-a train-d3 --json r.json"}, TRAINING),
        ({"command": "x --suites mio-a mio-b; x --suites mio-c"}, ("mio-a", "mio-b", "mio-c")),
        ({"command": "python -m x --suites train-d3@full single@full"}, ("train-d3", "single")),
        ({"command": "python -m x --lambdas 1 10"}, fitted_on.SUITES),  # the trainer's default
        ({}, fitted_on.SUITES),
    ],
)
def test_a_record_names_its_protocols_or_its_trainers_default(
    meta: dict, expected: tuple[str, ...]
) -> None:
    assert fitted_on.fitted_protocols(meta, fitted_on.SUITES) == tuple(expected)


def test_every_combination_alike_names_no_evaluation_suite() -> None:
    assert fitted_on.fitted_protocols({"protocols": ["every"]}, ()) == ("every",)
    assert fitted_on.evaluation_suites_seen(["every"]) == ()
    assert fitted_on.evaluation_suites_seen(["every", "mio-c"]) == ("mio-c",)


def test_an_unknown_protocol_is_a_named_error() -> None:
    with pytest.raises(ValueError, match="unknown protocols"):
        fitted_on.fitted_protocols({"protocols": ["mio-z"]}, ())


@given(st.sets(st.sampled_from(sorted(COMBOS)), min_size=1))
def test_evaluation_combinations_are_seen_only_through_an_evaluation_suite(names: set) -> None:
    seen = fitted_on.evaluation_suites_seen(sorted(names))
    assert set(seen) <= set(fitted_on.EVALUATION_ONLY)
    assert bool(seen) == bool(names & set(fitted_on.EVALUATION_ONLY))


@pytest.mark.parametrize("piece", fitted_on.PIECES, ids=lambda p: p.record)
def test_every_shipped_piece_has_a_record_that_names_known_protocols(
    piece: fitted_on.Piece,
) -> None:
    meta = json.loads((fitted_on.ROOT / piece.record).read_text())
    assert fitted_on.fitted_protocols(meta, piece.default)


def test_the_table_reads_each_record_and_refuses_a_file_it_does_not_know(tmp_path: Path) -> None:
    rows = fitted_on.markdown_rows([fitted_on.ROOT / p.record for p in fitted_on.PIECES])
    assert len(rows) == 2 + len(fitted_on.PIECES)
    stray = tmp_path / "stray.json"
    stray.write_text("{}")
    with pytest.raises(KeyError):
        fitted_on.markdown_rows([stray])


def test_the_protocols_page_shows_the_table_of_the_records_as_they_are() -> None:
    from benchmarks.gen_docs import with_fitted_on_tables

    page = (DOCS / "protocols.md").read_text()
    assert "<!-- fitted-on:" in page
    assert with_fitted_on_tables(page) == page  # regenerate with python -m benchmarks.gen_docs
