"""Clean-image sources: bundled real photographs or a folder, and seeded patch sampling.

The bundled photographs are those that ship inside scikit-image and scikit-learn.

The bundled photos are split once, by image id, so agents are never evaluated on photos
they trained on:

========  ==========================================================================
split     image ids
========  ==========================================================================
train     astronaut, motorcycle_left, motorcycle_right, hubble_deep_field, ihc, retina
val       rocket
test      chelsea, coffee, china, flower
========  ==========================================================================

``motorcycle_left``/``right`` are a stereo pair and stay in the same split.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from tir_env.degradations.depth import fit_depth
from tir_env.errors import (
    DataError,
    ImageError,
    UnknownNameError,
    did_you_mean,
)
from tir_env.images import IMAGE_SUFFIXES, check_u8, load_image, resize_u8
from tir_env.types import ImageU8

Split = Literal["train", "val", "test", "all"]

#: image id -> (package, file inside the package's data folder)
BUNDLED_FILES: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "ihc": ("skimage", "data/ihc.png"),
    "retina": ("skimage", "data/retina.jpg"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}

SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut",
        "motorcycle_left",
        "motorcycle_right",
        "hubble_deep_field",
        "ihc",
        "retina",
    ),
    "val": ("rocket",),
    "test": ("chelsea", "coffee", "china", "flower"),
}
SPLITS["all"] = SPLITS["train"] + SPLITS["val"] + SPLITS["test"]


@dataclass(frozen=True)
class ImageSource:
    """A named, ordered collection of clean images.

    Attributes:
        name: Human-readable source name (``"bundled:test"`` or a folder path).
        ids: Image ids, sorted, stable across runs.
        root: Folder for folder sources; ``None`` for the bundled photos.
        paths: Image id -> file, for sources whose ids are not file names (the photo corpus,
            :func:`tir_env.corpus.source`); ``None`` loads ``root / id`` or a bundled photo.
        max_side: Longer photos load downscaled to this long side (antialiased bicubic);
            ``None`` keeps every photo as it is.
    """

    name: str
    ids: tuple[str, ...]
    root: Path | None = None
    paths: Mapping[str, Path] | None = field(default=None, compare=False, hash=False)
    max_side: int | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, image_id: str) -> ImageU8:
        """Load one image as uint8 RGB HWC.

        Raises:
            UnknownNameError: the id is not part of this source.
            ImageError: the file cannot be read or is too small (the same subclass as
                :func:`~tir_env.images.load_image` raises; its message names the file and
                what to do: remove it from the folder, or check the corpus).
            DataError: a corpus file listed in ``paths`` is missing.
        """
        if image_id not in self.ids:
            hint = did_you_mean(image_id, self.ids)
            raise UnknownNameError(f"image {image_id!r} is not in source {self.name}.{hint}")
        if self.paths is not None:
            return _load_listed(self.paths[image_id], image_id, self.root, self.max_side)
        if self.root is None:
            return _load_bundled(image_id)
        try:
            return _load_file(str(self.root / image_id))
        except ImageError as err:  # the same error, with what to do about it
            raise type(err)(
                f"{err}. Image {image_id!r} of the folder {self.root} cannot be used: remove "
                "it from the folder (or move it out), or give a folder of readable photos; "
                f"`tir data check {self.root}` lists every such file at once."
            ) from err


def bundled(split: Split = "test") -> ImageSource:
    """The bundled real photographs of one split (see the module docstring)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    return ImageSource(name=f"bundled:{split}", ids=tuple(SPLITS[split]))


#: The named sources (:func:`source`), for a did-you-mean.
NAMED_SOURCES = (
    *SPLITS,
    *(f"bundled:{s}" for s in SPLITS),
    "corpus:train",
    "corpus:val",
    "corpus:test",
    "independent",
)
#: How an image source is named, for the errors of a spec that names none (see :func:`source`).
SOURCE_HELP = (
    "Name images by a folder (every image file under it, recursively: "
    f"{', '.join(IMAGE_SUFFIXES)}) or a named source: train, val or test (or bundled:<split>, "
    "the bundled photos), corpus:<split> (the photo corpus, `tir data photos`), independent "
    "(the independent evaluation set, `tir data photos --independent`), any of them "
    "followed by [k/n] for a fold."
)


def folder(path: str | Path) -> ImageSource:
    """Every image file (``IMAGE_SUFFIXES``) under ``path``, recursively, sorted.

    Files load through :func:`tir_env.images.load_image`, the reader ``tir restore`` uses.

    Raises:
        DataError: the folder is missing, is a file, or holds no images.
    """
    root = Path(path).expanduser()
    if root.is_file():
        raise DataError(
            f"image source {str(path)!r} is a file, not a folder. {SOURCE_HELP} To use this one "
            f"photo, put it in a folder of its own and give that folder (or restore it with "
            f"`tir restore {path}`)."
        )
    if not root.is_dir():
        raise DataError(
            f"image folder not found: {root}. {SOURCE_HELP}"
            + did_you_mean(str(path), NAMED_SOURCES)
        )
    ids = sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not ids:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    return ImageSource(name=str(root), ids=tuple(ids), root=root)


