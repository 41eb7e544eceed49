"""Toolbox presets: which registered tools form an environment's action space.

``EnvConfig(toolbox=...)`` takes a preset name or a tuple of tool kinds:

* ``"classical"``: the built-in weight-free tools (the default);
* ``"learned"``: the networks trained in this repo (``tir train-tools``);
* ``"full"``: every registered tool of every kind, including the user's registered
  checkpoints, third-party plug-ins and tools registered by hand (e.g. the exploit of
  :mod:`tir_env.tools.exploits`);
* ``"agenticir"``: AgenticIR's 33 tools per task (:data:`AGENTICIR_TOOLBOX`), each resolved to a
  registered tool of that name; the missing ones are listed in a warning
  (:func:`agenticir_status`); with no checkpoint in any slot (only the classical brightening
  tools) it is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from tir_env.errors import EmptyToolboxError, UnknownNameError, did_you_mean
from tir_env.tools.base import TOOLS, tool_info, tool_names
from tir_env.types import ToolboxPreset, ToolKind

#: Environment variable naming a TOML file of checkpoints (read by :mod:`.pretrained`).
TOML_ENV = "TIR_TOOLS_TOML"
#: The kinds a tool can have.
KINDS: tuple[str, ...] = get_args(ToolKind)

#: Every preset name (``EnvConfig(toolbox=...)``, ``--toolbox``).
PRESETS: tuple[str, ...] = get_args(ToolboxPreset)

#: AgenticIR's toolbox (notes/paper.md §3.2): per task, its tools in the order it tries them,
#: as TIR tool names. Register a checkpoint under one of these names to fill the slot; the
#: brightening tools are the classical ones. Architectures spandrel cannot build (DiffBIR,
#: X-Restormer, MAXIM, DRBNet, IFAN, RIDCP, DehazeFormer) stay missing unless a plug-in
#: registers a tool of that name.
AGENTICIR_TOOLBOX: dict[str, tuple[str, ...]] = {
    "super_resolution": ("diffbir_sr", "xrestormer_sr", "swinir_sr_real", "swinir_sr", "hat_sr"),
    "denoising": (
        "xrestormer_denoise",
        "swinir_denoise_15",
        "swinir_denoise_50",
        "mprnet_denoise",
        "maxim_denoise",
        "restormer_denoise",
    ),
    "motion_deblurring": ("restormer_motion", "mprnet_motion", "maxim_motion", "xrestormer_motion"),
    "defocus_deblurring": ("drbnet_defocus", "restormer_defocus", "ifan_defocus"),
    "deraining": ("maxim_derain", "xrestormer_derain", "restormer_derain", "mprnet_derain"),
    "dehazing": ("xrestormer_dehaze", "ridcp_dehaze", "dehazeformer_dehaze", "maxim_dehaze"),
    "brightening": ("clahe", "gamma_correction", "constant_shift"),
    "jpeg_artifact_removal": ("fbcnn_blind", "fbcnn_qf5", "fbcnn_qf90", "swinir_jpeg_40"),
}


@dataclass(frozen=True)
class PresetStatus:
    """Which of a preset's tools are registered.

    Attributes:
        available: Registered tool names, in preset order.
        missing: Preset names with no registered tool, in preset order.
    """

    available: tuple[str, ...]
    missing: tuple[str, ...]

    def message(self) -> str:
        """A line saying what is missing and how to fill it (empty when nothing is)."""
        if not self.missing:
            return ""
        return (
            f"agenticir toolbox: {len(self.missing)} of "
            f"{len(self.missing) + len(self.available)} tools have no checkpoint: "
            f"{', '.join(self.missing)}. Register checkpoints under these names "
            f"([[tool]] entries in ${TOML_ENV}, or register_checkpoint())."
        )


def agenticir_status() -> PresetStatus:
    """Resolve :data:`AGENTICIR_TOOLBOX` against the registry."""
    registered = set(tool_names())
    wanted = [n for names in AGENTICIR_TOOLBOX.values() for n in names]
    return PresetStatus(
        available=tuple(n for n in wanted if n in registered),
        missing=tuple(n for n in wanted if n not in registered),
    )


#: Tool kinds of each kind-based preset.
PRESET_KINDS: dict[str, tuple[str, ...]] = {
    "classical": ("classical",),
    "learned": ("learned",),
    "full": KINDS,
}

#: Presets made of built-in tools only: installing a plug-in or importing an experiment's
#: tool never changes their action space (a trained policy's tool indices).
BUILTIN_PRESETS: tuple[str, ...] = ("classical", "learned")


def toolbox_tools(toolbox: str | Sequence[str]) -> tuple[str, ...]:
    """Tool names of a toolbox: a preset name or a sequence of kinds.

    ``"agenticir"`` warns (``UserWarning``) with :meth:`PresetStatus.message` when tools are
    missing and returns the available ones.

    Raises:
        UnknownNameError: an unknown preset or kind.
        EmptyToolboxError: no registered tool belongs to the toolbox.
    """
    if isinstance(toolbox, str) and toolbox == "agenticir":
        status = agenticir_status()
        # Brightening's slots are classical tools, always there: without one checkpoint the
        # preset would be a brightening-only toolbox, which is not what anyone asked for.
        if not set(status.available) - set(AGENTICIR_TOOLBOX["brightening"]):
            raise EmptyToolboxError(status.message())
        if status.missing:
            warnings.warn(status.message(), stacklevel=3)
        return status.available
    names = tuple(n for n in tool_names(kinds=_kinds(toolbox)) if not tool_info(n).exploit)
    if isinstance(toolbox, str) and toolbox in BUILTIN_PRESETS:
        names = tuple(n for n in names if TOOLS.is_builtin(n))
    if not names:
        raise EmptyToolboxError(
            f"toolbox {toolbox!r} has no registered tools: register checkpoints in this "
            f"process (register_checkpoint(), or --register/--config on the same `tir` "
            f"command) or for every process with ${TOML_ENV}"
        )
    return names


def _kinds(toolbox: str | Sequence[str]) -> tuple[str, ...]:
    """The tool kinds of a kind-based preset name or an explicit sequence of kinds."""
    if isinstance(toolbox, str):
        if toolbox not in PRESET_KINDS:
            choices = list(PRESETS)
            hint = f" For one kind, pass a tuple: ({toolbox!r},)." if toolbox in KINDS else ""
            raise UnknownNameError(
                f"unknown toolbox {toolbox!r}.{did_you_mean(toolbox, choices)} "
                f"Choose one of {choices} or a tuple of kinds.{hint}"
            )
        kinds = PRESET_KINDS[toolbox]
    else:
        kinds = tuple(toolbox)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise UnknownNameError(f"unknown tool kind(s) {bad}; kinds: {', '.join(KINDS)}")
    return kinds


__all__ = [
    "AGENTICIR_TOOLBOX",
    "BUILTIN_PRESETS",
    "KINDS",
    "PRESETS",
    "PRESET_KINDS",
    "PresetStatus",
    "ToolboxPreset",
    "agenticir_status",
    "toolbox_tools",
]
