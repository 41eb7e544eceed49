"""Build the photo corpus (``tir data photos --out DIR``) from the reviewed list.

For each :class:`~tir_env.corpus.PhotoEntry` of :data:`tir_env.corpus.PHOTOS`:

- ``deb:<package>``: ``apt-get download <package>`` (or a ``.deb`` already in ``--debs
  FOLDER``), unpacked with ``dpkg-deb -x`` into a scratch folder; nothing is installed.
- ``py:<module>``: the folder(s) of the installed module (``importlib.util.find_spec``).

The largest matching image (by pixel count) is copied byte for byte (no re-encode) to
``DIR/photos/<id with / as __>.<ext>``, its sha256 checked after the copy, and described in
``DIR/manifest.json`` with its package, version, original path, size, licence and author.
Everything is built in a scratch folder next to ``DIR`` that replaces ``DIR`` only once it is
complete, so a failed build leaves no manifest, or the previous corpus, untouched.

An entry with a ``member`` names a container instead (Enlightenment's ``.edj`` backgrounds,
EET archives): its largest JPEG among the matching entries is copied byte for byte
(:func:`eet_directory` reads the archive's directory; nothing is decoded or re-encoded).

Licence and author come from the package: for Debian packages the DEP-5
``usr/share/doc/<package>/copyright`` (the stanza naming the file, else ``Files: *``) or a
plasma wallpaper's ``metadata.json``, or :data:`DEB_CREDITS` where the package says more
than its copyright file; for Python packages :data:`PY_CREDITS` (what each package's docs say
of its sample photos), else the distribution's licence metadata.

Usage: ``tir data photos --out DIR`` (see ``tir data photos --help``);
``python -m benchmarks.photos --doc DIR > docs/data.md`` regenerates the corpus page.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from tir_env.corpus import MANIFEST_VERSION, PHOTOS, RESERVED_PACKAGES, PhotoEntry, sha256_file
from tir_env.errors import DataError

log = logging.getLogger(__name__)

#: ``download(package, folder) -> .deb path``: fetches one Debian package into ``folder``.
Downloader = Callable[[str, Path], Path]

#: Corpus id -> (licence, author) of the Python packages' sample photos, from each package's
#: own description of the file (skimage.data docstrings, sklearn's datasets/images/README.txt).
PY_CREDITS: dict[str, tuple[str, str]] = {
    "skimage/astronaut": ("public domain (NASA)", "NASA"),
    "skimage/motorcycle_left": (
        "none stated (Middlebury 2014 stereo dataset, in scikit-image: BSD-3-Clause)",
        "N. Nesic, P. Westling, X. Wang, Y. Kitajima, G. Krathwohl, D. Scharstein",
    ),
    "skimage/motorcycle_right": (
        "none stated (Middlebury 2014 stereo dataset, in scikit-image: BSD-3-Clause)",
        "N. Nesic, P. Westling, X. Wang, Y. Kitajima, G. Krathwohl, D. Scharstein",
    ),
    "skimage/rocket": ("public domain (SpaceX)", "SpaceX"),
    "skimage/chelsea": ("CC0-1.0", "Stefan van der Walt"),
    "skimage/coffee": ("CC0-1.0", "Rachel Michetti"),
    "sklearn/china": ("CC-BY-2.0", "danielbuechele (Flickr)"),
    # sklearn's README credits danielbuechele but links the photo to vultilion's page
    "sklearn/flower": ("CC-BY-2.0", "vultilion (Flickr)"),
    "matplotlib/grace_hopper": ("public domain (U.S. Navy photograph)", "U.S. Navy"),
    "pyiqa/SPAQ_10241": (
        "none stated (SPAQ dataset image; pyiqa itself: PolyForm-Noncommercial-1.0.0)",
        "unknown",
    ),
    "pyiqa/frame_4wrw": (
        "none stated (video frame; pyiqa itself: PolyForm-Noncommercial-1.0.0)",
        "unknown",
    ),
    "pyiqa/frame_7gzd": (
        "none stated (video frame; pyiqa itself: PolyForm-Noncommercial-1.0.0)",
        "unknown",
    ),
    "pyiqa/frame_9ogw": (
        "none stated (video frame; pyiqa itself: PolyForm-Noncommercial-1.0.0)",
        "unknown",
    ),
}


#: Corpus id prefix -> (licence, author) where a Debian package's own files say more than its
#: DEP-5 copyright file: LXQt's ``wallpapers/License`` (CC-BY-SA-3.0, crediting stefonarch
#: for most photos; Debian's file puts the folder under ``Files: *``, LGPL-2.1+), and
#: Enlightenment's backgrounds, which the copyright file covers only by ``Files: *``
#: (BSD-2-clause) with a list of translators, naming no photographer. Release 4: Debian's
#: copyright files name source-tree folders (Scratch's ``Media/*``, libjxl's
#: ``external/wesaturate/*``) that do not match the installed paths.
_WESATURATE = "CC0 (Debian copyright, Files: external/wesaturate/*; wesaturate.com)"
DEB_CREDITS: dict[str, tuple[str, str]] = {
    "scratch/": (
        "CC-BY-SA-3.0 (Debian copyright, Files: Media/*)",
        "Massachusetts Institute of Technology (Scratch 1.4 media)",
    ),
    "libjxl/keong_macan": (_WESATURATE, "keong macan (wesaturate.com)"),
    "libjxl/riaphotographs": (_WESATURATE, "riaphotographs (wesaturate.com)"),
    "libjxl/bliznaca": (_WESATURATE, "bliznaca (wesaturate.com)"),
    "lxqt/Valendas": ("CC-BY-SA-3.0 (wallpapers/License)", "LXQt Project Team"),
    "lxqt/cloud": ("CC-BY-SA-3.0 (wallpapers/License)", "LXQt Project Team"),
    "lxqt/": ("CC-BY-SA-3.0 (wallpapers/License)", "stefonarch (LXQt Project Team)"),
    "enlightenment/": (
        "BSD-2-clause (Debian copyright, Files: *)",
        "Enlightenment project (Carsten Haitzler and contributors; no photographer named)",
    ),
}

#: Magic number of an EET archive (format 2), Enlightenment's ``.edj`` container.
EET_MAGIC = 0x1EE70F42


class PackageDownloadError(DataError):
    """A Debian package could not be fetched or unpacked."""


class ReservedPackageError(DataError):
    """An entry names a package reserved for independent evaluation."""


class MissingPhotoError(DataError):
    """A listed photo is not in its package."""


class ChecksumError(DataError):
    """A copied photo does not hash to its source's sha256."""


