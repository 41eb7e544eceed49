"""The judge of darkness and haze around the model's calls, for the agent and for GRPO alike.

With ``guard=judge`` (the ``vlm`` agent's default) the learned judge (:mod:`agents.judge`)
rules brightening and dehazing in or out at the start of each episode; a call of a task it
ruled out is vetoed (the model is shown the same image and asked again, at most
:data:`MAX_CHECKS` answers a step), and when the model STOPs with a task it ruled in left
undone, the plan's call of that task runs. ``tir train grpo --guard judge`` plays its
rollouts the same way (:mod:`agents.vlm.policy`), so the policy learns in the setting it is
deployed in. These helpers are the rules both follow.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tir_env.tools import tool_info
from tir_env.types import ToolCall

#: Answers checked per step before a vetoed model STOPs.
MAX_CHECKS = 2


def scene_task(call: ToolCall | None) -> str | None:
    """The call's task if it is a scene task (brightening, dehazing), else ``None``."""
    from agents.ppo.scene import SCENE_TASKS

    if call is None:
        return None
    task = tool_info(call.tool).task
    return task if task in SCENE_TASKS.values() else None


def ruled_out(call: ToolCall | None, scene: Mapping[str, bool], vetoed: Collection[str]) -> bool:
    """Whether the judge vetoes ``call``: a scene task it ruled out or vetoed this episode."""
    task = scene_task(call)
    return task is not None and (task in vetoed or scene.get(task) is False)


def judge_episode(env: Any) -> tuple[dict[str, bool], int]:
    """The judge's rulings on ``env``'s input (task -> in or out) and its probes' executions."""
    from agents.ppo.scene import judge_scene

    return judge_scene(env, "tuned")


def ruled_in_calls(
    env: Any, scene: Mapping[str, bool], learned: Sequence[str] | None = None
) -> list[ToolCall]:
    """At the model's STOP: the plan's calls of the first task the judge ruled in left undone.

    The prior plan's tool and fitted parameters (``learned``: the tasks whose learned tool
    the judge's plans call; ``None``: the shipped judges', :func:`agents.judge.shipped_learned`);
    ``[]`` when every ruled-in task was done or has no tool here.
    """
    from agents.baselines import prior_plan
    from agents.judge import shipped_learned

    learned = shipped_learned() if learned is None else learned

    done = {tool_info(r.call.tool).task for r in env.history if r.call is not None}
    tasks = [task for task, ruled_in in scene.items() if ruled_in and task not in done]
    steps = env.config.max_steps
    for task in tasks:
        calls = prior_plan([task], tuple(env.tools), steps, "tuned", learned)
        if calls:
            return calls
    return []
