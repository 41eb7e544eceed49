"""benchmarks.rescore: replaying bench records reproduces them; a stale record is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from benchmarks import rescore
from benchmarks.cli import main
from benchmarks.evaluate import read_jsonl
from benchmarks.leaderboard import fitted_text
from tir_env.metrics import metric_names
from tir_env.metrics.niqe import NIQE_PARAMS, fit_photos

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def bench_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Records of two agents (one calls tools, one is told the truth) on two mio-a episodes."""
    out = tmp_path_factory.mktemp("records")
    assert (
        main(["bench", "mio-a", "--agents", "random,oracle", "--limit", "2", "--out", str(out)])
        == 0
    )
    return out


def copy_folder(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for path in src.glob("*"):
        if path.is_file():
            (dst / path.name).write_bytes(path.read_bytes())
    return dst


def test_records_state_the_niqe_fit(bench_folder: Path):
    records = read_jsonl(bench_folder / "mio-a__oracle.jsonl")
    assert {r["niqe_fit"] for r in records} == {fit_photos()}


def test_replay_gives_the_recorded_metrics(bench_folder: Path, tmp_path: Path):
    folder = copy_folder(bench_folder, tmp_path / "copy")
    before = {p.name: read_jsonl(p) for p in folder.glob("*.jsonl")}
    assert rescore.main([str(folder)]) == 0
    for name, old in before.items():
        new = read_jsonl(folder / name)
        assert [r["actions"] for r in new] == [r["actions"] for r in old]
        for a, b in zip(new, old, strict=True):
            for key in ("metrics_input", "metrics_output"):
                assert a[key]["niqe"] == pytest.approx(b[key]["niqe"], abs=1e-9)
                assert a[key]["psnr"] == b[key]["psnr"]


def test_a_record_that_does_not_replay_leaves_its_file_unchanged(
    bench_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    folder = copy_folder(bench_folder, tmp_path / "stale")
    path = folder / "mio-a__random.jsonl"
    records = read_jsonl(path)
    records[1]["metrics_output"]["psnr"] += 1.0  # as if the tools had changed since
    records[1]["metrics_output"]["niqe"] = -1.0
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    text = path.read_text()
    assert rescore.main([str(folder)]) == 1
    assert path.read_text() == text
    err = capsys.readouterr().err
    assert "mio-a__random.jsonl: 1 problem(s), left unchanged" in err
    assert "replayed PSNR" in err
    with pytest.raises(rescore.ReplayMismatchError, match="recorded"):
        report_env = rescore.replay_env(records[1]["run"], rescore.called_tools(records))
        rescore.rescore_record(report_env, records[1], ["niqe"])


def test_check_writes_nothing(bench_folder: Path, tmp_path: Path):
    folder = copy_folder(bench_folder, tmp_path / "check")
    texts = {p: p.read_text() for p in folder.glob("*.jsonl")}
    assert rescore.main([str(folder), "--check"]) == 0
    assert {p: p.read_text() for p in texts} == texts


def test_missing_path_is_a_named_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no record file or folder"):
        list(rescore.record_files([tmp_path / "nowhere"]))


def test_niqe_column_says_which_photos_the_fit_used():
    def niqe_text(records):
        return fitted_text("niqe", "NIQE", records)

    assert niqe_text([{}]) == "NIQE, model fit on the bundled train photos"
    both = niqe_text([{}, {"niqe_fit": "corpus:train@3"}])
    assert both == (
        "NIQE, model fit on the corpus' train photos (releases 1-3) / the bundled train photos"
    )
    assert niqe_text([{"niqe_fit": "my/folder"}]) == "NIQE, model fit on `my/folder`"
    assert fitted_text("other", "Other", [{}]) == "Other, model fit on `?`"  # no legacy fit


@pytest.mark.parametrize("name", metric_names())
def test_records_stamp_the_fit_of_every_fitted_metric(name: str):
    from benchmarks.evaluate import fit_stamps
    from tir_env.metrics import metric_info

    stamps = fit_stamps([name])
    fitted = metric_info(name).fit is not None
    assert stamps == ({f"{name}_fit": metric_info(name).fit()} if fitted else {})
    if name in ("niqe", "niqe_pyiqa"):  # the fit NIQE's scale depends on is stated
        assert fitted and stamps[f"{name}_fit"] == "corpus:train@3"


def test_fit_photos_reads_the_recipe(tmp_path: Path):
    import numpy as np
    import scipy.io

    assert fit_photos(NIQE_PARAMS) in {"train", "corpus:train@3"}
    path = tmp_path / "fit.mat"
    scipy.io.savemat(path, {"mu_prisparam": np.zeros((1, 36))})
    assert fit_photos(path) == "unknown"
    scipy.io.savemat(path, {"recipe": np.array(["fit_niqe.py --split corpus:val --stride 48"])})
    assert fit_photos(path) == "corpus:val"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(["seed", "image", "degradations", "actions", "run", "metrics_output"]),
    value=st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers())),
)
@example(key="seed", value=-1)  # gymnasium's own error, not a TIRError
@example(key="metrics_output", value=None)
def test_a_malformed_record_is_named_and_its_file_kept(
    bench_folder: Path, tmp_path_factory: pytest.TempPathFactory, key: str, value: object
):
    folder = copy_folder(bench_folder, tmp_path_factory.mktemp("bad") / "c")
    path = folder / "mio-a__random.jsonl"
    records = read_jsonl(path)
    records[0][key] = value
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    text = path.read_text()
    report = rescore.rescore_file(path, ["niqe"], {})
    assert path.read_text() == text
    assert report.problems and not report.written


LEADERBOARD = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "leaderboard"


@pytest.mark.parametrize("suite", ["mio-a", "mio-b", "mio-c"])
def test_the_committed_leaderboard_records_replay_with_this_code(suite: str) -> None:
    """Every committed crop record file's first photo replays to its recorded PSNR.

    A tool whose output changed makes its recorded calls end elsewhere: the records must then
    be remade (``python -m benchmarks.reproduce SUITE --agents ... --remake``), as the
    blind deblurring's x4 handling once left them stale without a test saying so.
    """
    files = sorted(LEADERBOARD.glob(f"{suite}__*.jsonl"))
    assert files
    for path in files:
        records = read_jsonl(path)
        first = [r for r in records if r["image"] == records[0]["image"]]
        env = rescore.replay_env(first[0]["run"], rescore.called_tools(first))
        try:
            for record in first:
                psnr, _, _ = rescore.replay(env, record)
                recorded = record["metrics_output"]["psnr"]
                assert psnr == pytest.approx(recorded, abs=rescore.ATOL_DB), (path.name, record)
        finally:
            env.close()
