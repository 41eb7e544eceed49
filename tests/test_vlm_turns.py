"""What the VLM's user turns state about the image: size, perception's reading, records."""

from __future__ import annotations

import re

import numpy as np
import pytest

from agents.base import make_agent
from agents.vlm import prompt
from agents.vlm.agent import VLMOptions, turn_text
from agents.vlm.grpo import GRPOConfig
from agents.vlm.sft import SFTConfig
from tir_env import data
from tir_env.perception import perceive
from tir_env.types import StepRecord, ToolCall

LINE = re.compile(r"Perception: ((?:[a-z_]+ \d\.\d\d, ){2}[a-z_]+ \d\.\d\d)\.")


def test_default_turns_are_the_text_shipped_adapters_were_trained_on():
    image = np.zeros((16, 24, 3), np.uint8)
    record = StepRecord(ToolCall("dct_denoise", {}), {}, {}, 0.0)
    assert prompt.first_user_text(image, 3) == (
        "Input image: 24x16 pixels. Steps left: 3. No tools called yet.\nCall one tool or stop."
    )
    assert prompt.next_user_text(image, [record], 2).startswith(
        "Result of dct_denoise(): ok. Image: 24x16 pixels. Steps left: 2.\nHistory:\n"
    )


def test_perception_turns_name_the_three_most_probable_types_in_order():
    image = data.bundled("test").load("chelsea")[:128, :128]
    turn = prompt.TurnText(show_size=False, perception=True)
    record = StepRecord(ToolCall("dct_denoise", {}), {}, {}, 0.0)
    for text in (
        prompt.first_user_text(image, 3, turn),
        prompt.next_user_text(image, [record], 2, turn),
    ):
        found = LINE.search(text)
        assert found, text
        named = [part.rsplit(" ", 1) for part in found.group(1).split(", ")]
        probs = perceive(image)
        want = sorted(probs, key=lambda k: -probs[k])[:3]
        assert [n for n, _ in named] == want
        assert [float(p) for _, p in named] == [round(probs[n], 2) for n in want]
        assert "pixels" not in text


def test_turns_round_trip_through_an_adapter_folder(tmp_path):
    assert prompt.TurnText.load(tmp_path) == prompt.TurnText()  # unrecorded: the defaults
    assert prompt.TurnText.load(None) == prompt.TurnText()
    turn = prompt.TurnText(show_size=False, perception=True)
    turn.save(tmp_path)
    assert prompt.TurnText.load(tmp_path) == turn


def test_the_agent_and_grpo_follow_the_adapters_record_unless_told(tmp_path):
    sft, grpo = tmp_path / "sft", tmp_path / "grpo"
    sft.mkdir()
    grpo.mkdir()
    prompt.TurnText(show_size=False, perception=True).save(sft)
    hinted = prompt.TurnText(show_size=False, perception=True)
    assert turn_text(VLMOptions(merge=(sft,), adapter=None)) == hinted
    assert turn_text(VLMOptions(merge=(sft,), adapter=grpo)) == hinted  # grpo has no record
    told = turn_text(VLMOptions(merge=(sft,), adapter=None, perception_hint=False))
    assert told == prompt.TurnText(show_size=False, perception=False)
    assert turn_text(VLMOptions(merge=(), adapter=None)) == prompt.TurnText()
    assert GRPOConfig(sft_adapter=str(sft)).turn == hinted
    assert GRPOConfig(sft_adapter=str(sft), show_size=True).turn.show_size
    sft_turn = SFTConfig(show_size=False, perception_hint=True).turn
    assert sft_turn == prompt.TurnText(show_size=False, perception=True, detail="brief")


def test_the_system_prompt_detail_is_recorded_and_followed(tmp_path):
    """SFT records its schema detail; GRPO and the agent use it unless told; ``none`` is bare."""
    bare = prompt.system_prompt(["dct_denoise", "clahe"], "none")
    assert "dct_denoise" not in bare and bare.count(".") <= 1
    sft = tmp_path / "sft"
    sft.mkdir()
    SFTConfig(perception_hint=True, detail="none").turn.save(sft)
    assert prompt.TurnText.load(sft).detail == "none"
    assert GRPOConfig(sft_adapter=str(sft)).prompt_detail == "none"
    assert GRPOConfig(sft_adapter=str(sft), detail="full").prompt_detail == "full"
    assert GRPOConfig(sft_adapter=None).prompt_detail == "brief"  # unrecorded: as before
    assert turn_text(VLMOptions(merge=(sft,), adapter=None)).detail == "none"
    assert turn_text(VLMOptions(merge=(sft,), adapter=None, detail="brief")).detail == "brief"
    assert turn_text(VLMOptions(merge=(), adapter=None)).detail is None  # the model's own


def test_an_unknown_recorded_detail_is_a_named_error(tmp_path):
    (tmp_path / prompt.TURNS_FILE).write_text('{"show_size": true, "detail": "verbose"}')
    with pytest.raises(ValueError, match="unknown prompt detail 'verbose'"):
        prompt.TurnText.load(tmp_path)


@pytest.mark.parametrize("flag", ["true", "false"])
def test_the_agent_option_parses_from_words(flag):
    """``--agent-arg vlm.perception_hint=true`` reaches the agent as a word."""
    agent = make_agent("vlm", perception_hint=flag, merge="none", adapter="none")
    assert agent.turn.perception is (flag == "true")


def test_the_sft_loss_weighs_the_first_answer():
    import torch

    from agents.vlm.policy import Scores
    from agents.vlm.sft import sft_loss

    a = Scores(torch.tensor([-1.0, -2.0, -3.0]), torch.tensor([0, 0, 1]))
    b = Scores(torch.tensor([-4.0]), torch.tensor([1]))
    assert float(sft_loss([a, b])) == pytest.approx(10 / 4)  # the plain token mean
    assert float(sft_loss([a, b], 3.0)) == pytest.approx((3 * 3 + 3 + 4) / (6 + 2))
    assert float(sft_loss([], 3.0)) == 0.0


def test_the_agent_option_detail_none_is_the_bare_prompt_not_unset():
    """``--agent-arg vlm.detail=none`` names the ``none`` prompt (a literal), not "unset"."""
    agent = make_agent("vlm", detail="none", merge="none", adapter="none")
    assert agent.turn.detail == "none"
    assert make_agent("vlm", merge="none", adapter="none").turn.detail is None
