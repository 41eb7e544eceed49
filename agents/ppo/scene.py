"""The judge's say over the policy's darkness and haze calls (``ppo`` with ``judge=true``).

Most of what ``ppo`` loses to ``oracle`` is wrong decisions about the two scene-level
degradations (docs/agents.md, "Where ``ppo`` loses to ``oracle``"): a missed darkening costs
about 8 dB, brightening a crop that was not darkened about 6, dehazing one without haze up
to 15. The search agents decide these two with :mod:`agents.judge`, which runs the prior plan
with and without each type and reads both results. With ``judge=true`` the policy keeps every
other decision and the judge decides these two, once per episode:

* a scene task the judge rules out is masked from the policy's choices;
* a scene task the judge rules in that the policy has not called when it would STOP is
  called instead, with the policy's own likeliest preset for it.

With ``judge_margin`` above 0 (and the guard on) the judge rules a task it probed out only
when it predicts the task loses more than that many dB; nearer the line it has no say, and the
policy's call of that task goes through the quality-gain guard as without the judge
(:mod:`agents.ppo.guard`). A type it does not probe (read under its floor, or beyond its
range) keeps perception's call either way.
The judge's probes run ahead through the env's pool and count as tool executions.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from agents.ppo.actions import PolicyActions
from tir_env.tools import tool_info

#: The judged degradation types and the task of each.
SCENE_TASKS: Mapping[str, str] = {"dark": "brightening", "haze": "dehazing"}


def judge_scene(
    env: Any,
    params: str,
    types: Sequence[str] | None = None,
    abstain: float = 0.0,
    whole_adds: Collection[str] = ("dark", "haze"),
    whole_alone: bool = True,
) -> tuple[dict[str, bool], int]:
    """Whether each scene task is in (:func:`agents.judge.judged_types`), and the probes' calls.

    ``types``: the scene types the judge decides (``None``: both); it has no say on the
    others (the policy decides them). ``abstain`` (dB, above 0): the judge has no say on a
    type either where it would rule it out but predicts it loses no more than that
    (:func:`agents.judge.judge_rulings`). ``whole_adds``: on a whole photo, the types it may
    rule in where perception did not see them (a type it may not add keeps perception's call,
    out); on a crop it may add any. ``whole_alone=False``: on a whole photo it adds one only
    beside another type perception saw (a photo perception reads as clean stays so, as the
    search agents' ``judge_whole_alone``). Without perception weights (nothing to judge
    from) the result is empty: no say.
    """
    from agents import judge
    from tir_env import perception

    if not perception.available():
        return {}, 0
    whole = judge.is_whole(env)
    adds = tuple(whole_adds) if whole else True
    present, rulings, executions = judge.judge_rulings(
        env, params, types=types, abstain=abstain, adds=adds, alone=whole_alone or not whole
    )
    judged = SCENE_TASKS if types is None else {k: SCENE_TASKS[k] for k in types}
    scene: dict[str, bool] = {}
    for kind, task in judged.items():
        ruling = rulings.get(kind, kind in present)  # not probed: perception's call
        if ruling is not None:
            scene[task] = ruling
    return scene, executions


def reads_clean(seen: Any, scene: Mapping[str, bool]) -> bool:
    """Whether an input reads clean: perception (``seen``) sees nothing, the judge adds nothing.

    ``clean_stop`` of ``ppo`` and ``vlm``. No reading (no perception weights): ``False``.
    """
    return seen is not None and not seen.present and not any(scene.values())


def ruled_out(scene: Mapping[str, bool]) -> tuple[str, ...]:
    """The scene tasks the judge ruled out."""
    return tuple(task for task, on in scene.items() if on is False)


def ruled_in_choice(
    probs: Sequence[np.ndarray],
    tasks: Sequence[str | None],
    scene: Mapping[str, bool],
    done: Collection[str],
) -> int | None:
    """The first-dimension choice of a scene task ruled in and not yet called, else ``None``.

    The policy's likeliest preset for the first such task (in :data:`SCENE_TASKS` order).
    """
    for task in (t for t, on in scene.items() if on and t not in done):
        options = np.where([t == task for t in tasks], np.asarray(probs[0]), 0.0)
        if options.sum() > 0:
            return int(np.argmax(options))
    return None


def first_dim_tasks(actions: PolicyActions, n_choices: int, n_dims: int) -> list[str | None]:
    """The task of each choice of the action's first dimension (``None``: STOP)."""
    tasks: list[str | None] = []
    for i in range(n_choices):
        action: Any = i if n_dims == 1 else np.array([i] + [0] * (n_dims - 1))
        call = actions.call(action)
        tasks.append(None if call is None else tool_info(call.tool).task)
    return tasks


def guarded_action(
    probs: Sequence[np.ndarray],
    tasks: Sequence[str | None],
    scene: Mapping[str, bool],
    done: Collection[str],
    rng: np.random.Generator | None = None,
) -> Any:
    """The policy's action with the judge's say over the scene tasks.

    Args:
        probs: The policy's action probabilities, one array per dimension (the first picks
            the tool or preset; :func:`agents.ppo.policy.mean_action_probabilities`).
        tasks: The task of each first-dimension choice (``None``: STOP).
        scene: Scene task -> whether the judge rules it in (absent: no say).
        done: Tasks the policy already called this episode.
        rng: Draw from the masked probabilities (``None``: take the likeliest).

    Returns:
        An ``int`` for one dimension, else an int array, as SB3's ``predict`` gives.
    """
    first = np.asarray(probs[0], dtype=np.float64).copy()
    first[[i for i, task in enumerate(tasks) if task is not None and task in ruled_out(scene)]] = 0
    pick = pick_choice(first, rng)
    if tasks[pick] is None:  # the policy would stop: is a task the judge ruled in still due?
        due = ruled_in_choice(probs, tasks, scene, done)
        pick = pick if due is None else due
    picks = [pick] + [pick_choice(np.asarray(p, dtype=np.float64), rng) for p in probs[1:]]
    return np.asarray(picks[0]) if len(picks) == 1 else np.asarray(picks, dtype=np.int64)


def pick_choice(p: np.ndarray, rng: np.random.Generator | None) -> int:
    """The likeliest choice, or one drawn with ``rng`` (STOP when every choice is masked)."""
    total = p.sum()
    if total <= 0:
        return 0
    return int(np.argmax(p)) if rng is None else int(rng.choice(len(p), p=p / total))


def check_judge_options(agent: str, types: Collection[str], margin: float) -> None:
    """Refuse judged types other than ``dark`` and ``haze``, or a margin that is no loss.

    Raises:
        ConfigValueError: either.
    """
    from tir_env.errors import ConfigValueError

    unknown = sorted(set(types) - set(SCENE_TASKS))
    if unknown:
        raise ConfigValueError(
            f"agent {agent!r}: judge_types: {', '.join(unknown)} is not judged; give dark, "
            "haze or both"
        )
    if not (math.isfinite(margin) and margin >= 0):
        raise ConfigValueError(
            f"agent {agent!r}: judge_margin is a loss in dB, 0 or above, got {margin}"
        )
