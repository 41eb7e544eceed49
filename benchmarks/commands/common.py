"""Steps several ``tir`` commands share: the user's checkpoints, the haze depth source."""

from __future__ import annotations

import sys
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
