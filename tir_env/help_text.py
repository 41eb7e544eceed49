"""Help text from docstrings, as a terminal shows it.

Docstrings are written for Sphinx; ``--help`` and ``tir agents --options`` print them through
:func:`plain_text`, and every parser of the ``tir`` command uses :class:`HelpFormatter`.
"""

from __future__ import annotations

import argparse
import re

#: A Sphinx role: ``:func:`x```, ``:py:meth:`~a.b```, ``:ref:`title <target>```.
_ROLE = re.compile(r":(?:[\w-]+:)?[\w-]+:`([^`]+)`")
#: An inline literal: ``x`` (two backticks each side).
_LITERAL = re.compile(r"``(.+?)``")


def plain_text(text: str) -> str:
    """``text`` (from a docstring) with its reStructuredText markup as a terminal shows it.

    An inline literal (two backticks each side) and a Sphinx role (``:func:`a.b```) become
    `x` (one backtick each side): a role's target as written (``~a.b.c``: ``c``; ``title
    <target>``: ``title``). Everything else is kept.

    >>> plain_text(":func:`episode_digest` of ``tir``, :mod:`~agents.tuned`")
    '`episode_digest` of `tir`, `tuned`'
    """
    return _LITERAL.sub(r"`\1`", _ROLE.sub(_role_text, text))


def _role_text(match: re.Match[str]) -> str:
    """What a Sphinx role shows: its title, else its target (the last part after ``~``)."""
    target = match[1].strip()
    title, bracket, _ = target.partition(" <")
    if bracket and target.endswith(">"):
        return f"`{title.strip()}`"
    target = target.lstrip("!")
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` as a terminal shows it: docstring markup made plain (:func:`plain_text`).

    Descriptions and epilogs keep their lines (an epilog lists choices, one a line); each
    option's help is wrapped and ends with its default.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return super()._fill_text(plain_text(text), width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = super()._get_help_string(action)
        return None if help_text is None else plain_text(help_text)
