"""DAgger with oracle as the teacher: its answer in any state, oracle datasets, the rounds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import experts as E
from agents.baselines import oracle_plan
from agents.ppo import bc, dagger
from agents.ppo.catalogue import PRESETS
from agents.ppo.policy import load_policy
from tir_env.degradations import degradation_names
from tir_env.env import TIREnv
from tir_env.errors import ExpertDataError
from tir_env.tools.base import tool_info, tool_names
from tir_env.types import ToolCall

TOOLS = tuple(tool_names())
TYPES = tuple(degradation_names())
SMALL: dict[str, Any] = dict(
    obs_size=32, history_len=3, max_steps=5, channels=(8, 16), history_dim=16
)


def _cfg(data: Path, out: Path, **settings: Any) -> bc.BCConfig:
    """A seconds-long cloning run on ``data`` (one pass, no perception pretraining)."""
    base: dict[str, Any] = dict(epochs=1, perception_epochs=0, **SMALL)
    return bc.BCConfig(data=(str(data),), out=str(out), **{**base, **settings})


def _task(call: ToolCall) -> str:
    return tool_info(call.tool).task


def test_oracle_next_walks_the_plan_and_then_stops():
    plan = oracle_plan(("noise", "dark"), TOOLS)
    assert dagger.oracle_next(("noise", "dark"), [], TOOLS) == plan[0]
    assert dagger.oracle_next(("noise", "dark"), plan[:1], TOOLS) == plan[1]
    assert dagger.oracle_next(("noise", "dark"), plan, TOOLS) is None
    assert dagger.oracle_next((), [], TOOLS) is None  # a clean input: STOP at once


def test_another_tool_of_a_planned_task_counts_and_a_false_alarm_does_not():
    plan = oracle_plan(("noise", "dark"), TOOLS)
    same_task = next(c for c in PRESETS if _task(c) == _task(plan[0]) and c != plan[0])
    assert dagger.oracle_next(("noise", "dark"), [same_task], TOOLS) == plan[1]
    unplanned = next(c for c in PRESETS if _task(c) not in {_task(p) for p in plan})
    assert dagger.oracle_next(("noise", "dark"), [unplanned], TOOLS) == plan[0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(TYPES), max_size=3, unique=True),
    st.lists(st.sampled_from(PRESETS), max_size=5),
)
def test_oracle_next_is_a_planned_call_of_an_open_task_or_stop_when_none_is(types, taken):
    plan = oracle_plan(types, TOOLS)
    done = {_task(c) for c in taken}
    left = [c for c in plan if _task(c) not in done]
    got = dagger.oracle_next(types, taken, TOOLS)
    assert got == (left[0] if left else None)


def test_an_oracle_dataset_records_oracles_plans(oracle_dataset):
    assert E.load_manifest(oracle_dataset)["expert"] == "oracle"
    assert E.config_of(oracle_dataset).expert == "oracle"
    for record in E.load_records(oracle_dataset):
        want = [c.to_dict() for c in oracle_plan(record["degradations"], TOOLS)]
        assert record["calls"] == want and record["tool_executions"] == 0


def test_a_dataset_resumes_only_with_its_own_expert(oracle_dataset):
    cfg = E.config_of(oracle_dataset)
    with pytest.raises(ExpertDataError, match="expert 'oracle'"):
        E.collect(dataclasses.replace(cfg, out=str(oracle_dataset), expert="exhaustive-ref"))
    with pytest.raises(ExpertDataError, match="unknown expert"):
        E.CollectConfig(expert="greedy")


def test_rollouts_label_each_state_the_policy_reaches(oracle_dataset, tmp_path):
    stem = tmp_path / "bc"
    cfg = _cfg(oracle_dataset, stem, epochs=2, perception_epochs=1)
    bc.main(cfg)
    policy, _ = load_policy(stem)
    records = E.load_records(oracle_dataset)
    env = TIREnv(**E.env_kwargs(E.config_of(oracle_dataset)))
    rows = dagger.rollout_rows(policy, env, records, cfg.actions(), 32, 3, 5)
    lengths = np.bincount(np.unique(rows["ep"], return_inverse=True)[1])
    assert len(lengths) == len(records) and lengths.min() >= 1 and lengths.max() <= 5
    assert {len(rows[k]) for k in rows} == {len(rows["ep"])}
    first = [i for i, ep in enumerate(rows["ep"]) if i == 0 or rows["ep"][i - 1] != ep]
    for i, record in zip(first, records, strict=True):  # the first state: oracle's first call
        plan = oracle_plan(record["degradations"], env.tools)
        want = 0 if not plan else bc.exact_action(plan[0], PRESETS)
        assert rows["action"][i] == want


@pytest.mark.parametrize("space", ["catalogue", "params"])
def test_later_states_carry_the_choice_made_and_oracles_next_label(oracle_dataset, tmp_path, space):
    cfg = _cfg(oracle_dataset, tmp_path / "bc", action_space=space)
    bc.main(cfg)
    policy, _ = load_policy(tmp_path / "bc")
    actions = cfg.actions()
    records = E.load_records(oracle_dataset)
    env = TIREnv(**E.env_kwargs(E.config_of(oracle_dataset)))
    rows = dagger.rollout_rows(policy, env, records, actions, 32, 3, 5, regret=True)
    by_ep: dict[int, list[int]] = {}
    for i, ep in enumerate(rows["ep"]):
        by_ep.setdefault(ep, []).append(i)
    for record in records:
        states = by_ep[int(record["index"])]
        taken: list[Any] = []
        for i in states:
            assert np.array_equal(rows["history"][i], actions.history(taken, 3).reshape(-1))
            calls = [actions.call(k) for k in taken]
            want = dagger.oracle_next(record["degradations"], calls, env.tools)
            got = actions.call(rows["action"][i])
            assert (got is None) == (want is None)  # every plan call maps exactly:
            if got is not None and want is not None:  # same tool, same values
                assert got.tool == want.tool
                assert bc.resolved(got) == pytest.approx(bc.resolved(want), rel=1e-6)
            assert rows["regret"][i] >= 0.0 and (not rows["agree"][i] or rows["regret"][i] == 0)
            # The next state follows the policy's own choice, whatever the label said.
            chosen = _chosen(policy, rows, i, actions)
            taken.append(chosen)
        assert len(states) == 5 or actions.call(taken[-1]) is None


def _chosen(policy: Any, rows: dict[str, list[Any]], i: int, actions: Any) -> Any:
    obs = {k: np.asarray(rows[k][i])[None] for k in ("image", "input", "history")}
    return actions.key(policy.predict(obs, deterministic=True)[0][0])


def test_extend_keeps_every_array_aligned_and_weighs_new_rows(oracle_dataset):
    samples, _ = bc.make_samples((str(oracle_dataset),), PRESETS, 32, 3, max_steps=5)
    n = len(samples.action)
    rows = {
        "image": [samples.image[0]] * 2,
        "input": [samples.input[0]] * 2,
        "history": [samples.history[0]] * 2,
        "action": [0, 3],
        "ep": [7, 7],
        "photo": ["chelsea", "chelsea"],
        "weight": [1.0, 2.5],
    }
    out = bc.extend(samples, rows, bc.BCConfig().actions(), None)
    assert len(out.action) == len(out.image) == len(out.history) == len(out.photo) == n + 2
    assert out.weight is not None and out.weight[:n].tolist() == [1.0] * n
    assert out.weight[n:].tolist() == [1.0, 2.5] and out.action[n:].tolist() == [0, 3]
    unweighted = bc.extend(samples, {k: v for k, v in rows.items() if k != "weight"}, None, None)  # type: ignore[arg-type]
    assert unweighted.weight is None


def test_dagger_rounds_add_the_clones_states_and_report_agreement(oracle_dataset, tmp_path):
    stem = tmp_path / "dagger"
    cfg = _cfg(
        oracle_dataset,
        stem,
        epochs=2,
        perception_epochs=1,
        val_fraction=0.5,
        dagger_rounds=2,
        dagger_episodes=4,
        dagger_epochs=2,
    )
    summary = bc.main(cfg, command="test")
    rounds = summary["dagger"]
    assert [r["round"] for r in rounds] == [1, 2] and all(r["episodes"] == 4 for r in rounds)
    base = sum(len(r["calls"]) + 1 for r in E.load_records(oracle_dataset))
    assert rounds[0]["samples"] == base + rounds[0]["states"]
    assert rounds[1]["samples"] == rounds[0]["samples"] + rounds[1]["states"]
    for r in rounds:
        shares = [r["agreement_train"], r["agreement_val"]]
        assert all(s is None or 0.0 <= s <= 1.0 for s in shares)
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["bc"]["dagger"] == rounds


def test_dagger_refuses_a_dataset_oracle_did_not_make(expert_dataset, tmp_path, monkeypatch):
    cfg = _cfg(expert_dataset, tmp_path / "x", dagger_rounds=1)
    with pytest.raises(ExpertDataError, match="expert oracle"):
        bc.main(cfg)
    made = []
    monkeypatch.setattr(bc, "make_samples", lambda *a, **k: made.append(1))
    with pytest.raises(ExpertDataError, match="expert oracle"):
        bc.main(cfg)
    assert not made  # refused before replaying a single episode


def test_negative_dagger_settings_are_refused():
    with pytest.raises(ExpertDataError, match="dagger"):
        bc.BCConfig(dagger_rounds=-1)


def test_regret_is_zero_for_the_teachers_call_and_counts_a_costly_stop():
    env = TIREnv(images="test", patch_size=32, metrics=("psnr",))
    _, info = env.reset(seed=3, options={"degradations": ("dark",)})
    types = info["degradations"]
    teacher = dagger.oracle_next(types, [], env.tools)
    assert teacher is not None
    assert dagger.regret_db(env, types, [], teacher, teacher, 5) == 0.0
    now = float(env.score(env.current_batch(), ("psnr",))["psnr"])
    assert dagger.finish_psnr(env, types, [], None, 5) == pytest.approx(now)
    brightened = dagger.finish_psnr(env, types, [], teacher, 5)
    assert dagger.regret_db(env, types, [], None, teacher, 5) == pytest.approx(
        max(0.0, brightened - now)
    )
    assert dagger.finish_psnr(env, types, [], teacher, 0) == pytest.approx(now)  # no budget


def test_dagger_cost_weights_the_clones_states_by_their_regret(oracle_dataset, tmp_path):
    cfg = _cfg(
        oracle_dataset,
        tmp_path / "aggrevate",
        val_fraction=0.5,
        dagger_rounds=1,
        dagger_episodes=4,
        dagger_epochs=1,
        dagger_cost=0.5,
    )
    summary = bc.main(cfg)
    assert summary["dagger"][0]["mean_regret_db"] >= 0.0
    meta = json.loads((tmp_path / "aggrevate.json").read_text())
    assert meta["config"]["dagger_cost"] == 0.5
    with pytest.raises(ExpertDataError, match="dagger_cost"):
        bc.BCConfig(dagger_cost=float("nan"))


def test_weighted_nll_is_the_weighted_mean_of_the_rows():
    import torch
    from stable_baselines3.common.distributions import CategoricalDistribution

    dist = CategoricalDistribution(3).proba_distribution(torch.tensor([[0.0, 1.0, 2.0]] * 2))
    actions = np.array([0, 2])
    logp = dist.log_prob(torch.as_tensor(actions)).numpy()
    got = float(bc._nll(dist, actions, None, np.array([1.0, 3.0])))
    assert got == pytest.approx(-(logp[0] + 3 * logp[1]) / 4, rel=1e-6)
    assert float(bc._nll(dist, actions, None)) == pytest.approx(-logp.mean(), rel=1e-6)


def test_a_clone_told_the_truth_reads_each_states_true_types(oracle_dataset, tmp_path):
    from agents.base import make_agent, rollout
    from agents.ppo import perceived
    from tir_env.perception import AGENTICIR_TYPES

    samples, _ = bc.make_samples(
        (str(oracle_dataset),), PRESETS, 32, 3, max_steps=5, perceived_network=perceived.TRUTH
    )
    assert samples.perceived is not None and samples.perceived.shape[1] == perceived.WIDTH
    for row, episode in zip(samples.perceived, samples.episode, strict=True):
        names = [n for n, on in zip(AGENTICIR_TYPES, row[:8], strict=True) if on]
        record = next(r for r in E.load_records(oracle_dataset) if int(r["index"]) == episode)
        assert set(names) == set(record["degradations"])
    stem = tmp_path / "truth"
    cfg = _cfg(oracle_dataset, stem, perceived_truth=True, dagger_rounds=1, dagger_episodes=2)
    bc.main(cfg, command="test")
    _, spec = load_policy(stem)
    assert spec.perceived == perceived.TRUTH
    agent = make_agent("ppo", weights=str(stem))
    env = TIREnv(patch_size=32, obs_size=32, max_steps=2, metrics=("psnr",))
    episode = rollout(env, agent, seed=0, options={"degradations": ("noise",)})
    assert len(episode.records) <= 2