class ContainerError(DataError):
    """A container file (an ``.edj``) is not a readable EET archive."""


class EmptyCorpusError(DataError):
    """No entry is left to build."""


@dataclass(frozen=True)
class _Package:
    """Where one source's files are: the folders to glob in, and the package's identity."""

    name: str
    version: str
    roots: tuple[Path, ...]
    doc_root: Path | None  # the unpacked .deb (for its copyright file); None for py: sources


def apt_download(package: str, folder: Path) -> Path:
    """``apt-get download <package>`` into ``folder``; returns the ``.deb`` it wrote.

    Raises:
        PackageDownloadError: apt-get is missing, fails (no network) or writes no ``.deb``.
    """
    hint = (
        f"check the network (and `apt-get update`), or pass --debs FOLDER holding a "
        f"pre-downloaded {package}_*.deb, or build the Python photos alone with --only-python"
    )
    try:
        proc = subprocess.run(
            ["apt-get", "download", package],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    except FileNotFoundError as exc:
        raise PackageDownloadError(f"apt-get not found (not Debian/Ubuntu?): {hint}") from exc
    except subprocess.TimeoutExpired as exc:
        raise PackageDownloadError(f"apt-get download {package} timed out: {hint}") from exc
    found = find_deb(folder, package)
    if proc.returncode != 0 or found is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise PackageDownloadError(
            f"apt-get download {package} failed ({' / '.join(tail) or 'no .deb written'}): {hint}"
        )
    return found


def find_deb(folder: Path, package: str) -> Path | None:
    """The ``<package>_<version>_<arch>.deb`` in ``folder`` (the last by name if several)."""
    found = sorted(folder.glob(f"{package}_*.deb"))
    if len(found) > 1:
        log.warning("several .deb files for %s in %s; using %s", package, folder, found[-1].name)
    return found[-1] if found else None


def _dpkg_deb(*args: str) -> str:
    try:
        proc = subprocess.run(
            ["dpkg-deb", *args], capture_output=True, text=True, timeout=600, check=False
        )
    except FileNotFoundError as exc:
        raise PackageDownloadError(
            "dpkg-deb not found: install dpkg, or build the Python photos alone with --only-python"
        ) from exc
    if proc.returncode != 0:
        raise PackageDownloadError(
            f"dpkg-deb {' '.join(args)} failed: {proc.stderr.strip()}; delete the .deb and "
            "run again to download it anew"
        )
    return proc.stdout


def _fetch_deb(package: str, work: Path, debs: Path | None, download: Downloader) -> _Package:
    """Find or download ``package``'s .deb and unpack it under ``work``."""
    folder = debs if debs is not None else work / "debs"
    folder.mkdir(parents=True, exist_ok=True)
    deb = find_deb(folder, package) or download(package, folder)
    fields = dict(
        line.split(":", 1)
        for line in _dpkg_deb("--field", str(deb), "Package", "Version").splitlines()
        if ":" in line
    )
    if fields.get("Package", "").strip() != package:
        raise PackageDownloadError(
            f"{deb} holds package {fields.get('Package')!r}, not {package!r}"
        )
    root = work / "unpacked" / package
    root.mkdir(parents=True, exist_ok=True)
    _dpkg_deb("-x", str(deb), str(root))
    return _Package(package, fields.get("Version", "unknown").strip(), (root,), root)


def _python_package(module: str) -> _Package:
    """The installed folders of ``module`` (all of them, for a namespace package)."""
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPhotoError(
            f"Python package {module!r} is not installed; install it (pip install the "
            "project's extras) or leave its photos out"
        )
    roots = tuple(Path(p) for p in spec.submodule_search_locations)
    return _Package(module, "", roots, None)


@functools.cache
def _packages_distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def _distribution_of(module: str, path: Path) -> metadata.Distribution | None:
    """The installed distribution whose RECORD lists ``path`` (a top-level module may be shared)."""
    for dist_name in _packages_distributions().get(module, []):
        dist = metadata.distribution(dist_name)
        for file in dist.files or []:
            if Path(str(file.locate())).resolve() == path.resolve():
                return dist
    return None


def _image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the image header (no full decode); ``None`` if not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return None


def _largest(entry: PhotoEntry, roots: Iterable[Path]) -> tuple[Path, Path, tuple[int, int]]:
    """The largest image (pixels, then bytes) matching ``entry.path``: (root, file, size).

    Symlinks count as the file they point to (plasma links its small sizes to the largest), and
    only when it lies inside the same root (an unpacked .deb's absolute links point at the host).
    """
    best: tuple[int, int, str, Path, Path, tuple[int, int]] | None = None
    for root in (r.resolve() for r in roots):
        for path in sorted(root.glob(entry.path)):
            real = path.resolve()
            inside = root in real.parents
            size = _image_size(real) if inside and real.is_file() else None
            if size is None:
                continue
            key = (size[0] * size[1], real.stat().st_size, real.name, root, real, size)
            if best is None or key[:3] > best[:3]:
                best = key
    if best is None:
        where = ", ".join(str(r) for r in roots)
        raise MissingPhotoError(
            f"photo {entry.id!r}: no image matches {entry.path!r} in {entry.source} ({where}); "
            "the package changed: fix the entry in tir_env/corpus.py after reviewing the image"
        )
    return best[3], best[4], best[5]


def eet_directory(data: bytes, where: str = "archive") -> list[tuple[str, int, int, int]]:
    """The entries of an EET archive (format 2): ``(name, offset, size, flags)`` each.

    The layout (Enlightenment's ``eet_lib.c``): a big-endian header ``magic, entries,
    dictionary entries``, then per entry six big-endian ints ``offset, size, data size, name
    offset, name size, flags`` (bit 0: compressed, bit 1: ciphered, bit 2: alias).

    Raises:
        ContainerError: not an EET archive, or an entry outside the file (named by ``where``).
    """
    if len(data) < 12 or struct.unpack(">I", data[:4])[0] != EET_MAGIC:
        raise ContainerError(
            f"{where} is not an EET archive (.edj); the package changed: review the entry in "
            "tir_env/corpus.py"
        )
    count = struct.unpack(">I", data[4:8])[0]
    if 12 + 24 * count > len(data):
        raise ContainerError(f"{where}: EET directory of {count} entries runs past the file")
    entries = []
    for i in range(count):
        offset, size, _, name_at, name_len, flags = struct.unpack(
            ">6I", data[12 + 24 * i : 36 + 24 * i]
        )
        if offset + size > len(data) or name_at + name_len > len(data):
            raise ContainerError(f"{where}: EET entry {i} lies outside the file")
        name = data[name_at : name_at + name_len].split(b"\0")[0].decode("utf-8", "replace")
        entries.append((name, offset, size, flags))
    return entries


def largest_jpeg_member(
    data: bytes, pattern: str, where: str = "archive"
) -> tuple[str, bytes, tuple[int, int]]:
    """The largest JPEG (pixels, then bytes) stored whole among entries matching ``pattern``.

    Only plain entries count (not compressed, ciphered or aliased) that start with a JPEG's
    SOI marker; the size is read from the JPEG header.

    Raises:
        ContainerError: see :func:`eet_directory`; no such JPEG in the archive.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    best: tuple[int, int, str, bytes, tuple[int, int]] | None = None
    for name, offset, size, flags in eet_directory(data, where):
        blob = data[offset : offset + size]
        if flags & 0b111 or not fnmatch.fnmatch(name, pattern) or blob[:2] != b"\xff\xd8":
            continue
        try:
            with Image.open(io.BytesIO(blob)) as image:
                dims = image.size
        except (UnidentifiedImageError, OSError):
            continue
        key = (dims[0] * dims[1], size, name, blob, dims)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        raise ContainerError(
            f"{where}: no JPEG entry matches {pattern!r}; the package changed: review the entry "
            "in tir_env/corpus.py"
        )
    return best[2], best[3], best[4]


def _strip_years(text: str) -> str:
    """``"Aitzol Berasategi, 2018"`` / ``"2021, Lukas Baubkus"`` -> the name alone."""
    text = re.sub(r"^\s*\d{4}(-\d{4})?[.,]?\s*", "", text)
    text = re.sub(r"[,\s]+\d{4}(-\d{4})?\s*$", "", text).strip()
    quoted = len(text) > 1 and text[0] == text[-1] == '"'
    return text[1:-1] if quoted else text


def parse_dep5(text: str) -> list[dict[str, str]]:
    """The stanzas of a DEP-5 copyright file (continuation lines joined with newlines)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines() + [""]:
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    return stanzas


def dep5_credit(text: str, path: str) -> tuple[str, str] | None:
    """(licence, author) of ``path`` from a DEP-5 copyright file, or ``None``.

    The last stanza naming the file (its ``Files:`` pattern matches the path, or the pattern's
    file name matches the file name: patterns name source-tree paths, not installed ones) wins,
    else the ``Files: *`` stanza.
    """
    specific, fallback = None, None
    name = path.rsplit("/", 1)[-1]
    for stanza in parse_dep5(text):
        if "Files" not in stanza or "License" not in stanza:
            continue
        for pattern in stanza["Files"].split():
            base = pattern.rsplit("/", 1)[-1]
            if pattern == "*":
                fallback = stanza
            elif fnmatch.fnmatch(path, pattern) or (base != "*" and fnmatch.fnmatch(name, base)):
                specific = stanza
    chosen = specific or fallback
    if chosen is None:
        return None
    licence = chosen["License"].splitlines()[0].strip()
    authors = [_strip_years(c) for c in chosen.get("Copyright", "").splitlines() if c.strip()]
    return licence, "; ".join(a for a in authors if a) or "unknown"


def _plasma_credit(root: Path, file: Path) -> tuple[str, str] | None:
    """(licence, author) from the nearest ``metadata.json`` above ``file`` (KDE wallpapers)."""
    for folder in file.parents:
        if folder == root or root not in folder.parents:
            return None
        meta = folder / "metadata.json"
        if meta.is_file():
            plugin = json.loads(meta.read_text(encoding="utf-8")).get("KPlugin", {})
            authors = ", ".join(a.get("Name", "") for a in plugin.get("Authors", []))
            if plugin.get("License"):
                return plugin["License"], authors or "unknown"
    return None


def _deb_credit(package: _Package, root: Path, file: Path, photo_id: str = "") -> tuple[str, str]:
    for prefix in sorted(DEB_CREDITS, key=len, reverse=True):  # the most specific first
        if photo_id.startswith(prefix):
            return DEB_CREDITS[prefix]
    credit = _plasma_credit(root, file)
    if credit is not None:
        return credit
    copyright_file = root / "usr/share/doc" / package.name / "copyright"
    if copyright_file.is_file():
        found = dep5_credit(
            copyright_file.read_text(encoding="utf-8", errors="replace"),
            str(file.relative_to(root)),
        )
        if found is not None:
            return found
    return "unknown (no machine-readable copyright file)", "unknown"


def _py_credit(entry: PhotoEntry, dist: metadata.Distribution | None) -> tuple[str, str]:
    if entry.id in PY_CREDITS:
        return PY_CREDITS[entry.id]
    if dist is None:
        return "unknown", "unknown"
    meta = dist.metadata
    licence = meta["License-Expression"] or (meta["License"] or "").split("\n")[0]
    return f"{licence or 'unknown'} (the package's licence)", "unknown"


def _checked(dest: Path, expected: str, what: str) -> str:
    """``expected`` once ``dest`` (just written, ``what`` says how) is found to hash to it."""
    got = sha256_file(dest)
    if got != expected:
        raise ChecksumError(
            f"{what} has sha256 {got}, expected {expected}; check the disk (space, errors) and "
            "build again"
        )
    return expected


def _copy_photo(src: Path, dest: Path) -> str:
    """Copy the original bytes and return their sha256, checked on the copy."""
    expected = sha256_file(src)
    shutil.copyfile(src, dest)
    return _checked(dest, expected, f"copy of {src} to {dest}")


def _container(entry: PhotoEntry, roots: Iterable[Path]) -> tuple[Path, Path]:
    """The container file ``entry.path`` names: (root, file), the first match in sorted order.

    Raises:
        MissingPhotoError: no file matches.
    """
    for root in (r.resolve() for r in roots):
        for path in sorted(root.glob(entry.path)):
            if path.is_file() and root in path.resolve().parents:
                return root, path.resolve()
    raise MissingPhotoError(
        f"photo {entry.id!r}: no container matches {entry.path!r} in {entry.source}; the "
        "package changed: fix the entry in tir_env/corpus.py after reviewing the image"
    )


def _write_member(data: bytes, dest: Path) -> str:
    """Write a container member's bytes and return their sha256, checked on the copy."""
    dest.write_bytes(data)
    return _checked(dest, hashlib.sha256(data).hexdigest(), f"{dest} after writing")


@dataclass(frozen=True)
class _Copied:
    """Where a photo came from and where it went (:func:`_photo_source`)."""

    root: Path  # the unpacked package or module folder
    file: Path  # the image, or for a ``member`` entry its container
    member: str  # the container entry it was read from ("" for a plain image)
    rel: Path  # its path in the corpus
    sha256: str


def _photo_source(entry: PhotoEntry, package: _Package, out: Path) -> _Copied:
    """Copy one entry's photo into ``out/photos`` (a plain image, or a container's JPEG)."""
    stem = entry.id.replace("/", "__")
    if entry.member is None:
        root, file, _ = _largest(entry, package.roots)
        rel = Path("photos") / f"{stem}{file.suffix.lower()}"
        return _Copied(root, file, "", rel, _copy_photo(file, out / rel))
    root, file = _container(entry, package.roots)
    name, data, _ = largest_jpeg_member(file.read_bytes(), entry.member, str(file))
    rel = Path("photos") / f"{stem}.jpg"
    return _Copied(root, file, name, rel, _write_member(data, out / rel))


def _photo_record(entry: PhotoEntry, package: _Package, out: Path) -> dict:
    """Copy one entry's photo into ``out/photos`` and describe it."""
    copied = _photo_source(entry, package, out)
    root, file, rel, sha = copied.root, copied.file, copied.rel, copied.sha256
    width, height = _image_size(out / rel) or (0, 0)
    if package.doc_root is not None:
        name, version = package.name, package.version
        original = str(file.relative_to(root)) + (f":{copied.member}" if copied.member else "")
        licence, author = _deb_credit(package, root, file, entry.id)
    else:
        dist = _distribution_of(package.name, file)
        name = dist.metadata["Name"] if dist is not None else package.name
        version = dist.version if dist is not None else "unknown"
        original = str(file.relative_to(root.parent))
        licence, author = _py_credit(entry, dist)
    return {
        "id": entry.id,
        "file": rel.as_posix(),
        "split": entry.split,
        "release": entry.release,
        "source": entry.source,
        "package": name,
        "package_version": version,
        "original_path": original,
        "sha256": sha,
        "bytes": (out / rel).stat().st_size,
        "width": width,
        "height": height,
        "licence": licence,
        "author": author,
    }


def select_entries(
    entries: Sequence[PhotoEntry], only_python: bool = False, independent: bool = False
) -> list[PhotoEntry]:
    """The entries to build, checked.

    Args:
        entries: The reviewed photos.
        only_python: Leave out the ``deb:`` entries.
        independent: Build the independent evaluation set: every entry must come from
            :data:`~tir_env.corpus.RESERVED_PACKAGES` (and none may otherwise).

    Raises:
        ReservedPackageError: an entry names a package of
            :data:`~tir_env.corpus.RESERVED_PACKAGES` (with ``independent``: one that does
            not).
        DataError: duplicate ids or an unknown source kind.
        EmptyCorpusError: nothing left to build.
    """
    seen: set[str] = set()
    for entry in entries:
        kind, _, name = entry.source.partition(":")
        if kind not in ("deb", "py") or not name:
            raise DataError(
                f"photo {entry.id!r}: source {entry.source!r} is not deb:<package> or py:<module>"
            )
        if independent and name not in RESERVED_PACKAGES:
            raise ReservedPackageError(
                f"photo {entry.id!r} comes from {name}, not from the packages reserved for "
                f"independent evaluation ({', '.join(RESERVED_PACKAGES)}); remove the entry"
            )
        if not independent and name in RESERVED_PACKAGES:
            raise ReservedPackageError(
                f"photo {entry.id!r} comes from {name}, reserved for independent evaluation: "
                "never train or tune on it; remove the entry"
            )
        if entry.id in seen:
            raise DataError(f"photo id {entry.id!r} is listed twice; ids must be unique")
        seen.add(entry.id)
    chosen = [e for e in entries if not (only_python and e.source.startswith("deb:"))]
    if not chosen:
        raise EmptyCorpusError(
            "no photo to build"
            + (
                " (--only-python left out every Debian entry)"
                if only_python
                else " (the entry list is empty)"
            )
        )
    return chosen


def _check_target(out: Path, force: bool, debs: Path | None, flag: str = "") -> None:
    if debs is not None and (
        debs.resolve() == out.resolve() or out.resolve() in debs.resolve().parents
    ):
        raise DataError(
            f"--debs {debs} is inside --out {out}, which is replaced as a whole; "
            "keep the .deb files elsewhere"
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError(f"{out} is a file, not a folder; choose another --out")
    if (out / "manifest.json").is_file():
        if not force:
            raise DataError(
                f"{out} already holds a photo set; check it with `tir data photos{flag} --verify "
                f"--out {out}`, or rebuild it with --force (replaced only once the new one is "
                "complete)"
            )
    elif any(out.iterdir()):
        raise DataError(f"{out} is not empty and holds no corpus; choose a new or empty folder")


def _write_json(path: Path, data: dict) -> None:
    """Write JSON via a temporary file and a rename, so no reader sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _swap_in(new: Path, out: Path) -> None:
    """Move the finished ``new`` folder to ``out``, replacing what was there."""
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / "corpus")
    try:
        os.replace(new, out)
    except OSError:
        os.replace(old / "corpus", out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def build(
    out: str | Path,
    *,
    entries: Sequence[PhotoEntry] = PHOTOS,
    debs: str | Path | None = None,
    only_python: bool = False,
    force: bool = False,
    download: Downloader = apt_download,
    command: str = "tir data photos",
    progress: bool = True,
    independent: bool = False,
) -> dict:
    """Build the corpus into ``out`` (atomically) and return its manifest.

    Args:
        out: Corpus folder (created; replaced as a whole when ``force``).
        entries: The photos to take (default: the reviewed :data:`~tir_env.corpus.PHOTOS`).
        debs: Folder of pre-downloaded ``.deb`` files, used first and filled by downloads;
            ``None``: download into a scratch folder removed afterwards.
        only_python: Leave out the ``deb:`` entries (no apt-get, no dpkg-deb).
        force: Replace an existing corpus (only once the new one is complete).
        download: Fetches one Debian package (:func:`apt_download`; tests inject a fake).
        command: The command line recorded as ``built_with``.
        progress: Show a progress bar over the entries.
        independent: ``entries`` are the independent evaluation set
            (:data:`~tir_env.independent.INDEPENDENT`), built apart from the corpus.

    Raises:
        DataError: see :func:`select_entries`, :func:`apt_download`; a target that holds a
            corpus (without ``force``) or other files; :class:`MissingPhotoError`,
            :class:`ChecksumError`.
    """
    from tqdm.auto import tqdm

    out = Path(out).expanduser().absolute()
    debs_dir = Path(debs).expanduser().absolute() if debs is not None else None
    chosen = select_entries(entries, only_python, independent)
    _check_target(out, force, debs_dir, " --independent" if independent else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        (tmp / "photos").mkdir()
        packages: dict[str, _Package] = {}
        photos = []
        for entry in tqdm(chosen, desc="photos", unit="photo", disable=not progress):
            if entry.source not in packages:
                kind, _, name = entry.source.partition(":")
                packages[entry.source] = (
                    _fetch_deb(name, tmp / ".work", debs_dir, download)
                    if kind == "deb"
                    else _python_package(name)
                )
            photos.append(_photo_record(entry, packages[entry.source], tmp))
        manifest = {"version": MANIFEST_VERSION, "photos": photos, "built_with": command}
        shutil.rmtree(tmp / ".work", ignore_errors=True)
        _write_json(tmp / "manifest.json", manifest)
        tmp.chmod(0o755)  # mkdtemp makes it private; the corpus is ordinary data
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


DOC_INTRO = """\
# The photo corpus

<!-- Generated by `python -m benchmarks.photos --doc ~/.cache/tir/photos > docs/data.md`;
edit the text in benchmarks/photos.py (DOC_INTRO) and the list in tir_env/corpus.py. -->

Real photographs to train on and to evaluate on, beyond the bundled photos: the photographs
that Debian wallpaper packages and the installed Python packages ship, taken from a reviewed
list (`tir_env/corpus.py`, `PHOTOS`), copied byte for byte (no re-encode) with their sha256,
size, licence and author in `manifest.json`. The build downloads about 760 MB of `.deb` files
(enlightenment-data is 400 MB of them, plasma-workspace-wallpapers, opencv-doc and
libjxl-testdata 94, 96 and 56 MB), keeps 145 MB of photos and takes about 30 s on a fast
mirror (`--debs FOLDER` keeps the `.deb` files for the next build).

```bash
tir data photos                       # builds ~/.cache/tir/photos (or --out DIR, or $TIR_PHOTOS)
tir data photos --verify              # re-hashes every file; exit 1 on a missing/corrupt one
tir data photos --force               # rebuild; the old corpus is replaced only once complete
tir data photos --debs ~/debs         # use (and keep) the .deb files in ~/debs
tir data photos --only-python         # no apt-get/dpkg-deb: the Python packages' photos only
```

```python
import gymnasium as gym
import tir_env
from tir_env import corpus

env = gym.make("TIR-v0", images="corpus:train")  # or corpus:val, corpus:test
src = corpus.source("test")  # an ImageSource, ids sorted
```

How it is built: `apt-get download <package>` (no install; or a `.deb` from `--debs`),
`dpkg-deb -x` into a scratch folder, then per entry the largest matching image by pixel count
(KDE's plasma wallpapers ship one file per screen resolution). Enlightenment's backgrounds
are `.edj` files (EET archives) that hold each photo as JPEGs at several sizes: the largest
one is copied out byte for byte. Python packages' photos come from
the installed module (`importlib.util.find_spec`). The whole corpus is built in a folder next to
the target and renamed into place when complete: a failed build leaves no manifest, or the
previous corpus untouched. Nothing downloads except this command.

**Loading.** `corpus:<split>` sources load each photo with its long side capped at 1536 px
(antialiased; `tir_env.corpus.LOAD_SIDE`): the wallpapers are 2.5-6K pixels and soft at the pixel
level, near DIV2K's 2K they are sharp and a 128 px crop holds scene content. The files on disk
stay the originals.

**The reviewed rule.** What counts as a photograph is decided by a list, not a heuristic: every
image of every candidate package was looked at on a contact sheet; an image was kept when it is
a scene recorded by a camera (landscapes, objects, animals, people, architecture) and dropped
when it is a render, a painting, abstract art, a pattern, a logo or a scientific image
(telescope, microscope, fundus camera). Splits are by photo, never by crop: the bundled test
photos (chelsea, coffee, china, flower) stay in **test**, and the stereo pair
`motorcycle_left`/`right` stays together in one split.

**Releases.** The list grows; each photo records the corpus release that added it. Release 1
(37 photos) is what most shipped weights were trained on (perception's on release 2, its record
says so); release 2 adds 21 training photos from
OpenCV's sample images (`opencv-doc`: its camera photographs that are lossless or JPEG quality
>= 90; `tir_env/corpus.py` says what was left out and why). Val and test stay release 1's, so
held-out numbers remain comparable. `corpus:train` means release 1
(`tir_env.corpus.DEFAULT_RELEASE`, so the documented training commands reproduce the shipped
weights); `corpus:train@2` adds release 2's photos (44 training photos instead of 23).
Release 3 adds 24 photos from two more wallpaper packages, `enlightenment-data` (14 of its 23
backgrounds, JPEG quality 99, five of them dark or misty by nature) and `lxqt-themes` (10 of
its wallpapers, lossless or JPEG quality >= 92): 19 for training (`corpus:train@3`: 63) and 5
for a larger val set (`corpus:val@3`: 10 photos; `corpus:val` stays release 1's 5, so
earlier val numbers stay comparable; `corpus:val@=3` is only the 5 release 3 added, photos
no weights trained before it ever saw, on which new weights are judged). Release 4 adds 38
photos from packages that are not wallpapers, found by listing every image of Debian's
`Contents-all` index: 32 of Scratch 1.4's stage backgrounds (`scratch`: its camera
photographs at JPEG quality >= 90, 480x360 px, many of them everyday street and
building scenes the wallpapers lack), 5 lossless photographs of the JPEG XL test data
(`libjxl-testdata`) and one of Psychtoolbox's demo photographs (`psychtoolbox-3-common`):
30 for training (`corpus:train@4`: 93) and 8 for val (`corpus:val@=4`, photos no shipped
weights saw; `corpus:val@4`: 18). Test stays release 1's. Looked at and left out whole:
`ukui-wallpapers` (12 images, all renders and illustrations), `gnome-backgrounds` 43
(renders and patterns), `palapeli-data` (its five puzzle photos are JPEG quality ~80),
`hugin-data` (small help illustrations and screenshots) and `golang-github-rwcarlsen-goexif-dev`
(EXIF test files, thumbnails).

**Reserved.** `mate-backgrounds` is left out on purpose: it is kept for independent evaluation.
Never train or tune on it; the corpus builder refuses any entry from it. `tir data photos
--independent` builds its 12 nature photographs apart (`~/.cache/tir/independent`, or `--out`,
or `$TIR_INDEPENDENT`), read as `--images independent`; `tir train`, `tir experts` and the A/B
tests refuse that source. docs/independent.md holds the evaluation on it.

**On another OS** (no apt-get or dpkg-deb): `tir data photos --only-python` builds the photos of
the Python packages alone; or copy `.deb` files from a Debian mirror into a folder and pass
`--debs FOLDER` (dpkg-deb is needed to unpack them); or skip the corpus and point `--images`
(or `images=` in `gym.make`) at any folder of photos: DIV2K, Flickr2K, your own. Check such a
folder first with `tir data check FOLDER`: it loads every image as an episode would and lists
each one the env cannot use (unreadable, truncated, too small) with why, exit 1 if any. The env
draws one image per episode and stops on an unusable one with a named error, so a long training
run on a folder with one broken file would die at its draw; `tir bench` skips such an image.

**Parts of a source.** Any `--images` spec takes a suffix that keeps part of its photos, by
photo, never by crop: `[k/n]` is fold `k` of `n` (every `n`-th photo from the `k`-th),
`[~k/n]` every other fold (cross-validation: train on `corpus:train@4[~0/2]`, evaluate on
`corpus:train@4[0/2]`), and `[a:b]` its photos `a` to `b - 1` in order (`corpus:val@4[6:]`
is every val photo a `--limit 6` run has not read). Quote them in a shell: `[...]` is a glob.
"""


def render_doc(manifest: dict) -> str:
    """``docs/data.md``: the fixed text plus tables generated from a corpus manifest."""
    photos = manifest["photos"]
    lines = [DOC_INTRO, "## The photos", ""]
    counts = {s: sum(p["split"] == s for p in photos) for s in ("train", "val", "test")}
    total = sum(p["bytes"] for p in photos)
    lines.append(
        f"{len(photos)} photos ({', '.join(f'{n} {s}' for s, n in counts.items())}), "
        f"{_human(total)}, built with `{manifest.get('built_with', '?')}`."
    )
    lines += [
        "",
        "| id | split | release | package | size (px) | bytes | licence | author |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in photos:
        lines.append(
            f"| {p['id']} | {p['split']} | {p.get('release', 1)} | "
            f"{p['package']} {p['package_version']} | "
            f"{p['width']}x{p['height']} | {_human(p['bytes'])} | {p['licence']} | "
            f"{p['author']} |"
        )
    licences: dict[str, int] = {}
    for p in photos:
        licences[p["licence"]] = licences.get(p["licence"], 0) + 1
    lines += ["", "## Licences", "", "| licence | photos |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(licences.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines += ["", DOC_LICENCE_NOTES]
    return "\n".join(lines)


DOC_LICENCE_NOTES = """\
Licences are recorded as each package states them: the DEP-5 copyright file's stanza naming the
file, a KDE wallpaper's own `metadata.json` (its `License`; the Debian copyright file of
plasma-workspace-wallpapers says GPL-2+ for the whole package), and for the Python packages'
sample photos what the package's own documentation says (scikit-image's `skimage.data`
docstrings, scikit-learn's `datasets/images/README.txt`; matplotlib states nothing of
`grace_hopper.jpg`, the official U.S. Navy portrait, a public-domain work of the U.S.
government). OpenCV's sample images are covered by the `Files: *` stanza of Debian's
copyright file for opencv (Apache-2.0 AND BSD-3-Clause, the OpenCV authors); their photographers
are not named there. pyiqa's four speed-test photos come
with no licence statement of their own (pyiqa itself is PolyForm-Noncommercial-1.0.0): use them
for research only. Attribution-licensed photos (CC-BY, CC-BY-SA) must be credited when
redistributed; the corpus is built locally and not redistributed by this repository.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.photos --doc DIR``: print ``docs/data.md`` for a built corpus."""
    from tir_env.corpus import read_manifest

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--doc", required=True, metavar="DIR", help="corpus folder")
    args = parser.parse_args(argv)
    sys.stdout.write(render_doc(read_manifest(args.doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
