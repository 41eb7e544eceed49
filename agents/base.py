"""The Agent protocol, the agent registry and a rollout helper.

An agent follows Stable-Baselines3's ``PolicyPredictor``:
``predict(obs, state=None, episode_start=None, deterministic=True) -> (action, state)``,
plus ``reset(env, info)`` at the start of each episode. Agents that need more than the
observation (the oracle reads the true degradations; search agents use the env's tool pool)
take it from the ``env`` and ``info`` passed to ``reset``.

Register an agent class with :func:`register_agent` (keyed on its ``name`` class variable).
The built-ins are the agents registered in any module of the :mod:`agents` package, found on
the first lookup (a module whose optional dependency is missing is skipped); third-party
agents register through the entry-point group ``tir.agents``
(``my-agent = "my_package.module:MyAgent"``; ``docs/extending.md``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from tir_env.registry import Registry
from tir_env.spaces import encode_call
from tir_env.types import StepRecord, ToolCall

Obs = dict[str, np.ndarray]
Action = dict[str, Any]


def none_if_blank(value: Any) -> Any:
    """A command-line agent option (``--agent-arg k=none``): ``"none"`` or ``""`` -> ``None``."""
    return None if isinstance(value, str) and value.lower() in ("", "none") else value


class Agent(ABC):
    """Base class of TIR agents.

    Attributes:
        name: Registry name.
        description: One line for ``tir agents`` and the leaderboard.
    """

    name: ClassVar[str] = "agent"
    description: ClassVar[str] = ""
    #: True when ``tool_executions`` already covers the env's calls (search agents that
    #: replay a path they executed while planning).
    owns_execution_count: ClassVar[bool] = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.env: Any = None
        self.info: dict[str, Any] = {}
        self.tool_executions = 0

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Start of an episode: remember the (unwrapped) env and the reset info."""
        self.env = getattr(env, "unwrapped", env)
        self.info = dict(info or {})
        self.tool_executions = 0

    def episode_extra(self) -> dict[str, Any]:
        """Fields merged into the episode's JSONL record (accounting, errors); none by default."""
        return {}

    @abstractmethod
    def predict(
        self,
        observation: Obs,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[Action, tuple[np.ndarray, ...] | None]:
        """Choose the next action (SB3 ``PolicyPredictor`` signature)."""


class PlanAgent(Agent):
    """Runs a list of tool calls made at ``reset``, in order, then stops.

    Subclasses implement :meth:`make_plan`; the plan is truncated to the env's ``max_steps``.
    """

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Start an episode and make its plan."""
        super().reset(env, info)
        self.plan: list[ToolCall] = list(self.make_plan())[: self.env.config.max_steps]

    @abstractmethod
    def make_plan(self) -> Sequence[ToolCall]:
        """The tool calls to run this episode, in order."""

    def predict(
        self,
        observation: Obs,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[Action, tuple[np.ndarray, ...] | None]:
        """Next call of the plan, or STOP when it is exhausted."""
        call = self.plan.pop(0) if self.plan else None
        return encode_call(call, self.env.tools), state


AgentFactory = Callable[..., Agent]
AGENTS: Registry[AgentFactory] = Registry(
    "agent", entry_point_group="tir.agents", builtins=("agents",)
)

_A = TypeVar("_A", bound=type[Agent])


def register_agent(cls: _A) -> _A:
    """Class decorator: register an :class:`Agent` subclass under ``cls.name``."""
    return AGENTS.register(cls)


def make_agent(name: str, **kwargs: Any) -> Agent:
    """Build the agent called ``name`` (did-you-mean on unknown names)."""
    return AGENTS.get(name)(**kwargs)


def agent_names() -> list[str]:
    """Names of every registered agent, plug-ins included."""
    return AGENTS.names()


@dataclass
class Episode:
    """What one agent did on one episode."""

    image_id: str
    degradations: list[str]
    records: list[StepRecord]
    metrics_input: dict[str, float]
    metrics_output: dict[str, float]
    tool_executions: int
    wall_time_s: float
    total_reward: float
    extra: dict[str, Any] = field(default_factory=dict)


def rollout(env: Any, agent: Agent, seed: int, options: dict[str, Any] | None = None) -> Episode:
    """Run one episode of ``agent`` in ``env`` from ``reset(seed, options)`` to its end.

    ``tool_executions`` counts the env's tool calls plus any the agent ran on its own
    (search agents try candidates through the pool before acting).
    """
    start = time.perf_counter()
    obs, info = env.reset(seed=seed, options=options)
    agent.reset(env, info)
    total, done, first = 0.0, False, True
    metrics_input = dict(info["metrics"])
    while not done:
        action, _ = agent.predict(obs, episode_start=np.array([first]))
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        done, first = terminated or truncated, False
    records = list(info["history"])
    calls = sum(1 for r in records if r.call is not None)
    return Episode(
        image_id=info["image_id"],
        degradations=list(info["degradations"]),
        records=records,
        metrics_input=metrics_input,
        metrics_output=dict(info["metrics"]),
        tool_executions=agent.tool_executions + (0 if agent.owns_execution_count else calls),
        wall_time_s=time.perf_counter() - start,
        total_reward=total,
        extra=agent.episode_extra(),
    )
