"""The manifest of published weights TIR can fetch: what each file is, where it comes from.

``tir_env/assets/weights.toml`` lists, per file, the tool or metric it serves, its task and
architecture, the upstream URL, size, SHA-256 (and where that hash was published), licence
and paper. :mod:`tir_env.downloads` fetches and verifies the files; this module only parses
and checks the manifest, so it is cheap to import (no torch, no network).

Where files go, under the weights folder (``$TIR_WEIGHTS_DIR``, else ``$TORCH_HOME``; see
:func:`tir_env.metrics.weights.resolve_weights_dir`)::

    <weights dir>/tools/<file>            spandrel checkpoints (kind "tool"), registered as the
                                          tool ``name`` when present (tir_env.tools.pretrained)
    <weights dir>/hub/pyiqa/<file>        pyiqa checkpoints (kind "metric"), where the metrics
    <weights dir>/hub/checkpoints/<file>  adapter looks for them (tir_env.metrics.weights)
    <weights dir>/hub/clip/<file>

File names are plain names: an entry whose ``file`` holds a path separator or ``..`` is
refused (:class:`~tir_env.errors.ManifestError`), so a manifest can never write outside
its folder.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from tir_env.errors import ManifestError, UnknownNameError, did_you_mean
from tir_env.types import TASKS

WeightKind = Literal["tool", "metric"]
#: The manifest that ships with TIR.
MANIFEST_PATH = Path(__file__).resolve().parent / "assets" / "weights.toml"
#: Sub-folder of the weights folder holding tool checkpoints.
TOOLS_FOLDER = "tools"
#: Sub-folders metric files may go to (torch hub's layout, as pyiqa and torchvision use it).
METRIC_FOLDERS: tuple[str, ...] = ("hub/pyiqa", "hub/checkpoints", "hub/clip")

_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+%-]*$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_HEX_RE = re.compile(r"^[0-9a-f]*$")
_REQUIRED = ("name", "kind", "task", "architecture", "file", "url", "sha256", "hash_source")
_OPTIONAL = ("folder", "metrics", "bytes", "size", "licence", "noncommercial", "paper", "direct")


@dataclass(frozen=True)
class WeightEntry:
    """One downloadable weight file.

    Attributes:
        name: Tool name (an AgenticIR slot) or metric-file id; unique in the manifest.
        kind: ``"tool"`` (spandrel checkpoint) or ``"metric"`` (pyiqa / torchvision / CLIP file).
        task: The tool's task (:data:`~tir_env.types.TASKS`), ``"metric"`` for metric files.
        architecture: Network and variant, for people.
        file: Exact file name (a plain name, checked by :func:`check_file_name`).
        folder: Sub-folder of the weights folder it goes to.
        url: Upstream URL.
        sha256: Published SHA-256 (64 hex digits), a published prefix (fewer digits, e.g.
            torch hub's 8 in file names), or ``""``: none published, pinned on first download.
        hash_source: Where ``sha256`` was published (or why there is none).
        bytes: Exact size when published, else 0.
        size: Human-readable size (``~``: approximate).
        licence: The weights' licence as stated upstream.
        noncommercial: Whether the licence forbids commercial use (fetch needs consent).
        paper: The paper that introduced the network.
        metrics: Metric files: the TIR metrics that load this file.
        direct: Whether ``url`` is a plain HTTP download (False: e.g. a Google Drive page).
    """

    name: str
    kind: WeightKind
    task: str
    architecture: str
    file: str
    folder: str
    url: str
    sha256: str
    hash_source: str
    bytes: int = 0
    size: str = "?"
    licence: str = "unknown"
    noncommercial: bool = False
    paper: str = ""
    metrics: tuple[str, ...] = ()
    direct: bool = True

    @property
    def relpath(self) -> str:
        """Path relative to the weights folder, e.g. ``tools/fbcnn_color.pth``."""
        return f"{self.folder}/{self.file}"

    def path(self, root: Path) -> Path:
        """Where the file lives under the weights folder ``root``."""
        return root / self.folder / self.file

    @property
    def hash_kind(self) -> Literal["full", "prefix", "none"]:
        """Whether the manifest holds the full hash, a published prefix, or nothing."""
        if len(self.sha256) == 64:
            return "full"
        return "prefix" if self.sha256 else "none"


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: entries in file order.

    Attributes:
        entries: Every weight file.
        source: Where it was read from (for messages).
    """

    entries: tuple[WeightEntry, ...]
    source: str = str(MANIFEST_PATH)

    def names(self) -> list[str]:
        """Entry names in manifest order."""
        return [e.name for e in self.entries]

    def get(self, name: str) -> WeightEntry:
        """The entry called ``name``.

        Raises:
            UnknownNameError: no such entry (with a did-you-mean hint).
        """
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise UnknownNameError(
            f"no weight file {name!r} in {self.source}.{did_you_mean(name, self.names())} "
            "`tir weights list` shows them all."
        )

    def select(self, names: Iterable[str]) -> list[WeightEntry]:
        """The entries called ``names``, in that order (see :meth:`get`)."""
        return [self.get(n) for n in names]

    def tools(self) -> list[WeightEntry]:
        """The tool checkpoints."""
        return [e for e in self.entries if e.kind == "tool"]


def check_file_name(file: str) -> str:
    """Return ``file`` if it is a plain file name, else raise.

    Refused: path separators, ``..`` anywhere, a leading dot, characters outside
    ``[A-Za-z0-9._+%-]`` and the ``.part`` suffix downloads use.

    Raises:
        ManifestError: the name is not safe to join to a folder.
    """
    if not isinstance(file, str) or not _FILE_RE.match(file) or ".." in file:
        raise ManifestError(
            f"unsafe weight file name {file!r}: need a plain name ([A-Za-z0-9._+%-], no '/', "
            "'\\' or '..')"
        )
    if file.endswith(".part"):
        raise ManifestError(f"weight file name {file!r} may not end in .part (download suffix)")
    return file


def parse_entry(raw: Mapping[str, Any], where: str = "entry") -> WeightEntry:
    """Build and check one ``[[weight]]`` table.

    Raises:
        ManifestError: a missing or unknown key, a bad value, or an unsafe file name.
    """
    missing = [k for k in _REQUIRED if k not in raw]
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if missing or unknown:
        raise ManifestError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    name, kind, task = str(raw["name"]), str(raw["kind"]), str(raw["task"])
    if not _NAME_RE.match(name):
        raise ManifestError(f"{where}: name must be lower snake case, got {name!r}")
    if kind not in get_args(WeightKind):
        raise ManifestError(f"{where}: kind must be 'tool' or 'metric', got {kind!r}")
    folder = str(raw.get("folder", TOOLS_FOLDER if kind == "tool" else ""))
    _check_place(where, kind, task, folder)
    sha = str(raw["sha256"]).lower()
    if not _HEX_RE.match(sha) or len(sha) > 64 or 0 < len(sha) < 8:
        raise ManifestError(f"{where}: sha256 must be 64 hex digits, a prefix of 8+ or ''")
    url = str(raw["url"])
    if not url.startswith(("https://", "http://")):
        raise ManifestError(f"{where}: url must be http(s), got {url!r}")
    size = int(raw.get("bytes", 0))
    if size < 0:
        raise ManifestError(f"{where}: bytes must be >= 0")
    return WeightEntry(
        name=name,
        kind=kind,  # type: ignore[arg-type]  # checked against WeightKind above
        task=task,
        architecture=str(raw["architecture"]),
        file=check_file_name(raw["file"]),
        folder=folder,
        url=url,
        sha256=sha,
        hash_source=str(raw["hash_source"]),
        bytes=size,
        size=str(raw.get("size", "?")),
        licence=str(raw.get("licence", "unknown")),
        noncommercial=bool(raw.get("noncommercial", False)),
        paper=str(raw.get("paper", "")),
        metrics=tuple(str(m) for m in raw.get("metrics", ())),
        direct=bool(raw.get("direct", True)),
    )


def _check_place(where: str, kind: str, task: str, folder: str) -> None:
    """Tools go to ``tools/`` with a known task; metric files to a torch hub folder."""
    if kind == "tool" and (task not in TASKS or folder != TOOLS_FOLDER):
        raise ManifestError(
            f"{where}: a tool needs a task in {TASKS} and folder {TOOLS_FOLDER!r}, "
            f"got task {task!r}, folder {folder!r}"
        )
    if kind == "metric" and folder not in METRIC_FOLDERS:
        raise ManifestError(f"{where}: a metric file's folder must be one of {METRIC_FOLDERS}")


def parse_manifest(text: str, source: str = "<string>") -> Manifest:
    """Parse manifest TOML text (``[[weight]]`` tables).

    Raises:
        ManifestError: invalid TOML, a bad entry, or a duplicate name or destination.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(f"{source} is not valid TOML: {err}") from err
    entries = tuple(
        parse_entry(raw, f"{source} [[weight]] {i}") for i, raw in enumerate(data.get("weight", []))
    )
    for attr in ("name", "relpath"):
        values = [getattr(e, attr) for e in entries]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ManifestError(f"{source}: duplicate {attr} {dupes}")
    return Manifest(entries, source)


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read a manifest file (default: the one that ships, cached).

    Raises:
        ManifestError: the file is malformed (see :func:`parse_manifest`).
        FileNotFoundError: no such file.
    """
    if path is None:
        return _shipped()
    file = Path(path).expanduser()
    return parse_manifest(file.read_text(), str(file))


@functools.cache
def _shipped() -> Manifest:
    return parse_manifest(MANIFEST_PATH.read_text(), str(MANIFEST_PATH))


WEIGHTS_DOC_INTRO = """\
# Published weights: `tir weights`

TIR ships no third-party weights and never downloads as a side effect. `tir weights` fetches
the published checkpoints of AgenticIR's toolbox and the IQA files of the learned metrics, from
the manifest `tir_env/assets/weights.toml` (this page is generated from it):

```bash
tir weights list                                   # every AgenticIR slot, size, licence, here?
tir weights fetch swinir_sr_real fbcnn_blind       # by name
tir weights fetch --toolbox agenticir --accept-noncommercial   # every downloadable slot
tir weights fetch clip_rn50 musiq_koniq --accept-noncommercial # CLIP-IQA and MUSIQ
tir weights verify                                 # re-hash every file in the folder
```

Files go under the weights folder (`$TIR_WEIGHTS_DIR`, else `$TORCH_HOME`, else
`~/.cache/torch`): tool checkpoints to `tools/<file>`, where they are registered under their
manifest name on the next registry lookup, so `gym.make("TIR-v0", toolbox="agenticir")` fills
those slots; metric files to `hub/pyiqa/`, `hub/checkpoints/` or `hub/clip/`, where the metrics
adapter looks for them (docs/metrics.md), so `reward="adaptive"` with `clipiqa` or `musiq` in its
metrics finds them. Downloads use the standard library only: a `.part` file resumed with HTTP
`Range` after a cut, a progress bar, a connect/read timeout (`--timeout`) and a per-file
deadline (`--deadline`), size and SHA-256 checked before an atomic rename into place. A mirror
holding the files by name: `--base-url URL`. Offline (`TIR_OFFLINE=1` or `--offline`): a named
error at once, no socket. Each licence is printed before its download; non-commercial ones
need `--accept-noncommercial`.

**Not run here.** This page and the manifest were written on an offline machine: none of these
real downloads was run, and no URL, size or hash below was checked against the real file. The
download code is tested against a loopback HTTP server only (tests/test_weights_fetch.py).

Hashes (column `sha256`): `full` is a SHA-256 taken from a published source named in the
manifest's `hash_source` (OpenModelDB's database; OpenAI's CLIP URL; for `fbcnn_blind` and
`hat_sr`, another project's record of the file, not the authors'); `prefix` is the 8-digit
prefix torch hub puts in the file name, checked, with the full hash pinned on the first
download; `none`: nothing published, the first download (or `tir weights verify` for a file
put in place by hand) pins the hash in `<weights dir>/pins.json` and says so. Entries marked
`manual` are on Google Drive, which is not a plain download: get the file there, put it at
`<weights dir>/tools/<file>` and run `tir weights verify NAME`.

AgenticIR slots with no entry have no checkpoint TIR can run: DiffBIR, X-Restormer, MAXIM,
DRBNet, IFAN, RIDCP and DehazeFormer are architectures spandrel does not build, and
`fbcnn_qf5`/`fbcnn_qf90` need FBCNN's quality-factor input, which the spandrel tool does not
pass (`fbcnn_blind` is the same file run blind). Brightening's slots are classical tools.
"""


def manifest_markdown(manifest: Manifest | None = None) -> str:
    """docs/weights.md: the intro, then one table row per manifest file."""
    manifest = manifest or load_manifest()
    rows = [
        "| name | for | architecture | size | licence | sha256 | source | paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in manifest.entries:
        use = e.task if e.kind == "tool" else "metric " + ", ".join(e.metrics)
        licence = e.licence + (" (**non-commercial**)" if e.noncommercial else "")
        manual = "" if e.direct else " (manual)"
        rows.append(
            f"| `{e.name}` | {use} | {e.architecture} | {e.size} | {licence} | {e.hash_kind} | "
            f"[{e.file}]({e.url}){manual} | {e.paper} |"
        )
    header = (
        "<!-- generated by `python -m benchmarks.gen_docs` from tir_env/assets/weights.toml -->\n"
    )
    return header + WEIGHTS_DOC_INTRO + "\n" + "\n".join(rows) + "\n"


__all__ = [
    "MANIFEST_PATH",
    "METRIC_FOLDERS",
    "TOOLS_FOLDER",
    "Manifest",
    "WeightEntry",
    "WeightKind",
    "check_file_name",
    "load_manifest",
    "manifest_markdown",
    "parse_entry",
    "parse_manifest",
]
