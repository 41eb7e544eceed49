"""Named errors of the VLM agent (all are :class:`~tir_env.errors.TIRError`)."""

from __future__ import annotations

from tir_env.errors import TIRError


class ModelLoadError(TIRError, OSError):
    """A model, processor or adapter folder exists but cannot be loaded (corrupt or partial)."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """A model or adapter folder (or a file it must contain) is missing."""


class ChatTemplateError(TIRError, ValueError):
    """The processor's chat template cannot render multi-turn dialogues incrementally."""


class TrajectoryError(TIRError, ValueError):
    """A trajectory file is missing, corrupt or does not match the env's tools."""
