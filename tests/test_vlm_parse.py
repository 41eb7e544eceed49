"""The strict parser of VLM answers, and the prompt it is written for."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.vlm import prompt
from agents.vlm.parse import STOP, ParseError, Stop, parse_action
from tir_env.tools.base import tool_info, tool_names
from tir_env.types import ToolCall

TOOLS = tuple(tool_names(kinds=("classical",)))


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_round_trips(name):
    spec = tool_info(name).params
    default = ToolCall(name, {})
    assert parse_action(prompt.format_call(default), TOOLS) == default
    mid = ToolCall(name, {k: float(f"{(p.low + p.high) / 2:.4g}") for k, p in spec.items()})
    if any(p.integer for p in spec.values()):
        mid = ToolCall(name, {k: round(v) if spec[k].integer else v for k, v in mid.params.items()})
    parsed = parse_action(prompt.format_call(mid) + "<|im_end|>", TOOLS)
    assert isinstance(parsed, ToolCall) and parsed.tool == name
    for k, v in mid.params.items():
        assert parsed.params.get(k, spec[k].default) == pytest.approx(v)


def test_stop():
    assert parse_action(prompt.format_call(None), TOOLS) is STOP
    assert parse_action('  <tool_call>{"name": "stop"}</tool_call>\n<|im_end|>', TOOLS) == Stop()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("denoise please", "no_call"),
        ("", "no_call"),
        ("<tool_call>{'name': 'clahe'}</tool_call>", "bad_json"),
        ('<tool_call>{"name": "clahe", "arguments": {"tiles": NaN}}</tool_call>', "bad_json"),
        ('<tool_call>["clahe"]</tool_call>', "bad_schema"),
        ('<tool_call>{"arguments": {}}</tool_call>', "bad_schema"),
        ('<tool_call>{"name": "clahe", "args": {}}</tool_call>', "bad_schema"),
        ('<tool_call>{"name": "clahe", "arguments": [1]}</tool_call>', "bad_schema"),
        ('<tool_call>{"name": "clahee", "arguments": {}}</tool_call>', "unknown_tool"),
        ('<tool_call>{"name": "clahe", "arguments": {"tiles": 99}}</tool_call>', "bad_arguments"),
        ('<tool_call>{"name": "clahe", "arguments": {"tile": 4}}</tool_call>', "bad_arguments"),
        ('<tool_call>{"name": "clahe", "arguments": {"tiles": "4"}}</tool_call>', "bad_arguments"),
        ('<tool_call>{"name": "clahe", "arguments": {"tiles": true}}</tool_call>', "bad_arguments"),
        (
            '<tool_call>{"name": "clahe", "arguments": {"tiles": 1e999}}</tool_call>',
            "bad_arguments",
        ),
        ('<tool_call>{"name": "stop", "arguments": {"x": 1}}</tool_call>', "bad_arguments"),
        ('ok <tool_call>{"name": "clahe"}</tool_call>', "extra_text"),
        ('<tool_call>{"name": "clahe"}</tool_call> done', "extra_text"),
        (
            '<tool_call>{"name": "clahe"}</tool_call><tool_call>{"name": "stop"}</tool_call>',
            "extra_text",
        ),
    ],
)
def test_malformed_answers_are_records_not_exceptions(text, kind):
    parsed = parse_action(text, TOOLS)
    assert isinstance(parsed, ParseError), parsed
    assert parsed.kind == kind, parsed
    assert parsed.message and len(parsed.text) <= 200


def test_unknown_tool_gets_a_hint_and_env_tools_restrict():
    parsed = parse_action('<tool_call>{"name": "gama_correction"}</tool_call>', TOOLS)
    assert isinstance(parsed, ParseError) and "gamma_correction" in parsed.message
    only = ("clahe",)
    assert isinstance(parse_action(prompt.format_call(ToolCall("tv_denoise")), only), ParseError)


@given(st.text(max_size=300))
def test_random_text_never_raises(text):
    assert isinstance(parse_action(text, TOOLS), ToolCall | Stop | ParseError)


@given(st.text(max_size=120))
def test_random_text_in_tags_never_raises(text):
    assert isinstance(parse_action(f"<tool_call>{text}</tool_call>", TOOLS), Stop | ParseError)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.sampled_from(TOOLS + ("stop", "nope")),
    st.dictionaries(st.text(max_size=10), _json, max_size=3),
)
def test_random_arguments_never_raise(name, args):
    text = "<tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>"
    parsed = parse_action(text, TOOLS)
    assert isinstance(parsed, ToolCall | Stop | ParseError)
    if isinstance(parsed, ToolCall):  # whatever parses is a valid call of the registry
        from tir_env.tools.base import validate_call

        validate_call(parsed)


# ----------------------------------------------------------------------------- prompt
def test_schema_is_generated_from_the_registry():
    schema = {s["name"]: s for s in prompt.tool_schema(TOOLS, "full")}
    assert set(schema) == set(TOOLS)
    for name in TOOLS:
        info = tool_info(name)
        assert schema[name]["task"] == info.task
        assert schema[name]["description"] == info.description
        assert set(schema[name]["parameters"]) == set(info.params)
        for k, p in info.params.items():
            entry = schema[name]["parameters"][k]
            assert (entry["minimum"], entry["maximum"]) == pytest.approx((p.low, p.high))
            assert entry["default"] == pytest.approx(p.default)


@pytest.mark.parametrize("detail", ["full", "brief"])
def test_system_prompt_lists_every_tool_and_the_format(detail):
    text = prompt.system_prompt(TOOLS, detail)
    assert all(name in text for name in TOOLS)
    assert prompt.format_call(None) in text
    assert len(prompt.system_prompt(TOOLS, "brief")) < len(prompt.system_prompt(TOOLS, "full"))


def test_format_call_omits_defaults():
    assert prompt.format_call(ToolCall("gamma_correction", {"gamma": 1.5})) == (
        '<tool_call>{"name": "gamma_correction", "arguments": {}}</tool_call>'
    )
    assert '"gamma": 2' in prompt.format_call(ToolCall("gamma_correction", {"gamma": 2.0}))


@pytest.mark.parametrize(("n_calls", "stops"), [(0, True), (1, True), (2, False)])
def test_dialogue_turns(n_calls, stops):
    import numpy as np

    from tir_env.types import StepRecord

    images = [np.zeros((16 * (k + 1), 16, 3), np.uint8) for k in range(n_calls + 1)]
    calls = [ToolCall("clahe")] * n_calls
    records = [StepRecord(c, {}, {}, 0.0) for c in calls]
    msgs = prompt.dialogue(TOOLS, images, calls, records, max_steps=2, detail="brief")
    roles = [m["role"] for m in msgs]
    assert roles[:2] == ["system", "user"]
    assert roles[2:] == ["assistant", "user"] * (len(roles[2:]) // 2) + ["assistant"] * (
        len(roles[2:]) % 2
    )
    assert (msgs[-1]["content"] == prompt.format_call(None)) == stops
    users = [m for m in msgs if m["role"] == "user"]
    assert "Steps left: 2" in users[0]["content"][1]["text"]
    if len(users) > 1:
        assert "History:\n1. clahe" in users[1]["content"][1]["text"]
        assert "16x32 pixels" in users[1]["content"][1]["text"]
