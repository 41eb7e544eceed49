"""The photo corpus: building (benchmarks.photos) and reading back (tir_env.corpus).

A fake Debian package is built locally with ``dpkg-deb -b`` and served by an injected download
function; no test touches the network.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from benchmarks import photos
from benchmarks.cli import main as tir_main
from tir_env import corpus, data
from tir_env.corpus import PhotoEntry
from tir_env.errors import DataError

PKG = "fake-photos"
COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake-photos

Files: *
Copyright: 2020 Fake Group
License: GPL-2+

Files: src/boat_by_Ann.png
Copyright: Ann Example, 2019
License: CC-BY-4.0

Files: debian/*
Copyright: 2021, Packager
License: Expat
"""

ENTRIES = (
    PhotoEntry("fake/sea", f"deb:{PKG}", "usr/share/fake/sea_*.png", "train"),
    PhotoEntry("fake/boat", f"deb:{PKG}", "usr/share/fake/boat_by_Ann.png", "val"),
    PhotoEntry("py/cat", "py:tirfakephotos", "data/cat.png", "test"),
)


def _jpeg(width: int, height: int, seed: int) -> bytes:
    import io

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _eet(members: list[tuple[str, bytes, int]]) -> bytes:
    """An EET archive (format 2) of ``(name, data, flags)`` members, as eet_lib.c lays it out."""
    import struct

    head = 12 + 24 * len(members)
    names = b"".join(name.encode() + b"\0" for name, _, _ in members)
    directory, blobs = b"", b""
    name_at, data_at = head, head + len(names)
    for name, blob, flags in members:
        offset = data_at + len(blobs)
        directory += struct.pack(">6I", offset, len(blob), len(blob), name_at, len(name) + 1, flags)
        name_at += len(name) + 1
        blobs += blob
    return struct.pack(">3I", photos.EET_MAGIC, len(members), 0) + directory + names + blobs


