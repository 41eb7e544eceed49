"""``tir ... --help``: every subcommand prints its own usage, choices and plain text."""

from __future__ import annotations

import re
from typing import get_args, get_type_hints

import pytest

from benchmarks.cli import COMMANDS, GROUPS, main
from benchmarks.commands import train
from benchmarks.commands.common import choice_list
from benchmarks.commands.configs import ExpertsConfig, TrainRecipeConfig
from tir_env.help_text import plain_text

#: Every subcommand the CLI lists: each command's words, and each group alone (``tir data``).
SUBCOMMANDS = [command.words for command in COMMANDS] + [(group,) for group in GROUPS]
#: Sphinx roles a terminal should never show.
ROLES = re.compile(r":(func|mod|attr|class|meth|data|obj):`")


def _help(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What ``tir WORDS`` prints, asserting it exits 0."""
    with pytest.raises(SystemExit) as info:
        main(words)
    assert info.value.code == 0, words
    return capsys.readouterr().out


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=[" ".join(w) for w in SUBCOMMANDS])
def test_every_subcommand_help_shows_its_own_usage(
    words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _help([*words, "--help"], capsys)
    usage = f"usage: tir {' '.join(words)}"
    assert out.startswith(usage) and out[len(usage)] in " \n", out.splitlines()[0]
    assert "``" not in out and not ROLES.search(out), out


@pytest.mark.parametrize(
    ("words", "config", "field", "choices"),
    [
        (["train"], TrainRecipeConfig, "algo", train.ALGOS),
        (["experts"], ExpertsConfig, "action", train.EXPERT_ACTIONS),
    ],
)
def test_help_lists_each_choice_on_its_own_line(
    words: list[str],
    config: type,
    field: str,
    choices: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    hint = get_type_hints(config, include_extras=True)[field]
    assert set(choices) == set(get_args(get_args(hint)[0]))  # Annotated[Literal[...], Arg]
    out = _help([*words, "--help"], capsys)
    for word, text in choices.items():
        assert re.search(rf"^  {re.escape(word)} +{re.escape(text)}$", out, re.M), word


def test_a_recipes_help_still_goes_to_the_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["experts", "collect", "--help"], capsys)
    assert out.startswith("usage: tir experts collect")


def test_tir_help_has_no_double_backticks(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["--help"], capsys)
    assert "``" not in out
    assert "The `tir` command line" in out


def test_agents_options_show_no_sphinx_roles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agents", "--options"]) == 0
    out = capsys.readouterr().out
    assert "episode_digest" in out  # the role's target stays
    assert not ROLES.search(out) and ":class:`" not in out
    assert "``" not in out


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("What ``tir speed`` measures.", "What `tir speed` measures."),
        ("mix in :func:`episode_digest`, so", "mix in `episode_digest`, so"),
        (":mod:`agents.tuned` and :attr:`required_tools`", "`agents.tuned` and `required_tools`"),
        (":class:`~tir_env.tools.learned.Net`", "`Net`"),
        (":py:meth:`a.b` and :ref:`the docs <docs-x>`", "`a.b` and `the docs`"),
        ("keeps `one`, *stars*, 50% and a::b", "keeps `one`, *stars*, 50% and a::b"),
        ("", ""),
    ],
)
def test_plain_text_removes_docstring_markup(text: str, plain: str) -> None:
    assert plain_text(text) == plain


def test_choice_list_is_one_line_per_choice() -> None:
    assert choice_list("algos", {"a": "first", "bbb": "second"}).splitlines() == [
        "algos:",
        "  a    first",
        "  bbb  second",
    ]


@pytest.mark.parametrize(("words", "missing"), [(["train"], "algo"), (["experts"], "action")])
def test_a_bare_group_command_names_only_what_is_missing(words, missing, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(words)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"required: {missing}" in err and "_args" not in err
