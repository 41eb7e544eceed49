"""The photo corpus: which real photographs it holds, its splits, and reading it back.

``tir data photos --out DIR`` (:mod:`benchmarks.photos`) builds the corpus from the packages
named in :data:`PHOTOS` and writes ``DIR/manifest.json``; this module only reads it. Nothing
here touches the network.

What counts as a photograph is decided by a reviewed list, not a heuristic: every image of
every candidate package was looked at on a contact sheet, and an entry was kept when it is a
scene recorded by a camera (landscapes, objects, animals, people, architecture), dropped when
it is a render, a painting, abstract art, a pattern, a logo, or a scientific image (telescope,
microscope, fundus camera). One file per photo: the largest resolution a package ships.

Split by photo, never by crop. The bundled test photos (chelsea, coffee, china, flower) stay
**test**; ``motorcycle_left``/``right`` (a stereo pair) stay together. ``mate-backgrounds`` is
left out on purpose: it is reserved for independent evaluation, never train or tune on it
(:data:`tir_env.independent.INDEPENDENT`, built apart and read by the ``independent`` image
source).

Example:
    >>> from tir_env import corpus
    >>> src = corpus.source("train", "~/.cache/tir/photos")  # doctest: +SKIP
    >>> image = src.load(src.ids[0])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from tir_env.data import ImageSource
from tir_env.errors import DataError

CorpusSplit = Literal["train", "val", "test"]

#: Format version of ``manifest.json``.
MANIFEST_VERSION = 1
#: Long side corpus photos load at (antialiased): the wallpapers are 2.5-6K pixels, soft at
#: the pixel level; near DIV2K's 2K they are sharp and crops hold scene content. The files on
#: disk stay the originals.
LOAD_SIDE = 1536
#: The latest corpus release. Release 1: 37 photos (wallpapers, Python packages' samples);
#: release 2 adds 21 training photographs from OpenCV's sample data (``opencv-doc``);
#: release 3 adds 24 from Enlightenment's and LXQt's wallpapers (19 train, 5 val); release 4
#: adds 38 from Scratch's backgrounds, the JPEG XL test data and Psychtoolbox's demos (30
#: train, 8 val). ``corpus:val`` and ``corpus:test`` stay release 1's, so held-out numbers stay
#: comparable; ``corpus:val@3`` is the larger val set (10 photos), ``corpus:val@=4`` the 8
#: photos no weights trained before release 4 saw.
RELEASE = 4
#: The release ``corpus:<split>`` means: the one most shipped weights were trained on, so their
#: documented training commands reproduce them (perception's record names ``corpus:train@2``).
#: ``corpus:<split>@<n>`` selects releases up to n.
DEFAULT_RELEASE = 1
#: Default corpus folder (``$TIR_PHOTOS`` overrides it).
DEFAULT_ROOT = "~/.cache/tir/photos"


@dataclass(frozen=True)
class PhotoEntry:
    """One reviewed photograph.

    Attributes:
        id: Stable corpus id, ``<source>/<name>``.
        source: ``deb:<package>`` (Debian package, fetched with ``apt-get download``) or
            ``py:<module>`` (a file inside an installed Python package).
        path: Path inside the package (a glob: the largest matching image is taken).
        split: ``train``, ``val`` or ``test``.
        release: The corpus release that added it (:data:`RELEASE`): ``corpus:train@1``
            selects the photos of release 1, what most shipped weights were trained on.
        member: ``path`` is a container, an Enlightenment ``.edj`` (an EET archive): the
            photo is its largest JPEG among the entries whose name matches this glob, copied
            byte for byte. ``None``: ``path`` is the image itself.
    """

    id: str
    source: str
    path: str
    split: CorpusSplit
    release: int = 1
    member: str | None = None


def _plasma(name: str, split: CorpusSplit) -> PhotoEntry:
    return PhotoEntry(
        f"plasma/{name}",
        "deb:plasma-workspace-wallpapers",
        f"usr/share/wallpapers/{name}/contents/images/*",
        split,
    )


def _lomiri(name: str, package: str, split: CorpusSplit) -> PhotoEntry:
    return PhotoEntry(
        f"lomiri/{name.split('_by_')[0]}", f"deb:{package}", f"usr/share/backgrounds/{name}", split
    )


_L16 = "lomiri-wallpapers-16.04"


def _opencv(name: str, path: str) -> PhotoEntry:
    """A training photo of OpenCV's sample data (release 2)."""
    return PhotoEntry(
        f"opencv/{name}", "deb:opencv-doc", f"usr/share/doc/opencv-doc/examples/{path}", "train", 2
    )


