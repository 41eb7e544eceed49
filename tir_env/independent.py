"""The independent evaluation set: the reserved package's photographs, kept apart from the corpus.

The corpus (:mod:`tir_env.corpus`) never takes a photo of
:data:`~tir_env.corpus.RESERVED_PACKAGES`; ``tir data photos --independent`` builds their
reviewed photographs (:data:`INDEPENDENT`) into a folder of their own, read only by the
``independent`` image source (:func:`independent_source`), to evaluate on. What trains or tunes
refuses that source (:func:`refuse_reserved`): ``tir train``, ``tir train-tools``, ``tir
experts``, ``benchmarks.train_perception`` and ``benchmarks.ab_test``. docs/independent.md holds
the evaluation on it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tir_env.corpus import LOAD_SIDE, PhotoEntry, read_manifest
from tir_env.data import FOLD, SPAN, ImageSource
from tir_env.errors import DataError, ReservedPhotosError


def _mate(name: str) -> PhotoEntry:
    """A photograph among MATE's nature backgrounds (the independent evaluation set)."""
    return PhotoEntry(
        f"mate/{name}",
        "deb:mate-backgrounds",
        f"usr/share/backgrounds/mate/nature/{name}.jpg",
        "test",
    )


#: The independent evaluation set: the photographs of the reserved package
#: (:data:`~tir_env.corpus.RESERVED_PACKAGES`), reviewed by the rule of the corpus' list
#: (all 12 of MATE's nature backgrounds; left out: its abstract and desktop folders, renders,
#: paintings and a logo). Built apart from the corpus (``tir data photos --independent``) and
#: read only by the ``independent`` image source, for evaluation: no command trains or tunes
#: on it (:func:`refuse_reserved`).
INDEPENDENT: tuple[PhotoEntry, ...] = tuple(
    _mate(name)
    for name in (
        "Aqua",
        "Blinds",
        "Dune",
        "FreshFlower",
        "Garden",
        "GreenMeadow",
        "LadyBird",
        "RainDrops",
        "Storm",
        "TwoWings",
        "Wood",
        "YellowFlower",
    )
)
#: Default folder of the independent set (``$TIR_INDEPENDENT`` overrides it).
INDEPENDENT_ROOT = "~/.cache/tir/independent"
#: The image-source spec of the independent set.
INDEPENDENT_SPEC = "independent"


def independent_root() -> Path:
    """The independent set's folder: ``$TIR_INDEPENDENT`` if set, else :data:`INDEPENDENT_ROOT`."""
    return Path(os.environ.get("TIR_INDEPENDENT") or INDEPENDENT_ROOT).expanduser()


def independent_source(root: str | Path | None = None) -> ImageSource:
    """The independent evaluation set (:data:`INDEPENDENT`) as an image source.

    Its photos load as the corpus' do (long side :data:`LOAD_SIDE`), so its numbers compare
    with ``corpus:test``'s.

    Raises:
        DataError: no independent set at ``root`` (build it with ``tir data photos
            --independent``), or its manifest is unreadable or empty.
    """
    folder = Path(root).expanduser() if root is not None else independent_root()
    if not (folder / "manifest.json").is_file():
        raise DataError(
            f"no independent evaluation set at {folder} (missing manifest.json); build it with "
            f"`tir data photos --independent --out {folder}` or set $TIR_INDEPENDENT"
        )
    photos = read_manifest(folder)["photos"]
    if not photos:
        raise DataError(f"the independent set at {folder} holds no photo; rebuild it")
    paths = {p["id"]: folder / p["file"] for p in photos}
    return ImageSource(
        name=INDEPENDENT_SPEC,
        ids=tuple(sorted(paths)),
        root=folder,
        paths=paths,
        max_side=LOAD_SIDE,
    )


def names_reserved(word: str) -> bool:
    """Whether a command-line word selects the independent evaluation set.

    ``independent`` (a fold or a span of it, ``--images=independent``) or a path inside its
    folder. A word whose ``~`` names no user's home is a plain relative path.
    """
    value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
    while (part := FOLD.match(value) or SPAN.match(value)) is not None:
        value = part["base"]  # independent[0/2][1:] is still the set
    if value == INDEPENDENT_SPEC:
        return True
    if not value or value.startswith("-") or ":" in value:
        return False
    root = independent_root().resolve()
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # "~name" for no such user: Path leaves it unexpanded
        path = Path(value)
    try:
        path = path.resolve()
    except (UnicodeError, ValueError, OSError):  # no path this system can open names no folder
        return False
    return path == root or root in path.parents


def refuse_reserved(words: Sequence[str], what: str = "training") -> None:
    """Refuse a command that would train or tune on the independent evaluation set.

    Raises:
        ReservedPhotosError: a word names it (:func:`names_reserved`).
    """
    for word in words:
        if names_reserved(word):
            raise ReservedPhotosError(
                f"{word!r} names the independent evaluation set, reserved for evaluation: "
                f"{what} never reads it (docs/independent.md); give corpus:train or your own "
                "folder instead"
            )