#: ``SOURCE[k/n]`` (fold ``k`` of ``n``) or ``SOURCE[~k/n]`` (every fold but ``k``).
FOLD = re.compile(r"^(?P<base>.+)\[(?P<rest>~?)(?P<k>\d+)/(?P<n>\d+)\]$")


def fold(base: ImageSource, k: int, n: int, rest: bool = False) -> ImageSource:
    """Fold ``k`` of ``n`` of a source's images (every ``n``-th from the ``k``-th), or the rest.

    For cross-validation by photo: train on ``rest=True``, evaluate on the fold.

    Raises:
        DataError: ``k`` is not in ``0 .. n - 1``, or the selection is empty.
    """
    if not 0 <= k < n:
        raise DataError(f"fold {k} of {n}: expected 0 <= k < n")
    ids = tuple(i for j, i in enumerate(base.ids) if (j % n == k) != rest)
    if not ids:
        raise DataError(f"fold {k} of {n} of {base.name} holds no images ({len(base)} in all)")
    return _part(base, ids, f"{base.name}[{'~' if rest else ''}{k}/{n}]")


SPAN = re.compile(r"^(?P<base>.+)\[(?P<start>\d*):(?P<stop>\d*)\]$")


def span(base: ImageSource, start: int | None, stop: int | None) -> ImageSource:
    """The images ``start`` to ``stop - 1`` of a source, in its order (Python slice bounds).

    Evaluates on photos a run with ``--limit`` has not read: ``corpus:val@4[6:]`` is every val
    photo but the first six.

    Raises:
        DataError: the selection is empty.
    """
    ids = base.ids[start:stop]
    bounds = f"{'' if start is None else start}:{'' if stop is None else stop}"
    if not ids:
        raise DataError(f"images [{bounds}] of {base.name} hold none ({len(base)} in all)")
    return _part(base, tuple(ids), f"{base.name}[{bounds}]")


def _part(base: ImageSource, ids: tuple[str, ...], name: str) -> ImageSource:
    """The source ``name`` of ``base``'s images ``ids`` (its root, file paths and side)."""
    paths = None if base.paths is None else {i: base.paths[i] for i in ids}
    return ImageSource(name, ids, base.root, paths, base.max_side)


def source(spec: str | Path | ImageSource) -> ImageSource:
    """Resolve a spec to a source.

    ``"bundled:<split>"`` or ``"train"|"val"|"test"``: the bundled photos; ``"corpus:<split>"``:
    the photo corpus at its default root (:func:`tir_env.corpus.source`), ``"corpus:<split>@<n>"``
    only its photos of releases up to ``n``, ``"corpus:<split>@=<n>"`` only those release ``n``
    added; ``"independent"`` the independent evaluation set
    (:func:`tir_env.independent.independent_source`: evaluate on it, never train or tune); else a
    folder path. Any of them followed by
    ``[k/n]`` is its fold ``k`` of ``n``, by ``[~k/n]`` every other fold (:func:`fold`:
    cross-validation by photo, ``corpus:train@2[~0/4]`` to train, ``corpus:train@2[0/4]``
    to evaluate), or by ``[a:b]`` its images ``a`` to ``b - 1`` (:func:`span`).
    """
    if isinstance(spec, ImageSource):
        return spec
    text = str(spec)
    match = FOLD.match(text)
    if match:
        k, n = int(match["k"]), int(match["n"])
        return fold(source(match["base"]), k, n, rest=bool(match["rest"]))
    match = SPAN.match(text)
    if match:
        start, stop = (int(match[b]) if match[b] else None for b in ("start", "stop"))
        return span(source(match["base"]), start, stop)
    if text in SPLITS:
        return bundled(text)  # type: ignore[arg-type]
    if text.startswith("bundled:"):
        return bundled(text.split(":", 1)[1])  # type: ignore[arg-type]
    if text == "independent":
        from tir_env import independent  # it imports this module

        return independent.independent_source()
    if text.startswith("corpus:"):
        from tir_env import corpus  # corpus imports this module

        split, at, release = text.split(":", 1)[1].partition("@")
        only = release.startswith("=")
        release = release.removeprefix("=")
        if at and not (release.isascii() and release.isdigit()):
            raise DataError(
                f"bad corpus release in {text!r}: expected corpus:<split>@<number> (releases "
                "up to it) or corpus:<split>@=<number> (only its photos)"
            )
        return corpus.source(split, release=int(release) if release else None, only=only)  # type: ignore[arg-type]
    return folder(text)


