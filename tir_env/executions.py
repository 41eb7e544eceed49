"""What an episode's tool calls cost: calls as a step runs them, and the executions that ran.

Two helpers of :class:`tir_env.env.TIREnv`:

* :func:`as_stepped`: a call exactly as a step runs it. Actions carry parameters in float32
  on [0, 1], so a call a planner looks ahead (``omega=0.85``) steps as a neighbouring float
  (``0.8500000238``); looked ahead as it will step, the step is the tool pool's cache hit
  instead of a second execution.
* :class:`ExecutionLedger`: the tool executions an episode ran, steps and look-aheads
  together (``env.executions_run``). Each distinct (image, call) pair counts once: asked for
  again (a look-ahead that the step then takes, two plans sharing their first calls), the
  pool's cache serves it. A repeat the pool ran again (a pool without a cache, a failed call,
  which is never cached, an evicted result) counts again. An invalid call runs nothing and is
  not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tir_env.errors import TIRError
from tir_env.images import image_digest
from tir_env.spaces import decode_action, encode_call
from tir_env.tools.base import validate_call
from tir_env.tools.pool import ToolResult
from tir_env.types import ToolCall


def as_stepped(call: ToolCall, tools: Sequence[str], width: int | None = None) -> ToolCall:
    """``call`` as a step of an env offering ``tools`` runs it: encoded, then decoded.

    A call no action can encode (a tool outside ``tools``, a value out of range) is kept as
    it is. ``width``: ``max_params(tools)`` when the caller has it.
    """
    try:
        return decode_action(encode_call(call, tools, width=width), tools, width=width) or call
    except TIRError:
        return call


class ExecutionLedger:
    """The tool executions one episode ran (see the module docstring)."""

    def __init__(self) -> None:
        self.count = 0
        self._runs: set[tuple[str, ToolCall]] = set()
        self._last: tuple[torch.Tensor, str] | None = None  # the last image hashed

    def note(
        self, image: torch.Tensor, calls: Sequence[ToolCall], results: Sequence[ToolResult]
    ) -> None:
        """Count ``calls`` on ``image`` (keyed as the pool keys them) by their ``results``."""
        digest: str | None = None
        for call, result in zip(calls, results, strict=True):
            try:
                resolved = validate_call(call)
            except TIRError:
                continue
            digest = digest or self._digest(image)
            key = (digest, resolved)
            if key not in self._runs:
                self._runs.add(key)
                self.count += 1
            elif not result.cached:  # asked again and run again
                self.count += 1

    def _digest(self, image: torch.Tensor) -> str:
        """:func:`image_digest`, kept for the last image (the working image between steps)."""
        if self._last is None or self._last[0] is not image:
            self._last = (image, image_digest(image))
        return self._last[1]
