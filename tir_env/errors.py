"""Named, actionable errors raised by TIR.

Every error says what was expected, what arrived and how to fix it. All derive from
:class:`TIRError`, so callers can catch the whole family with one clause.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TIRError(Exception):
    """Base class of every error TIR raises on purpose."""


class UnknownNameError(TIRError, KeyError):
    """A registry lookup named something that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidActionError(TIRError, ValueError):
    """An action does not fit the action space (bad tool index, params, shape)."""


class InvalidParameterError(TIRError, ValueError):
    """A tool parameter is unknown or outside its documented range."""


class ImageError(TIRError, ValueError):
    """An image is unreadable or has the wrong shape, dtype or range."""


class ToolExecutionError(TIRError, RuntimeError):
    """A tool raised, timed out, or returned an invalid result."""


class MetricUnavailableError(TIRError, RuntimeError):
    """A metric cannot be built here (missing weights or dependency)."""


class WeightsNotFoundError(MetricUnavailableError, FileNotFoundError):
    """A weight file is missing from the local path where it is expected."""


class CheckpointError(TIRError, ValueError):
    """A weight file exists but cannot be used: corrupt, unsupported or the wrong network."""


class EmptyToolboxError(TIRError, ValueError):
    """A toolbox preset resolves to no registered tool (e.g. no checkpoint registered yet)."""


class DataError(TIRError, ValueError):
    """A clean-image source is empty, missing, or misconfigured."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return a ``" Did you mean 'x'?"`` suffix, or an empty string if nothing is close."""
    best, best_score = "", 0.0
    for choice in choices:
        # Compare with the whole name and with its parts, so "gama" finds "gamma_correction".
        parts = [choice, *choice.replace("-", "_").split("_")]
        score = max(difflib.SequenceMatcher(None, name, p).ratio() for p in parts if p)
        if score > best_score:
            best, best_score = choice, score
    return f" Did you mean {best!r}?" if best_score >= 0.6 else ""


class ExpertDataError(DataError):
    """An expert trajectory dataset is missing, corrupt, or was made with other settings."""
