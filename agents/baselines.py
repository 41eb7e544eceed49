"""Training-free baseline agents: random, fixed pipeline and oracle."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from agents.base import Action, Agent, Obs, register_agent
from tir_env.degradations.base import PROTOCOL_ORDER, make_degradation
from tir_env.spaces import encode_call
from tir_env.tools.base import tool_info
from tir_env.types import TASKS, ToolCall

#: The classical tool used for each task by the fixed and oracle agents (the strongest
#: default-parameter tool per task in docs/tools.md).
PREFERRED_TOOL: dict[str, str] = {
    "dehazing": "dark_channel_prior",
    "deraining": "derain_opening",
    "brightening": "gamma_correction",
    "motion_deblurring": "motion_wiener_blind",
    "defocus_deblurring": "defocus_wiener",
    "super_resolution": "back_projection_x4",
    "denoising": "dct_denoise",
    "jpeg_artifact_removal": "jpeg_tv",
}


def preferred_tool(task: str, tools: tuple[str, ...]) -> str | None:
    """The preferred tool for ``task`` if the env offers it, else its first tool for it."""
    choice = PREFERRED_TOOL.get(task)
    if choice in tools:
        return choice
    return next((t for t in tools if tool_info(t).task == task), None)


class _PlanAgent(Agent):
    """Runs a list of tool calls in order, then stops."""

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        super().reset(env, info)
        self.plan: list[ToolCall] = self.make_plan()

    def make_plan(self) -> list[ToolCall]:
        raise NotImplementedError

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


@register_agent
class RandomAgent(Agent):
    """Uniformly random tool (never STOP) with random parameters until the step budget."""

    name = "random"
    description = "uniform random tool and parameters, no STOP"

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Seed this episode's generator from the agent seed and the input image."""
        super().reset(env, info)
        # Seeded by the input itself, so the same episode gets the same actions in any order.
        digest = zlib.crc32(self.env.input_image().tobytes()) if self.env is not None else 0
        self.rng = np.random.default_rng([self.seed, digest])

    def predict(
        self,
        observation: Obs,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[Action, tuple[np.ndarray, ...] | None]:
        """A random tool index in 1..T and uniform normalised parameters."""
        space = self.env.action_space
        tool = int(self.rng.integers(1, space["tool"].n))
        params = self.rng.random(space["params"].shape[0]).astype(np.float32)
        return {"tool": tool, "params": params}, state


@register_agent
class FixedPipelineAgent(_PlanAgent):
    """MAIR's prior: remove scene, then imaging, then compression degradations in reverse.

    Without perception it applies one preferred tool for every task, in the reverse of the
    physical order (compression first, scene last), capped by the step budget.
    """

    name = "fixed"
    description = "every task's preferred tool in reverse physical order (MAIR prior)"

    def make_plan(self) -> list[ToolCall]:
        """One call per task, reverse physical order, truncated to ``max_steps``."""
        order = reversed(TASKS)
        calls = [preferred_tool(task, self.env.tools) for task in order]
        plan = [ToolCall(t, {}) for t in calls if t]
        return plan[: self.env.config.max_steps]


@register_agent
class OracleAgent(_PlanAgent):
    """Knows the true degradations; removes each with its preferred tool, last-applied first."""

    name = "oracle"
    description = "true degradations, preferred tool per task, reverse protocol order"

    def make_plan(self) -> list[ToolCall]:
        """Preferred tools for the episode's degradations, in reverse protocol order."""
        rank = {n: i for i, n in enumerate(PROTOCOL_ORDER)}
        names = sorted(self.info.get("degradations", []), key=lambda n: -rank.get(n, 0))
        tasks = [make_degradation(n).info.task for n in names]
        tools = [preferred_tool(t, self.env.tools) for t in tasks]
        return [ToolCall(t, {}) for t in tools if t][: self.env.config.max_steps]
