"""Fault injection for benchmark and training runs: bad images, interrupted, repeated and
mismatched runs, cut-short checkpoints (issue 19, "Benchmarks and training runs").

Each docstring is one line, ``<input or fault> | <behaviour>`` (docs/reliability.md is made
from them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.evaluate import read_jsonl, resume_records
from benchmarks.suites import SUITES, Suite
from tir_env.errors import (
    CheckpointError,
    RunExistsError,
    RunMismatchError,
    SkippedWarning,
)
from tir_env.images import save_image

#: One combination, one tool call, PSNR only: a bench episode in well under a second.
TINY_SUITE = Suite(
    "tiny", "1", (("noise",), ("dark",)), patch_size=32, max_steps=1, metrics=("psnr",)
)


@pytest.fixture(autouse=True)
def tiny_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUITES, "tiny", TINY_SUITE)


def _photo(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)


def _folder(root: Path, bad: bool = True) -> Path:
    """``a.png`` and ``c.png`` readable; ``b.jpg`` a JPEG cut in half (when ``bad``)."""
    root.mkdir(parents=True, exist_ok=True)
    save_image(root / "a.png", _photo(0))
    save_image(root / "c.png", _photo(2))
    if bad:
        save_image(root / "b.jpg", _photo(1))
        data = (root / "b.jpg").read_bytes()
        (root / "b.jpg").write_bytes(data[: len(data) // 2])
    return root


def _bench(images: Path, out: Path, *extra: str) -> int:
    argv = ["bench", "tiny", "--agents", "random", "--images", str(images), "--out", str(out)]
    return main([*argv, *extra])


def test_bench_skips_a_truncated_jpeg(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """tir bench --images DIR with one truncated JPEG | its episodes are skipped with a SkippedWarning and counted in the summary; the rest are recorded, exit 0"""  # noqa: E501
    images, out = _folder(tmp_path / "photos"), tmp_path / "out"
    with pytest.warns(SkippedWarning, match="b.jpg"):
        assert _bench(images, out) == 0
    records = read_jsonl(out / "tiny__random.jsonl")
    assert sorted(r["image"] for r in records) == ["a.png", "a.png", "c.png", "c.png"]
    text = capsys.readouterr().out
    assert "2 skipped (unreadable images: b.jpg)" in text
    assert "skipped 2 episodes" in text


def test_bench_strict_stops_and_keeps_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """tir bench --strict with one truncated JPEG | stops at that image with exit 2; the episodes recorded before it are kept"""  # noqa: E501
    images, out = _folder(tmp_path / "photos"), tmp_path / "out"
    assert _bench(images, out, "--strict") == 2
    assert "truncated" in capsys.readouterr().err
    records = read_jsonl(out / "tiny__random.jsonl")
    assert [r["image"] for r in records] == ["a.png", "a.png"]  # a.png comes before b.jpg


def test_bench_interrupted_keeps_records_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """tir bench killed (KeyboardInterrupt) during its third episode | the two finished episodes are on disk; the re-run runs only the missing ones"""  # noqa: E501
    import benchmarks.evaluate as evaluate

    images, out = _folder(tmp_path / "photos", bad=False), tmp_path / "out"
    real, calls = evaluate.rollout, []

    def interrupted(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "rollout", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _bench(images, out)
    assert len(read_jsonl(out / "tiny__random.jsonl")) == 2
    calls.clear()
    assert _bench(images, out) == 0
    records = read_jsonl(out / "tiny__random.jsonl")
    assert len(calls) == 2 and len(records) == 4
    assert len({(r["image"], r["seed"]) for r in records}) == 4


def test_bench_rerun_with_smaller_limit_keeps_records(tmp_path: Path):
    """tir bench re-run into the same --out with --limit 1 | no episode runs again and the earlier records stay (the JSONL is not truncated)"""  # noqa: E501
    images, out = _folder(tmp_path / "photos", bad=False), tmp_path / "out"
    assert _bench(images, out) == 0
    before = (out / "tiny__random.jsonl").read_bytes()
    assert len(read_jsonl(out / "tiny__random.jsonl")) == 4
    assert _bench(images, out, "--limit", "1") == 0
    assert (out / "tiny__random.jsonl").read_bytes() == before


def test_bench_rerun_with_other_config_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """tir bench re-run into the same --out with another suite version, agent option or images folder | refused before any episode with RunMismatchError (exit 2); the records are untouched"""  # noqa: E501
    images, out = _folder(tmp_path / "photos", bad=False), tmp_path / "out"
    assert _bench(images, out) == 0
    path = out / "tiny__random.jsonl"
    before = path.read_bytes()
    monkeypatch.setitem(SUITES, "tiny", Suite("tiny", "2", TINY_SUITE.combos, patch_size=32))
    assert _bench(images, out) == 2
    assert "suite_version" in capsys.readouterr().err
    monkeypatch.setitem(SUITES, "tiny", TINY_SUITE)
    assert _bench(images, out, "--agent-arg", "random.seed=3") == 2
    assert "agent_kwargs" in capsys.readouterr().err
    other = _folder(tmp_path / "other", bad=False)
    assert _bench(other, out) == 2
    assert "images" in capsys.readouterr().err
    assert path.read_bytes() == before
    run = json.loads(before.splitlines()[0])["run"]
    with pytest.raises(RunMismatchError, match="agent"):
        resume_records(path, {**run, "agent": "oracle"})


def test_bench_other_agent_on_other_images_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """tir bench of a second agent into an --out whose records were made on other images | refused with RunMismatchError (exit 2): one table never compares agents on different inputs"""  # noqa: E501
    out = tmp_path / "out"
    assert _bench(_folder(tmp_path / "photos", bad=False), out) == 0
    other = _folder(tmp_path / "other", bad=False)
    argv = ["bench", "tiny", "--agents", "oracle", "--images", str(other), "--out", str(out)]
    assert main(argv) == 2
    assert "other episodes" in capsys.readouterr().err
    assert not (out / "tiny__oracle.jsonl").exists()


def test_records_cut_short_are_dropped_on_resume(tmp_path: Path):
    """a JSONL whose last record was cut short by a kill | read_jsonl leaves it out with a SkippedWarning and a resume appends on a clean line"""  # noqa: E501
    images, out = _folder(tmp_path / "photos", bad=False), tmp_path / "out"
    assert _bench(images, out, "--limit", "1") == 0
    path = out / "tiny__random.jsonl"
    with path.open("a") as fh:
        fh.write('{"suite": "tiny", "ima')
    with pytest.warns(SkippedWarning, match="cut short"):
        assert _bench(images, out) == 0
    assert len(read_jsonl(path)) == 4


def test_leaderboard_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """tir leaderboard runs/typo (no such folder) | NoRecordsError message and exit 2; the folder is not created"""  # noqa: E501
    typo = tmp_path / "typo"
    assert main(["leaderboard", str(typo)]) == 2
    assert "not found" in capsys.readouterr().err
    assert not typo.exists()


def test_leaderboard_of_a_folder_without_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """tir leaderboard DIR with no *.jsonl records | NoRecordsError message and exit 2; no empty table is written"""  # noqa: E501
    assert main(["leaderboard", str(tmp_path)]) == 2
    assert "no benchmark records" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_leaderboard_crash_while_writing_keeps_old_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """a crash while the leaderboard writes its CSV | the earlier CSV and Markdown stay whole (written by temp + rename); no temp file is left"""  # noqa: E501
    import csv

    images, out = _folder(tmp_path / "photos", bad=False), tmp_path / "out"
    assert _bench(images, out) == 0
    tables = {p: p.read_bytes() for p in (out / "tiny.csv", out / "leaderboard.md")}

    def crash(self, rows):
        raise OSError("disk full")

    monkeypatch.setattr(csv.DictWriter, "writerows", crash)
    with pytest.raises(OSError, match="disk full"):
        main(["leaderboard", str(out)])
    assert {p: p.read_bytes() for p in tables} == tables
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------------------- training runs

#: A few hundred steps of the PPO recipe on 32 px patches (as tests/test_ppo.py).
TINY_PPO = [
    "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1",
    "--patch-size", "32", "--obs-size", "32", "--max-steps", "2", "--history-len", "2",
    "--channels", "8", "--history-dim", "8", "--net-arch", "8",
    "--checkpoint-every", "64", "--no-verbose", "--pool-workers", "1",
    "--perception-samples", "8", "--perception-epochs", "1",
]  # fmt: skip


def _train(out: Path, steps: int, *extra: str):
    from agents.ppo.train import main as train

    return train(["--out", str(out), "--total-timesteps", str(steps), *TINY_PPO, *extra])


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 128-step run: checkpoints at 64 and 128, final.zip, config.json."""
    out = tmp_path_factory.mktemp("ppo") / "run"
    _train(out, 128)
    return out


