"""The quality-gain model's veto over the policy's calls (``ppo`` with ``guard=gain``).

Most of the dB ``ppo`` loses on photos it never saw is a call for a degradation that is not
there: dehazing a clear crop costs up to 15 dB, brightening one that was not darkened about 6
(docs/agents.md, "Where ``ppo`` loses to ``oracle``"). With ``guard=gain`` each call the policy
chooses first runs ahead through the env's pool and :func:`tir_env.quality_gain.predict_gain`
reads the image before and after it, as ``fixed.guard=gain`` does:

With ``guard=scene`` only the calls of the two scene tasks (brightening, dehazing) are
checked, where a wrong call costs most; every other call runs unchecked.

* a call predicted to gain more than nothing is taken (its replay through the env is a pool
  cache hit, counted there as the call);
* a call predicted to lose is vetoed: it counts as a tool execution, its task is masked for
  the rest of the episode, and the policy's next likeliest choice is checked, at most
  :data:`MAX_CHECKS` a step, then STOP.

Nothing is retrained: the policy's own probabilities rank the alternatives.

With ``probe=brightening`` (or ``scene``) the model may also add a call: when the policy
would STOP without having called a probed scene task, that task runs ahead with the policy's
likeliest preset for it and is taken when its predicted gain clears the model's tuned margin
(:func:`tir_env.quality_gain.margin`), at most once a task an episode
(:func:`probed_action`). A darkening the policy misses costs about 8 dB.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from agents.ppo.scene import pick_choice

#: Calls checked per step before the policy is made to STOP.
MAX_CHECKS = 2


def as_action(first: int, rest: Sequence[int]) -> Any:
    """An action as SB3's ``predict`` gives it: an int for one dimension, else an int array."""
    picks = [first, *rest]
    return np.asarray(picks[0]) if len(picks) == 1 else np.asarray(picks, dtype=np.int64)


def vetted_action(
    probs: Sequence[np.ndarray],
    tasks: Sequence[str | None],
    vetoed: set[str],
    keep: Callable[[Any], bool],
    rng: np.random.Generator | None = None,
    max_checks: int = MAX_CHECKS,
    checked: Collection[str] | None = None,
    unavailable: Collection[str] = (),
    refused: Callable[[Any], bool] | None = None,
) -> tuple[Any, int]:
    """The policy's likeliest action the guard lets through, and the number of vetoes.

    Args:
        probs: The policy's action probabilities, one array per dimension (the first picks
            the tool or preset; :func:`agents.ppo.policy.mean_action_probabilities`).
        tasks: The task of each first-dimension choice (``None``: STOP).
        vetoed: Tasks vetoed earlier this episode; masked here, and this step's vetoes are
            added to it.
        keep: Whether a (non-STOP) action may run: ``False`` vetoes it.
        rng: Draw from the masked probabilities (``None``: take the likeliest).
        max_checks: Calls checked before the policy is made to STOP.
        checked: The tasks whose calls are checked (``None``: every task); a call of
            another task runs unchecked.
        unavailable: Tasks masked this step only (not vetoes: nothing runs ahead).
        refused: A check that runs nothing ahead, made before ``keep``: an action it refuses
            has its task added to ``vetoed`` without counting as a veto or a check.

    Returns:
        The action (STOP when every checked call was vetoed) and how many calls were vetoed
        (each ran ahead, so each is a tool execution).
    """
    first = np.asarray(probs[0], dtype=np.float64).copy()
    rest = [pick_choice(np.asarray(p, dtype=np.float64), rng) for p in probs[1:]]
    vetoes = 0
    _mask(first, tasks, unavailable)
    checks = 0
    while checks < max_checks:
        _mask(first, tasks, vetoed)
        pick = pick_choice(first, rng)
        action = as_action(pick, rest)
        task = tasks[pick]
        if task is not None and refused is not None and refused(action):
            vetoed.add(task)  # refused before anything ran: no execution, no check
            continue
        if task is None or (checked is not None and task not in checked) or keep(action):
            return action, vetoes
        checks += 1
        vetoes += 1
        vetoed.add(task)
    return as_action(0, [0] * len(rest)), vetoes


