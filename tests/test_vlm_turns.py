"""What the VLM's user turns state about the image: size, perception's reading, records."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

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


def test_turns_read_the_perception_network_the_policy_was_trained_on(tmp_path):
    image = data.bundled("test").load("chelsea")[:128, :128]
    old = prompt.TurnText(show_size=False, perception=True, perception_network="perception_r1")
    old.save(tmp_path)
    loaded = prompt.TurnText.load(tmp_path)
    assert loaded == old and loaded.told(None, None).perception_network == "perception_r1"
    found = LINE.search(prompt.first_user_text(image, 3, loaded))
    assert found
    probs = perceive(image, network="perception_r1")
    want = sorted(probs, key=lambda k: -probs[k])[:3]
    assert [part.rsplit(" ", 1)[0] for part in found.group(1).split(", ")] == want
    shipped = prompt.perception_line(image)
    assert prompt.perception_line(image, network="perception_r1") != shipped  # another network
    (tmp_path / prompt.TURNS_FILE).write_text('{"perception_network": "../evil"}')
    with pytest.raises(ValueError, match="perception network"):
        prompt.TurnText.load(tmp_path)


def test_the_shipped_vlm_reads_the_network_it_was_trained_with():
    from tir_env.perception import RELEASE1_WEIGHTS_NAME
    from tir_env.tools.learned.weights import weights_path

    weights = Path(__file__).resolve().parents[1] / "agents" / "vlm" / "weights"
    for name in ("tiny-hint-sft", "tiny-hint-grpo"):
        assert prompt.TurnText.load(weights / name).perception_network == RELEASE1_WEIGHTS_NAME
    assert weights_path(RELEASE1_WEIGHTS_NAME).is_file()


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
    assert GRPOConfig(sft_adapter=str(sft)).turn == replace(hinted, budget=4)  # its own budget
    assert GRPOConfig(sft_adapter=str(sft), show_size=True).turn.show_size
    sft_turn = SFTConfig(show_size=False, perception_hint=True).turn
    assert sft_turn == prompt.TurnText(show_size=False, perception=True, detail="brief", budget=4)


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


@pytest.mark.parametrize("budget", ["0", "2.5", '"4"'])
def test_a_malformed_recorded_budget_is_a_named_error(tmp_path, budget):
    (tmp_path / prompt.TURNS_FILE).write_text(f'{{"show_size": true, "budget": {budget}}}')
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        prompt.TurnText.load(tmp_path)


def test_the_agent_keeps_to_the_budget_it_was_trained_with(tmp_path, monkeypatch):
    """Trained on 2 calls, run with 4: it is told 2, then 1, and stops after the second call."""
    from agents.base import rollout
    from agents.vlm import agent as agent_module
    from agents.vlm.model import TinySpec, build_tiny_for_tools
    from tir_env.env import TIREnv
    from tir_env.tools.base import tool_names

    assert prompt.TurnText(budget=2).steps_left(4, 0) == 2
    assert prompt.TurnText(budget=2).steps_left(1, 0) == 1  # the env's budget is lower
    assert prompt.TurnText().steps_left(4, 3) == 4  # unrecorded: the env's, as it is
    spec = TinySpec(vocab_size=600, image_size=56)
    path = build_tiny_for_tools(tmp_path / "tiny", tool_names(kinds=("classical",)), spec)
    agent = make_agent("vlm", model=str(path), merge="none", adapter="none", max_new_tokens="4")
    agent.turn = prompt.TurnText(budget=2)
    # An untrained model writes no valid call: every answer is read as gamma_correction.
    monkeypatch.setattr(
        agent_module, "parse_action", lambda text, tools: ToolCall("gamma_correction", {})
    )
    env = TIREnv(images="test", patch_size=32, obs_size=32, max_steps=4, metrics=("psnr",))
    ep = rollout(env, agent, seed=0, options={"degradations": ("dark",)})
    assert [r.call.tool for r in ep.records if r.call] == ["gamma_correction"] * 2
    texts = [m["content"] for m in agent.dialogue.messages if m["role"] == "user"]
    assert "Steps left: 2." in str(texts[0]) and "Steps left: 1." in str(texts[1])


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


def test_a_smaller_image_is_shown_at_the_training_scale(tmp_path):
    from agents.vlm.policy import view
    from tir_env.images import resize_u8
    from tir_env.wrappers import native_view

    photo = data.bundled("test").load("chelsea")
    crop, small = photo[:128, :128], photo[:96, :96]
    # a training-size crop: the view it was trained on, with or without the patch
    np.testing.assert_array_equal(view(crop, 64, 128), resize_u8(crop, (64, 64)))
    # a smaller one: padded around its pixels at the training scale, not stretched
    shown = view(small, 64, 128, (96, 96))
    np.testing.assert_array_equal(shown, native_view(small, 64, 128, channels_first=False))
    assert not np.array_equal(shown, resize_u8(small, (64, 64)))
    # unrecorded patch or a larger image: resized, as before
    np.testing.assert_array_equal(view(small, 64), resize_u8(small, (64, 64)))
    np.testing.assert_array_equal(view(photo, 64, 128), resize_u8(photo, (64, 64)))
    # recorded next to the adapter; a bad record is a named error
    turn = prompt.TurnText(show_size=False, perception=True, patch=128)
    turn.save(tmp_path)
    assert prompt.TurnText.load(tmp_path).told(None, None).patch == 128
    (tmp_path / prompt.TURNS_FILE).write_text('{"patch": 2}')
    with pytest.raises(ValueError, match="patch"):
        prompt.TurnText.load(tmp_path)


def test_the_shipped_vlm_records_its_training_crops():
    assert turn_text(VLMOptions()).patch == 128
