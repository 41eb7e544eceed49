"""Observation and action spaces, and the only Action <-> ToolCall encoding.

Native action: ``Dict(tool=Discrete(T + 1), params=Box(0, 1, (P,), float32))``.
``tool = 0`` is STOP; ``tool = i`` runs the i-th tool of the env's tool list. The first
``len(tool.params)`` entries of ``params`` are that tool's parameters, each normalised to
[0, 1] over its range (``Param.low`` .. ``Param.high``); the rest are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from tir_env.errors import InvalidActionError, did_you_mean
from tir_env.tools.base import resolve_params, tool_info
from tir_env.types import ToolCall

STOP = 0


def max_params(tools: Sequence[str]) -> int:
    """The largest parameter count among ``tools`` (at least 1, so the Box is never empty)."""
    return max([1, *(len(tool_info(t).params) for t in tools)])


def action_space(tools: Sequence[str], seed: int | None = None) -> spaces.Dict:
    """The native Dict action space for an ordered tool list."""
    p = max_params(tools)
    return spaces.Dict(
        {
            "tool": spaces.Discrete(len(tools) + 1),
            "params": spaces.Box(0.0, 1.0, shape=(p,), dtype=np.float32),
        },
        seed=seed,
    )


def history_width(tools: Sequence[str]) -> int:
    """Columns of one history row: valid, one-hot tool (T+1), params (P), reward, error."""
    return 1 + (len(tools) + 1) + max_params(tools) + 2


def observation_space(tools: Sequence[str], obs_size: int, history_len: int) -> spaces.Dict:
    """Dict(image, input: uint8 HxWx3; history: float32 K x F in [-1, 1])."""
    image = spaces.Box(0, 255, shape=(obs_size, obs_size, 3), dtype=np.uint8)
    history = spaces.Box(-1.0, 1.0, shape=(history_len, history_width(tools)), dtype=np.float32)
    return spaces.Dict({"image": image, "input": image, "history": history})


def decode_action(
    action: Any, tools: Sequence[str], *, width: int | None = None
) -> ToolCall | None:
    """Turn a native action into a :class:`ToolCall` (``None`` for STOP).

    ``width`` is ``max_params(tools)`` when the caller has it (an env, every step: computing
    it looks every tool up in the registry).

    Raises:
        InvalidActionError: not a mapping with ``tool`` and ``params``, a tool index out of
            range, or params of the wrong shape, non-finite or outside [0, 1].
    """
    if not isinstance(action, Mapping) or "tool" not in action:
        raise InvalidActionError(
            f"action must be a dict with keys 'tool' and 'params', got {type(action).__name__}"
        )
    index = _tool_index(action["tool"], len(tools))
    if index == STOP:
        return None
    name = tools[index - 1]
    spec = tool_info(name).params
    width = max_params(tools) if width is None else width
    raw = _params_vector(action.get("params", np.zeros(0)), width, len(spec))
    values = {k: p.denormalise(float(u)) for (k, p), u in zip(spec.items(), raw, strict=False)}
    return ToolCall(name, values)


def encode_call(
    call: ToolCall | None, tools: Sequence[str], *, width: int | None = None
) -> dict[str, Any]:
    """Inverse of :func:`decode_action` (parameters the call omits take their defaults).

    ``width``: ``max_params(tools)`` when the caller has it, as for :func:`decode_action`.

    Raises:
        InvalidActionError: the tool is not in this env's tool list.
        InvalidParameterError: a parameter the tool does not have (with a did-you-mean), or a
            value outside its range (never clipped silently).
    """
    params = np.zeros(max_params(tools) if width is None else width, dtype=np.float32)
    if call is None:
        return {"tool": STOP, "params": params}
    if call.tool not in tools:
        raise InvalidActionError(
            f"tool {call.tool!r} is not in this env's tools: {list(tools)}."
            + did_you_mean(call.tool, tools)
        )
    spec = tool_info(call.tool).params
    # raises on unknown names and out-of-range; integer parameters come back rounded, so a
    # half-integer is encoded as the value the tool runs with, not as a float32 tie that
    # decodes to the other neighbour
    resolved = resolve_params(call.tool, spec, call.params)
    for i, (k, p) in enumerate(spec.items()):
        params[i] = np.float32(p.normalise(resolved[k]))
    return {"tool": tools.index(call.tool) + 1, "params": params}


def _tool_index(value: Any, n_tools: int) -> int:
    try:
        array = np.asarray(value)
        if array.size != 1 or not np.issubdtype(array.dtype, np.integer):
            raise TypeError
        index = int(array.reshape(()))
    except (TypeError, ValueError):
        raise InvalidActionError(f"action['tool'] must be an integer, got {value!r}") from None
    if not 0 <= index <= n_tools:
        raise InvalidActionError(
            f"action['tool']={index} is out of range: 0 (STOP) .. {n_tools} ({n_tools} tools)"
        )
    return index


def _params_vector(value: Any, width: int, needed: int) -> np.ndarray:
    try:
        if value is None or np.asarray(value).dtype.kind not in "biuf":
            raise TypeError
        raw = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidActionError(f"action['params'] must be numeric, got {value!r}") from None
    if raw.shape[0] not in (width, needed):
        raise InvalidActionError(
            f"action['params'] must have shape ({width},), got {np.shape(value)}"
        )
    if not np.all(np.isfinite(raw)) or np.any(raw < 0) or np.any(raw > 1):
        raise InvalidActionError(
            f"action['params'] must be finite and in [0, 1] (normalised), got {raw.tolist()}; "
            "use tir_env.wrappers.ClipAction to clip instead"
        )
    return raw