@dataclass(frozen=True)
class Window:
    """Where a patch was cut: resize the whole photo to ``scaled`` (H, W), then crop.

    Attributes:
        top: First row of the crop (in the resized photo).
        left: First column of the crop.
        size: Side of the square crop (its height, when ``width`` is given).
        scaled: (H, W) the photo is resized to first (bicubic): its own size unless it is
            smaller than ``size`` on a side.
        width: Width of a non-square crop (whole photos); ``None``: ``size``.
    """

    top: int
    left: int
    size: int
    scaled: tuple[int, int]
    width: int | None = None


def patch_window(shape: tuple[int, ...], size: int, rng: np.random.Generator) -> Window:
    """A random ``size`` x ``size`` window of a photo of ``shape`` (H, W, ...) drawn with ``rng``.

    Photos smaller than ``size`` on either side are upscaled first so the crop fits.
    """
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < size:
        scale = size / min(h, w)
        h, w = max(size, round(h * scale)), max(size, round(w * scale))
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return Window(top, left, size, (h, w))


def crop(image: np.ndarray, window: Window) -> np.ndarray:
    """Cut ``window`` from a uint8 HxWx3 photo or from its float HxW depth map.

    The depth map of a photo, cropped with the photo's window, is the depth of the patch
    (resized the same way first when the photo was upscaled).
    """
    if image.shape[:2] != window.scaled:
        if image.ndim == 3:
            image = resize_u8(check_u8(image), window.scaled)
        else:
            image = fit_depth(image, window.scaled)
    t, left, s = window.top, window.left, window.size
    w = window.width or s
    return np.ascontiguousarray(image[t : t + s, left : left + w])


def random_patch(image: ImageU8, size: int, rng: np.random.Generator) -> ImageU8:
    """A random ``size`` x ``size`` crop drawn with ``rng`` (:func:`patch_window`).

    Images smaller than ``size`` on either side are first upscaled (bicubic) so the crop fits.
    """
    check_u8(image)
    return crop(image, patch_window(image.shape, size, rng))


def whole_window(shape: tuple[int, ...]) -> Window:
    """The whole photo, trimmed to a multiple of 4 on each side (``low_resolution`` needs it).

    The trim is split between the two edges so the photo stays centred.

    Raises:
        ImageError: a side shorter than 8 px.
    """
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < 8:
        raise ImageError(f"a whole-image episode needs photos of at least 8x8 px, got {w}x{h}")
    return Window((h % 4) // 2, (w % 4) // 2, h - h % 4, (h, w), width=w - w % 4)


def whole_image(image: ImageU8) -> ImageU8:
    """The whole photo, trimmed to a multiple of 4 on each side (:func:`whole_window`)."""
    check_u8(image)
    return crop(image, whole_window(image.shape))


def center_patch(image: ImageU8, size: int) -> ImageU8:
    """The central ``size`` x ``size`` crop (deterministic), upscaling small images first."""
    h, w = image.shape[:2]
    rng = np.random.default_rng(0)
    if min(h, w) < size:
        return random_patch(image, size, rng)
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def bundled_path(image_id: str) -> Path:
    """Filesystem path of a bundled photo inside its installed package."""
    package, rel = BUNDLED_FILES[image_id]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {package!r} is needed for bundled photo {image_id!r}")
    return Path(list(spec.submodule_search_locations)[0]) / rel


@functools.lru_cache(maxsize=32)
def _load_bundled(image_id: str) -> ImageU8:
    image = load_image(bundled_path(image_id))
    image.setflags(write=False)
    return image


def _load_listed(
    path: Path, image_id: str, root: Path | None, max_side: int | None = None
) -> ImageU8:
    where = root if root is not None else path.parent
    if not path.is_file():
        raise DataError(
            f"photo {image_id!r} is missing: {path} does not exist; check the corpus with "
            f"`tir data photos --verify --out {where}` and rebuild it with "
            f"`tir data photos --force --out {where}`"
        )
    try:
        return _load_capped(str(path), max_side) if max_side else _load_file(str(path))
    except ImageError as err:  # the same error, with what to do about it
        raise type(err)(
            f"{err}. Check the corpus with `tir data photos --verify --out {where}` and rebuild "
            f"it with `tir data photos --force --out {where}`"
        ) from err


@functools.lru_cache(maxsize=64)
def _load_capped(path: str, max_side: int) -> ImageU8:
    # Read uncached: only the capped copy is kept (a 6000x4000 original is 72 MB).
    image = load_image(path)
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        image = resize_u8(image, (max(1, round(h * scale)), max(1, round(w * scale))))
    image.setflags(write=False)
    return image


@functools.lru_cache(maxsize=64)
def _load_file(path: str) -> ImageU8:
    image = load_image(path)
    image.setflags(write=False)
    return image


def all_ids(splits: Sequence[str] = ("train", "val", "test")) -> list[str]:
    """Ids of the bundled photos of the given splits, in split order."""
    return [i for s in splits for i in SPLITS[s]]