def _enlightenment(name: str, split: CorpusSplit = "train") -> PhotoEntry:
    """A photograph among Enlightenment's desktop backgrounds (release 3): JPEG inside ``.edj``."""
    return PhotoEntry(
        f"enlightenment/{name}",
        "deb:enlightenment-data",
        f"usr/share/enlightenment/data/backgrounds/{name}.edj",
        split,
        3,
        member="edje/images/*",
    )


def _lxqt(name: str, file: str, split: CorpusSplit = "train") -> PhotoEntry:
    """A photograph among LXQt's wallpapers (release 3)."""
    return PhotoEntry(
        f"lxqt/{name}", "deb:lxqt-themes", f"usr/share/lxqt/wallpapers/{file}", split, 3
    )


def _scratch(folder: str, name: str, split: CorpusSplit = "train") -> PhotoEntry:
    """A photograph among Scratch 1.4's stage backgrounds (release 4): 480x360 JPEG."""
    return PhotoEntry(
        f"scratch/{name}",
        "deb:scratch",
        f"usr/share/scratch/Media/Backgrounds/{folder}/{name}.jpg",
        split,
        4,
    )


def _libjxl(name: str, path: str, split: CorpusSplit = "train") -> PhotoEntry:
    """A lossless photograph of the JPEG XL project's test data (release 4)."""
    return PhotoEntry(
        f"libjxl/{name}", "deb:libjxl-testdata", f"usr/share/libjxl-testdata/{path}", split, 4
    )


#: Scratch's backgrounds that are camera photographs at JPEG quality >= 90 (release 4), by
#: folder. Left out: the drawings (bedrooms, rooms 1-3, party room, spotlight stage, desert,
#: woods, school, night city, train tracks 3, basketball court 2, underwater, stars, brick
#: wall 1), the palette GIFs (flowers, woods-and-bench's GIF twins), the greyscale moon, and
#: the photographs at quality 85-89 (hall, hill, castle, pool, boardwalk, driveway, graffiti,
#: the movies, city with water, atom playground, water and rocks, hay field, the
#: sports fields but two): their 8x8 blocks would be learned as clean.
_SCRATCH_TRAIN: tuple[tuple[str, str], ...] = (
    ("Indoors", "chalkboard"),
    ("Nature", "beach-malibu"),
    ("Nature", "canyon"),
    ("Nature", "flower-bed"),
    ("Nature", "forest"),
    ("Nature", "garden-rock"),
    ("Nature", "grand-canyon"),
    ("Nature", "gravel-desert"),
    ("Nature", "pathway"),
    ("Nature", "tree"),
    ("Outdoors", "all-sports-mural"),
    ("Outdoors", "bench-with-view"),
    ("Outdoors", "berkeley-mural"),
    ("Outdoors", "brick-wall-and-stairs"),
    ("Outdoors", "brick-wall2"),
    ("Outdoors", "building-at-mit"),
    ("Outdoors", "building-fireproof"),
    ("Outdoors", "houses"),
    ("Outdoors", "mansion"),
    ("Outdoors", "mural-faro"),
    ("Outdoors", "parking-ramp"),
    ("Outdoors", "train-tracks1"),
    ("Outdoors", "train-tracks2"),
    ("Outdoors", "wooden-house"),
    ("Sports", "playing-field"),
    ("Sports", "tennis-backboard"),
)
_SCRATCH_VAL: tuple[tuple[str, str], ...] = (
    ("Indoors", "kitchen"),
    ("Nature", "lake"),
    ("Nature", "wave"),
    ("Outdoors", "route66"),
    ("Outdoors", "silos"),
    ("Outdoors", "village"),
)

