"""The PPO policy's action spaces: a catalogue of presets, or tools with chosen parameters.

Two ways for the SB3 policy to name a tool call (index 0 of the tool is always STOP):

``catalogue``
    ``Discrete(1 + C)``: entry ``i`` runs the preset ``catalogue[i - 1]``
    (:data:`agents.ppo.catalogue.PRESETS`), the shipped policy's space.
``params``
    ``MultiDiscrete([T + 1] + [B] * P)``: a tool of ``T`` (0 is STOP), then a bin ``0 .. B-1``
    for each of its first ``P`` parameters (:attr:`tir_env.types.Param`); parameters past
    ``P`` keep their defaults and the dims a tool lacks are ignored. Bin ``j`` of a parameter
    is ``low + j / (B - 1) * (high - low)`` except that the bin nearest the default is moved
    onto the default (the grid is piecewise linear through it), so the default call, which
    the expert (``exhaustive-ref``) and the catalogue mostly use, is exactly representable.
    Integer parameters are rounded, as the tool rounds them.

Both give what the ``ppo`` agent and the training VecEnv need from one object: the SB3 action
space, the native env action of a policy action, the :class:`~tir_env.types.ToolCall` it runs,
and the reference-free history rows of the policy's own past actions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from tir_env.errors import InvalidActionError, InvalidOptionError
from tir_env.spaces import encode_call
from tir_env.tools.base import tool_info
from tir_env.types import Param, ToolCall
from tir_env.wrappers import action_history, catalogue_actions

ActionSpaceKind = Literal["catalogue", "params"]

#: A policy action as the history stores it: a catalogue index, or (tool, bin, bin, ...).
Key = int | tuple[int, ...]


class PolicyActions(ABC):
    """How a policy's actions become tool calls (one subclass per ``action_space``)."""

    kind: ActionSpaceKind

    @property
    @abstractmethod
    def tools(self) -> tuple[str, ...]:
        """The tools the policy can call (an env must offer them)."""

    @abstractmethod
    def space(self) -> spaces.Space[Any]:
        """The SB3 action space."""

    @abstractmethod
    def row_width(self) -> int:
        """Columns of one history row."""

    @abstractmethod
    def key(self, action: Any) -> Key:
        """The action as plain ints (validated), as the history stores it."""

    @abstractmethod
    def call(self, action: Any) -> ToolCall | None:
        """The tool call of a policy action (``None``: STOP)."""

    @abstractmethod
    def history(self, actions: Sequence[Key], rows: int) -> np.ndarray:
        """Float32 ``(rows, row_width())`` rows of the last ``rows`` actions, oldest first."""

    def stop(self) -> Key:
        """The STOP action (tool 0; every bin 0)."""
        return self.key(np.zeros(self.space().shape or (), dtype=np.int64))

    def native(self, action: Any, env_tools: Sequence[str]) -> dict[str, Any]:
        """The env's native action (tool index into ``env_tools``, normalised params)."""
        return encode_call(self.call(action), env_tools)

    def check_tools(self, env_tools: Sequence[str]) -> None:
        """Raise now, not at the first step, when an env lacks one of the policy's tools.

        Raises:
            InvalidActionError: a tool of the policy is not in ``env_tools``.
        """
        missing = [t for t in self.tools if t not in env_tools]
        if missing:
            raise InvalidActionError(
                f"the env lacks the policy's tools {missing}; add them to its tools"
            )


