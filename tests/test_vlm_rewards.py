"""GRPO's per-turn rewards: one rule for each kind of turn, batched or frozen."""

from __future__ import annotations

from typing import Any, cast

import pytest

pytest.importorskip("transformers")

from agents.vlm import grpo, policy  # noqa: E402
from agents.vlm.parse import ParseError, Stop  # noqa: E402
from tir_env.adaptive_reward import AdaptiveReward  # noqa: E402
from tir_env.types import StepRecord, ToolCall  # noqa: E402

CALL = ToolCall("gamma_correction", {})


def _turn(parsed: Any, record: StepRecord | None) -> policy.Turn:
    return policy.Turn(ids=[], text="", parsed=parsed, record=record)


def _record(call: ToolCall | None, gain: float = 0.0, error: str | None = None) -> StepRecord:
    before = {"psnr": 20.0, "ssim": 0.5, "niqe": 6.0}
    after = {"psnr": 20.0 + gain, "ssim": 0.5 + gain / 100, "niqe": 6.0 - gain / 10}
    return StepRecord(call, before, before if error else after, 0.0, error=error)


def _rollout(turns: list[policy.Turn]) -> policy.Rollout:
    return policy.Rollout(env=cast(Any, None), dialogue=cast(Any, None), turns=turns)


def test_each_kind_of_turn_earns_the_same_batched_or_frozen():
    turns = [
        _turn(CALL, _record(CALL, gain=2.0)),
        _turn(CALL, _record(CALL, error="boom")),
        _turn(Stop(), _record(None)),
    ]
    bad = [_turn(ParseError("json", "not JSON", "{"), None)]
    group = [_rollout(turns), _rollout(bad)]
    batched = grpo.group_rewards(
        AdaptiveReward(dict.fromkeys(("psnr", "ssim", "niqe"), 1.0)), group, []
    )
    frozen_fn = AdaptiveReward(dict.fromkeys(("psnr", "ssim", "niqe"), 1.0), momentum=1.0)
    frozen = [grpo._frozen_rewards(frozen_fn, r) for r in group]
    assert [len(r) for r in batched] == [3, 1] == [len(r) for r in frozen]
    for rewards in (batched, frozen):
        assert rewards[0][1] == frozen_fn.failed().reward  # a failed call
        assert rewards[0][2] == 0.0  # STOP
        assert rewards[1][0] == frozen_fn.format_penalty().reward  # a malformed answer
        assert rewards[0][0] > 0  # a call that improved every metric
