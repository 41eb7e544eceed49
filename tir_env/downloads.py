"""Verified downloads of the published weights in the manifest (``tir weights fetch``).

Nothing here runs unless asked: TIR never downloads as a side effect. :func:`fetch_entry`
downloads one file of :mod:`tir_env.weights_manifest` into the weights folder:

1. HTTP(S) with the standard library only (``urllib``), into ``<file>.part``; an interrupted
   transfer resumes with an HTTP ``Range`` request (``retries`` times within one call, and
   on the next call from the ``.part`` left behind);
2. a socket timeout bounds connecting and every read (a hanging server raises
   :class:`~tir_env.errors.DownloadTimeoutError`), and ``deadline`` bounds the whole file;
3. the size and SHA-256 are checked *before* the file is moved into place with an atomic
   rename; a mismatch deletes the ``.part`` and raises
   :class:`~tir_env.errors.ChecksumError`, so a wrong file never lands where tools and
   metrics look;
4. where the manifest has no full published hash, the first download pins the one it got in
   ``<weights dir>/pins.json`` (a published prefix must still match) and later checks use it.

Offline mode (``TIR_OFFLINE=1`` or ``FetchConfig(offline=True)``) raises
:class:`~tir_env.errors.OfflineError` before any socket is opened. ``base_url`` replaces the
upstream URL by ``<base_url>/<file>`` (a mirror). Non-commercial licences need
``accept_noncommercial=True`` (:class:`~tir_env.errors.LicenceNotAcceptedError`).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tir_env.errors import (
    ChecksumError,
    DownloadError,
    DownloadTimeoutError,
    LicenceNotAcceptedError,
    OfflineError,
)
from tir_env.weights_manifest import Manifest, WeightEntry, load_manifest

logger = logging.getLogger(__name__)

#: Set to 1 to forbid every download (a named error at once, no socket).
OFFLINE_ENV = "TIR_OFFLINE"
#: File in the weights folder holding hashes pinned on first download.
PINS_FILE = "pins.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchConfig:
    """How downloads run.

    Attributes:
        base_url: Mirror: fetch ``<base_url>/<file>`` instead of the upstream URL.
        offline: Refuse every download (also on when ``$TIR_OFFLINE`` is 1).
        accept_noncommercial: Accept non-commercial licences (else they are refused).
        timeout: Seconds to connect, and for each read, before the server counts as hung.
        deadline: Seconds one file may take in all (attempts and resumes together).
        retries: Resumes after a cut connection within one call.
        progress: Show a progress bar (tqdm, on stderr).
    """

    base_url: str | None = None
    offline: bool = False
    accept_noncommercial: bool = False
    timeout: float = 30.0
    deadline: float = 3600.0
    retries: int = 3
    progress: bool = True


FetchStatus = Literal["downloaded", "present"]
VerifyStatus = Literal["ok", "pinned", "missing", "mismatch"]


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_entry` did.

    Attributes:
        entry: The manifest entry.
        path: Where the file is now.
        status: ``"downloaded"`` or ``"present"`` (already there and verified).
        sha256: The file's SHA-256.
        pinned: True when this call pinned the hash (none was published in full).
    """

    entry: WeightEntry
    path: Path
    status: FetchStatus
    sha256: str
    pinned: bool = False


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_entry` found.

    Attributes:
        entry: The manifest entry.
        path: Where the file is expected.
        status: ``ok`` (matches), ``pinned`` (no full hash known: pinned now), ``missing``
            or ``mismatch``.
        detail: The hashes compared, or why.
    """

    entry: WeightEntry
    path: Path
    status: VerifyStatus
    detail: str = ""


def weights_root(root: str | Path | None = None) -> Path:
    """The weights folder (``root``, else ``$TIR_WEIGHTS_DIR``, else ``$TORCH_HOME``)."""
    from tir_env.metrics.weights import resolve_weights_dir

    return resolve_weights_dir(root)


def is_offline(config: FetchConfig) -> bool:
    """Whether downloads are forbidden (the config or ``$TIR_OFFLINE``)."""
    return config.offline or os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0")


def entry_url(entry: WeightEntry, base_url: str | None = None) -> str:
    """The URL to fetch: the upstream one, or ``<base_url>/<file>`` for a mirror."""
    return f"{base_url.rstrip('/')}/{entry.file}" if base_url else entry.url


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------ pins


def read_pins(root: Path) -> dict[str, str]:
    """Hashes pinned on first download: relative path -> SHA-256 (empty if none)."""
    file = root / PINS_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


def _write_pin(root: Path, entry: WeightEntry, digest: str) -> None:
    pins = read_pins(root) | {entry.relpath: digest}
    tmp = root / f".{PINS_FILE}.tmp"
    tmp.write_text(json.dumps(dict(sorted(pins.items())), indent=2) + "\n")
    os.replace(tmp, root / PINS_FILE)  # atomic: a crash leaves the old pins
    logger.warning(
        "%s: no full SHA-256 is published (%s); pinned %s in %s",
        entry.name,
        entry.hash_source,
        digest,
        root / PINS_FILE,
    )


def expected_hash(entry: WeightEntry, root: Path) -> str:
    """The full hash to check against: the manifest's, else the pinned one, else ``""``."""
    if entry.hash_kind == "full":
        return entry.sha256
    return read_pins(root).get(entry.relpath, "")


def _check(entry: WeightEntry, root: Path, file: Path) -> tuple[str, bool]:
    """Check ``file`` against the entry; return (its hash, whether it must be pinned).

    Raises:
        ChecksumError: size or hash differ from the manifest, the published prefix or the pin.
    """
    if entry.bytes and file.stat().st_size != entry.bytes:
        raise ChecksumError(
            f"{entry.name}: {file} has {file.stat().st_size} bytes, the manifest says {entry.bytes}"
        )
    digest = sha256_file(file)
    want = expected_hash(entry, root) or entry.sha256
    if not digest.startswith(want):
        raise ChecksumError(
            f"{entry.name}: SHA-256 of {file} is {digest}, expected {want} ({entry.hash_source})."
            " The file is corrupt or not the published one; fetch it again."
        )
    return digest, len(want) < 64


# ------------------------------------------------------------------------------ fetch


def check_licence(entry: WeightEntry, config: FetchConfig) -> None:
    """Refuse a non-commercial licence unless it was accepted.

    Raises:
        LicenceNotAcceptedError: ``entry.noncommercial`` and not ``accept_noncommercial``.
    """
    if entry.noncommercial and not config.accept_noncommercial:
        raise LicenceNotAcceptedError(
            f"{entry.name} ({entry.file}) is licensed {entry.licence!r}: non-commercial use "
            "only. Pass --accept-noncommercial (FetchConfig(accept_noncommercial=True)) to "
            "download it."
        )


def fetch_entry(
    entry: WeightEntry, root: str | Path | None = None, config: FetchConfig | None = None
) -> FetchResult:
    """Download, verify and place one file (a verified file already in place is kept).

    Raises:
        ChecksumError: the download (or the file in place) does not match; nothing is moved.
        LicenceNotAcceptedError: a non-commercial licence was not accepted.
        OfflineError: offline mode.
        DownloadTimeoutError: the server hung, or the deadline passed.
        DownloadError: an HTTP error (e.g. 404), a refused connection, too many cuts, or no
            direct URL (the message says where to put a file downloaded by hand).
    """
    config = config or FetchConfig()
    base = weights_root(root)
    dest = entry.path(base)
    if dest.is_file():
        digest, pin = _check(entry, base, dest)
        if pin:
            _write_pin(base, entry, digest)
        return FetchResult(entry, dest, "present", digest, pin)
    if not entry.direct and not config.base_url:
        raise DownloadError(
            f"{entry.name}: {entry.url} is not a direct download. Download {entry.file} from "
            f"there, put it at {dest}, then run `tir weights verify {entry.name}`."
        )
    check_licence(entry, config)
    if is_offline(config):
        raise OfflineError(
            f"offline mode (${OFFLINE_ENV} or --offline): not downloading {entry.file}; "
            f"copy it to {dest} or fetch it on a machine with network access"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _download(entry, entry_url(entry, config.base_url), part, config)
    try:
        digest, pin = _check(entry, base, part)
    except ChecksumError:
        part.unlink(missing_ok=True)  # a resume would only extend a wrong file
        raise
    os.replace(part, dest)  # atomic within one folder: dest is whole or absent
    if pin:
        _write_pin(base, entry, digest)
    logger.info("%s: %s verified and placed at %s", entry.name, digest, dest)
    return FetchResult(entry, dest, "downloaded", digest, pin)


class _Cut(Exception):
    """The connection closed before the whole body arrived (resumable)."""


def _download(entry: WeightEntry, url: str, part: Path, config: FetchConfig) -> None:
    """Fill ``part`` from ``url``, resuming after cuts, within the deadline."""
    deadline_at = time.monotonic() + config.deadline
    for attempt in range(config.retries + 1):
        try:
            _attempt(entry, url, part, config, deadline_at)
            return
        except (_Cut, ConnectionError, http.client.IncompleteRead) as err:
            have = part.stat().st_size if part.exists() else 0
            if attempt == config.retries:
                raise DownloadError(
                    f"{entry.name}: connection to {url} cut {attempt + 1} times "
                    f"({type(err).__name__}); {have} bytes kept in {part}, run the fetch "
                    "again to resume"
                ) from err
            logger.warning("%s: transfer cut at %d bytes; resuming", entry.name, have)


def _attempt(
    entry: WeightEntry, url: str, part: Path, config: FetchConfig, deadline_at: float
) -> None:
    """One request: resume from ``part``'s size when the server honours ``Range``."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "tir-weights/1", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    with _open(url, headers, config, deadline_at) as response:
        if start and response.status != 206:
            start = 0  # the server ignored Range: start over
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with part.open("ab" if start else "wb") as f, _progress(entry, total, start, config) as bar:
            while chunk := _read(response, url, deadline_at, config):
                f.write(chunk)
                bar.update(len(chunk))
            if total is not None and f.tell() < total:
                raise _Cut(f"{f.tell()} of {total} bytes")


@contextlib.contextmanager
def _open(
    url: str, headers: dict[str, str], config: FetchConfig, deadline_at: float
) -> Iterator[Any]:
    """``urlopen`` with a bounded timeout, turning failures into named errors."""
    timeout = max(0.01, min(config.timeout, deadline_at - time.monotonic()))
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError | socket.timeout):
            raise DownloadTimeoutError(f"{url}: no answer within {timeout:.1f} s") from err
        raise DownloadError(f"{url}: cannot connect: {err.reason}") from err
    except TimeoutError as err:
        raise DownloadTimeoutError(f"{url}: no answer within {timeout:.1f} s") from err
    with response:
        yield response


def _read(response: Any, url: str, deadline_at: float, config: FetchConfig) -> bytes:
    """The next chunk of the body ('' at the end); hung reads and the deadline raise."""
    if time.monotonic() > deadline_at:
        raise DownloadTimeoutError(
            f"{url}: not complete within the {config.deadline:.0f} s deadline"
        )
    try:
        # read1: return what has arrived, so a trickling server still meets the deadline check
        return bytes(response.read1(_CHUNK))
    except TimeoutError as err:
        raise DownloadTimeoutError(f"{url}: server stopped sending for {config.timeout} s") from err


@contextlib.contextmanager
def _progress(entry: WeightEntry, total: int | None, start: int, config: FetchConfig) -> Any:
    from tqdm.auto import tqdm

    with tqdm(
        total=total,
        initial=start,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=entry.file,
        disable=not config.progress,
        leave=False,
    ) as bar:
        yield bar


def fetch(
    names: Sequence[str],
    *,
    manifest: Manifest | None = None,
    root: str | Path | None = None,
    config: FetchConfig | None = None,
) -> list[FetchResult]:
    """Fetch the manifest entries called ``names`` in order (see :func:`fetch_entry`)."""
    manifest = manifest or load_manifest()
    return [fetch_entry(e, root, config) for e in manifest.select(names)]


def toolbox_entries(toolbox: str, manifest: Manifest | None = None) -> list[WeightEntry]:
    """The manifest's checkpoints filling the slots of a toolbox preset (``"agenticir"``).

    Raises:
        UnknownNameError: a preset with no slots (only ``"agenticir"`` has them).
    """
    from tir_env.errors import UnknownNameError
    from tir_env.tools.presets import AGENTICIR_TOOLBOX

    if toolbox != "agenticir":
        raise UnknownNameError(f"toolbox {toolbox!r} has no slots to fetch; use 'agenticir'")
    slots = {n for names in AGENTICIR_TOOLBOX.values() for n in names}
    return [e for e in (manifest or load_manifest()).tools() if e.name in slots]


# ------------------------------------------------------------------------------ verify


def verify_entry(entry: WeightEntry, root: str | Path | None = None) -> VerifyResult:
    """Re-hash one file in place against the manifest or its pin (pins it if neither)."""
    base = weights_root(root)
    path = entry.path(base)
    if not path.is_file():
        return VerifyResult(entry, path, "missing", f"not at {path}")
    try:
        digest, pin = _check(entry, base, path)
    except ChecksumError as err:
        return VerifyResult(entry, path, "mismatch", str(err))
    if pin:
        _write_pin(base, entry, digest)
        return VerifyResult(entry, path, "pinned", f"pinned {digest}")
    return VerifyResult(entry, path, "ok", digest)


def verify(
    names: Sequence[str] | None = None,
    *,
    manifest: Manifest | None = None,
    root: str | Path | None = None,
) -> list[VerifyResult]:
    """Verify the entries called ``names`` (default: every file present in the folder)."""
    manifest = manifest or load_manifest()
    if names:
        return [verify_entry(e, root) for e in manifest.select(names)]
    base = weights_root(root)
    return [verify_entry(e, base) for e in manifest.entries if e.path(base).is_file()]


__all__ = [
    "OFFLINE_ENV",
    "PINS_FILE",
    "FetchConfig",
    "FetchResult",
    "VerifyResult",
    "entry_url",
    "expected_hash",
    "fetch",
    "fetch_entry",
    "is_offline",
    "read_pins",
    "sha256_file",
    "toolbox_entries",
    "verify",
    "verify_entry",
    "weights_root",
]
