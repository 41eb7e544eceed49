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
A task counts as done once any call of it was made, so a combination holding two
degradations of one task (``noise`` and ``gaussian_noise``) would get one call where
oracle's plan makes two; no protocol has such a combination.
The clone sees only pixels (and perception's readings with ``--perceived``); the true
degradations are the teacher's, at training time only, like the reward's clean image.

A dataset of the ``perceived`` expert (``tir experts collect --expert perceived``) has the
same plan for what perception v2 sees in the episode's input instead of the truth as its
teacher (:func:`perceived_next`): an expert whose every call the clone can know from its
observation, where oracle's depend on degradations perception misses or invents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from agents import experts
from agents.baselines import oracle_plan, prior_plan, seen_tasks
from agents.plan_table import PlansChoice
from agents.ppo import perceived
from agents.ppo.actions import Key, PolicyActions
from tir_env.env import TIREnv
from tir_env.tools.base import tool_info
from tir_env.types import ToolCall
from tir_env.wrappers import policy_image

#: The perceived experts DAgger can ask, and what names the degradations for each
#: (:func:`agents.baselines.seen_tasks`).
PERCEIVED_SIGHT = {"perceived": "perception", "perceived-reader": "suite-reader"}


def oracle_next(
    degradations: Sequence[str],
    taken: Sequence[ToolCall],
    tools: tuple[str, ...],
    plans: PlansChoice = "default",
) -> ToolCall | None:
    """Oracle's next call after the calls ``taken`` (``None``: STOP).

    Args:
        degradations: The episode's true degradations.
        taken: The calls made so far (by anyone).
        tools: The env's tools.
        plans: Oracle's plans: ``table`` for ``oracle-table``'s (:mod:`agents.plan_table`).
    """
    return first_open_call(oracle_plan(degradations, tools, plans=plans), taken)


def perceived_next(
    tasks: Sequence[str] | None, taken: Sequence[ToolCall], tools: tuple[str, ...]
) -> ToolCall | None:
    """The ``perceived`` expert's next call after ``taken`` (``None``: STOP).

    Its plan is ``fixed``'s with the declared parameters and classical tools: each perceived
    task's preferred tool in reverse physical order (:func:`agents.baselines.prior_plan`);
    the next call is the first whose task no call so far has addressed, as for oracle.

    Args:
        tasks: The tasks perception saw in the episode's input (``None``: every task, as
            ``fixed`` plans without perception weights).
        taken: The calls made so far (by anyone).
        tools: The env's tools.
    """
    return first_open_call(prior_plan(tasks, tools, len(tools), "default"), taken)


def first_open_call(plan: Sequence[ToolCall], taken: Sequence[ToolCall]) -> ToolCall | None:
    """The first call of ``plan`` whose task no call of ``taken`` addressed (``None``: STOP)."""
    done = {tool_info(call.tool).task for call in taken}
    return next((call for call in plan if tool_info(call.tool).task not in done), None)


def rollout_rows(
    policy: Any,
    env: TIREnv,
    records: Sequence[dict[str, Any]],
    actions: PolicyActions,
    obs_size: int,
    history_len: int,
    max_steps: int,
    perceived_network: str | None = None,
    regret: bool = False,
    progress: bool = True,
    plans: PlansChoice = "default",
    teacher: str = "oracle",
) -> dict[str, list[Any]]:
    """Run the policy (deterministic) on each record's episode; every state it reaches.

    Each state is labelled with :func:`oracle_next`'s call, mapped to the policy's actions
    (:func:`agents.ppo.bc.expert_action`). The episode ends when the policy stops or the
    budget (the smaller of ``max_steps`` and the env's) is spent.

    Args:
        policy: The SB3 policy being cloned (``predict`` on one observation).
        env: An env that replays the dataset's episodes (:func:`agents.experts.env_kwargs`).
        records: The dataset episodes to run.
        actions: The policy's action space.
        obs_size: Side of the policy's images.
        history_len: Rows of the action history.
        max_steps: The step budget the policy was cloned for.
        perceived_network: Add that perception network's readings to the observations.
        regret: Also record each choice's :func:`regret_db` (a few lookahead tool runs).
        progress: Show a progress bar over the episodes.
        plans: The teacher's plans (:func:`oracle_next`): ``table`` for ``oracle-table``.
        teacher: ``oracle`` (:func:`oracle_next`), ``perceived`` (:func:`perceived_next`,
            perception read once on each episode's input; no ``regret``) or
            ``perceived-reader`` (the same with the suites' readers' tasks).

    Returns:
        Lists ``image``, ``input``, ``history``, ``action`` (the labels), ``ep`` (the
        record's index), ``photo``, ``agree`` (whether the policy did what it was told),
        ``truth`` (the episode's true degradation types) and,
        with ``regret``, ``regret`` (:func:`regret_db` of the policy's choice).
    """
    from agents.ppo.bc import expert_action

    if teacher not in PERCEIVED_SIGHT and teacher != "oracle":
        raise ValueError(
            f"unknown DAgger teacher {teacher!r}: oracle or {', '.join(PERCEIVED_SIGHT)}"
        )
    if regret and teacher != "oracle":
        raise ValueError("regret weights finish episodes with oracle: teacher must be oracle")
    keys = ("image", "input", "history", "action", "ep", "photo", "agree", "truth")
    rows: dict[str, list[Any]] = {k: [] for k in keys + (("regret",) if regret else ())}
    budget = min(max_steps, env.config.max_steps)
    for record in tqdm(records, desc="dagger rollouts", disable=not progress):
        _, info = env.reset(seed=int(record["seed"]), options=experts.replay_options(record))
        source = policy_image(env.input_image(), obs_size)
        sight = PERCEIVED_SIGHT.get(teacher)
        seen = seen_tasks(env, sight) if sight else None
        taken: list[Key] = []
        calls: list[ToolCall] = []
        for _ in range(budget):
            image = policy_image(env.current_image(), obs_size)
            history = actions.history(taken, history_len).reshape(-1)
            if sight:
                next_call = perceived_next(seen, calls, env.tools)
            else:
                next_call = oracle_next(info["degradations"], calls, env.tools, plans)
            label = (
                actions.stop() if next_call is None else expert_action(env, next_call, actions)[0]
            )
            obs = {"image": image[None], "input": source[None], "history": history[None]}
            if perceived_network is not None:
                obs[perceived.KEY] = perceived.observations(
                    image[None], source[None], perceived_network, [info["degradations"]]
                )
            chosen, _ = policy.predict(obs, deterministic=True)
            key = actions.key(chosen[0])
            told = actions.call(label)
            call = actions.call(key)
            # Compare the calls, not the keys: a params key's unused bins mean nothing.
            agree = call == told
            for name, value in (
                ("image", image),
                ("input", source),
                ("history", history),
                ("action", label),
                ("ep", int(record["index"])),
                ("photo", str(record["image_id"])),
                ("agree", agree),
                ("truth", list(info["degradations"])),
            ):
                rows[name].append(value)
            if regret:
                left = budget - len(calls)
                types = info["degradations"]
                cost = 0.0 if agree else regret_db(env, types, calls, call, told, left, plans)
                rows["regret"].append(cost)
            if call is None:
                break
            env.step(actions.native(key, env.tools))
            taken.append(key)
            calls.append(call)
    return rows


def finish_psnr(
    env: TIREnv,
    degradations: Sequence[str],
    taken: Sequence[ToolCall],
    first: ToolCall | None,
    budget: int,
    plans: PlansChoice = "default",
) -> float:
    """PSNR at the end of the episode if ``first`` is called now and oracle does the rest.

    The calls run ahead on the env's pool (:meth:`TIREnv.lookahead`, cache hits when
    repeated) and are scored against the clean image, without stepping the env. A call that
    fails leaves the image as it was.

    Args:
        env: The env, in the state being judged (with a clean reference).
        degradations: The episode's true degradations.
        taken: The calls made so far.
        first: The call to make now (``None``: STOP, the current image is final).
        budget: Calls left in the episode, ``first`` included.
        plans: Oracle's plans (:func:`oracle_next`).

    Returns:
        PSNR (dB) of the final image against the clean one.
    """
    image = env.current_batch()
    done = list(taken)
    call = first
    while call is not None and budget > 0:
        out = env.lookahead(image, [call])[0]
        image = image if out is None else out
        done.append(call)
        budget -= 1
        call = oracle_next(degradations, done, env.tools, plans)
    return float(env.score(image, ("psnr",))["psnr"])


def regret_db(
    env: TIREnv,
    degradations: Sequence[str],
    taken: Sequence[ToolCall],
    chosen: ToolCall | None,
    teacher: ToolCall | None,
    budget: int,
    plans: PlansChoice = "default",
) -> float:
    """How many dB worse the episode ends after ``chosen`` than after ``teacher`` (>= 0).

    Args:
        env: The env, in the state being judged.
        degradations: The episode's true degradations.
        taken: The calls made so far.
        chosen: The clone's call (``None``: STOP).
        teacher: The call it was told to make, as its action space maps it.
        budget: Calls left in the episode, the next one included.
        plans: Oracle's plans (:func:`oracle_next`).

    Returns:
        The regret in dB: 0 when the calls are the same, else both episodes are finished
        by oracle's plan (:func:`finish_psnr`) and compared.
    """
    if chosen == teacher:
        return 0.0
    best = finish_psnr(env, degradations, taken, teacher, budget, plans)
    return max(0.0, best - finish_psnr(env, degradations, taken, chosen, budget, plans))
