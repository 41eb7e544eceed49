"""The Agent protocol, typed agent options, the agent registry and a rollout helper.

An agent follows Stable-Baselines3's ``PolicyPredictor``:
``predict(obs, state=None, episode_start=None, deterministic=True) -> (action, state)``,
plus ``reset(env, info)`` at the start of each episode. Subclasses implement :meth:`Agent.act`
(one observation -> one action); ``predict`` is written once, here. Agents that need more than
the observation (the oracle reads the true degradations; search agents look ahead through the
env's tool pool) ask the :class:`~tir_env.types.AgentContext` passed to ``reset``.

Options: each agent declares a frozen dataclass of its options (``Options``, a subclass of
:class:`AgentOptions`); ``make_agent("ppo", deterministic="false")``, ``--agent-arg
ppo.deterministic=false`` and typed Python callers all go through one parser
(:func:`tir_env.config_cli.config_from_mapping`), which reads strings by the field's type and
raises :class:`~tir_env.errors.UnknownConfigFieldError` (with a did-you-mean) or
:class:`~tir_env.errors.ConfigValueError`. Agents read ``self.options``, never raw strings.

Register an agent class with :func:`register_agent` (keyed on its ``name`` class variable).
The built-ins are the agents registered in any module of the :mod:`agents` package, found on
the first lookup (a module whose optional dependency is missing is skipped); third-party
agents register through the entry-point group ``tir.agents``
(``my-agent = "my_package.module:MyAgent"``; ``docs/extending.md``).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from tir_env.config_cli import config_from_mapping
from tir_env.errors import TIRError
from tir_env.registry import Registry
from tir_env.spaces import encode_call
from tir_env.types import Action, AgentContext, AgentState, Obs, StepRecord, ToolCall

if TYPE_CHECKING:
    from tir_env.env import TIREnv

__all__ = [
    "AGENTS",
    "Action",
    "Agent",
    "AgentContext",
    "AgentOptions",
    "AgentState",
    "Episode",
    "Obs",
    "PlanAgent",
    "agent_names",
    "agent_options",
    "make_agent",
    "register_agent",
    "rollout",
]


def episode_digest(env: Any, info: Mapping[str, Any] | None) -> int:
    """A number that names the episode: its photo, degradations and their drawn parameters.

    Those come from the episode's seed alone, so the number is the same on every machine.
    The input's pixels are not: a degradation's last float bits differ between CPUs, and one
    pixel rounded to the other 8-bit level gave the pixels' checksum (what named an episode
    before) and so a whole ``random`` episode away. An episode without sampled degradations
    (an image a user passed in, named only by its file or ``given``) or without info is
    named by the input's pixels; no env: 0.
    """
    sampled = bool(info and info.get("degradations") and "degradation_params" in info)
    if info and sampled and info.get("image_id") is not None:
        named = (info["image_id"], info.get("degradations"), info["degradation_params"])
        return zlib.crc32(repr(named).encode())
    return zlib.crc32(env.input_image().tobytes()) if env is not None else 0


@dataclass(frozen=True)
class AgentOptions:
    """Options every agent takes (subclass it to add an agent's own).

    Attributes:
        seed: Seed of the agent's own randomness (``random``, ``agenticir`` and ``vlm`` mix
            in :func:`episode_digest`, so an episode gets the same choices in any run order
            and on any machine).
    """

    seed: int = 0


class Agent:
    """Base class of TIR agents.

    Attributes:
        name: Registry name.
        description: One line for ``tir agents`` and the leaderboard.
        Options: The dataclass of this agent's options (:class:`AgentOptions` and up).
        options: This agent's options, parsed by type.
    """

    name: ClassVar[str] = "agent"
    description: ClassVar[str] = ""
    Options: ClassVar[type[AgentOptions]] = AgentOptions
    #: True when ``tool_executions`` already covers the env's calls (search agents that
    #: replay a path they executed while planning).
    owns_execution_count: ClassVar[bool] = False
    #: True when the episode's count is what the env ran (``env.executions_run``): every
    #: run this agent asks for, look-ahead or step, goes through the env, and one asked for
    #: twice counts once unless the pool ran it again. :attr:`tool_executions` is then ignored.
    counts_env_runs: ClassVar[bool] = False
    #: True when the agent is told the episode's true degradations (``oracle``): it runs on
    #: benchmark episodes only, and ``tir restore`` refuses it before any work.
    needs_true_degradations: ClassVar[bool] = False

    def __init__(self, seed: int | str = 0, **options: Any) -> None:
        """Parse ``options`` (and ``seed``) into :attr:`Options`.

        Raises:
            UnknownConfigFieldError: an option this agent does not have.
            ConfigValueError: a value that does not fit its option's type.
        """
        self.options: AgentOptions = type(self).parse_options({"seed": seed, **options})
        self.seed = self.options.seed
        self._env: AgentContext | None = None
        self.info: dict[str, Any] = {}
        self.tool_executions = 0

    @classmethod
    def parse_options(cls, values: Mapping[str, Any]) -> AgentOptions:
        """``values`` (strings or typed) as this agent's :attr:`Options` (see the module doc)."""
        return config_from_mapping(cls.Options, values, f"agent {cls.name!r}")

    @property
    def env(self) -> AgentContext:
        """The env of the current episode (raises before the first ``reset``)."""
        if self._env is None:
            raise TIRError(f"agent {self.name!r} has no env yet: call reset(env, info) first")
        return self._env

    @property
    def has_env(self) -> bool:
        """Whether ``reset`` gave this agent an env (``tir restore`` may run without one)."""
        return self._env is not None

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Start of an episode: remember the (unwrapped) env and the reset info."""
        self._env = getattr(env, "unwrapped", env)
        self.info = dict(info or {})
        self.tool_executions = 0

    def episode_extra(self) -> dict[str, Any]:
        """Fields merged into the episode's JSONL record (accounting, errors); none by default."""
        return {}

    def predict(
        self,
        observation: Obs,
        state: AgentState = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[Action, AgentState]:
        """Choose the next action (SB3 ``PolicyPredictor`` signature); the state passes through.

        Subclasses implement :meth:`act`; ``episode_start`` (SB3's flag of a new episode)
        calls :meth:`start_episode` first.
        """
        if episode_start is not None and bool(np.asarray(episode_start).reshape(-1)[0]):
            self.start_episode()
        return self.act(observation, deterministic), state

    def start_episode(self) -> None:
        """Hook: ``predict`` saw ``episode_start`` (forget per-episode memory); nothing here."""

    def act(self, observation: Obs, deterministic: bool = True) -> Action:
        """The next native action (``{"tool": index, "params": array}``; tool 0 is STOP).

        Raises:
            NotImplementedError: the subclass implements neither ``act`` nor ``predict``.
        """
        raise NotImplementedError(f"agent {self.name!r} must implement act() or predict()")


class PlanAgent(Agent):
    """Runs a list of tool calls made at ``reset``, in order, then stops.

    Subclasses implement :meth:`make_plan`; the plan is truncated to the env's ``max_steps``.
    """

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Start an episode and make its plan."""
        super().reset(env, info)
        self.plan: list[ToolCall] = list(self.make_plan())[: self.env.config.max_steps]

    def make_plan(self) -> Sequence[ToolCall]:
        """The tool calls to run this episode, in order (subclasses implement it).

        Raises:
            NotImplementedError: the subclass does not implement it.
        """
        raise NotImplementedError(f"agent {self.name!r} must implement make_plan()")

    def act(self, observation: Obs, deterministic: bool = True) -> Action:
        """Next call of the plan, or STOP when it is exhausted."""
        call = self.plan.pop(0) if self.plan else None
        return encode_call(call, self.env.tools)


AgentFactory = Callable[..., Agent]
AGENTS: Registry[AgentFactory] = Registry(
    "agent", entry_point_group="tir.agents", builtins=("agents",)
)

_A = TypeVar("_A", bound=type[Agent])


def register_agent(cls: _A) -> _A:
    """Class decorator: register an :class:`Agent` subclass under ``cls.name``."""
    return AGENTS.register(cls)


def make_agent(name: str, **kwargs: Any) -> Agent:
    """Build the agent called ``name`` (did-you-mean on unknown names).

    ``kwargs`` are its options, as strings (command line) or typed values (see the module
    docstring).
    """
    return AGENTS.get(name)(**kwargs)


def agent_options(name: str, values: Mapping[str, Any]) -> AgentOptions | None:
    """Parse ``values`` as agent ``name``'s options without building it (checks before a run).

    ``None`` for an agent factory that declares no ``Options`` (it checks when built).

    Raises:
        UnknownNameError: no agent of that name.
        UnknownConfigFieldError: an option the agent does not have.
        ConfigValueError: a value that does not fit its option's type.
    """
    factory = AGENTS.get(name)
    parse = getattr(factory, "parse_options", None)
    return parse({"seed": 0, **values}) if callable(parse) else None


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


def executions_of(env: Any, agent: Agent, calls: int) -> int:
    """The tool executions of the episode ``agent`` just ran in ``env`` with ``calls`` calls.

    Its own count plus the env's calls, or its own count alone when it replays a path it
    executed while planning (:attr:`Agent.owns_execution_count`), or what the env ran
    (:attr:`Agent.counts_env_runs`, where the env counts it).
    """
    raw = getattr(env, "unwrapped", env)  # gym.make's wrappers do not forward attributes
    if agent.counts_env_runs and hasattr(raw, "executions_run"):
        return int(raw.executions_run)
    return agent.tool_executions + (0 if agent.owns_execution_count else calls)


def rollout(env: Any, agent: Agent, seed: int, options: dict[str, Any] | None = None) -> Episode:
    """Run one episode of ``agent`` in ``env`` from ``reset(seed, options)`` to its end.

    ``tool_executions`` counts the env's tool calls plus any the agent ran on its own
    (search agents try candidates through the pool before acting), or what the env ran
    for an agent charged by it (:func:`executions_of`).
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
        tool_executions=executions_of(env, agent, calls),
        wall_time_s=time.perf_counter() - start,
        total_reward=total,
        extra=agent.episode_extra(),
    )


if TYPE_CHECKING:

    def _env_is_a_context(env: TIREnv) -> AgentContext:
        return env  # mypy proves here that TIREnv satisfies AgentContext
