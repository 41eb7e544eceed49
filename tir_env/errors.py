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


class ConfigError(InvalidParameterError):
    """A configuration option (an agent option, a config field) is unknown or has a bad value."""


class UnknownConfigFieldError(ConfigError):
    """An option names no field of the config (the message lists them, with a did-you-mean)."""


class ConfigValueError(ConfigError):
    """An option's value cannot be read as its field's type (the message names the type)."""


class ImageError(TIRError, ValueError):
    """An image is unreadable or has the wrong shape, dtype or range."""


class ToolExecutionError(TIRError, RuntimeError):
    """A tool raised, timed out, or returned an invalid result."""


class MetricUnavailableError(TIRError, RuntimeError):
    """A metric cannot be built here (missing weights or dependency)."""


class AgentUnavailableError(TIRError, RuntimeError):
    """An agent cannot be built on this machine: its weights, model or server are missing.

    ``tir demo`` reports such an agent as skipped and still exits 0; any other failure of an
    agent is an error.
    """


class WeightsNotFoundError(MetricUnavailableError, FileNotFoundError):
    """A weight file is missing from the local path where it is expected."""


class CheckpointError(TIRError, ValueError):
    """A weight file exists but cannot be used: corrupt, unsupported or the wrong network."""


class EmptyToolboxError(TIRError, ValueError):
    """A toolbox preset resolves to no registered tool (e.g. no checkpoint registered yet)."""


class DataError(TIRError, ValueError):
    """A clean-image source is empty, missing, or misconfigured."""


class ReservedPhotosError(DataError):
    """A command would train or tune on the independent evaluation set."""


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


class ManifestError(TIRError, ValueError):
    """A weights manifest entry is malformed or unsafe (e.g. a file name with ``..`` or ``/``)."""


class DownloadError(TIRError, RuntimeError):
    """A download failed: HTTP error (e.g. 404), refused connection, or a cut transfer."""


class DownloadTimeoutError(DownloadError, TimeoutError):
    """A server did not answer within the timeout, or a file did not arrive by its deadline."""


class OfflineError(DownloadError):
    """A download was asked for in offline mode (``TIR_OFFLINE=1`` or ``--offline``)."""


class ChecksumError(CheckpointError):
    """A file's SHA-256 does not match the manifest (or the hash pinned on first download)."""


class LicenceNotAcceptedError(TIRError, PermissionError):
    """A non-commercial licence must be accepted explicitly (``--accept-noncommercial``)."""


# --- issue 19 (env, pool, tool registration): appended here so parallel edits do not collide.


class EpisodeEndedError(TIRError, RuntimeError):
    """``step`` was called after the episode terminated or was truncated, before ``reset``."""


class InvalidOptionError(TIRError, ValueError):
    """A ``reset(options=...)`` value has the wrong type or is empty."""


class ToolRegistrationError(TIRError, ValueError):
    """A tool entry (``$TIR_TOOLS_TOML``, ``--register``) is refused before it joins a toolbox."""


class DepthError(TIRError, ValueError):
    """A haze depth source is misconfigured: bad spec, missing depth file or model folder."""


class NoRecordsError(TIRError, FileNotFoundError):
    """A results folder is missing or holds no benchmark records."""


class RunMismatchError(TIRError, ValueError):
    """A resumed run (bench or training) differs from the run that wrote its output folder."""


class RunExistsError(TIRError, FileExistsError):
    """An output folder already holds another run that a new run would overwrite or mix with."""


class SkippedWarning(UserWarning):
    """Something unusable was skipped and the work went on without it.

    For example an episode whose image cannot be read, or a checkpoint cut short.
    """


class ImageReadError(ImageError):
    """An image file is missing, truncated, corrupt or not an image; the message names it."""


class ImageTooLargeError(ImageError):
    """An image has more pixels than the reader accepts (a decompression-bomb guard)."""


class ImageTooSmallError(ImageError):
    """An image is too small on a side for the tools to restore."""


class OutputPathError(TIRError, ValueError):
    """An output path is unusable: a folder, no or an unknown extension, or the input itself."""


class OutputExistsError(OutputPathError, FileExistsError):
    """An output file already exists and overwriting was not asked for."""


class ExpertDataError(DataError):
    """An expert trajectory dataset is missing, corrupt, or was made with other settings."""


# --- issue 18 (one registry idiom, plug-ins): appended here so parallel edits do not collide.


class PluginLoadError(TIRError, ImportError):
    """A third-party component (entry point) failed to load; the message names its distribution.

    Fix the distribution named in the message or uninstall it; the built-ins are unaffected.
    """


class PluginWarning(UserWarning):
    """A third-party component (entry point) was skipped; the built-ins and others still work."""


# --- issue 58 (registration clashes, metric and reward contracts): appended here so parallel
# edits do not collide.


class NameTakenError(TIRError, ValueError):
    """A component was registered under a name another component already has.

    A built-in's name is never given to a plug-in or a hand-registered component; the message
    names the component holding it. Choose another name.
    """


class ComponentReplacedWarning(UserWarning):
    """A component was registered again by the same definition (a re-run notebook cell).

    The new definition replaces the old one under its name (cached tool and metric instances
    are dropped); an env keeps the reward it was made with until a new env is made.
    """


class MetricError(TIRError, RuntimeError):
    """A metric raised, or returned something other than one finite score per image."""


class RewardError(TIRError, RuntimeError):
    """A reward returned something other than a finite scalar."""
