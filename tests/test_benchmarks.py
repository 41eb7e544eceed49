from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.evaluate import read_jsonl
from benchmarks.suites import SUITES, get_suite
from tir_env.env import TIREnv
from tir_env.images import save_image

FIELDS = {
    "suite",
    "suite_version",
    "image",
    "degradations",
    "agent",
    "seed",
    "actions",
    "tool_executions",
    "wall_time_s",
    "metrics_input",
    "metrics_output",
}


def test_suites_are_frozen_and_complete():
    assert {
        "mio-a",
        "mio-b",
        "mio-c",
        "ood-d2",
        "ood-d3",
        "rlrestore-mild",
        "rlrestore-moderate",
        "rlrestore-severe",
    } <= set(SUITES)
    assert len(SUITES["mio-a"].combos) == 8 and len(SUITES["mio-c"].combos) == 4
    a, b = get_suite("mio-b").episodes(), get_suite("mio-b").episodes()
    assert a == b and len({e.seed for e in a}) == len(a)
    with pytest.raises(KeyError, match="mio-a"):
        get_suite("mio-aa")


@pytest.mark.parametrize("suite", ["mio-a", "rlrestore-severe"])
def test_every_agent_gets_identical_inputs(suite):
    s = get_suite(suite)
    spec = s.episodes(limit=1)[0]
    kw = {**s.env_kwargs(), "patch_size": 32}
    inputs = []
    for _ in range(2):  # e.g. two agents, each with its own env
        env = TIREnv(**kw)
        env.reset(
            seed=spec.seed, options={"image_id": spec.image_id, "degradations": spec.degradations}
        )
        inputs.append(env.input_image().tobytes())
    assert inputs[0] == inputs[1]


def test_bench_then_leaderboard(tmp_path: Path, capsys):
    out = tmp_path / "bench"
    assert (
        main(["bench", "mio-b", "--agents", "random,oracle", "--limit", "1", "--out", str(out)])
        == 0
    )
    records = read_jsonl(out / "mio-b__oracle.jsonl")
    assert len(records) == 4 and set(records[0]) >= FIELDS
    assert records[0]["metrics_output"]["psnr"] is not None
    assert (out / "leaderboard.md").exists() and (out / "quality_vs_executions.png").exists()
    board = tmp_path / "board"
    assert main(["leaderboard", str(out), "--out", str(board)]) == 0
    md = (board / "leaderboard.md").read_text()
    assert "| oracle |" in md and "| random |" in md
    assert (board / "mio-b.csv").exists() and (board / "psnr_by_suite.png").exists()


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_restore_user_photo(tmp_path: Path, capsys, suffix):
    rng = np.random.default_rng(0)
    photo = (rng.random((50, 70, 3)) * 255).astype(np.uint8)
    path = save_image(tmp_path / f"mine{suffix}", photo)
    out = tmp_path / "restored.png"
    assert (
        main(["restore", str(path), "--agent", "greedy", "--max-steps", "2", "-o", str(out)]) == 0
    )
    assert out.exists()
    text = capsys.readouterr().out
    assert "NIQE" in text and "tool executions" in text and "perceived:" in text


def test_restore_adds_the_tools_an_agent_needs(tmp_path: Path, capsys):
    path = save_image(tmp_path / "p.png", np.full((40, 48, 3), 90, np.uint8))
    out = tmp_path / "x.png"
    assert main(["restore", str(path), "--agent", "all-in-one", "-o", str(out)]) == 0
    assert "learned_all_in_one" in capsys.readouterr().out and out.exists()
    assert main(["restore", str(path), "--agent", "no-such-agent", "-o", str(out) + ".png"]) == 2
    assert "no-such-agent" in capsys.readouterr().err
    # ppo's catalogue tools are classical: a learned toolbox gets them added
    assert (
        main(["restore", str(path), "--agent", "ppo", "--toolbox", "learned", "-o", str(out)])
        == 2  # x.png exists: refused before any work
    )
    assert "already exists" in capsys.readouterr().err
    assert (
        main(
            ["restore", str(path), "--agent", "ppo", "--toolbox", "learned", "-o", str(out)]
            + ["--overwrite"]
        )
        == 0
    )


