"""The line probe runs end to end on a small tiny model and reports a bounded accuracy."""

from __future__ import annotations

import json

from agents.vlm.model import LoraSpec, TinySpec, build_tiny_for_tools, load_vlm
from agents.vlm.sft import SFTConfig
from benchmarks import vlm_line_probe as probe
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.tools.base import tool_names


def test_the_probe_trains_and_scores(tmp_path):
    tools = tuple(tool_names(kinds=("classical",)))
    model = build_tiny_for_tools(tmp_path / "tiny", tools, TinySpec(vocab_size=600, image_size=56))
    out = tmp_path / "probe.json"
    args = ["--model", str(model), "--system", "short", "--steps", "2", "--evals", "3"]
    assert probe.main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["steps"] == 2 and result["n"] == 3 and 0 <= result["accuracy"] <= 1
    assert result["chance"] == 1 / len(probe.preferred_tools(tools)) == 1 / 8


def test_the_swap_check_answers_once_per_type(tmp_path):
    tools = tuple(tool_names(kinds=("classical",)))
    model = build_tiny_for_tools(tmp_path / "tiny", tools, TinySpec(vocab_size=600, image_size=56))
    adapter = tmp_path / "adapter"
    load_vlm(model, lora=LoraSpec(r=2, alpha=4), trainable=True).save_adapter(adapter)
    SFTConfig(perception_hint=True, detail="none").turn.save(adapter)
    out = tmp_path / "swap.txt"
    assert probe.main(["--model", str(model), "--swap", str(adapter), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert [line.split(" -> ")[0] for line in lines] == list(AGENTICIR_TYPES)


def test_an_answer_with_line_breaks_stays_on_one_line():
    answer = "a\nb\rc\x85d\u2028e\x1cf"
    assert probe.one_line(answer) == "a\\u000ab\\u000dc\\u0085d\\u2028e\\u001cf"
    assert probe.one_line(answer).splitlines() == [probe.one_line(answer)]
