"""DAgger with ``oracle`` as the teacher: the clone's own states, labelled by oracle's next call.

Behaviour cloning (:mod:`agents.ppo.bc`) only sees the states the expert visits. A clone that
errs once (a call too many, a task in the wrong order) is somewhere the expert never was, and
has learned nothing there. DAgger (Ross, Gordon and Bagnell, 2011) rolls out the clone, asks
the expert what it would do in every state the clone reaches, adds those labels to the data
and clones again (``tir train ppo-bc --dagger-rounds K``).

Only an expert that can answer in any state can be asked. ``oracle``'s plan is a function of
the episode's true degradations (:func:`agents.baselines.oracle_plan`), so its answer in a
state is the first planned call whose task no call so far has addressed, and STOP when every
planned task has been (:func:`oracle_next`). Calls of tasks outside the plan (a false
alarm) leave the plan as it was: oracle would not undo them, it goes on with its own work.
The clone sees only pixels (and perception's readings with ``--perceived``); the true
degradations are the teacher's, at training time only, like the reward's clean image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents import experts
from agents.baselines import oracle_plan
from agents.ppo import perceived
from agents.ppo.actions import Key, PolicyActions
from tir_env.env import TIREnv
from tir_env.tools.base import tool_info
from tir_env.types import ToolCall
from tir_env.wrappers import policy_image


def oracle_next(
    degradations: Sequence[str], taken: Sequence[ToolCall], tools: tuple[str, ...]
) -> ToolCall | None:
    """Oracle's next call after the calls ``taken`` (``None``: STOP).

    Args:
        degradations: The episode's true degradations.
        taken: The calls made so far (by anyone).
        tools: The env's tools.
    """
    done = {tool_info(call.tool).task for call in taken}
    for call in oracle_plan(degradations, tools):
        if tool_info(call.tool).task not in done:
            return call
    return None


def rollout_rows(
    policy: Any,
    env: TIREnv,
    records: Sequence[dict[str, Any]],
    actions: PolicyActions,
    obs_size: int,
    history_len: int,
    max_steps: int,
    perceived_network: str | None = None,
) -> dict[str, list[Any]]:
    """Run the policy (deterministic) on each record's episode; every state it reaches.

    Each state is labelled with :func:`oracle_next`'s call, mapped to the policy's actions
    (:func:`agents.ppo.bc.expert_action`). The episode ends when the policy stops or the
    budget is spent.

    Returns:
        Lists ``image``, ``input``, ``history``, ``action`` (the labels), ``ep`` (the
        record's index), ``photo`` and ``agree`` (whether the policy did what it was told).
    """
    from agents.ppo.bc import expert_action

    rows: dict[str, list[Any]] = {
        k: [] for k in ("image", "input", "history", "action", "ep", "photo", "agree")
    }
    for record in records:
        _, info = env.reset(seed=int(record["seed"]), options=experts.replay_options(record))
        source = policy_image(env.input_image(), obs_size)
        taken: list[Key] = []
        calls: list[ToolCall] = []
        for _ in range(max_steps):
            image = policy_image(env.current_image(), obs_size)
            history = actions.history(taken, history_len).reshape(-1)
            teacher = oracle_next(info["degradations"], calls, env.tools)
            label = actions.stop() if teacher is None else expert_action(env, teacher, actions)[0]
            obs = {"image": image[None], "input": source[None], "history": history[None]}
            if perceived_network is not None:
                obs[perceived.KEY] = perceived.observation(
                    image[None], source[None], perceived_network
                )
            chosen, _ = policy.predict(obs, deterministic=True)
            key = actions.key(chosen[0])
            for name, value in (
                ("image", image),
                ("input", source),
                ("history", history),
                ("action", label),
                ("ep", int(record["index"])),
                ("photo", str(record["image_id"])),
                ("agree", bool(np.array_equal(np.asarray(key), np.asarray(label)))),
            ):
                rows[name].append(value)
            call = actions.call(key)
            if call is None:
                break
            env.step(actions.native(key, env.tools))
            taken.append(key)
            calls.append(call)
    return rows