class CatalogueActions(PolicyActions):
    """``Discrete(1 + C)`` over fixed presets (the shipped policy's space).

    Args:
        catalogue: Tool calls of actions ``1 .. C``.
    """

    kind: ActionSpaceKind = "catalogue"

    def __init__(self, catalogue: Sequence[ToolCall]) -> None:
        self.catalogue = tuple(catalogue)
        self._tables: dict[tuple[str, ...], list[dict[str, Any]]] = {}

    @property
    def tools(self) -> tuple[str, ...]:
        """The catalogue's tools, each once, in catalogue order."""
        return tuple(dict.fromkeys(call.tool for call in self.catalogue))

    def space(self) -> spaces.Discrete:
        """``Discrete(1 + C)``."""
        return spaces.Discrete(len(self.catalogue) + 1)

    def row_width(self) -> int:
        """``valid`` and a one-hot of ``1 + C`` actions."""
        return 2 + len(self.catalogue)

    def key(self, action: Any) -> int:
        """The catalogue index.

        Raises:
            InvalidActionError: outside ``0 .. C``.
        """
        index = int(np.asarray(action).reshape(()))
        if not 0 <= index <= len(self.catalogue):
            raise InvalidActionError(
                f"catalogue action {index} is out of range 0 (STOP) .. {len(self.catalogue)}"
            )
        return index

    def call(self, action: Any) -> ToolCall | None:
        """``None`` for 0, else the preset."""
        index = self.key(action)
        return self.catalogue[index - 1] if index else None

    def native(self, action: Any, env_tools: Sequence[str]) -> dict[str, Any]:
        """A copy of the precomputed native action (computed once per tool list)."""
        tools = tuple(env_tools)
        if tools not in self._tables:
            self._tables[tools] = catalogue_actions(self.catalogue, tools)
        native = self._tables[tools][self.key(action)]
        return {"tool": native["tool"], "params": native["params"].copy()}

    def check_tools(self, env_tools: Sequence[str]) -> None:
        """Also validate every preset's parameters (a named error)."""
        super().check_tools(env_tools)
        self.native(0, env_tools)

    def history(self, actions: Sequence[Key], rows: int) -> np.ndarray:
        """:func:`tir_env.wrappers.action_history` (byte-identical to what old policies saw)."""
        indices = [self.key(a) for a in actions]
        return action_history(indices, len(self.catalogue) + 1, rows)


class ParamActions(PolicyActions):
    """``MultiDiscrete([T + 1] + [bins] * n_params)``: a tool and bins of its parameters.

    Args:
        tools: The tools of actions ``1 .. T`` (0 is STOP).
        bins: Bins per parameter (at least 2).
        n_params: Parameters chosen per tool (its first ``n_params``; the rest take defaults).

    Raises:
        InvalidOptionError: ``bins < 2``, ``n_params < 1`` or no tools.
    """

    kind: ActionSpaceKind = "params"

    def __init__(self, tools: Sequence[str], bins: int = 9, n_params: int = 2) -> None:
        if bins < 2 or n_params < 1 or not tools:
            raise InvalidOptionError(
                f"the params action space needs tools, --bins >= 2 and --n-params >= 1 "
                f"(got {len(tools)} tools, bins={bins}, n_params={n_params})"
            )
        self._tools = tuple(dict.fromkeys(tools))
        self.bins, self.n_params = bins, n_params

    @property
    def tools(self) -> tuple[str, ...]:
        """The tools of actions ``1 .. T``."""
        return self._tools

    def space(self) -> spaces.MultiDiscrete:
        """``MultiDiscrete([T + 1, bins, ..., bins])``."""
        return spaces.MultiDiscrete([len(self._tools) + 1] + [self.bins] * self.n_params)

    def row_width(self) -> int:
        """``valid``, a one-hot of ``T + 1`` tools, and each chosen bin over ``bins - 1``."""
        return 2 + len(self._tools) + self.n_params

    def key(self, action: Any) -> tuple[int, ...]:
        """The action as a tuple of ints.

        Raises:
            InvalidActionError: the wrong length, or a value outside its dimension.
        """
        a = np.asarray(action).reshape(-1)
        if a.shape != (1 + self.n_params,) or not self.space().contains(a.astype(np.int64)):
            raise InvalidActionError(f"action {a.tolist()} is not in {self.space()}")
        return tuple(int(v) for v in a)

    def call(self, action: Any) -> ToolCall | None:
        """The tool and the values of its bins (``None`` for tool 0)."""
        tool, *levels = self.key(action)
        if tool == 0:
            return None
        name = self._tools[tool - 1]
        spec = list(tool_info(name).params.items())[: self.n_params]
        values = zip(spec, levels, strict=False)  # tools with fewer params ignore extra dims
        return ToolCall(name, {k: bin_value(p, j, self.bins) for (k, p), j in values})

    def action(self, call: ToolCall | None) -> np.ndarray:
        """The action nearest to ``call``: its tool and each parameter's nearest bin.

        Raises:
            InvalidActionError: the call's tool is not one of :attr:`tools`.
        """
        out = np.zeros(1 + self.n_params, dtype=np.int64)
        if call is None:
            return out
        if call.tool not in self._tools:
            raise InvalidActionError(
                f"tool {call.tool!r} is not in the policy's tools: {list(self._tools)}"
            )
        out[0] = self._tools.index(call.tool) + 1
        spec = list(tool_info(call.tool).params.items())[: self.n_params]
        for i, (k, p) in enumerate(spec):
            out[1 + i] = nearest_bin(p, float(call.params.get(k, p.default)), self.bins)
        return out

    def history(self, actions: Sequence[Key], rows: int) -> np.ndarray:
        """Rows ``[valid, one-hot(tool), bin / (bins - 1) of the tool's parameters]``."""
        out = np.zeros((rows, self.row_width()), dtype=np.float32)
        n_tools = len(self._tools) + 1
        for row, action in zip(out, list(actions)[-rows:], strict=False):
            tool, *levels = self.key(action)
            row[0], row[1 + tool] = 1.0, 1.0
            used = self._n_used(tool)
            row[1 + n_tools : 1 + n_tools + used] = np.asarray(levels[:used]) / (self.bins - 1)
        return out

    def mask(self, action: Any) -> np.ndarray:
        """Which dims of ``action`` mean something (the tool, and its chosen parameters)."""
        tool = self.key(action)[0]
        out = np.zeros(1 + self.n_params, dtype=bool)
        out[: 1 + self._n_used(tool)] = True
        return out

    def _n_used(self, tool: int) -> int:
        return 0 if tool == 0 else min(self.n_params, len(self._param_counts[tool - 1]))

    @cached_property
    def _param_counts(self) -> list[tuple[str, ...]]:
        return [tuple(tool_info(t).params) for t in self._tools]


