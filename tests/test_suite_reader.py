"""agents.ppo.suite_reader, its trainer, and what reads it (``fixed.sight``, the expert)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# the learned tools register from the installed weights when first imported: before any test
# here points TIR_LEARNED_WEIGHTS at a folder of its own
import tir_env.tools.learned  # noqa: F401


def _probs(**given_probs: float) -> dict[str, float]:
    from tir_env.perception import AGENTICIR_TYPES

    return {t: given_probs.get(t, 0.1) for t in AGENTICIR_TYPES}


def _readers(n_features: int = 8) -> dict[str, object]:
    """Tiny trees per type: each type is read from its own logit (feature j for type j)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from benchmarks.train_tirqa_trees import exported
    from tir_env.perception import AGENTICIR_TYPES

    rows = np.random.default_rng(0).normal(size=(300, n_features))
    out = {}
    for j, kind in enumerate(AGENTICIR_TYPES):
        model = HistGradientBoostingClassifier(max_depth=2, max_iter=20)
        out[kind] = exported(model.fit(rows, rows[:, j % n_features] > 0), rows)
    return out


def _install(folder: Path, readers: dict[str, object]) -> None:
    from agents.ppo import suite_reader
    from tir_env.tools.learned.weights import save_state

    suite_reader._read.cache_clear()
    save_state(suite_reader.tensors(readers), folder / "suite_reader.safetensors", {"name": "x"})


def test_the_readers_load_read_and_name_a_missing_partial_stale_or_corrupt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.ppo import suite_reader
    from tir_env.errors import CheckpointError, WeightsNotFoundError

    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    suite_reader._read.cache_clear()
    with pytest.raises(WeightsNotFoundError):
        suite_reader.load()
    (tmp_path / "suite_reader.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        suite_reader.load()
    partial = {k: v for k, v in _readers().items() if k != "rain"}
    _install(tmp_path, partial)
    with pytest.raises(CheckpointError, match="no reader of rain"):
        suite_reader.load()
    _install(tmp_path, _readers(5))
    with pytest.raises(CheckpointError, match="reads 5 features"):
        suite_reader.load()
    _install(tmp_path, _readers())
    assert suite_reader.present(_probs(haze=0.99, rain=0.95)) == ["haze", "rain"]
    probs = suite_reader.probabilities(_probs(haze=0.99))
    assert probs["haze"] > 0.5 > probs["noise"]


def test_fixed_with_the_readers_refuses_to_start_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.base import make_agent
    from agents.ppo import suite_reader
    from tir_env.errors import WeightsNotFoundError

    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(tmp_path))
    suite_reader._read.cache_clear()
    make_agent("fixed")  # the default sight needs no readers
    with pytest.raises(WeightsNotFoundError):
        make_agent("fixed", sight="suite-reader")


def test_fixed_plans_the_tasks_the_readers_see(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.base import make_agent
    from tir_env.env import TIREnv
    from tir_env.tools.base import tool_info

    monkeypatch.setattr("agents.ppo.suite_reader.load", lambda: {})
    monkeypatch.setattr("agents.ppo.suite_reader.perceived_tasks", lambda env: ["deraining"])
    env = TIREnv(images="test", patch_size=32, obs_size=32, max_steps=2)
    env.reset(seed=0, options={"degradations": ("rain", "noise")})
    agent = make_agent("fixed", sight="suite-reader", learned=(), params="default")
    agent.reset(env)
    assert [tool_info(c.tool).task for c in agent.make_plan()] == ["deraining"]


def test_the_perceived_reader_expert_is_a_dagger_teacher() -> None:
    from agents import experts
    from agents.ppo.bc import DAGGER_TEACHERS
    from agents.ppo.dagger import PERCEIVED_SIGHT

    assert "perceived-reader" in experts.EXPERTS and "perceived-reader" in DAGGER_TEACHERS
    agent, options = experts.EXPERT_AGENTS["perceived-reader"]
    assert (agent, options["sight"]) == ("fixed", PERCEIVED_SIGHT["perceived-reader"])
    experts.CollectConfig(expert="perceived-reader")  # accepted


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=8, max_size=8), min_size=1, max_size=30))
def test_set_scores_are_perfect_on_the_truth_and_count_no_true_negatives(
    rows: list[list[bool]],
) -> None:
    from benchmarks.train_suite_reader import set_scores

    truth = np.array(rows, dtype=bool)
    same = set_scores(truth, truth)
    assert same["exact_set"] == 1.0
    assert all(f in (1.0, None) for f in same["f1"].values())
    # a set read where nothing is: no type that is never there gets credit for it
    none = set_scores(np.zeros_like(truth), ~truth)
    assert all(f in (0.0, None) for f in none["f1"].values())


def test_reader_transfer_reports_each_suite_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from benchmarks.reader_transfer import _auc_by_suite, main

    labels = np.array([0, 1, 0, 1, 0, 1], dtype=bool)
    score = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3])  # right on mio-a, wrong on mio-c
    suites = np.array(["mio-a"] * 4 + ["mio-c"] * 2)
    out = _auc_by_suite(labels, score, suites)
    assert out["mio-a"] == 1.0 and out["mio-c"] == 0.0 and 0.0 < out["all"] < 1.0
    taken = tmp_path / "r.json"
    taken.write_text("keep me")
    with pytest.raises(SystemExit):
        main(["--rounds", "0", "1", "--json", str(taken)])
    assert taken.read_text() == "keep me"
