"""Steps several ``tir`` commands share: the user's checkpoints, the haze depth source, help text.

Help text comes from docstrings written for Sphinx: :func:`plain_text` turns their markup into
what a terminal shows.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.commands.configs import BenchConfig, CheckpointConfig
    from tir_env.degradations.depth import DepthSource


def register_checkpoints(config: CheckpointConfig) -> bool:
    """Register ``--config`` files and ``--register`` checkpoints; False (and why) on error."""
    from tir_env.errors import TIRError
    from tir_env.tools.pretrained import parse_register, register_checkpoint, register_from_toml

    try:
        for path in config.config:
            register_from_toml(path)
        for item in config.register:
            path, task, name = parse_register(item)
            register_checkpoint(path, task, name, check=True)
    except (TIRError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return False
    return True


def depth_source(config: BenchConfig) -> DepthSource:
    """Where haze takes its depth from: ``--depth``, ``--depth-missing``, ``--depth-cache``."""
    from tir_env.degradations.depth import DepthSource

    cache = Path(config.depth_cache).expanduser() if config.depth_cache else None
    return replace(DepthSource.parse(config.depth), missing=config.depth_missing, cache_dir=cache)


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


def choice_list(title: str, choices: Mapping[str, str]) -> str:
    """A ``--help`` epilog listing ``choices`` (word -> what it does), one line each."""
    width = max(map(len, choices), default=0)
    lines = [f"  {word:<{width}}  {text}" for word, text in choices.items()]
    return "\n".join([f"{title}:", *lines])
