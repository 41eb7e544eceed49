"""Pretrained tools: a user's checkpoints from disk, built with spandrel.

Nothing is downloaded. A user registers a checkpoint file for a task under a tool name; the
architecture and its hyper-parameters are detected from the weights by
`spandrel <https://github.com/chaiNNer-org/spandrel>`_ (SwinIR, HAT, SCUNet, FBCNN, DRUNet,
DnCNN, NAFNet, RetinexFormer, MixDehazeNet, ...) and ``spandrel-extra-arches`` (Restormer,
MPRNet, MIRNetv2, ...). Three ways to register:

* from Python: :func:`register_checkpoint` (``path, task, name``);
* from a TOML file named by ``$TIR_TOOLS_TOML`` (read when the tool registry is first used)
  or passed to :func:`register_from_toml`::

      [[tool]]
      name = "swinir_sr"                 # tool name (lower snake case)
      task = "super_resolution"          # one of tir_env.types.TASKS
      path = "~/weights/SwinIR-M_x4.pth" # .safetensors, .pth, .pt, .ckpt or .bin
      tile = 256                         # optional: tile side in input pixels (0 = never tile)
      overlap = 16                       # optional: overlap of neighbouring tiles

* from the command line: ``tir tools --register PATH:TASK:NAME`` (checks and lists it);
* by fetching published checkpoints: ``tir weights fetch NAME`` places the manifest's file
  (:mod:`tir_env.weights_manifest`) at ``<weights dir>/tools/<file>``, and every such file
  present is registered under its manifest name (:func:`register_from_cache`), which fills
  the ``"agenticir"`` slots.

Weights are read only with ``safetensors`` or ``torch.load(weights_only=True)``: no pickled
code ever runs (spandrel's own loader is not used for reading files). A missing file raises
:class:`~tir_env.errors.WeightsNotFoundError`; a corrupt one, one spandrel does not recognise,
or one whose scale does not fit the task (4 for super-resolution, else 1) raises
:class:`~tir_env.errors.CheckpointError`; all name the file. Registration is
cheap (it only checks the file exists); the weights load on the first call, or at
registration with ``check=True``.

Large images run in overlapping tiles (``tile`` x ``tile`` input pixels, ``overlap`` pixels
shared with each neighbour, blended with linear ramps), so memory stays bounded by one
tile's activations plus the output image.

Registered checkpoints join the ``"full"`` toolbox and fill the slots of the ``"agenticir"``
preset (:mod:`tir_env.tools.presets`).
"""

from __future__ import annotations

import logging
import os
import threading
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from tir_env.errors import (
    CheckpointError,
    TIRError,
    ToolRegistrationError,
    UnknownNameError,
    WeightsNotFoundError,
    did_you_mean,
)
from tir_env.tools.base import TOOLS, Tool, ToolInfo
from tir_env.tools.checkpoints import (  # noqa: F401 - public here before the split
    SAFETENSORS_SUFFIXES,
    TORCH_SUFFIXES,
    load_descriptor,
    read_state_dict,
    verify_checkpoint,
)
from tir_env.tools.presets import (  # noqa: F401 - presets lived here before; keep imports working
    AGENTICIR_TOOLBOX,
    TOML_ENV,
    PresetStatus,
    agenticir_status,
    toolbox_tools,
)
from tir_env.tools.tiling import run_tiled
from tir_env.types import TASKS

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------ tools


@dataclass(frozen=True)
class CheckpointSpec:
    """A user checkpoint registered as a tool.

    Attributes:
        name: Tool name.
        task: The task it addresses (one of :data:`~tir_env.types.TASKS`).
        path: The checkpoint file.
        tile: Tile side in input pixels (0 = never tile).
        overlap: Pixels shared by neighbouring tiles.
    """

    name: str
    task: str
    path: Path
    tile: int = 256
    overlap: int = 16

    @property
    def scale(self) -> int:
        """4 for super-resolution checkpoints, else 1 (checked against the weights)."""
        return 4 if self.task == "super_resolution" else 1


