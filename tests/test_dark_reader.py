"""agents.ppo.dark_reader, its trainer, and the readers of it (ppo's guard, the veto)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# the learned tools register from the installed weights when first imported: before any test
# here points TIR_LEARNED_WEIGHTS at a folder of its own
import tir_env.tools.learned  # noqa: F401


def _probs(**given: float) -> dict[str, float]:
    from tir_env.perception import AGENTICIR_TYPES

    return {t: given.get(t, 0.1) for t in AGENTICIR_TYPES}


def _trees_file(folder: Path, name: str, n_features: int, signal: int = 0) -> Path:
    """A tiny tree ensemble whose logit rises with feature ``signal``, saved as ``name``."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from benchmarks.train_tirqa_trees import exported
    from tir_env.tools.learned.weights import save_state

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, n_features))
    model = HistGradientBoostingClassifier(max_depth=2, max_iter=20).fit(rows, rows[:, signal] > 0)
    path = folder / f"{name}.safetensors"
    save_state(exported(model, rows).tensors(), path, {"name": name})
    return path


def test_features_are_the_logits_of_the_eight_readings_in_protocol_order() -> None:
    from agents.ppo import dark_reader
    from tir_env.perception import AGENTICIR_TYPES

    row = dark_reader.features(_probs(dark=0.5, noise=1.0))
    assert row.shape == (8,) and dark_reader.feature_names()[AGENTICIR_TYPES.index("dark")]
    assert row[AGENTICIR_TYPES.index("dark")] == pytest.approx(0.0)
    assert np.isfinite(row).all()  # 1.0 is clipped before the logit


def test_the_reader_loads_reads_and_names_a_missing_stale_or_corrupt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.ppo import dark_reader
    from tir_env.errors import CheckpointError, WeightsNotFoundError
    from tir_env.perception import AGENTICIR_TYPES
    from tir_env.quality_trees import read_ensemble

    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsNotFoundError):
        dark_reader.load()
    (tmp_path / "dark_reader.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        dark_reader.load()
    _trees_file(tmp_path, "dark_reader", 5)  # fitted on other features
    with pytest.raises(CheckpointError, match="reads 5 features"):
        dark_reader.load()
    _trees_file(tmp_path, "dark_reader", 8, signal=AGENTICIR_TYPES.index("dark"))
    read_ensemble.cache_clear()  # the same path, a new file
    assert dark_reader.darkened(_probs(dark=0.99)) > 0.5 > dark_reader.darkened(_probs(dark=0.01))


@pytest.mark.parametrize("trainer", ["train_dark_reader", "train_suite_reader"])
def test_the_trainer_refuses_to_overwrite_or_write_another_format(
    tmp_path: Path, trainer: str
) -> None:
    import importlib

    main = importlib.import_module(f"benchmarks.{trainer}").main
    taken = tmp_path / "v.safetensors"
    taken.write_bytes(b"keep me")
    for out in (taken, tmp_path / "v.pt"):
        with pytest.raises(SystemExit):
            main(["--out", str(out)])
    assert taken.read_bytes() == b"keep me"


def test_cross_validation_finds_a_signal_and_reports_perceptions_own() -> None:
    from benchmarks.train_dark_reader import cross_validated
    from tir_env.perception import AGENTICIR_TYPES

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(400, 8))
    labels = rows[:, AGENTICIR_TYPES.index("noise")] > 0  # another reading says it
    data = {"rows": rows, "labels": labels, "photos": np.repeat(np.arange(20), 20).astype(str)}
    out = cross_validated(data, folds=5, seed=0)
    assert out["roc_auc"] > 0.9 and 0.35 < out["perception_roc_auc"] < 0.65


def test_the_trainer_reads_episodes_as_the_agent_does() -> None:
    import torch

    from agents.ppo import dark_reader
    from benchmarks import train_dark_reader
    from tir_env import perception

    if not perception.available():
        pytest.skip("perception weights are not installed")
    torch.set_num_threads(1)
    out = train_dark_reader._read_round(("test", 0, ("mio-a",)))
    labels = [row[perception.AGENTICIR_TYPES.index("dark")] for row in out["types"]]
    n = len(labels)
    assert n > 0 and len(out["rows"]) == n == len(out["photos"])
    assert any(labels) and not all(labels)  # mio-a darkens some crops
    assert all(sum(row) == 2 for row in out["types"])  # mio-a: pairs
    assert all(row.shape == (len(dark_reader.feature_names()),) for row in out["rows"])