def probed_action(
    probs: Sequence[np.ndarray],
    tasks: Sequence[str | None],
    due: Sequence[str],
    tried: set[str],
    gain: Callable[[Any], float | None],
    margin: float,
) -> tuple[Any, int]:
    """When the policy would STOP: a scene task it has not called, if the model backs it.

    Each task of ``due`` not yet ``tried`` runs ahead with the policy's likeliest preset for
    it (its other dimensions as the policy would choose them) and is taken when the predicted
    gain clears ``margin``; a task is probed once an episode.

    Args:
        probs: The policy's action probabilities, one array per dimension.
        tasks: The task of each first-dimension choice (``None``: STOP).
        due: The tasks to probe, in order.
        tried: Tasks probed, called or vetoed this episode; this step's probes are added.
        gain: The predicted PSNR change of an action (``None``: the call failed).
        margin: The predicted gain (dB) a probe must clear to be taken.

    Returns:
        The action (STOP when no probe cleared the margin) and how many probes were not
        taken (each ran ahead, so each is a tool execution; a taken one is the env's call).
    """
    rest = [pick_choice(np.asarray(p, dtype=np.float64), None) for p in probs[1:]]
    first = np.asarray(probs[0], dtype=np.float64)
    rejected = 0
    for task in due:
        if task in tried:
            continue
        tried.add(task)
        options = np.where([t == task for t in tasks], first, 0.0)
        if options.sum() <= 0:
            continue
        action = as_action(int(np.argmax(options)), rest)
        predicted = gain(action)
        if predicted is not None and predicted > margin:
            return action, rejected
        rejected += 1
    return as_action(0, [0] * len(rest)), rejected


def _mask(first: np.ndarray, tasks: Sequence[str | None], vetoed: Collection[str]) -> None:
    """Zero the choices whose task was vetoed (in place)."""
    for i, task in enumerate(tasks):
        if task is not None and task in vetoed:
            first[i] = 0.0


def predicted_gain(env: Any, call: Any) -> float | None:
    """The quality-gain model's PSNR change (dB) for ``call`` on the env's current image.

    ``None`` when the call fails (the env will report it when it runs).
    """
    from tir_env import quality_gain

    image = env.current_batch()
    out = env.lookahead(image, [call])[0]
    if out is None:
        return None
    return float(quality_gain.predict_gain(image, out, env.target_size())[0])


def input_reading(env: Any) -> Any:
    """Perception v2 on ``env``'s input, or ``None`` without its weights.

    Read on ``env.perception_input()``: the whole photo a crop was cut from, when it was.
    """
    from tir_env import perception

    if not perception.available():  # nothing to read with
        return None
    image, size = env.perception_input()
    return perception.perceive_photo(image, size=size)


def unseen_tasks(
    env: Any, floor: float, types: Collection[str] = (), seen: Any = None
) -> tuple[str, ...]:
    """The tasks of the types perception reads below ``floor`` of their thresholds.

    Read on ``env``'s input (:func:`input_reading`, or ``seen``: that reading, made
    already); ``types``: only these types (empty: every type). Nothing without perception.
    """
    from tir_env import perception
    from tir_env.degradations import make_degradation

    seen = input_reading(env) if seen is None else seen
    if seen is None:  # nothing read: nothing masked
        return ()
    return tuple(
        make_degradation(t).info.task
        for t in perception.AGENTICIR_TYPES
        if seen.probs[t] < floor * seen.thresholds[t] and (not types or t in types)
    )


def perceived_scene(
    env: Any, ratio: float, skip: Collection[str] = (), seen: Any = None
) -> dict[str, bool]:
    """Scene tasks perception rules in: ``{task: True}`` for each type read at ``ratio``.

    A scene type read on ``env``'s input at ``ratio`` times its threshold or more rules its
    task in (``skip``: tasks left alone). Read as :func:`unseen_tasks` reads.
    """
    from agents.ppo.scene import SCENE_TASKS

    seen = input_reading(env) if seen is None else seen
    if seen is None:  # nothing to rule from (as the judge without weights)
        return {}
    return {
        task: True
        for kind, task in SCENE_TASKS.items()
        if task not in skip and seen.probs[kind] >= ratio * seen.thresholds[kind]
    }


def check_guard_types(agent: str, types: Collection[str]) -> None:
    """Refuse ``guard_types`` that name no scene type.

    Raises:
        ConfigValueError: a type that is not ``dark`` or ``haze``.
    """
    from agents.ppo.scene import SCENE_TASKS
    from tir_env.errors import ConfigValueError

    unknown = sorted(set(types) - set(SCENE_TASKS))
    if unknown:
        raise ConfigValueError(
            f"agent {agent!r}: guard_types: {', '.join(unknown)} is not a scene type; "
            f"give some of {', '.join(SCENE_TASKS)}"
        )


def check_mask_types(agent: str, types: Collection[str], floor: float) -> None:
    """Refuse ``mask_types`` that name no AgenticIR type, or without ``mask_unseen``.

    Raises:
        ConfigValueError: an unknown type, or types given with no floor to mask below.
    """
    from tir_env.errors import ConfigValueError
    from tir_env.perception import AGENTICIR_TYPES

    unknown = sorted(set(types) - set(AGENTICIR_TYPES))
    if unknown:
        raise ConfigValueError(
            f"agent {agent!r}: mask_types: {', '.join(unknown)} is not a degradation type; "
            f"give some of {', '.join(AGENTICIR_TYPES)}"
        )
    if types and not floor:
        raise ConfigValueError(f"agent {agent!r}: mask_types needs mask_unseen above 0")
