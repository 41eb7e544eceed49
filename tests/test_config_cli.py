"""The one command line of every config dataclass (tir_env/config_cli.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tir_env.config_cli import config_from_args, config_parser


@dataclass(frozen=True)
class Demo:
    """A config.

    Attributes:
        steps: How many steps (100% of them).
        sizes: Layer sizes.
        limit: At most this many; None: all.
        name: A name.
        fast: Go fast.
    """

    steps: int = 3
    sizes: tuple[int, ...] = (64, 64)
    limit: int | None = None
    name: str = "x"
    fast: bool = False


def test_defaults_and_every_kind_of_field() -> None:
    assert config_from_args(Demo, [], "demo") == Demo()
    cfg = config_from_args(
        Demo, ["--steps", "5", "--limit", "7", "--name", "y", "--fast", "--sizes", "8"], "demo"
    )
    assert cfg == Demo(steps=5, sizes=(8,), limit=7, name="y", fast=True)
    assert config_from_args(Demo, ["--limit", "none"], "demo").limit is None


@given(st.lists(st.integers(1, 999), min_size=1, max_size=5), st.booleans())
def test_tuples_take_spaces_or_commas(values: list[int], commas: bool) -> None:
    words = [",".join(map(str, values))] if commas else [str(v) for v in values]
    assert config_from_args(Demo, ["--sizes", *words], "demo").sizes == tuple(values)


def test_help_shows_the_field_docs_and_a_bad_value_exits() -> None:
    text = config_parser(Demo, "demo").format_help()
    assert "How many steps (100% of them)." in text and "Layer sizes." in text
    with pytest.raises(SystemExit):
        config_from_args(Demo, ["--sizes", "8,x"], "demo")
    with pytest.raises(SystemExit):
        config_from_args(Demo, ["--steps", "many"], "demo")
