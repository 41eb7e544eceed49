"""The strict parser of the VLM's answers.

An answer is exactly one tool call, ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
(surrounding whitespace and end-of-turn tokens allowed, nothing else), naming one of the env's
tools with valid parameters, or the stop call ``{"name": "stop", "arguments": {}}``. Anything
else is a :class:`ParseError` with a ``kind`` and a message: the rollout records it and pays the
reward's format penalty; :func:`parse_action` never raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agents.vlm.prompt import STOP_NAME
from tir_env.errors import did_you_mean
from tir_env.tools.base import resolve_params, tool_info
from tir_env.types import ToolCall

ErrorKind = Literal[
    "no_call", "bad_json", "bad_schema", "unknown_tool", "bad_arguments", "extra_text", "internal"
]

#: End-of-turn markers a decoder may leave at the end of an answer.
END_MARKERS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>", "</s>", "<eos>")
_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class Stop:
    """The model asked to stop."""

    def __str__(self) -> str:
        return "STOP"


STOP = Stop()


@dataclass(frozen=True)
class ParseError:
    """A malformed answer, as recorded in the trajectory.

    Attributes:
        kind: What was wrong.
        message: A readable explanation.
        text: The answer (truncated to 200 characters).
    """

    kind: ErrorKind
    message: str
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


Parsed = ToolCall | Stop | ParseError


def parse_action(text: str, tools: Sequence[str]) -> Parsed:
    """Parse one answer against the env's tool list; never raises.

    Example:
        >>> parse_action('<tool_call>{"name": "stop", "arguments": {}}</tool_call>', [])
        Stop()
    """
    try:
        return _parse(str(text), tuple(tools))
    except Exception as err:  # noqa: BLE001 - the rollout must never crash on model output
        return ParseError("internal", f"{type(err).__name__}: {err}", str(text)[:200])


def _strip(text: str) -> str:
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for marker in END_MARKERS:
            if text.endswith(marker):
                text, changed = text[: -len(marker)].rstrip(), True
    return text


def _parse(raw: str, tools: tuple[str, ...]) -> Parsed:
    text = _strip(raw)
    short = raw[:200]
    calls = _CALL.findall(text)
    if not calls:
        return ParseError("no_call", "no <tool_call>...</tool_call> in the answer", short)
    if len(calls) > 1:
        return ParseError("extra_text", f"{len(calls)} tool calls; give exactly one", short)
    if not (text.startswith("<tool_call>") and text.endswith("</tool_call>")):
        return ParseError("extra_text", "text outside the <tool_call> tags", short)
    try:
        body = json.loads(calls[0], parse_constant=_reject_constant)
    except ValueError as err:
        return ParseError("bad_json", f"invalid JSON in the tool call: {err}", short)
    return _validate(body, tools, short)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _validate(body: object, tools: tuple[str, ...], short: str) -> Parsed:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return ParseError("bad_schema", 'expected {"name": <string>, "arguments": {...}}', short)
    extra = sorted(set(body) - {"name", "arguments"})
    if extra:
        return ParseError("bad_schema", f"unexpected keys {extra}", short)
    name, args = body["name"], body.get("arguments", {})
    if not isinstance(args, dict):
        return ParseError("bad_schema", "arguments must be an object", short)
    if name == STOP_NAME:
        if args:
            return ParseError("bad_arguments", "stop takes no arguments", short)
        return STOP
    if name not in tools:
        hint = did_you_mean(name, tools)
        return ParseError("unknown_tool", f"unknown tool {name!r}.{hint}", short)
    values: dict[str, float] = {}
    for key, value in args.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            return ParseError("bad_arguments", f"argument {key!r} must be a number", short)
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            return ParseError("bad_arguments", f"argument {key!r} must be finite", short)
        values[str(key)] = number
    try:
        resolve_params(name, tool_info(name).params, values)
    except ValueError as err:  # InvalidParameterError: unknown name or out of range
        return ParseError("bad_arguments", str(err), short)
    return ToolCall(name, values)