#: The reviewed photographs (see the module docstring for the rule).
PHOTOS: tuple[PhotoEntry, ...] = (
    # plasma-workspace-wallpapers: the photographs among its 30 wallpapers
    _plasma("BytheWater", "train"),
    _plasma("ColorfulCups", "train"),
    _plasma("DarkestHour", "train"),
    _plasma("FallenLeaf", "train"),
    _plasma("Grey", "train"),
    _plasma("Kite", "train"),
    _plasma("OneStandsOut", "train"),
    _plasma("summer_1am", "train"),
    _plasma("ColdRipple", "val"),
    _plasma("EveningGlow", "test"),
    _plasma("Path", "test"),
    # lomiri-wallpapers-16.04 / -20.04 (Ubuntu's photo contest wallpapers)
    _lomiri("Bridge_by_Sander_Klootwijk.jpg", _L16, "train"),
    _lomiri("Dragonfly_by_Bolly.jpg", _L16, "train"),
    _lomiri("Picture_0B_by_freespace.jpg", _L16, "train"),
    _lomiri("Picture_1A_by_freespace.jpg", _L16, "train"),
    _lomiri("Wine_by_Jakkub_Mede.jpg", _L16, "train"),
    _lomiri("aitzgorri_by_Aitzol_Berasategi.jpg", _L16, "train"),
    _lomiri("free_by_Peter_Nerlich.jpg", _L16, "train"),
    _lomiri("seeding_by_Clements_Engelhardt.jpg", _L16, "train"),
    _lomiri("life_by_Aitzol_Berasategi.jpg", _L16, "val"),
    _lomiri("picosdeeuropa_by_Aitzol_Berasategi.jpg", _L16, "val"),
    _lomiri("friends_by_Aitzol_Berasategi.jpg", _L16, "test"),
    _lomiri("sunset_by_Aitzol_Berasategi.jpg", _L16, "test"),
    _lomiri("Kleiber_by_Lukas_Baubkus.jpg", "lomiri-wallpapers-20.04", "test"),
    # Python packages' sample photographs
    PhotoEntry("skimage/astronaut", "py:skimage", "data/astronaut.png", "train"),
    PhotoEntry("skimage/motorcycle_left", "py:skimage", "data/motorcycle_left.png", "train"),
    PhotoEntry("skimage/motorcycle_right", "py:skimage", "data/motorcycle_right.png", "train"),
    PhotoEntry("skimage/rocket", "py:skimage", "data/rocket.jpg", "val"),
    PhotoEntry("skimage/chelsea", "py:skimage", "data/chelsea.png", "test"),
    PhotoEntry("skimage/coffee", "py:skimage", "data/coffee.png", "test"),
    PhotoEntry("sklearn/china", "py:sklearn", "datasets/images/china.jpg", "test"),
    PhotoEntry("sklearn/flower", "py:sklearn", "datasets/images/flower.jpg", "test"),
    PhotoEntry(
        "matplotlib/grace_hopper", "py:matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "train"
    ),
    # pyiqa's wheel ships four real photographs as its speed-test inputs (top-level `tests`)
    PhotoEntry("pyiqa/SPAQ_10241", "py:tests", "test_efficiency_img_dir/SPAQ_10241.jpg", "train"),
    PhotoEntry(
        "pyiqa/frame_4wrw",
        "py:tests",
        "test_efficiency_img_dir/frame_4wrwr48cdk6rbcjl.jpg",
        "train",
    ),
    PhotoEntry(
        "pyiqa/frame_7gzd",
        "py:tests",
        "test_efficiency_img_dir/frame_7gzdcz9sif0ekg31.jpg",
        "train",
    ),
    PhotoEntry(
        "pyiqa/frame_9ogw", "py:tests", "test_efficiency_img_dir/frame_9ogwhvvy7gfj6jzh.jpg", "val"
    ),
    # opencv-doc (release 2): the camera photographs of OpenCV's sample images that are
    # lossless or JPEG quality >= 90 (a quality-75 "clean" photo carries 8x8 blocks the
    # perception would learn as clean). Left out: renders (Blender, blox), drawings, charts,
    # the painting (starry_night), logos, maps, JPEG <= 85 (aero, building, home.jpg, the
    # calibration boards, scenetext01-06), and deliberately degraded ones (text_defocus,
    # text_motion, licenseplate_motion). Stereo and view pairs stay together, all in train.
    _opencv("plant", "alphamat/input_images/plant.jpg"),
    _opencv("baboon", "data/baboon.jpg"),
    _opencv("fruits", "data/fruits.jpg"),
    _opencv("ela_original", "data/ela_original.jpg"),
    _opencv("leuvenA", "data/leuvenA.jpg"),
    _opencv("leuvenB", "data/leuvenB.jpg"),
    _opencv("messi5", "data/messi5.jpg"),
    _opencv("squirrel", "data/squirrel_cls.jpg"),
    _opencv("stuff", "data/stuff.jpg"),
    _opencv("chicky", "data/chicky_512.png"),  # RGBA: 0.4% of pixels half transparent
    _opencv("graf1", "data/graf1.png"),
    _opencv("graf3", "data/graf3.png"),
    _opencv("rubberwhale1", "data/rubberwhale1.png"),
    _opencv("rubberwhale2", "data/rubberwhale2.png"),
    _opencv("butterfly_sr", "dnn_superres/butterfly.png"),
    _opencv("house", "reg/home.png"),
    *(_opencv(f"scenetext_word{i}", f"text/scenetext_segmented_word0{i}.jpg") for i in range(1, 6)),
    # enlightenment-data (release 3): the photographs among its 23 backgrounds (3840x2160
    # JPEG at quality 99 inside each .edj). Left out: renders (Dunes, Flat-Fan, Sunset-Hills,
    # the four Squiggles) and textures (Flat-Stone-Pattern, Paper-Flower). Several are dark
    # or misty by nature (Foggy-Trees, God-Rays, Mountain, Peaks, Sunset-Clouds): what
    # perception must learn to tell from a darkened or hazed crop.
    *(
        _enlightenment(name)
        for name in (
            "Bamboo",
            "Foggy-Trees",
            "God-Rays",
            "Green-Maple",
            "Lichen-Branches",
            "Mountain",
            "Red-Maple",
            "Snow-Trees",
            "Spruce-Needles",
            "Sunset-Clouds",
            "Yellow-Flower",
        )
    ),
    _enlightenment("Peaks", "val"),
    _enlightenment("Sea-of-Lanterns", "val"),
    _enlightenment("White-Flower", "val"),
    # lxqt-themes (release 3): its camera photographs, lossless or JPEG quality >= 92. Left
    # out: renders and logos (origami, plasma, triangles, waves, simple_blue_widescreen) and
    # Butterfly-Kenneth-Wimer.jpg (JPEG quality 80: its 8x8 blocks would be learned as clean).
    _lxqt("Valendas", "Valendas.png"),
    _lxqt("after-the-rain", "after-the-rain.jpg"),
    _lxqt("appleflower", "appleflower.png"),
    _lxqt("beam", "beam.png"),
    _lxqt("butterfly", "butterfly.png"),
    _lxqt("cloud", "cloud.png"),
    _lxqt("flowers", "flowers.png"),
    _lxqt("this-is-not-windows", "this-is-not-windows.jpg"),
    _lxqt("drop", "drop.png", "val"),
    _lxqt("fog", "fog.jpg", "val"),
    # scratch (release 4): see _SCRATCH_TRAIN
    *(_scratch(folder, name) for folder, name in _SCRATCH_TRAIN),
    *(_scratch(folder, name, "val") for folder, name in _SCRATCH_VAL),
    # libjxl-testdata (release 4): its lossless camera photographs. Left out: the 64 px crops,
    # the PNG test suite, colour charts, splines and every JPEG re-encoding of the flower.
    _libjxl("flower", "jxl/flower/flower.png"),
    _libjxl("hdr_room", "jxl/hdr_room.png"),
    _libjxl("keong_macan", "external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png"),
    _libjxl("riaphotographs", "external/wesaturate/500px/tmshre_riaphotographs_srgb8.png"),
    _libjxl("bliznaca", "external/wesaturate/500px/u76c0g_bliznaca_srgb8.png", "val"),
    # psychtoolbox-3-common (release 4): the one colour camera photograph at JPEG quality
    # >= 90 among its demos (the rabbits are quality ~20, the change-blindness pairs grey)
    PhotoEntry(
        "psychtoolbox/town",
        "deb:psychtoolbox-3-common",
        "usr/share/psychtoolbox-3/PsychHardware/EyelinkToolbox/EyelinkDemos/"
        "SR-ResearchDemo/town.jpg",
        "val",
        4,
    ),
)

