from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given
from hypothesis import strategies as st

import tir_env  # noqa: F401
from tir_env.adaptive_reward import AdaptiveReward, StaticReward
from tir_env.reward import PSNRReward, make_reward

finite = st.floats(-1e4, 1e4, allow_nan=False)


def _m(psnr: float, ssim: float, niqe: float) -> dict[str, float]:
    return {"psnr": psnr, "ssim": ssim, "niqe": niqe}


def test_psnr_reward_is_gain_minus_cost():
    out = PSNRReward(step_cost=0.1).step({"psnr": 20.0}, {"psnr": 22.5})
    assert out.reward == pytest.approx(2.4) and out.terms["psnr"] == pytest.approx(2.5)


def test_make_reward_did_you_mean():
    with pytest.raises(KeyError, match="adaptive"):
        make_reward("adaptiv")


def test_static_sum_rewards_perceptual_gain_despite_fidelity_loss():
    # NIQE improves by 2 (lower is better) while PSNR drops 1 dB: the static sum pays.
    before, after = _m(20, 0.6, 8.0), _m(19, 0.59, 6.0)
    assert StaticReward().step(before, after).reward > 0


def test_adaptive_gate_discards_perceptual_gain_when_fidelity_falls():
    reward = AdaptiveReward()
    out = reward.step(_m(20, 0.6, 8.0), _m(19, 0.59, 6.0))
    assert out.terms["gate/niqe"] == 0.0 and out.terms["consensus"] < 0
    assert out.reward < 0


def test_adaptive_keeps_perceptual_gain_when_fidelity_agrees():
    out = AdaptiveReward().step(_m(20, 0.6, 8.0), _m(21, 0.63, 7.0))
    assert out.terms["gate/niqe"] == 1.0 and out.reward > 0


def test_agreement_weight_drops_for_a_metric_that_keeps_disagreeing():
    reward = AdaptiveReward()
    w0 = reward.step(_m(20, 0.6, 8.0), _m(21, 0.63, 7.0)).terms["weight/niqe"]
    for _ in range(20):  # fidelity up, NIQE worse: NIQE disagrees every time
        out = reward.step(_m(20, 0.6, 7.0), _m(21, 0.63, 8.0))
    assert out.terms["weight/niqe"] < w0 / 2
    reward.reset(seeded=True)
    assert reward.agreement["niqe"] == 1.0


def test_group_normalisation_is_unit_free():
    # Multiplying every PSNR change by 10 changes the normalised rewards little once the
    # group's own spread sets the scale (momentum 0: the group alone).
    a = AdaptiveReward(metrics={"psnr": 1.0}, momentum=0.0)
    b = AdaptiveReward(metrics={"psnr": 1.0}, momentum=0.0)
    befores = [{"psnr": 20.0}] * 4
    gains = [0.1, -0.2, 0.3, 0.05]
    ra = [o.reward for o in a.step_batch(befores, [{"psnr": 20 + g} for g in gains])]
    rb = [o.reward for o in b.step_batch(befores, [{"psnr": 20 + 10 * g} for g in gains])]
    np.testing.assert_allclose(ra, rb, rtol=1e-6)


@given(st.lists(st.tuples(finite, finite, finite, finite, finite, finite), min_size=1, max_size=6))
def test_adaptive_reward_finite_for_any_metrics(rows):
    reward = AdaptiveReward()
    befores = [_m(r[0], r[1], r[2]) for r in rows]
    afters = [_m(r[3], r[4], r[5]) for r in rows]
    for out in reward.step_batch(befores, afters):
        assert math.isfinite(out.reward)
        assert all(math.isfinite(v) for v in out.terms.values())


def test_no_reference_uses_remaining_metrics():
    out = AdaptiveReward().step({"niqe": 8.0}, {"niqe": 7.0})
    assert out.reward > 0 and "z/psnr" not in out.terms


@pytest.mark.parametrize("reward", ["static", "adaptive"])
def test_env_with_multi_metric_reward(reward):
    env = gym.make("TIR-v0", reward=reward, patch_size=96, obs_size=32, max_steps=2)
    check_env(env.unwrapped)
    env.reset(seed=0)
    _, r, *_, info = env.step(env.action_space.sample())
    assert math.isfinite(r)
    assert {"psnr", "ssim", "niqe"} <= set(info["metrics"])
    assert any(k.startswith("delta/") for k in info["reward_terms"])