def test_the_readers_are_fitted_on_training_protocols_only() -> None:
    from benchmarks.suites import protocol_suite
    from benchmarks.train_dark_reader import PROTOCOLS
    from tir_env.degradations.protocols import COMBOS

    unseen = {c for s in ("mio-b", "mio-c", "ood-d2", "ood-d3") for c in COMBOS[s]}
    fitted = {c for name in PROTOCOLS for c in protocol_suite(name).combos}
    assert fitted and not fitted & unseen  # the evaluation suites' other combinations
    assert set(COMBOS["train-d3"]) <= fitted


def test_a_veto_fitted_with_the_reader_reads_it_and_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from agents.ppo import bright_veto, dark_reader
    from tir_env import perception
    from tir_env.errors import WeightsNotFoundError

    if not perception.available():
        pytest.skip("perception weights are not installed")
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    n = len(bright_veto.feature_names(reader=True))
    assert n == len(bright_veto.feature_names()) + 1
    _trees_file(tmp_path, "bright_veto", n, signal=n - 1)
    with pytest.raises(WeightsNotFoundError):  # fitted with the reader, which is not there
        bright_veto.load()
    _trees_file(tmp_path, "dark_reader", 8)
    assert bright_veto.reads_reader()
    image = torch.rand(1, 3, 32, 32)
    probs = _probs(dark=0.7)
    row = bright_veto.features(probs, image, None, set(), 0, reader=True)
    bare = bright_veto.features(probs, image, None, set(), 0)
    np.testing.assert_allclose(row[:-1], bare)
    assert row[-1] == pytest.approx(dark_reader.logit(probs))
    assert 0.0 <= bright_veto.pays(row) <= 1.0


@pytest.mark.parametrize(("reading", "patch_size"), [(0.9, 32), (0.1, 32), (0.9, 160)])
def test_trust_dark_reader_leaves_brightening_unchecked_where_it_reads_darkness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reading: float, patch_size: int
) -> None:
    from agents.base import make_agent
    from agents.ppo import dark_reader
    from tests.test_ppo_ensemble import export
    from tir_env import perception, quality_gain
    from tir_env.env import TIREnv
    from tir_env.errors import ConfigValueError
    from tir_env.tools.learned.weights import weights_dir
    from tir_env.tools.pool import SyncToolPool

    if not (quality_gain.available() and perception.available()):
        pytest.skip("quality-gain or perception weights are not installed")
    folder = tmp_path / "weights"  # the installed weights, and a darkness reader
    folder.mkdir()
    for file in weights_dir().iterdir():
        (folder / file.name).symlink_to(file)
    if not (folder / "dark_reader.safetensors").exists():
        _trees_file(folder, "dark_reader", 8)
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(folder))
    stem = export(tmp_path, "p", "catalogue", 0)  # trained on 128 px crops
    with pytest.raises(ConfigValueError, match="trust_dark_reader is a probability"):
        make_agent("ppo", weights=str(stem), trust_dark_reader=1.0)
    reads: list[float] = []

    def read(probs: object) -> float:
        reads.append(reading)
        return reading

    monkeypatch.setattr(dark_reader, "darkened", read)
    env = TIREnv(pool=SyncToolPool(), patch_size=patch_size, obs_size=32, max_steps=4)
    env.reset(seed=0, options={"degradations": ("dark",)})
    off = make_agent("ppo", weights=str(stem), judge=False, trust_dark_reader=0)
    off.reset(env)
    assert not reads  # off: never read
    agent = make_agent("ppo", weights=str(stem), judge=False, trust_dark_reader=0.5)
    agent.reset(env)
    if patch_size <= agent.spec.train_patch:  # a crop: the reader decides
        assert reads and agent._brightening_unchecked is (reading >= 0.5)
        assert off._brightening_unchecked is False
    else:  # a whole photo: never read, as without it
        assert not reads and agent._brightening_unchecked == off._brightening_unchecked


def test_trust_dark_reader_is_off_by_default_and_the_shipped_reader_reads(tmp_path: Path) -> None:
    from agents.base import make_agent
    from agents.ppo import dark_reader
    from tests.test_ppo_ensemble import export

    if not dark_reader.available():
        pytest.skip("the darkness reader's weights are not installed")
    stem = export(tmp_path, "p", "catalogue", 0)
    # fitted on the training protocols it reads unseen combinations worse than perception
    assert make_agent("ppo", weights=str(stem)).options.trust_dark_reader == 0.0
    assert make_agent("ppo-bc", weights=str(stem)).options.trust_dark_reader == 0.0
    assert 0.0 <= dark_reader.darkened(_probs(dark=0.5)) <= 1.0  # the shipped file reads