#: Packages never to train or tune on (reserved for independent evaluation).
RESERVED_PACKAGES: tuple[str, ...] = ("mate-backgrounds",)


def default_root() -> Path:
    """The corpus folder: ``$TIR_PHOTOS`` if set, else :data:`DEFAULT_ROOT`."""
    return Path(os.environ.get("TIR_PHOTOS") or DEFAULT_ROOT).expanduser()


def read_manifest(root: str | Path | None = None) -> dict:
    """The parsed ``manifest.json`` of a built corpus.

    Raises:
        DataError: no corpus there, or the manifest is unreadable or of another version.
    """
    folder = Path(root).expanduser() if root is not None else default_root()
    path = folder / "manifest.json"
    if not path.is_file():
        raise DataError(
            f"no photo corpus at {folder} (missing manifest.json); build it with "
            f"`tir data photos --out {folder}` or set $TIR_PHOTOS to the folder"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"corpus manifest {path} is unreadable ({exc}); rebuild it") from exc
    if manifest.get("version") != MANIFEST_VERSION:
        raise DataError(
            f"corpus manifest {path} has version {manifest.get('version')!r}, expected "
            f"{MANIFEST_VERSION}; rebuild it with `tir data photos --out {folder}`"
        )
    return manifest


def _root(root: str | Path | None) -> Path:
    return Path(root).expanduser() if root is not None else default_root()


