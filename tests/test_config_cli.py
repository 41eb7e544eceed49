"""The one command line of every config dataclass (tir_env/config_cli.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tir_env.config_cli import (
    CONFIG_KEY,
    Arg,
    add_config_arguments,
    config_from_args,
    config_from_namespace,
    config_parser,
)


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


@dataclass(frozen=True)
class Command:
    """A subcommand's config.

    Attributes:
        name: What to work on.
        output: Where the result goes.
        mode: How to work.
        whole: Use everything.
        size: Use a crop of this side.
        option: KEY=VALUE, repeatable.
        agents: Which agents.
    """

    name: Annotated[str, Arg(positional=True)]
    output: Annotated[str, Arg(flags=("-o",))] = "out.png"
    mode: Literal["fast", "slow"] = "fast"
    whole: Annotated[bool, Arg(group="size")] = False
    size: Annotated[int | None, Arg(group="size")] = None
    option: Annotated[tuple[str, ...], Arg(append=True)] = ()
    agents: Annotated[tuple[str, ...], Arg(one_word=True)] = ("a", "b")


@dataclass(frozen=True)
class Recipe:
    """A command that hands its options on.

    Attributes:
        algo: Which recipe.
        rest: Everything after it.
    """

    algo: Annotated[Literal["a", "b"], Arg(positional=True)]
    rest: Annotated[tuple[str, ...], Arg(remainder=True)] = ()


def test_positionals_short_flags_choices_groups_and_repeats() -> None:
    assert config_from_args(Command, ["x"], "cmd") == Command(name="x")
    words = ["x", "-o", "y.png", "--mode", "slow", "--size", "8", "--option", "k=1"]
    words += ["--option", "j=2", "--agents", "c,d"]
    assert config_from_args(Command, words, "cmd") == Command(
        "x", "y.png", "slow", size=8, option=("k=1", "j=2"), agents=("c", "d")
    )
    assert config_from_args(Command, ["--agents", "c", "x"], "cmd").agents == ("c",)
    assert config_from_args(Recipe, ["b", "--q", "1"], "r") == Recipe("b", ("--q", "1"))


@pytest.mark.parametrize(
    "words",
    [[], ["x", "--mode", "medium"], ["x", "--whole", "--size", "8"], ["x", "--size", "big"]],
)
def test_missing_positional_bad_choice_or_exclusive_flags_exit(words: list[str]) -> None:
    with pytest.raises(SystemExit):
        config_from_args(Command, words, "cmd")


def test_subcommand_parsers_record_their_config() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_config_arguments(sub.add_parser("cmd"), Command)
    args = parser.parse_args(["cmd", "x", "--option", "k=1"])
    assert getattr(args, CONFIG_KEY) is Command
    assert config_from_namespace(Command, args) == Command("x", option=("k=1",))
    assert "Where the result goes." in config_parser(Command, "cmd").format_help()


@dataclass(frozen=True, kw_only=True)
class Files:
    """Files.

    Attributes:
        files: Photo files, one or more (a comma is part of a name).
        tags: Tags.
    """

    files: Annotated[tuple[str, ...], Arg(positional=True, split=False)]
    tags: tuple[str, ...] = ()


def test_a_required_positional_tuple_takes_one_or_more_whole_words() -> None:
    config = config_from_args(Files, ["a,b.jpg", "c.png", "--tags", "x,y"], prog="t")
    assert config == Files(files=("a,b.jpg", "c.png"), tags=("x", "y"))  # tags still split
    with pytest.raises(SystemExit):
        config_from_args(Files, [], prog="t")  # none: argparse's own error