#: An .edj's members: a small and a large JPEG, a compressed one (skipped), a non-image.
EDJ_MEMBERS = [
    ("edje/images/1", _jpeg(8, 6, 4), 0),
    ("edje/images/0", _jpeg(20, 14, 5), 0),
    ("edje/images/2", _jpeg(40, 40, 6), 1),
    ("edje/file", b"not an image", 0),
]

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def _png(path: Path, width: int, height: int, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def fake_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .deb with two sizes of one photo (plus a link to the larger), another photo, DEP-5."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb")
    tree = tmp_path_factory.mktemp("deb") / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {PKG}\nVersion: 1:2.3-4\nArchitecture: all\n"
        "Maintainer: Test <t@example.org>\nDescription: fake photos\n"
    )
    images = tree / "usr/share/fake"
    _png(images / "sea_small.png", 8, 6, 0)
    _png(images / "sea_large.png", 16, 12, 1)
    (images / "sea_zlink.png").symlink_to("sea_large.png")
    _png(images / "boat_by_Ann.png", 10, 10, 2)
    (images / "bg").mkdir()
    (images / "bg/Hill.edj").write_bytes(_eet(EDJ_MEMBERS))
    doc = tree / f"usr/share/doc/{PKG}"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    deb = tree.parent / f"{PKG}_2.3-4_all.deb"
    subprocess.run(["dpkg-deb", "-b", str(tree), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture
def py_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable module ``tirfakephotos`` with ``data/cat.png``."""
    root = tmp_path / "pymods"
    (root / "tirfakephotos").mkdir(parents=True)
    (root / "tirfakephotos/__init__.py").write_text("")
    _png(root / "tirfakephotos/data/cat.png", 12, 9, 3)
    monkeypatch.syspath_prepend(str(root))
    return root / "tirfakephotos"


class FakeApt:
    """A download function that copies the fake .deb, counting calls."""

    def __init__(self, deb: Path) -> None:
        self.deb, self.calls = deb, 0

    def __call__(self, package: str, folder: Path) -> Path:
        self.calls += 1
        if package != PKG:
            raise photos.PackageDownloadError(f"no package {package}")
        return Path(shutil.copy(self.deb, folder))


def _build(out: Path, deb: Path, **kwargs) -> dict:
    kwargs.setdefault("download", FakeApt(deb))
    kwargs.setdefault("entries", ENTRIES)
    return photos.build(out, progress=False, command="test", **kwargs)


@pytest.fixture
def built(tmp_path: Path, fake_deb: Path, py_module: Path) -> Path:
    out = tmp_path / "corpus"
    _build(out, fake_deb)
    return out


@needs_dpkg
def test_build_writes_manifest_and_original_bytes(built: Path, py_module: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["version"] == corpus.MANIFEST_VERSION
    assert manifest["built_with"] == "test"
    by_id = {p["id"]: p for p in manifest["photos"]}
    assert list(by_id) == [e.id for e in ENTRIES]
    sea = by_id["fake/sea"]
    assert sea["file"] == "photos/fake__sea.png"
    assert (sea["width"], sea["height"]) == (16, 12)  # the largest; the link counts as its target
    assert sea["original_path"] == "usr/share/fake/sea_large.png"
    assert (sea["package"], sea["package_version"]) == (PKG, "1:2.3-4")
    assert (sea["licence"], sea["author"]) == ("GPL-2+", "Fake Group")  # the Files: * stanza
    boat = by_id["fake/boat"]
    assert (boat["licence"], boat["author"], boat["split"]) == ("CC-BY-4.0", "Ann Example", "val")
    cat = by_id["py/cat"]
    assert cat["original_path"] == "tirfakephotos/data/cat.png"
    assert cat["source"] == "py:tirfakephotos" and cat["package_version"] == "unknown"
    original = (py_module / "data/cat.png").read_bytes()
    assert (built / cat["file"]).read_bytes() == original  # no re-encode
    for p in manifest["photos"]:
        blob = (built / p["file"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == p["sha256"] and len(blob) == p["bytes"]
    assert corpus.verify(built) == []
    assert sorted(x.name for x in built.iterdir()) == ["manifest.json", "photos"]
    assert [x.name for x in built.parent.iterdir() if x.name.startswith(".")] == []


@needs_dpkg
def test_existing_corpus_needs_force_and_debs_folder_skips_download(
    built: Path, fake_deb: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="--force"):
        _build(built, fake_deb)
    debs = tmp_path / "debs"
    debs.mkdir()
    shutil.copy(fake_deb, debs)
    apt = FakeApt(fake_deb)
    _build(built, fake_deb, force=True, debs=debs, download=apt)
    assert apt.calls == 0 and corpus.verify(built) == []


@needs_dpkg
def test_failed_rebuild_leaves_previous_corpus(built: Path, fake_deb: Path) -> None:
    before = (built / "manifest.json").read_bytes()
    broken = (*ENTRIES, PhotoEntry("fake/gone", f"deb:{PKG}", "usr/share/fake/gone.png", "test"))
    with pytest.raises(photos.MissingPhotoError, match=r"fake/gone.*usr/share/fake/gone\.png"):
        _build(built, fake_deb, entries=broken, force=True)
    assert (built / "manifest.json").read_bytes() == before
    assert corpus.verify(built) == []
    assert [x.name for x in built.parent.iterdir()] == ["corpus", "pymods"]  # no scratch left


@needs_dpkg
def test_failed_download_midway_leaves_nothing(
    tmp_path: Path, fake_deb: Path, py_module: Path
) -> None:
    entries = (ENTRIES[2], PhotoEntry("other/x", "deb:other-pkg", "x.png", "train"))
    out = tmp_path / "corpus"
    with pytest.raises(photos.PackageDownloadError, match="other-pkg"):
        _build(out, fake_deb, entries=entries)
    assert not out.exists()
    assert [x.name for x in tmp_path.iterdir()] == ["pymods"]


def test_apt_download_failure_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text("#!/bin/sh\necho 'E: Unable to locate package' >&2\nexit 100\n")
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(photos.PackageDownloadError, match=r"Unable to locate.*--debs FOLDER"):
        photos.apt_download("nothing-here", tmp_path)


def test_reserved_package_refused(tmp_path: Path) -> None:
    entries = (PhotoEntry("mate/x", "deb:mate-backgrounds", "usr/share/x.jpg", "train"),)

    def never(package: str, folder: Path) -> Path:
        raise AssertionError("must not download")

    with pytest.raises(photos.ReservedPackageError, match="mate-backgrounds"):
        photos.build(tmp_path / "c", entries=entries, download=never, progress=False)
    assert not (tmp_path / "c").exists()


def test_empty_corpus_refused(tmp_path: Path) -> None:
    with pytest.raises(photos.EmptyCorpusError):
        photos.build(tmp_path / "c", entries=(), progress=False)
    with pytest.raises(photos.EmptyCorpusError, match="only-python"):
        photos.build(tmp_path / "c", entries=ENTRIES[:2], only_python=True, progress=False)


@needs_dpkg
def test_only_python_skips_debian(tmp_path: Path, fake_deb: Path, py_module: Path) -> None:
    apt = FakeApt(fake_deb)
    manifest = _build(tmp_path / "c", fake_deb, only_python=True, download=apt)
    assert [p["id"] for p in manifest["photos"]] == ["py/cat"] and apt.calls == 0


@needs_dpkg
def test_bad_copy_fails_checksum(
    tmp_path: Path, fake_deb: Path, py_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_copy = shutil.copyfile

    def flaky_copy(src: Path, dest: Path, **kwargs: bool) -> Path:
        if Path(dest).parent.name != "photos":  # the fake download copies the .deb
            return Path(real_copy(src, dest, **kwargs))
        Path(dest).write_bytes(Path(src).read_bytes()[:-1])
        return Path(dest)

    monkeypatch.setattr(photos.shutil, "copyfile", flaky_copy)
    with pytest.raises(photos.ChecksumError, match="sha256"):
        _build(tmp_path / "c", fake_deb)
    assert not (tmp_path / "c").exists()


@needs_dpkg
def test_verify_reports_corrupt_and_missing(built: Path) -> None:
    manifest = corpus.read_manifest(built)
    first, second = manifest["photos"][:2]
    path = built / first["file"]
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    (built / second["file"]).unlink()
    problems = corpus.verify(built)
    assert len(problems) == 2
    assert "corrupt" in problems[0] and first["id"] in problems[0]
    assert "missing" in problems[1] and second["file"] in problems[1]
    assert tir_main(["data", "photos", "--verify", "--out", str(built)]) == 1


@needs_dpkg
def test_cli_builds_and_verifies(
    tmp_path: Path, fake_deb: Path, py_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = photos.build

    def build(out: Path, **kwargs) -> dict:
        return real_build(
            out, entries=ENTRIES, download=FakeApt(fake_deb), progress=False, **kwargs
        )

    monkeypatch.setattr(photos, "build", build)
    out = tmp_path / "c"
    assert tir_main(["data", "photos", "--out", str(out)]) == 0
    assert corpus.read_manifest(out)["built_with"] == f"tir data photos --out {out}"
    assert tir_main(["data", "photos", "--verify", "--out", str(out)]) == 0


@needs_dpkg
def test_corpus_source_loads_by_id(built: Path) -> None:
    src = corpus.source("train", built)
    assert src.ids == ("fake/sea",) and src.name == "corpus:train"
    image = src.load("fake/sea")
    assert image.dtype == np.uint8 and image.shape == (12, 16, 3)
    assert corpus.source("test", built).ids == ("py/cat",)
    with pytest.raises(DataError, match="unknown corpus split"):
        corpus.source("all", built)  # type: ignore[arg-type]
    (built / "photos/fake__boat.png").unlink()
    with pytest.raises(DataError, match=r"fake__boat\.png.*--verify"):
        corpus.source("val", built).load("fake/boat")


@needs_dpkg
def test_data_source_spec_and_env(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gymnasium as gym

    import tir_env  # noqa: F401 - registers TIR-v0

    monkeypatch.setenv("TIR_PHOTOS", str(built))
    src = data.source("corpus:val")
    assert src.ids == ("fake/boat",) and src.load("fake/boat").shape == (10, 10, 3)
    env = gym.make("TIR-v0", images="corpus:train", patch_size=8, obs_size=8, max_steps=1)
    obs, _ = env.reset(seed=0)
    env.close()


@needs_dpkg
def test_corpus_releases_select_photos(
    tmp_path: Path, fake_deb: Path, py_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _png(py_module / "data/dog.png", 11, 9, 4)
    newer = PhotoEntry("py/dog", "py:tirfakephotos", "data/dog.png", "train", release=2)
    out = tmp_path / "corpus"
    manifest = _build(out, fake_deb, entries=(*ENTRIES, newer))
    assert {p["id"]: p["release"] for p in manifest["photos"]}["py/dog"] == 2
    # `corpus:train` stays the release the shipped weights saw; later photos are asked for
    assert corpus.DEFAULT_RELEASE == 1
    assert corpus.source("train", out).ids == ("fake/sea",)
    assert corpus.source("train", out, release=1).ids == ("fake/sea",)
    assert corpus.source("train", out, release=2).ids == ("fake/sea", "py/dog")
    monkeypatch.setenv("TIR_PHOTOS", str(out))
    assert data.source("corpus:train").name == "corpus:train"
    assert data.source("corpus:train@2").ids == ("fake/sea", "py/dog")
    assert data.source("corpus:train@2").name == "corpus:train@2"
    # only what a release added: the photos no weights of an earlier release saw
    assert data.source("corpus:train@=2").ids == ("py/dog",)
    assert data.source("corpus:train@=2").name == "corpus:train@=2"
    assert data.source("corpus:train@=1").ids == ("fake/sea",)
    for bad in (
        "corpus:train@latest",
        "corpus:train@",
        "corpus:train@=",
        "corpus:train@=x",
        "corpus:train@²",
    ):
        with pytest.raises(DataError, match="corpus:<split>@<number>"):
            data.source(bad)
    with pytest.raises(DataError, match="unknown corpus release"):
        corpus.source("train", out, release=corpus.RELEASE + 1)
    # a corpus built before a release existed says to rebuild, not "no photo"
    old = tmp_path / "old"
    _build(old, fake_deb)
    if corpus.RELEASE >= 2:
        with pytest.raises(DataError, match="rebuild it with"):
            corpus.source("train", old, release=2)


def test_reviewed_list_releases() -> None:
    """Later releases add training and val photos: test stays release 1's, and so does the
    default val set (``corpus:val``); ``corpus:val@3`` is the larger one the val rounds of the
    records use, and a later release leaves it as it was."""
    for entry in corpus.PHOTOS:
        assert 1 <= entry.release <= corpus.RELEASE
        if entry.release > 1:
            assert entry.split != "test", entry.id
    val = [e for e in corpus.PHOTOS if e.split == "val"]
    assert len([e for e in val if e.release <= corpus.DEFAULT_RELEASE]) == 5
    assert len([e for e in val if e.release <= 3]) == 10
    assert len(val) == 18


def test_missing_corpus_says_how_to_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(DataError, match="tir data photos --out"):
        corpus.source("train", tmp_path / "nowhere")
    assert tir_main(["data", "photos", "--verify", "--out", str(tmp_path / "nowhere")]) == 2
    assert "no photo corpus" in capsys.readouterr().err


def test_reviewed_list_is_sane() -> None:
    chosen = photos.select_entries(corpus.PHOTOS)
    assert {e.split for e in chosen} == {"train", "val", "test"}
    by_id = {e.id: e.split for e in chosen}
    assert by_id["skimage/motorcycle_left"] == by_id["skimage/motorcycle_right"]
    for name in ("skimage/chelsea", "skimage/coffee", "sklearn/china", "sklearn/flower"):
        assert by_id[name] == "test"


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
LICENCES = st.sampled_from(["CC-BY-4.0", "CC0-1.0", "CC-BY-SA-3.0", "GPL-2+"])


@given(
    files=st.dictionaries(NAMES, st.tuples(LICENCES, NAMES), min_size=1, max_size=6),
    fallback=LICENCES,
    year=st.integers(1990, 2030),
)
def test_dep5_credit_round_trip(
    files: dict[str, tuple[str, str]], fallback: str, year: int
) -> None:
    stanzas = [f"Files: *\nCopyright: {year} Upstream\nLicense: {fallback}\n"]
    for name, (licence, author) in files.items():
        stanzas.append(f"Files: src/{name}.jpg\nCopyright: {author}, {year}\nLicense: {licence}\n")
    text = "Format: x\n\n" + "\n".join(stanzas)
    for name, (licence, author) in files.items():
        assert photos.dep5_credit(text, f"usr/share/bg/{name}.jpg") == (licence, author)
    assert photos.dep5_credit(text, "usr/share/bg/UNLISTED.jpg") == (fallback, "Upstream")


@needs_dpkg
@given(st.data())
def test_render_doc_lists_every_photo(built: Path, draw: st.DataObject) -> None:
    manifest = corpus.read_manifest(built)
    keep = draw.draw(st.lists(st.sampled_from(manifest["photos"]), unique_by=lambda p: p["id"]))
    text = photos.render_doc({**manifest, "photos": keep})
    assert f"{len(keep)} photos" in text
    for p in keep:
        assert f"| {p['id']} | {p['split']} |" in text


def test_the_largest_plain_jpeg_of_an_eet_archive_is_taken() -> None:
    name, data, size = photos.largest_jpeg_member(_eet(EDJ_MEMBERS), "edje/images/*")
    assert (name, data, size) == ("edje/images/0", EDJ_MEMBERS[1][1], (20, 14))
    with pytest.raises(photos.ContainerError, match="no JPEG"):
        photos.largest_jpeg_member(_eet(EDJ_MEMBERS), "edje/fonts/*")


@given(st.binary(max_size=300), st.integers(0, 400))
def test_a_broken_archive_is_a_named_error(noise: bytes, cut: int) -> None:
    for blob in (noise, _eet(EDJ_MEMBERS)[:cut], photos.EET_MAGIC.to_bytes(4, "big") + noise):
        try:
            photos.largest_jpeg_member(blob, "edje/images/*", "x.edj")
        except photos.ContainerError as error:
            assert "x.edj" in str(error)


@needs_dpkg
def test_a_photo_inside_a_container_is_copied_byte_for_byte(tmp_path: Path, fake_deb: Path) -> None:
    entry = PhotoEntry("fake/hill", f"deb:{PKG}", "usr/share/fake/bg/*.edj", "train", 3, "edje/*")
    manifest = _build(tmp_path / "c", fake_deb, entries=(entry,))
    (record,) = manifest["photos"]
    assert record["original_path"] == "usr/share/fake/bg/Hill.edj:edje/images/0"
    written = (tmp_path / "c" / record["file"]).read_bytes()
    assert written == EDJ_MEMBERS[1][1] and record["file"].endswith(".jpg")
    assert record["sha256"] == hashlib.sha256(written).hexdigest()
    assert (record["width"], record["height"], record["release"]) == (20, 14, 3)
    missing = PhotoEntry("fake/x", f"deb:{PKG}", "usr/share/fake/bg/*.eet", "train", 3, "*")
    with pytest.raises(photos.MissingPhotoError, match="no container"):
        _build(tmp_path / "d", fake_deb, entries=(missing,))
    assert not (tmp_path / "d").exists()


def test_package_credits_take_the_most_specific_entry(tmp_path: Path) -> None:
    package = photos._Package("lxqt-themes", "1.0", (tmp_path,), tmp_path)
    image = tmp_path / "usr/share/lxqt/wallpapers/x.png"
    assert photos._deb_credit(package, tmp_path, image, "lxqt/Valendas")[1] == "LXQt Project Team"
    assert photos._deb_credit(package, tmp_path, image, "lxqt/drop")[1].startswith("stefonarch")
    licence, _ = photos._deb_credit(package, tmp_path, image, "other/x")
    assert licence.startswith("unknown")  # no override, no copyright file


@needs_dpkg
@given(
    release=st.one_of(
        st.text(max_size=6),
        st.integers(-2, 9).map(str),
        st.integers(-2, 9).map(lambda n: f"={n}"),
    ),
    split=st.sampled_from(["train", "val", "test", "nope"]),
)
def test_any_corpus_spec_gives_a_source_or_a_named_error(
    built: Path, release: str, split: str
) -> None:
    """``corpus:<split>@<release>`` with any text: photos of that split, or a DataError."""
    import os

    before = os.environ.get("TIR_PHOTOS")
    os.environ["TIR_PHOTOS"] = str(built)
    try:
        src = data.source(f"corpus:{split}@{release}")
    except DataError:
        return
    finally:
        if before is None:
            os.environ.pop("TIR_PHOTOS", None)
        else:
            os.environ["TIR_PHOTOS"] = before
    listed = {p["id"]: p for p in corpus.read_manifest(built)["photos"]}
    assert src.ids and all(listed[i]["split"] == split for i in src.ids)
    number = int(release.removeprefix("="))
    for i in src.ids:  # up to the release, or (@=) only the photos it added
        got = listed[i].get("release", 1)
        assert got == number if release.startswith("=") else got <= number


@needs_dpkg
def test_independent_set_built_apart_and_read_by_its_source(
    tmp_path: Path, fake_deb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(photos, "RESERVED_PACKAGES", (PKG,))
    out = tmp_path / "independent"
    photos.build(
        out,
        entries=tuple(replace(e, split="test") for e in ENTRIES[:2]),
        download=FakeApt(fake_deb),
        progress=False,
        independent=True,
    )
    monkeypatch.setenv("TIR_INDEPENDENT", str(out))
    source = data.source("independent")
    assert source.name == "independent" and source.ids == ("fake/boat", "fake/sea")
    assert source.max_side == corpus.LOAD_SIDE
    image = source.load("fake/sea")
    assert image.dtype == np.uint8 and image.shape == (12, 16, 3)
    assert data.source("independent[0/2]").ids == ("fake/boat",)
    assert corpus.verify(out) == []