def source(
    split: CorpusSplit,
    root: str | Path | None = None,
    release: int | None = None,
    only: bool = False,
) -> ImageSource:
    """The corpus photos of one split as an image source (ids sorted, loaded by id).

    Args:
        split: ``train``, ``val`` or ``test``.
        root: Corpus folder; ``None``: :func:`default_root`.
        release: Only the photos of corpus releases up to this one (:data:`RELEASE`); ``None``:
            :data:`DEFAULT_RELEASE`.
        only: Only the photos that ``release`` added (``corpus:val@=3``: the val photos no
            weights trained on release 1 or 2 ever saw, to judge new weights on).

    Raises:
        DataError: unknown split or release, no corpus at ``root``, a corpus built before
            ``release`` existed, or no photo in that split.
    """
    if split not in get_args(CorpusSplit):
        raise DataError(f"unknown corpus split {split!r}; choose one of {get_args(CorpusSplit)}")
    release = DEFAULT_RELEASE if release is None else release
    if not 1 <= release <= RELEASE:
        raise DataError(f"unknown corpus release {release}; releases are 1 to {RELEASE}")
    folder = _root(root)
    manifest = read_manifest(folder)
    built = max((p.get("release", 1) for p in manifest["photos"]), default=1)
    if release > built:
        raise DataError(
            f"the corpus at {folder} holds releases up to {built}, not {release}; rebuild it "
            f"with `tir data photos --force --out {folder}`"
        )
    photos = [
        p
        for p in manifest["photos"]
        if p["split"] == split
        and (p.get("release", 1) == release if only else p.get("release", 1) <= release)
    ]
    if not photos:
        raise DataError(f"the corpus at {folder} has no {split} photo; rebuild it")
    paths = {p["id"]: folder / p["file"] for p in photos}
    return ImageSource(
        name=_source_name(split, release, only),
        ids=tuple(sorted(paths)),
        root=folder,
        paths=paths,
        max_side=LOAD_SIDE,
    )


def _source_name(split: str, release: int, only: bool) -> str:
    """The spec that selects a source: ``corpus:val``, ``corpus:val@3``, ``corpus:val@=3``."""
    if only:
        return f"corpus:{split}@={release}"
    return f"corpus:{split}" + ("" if release == DEFAULT_RELEASE else f"@{release}")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(root: str | Path | None = None) -> list[str]:
    """Check every photo of a built corpus against its manifest (size and sha256).

    Returns:
        One line per problem (missing or corrupt file); empty when the corpus is intact.

    Raises:
        DataError: no readable manifest at ``root``.
    """
    folder = _root(root)
    problems = []
    for photo in read_manifest(folder)["photos"]:
        path = folder / photo["file"]
        if not path.is_file():
            problems.append(f"{photo['id']}: missing file {path}")
        elif path.stat().st_size != photo["bytes"] or sha256_file(path) != photo["sha256"]:
            problems.append(f"{photo['id']}: corrupt file {path} (sha256 differs from manifest)")
    return problems