def test_restore_hands_the_parsed_options_to_the_agent(tmp_path: Path, monkeypatch) -> None:
    import agents.base

    given: dict = {}
    make = agents.base.make_agent

    def spy(name: str, **options):
        given.update(options)
        return make(name, **options)

    monkeypatch.setattr(agents.base, "make_agent", spy)
    path = save_image(tmp_path / "p.png", np.full((40, 48, 3), 90, np.uint8))
    args = ["restore", str(path), "--agent", "exhaustive", "--max-steps", "1"]
    args += ["--agent-arg", "exhaustive.judge_whole_alone=false", "-o", str(tmp_path / "a.png")]
    assert main(args) == 0 and given["judge_whole_alone"] is False  # parsed to its type
    assert given["judge_whole_adds"] == ("dark",)  # tir restore's own default (rule 2b43866)


def test_restore_passes_agent_options_and_names_a_bad_one(tmp_path: Path, capsys):
    path = save_image(tmp_path / "p.png", np.full((40, 48, 3), 90, np.uint8))
    base = ["restore", str(path), "--agent", "exhaustive", "--max-steps", "1"]
    ok = base + ["--agent-arg", "exhaustive.judge_whole_alone=false", "-o", str(tmp_path / "a.png")]
    assert main(ok) == 0 and (tmp_path / "a.png").exists()
    bad = base + ["--agent-arg", "exhaustive.no_such_option=1", "-o", str(tmp_path / "b.png")]
    assert main(bad) == 2 and not (tmp_path / "b.png").exists()
    assert "no_such_option" in capsys.readouterr().err
    other = base + ["--agent-arg", "fixed.guard=gain", "-o", str(tmp_path / "c.png")]
    assert main(other) == 2 and "fixed" in capsys.readouterr().err  # not the agent restoring


