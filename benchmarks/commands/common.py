"""Steps several ``tir`` commands share: the user's checkpoints, the haze depth source, help text.

Help text comes from docstrings written for Sphinx: :func:`tir_env.help_text.plain_text` turns
their markup into what a terminal shows (every parser, recipes' included, uses its
:class:`~tir_env.help_text.HelpFormatter`).
"""

from __future__ import annotations

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


def choice_list(title: str, choices: Mapping[str, str]) -> str:
    """A ``--help`` epilog listing ``choices`` (word -> what it does), one line each."""
    width = max(map(len, choices), default=0)
    lines = [f"  {word:<{width}}  {text}" for word, text in choices.items()]
    return "\n".join([f"{title}:", *lines])