class PretrainedTool(Tool):
    """A tool running a user checkpoint through spandrel (weights load on the first call)."""

    checkpoint: CheckpointSpec

    def __init__(self) -> None:
        self._descriptor: Any = None
        self._device = torch.device("cpu")
        self._lock = threading.Lock()

    @classmethod
    def availability(cls) -> str | None:
        """``None`` when the checkpoint file exists, else why the tool cannot run."""
        path = cls.checkpoint.path
        return None if path.is_file() else f"checkpoint not found: {path}"

    def to(self, device: torch.device | str) -> Tool:
        """Run on ``device`` from now on (moves the model if it is loaded)."""
        with self._lock:
            self._device = torch.device(device)
            if self._descriptor is not None:
                self._descriptor.to(self._device)
        return self

    def descriptor(self) -> Any:
        """The spandrel model descriptor, loaded and checked once.

        Raises:
            WeightsNotFoundError: the checkpoint is missing.
            CheckpointError: unreadable, unsupported, or its scale does not fit the task.
        """
        with self._lock:
            if self._descriptor is None:
                spec = self.checkpoint
                descriptor = load_descriptor(spec.path)
                if descriptor.scale != spec.scale:
                    raise CheckpointError(
                        f"checkpoint {spec.path} is a x{descriptor.scale} "
                        f"{descriptor.architecture.name} model, but task {spec.task!r} needs "
                        f"x{spec.scale}"
                    )
                self._descriptor = descriptor.to(self._device)
            return self._descriptor

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Run the model on every image of the batch, in tiles when it is large."""
        descriptor = self.descriptor()
        spec = self.checkpoint
        tile = 0 if descriptor.tiling.name == "INTERNAL" else spec.tile
        x = batch.to(self._device)
        outs = [
            run_tiled(
                lambda t: self._forward(descriptor, t), x[i : i + 1], spec.scale, tile, spec.overlap
            )
            for i in range(x.shape[0])
        ]
        return torch.cat(outs).clamp(0.0, 1.0).to(batch.device)

    @staticmethod
    def _forward(descriptor: Any, image: torch.Tensor) -> torch.Tensor:
        """One tile through the model; grey models run on each channel."""
        if descriptor.input_channels == 3:
            return descriptor(image)
        return torch.cat([descriptor(image[:, c : c + 1]) for c in range(3)], dim=1)


def register_checkpoint(
    path: str | Path,
    task: str,
    name: str | None = None,
    *,
    tile: int = 256,
    overlap: int = 16,
    description: str = "",
    overwrite: bool = False,
    check: bool = False,
) -> str:
    """Register the checkpoint at ``path`` as a ``pretrained`` tool for ``task``.

    Args:
        path: A ``.safetensors``, ``.pth``, ``.pt``, ``.ckpt`` or ``.bin`` file.
        task: One of :data:`~tir_env.types.TASKS`.
        name: Tool name (default: the file's stem, lower snake case).
        tile: Tile side in input pixels for large images (0 = never tile).
        overlap: Pixels shared by neighbouring tiles.
        description: One line for ``tir tools`` (default: the file name).
        overwrite: Replace a tool already registered under ``name``.
        check: Load the weights now (else on the first call).

    Returns:
        The tool name.

    Raises:
        WeightsNotFoundError: no file at ``path``.
        CheckpointError: ``check`` and the file cannot be loaded or has the wrong scale.
        UnknownNameError: ``task`` is not a task.
        ValueError: ``name`` is taken by another tool or checkpoint (without ``overwrite``),
            or malformed. Registering the same checkpoint again is a no-op.
    """
    file = Path(path).expanduser().resolve()
    if task not in TASKS:
        raise UnknownNameError(
            f"unknown task {task!r}.{did_you_mean(task, TASKS)} Tasks: {', '.join(TASKS)}"
        )
    if not file.is_file():
        raise WeightsNotFoundError(f"checkpoint not found: {file}")
    name = name or file.stem.lower().replace("-", "_").replace(".", "_")
    if not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"tool name must be lower snake case, got {name!r}")
    if tile < 0 or overlap < 0 or (tile and overlap >= tile):
        raise ValueError(
            f"need tile >= 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}"
        )
    spec = CheckpointSpec(name, task, file, tile, overlap)
    if not overwrite and name in TOOLS and getattr(TOOLS.get(name), "checkpoint", None) == spec:
        # The same file again (a TOML and --register, a re-run cell): keep it, but honour check.
        if check:
            TOOLS.get(name)().descriptor()  # type: ignore[attr-defined]
        return name
    info = ToolInfo(
        name=name,
        task=task,
        kind="pretrained",
        cost_hint=100.0,
        scale=spec.scale,
        description=description or f"user checkpoint {file.name} (spandrel)",
    )
    cls = type(f"Pretrained_{name}", (PretrainedTool,), {"checkpoint": spec, "info": info})
    if check:
        cls().descriptor()
    if overwrite:
        from tir_env.tools.base import make_tool

        make_tool.cache_clear()  # a cached instance of the old tool must not survive
    TOOLS.add(name, cls, overwrite=overwrite)
    return name


def parse_register(text: str) -> tuple[str, str, str | None]:
    """Split ``PATH:TASK[:NAME]`` (the ``--register`` syntax; PATH may contain colons).

    Raises:
        ValueError: fewer than two fields.
    """
    head, sep, last = text.rpartition(":")
    if not sep:
        raise ValueError(f"expected PATH:TASK[:NAME], got {text!r}")
    if last in TASKS:
        return head, last, None
    path, sep, task = head.rpartition(":")
    if not sep:
        raise ValueError(f"expected PATH:TASK[:NAME], got {text!r}")
    return path, task, last


def register_from_toml(
    path: str | Path,
    *,
    overwrite: bool = False,
    errors: Literal["raise", "warn"] = "raise",
) -> list[str]:
    """Register every ``[[tool]]`` entry of a TOML file (see the module docstring).

    Relative checkpoint paths are relative to the TOML file and must stay inside its folder
    (``../../etc/passwd`` is refused); absolute and ``~`` paths are taken as given. Each
    checkpoint is checked before it is registered: a known suffix, a file that exists, and
    weights readable with safetensors or ``torch.load(weights_only=True)`` (a pickle that
    needs code to load is refused). A name already taken by another tool (a built-in, say)
    is refused. Refused entries never join a toolbox.

    Args:
        path: The TOML file.
        overwrite: Replace tools already registered under the entries' names.
        errors: ``"raise"``: the first refused entry raises. ``"warn"``: each refused entry
            is reported with a warning and skipped; the entries after it still register.

    Returns:
        The names registered.

    Raises:
        WeightsNotFoundError: the TOML file or a checkpoint is missing.
        CheckpointError: a checkpoint has an unknown suffix or cannot be read safely.
        ToolRegistrationError: an entry lacks ``path`` or ``task``, its path escapes the
            TOML's folder, or its name is taken.
        TIRError: the file is not valid TOML.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsNotFoundError(f"tools TOML file not found: {file}")
    try:
        config = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as err:
        raise TIRError(f"{file} is not valid TOML: {err}") from err
    names = []
    for i, entry in enumerate(config.get("tool", [])):
        try:
            names.append(_register_toml_entry(file, i, entry, overwrite))
        except (TIRError, ValueError) as err:
            if errors == "raise":
                raise
            warnings.warn(
                f"{file}: [[tool]] entry {i} refused ({type(err).__name__}): {err}",
                stacklevel=3,
            )
    return names


def _register_toml_entry(file: Path, i: int, entry: Any, overwrite: bool) -> str:
    """Check one ``[[tool]]`` entry of ``file`` and register it; return its name."""
    if not isinstance(entry, Mapping):
        raise ToolRegistrationError(f"{file}: [[tool]] entry {i} is not a table")
    missing = [k for k in ("path", "task") if k not in entry]
    if missing:
        raise ToolRegistrationError(f"{file}: [[tool]] entry {i} lacks {', '.join(missing)}")
    checkpoint = _entry_path(file, str(entry["path"]))
    name = entry.get("name")
    if name is not None and name in TOOLS and not overwrite:
        existing = getattr(TOOLS.get(name), "checkpoint", None)
        if existing is None or Path(existing.path) != checkpoint:
            raise ToolRegistrationError(
                f"{file}: [[tool]] entry {i}: the name {name!r} is already taken by another "
                "tool (a built-in or an earlier entry); choose another name"
            )
    verify_checkpoint(checkpoint)
    return register_checkpoint(
        checkpoint,
        entry["task"],
        name,
        tile=int(entry.get("tile", 256)),
        overlap=int(entry.get("overlap", 16)),
        description=str(entry.get("description", "")),
        overwrite=overwrite,
    )


def _entry_path(file: Path, text: str) -> Path:
    """The checkpoint path of an entry; a relative one must stay inside the TOML's folder.

    Raises:
        ToolRegistrationError: a relative path that resolves outside the folder.
    """
    checkpoint = Path(text).expanduser()
    if checkpoint.is_absolute():
        return checkpoint.resolve()
    folder = file.parent.resolve()
    resolved = (folder / checkpoint).resolve()
    if not resolved.is_relative_to(folder):
        raise ToolRegistrationError(
            f"{file}: checkpoint path {text!r} escapes the TOML file's folder {folder}; "
            "give an absolute path if the file really lives elsewhere"
        )
    return resolved


_env_lock = threading.Lock()
_env_loaded: str | None = None


def register_from_env() -> list[str]:
    """Register the checkpoints of ``$TIR_TOOLS_TOML`` once per process (no-op if unset).

    A broken file, or each refused entry, is reported with a warning (naming the error), so
    the rest of the toolbox, and the file's valid entries, keep working.
    """
    global _env_loaded
    path = os.environ.get(TOML_ENV)
    if not path or path == _env_loaded:  # the common case, checked without the lock
        return []
    with _env_lock:
        if not path or path == _env_loaded:
            return []
        _env_loaded = path
        try:
            return register_from_toml(path, errors="warn")
        except (TIRError, ValueError) as err:
            warnings.warn(f"${TOML_ENV}: {err}", stacklevel=2)
            return []


_cache_lock = threading.Lock()
_cache_seen: tuple[str, int] | None = None
#: The variables :func:`~tir_env.metrics.weights.resolve_weights_dir` reads (``HOME`` for ``~``).
_FOLDER_VARS = ("TIR_WEIGHTS_DIR", "TORCH_HOME", "XDG_CACHE_HOME", "HOME")
_folder_memo: tuple[tuple[str | None, ...], str] | None = None


def _tools_folder() -> str:
    """``<weights dir>/tools``, resolved again only when a variable it depends on changed.

    :func:`register_from_cache` runs on every tool lookup (an env step makes dozens), and
    resolving the path (``expanduser``, ``Path`` parsing) cost more than the ``stat``.
    """
    global _folder_memo
    key = tuple(os.environ.get(name) for name in _FOLDER_VARS)
    memo = _folder_memo
    if memo is None or memo[0] != key:
        from tir_env.metrics.weights import resolve_weights_dir
        from tir_env.weights_manifest import TOOLS_FOLDER

        memo = (key, str(resolve_weights_dir() / TOOLS_FOLDER))
        _folder_memo = memo
    return memo[1]


def register_from_cache() -> list[str]:
    """Register the manifest's tool checkpoints present in ``<weights dir>/tools``.

    Runs on registry lookups, so it only rescans when the folder's path or modification time
    changed (``tir weights fetch`` renames files into it, which updates the time). A name
    already registered (e.g. by ``$TIR_TOOLS_TOML``) keeps its checkpoint.
    """
    global _cache_seen
    folder = _tools_folder()
    try:
        key = (folder, os.stat(folder).st_mtime_ns)
    except OSError:
        return []
    if key == _cache_seen:  # the common case, checked without the lock
        return []
    from tir_env.metrics.weights import resolve_weights_dir
    from tir_env.weights_manifest import load_manifest

    root = resolve_weights_dir()
    with _cache_lock:
        if key == _cache_seen:
            return []
        _cache_seen = key
        names = []
        for entry in load_manifest().tools():
            path = entry.path(root)
            if path.is_file() and entry.name not in TOOLS:
                description = f"{entry.architecture} ({entry.file}, fetched; {entry.licence})"
                names.append(
                    register_checkpoint(path, entry.task, entry.name, description=description)
                )
        return names


def register_user_checkpoints() -> None:
    """Register ``$TIR_TOOLS_TOML``'s checkpoints, then the fetched ones (cheap when unchanged)."""
    register_from_env()
    register_from_cache()


# Checkpoints come and go with $TIR_TOOLS_TOML and fetched files: re-read before every lookup.
TOOLS.add_source(register_user_checkpoints)


__all__ = [
    "TOML_ENV",
    "CheckpointError",
    "CheckpointSpec",
    "PretrainedTool",
    "load_descriptor",
    "parse_register",
    "read_state_dict",
    "register_checkpoint",
    "register_from_cache",
    "register_from_env",
    "register_from_toml",
    "register_user_checkpoints",
    "run_tiled",
    "verify_checkpoint",
]