@pytest.fixture
def run_copy(ppo_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ppo_run, tmp_path / "run"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_ppo_resume_skips_a_checkpoint_cut_short(run_copy: Path):
    """tir train ppo --resume when the newest checkpoint zip is cut short | falls back to the newest good checkpoint with a SkippedWarning and trains on"""  # noqa: E501
    newest = run_copy / "checkpoints" / "ppo_128_steps.zip"
    newest.write_bytes(newest.read_bytes()[:1000])
    with pytest.warns(SkippedWarning, match="ppo_128_steps.zip"):
        model = _train(run_copy, 192, "--resume")
    assert model.num_timesteps == 192
    assert (run_copy / "logs" / "progress_00000064.csv").is_file()  # resumed at step 64


def test_ppo_resume_with_only_damaged_checkpoints(run_copy: Path):
    """tir train ppo --resume when every checkpoint is damaged | CheckpointError naming the folder; nothing is overwritten"""  # noqa: E501
    for path in (run_copy / "checkpoints").glob("*.zip"):
        path.write_bytes(b"PK\x03\x04 cut")
    before = _snapshot(run_copy)
    with pytest.warns(SkippedWarning), pytest.raises(CheckpointError, match="no usable"):
        _train(run_copy, 192, "--resume")
    assert _snapshot(run_copy) == before


def test_ppo_learning_curve_has_no_repeated_steps_after_resume(run_copy: Path):
    """tir train ppo --resume from an earlier checkpoint than the logs reached | the learning curve lists every step once"""  # noqa: E501
    from benchmarks.ppo_curve import read_curve

    (run_copy / "checkpoints" / "ppo_128_steps.zip").unlink()
    (run_copy / "final.zip").unlink()
    _train(run_copy, 192, "--resume")  # from step 64: steps 96 and 128 are logged again
    steps = [r["timesteps"] for r in read_curve(run_copy)]
    assert steps == sorted(set(steps)) and steps[-1] == 192


def test_ppo_resume_with_another_config_is_refused(run_copy: Path):
    """tir train ppo --resume with another config (--n-envs, --seed) | RunMismatchError before anything is written; config.json and checkpoints untouched"""  # noqa: E501
    before = _snapshot(run_copy)
    with pytest.raises(RunMismatchError, match="n_envs: 2 -> 3"):
        _train(run_copy, 192, "--resume", "--n-envs", "3")
    with pytest.raises(RunMismatchError, match="seed"):
        _train(run_copy, 192, "--resume", "--seed", "1")
    assert _snapshot(run_copy) == before


def test_ppo_rerun_without_resume_is_refused(run_copy: Path):
    """tir train ppo into a folder holding a previous run, without --resume | RunExistsError before any work; final.zip, checkpoints and config.json untouched"""  # noqa: E501
    before = _snapshot(run_copy)
    with pytest.raises(RunExistsError, match="--resume"):
        _train(run_copy, 64)
    assert _snapshot(run_copy) == before


def test_ppo_checkpoint_save_killed_leaves_no_partial_file(
    run_copy: Path, monkeypatch: pytest.MonkeyPatch
):
    """a kill while a PPO checkpoint is being saved | no partial ppo_N_steps.zip is left; resume uses the previous one"""  # noqa: E501
    from stable_baselines3 import PPO

    from agents.ppo.policy import last_checkpoint
    from agents.ppo.train import Checkpoint

    model = PPO.load(run_copy / "final.zip", print_system_info=False)
    model.num_timesteps = 192

    def killed(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(PPO, "save", killed)
    checkpoint = Checkpoint(run_copy / "checkpoints", every=64)
    checkpoint.init_callback(model)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save()
    assert last_checkpoint(run_copy / "checkpoints").name == "ppo_128_steps.zip"
    assert not [p for p in (run_copy / "checkpoints").iterdir() if p.name.startswith(".")]


def _no_work(*args, **kwargs):
    raise RuntimeError("the recipe started working in a folder it should have refused")


def test_vlm_sft_into_a_used_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """tir train sft --out DIR where DIR holds an earlier SFT run | RunExistsError before any work; the earlier adapter and log are untouched"""  # noqa: E501
    from agents.vlm import sft

    monkeypatch.setattr(sft, "load_vlm", _no_work)
    monkeypatch.setattr(sft, "build_tiny_for_tools", _no_work)
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_model.safetensors").write_bytes(b"earlier")
    (tmp_path / "log.jsonl").write_text('{"step": 0}\n')
    before = _snapshot(tmp_path)
    with pytest.raises(RunExistsError, match="adapter"):
        sft.main(sft.SFTConfig(out=str(tmp_path)))
    assert _snapshot(tmp_path) == before


def test_vlm_grpo_rerun_without_resume_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """tir train grpo --out DIR where DIR holds an earlier run, without --resume | RunExistsError before any work; log.jsonl and the checkpoint are untouched"""  # noqa: E501
    from agents.vlm import grpo

    monkeypatch.setattr(grpo, "load_vlm", _no_work)
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text('{"step": 2}\n')
    (tmp_path / "log.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    before = _snapshot(tmp_path)
    with pytest.raises(RunExistsError, match="--resume"):
        grpo.main(grpo.GRPOConfig(out=str(tmp_path)))
    assert _snapshot(tmp_path) == before


def test_tir_train_ppo_refusal_is_a_message(run_copy: Path, capsys: pytest.CaptureFixture[str]):
    """tir train ppo --out DIR (DIR holds a run, no --resume) on the command line | RunExistsError's message on stderr and exit 2, no traceback"""  # noqa: E501
    assert main(["train", "ppo", "--out", str(run_copy), *TINY_PPO]) == 2
    assert "--resume" in capsys.readouterr().err
