"""Atomic file writes: a reader, or a kill mid-write, sees the old file or the new one.

Whole files (tables, plots, checkpoints, configs) are written to a temporary name beside the
target and renamed onto it only once complete; ``os.replace`` is atomic on one file system.
:func:`environ_set` sets an environment variable (a weights folder, an offline flag) for a block.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps ``path``'s suffix (writers that pick a format from it, such as
    ``savefig`` or SB3's ``save``, still work) and starts with a dot (globs like ``ppo_*.zip``
    never see it). On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        with tmp.open("rb") as fh:  # on disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def refuse_existing(parser: Any, *paths: str | Path | None) -> None:
    """Stop a command (``parser.error``: a usage error) where an output path already exists.

    Called before any work: a long run must neither overwrite a committed record or a shipped
    file nor find out only at its end that it may not. ``None`` paths are skipped.
    """
    for path in paths:
        if path is not None and Path(path).exists():
            parser.error(f"{path} exists; choose another path or delete it first")


def refuse_used_folder(out: str | Path, markers: tuple[str, ...], hint: str) -> None:
    """Refuse to start a new run in ``out`` when it holds any of a previous run's ``markers``.

    Args:
        out: The run's output folder.
        markers: Files or folders (relative to ``out``) that only a run writes.
        hint: What to do instead (e.g. "pass --resume to continue it").

    Raises:
        RunExistsError: one of ``markers`` exists (nothing has been written).
    """
    from tir_env.errors import RunExistsError

    found = [m for m in markers if (Path(out) / m).exists()]
    if found:
        raise RunExistsError(
            f"{out} already holds a run ({', '.join(found)}); {hint}, or choose a new --out"
        )


@contextmanager
def environ_set(key: str, value: str) -> Iterator[None]:
    """Set ``$key`` to ``value`` inside the block; restore (or remove) it afterwards."""
    before = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before
