"""PPO behaviour cloning on the expert dataset: mapping, loss, export, agent, warm start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents import experts as E
from agents.base import make_agent, rollout
from agents.ppo import bc
from agents.ppo.actions import ParamActions
from agents.ppo.catalogue import PRESETS
from agents.ppo.policy import load_policy
from tir_env.env import TIREnv
from tir_env.types import ToolCall

SMALL: dict[str, Any] = dict(
    obs_size=32, history_len=3, max_steps=5, channels=(8, 16), history_dim=16
)


@pytest.fixture(scope="module")
def cloned(expert_dataset, tmp_path_factory) -> tuple[Path, dict]:
    stem = tmp_path_factory.mktemp("policy") / "bc"
    cfg = bc.BCConfig(
        data=(str(expert_dataset),),
        out=str(stem),
        epochs=8,
        batch_size=4,
        lr=3e-3,
        val_fraction=0.5,  # one of the two photos held out
        perception_epochs=1,
        **SMALL,
    )
    return stem, bc.main(cfg, command="test")


def test_catalogue_entries_and_default_calls_map_exactly():
    for i, entry in enumerate(PRESETS):
        assert bc.exact_action(entry, PRESETS) == i + 1
    assert bc.exact_action(ToolCall("dct_denoise", {"strength": 1.0}), PRESETS) == 3
    assert bc.exact_action(ToolCall("nlm_denoise"), PRESETS) is None


def test_other_tools_map_to_the_nearest_entry_of_their_task():
    env = TIREnv(images="test", patch_size=32, metrics=("psnr",))
    env.reset(seed=0, options={"degradations": ("noise",)})
    action, kind = bc.nearest_action(env, ToolCall("nlm_denoise"), PRESETS)
    assert kind == "same_task" and PRESETS[action - 1].tool == "dct_denoise"
    assert bc.nearest_action(env, PRESETS[4], PRESETS) == (5, "exact")


def test_samples_follow_the_mapped_expert_and_end_with_stop(expert_dataset):
    samples, report = bc.make_samples((str(expert_dataset),), PRESETS, 32, 3, max_steps=5)
    records = E.load_records(expert_dataset)
    assert len(samples.action) == sum(len(r["calls"]) + 1 for r in records)
    assert (samples.action == 0).sum() == len(records)  # one STOP per episode
    assert report["calls"] == report["exact"] + report["same_task"] + report["other_task"]
    assert samples.image.shape[1:] == (3, 32, 32) and samples.image.dtype == np.uint8
    first = samples.history.reshape(len(samples.action), 3, -1)[0]
    assert not first.any()  # no action taken before the first step


def test_bc_reduces_its_loss_and_exports_a_ppo_policy(cloned):
    stem, summary = cloned
    assert summary["last"]["train_loss"] < summary["first"]["train_loss"]
    log = [json.loads(x) for x in stem.with_suffix(".log.jsonl").read_text().splitlines()]
    assert len(log) == 9 and summary["val_samples"] > 0
    assert summary["kept_epoch"] == min(log, key=lambda r: r["val_loss"])["epoch"]
    assert summary["mapping"]["calls"] > 0
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["bc"]["samples"] == summary["samples"] and meta["command"] == "test"
    policy, spec = load_policy(stem)
    assert spec.catalogue == PRESETS and spec.obs_size == 32


@pytest.mark.parametrize("name", ["ppo", "ppo-bc"])
def test_the_cloned_policy_acts_as_the_ppo_agent(cloned, name):
    stem, _ = cloned
    agent = make_agent(name, weights=str(stem))
    env = TIREnv(images="test", combos="mio-a", patch_size=32, obs_size=32, max_steps=3)
    episode = rollout(env, agent, seed=3)
    assert 1 <= len(episode.records) <= 3
    tools = {c.tool for c in PRESETS}
    assert all(r.call is None or r.call.tool in tools for r in episode.records)


def test_ppo_warm_starts_from_the_cloned_policy(cloned, tmp_path, tiny_ppo_args):
    from agents.ppo.train import main

    stem, _ = cloned
    bc_policy, _ = load_policy(stem)
    args = [
        "--out", str(tmp_path / "run"), "--init", str(stem), "--export", str(tmp_path / "ppo"),
        *tiny_ppo_args,
    ]  # fmt: skip
    main(args)
    tuned, spec = load_policy(tmp_path / "ppo")
    # The BC perception is kept (not pretrained again), and the names of its outputs with it.
    clone_perception = load_policy(stem)[1].extra["perception"]
    assert clone_perception["labels"] and spec.extra["perception"] == clone_perception
    before, after = bc_policy.state_dict(), tuned.state_dict()
    frozen = [k for k in before if ".cnn." in k or ".perception." in k]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert spec.features == load_policy(stem)[1].features


def test_warm_start_unfreezes_the_perception_when_asked(cloned, tmp_path, tiny_ppo_args):
    """``--no-freeze-perception`` holds for a warm start too (it was once silently ignored)."""
    from agents.ppo.train import main

    stem, _ = cloned
    args = [
        "--out", str(tmp_path / "run"), "--init", str(stem), "--export", str(tmp_path / "ppo"),
        *tiny_ppo_args,
        "--no-freeze-perception",
    ]  # fmt: skip
    main(args)
    tuned, spec = load_policy(tmp_path / "ppo")
    before, after = load_policy(stem)[0].state_dict(), tuned.state_dict()
    cnn = [k for k in before if ".cnn." in k and k.endswith("weight")]
    assert cnn and any(not torch.equal(before[k], after[k]) for k in cnn)
    assert spec.features["freeze"] is False


def test_warm_start_refuses_another_observation_size(cloned, tmp_path):
    from agents.ppo.train import main
    from tir_env.errors import ExpertDataError

    stem, _ = cloned
    with pytest.raises(ExpertDataError, match="spaces"):
        main(["--out", str(tmp_path), "--init", str(stem), "--obs-size", "64", "--patch-size",
              "64", "--history-len", "3", "--total-timesteps", "8", "--n-envs", "1",
              "--no-verbose"])  # fmt: skip


# ------------------------------------------------------------------ params action space
PARAMS = ParamActions(tuple(dict.fromkeys(c.tool for c in PRESETS)), bins=5, n_params=2)


def test_expert_calls_map_to_tool_and_nearest_bins():
    env = TIREnv(images="test", patch_size=32, metrics=("psnr",))
    env.reset(seed=0, options={"degradations": ("noise",)})
    # A default call is exact; other values take the nearest bins; another tool its nearest
    # policy tool of the same task, with default bins.
    action, kind = bc.expert_action(env, ToolCall("dct_denoise"), PARAMS)
    assert kind == "exact" and PARAMS.call(action) is not None
    assert PARAMS.call(action).params["strength"] == 1.0
    action, kind = bc.expert_action(env, ToolCall("dct_denoise", {"strength": 2.9}), PARAMS)
    assert kind == "bins" and PARAMS.call(action).params["strength"] == 3.0
    action, kind = bc.expert_action(env, ToolCall("nlm_denoise"), PARAMS)
    assert kind == "same_task" and PARAMS.call(action) == PARAMS.call(
        PARAMS.action(ToolCall("dct_denoise"))
    )


def test_params_samples_follow_the_expert_with_masks(expert_dataset):
    samples, report = bc.make_samples((str(expert_dataset),), PARAMS, 32, 3, max_steps=5)
    records = E.load_records(expert_dataset)
    assert samples.action.shape == (sum(len(r["calls"]) + 1 for r in records), 3)
    assert (samples.action[:, 0] == 0).sum() == len(records)  # one STOP per episode
    assert samples.mask is not None and samples.mask[:, 0].all()
    stops = samples.action[:, 0] == 0
    assert not samples.mask[stops, 1:].any()
    kinds = ("exact", "bins", "same_task", "other_task")
    assert report["calls"] == sum(report[k] for k in kinds)
    assert samples.history.shape[1] == 3 * PARAMS.row_width()


def test_params_bc_exports_a_policy_the_ppo_bc_agent_runs_and_ppo_starts_from(
    expert_dataset, tmp_path, tiny_ppo_args
):
    stem = tmp_path / "bc_params"
    cfg = bc.BCConfig(
        data=(str(expert_dataset),),
        out=str(stem),
        epochs=4,
        batch_size=4,
        val_fraction=0.5,
        perception_epochs=1,
        action_space="params",
        bins=5,
        **SMALL,
    )
    summary = bc.main(cfg, command="test")
    assert summary["last"]["train_loss"] < summary["first"]["train_loss"]
    _, spec = load_policy(stem)
    assert spec.action_space == "params" and spec.bins == 5
    agent = make_agent("ppo-bc", weights=str(stem))
    env = TIREnv(images="test", combos="mio-a", patch_size=32, obs_size=32, max_steps=3)
    episode = rollout(env, agent, seed=3)
    assert 1 <= len(episode.records) <= 3
    assert all(r.call is None or r.call.tool in PARAMS.tools for r in episode.records)
    # ... and warm-starts PPO in the same space (imitation first, then RL).
    from agents.ppo.train import main

    args = [
        "--out", str(tmp_path / "run"), "--init", str(stem), "--export", str(tmp_path / "ppo"),
        "--action-space", "params", "--bins", "5",
        *tiny_ppo_args,
    ]  # fmt: skip
    main(args)
    assert load_policy(tmp_path / "ppo")[1].action_space == "params"


@pytest.mark.parametrize("space", ["catalogue", "params"])
def test_cached_frozen_features_give_the_full_policys_loss_and_accuracy(expert_dataset, space):
    """With perception frozen, the cached image features change nothing but the cost."""
    cfg = bc.BCConfig(data=(str(expert_dataset),), action_space=space, bins=5, **SMALL)
    samples, _ = bc.make_samples((str(expert_dataset),), cfg.actions(), 32, 3, max_steps=5)
    from agents.ppo.policy import PolicySpec, build_policy

    spec = PolicySpec(
        catalogue=PRESETS, obs_size=32, history_len=3, action_space=space, bins=5, n_params=2,
        features={"channels": [8, 16], "history_dim": 16, "n_labels": 8, "freeze": True},
        net_arch={"pi": [16], "vf": [16]}, extra={},
    )  # fmt: skip
    policy = build_policy(spec)
    policy.eval()
    idx = np.arange(len(samples.action))
    mask = samples.mask
    full = bc.Distributions(policy, samples, frozen=False)(idx)
    cached = bc.Distributions(policy, samples, frozen=True)(idx)
    with torch.no_grad():
        assert float(bc._nll(cached, samples.action, mask)) == pytest.approx(
            float(bc.bc_loss(policy, samples.obs(idx), samples.action, mask)), rel=1e-5
        )
        assert float(bc._nll(full, samples.action, mask)) == pytest.approx(
            float(bc._nll(cached, samples.action, mask)), rel=1e-5
        )
    assert bc._hits(cached, samples.action, mask) == bc.accuracy(policy, samples, idx)
