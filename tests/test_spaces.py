"""encode_call refuses what it cannot encode faithfully (named errors, no silent clipping)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tir_env.errors import InvalidActionError, InvalidParameterError
from tir_env.spaces import decode_action, encode_call
from tir_env.tools.base import tool_info
from tir_env.tools.presets import toolbox_tools
from tir_env.types import ToolCall

TOOLS = tuple(toolbox_tools("classical"))


def test_unknown_parameter_is_refused_with_did_you_mean():
    with pytest.raises(InvalidParameterError, match="Did you mean 'strength'"):
        encode_call(ToolCall("nlm_denoise", {"strenght": 1.0}), TOOLS)


def test_unknown_tool_has_did_you_mean():
    with pytest.raises(InvalidActionError, match="Did you mean 'nlm_denoise'"):
        encode_call(ToolCall("nlm_denoize", {}), TOOLS)


@given(tool=st.sampled_from([t for t in TOOLS if tool_info(t).params]), data=st.data())
def test_out_of_range_is_refused_and_in_range_round_trips(tool, data):
    name, p = next(iter(tool_info(tool).params.items()))
    span = max(p.high - p.low, 1.0)
    outside = data.draw(
        st.one_of(
            st.floats(p.high + 1e-3 * span, p.high + 10 * span),
            st.floats(p.low - 10 * span, p.low - 1e-3 * span),
        )
    )
    with pytest.raises(InvalidParameterError, match="outside"):
        encode_call(ToolCall(tool, {name: outside}), TOOLS)
    inside = data.draw(st.floats(p.low, p.high))
    decoded = decode_action(encode_call(ToolCall(tool, {name: inside}), TOOLS), TOOLS)
    assert decoded is not None and decoded.tool == tool
    expected = float(round(inside)) if p.integer else inside
    assert decoded.params[name] == pytest.approx(expected, abs=1e-5 * span + 0.5 * p.integer)


@pytest.mark.parametrize("value", [1.5, 2.5, 50.5])
def test_a_half_integer_parameter_decodes_to_the_value_the_tool_runs_with(value):
    # float32 normalisation once turned 1.5 into 1.4999999, decoded as 1 while the tool ran 2
    call = ToolCall("motion_rl_blind", {"iterations": value})
    decoded = decode_action(encode_call(call, TOOLS), TOOLS)
    assert decoded is not None and decoded.params["iterations"] == float(round(value))