def test_restore_broken_file(tmp_path: Path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\x00not a jpeg")
    assert main(["restore", str(broken), "-o", str(tmp_path / "x.png")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_restore_refuses_reference_agents(tmp_path: Path, capsys):
    path = save_image(tmp_path / "p.png", np.zeros((40, 40, 3), np.uint8))
    assert (
        main(["restore", str(path), "--agent", "exhaustive-ref", "-o", str(tmp_path / "x.png")])
        == 2
    )


def test_listing_commands(capsys):
    for cmd in (["tools"], ["suites"], ["agents"]):
        assert main(cmd) == 0
    text = capsys.readouterr().out
    assert "dct_denoise" in text and "mio-c" in text and "exhaustive-ref" in text


def test_records_are_json_serialisable(tmp_path: Path):
    from benchmarks.evaluate import evaluate

    spec = get_suite("mio-a").episodes(limit=1)[:1]
    records = evaluate(
        "oracle",
        spec,
        {**get_suite("mio-a").env_kwargs(), "patch_size": 32},
        "mio-a",
        "1",
        progress=False,
    )
    json.dumps(records)


def test_leaderboard_doc_matches_the_committed_records():
    from benchmarks.gen_docs import DOCS, leaderboard_page

    assert (DOCS / "leaderboard.md").read_text() == leaderboard_page(), (
        "run: python -m benchmarks.gen_docs"
    )


def test_whole_photo_table_and_psnr():
    from benchmarks.whole_photo import markdown, psnr

    a = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(a, a) > 100 and psnr(a + 1, a) == pytest.approx(20 * np.log10(255))
    assert psnr(np.full((32, 32, 3), 100, np.uint8), a) > 100  # an upscaled output is resized
    rows = [
        {
            "agent": ag,
            "photo": p,
            "combo": "noise",
            "psnr_in": 20.0,
            "psnr_out": out,
            "calls": 1,
            "executions": 3,
            "wall_s": 0.1,
        }
        for ag, out in [("good", 24.0), ("bad", 19.0)]
        for p in ("x", "y")
    ]
    table = markdown(rows, "cmd")
    assert table.index("| good |") < table.index("| bad |")
    assert "**+4.00**" in table and "**-1.00**" in table and "2 photos x 1 degradations" in table


def test_whole_photo_pairs_agents_over_photos_and_refuses_unpaired_runs():
    from benchmarks.whole_photo import paired, paired_lines

    def row(agent: str, photo: str, combo: str, out: float) -> dict:
        return {"agent": agent, "photo": photo, "combo": combo, "psnr_in": 20.0, "psnr_out": out}

    rows = [row("a", p, c, 20.0) for p in "xy" for c in ("noise", "jpeg")]
    rows += [row("b", "x", "noise", 21.0), row("b", "x", "jpeg", 23.0)]  # photo x: +2
    rows += [row("b", "y", "noise", 24.0), row("b", "y", "jpeg", 20.0)]  # photo y: +2
    mean, se, n = paired(rows, "a", "b")
    assert (mean, se, n) == (pytest.approx(2.0), pytest.approx(0.0), 2)  # photos agree exactly
    assert paired_lines(rows) == [
        "`b` minus `a`: +2.000 dB an episode (se 0.000 over 2 photos, paired)."
    ]
    with pytest.raises(ValueError, match="same photos"):
        paired(rows[:-1], "a", "b")


def test_whole_photo_combinations_are_parsed_or_refused_by_name():
    import argparse

    from benchmarks.whole_photo import COMBOS, main, parse_combos

    assert parse_combos("jpeg; noise+jpeg") == (("jpeg",), ("noise", "jpeg"))
    for bad in ("", ";", "jpg", "noise+blur"):
        with pytest.raises(argparse.ArgumentTypeError, match="want names"):
            parse_combos(bad)
    assert ("noise",) in COMBOS
    with pytest.raises(SystemExit):
        main(["--combos", "jpg", "--agents", "fixed"])  # refused before any photo is read


def test_agents_doc_tables_are_generated_from_the_records():
    """docs/agents.md's result tables (wall times included) are regenerated from the records."""
    from benchmarks.gen_docs import DOCS, RECORDS_BLOCK, with_record_tables

    text = (DOCS / "agents.md").read_text()
    assert len(RECORDS_BLOCK.findall(text)) >= 4
    assert text == with_record_tables(text), "run: python -m benchmarks.gen_docs"
    assert "| wall s" not in RECORDS_BLOCK.sub("", text)  # no hand-copied wall-time table left


def test_agents_doc_vision_tables_are_generated_from_the_results():
    """docs/agents.md's vision-pretraining tables come from the committed results JSON."""
    from benchmarks.gen_docs import DOCS, VISION_BLOCK, with_vision_tables

    text = (DOCS / "agents.md").read_text()
    assert len(VISION_BLOCK.findall(text)) == 1
    assert text == with_vision_tables(text), "run: python -m benchmarks.gen_docs"
    assert "25/128 = 19.5%" in VISION_BLOCK.search(text).group(2)  # type: ignore[union-attr]


def test_plot_colours_stay_distinct_past_ten_agents():
    """An 11th agent used to repeat the first one's colour (matplotlib's 10-colour cycle)."""
    from benchmarks.leaderboard import agent_colour

    for count in (3, 10, 11, 20):
        colours = [agent_colour(i, count) for i in range(count)]
        assert len(set(colours)) == count


def test_restore_check_runs_tir_restore_with_the_agents_options(tmp_path: Path) -> None:
    from benchmarks.restore_check import check_photo
    from tir_env import data

    photos = data.bundled("test")
    clean = np.ascontiguousarray(photos.load(photos.ids[0])[:96, :128])  # a real photo's corner
    row = check_photo("mine", clean, "exhaustive", tmp_path, ["exhaustive.judge_whole_alone=false"])
    assert row["image"] == "mine" and row["clean"]["psnr_in"] is None
    assert row["noisy"]["psnr_in"] < 30 and np.isfinite(row["noisy"]["psnr_out"])
    with pytest.raises(RuntimeError, match="exited 2"):
        check_photo("mine", clean, "exhaustive", tmp_path, ["exhaustive.bogus=1"])


def test_restore_check_mild_copies_are_less_noisy_and_leave_the_others_as_they_were(
    tmp_path: Path,
) -> None:
    from benchmarks.restore_check import MILD_SIGMAS, check_photo
    from tir_env import data

    photos = data.bundled("test")
    clean = np.ascontiguousarray(photos.load(photos.ids[0])[:96, :128])
    row = check_photo("mine", clean, "fixed", tmp_path, low_light=True, mild=True)
    plain = check_photo("mine", clean, "fixed", tmp_path, low_light=True)
    assert row["noisy"] == plain["noisy"] and row["low_light"] == plain["low_light"]
    mild, faint = (row[kind]["psnr_in"] for kind in MILD_SIGMAS)
    assert row["noisy"]["psnr_in"] < mild < faint  # sigma 20, then 10, then 5


def test_restore_check_phone_copy_is_noisy_then_a_jpeg(tmp_path: Path) -> None:
    from benchmarks.restore_check import PHONE_QUALITY, _psnr, check_photo, everyday_jpeg
    from tir_env import data

    photos = data.bundled("test")
    clean = np.ascontiguousarray(photos.load(photos.ids[0])[:96, :128])
    row = check_photo("mine", clean, "fixed", tmp_path, phone=True)
    jpeg_only = everyday_jpeg(clean, PHONE_QUALITY)
    assert row["phone"]["psnr_in"] < _psnr(jpeg_only, clean)  # the noise is there too
    assert row["noisy"]["psnr_in"] < row["phone"]["psnr_in"]  # less than sigma 20's


def test_restore_check_rain_copy_has_each_photos_own_streaks(tmp_path: Path) -> None:
    from benchmarks.restore_check import check_photo, rainy
    from tir_env import data

    photos = data.bundled("test")
    clean = np.ascontiguousarray(photos.load(photos.ids[0])[:96, :128])
    first, again, other = rainy(clean, "a"), rainy(clean, "a"), rainy(clean, "b")
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert (first.astype(int) >= clean).all()  # streaks add light, they take none away
    row = check_photo("mine", clean, "fixed", tmp_path, rain=True)
    assert row["rain"]["psnr_in"] < 35 and np.isfinite(row["rain"]["psnr_out"])


def test_restore_check_low_light_copy_is_darkened_then_noisy(tmp_path: Path) -> None:
    from benchmarks.restore_check import check_photo
    from tir_env import data

    photos = data.bundled("test")
    clean = np.ascontiguousarray(photos.load(photos.ids[0])[:96, :128])
    row = check_photo("mine", clean, "fixed", tmp_path, low_light=True)
    plain = check_photo("mine", clean, "fixed", tmp_path, dark=True)
    assert row["noisy"] == plain["noisy"]  # the noisy copy is drawn as before
    # darker and noisier than the darkened copy alone
    assert row["low_light"]["psnr_in"] < plain["dark"]["psnr_in"]
    assert np.isfinite(row["low_light"]["psnr_out"])


def test_restore_check_jpeg_copy_is_an_everyday_jpeg(tmp_path: Path) -> None:
    from benchmarks.restore_check import check_photo, everyday_jpeg
    from tir_env import data

    photos = data.bundled("test")
    clean = np.ascontiguousarray(photos.load(photos.ids[0])[:96, :128])
    jpeg = everyday_jpeg(clean)
    assert jpeg.shape == clean.shape and jpeg.dtype == np.uint8 and not np.array_equal(jpeg, clean)
    row = check_photo("mine", clean, "fixed", tmp_path, jpeg=True)
    assert 28 < row["jpeg"]["psnr_in"] < 60  # lightly compressed, not the protocol's JPEG
    assert "dark" not in row and "low_light" not in row


def test_restore_check_commands_quote_what_a_shell_would_expand() -> None:
    import argparse

    from benchmarks.restore_check import SIDE, _command

    args = argparse.Namespace(
        agent="fixed", agent_arg=[], images="corpus:train@4[0/2]", side=SIDE, dark=False,
        low_light=False, jpeg=False, mild=False, phone=False, rain=True, label="a b",
        json=Path("out.json"),
    )  # fmt: skip
    assert _command(args, given_json=True) == (
        "python -m benchmarks.restore_check --images 'corpus:train@4[0/2]' --rain "
        "--label 'a b' --json out.json"
    )


def test_restore_check_compare_lists_the_photos_that_end_differently(tmp_path: Path) -> None:
    import json

    from benchmarks.restore_check import compare_markdown

    def report(name: str, args: list[str], noisy_out: float, label: str = "") -> Path:
        row = {
            "image": "p/one",
            "clean": {"psnr_in": None, "psnr_out": 80.0, "calls": []},
            "noisy": {"psnr_in": 22.0, "psnr_out": noisy_out, "calls": ["dct_denoise(step=2,"]},
        }
        path = tmp_path / f"{name}.json"
        report = {"command": f"python -m x {name}", "agent": "fixed", "agent_args": args}
        if label:
            report["label"] = label
        path.write_text(json.dumps({**report, "images": "corpus:val", "rows": [row]}))
        return path

    lines = compare_markdown([report("a", [], 12.0), report("b", ["fixed.whole_adds=dark"], 32.0)])
    text = "\n".join(lines)
    assert "| noisy | 22.00 | 12.00 | 32.00 |" in text
    assert "| clean | | 0 changed | 0 changed |" in text
    assert "- `p/one`, noisy: 12.00 dB (dct_denoise); 32.00 dB (dct_denoise)" in text
    same = compare_markdown([report("a", [], 12.0), report("c", ["x"], 12.05)])
    assert same[-1] == "No photo ends differently."
    assert compare_markdown([report("a", [], 12.0)])[-1] == (
        "Every clean photo and JPEG copy is left as it was."
    )
    # reports of the same options from different code are told apart by their labels
    labelled = compare_markdown([report("d", [], 12.0, "before"), report("e", [], 32.0, "after")])
    assert labelled[0].startswith("before: `python -m x d`; after: `python -m x e`: 1 photos")
    assert "| copy | input | before | after |" in labelled


@pytest.mark.parametrize(("text", "side"), [("1024", 1024), ("0", 0), ("native", "native")])
def test_restore_check_side_takes_pixels_zero_or_native(text: str, side: int | str) -> None:
    from benchmarks.restore_check import _side

    assert _side(text) == side


@pytest.mark.parametrize("text", ["-1", "big", "", "1e3"])
def test_restore_check_side_refuses_anything_else(text: str) -> None:
    import argparse

    from benchmarks.restore_check import _side

    with pytest.raises(argparse.ArgumentTypeError, match="long side"):
        _side(text)


def test_restore_check_scores_a_super_resolved_result_at_the_photos_size() -> None:
    from benchmarks.restore_check import _psnr
    from tir_env.images import resize_u8

    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    bigger = resize_u8(clean, (96, 128))  # what an x4 call on a full-size photo writes
    assert _psnr(bigger, clean) == _psnr(resize_u8(bigger, (24, 32)), clean)
    assert _psnr(clean, clean) > 60


def test_weights_from_switches_the_learned_weights_and_restores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from benchmarks.gain_newval import weights_from
    from benchmarks.learned_val import decisions
    from tir_env.tools.learned.weights import WEIGHTS_ENV, weights_dir

    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    shipped = weights_dir()
    with weights_from(tmp_path):
        assert weights_dir() == tmp_path
    assert WEIGHTS_ENV not in os.environ and weights_dir() == shipped
    monkeypatch.setenv(WEIGHTS_ENV, str(shipped))
    with pytest.raises(RuntimeError), weights_from(tmp_path):
        raise RuntimeError("a failure inside the block")
    assert os.environ[WEIGHTS_ENV] == str(shipped)
    # a retrained network replaces the shipped one only with 0.1 dB to spare
    rows = {"a": {"old": 20.0, "new": 20.1}, "b": {"old": 20.0, "new": 20.05}}
    assert decisions(rows, "old", "new") == {"a": True, "b": False}


def test_agent_specs_split_a_list_where_an_agent_name_starts() -> None:
    from benchmarks.perception_cv import agent_specs

    assert agent_specs("fixed,exhaustive:learned=dehazing,deraining,greedy") == [
        "fixed",
        "exhaustive:learned=dehazing,deraining",
        "greedy",
    ]
    assert agent_specs("exhaustive:learned=,greedy:learned=") == [
        "exhaustive:learned=",
        "greedy:learned=",
    ]
    assert agent_specs("gredy,fixed") == ["gredy", "fixed"]  # unknown: left to make_agent