def anchor(p: Param, bins: int) -> int:
    """The bin that holds the default: the linear grid's bin nearest to it."""
    return int(np.clip(round(p.normalise(p.default) * (bins - 1)), 0, bins - 1))


def bin_value(p: Param, j: int, bins: int) -> float:
    """The value of bin ``j`` of parameter ``p``.

    Piecewise linear: ``low`` at bin 0, the default at :func:`anchor`, ``high`` at
    ``bins - 1``; rounded for integer parameters, clipped into range.
    """
    c = anchor(p, bins)
    if j == c:
        value = p.default
    elif j < c:
        value = p.low + j / c * (p.default - p.low)
    else:
        value = p.default + (j - c) / (bins - 1 - c) * (p.high - p.default)
    value = float(np.clip(value, p.low, p.high))  # float error must not leave the range
    return float(round(value)) if p.integer else value


def nearest_bin(p: Param, value: float, bins: int) -> int:
    """The bin whose value is nearest to ``value`` (ties: the lower bin)."""
    values = np.array([bin_value(p, j, bins) for j in range(bins)])
    return int(np.argmin(np.abs(values - value)))


def bin_width(p: Param, bins: int) -> float:
    """The widest gap between neighbouring bins (the round trip's error bound)."""
    values = [bin_value(p, j, bins) for j in range(bins)]
    return float(max(np.diff(values))) if bins > 1 else 0.0


def make_actions(
    kind: str, catalogue: Sequence[ToolCall], bins: int = 9, n_params: int = 2
) -> PolicyActions:
    """The action space ``kind`` over a catalogue (``params``: the catalogue's tools).

    Raises:
        InvalidOptionError: an unknown ``kind``, or bad ``bins`` / ``n_params``.
    """
    if kind == "catalogue":
        return CatalogueActions(catalogue)
    if kind == "params":
        return ParamActions(tuple(c.tool for c in catalogue), bins, n_params)
    raise InvalidOptionError(f"action_space must be 'catalogue' or 'params', got {kind!r}")
