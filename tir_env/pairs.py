"""Given degraded/clean pairs: evaluate on published inputs instead of re-synthesising them.

Two folder layouts are recognised (file names matched by stem, any image suffix):

AgenticIR's (what ``dataset/synthesize.py`` writes, and MiO100's released inputs)::

    DIR/HQ/<name>.png                                  clean photos
    DIR/LQ/d2/rain+haze/<name>.png                     degraded, one folder per combination
    DIR/LQ/d3/haze+motion blur+low resolution/<name>.png

The combination folder's name gives the degradations (AgenticIR's names, e.g.
``jpeg compression artifact``, are mapped to TIR's, e.g. ``jpeg``), in their listed order.

Flat (any other source)::

    DIR/clean/<name>.png     (or gt/, GT/, HQ/, hr/)
    DIR/degraded/<name>.png  (or input/, lq/, LQ/, lr/)

The degradations of a flat pair are unknown (recorded as ``[]``). A degraded image must have
its clean image's size, or a quarter of it on each side (low resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tir_env.errors import DataError
from tir_env.images import IMAGE_SUFFIXES

#: AgenticIR's degradation names (``degradations.txt``) -> TIR's registry names.
AGENTICIR_NAMES: dict[str, str] = {
    "low resolution": "low_resolution",
    "noise": "noise",
    "jpeg compression artifact": "jpeg",
    "dark": "dark",
    "haze": "haze",
    "motion blur": "motion_blur",
    "defocus blur": "defocus_blur",
    "rain": "rain",
}
CLEAN_DIRS = ("HQ", "clean", "gt", "GT", "hr", "HR")
DEGRADED_DIRS = ("LQ", "degraded", "input", "lq", "lr", "LR")


@dataclass(frozen=True)
class Pair:
    """One degraded image and its clean reference.

    Attributes:
        name: The clean image's stem.
        degradations: TIR names of the degradations, in listed order (``()`` if unknown).
        degraded: Path of the degraded image.
        clean: Path of the clean image.
    """

    name: str
    degradations: tuple[str, ...]
    degraded: Path
    clean: Path


def find_pairs(root: str | Path) -> list[Pair]:
    """Every degraded/clean pair under ``root``, sorted by (combination, name).

    Raises:
        DataError: ``root`` is missing, has no recognised clean and degraded folders, a
            degraded image has no clean image of the same stem, two clean images share a
            stem, or a combination folder names an unknown degradation.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--pairs folder {root} does not exist")
    clean_dir = _first_dir(root, CLEAN_DIRS, "clean")
    degraded_dir = _first_dir(root, DEGRADED_DIRS, "degraded")
    clean = _by_stem(sorted(_images(clean_dir)), clean_dir)
    pairs = []
    for path in sorted(_images(degraded_dir, recursive=True)):
        if path.stem not in clean:
            raise DataError(
                f"degraded image {path} has no clean image {clean_dir}/{path.stem}.*: "
                "every degraded file needs a clean file of the same name"
            )
        folder = path.parent
        combo = () if folder == degraded_dir else combination(folder.name)
        pairs.append(Pair(path.stem, combo, path, clean[path.stem]))
    if not pairs:
        raise DataError(f"no degraded images ({', '.join(IMAGE_SUFFIXES)}) under {degraded_dir}")
    return sorted(pairs, key=lambda p: (p.degradations, p.name))


def combination(folder_name: str) -> tuple[str, ...]:
    """TIR names of an AgenticIR combination folder name (``"rain+haze"``), in order.

    Raises:
        DataError: a part that is neither an AgenticIR nor a TIR degradation name.
    """
    parts = [p.strip() for p in folder_name.split("+") if p.strip()]
    known = {**AGENTICIR_NAMES, **{v: v for v in AGENTICIR_NAMES.values()}}
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise DataError(
            f"combination folder {folder_name!r} names unknown degradation(s) {unknown}; "
            f"known: {sorted(AGENTICIR_NAMES)}"
        )
    return tuple(known[p] for p in parts)


def check_sizes(pair: Pair, degraded: tuple[int, int], clean: tuple[int, int]) -> None:
    """Refuse a pair whose degraded image is neither the clean size nor a quarter of it.

    Raises:
        DataError: mismatched sizes (naming both files and sizes).
    """
    quarter = (clean[0] // 4, clean[1] // 4)
    if degraded != clean and degraded != quarter:
        raise DataError(
            f"pair {pair.name!r}: degraded {pair.degraded} is {degraded[1]}x{degraded[0]} but "
            f"clean {pair.clean} is {clean[1]}x{clean[0]}; a degraded image must have the "
            "clean size or a quarter of it (low resolution)"
        )


def _first_dir(root: Path, names: tuple[str, ...], role: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DataError(
        f"{root} has no {role} folder; expected one of {', '.join(names)} "
        "(see tir_env/pairs.py for the layouts)"
    )


def _images(folder: Path, recursive: bool = False) -> list[Path]:
    paths = folder.rglob("*") if recursive else folder.iterdir()
    return [p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def _by_stem(paths: list[Path], folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in paths:
        if path.stem in found:
            raise DataError(f"two clean images named {path.stem!r} in {folder}")
        found[path.stem] = path
    return found
