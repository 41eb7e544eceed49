"""benchmarks.train_bright_veto: replaying an episode with and without its brightening."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _env():
    from tir_env.env import TIREnv
    from tir_env.tools.pool import SyncToolPool

    return TIREnv(images="test", pool=SyncToolPool(), patch_size=32, obs_size=32, metrics=("psnr",))


def _record(actions: list) -> dict:
    from tir_env import data

    image = data.source("test").ids[0]
    return {"image": image, "degradations": ["dark", "noise"], "seed": 3, "actions": actions}


def test_a_replay_scores_the_episode_with_and_without_its_brightening() -> None:
    import torch

    from agents.ppo import bright_veto
    from agents.ppo.guard import input_reading
    from benchmarks.train_bright_veto import replay
    from tir_env import perception
    from tir_env.tools.base import make_tool

    if not perception.available():
        pytest.skip("perception weights are not installed")
    torch.set_num_threads(1)
    env = _env()
    denoise = {"tool": "dct_denoise", "params": {}}
    brighten = {"tool": "gamma_correction", "params": {"gamma": 1.5}}
    assert replay(env, _record([denoise, None])) is None  # no brightening: nothing to learn
    row, with_, without = replay(env, _record([denoise, brighten, None]))
    # the same episode by hand: the tools on the input, scored against the clean crop
    env.reset(seed=3, options={"image_id": _record([])["image"], "degradations": ("dark", "noise")})
    denoised = make_tool("dct_denoise")(env.current_batch())
    brightened = make_tool("gamma_correction")(denoised, {"gamma": 1.5})
    assert without == pytest.approx(env.score(denoised, ["psnr"])["psnr"], abs=1e-4)
    assert with_ == pytest.approx(env.score(brightened, ["psnr"])["psnr"], abs=1e-4)
    probs = input_reading(env).probs
    expected = bright_veto.features(probs, denoised, env.target_size(), {"denoising"}, 1)
    np.testing.assert_allclose(row, expected, atol=1e-5)


def test_records_calling_a_tool_outside_the_suites_toolbox_replay() -> None:
    """``ppo`` adds ``learned_dehazing`` to its env on crops; its records replay with it."""
    import torch

    from benchmarks.train_bright_veto import replayed
    from tir_env import perception
    from tir_env.tools.learned.weights import weights_dir

    if not perception.available() or not (weights_dir() / "learned_dehazing.safetensors").is_file():
        pytest.skip("perception or learned dehazing weights are not installed")
    torch.set_num_threads(1)
    dehaze = {"tool": "learned_dehazing", "params": {}}
    brighten = {"tool": "gamma_correction", "params": {"gamma": 1.5}}
    record = {**_record([dehaze, brighten, None]), "suite": "mio-a"}
    record["degradations"] = ["dark", "haze"]
    data = replayed([record], "test")
    assert data["rows"].shape[0] == 1
    assert np.isfinite(data["with"]).all() and data["with"][0] != data["without"][0]


def test_cross_validation_finds_a_signal_that_is_there() -> None:
    from benchmarks.train_bright_veto import THRESHOLDS, cross_validated

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(400, 5))
    gain = np.where(rows[:, 0] > 0, 3.0, -5.0)  # brightening pays exactly where feature 0 > 0
    data = {
        "rows": rows,
        "with": gain,
        "without": np.zeros(400),
        "photos": np.repeat(np.arange(20), 20).astype(str),
    }
    out = cross_validated(data, folds=5, seed=0)
    assert out["roc_auc"] > 0.95
    saved = out["saved_db_per_brightening_episode"]
    assert set(saved) == {str(t) for t in THRESHOLDS} and saved["0.5"] > 2.0  # ~5 dB x half


def test_the_trainer_refuses_to_overwrite_or_write_another_format(tmp_path: Path) -> None:
    from benchmarks.train_bright_veto import main

    taken = tmp_path / "v.safetensors"
    taken.write_bytes(b"keep me")
    for out in (taken, tmp_path / "v.pt"):
        with pytest.raises(SystemExit):
            main(["--cache", str(tmp_path), "--out", str(out)])
    assert taken.read_bytes() == b"keep me"


def test_the_shipped_veto_loads_and_a_corrupt_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.ppo import bright_veto
    from tir_env.errors import CheckpointError, WeightsNotFoundError

    if not bright_veto.path().is_file():
        pytest.skip("the veto's weights are not installed")
    row = np.zeros(len(bright_veto.feature_names(reader=bright_veto.reads_reader())))
    assert 0.0 <= bright_veto.pays(row) <= 1.0
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsNotFoundError):
        bright_veto.load()
    (tmp_path / "bright_veto.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        bright_veto.load()
