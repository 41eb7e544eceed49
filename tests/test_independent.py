"""The independent evaluation set: built apart, read by one source, refused by what trains or tunes.

Its build from a fake Debian package is in ``tests/test_corpus.py`` (with the corpus' fakes); no
test touches the network or the real set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from benchmarks import ab_test, photos
from benchmarks.cli import main as tir_main
from tir_env import data
from tir_env.corpus import PHOTOS, RESERVED_PACKAGES
from tir_env.errors import DataError, ReservedPhotosError
from tir_env.independent import INDEPENDENT, names_reserved, refuse_reserved


def test_the_reviewed_list_is_the_reserved_package_only() -> None:
    assert len(INDEPENDENT) == 12
    assert {e.source for e in INDEPENDENT} == {f"deb:{p}" for p in RESERVED_PACKAGES}
    assert not {e.id for e in INDEPENDENT} & {e.id for e in PHOTOS}
    assert photos.select_entries(INDEPENDENT, independent=True) == list(INDEPENDENT)


def test_the_corpus_and_the_independent_set_never_mix() -> None:
    with pytest.raises(photos.ReservedPackageError, match="reserved for independent"):
        photos.select_entries(INDEPENDENT)
    with pytest.raises(photos.ReservedPackageError, match="not from the packages reserved"):
        photos.select_entries(PHOTOS[:1], independent=True)


def test_a_missing_set_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIR_INDEPENDENT", str(tmp_path / "none"))
    with pytest.raises(DataError, match="tir data photos --independent"):
        data.source("independent")


@pytest.mark.parametrize(
    "word",
    ["independent", "--images=independent", "independent[1/3]", "--train=independent[~0/2]"],
)
def test_names_reserved_spots_the_spec(word: str) -> None:
    assert names_reserved(word)


def test_names_reserved_spots_a_path_inside_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIR_INDEPENDENT", str(tmp_path / "ind"))
    assert names_reserved(str(tmp_path / "ind"))
    assert names_reserved(str(tmp_path / "ind" / "photos"))
    assert names_reserved(f"--images={tmp_path / 'ind' / 'photos'}")
    assert not names_reserved(str(tmp_path / "independent-copies"))
    assert not names_reserved(str(tmp_path))


@given(
    st.sampled_from(
        ["corpus:train", "corpus:val@3", "test", "bundled:train", "--seed", "7", "runs/ppo", ""]
    )
    | st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=40).filter(
        lambda w: "independent" not in w
    )
)
@example("~0")  # no user "0": expanduser raised instead of answering
@example("\ud800")  # a lone surrogate no file system path can hold: resolve raised
def test_names_reserved_lets_everything_else_through(word: str) -> None:
    # no false refusal: a word that neither names the spec nor a path in the set's folder
    # (the default folder, which no relative word reaches from the repo) passes
    assert not names_reserved(word)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "ppo", "--images", "independent"],
        ["train", "perception", "--train=independent"],
        ["train-tools", "--images", "independent"],
        ["experts", "collect", "--images", "independent[0/2]"],
        ["train", "ppo", "--images", "independent[6:]"],
        ["train-tools", "--images", "independent[0/2][1:]"],
    ],
)
def test_what_trains_refuses_it(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert tir_main(argv) == 2
    assert "reserved for evaluation" in capsys.readouterr().err


def test_an_ab_test_refuses_it() -> None:
    with pytest.raises(SystemExit):
        ab_test.main(["--a", "fixed", "--b", "fixed", "--images", "independent"])


def test_refuse_reserved_names_the_word() -> None:
    with pytest.raises(ReservedPhotosError, match="'--images=independent'.*tir train ppo"):
        refuse_reserved(["--seed", "1", "--images=independent"], "tir train ppo")
    refuse_reserved(["--images", "corpus:train@4"], "tir train ppo")  # no error


def test_the_strip_picks_every_third_photo_with_the_next_combination() -> None:
    from benchmarks.independent import strip_picks

    combos = [("noise", "jpeg"), ("haze", "rain")]
    records = [
        {"image": f"p{i:02d}", "degradations": list(c), "seed": 10 * i + j}
        for i in range(8)
        for j, c in enumerate(combos)
    ]
    picks = strip_picks(records)
    assert [(p.image_id, p.degradations, p.seed) for p in picks] == [
        ("p00", combos[0], 0),
        ("p03", combos[1], 31),
        ("p06", combos[0], 60),
    ]


def test_tir_data_photos_independent_builds_the_reserved_list_into_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, dict]] = []

    def build(out: Path, **kwargs: object) -> dict:
        calls.append((Path(out), kwargs))
        return {"photos": []}

    monkeypatch.setattr(photos, "build", build)
    monkeypatch.setenv("TIR_INDEPENDENT", str(tmp_path / "ind"))
    assert tir_main(["data", "photos", "--independent"]) == 0
    ((out, kwargs),) = calls
    assert out == tmp_path / "ind"
    assert kwargs["entries"] == INDEPENDENT and kwargs["independent"] is True
    assert tir_main(["data", "photos"]) == 0  # the corpus: its own list, its own folder
    assert "entries" not in calls[1][1] and calls[1][0] != tmp_path / "ind"
