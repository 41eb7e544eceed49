"""Training-free baseline agents: random, fixed pipeline, oracle and all-in-one.

``fixed`` (and the ``exhaustive`` search agent) perceive first, as AgenticIR does: when the
perception model's weights exist (:mod:`tir_env.perception`), only the tasks of the
degradations it sees in the input are planned for; without them, every task is.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from agents.base import (
    Action,
    Agent,
    AgentOptions,
    Obs,
    PlanAgent,
    episode_digest,
    register_agent,
)
from agents.plan_table import PlansChoice, degradations_of_tasks, table_plan
from agents.tuned import GENTLE_TOOL, ParamsChoice, gentle_denoise, gentle_image, prior_call
from tir_env.degradations.base import make_degradation, physical_order
from tir_env.errors import ConfigValueError, InvalidActionError
from tir_env.spaces import max_params
from tir_env.tools.base import tool_info
from tir_env.types import TASKS, ToolCall


def perceived_tasks(env: Any, overrides: Mapping[str, float] | None = None) -> list[str] | None:
    """Tasks of the degradations the perception model sees in ``env``'s input.

    Degradations at or above their tuned thresholds count; an empty list means the input
    looks clean (plan nothing). The input is seen at the size the restored image should
    have (``env.target_size()``), so a low-resolution input is recognised; an input cut from a
    larger photo (``tir restore``) is read by the whole photo (``env.perception_input()``).
    ``None`` when there is no env or the perception weights are missing: plan for every task
    then. ``overrides``: thresholds (by degradation) that replace perception's own.
    """
    from tir_env import perception

    if env is None or not perception.available():
        return None
    image, size = env.perception_input()  # the whole photo when the input was cut from one
    if not overrides:
        return perception.perceived_tasks(image, size=size)
    seen = perception.perceive_photo(image, size)
    return tasks_at(seen.probs, {**seen.thresholds, **overrides})


def tasks_at(probs: Mapping[str, float], limits: Mapping[str, float]) -> list[str]:
    """Tasks of the degradations read at or above their limits, in protocol order."""
    from tir_env import perception

    return [make_degradation(n).info.task for n in perception.perceived(probs, limits)]


def tone_reader() -> Any:
    """The ``tone_dehaze`` tool, its haze head checked now rather than mid-run.

    Raises:
        ConfigValueError: the tool is not registered (its trees are not in the weights folder).
        CheckpointError: its trees have no haze head.
    """
    from tir_env.tools import tool_names
    from tir_env.tools.learned import tone

    if tone.NAME not in tool_names():
        raise ConfigValueError(
            f"haze_reader=tone needs the {tone.NAME} trees in the learned-weights folder "
            "(python -m benchmarks.train_tone_dehaze --haze-head)"
        )
    tool = tone.ToneDehaze()
    tool.haze_probability(torch.full((3, 8, 8), 0.5), 0.5)  # a file without the head: named now
    return tool


def tone_read_tasks(env: Any, threshold: float, reader: Any) -> list[str] | None:
    """:func:`perceived_tasks` with haze read by ``reader`` (:func:`tone_reader`) instead.

    Its haze head reads the input at the size it should have (upsampled where it is smaller, as
    its examples were: :func:`tir_env.tools.learned.tone.at_size`) beside perception's haze
    reading; haze counts at ``threshold`` or more.
    """
    from tir_env import perception
    from tir_env.images import u8_to_batch
    from tir_env.tools.learned.tone import at_size

    if env is None or not perception.available():
        return None
    image, size = env.perception_input()
    seen = perception.perceive_photo(image, size)
    batch = u8_to_batch(image)
    if size is not None:
        batch = at_size(batch, size)
    probs = {**seen.probs, "haze": reader.haze_probability(batch[0], seen.probs["haze"])}
    return tasks_at(probs, {**seen.thresholds, "haze": threshold})


def seen_tasks(
    env: Any, sight: str = "perception", overrides: Mapping[str, float] | None = None
) -> list[str] | None:
    """:func:`perceived_tasks`, or with ``sight="suite-reader"`` the suites' readers' tasks.

    See :attr:`FixedOptions.sight` (:func:`agents.ppo.suite_reader.perceived_tasks`).
    ``overrides``: perception thresholds that replace its own (``sight="perception"`` only).
    """
    if sight == "suite-reader":
        from agents.ppo import suite_reader

        return suite_reader.perceived_tasks(env)
    # Without overrides, the one-argument call it always made (stand-ins patched in take that).
    return perceived_tasks(env, overrides) if overrides else perceived_tasks(env)


def learned_tool(entry: str) -> str:
    """The learned tool an entry of a plan's ``learned`` names.

    A task names its first registered learned tool (``learned_<task>``); the name of a
    registered learned tool (``tone_dehaze``) names that tool, for its own task.

    Raises:
        ConfigValueError: ``entry`` is neither a task nor a registered learned tool (``tone_dehaze``
            without its trees: the message says how to fit them), or no learned tool of the task
            is registered (its weights are missing).
    """
    from tir_env.tools import tool_names

    if entry not in TASKS:
        if entry in tool_names(kinds=("learned",)):
            return entry
        from tir_env.tools.learned import tone

        if entry == tone.NAME:  # known, but joins the registry only with its trees
            raise ConfigValueError(
                f"learned tool {entry!r} is not registered: its trees are not in the "
                f"learned-weights folder ({tone.FIT_COMMAND} --out DIR/{tone.NAME}.safetensors, "
                "then point $TIR_LEARNED_WEIGHTS at a folder holding them)"
            )
        raise ConfigValueError(
            f"unknown task or learned tool {entry!r}; tasks are {', '.join(TASKS)}, learned "
            f"tools {', '.join(tool_names(kinds=('learned',))) or 'none (no weights)'}"
        )
    found = tool_names(task=entry, kinds=("learned",))
    if not found:
        raise ConfigValueError(
            f"no learned tool of task {entry!r} is registered (its weights are missing: "
            "`tir train-tools`)"
        )
    return found[0]


def plan_tool(task: str, tools: tuple[str, ...], learned: Collection[str] = ()) -> str | None:
    """The tool a plan calls for ``task``.

    The learned tool an entry of ``learned`` names for ``task`` (the task itself, or a learned
    tool of it: :func:`learned_tool`) where the env offers it, else :func:`preferred_tool`.
    """
    for entry in learned:
        tool = learned_tool(entry)
        if tool_info(tool).task == task and tool in tools:
            return tool
    return preferred_tool(task, tools)


def preferred_tool(task: str, tools: tuple[str, ...]) -> str | None:
    """The env's first tool for ``task`` that declares itself ``preferred``, else its first.

    Each task's preferred tool is marked in its ``ToolInfo`` (the strongest default-parameter
    classical tool per task in docs/tools.md).
    """
    for_task = [t for t in tools if tool_info(t).task == task]
    return next((t for t in for_task if tool_info(t).preferred), for_task[0] if for_task else None)


@register_agent
class RandomAgent(Agent):
    """Uniformly random tool (never STOP) with random parameters until the step budget."""

    name = "random"
    description = "uniform random tool and parameters, no STOP"

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Seed this episode's generator from the agent seed and the episode it plays."""
        super().reset(env, info)
        # Seeded by the episode itself, so the same episode gets the same actions in any order.
        env_or_none = self.env if self.has_env else None
        self.rng = np.random.default_rng([self.seed, episode_digest(env_or_none, info)])

    def act(self, observation: Obs, deterministic: bool = True) -> Action:
        """A random tool index in 1..T and uniform normalised parameters."""
        tools = self.env.tools  # the native action space: Discrete(T + 1), Box(max_params)
        tool = int(self.rng.integers(1, len(tools) + 1))
        params = self.rng.random(max_params(tools)).astype(np.float32)
        return {"tool": tool, "params": params}


#: The tasks whose learned tool the perceiving plans (``fixed``, and ``exhaustive`` and
#: ``greedy``'s prior) call by default. Dehazing: on corpus:val@3 crops of rounds no study
#: had used it lifted ``fixed`` by +0.17 dB an episode (rule 4340218), ``exhaustive`` by
#: +0.27 and ``greedy`` by +0.26 (rule fed4005), each over 2 standard errors over photos,
#: and left whole photos as they were; the learned defocus deblurring, tried with it, lost
#: where it ran (docs/agents.md, "Learned tools in the plan"). Deraining, since the network
#: was trained in context (half its examples a training pair or triple holding rain, the
#: target that chain without it): on fresh val@3 crop rounds it lifted ``fixed`` by +0.14 dB
#: an episode (rule ced911b; whole-photo suites +0.02, ``restore_check``'s rainy copies
#: +3.15 dB, nothing else changed), ``exhaustive`` by +0.17 and ``greedy`` by +0.17 (rule
#: 3040ca2), every one over 4 standard errors over photos (docs/agents.md, "Learned tools
#: trained in context").
DEFAULT_LEARNED: tuple[str, ...] = ("dehazing", "deraining")


#: ``fixed``'s guards that let the learned judge decide darkness and haze (:class:`FixedOptions`).
JUDGE_GUARDS = ("judge", "veto", "judge-whole", "judge-veto")


@dataclass(frozen=True)
class FixedOptions(AgentOptions):
    """Options of ``fixed``.

    Attributes:
        guard: What checks the plan. ``judge-veto`` (the default since rules 9c200c5 and
            b4de4bf): the learned judge of darkness and haze (:mod:`agents.judge`, what
            ``exhaustive``, ``greedy`` and ``vlm`` decide those two types with) runs the prior
            plan ahead with and without each type perception reads near its threshold (two
            plans per judged type, counted as executions) and reads both results. On a whole
            photo (restored side above 256 px: the ``tir restore`` path; judged on a 256 px
            proxy) it rules each type in or out, adding one only beside another that
            perception saw: +0.99 dB an episode on whole val photos (se 0.30 over 10 photos).
            On a crop it vetoes a type perception saw (+0.18 dB an episode on val crops, se
            0.05; 0.13 over the photos) and adds only the types of ``crop_adds``, beside a
            type that stays (``crop_adds_alone``; haze: +0.48 dB more, se 0.09; 0.24 over the
            photos): adding darkness too lost on noisy crops
            (docs/agents.md, "`fixed` with the judge"). ``judge-whole``: whole photos only;
            ``judge``: rules in or out on crops too; ``veto``: vetoes only, whole photos too.
            The judge guards that are defaults (``judge-veto``, ``judge-whole``) defer to a
            reader the user chose (``sight``, ``haze_reader``, ``haze_threshold``); ``judge``
            and ``veto`` refuse one. ``none``: every perceived task's call, as before the
            judge. ``gain``: runs each call ahead and keeps it only when the quality-gain model
            (:mod:`tir_env.quality_gain`) predicts it brings the image closer to the clean
            one; ``auto``: ``gain`` when the model's weights exist, else ``none``. ``gain``
            lifts ``fixed`` on the 128 px held-out suites (docs/quality_gain.md) but drops the
            blind motion deblurring that gains +6.5 dB on 256 px whole photos
            (``benchmarks.whole_photo``: mean +4.59 -> +2.92 dB).
        params: ``tuned``: run each preferred tool with the parameters fitted to the
            protocol's degradations on the corpus' train photos (:mod:`agents.tuned`);
            ``default``: with its declared defaults, as ``oracle`` does.
        plans: ``table``: where :mod:`agents.plan_table` lists a plan fitted for the
            perceived degradations, run it instead (``params`` applies to the others);
            ``default``: the prior plan always.
        learned: Tasks (``a,b`` on the command line) whose learned tool (``learned_<task>``,
            docs/tools.md) the plan calls instead of the preferred classical tool; the env
            must offer it (benchmarks and ``tir restore`` add it: :attr:`required_tools`).
            Default :data:`DEFAULT_LEARNED` (dehazing, deraining); ``learned=`` (empty) is the
            classical plan.
        sight: What names the degradations: ``perception`` (perception v2 at its tuned
            thresholds, :func:`perceived_tasks`; any image) or ``suite-reader`` (the readers
            fitted on the crop suites' combinations, :mod:`agents.ppo.suite_reader`: for the
            benchmark crops only, they know the suites' prior; needs their weights).
        haze_threshold: Above 0: the reading of haze at which the plan dehazes, in place of
            perception's tuned threshold (``haze_reader=tone``: of 0.5) (``sight=perception``
            only).
        haze_reader: ``perception`` (its haze reading) or ``tone``: the haze head of the
            ``tone_dehaze`` trees, which reads the image's global statistics beside
            perception's reading (:func:`tone_read_tasks`; needs those trees with the head).
        alone_params: A plan of one call runs the values fitted for plans of one call
            (:func:`agents.tuned.alone_params`; ``params=tuned`` only): on a photo with one
            degradation the pooled values, fitted mostly beside other calls, can do harm
            (``jpeg_tv``'s weight 0.05 cost a JPEG-compressed whole val photo 0.74 dB, the
            single-degradation fit's 0.018 gains 0.39). On by default since rule a1b1dbe
            (docs/agents.md, "Plans of one call"); ``false``: the pooled values always.
        crop_adds: With ``guard=judge-veto``: the judged types (``dark``, ``haze``) the crop
            judge may also add where perception did not see them (it rules those in or out,
            the others it may only rule out). ``haze`` by default since rule d3f3b6e
            (docs/agents.md, "`fixed` with the judge"); empty: a veto only. Idle under the
            other guards (a value other than the default is refused there).
        crop_adds_alone: With ``crop_adds``, ``true``: the crop judge may add a type where no
            type perception saw stays after its rulings; ``false``: only beside one that stays
            (:func:`agents.judge.kept_adds`); ``unless-cleared`` (the default since rule
            c4f93e2): anywhere but where it ruled out every type perception saw, so an image
            cleared of what perception misread gets nothing in its place (a clean 256 px val
            photo was dehazed to 16.2 dB otherwise) while one perception read as clean may
            still be dehazed (``false`` cost 256 px val photos 0.3 dB an episode, hazed ones
            4.6). Idle where ``crop_adds`` is.
        whole_adds: Under the guards that let the whole-photo judge add a type (``judge``,
            ``judge-veto``, ``judge-whole``): the judged types it may add beside a type
            perception saw. Both by default, as the suites' whole-photo episodes were judged
            with; ``tir restore`` passes ``dark`` unless told a guard or this option (rule
            d2277f4: on a user's noisy photo the added dehazing cost 10 dB, while added
            brightening lifted low-light photos by 13: docs/agents.md, "Which agent for your
            own photos"). A value other than the default is refused under the other guards.
        whole_alone: Under the same guards, ``true``: the whole-photo judge may also add a type
            to a photo where perception saw no other (one it reads as clean), as ``vlm``'s
            may; ``false`` (the default, as the whole-photo records were played): only beside
            a type perception saw.
        crop_adds_blocked_by: With ``crop_adds``: degradation types (``noise``) beside which
            the crop judge adds nothing (as ``exhaustive.judge_crop_adds_blocked_by``). Empty
            by default, as the records were played.
        whole_adds_blocked_by: Under the guards that let the whole-photo judge add a type:
            degradation types beside which it adds no brightening
            (:data:`agents.judge.WHOLE_BLOCKED_ADDS`;
            it may still keep or drop the darkness perception saw). Empty by default, as the
            records were played. ``rain`` suits a rainy photo of one's own: beside its streaks
            the judge read a photo to brighten on 10 of the 92 train photos' rainy copies and
            2 of the 5 test ones, most of which ended under their inputs (test: 22.93 -> 27.31
            dB with ``rain``); but on the protocol's rain then darkness the brightening it adds
            is right, and ``rain`` by default cost ``mio-b@full`` 0.53 dB on val (rule 01a712c
            failed; docs/agents.md, "Brightening beside rain").
        whole_rain_on_top: Under the same guards, ``true`` (the default, rule fddc28f): beside
            rain that lies on top of the photo's tones (:func:`tir_env.streaks.rain_on_top`:
            it reaches white and its streaks rise as much over dark as over light ground, as
            a rainy photo's do and the protocol's rain then darkness's do not) the
            whole-photo judge adds no brightening, as ``whole_adds_blocked_by=rain`` would
            there. ``false``: as the records before it were played.
        whole_gentle_noise: ``true`` (the default, rule c1195e6): where perception read noise
            on a whole photo only from its flattest blocks
            (:func:`tir_env.photo_thresholds.noise_by_level`: a phone's noise, which the
            network reads as clean), the denoiser's strength follows those blocks' level
            (:func:`agents.tuned.gentle_denoise`), so grain the photo was taken with is left.
            ``false``: the fitted strength.
    """

    guard: Literal["auto", "gain", "judge", "veto", "judge-whole", "judge-veto", "none"] = (
        "judge-veto"
    )
    params: ParamsChoice = "tuned"
    plans: PlansChoice = "default"
    learned: tuple[str, ...] = DEFAULT_LEARNED
    sight: Literal["perception", "suite-reader"] = "perception"
    haze_threshold: float = 0.0
    haze_reader: Literal["perception", "tone"] = "perception"
    alone_params: bool = True
    crop_adds: tuple[str, ...] = ("haze",)
    crop_adds_alone: bool | Literal["unless-cleared"] = "unless-cleared"
    whole_alone: bool = False
    crop_adds_blocked_by: tuple[str, ...] = ()
    whole_adds: tuple[str, ...] = ("dark", "haze")
    whole_adds_blocked_by: tuple[str, ...] = ()
    whole_rain_on_top: bool = True
    whole_gentle_noise: bool = True


#: The guards under which the whole-photo judge may add a type (``whole_adds`` applies).
WHOLE_ADDING_GUARDS = ("judge", "judge-veto", "judge-whole")


def prior_plan(
    tasks: Sequence[str] | None,
    tools: tuple[str, ...],
    max_steps: int,
    params: ParamsChoice = "default",
    learned: Collection[str] = (),
    alone: bool = False,
) -> list[ToolCall]:
    """MAIR's prior plan: each task's preferred tool, in reverse physical order.

    Args:
        tasks: The tasks to plan (``None``: every task).
        tools: The env's tools.
        max_steps: Most calls (the plan is cut after them).
        params: The tools' declared defaults, or the fitted ones (:mod:`agents.tuned`).
        learned: Tasks whose learned tool replaces the preferred one (:func:`plan_tool`).
        alone: A plan of one task runs its tool's values fitted for plans of one call
            (:func:`agents.tuned.alone_params`), where the table has them.
    """
    order = [t for t in reversed(TASKS) if tasks is None or t in tasks]
    calls = [t for t in (plan_tool(task, tools, learned) for task in order) if t]
    single = alone and len(calls) == 1  # one task planned, not a longer plan cut to one
    return [prior_call(t, params, single) for t in calls[:max_steps]]


def oracle_plan(
    degradations: Sequence[str],
    tools: tuple[str, ...],
    params: ParamsChoice = "default",
    plans: PlansChoice = "default",
    learned: Collection[str] = (),
) -> list[ToolCall]:
    """The oracle's plan: each true degradation's preferred tool, last-applied first.

    Args:
        degradations: The degradations the input truly carries.
        tools: The env's tools.
        params: The tools' declared defaults, or the fitted ones (:mod:`agents.tuned`).
        plans: ``table``: the combination's fitted plan where :mod:`agents.plan_table` has
            one (and the env has its tools); ``default``: never.
        learned: Tasks whose learned tool replaces the preferred one (:func:`plan_tool`).
    """
    if plans == "table":
        fitted = table_plan(degradations, tools)
        if fitted is not None:
            return fitted
    names = sorted(degradations, key=lambda n: -physical_order(n))
    tools_of = [plan_tool(make_degradation(n).info.task, tools, learned) for n in names]
    return [prior_call(t, params) for t in tools_of if t]


@register_agent
class FixedPipelineAgent(PlanAgent):
    """MAIR's prior: remove scene, then imaging, then compression degradations in reverse.

    It applies one preferred tool for every perceived task (:func:`perceived_tasks`; every
    task when the perception weights are missing), in the reverse of the physical order
    (compression first, scene last), capped by the step budget. With ``guard="gain"`` a call
    the quality-gain model predicts to do harm is dropped (it still counts as an execution).
    """

    name = "fixed"
    description = "perceived tasks' preferred tools in reverse physical order (MAIR prior)"
    Options = FixedOptions
    #: Its guards run plans ahead through the env (the judge's probes, the gain guard's look),
    #: and the plan it keeps replays from the pool: charged what the env ran, once.
    counts_env_runs = True
    options: FixedOptions

    def __init__(self, seed: int | str = 0, **options: Any) -> None:
        """Build the agent (options: :class:`FixedOptions`).

        Raises:
            ConfigValueError: an unknown guard, or haze options it would ignore.
            WeightsNotFoundError: ``guard="gain"`` and the quality-gain weights are missing.
        """
        super().__init__(seed, **options)
        self._check_haze_options()
        self._check_crop_adds()
        from tir_env import quality_gain

        #: The learned tools the plan calls (``learned``): the env must offer them.
        self.required_tools = tuple(learned_tool(t) for t in self.options.learned)
        self.guard = self.options.guard
        if self.guard == "auto":
            self.guard = "gain" if quality_gain.available() else "none"
        if self.guard == "gain":
            quality_gain.record()
        if self.options.sight == "suite-reader":
            from agents.ppo import suite_reader

            suite_reader.load()  # refused now, not mid-run, without its weights
        self._tone = tone_reader() if self.options.haze_reader == "tone" else None
        if self.guard in JUDGE_GUARDS:  # the judge's probes call its plans' learned tools
            from agents import judge

            probed = (learned_tool(t) for t in judge.shipped_learned())
            self.required_tools = tuple(dict.fromkeys([*self.required_tools, *probed]))

    def make_plan(self) -> list[ToolCall]:
        """One call per perceived task, reverse physical order (``PlanAgent`` truncates).

        Where the judge decided (:meth:`_judging`), :attr:`judge_overruled` says which types
        it added to perception's and which it dropped (``tir restore`` prints them).

        With ``plans="table"``, the plan fitted for the perceived degradations where the
        table lists one.
        """
        #: The types the judge added to perception's and dropped, this episode (``None``: it
        #: did not decide).
        self.judge_overruled: dict[str, list[str]] | None = None
        if self._judging():
            tasks = self._judged_tasks()
        elif self.options.haze_reader == "tone" and self.options.sight == "perception":
            tasks = tone_read_tasks(self.env, self.options.haze_threshold or 0.5, self._tone)
        else:
            tasks = seen_tasks(self.env, self.options.sight, self._threshold_overrides())
        fitted = None
        if self.options.plans == "table" and tasks is not None:
            degradations = degradations_of_tasks(tasks)
            fitted = None if degradations is None else table_plan(degradations, self.env.tools)
        plan = fitted or prior_plan(
            tasks,
            self.env.tools,
            self.env.config.max_steps,
            self.options.params,
            self.options.learned,
            self.options.alone_params,
        )
        plan = self._gentle(plan)
        return self._guarded(plan) if self.guard == "gain" else plan

    def _gentle(self, plan: list[ToolCall]) -> list[ToolCall]:
        """``plan`` with a gentle denoiser where noise was read from the flat blocks only.

        See ``whole_gentle_noise``; the strength is read on the image the plan runs on.
        """
        if not self.options.whole_gentle_noise or all(c.tool != GENTLE_TOOL for c in plan):
            return plan  # nothing to retune: spare the whole photo's perception
        image = gentle_image(self.env)
        return plan if image is None else [gentle_denoise(call, image) for call in plan]

    def _check_crop_adds(self) -> None:
        """Refuse ``crop_adds`` or ``whole_adds`` outside the judged types or the guards they serve.

        Raises:
            ConfigValueError: a type the judge does not judge, or a value other than the
                default with a guard that ignores it (``crop_adds``: other than
                ``judge-veto``; ``whole_adds``: none of :data:`WHOLE_ADDING_GUARDS`).
        """
        from agents import judge

        options, default = self.options, FixedOptions()
        for name, adds in (("crop_adds", options.crop_adds), ("whole_adds", options.whole_adds)):
            unknown = judge.unjudged(adds)
            if unknown:
                raise ConfigValueError(
                    f"fixed: {name} takes the judged types ({', '.join(judge.JUDGED)}), got "
                    f"{', '.join(unknown)}"
                )
        from tir_env.degradations.protocols import AGENTICIR_TYPES

        for name in ("crop_adds_blocked_by", "whole_adds_blocked_by"):
            strange = judge.not_degradations(getattr(options, name))
            if strange:
                raise ConfigValueError(
                    f"fixed: {name} takes degradation types "
                    f"({', '.join(AGENTICIR_TYPES)}), got {', '.join(strange)}"
                )
        changed = tuple(options.crop_adds) != default.crop_adds
        changed |= options.crop_adds_alone != default.crop_adds_alone
        changed |= tuple(options.crop_adds_blocked_by) != default.crop_adds_blocked_by
        if changed and options.guard != "judge-veto":
            raise ConfigValueError(
                f"fixed: crop_adds, crop_adds_alone and crop_adds_blocked_by apply to "
                f"guard=judge-veto (guard=judge "
                f"adds every judged type on crops), not guard={options.guard}"
            )
        whole_changed = set(options.whole_adds) != set(default.whole_adds)
        whole_changed |= options.whole_alone != default.whole_alone
        whole_changed |= set(options.whole_adds_blocked_by) != set(default.whole_adds_blocked_by)
        whole_changed |= options.whole_rain_on_top != default.whole_rain_on_top
        if whole_changed and options.guard not in WHOLE_ADDING_GUARDS:
            raise ConfigValueError(
                "fixed: whole_adds, whole_alone, whole_adds_blocked_by and whole_rain_on_top "
                "apply where the "
                f"whole-photo judge adds types (guard={', '.join(WHOLE_ADDING_GUARDS)}), not "
                f"guard={options.guard}"
            )

    def _check_haze_options(self) -> None:
        """Refuse haze options that would be ignored or always dehaze.

        Raises:
            ConfigValueError: ``haze_threshold`` outside [0, 1], or a haze option given with
                ``sight=suite-reader`` (the readers decide haze there).
        """
        options = self.options
        if not 0.0 <= options.haze_threshold <= 1.0:
            raise ConfigValueError(
                f"fixed: haze_threshold must lie in [0, 1] (0: the reader's own), got "
                f"{options.haze_threshold}"
            )
        changed = options.haze_threshold > 0 or options.haze_reader != "perception"
        if options.guard in ("judge", "veto") and (changed or options.sight != "perception"):
            raise ConfigValueError(
                f"fixed: guard={options.guard} decides darkness and haze itself from perception's "
                "reading; it takes neither haze_threshold, haze_reader=tone nor sight=suite-reader"
            )
        if changed and options.sight != "perception":
            raise ConfigValueError(
                "fixed: haze_threshold and haze_reader apply to sight=perception; the suites' "
                "readers decide haze themselves"
            )

    def _judging(self) -> bool:
        """Whether the judge decides darkness and haze this episode (:data:`JUDGE_GUARDS`).

        ``judge`` and ``veto`` always do. ``judge-veto`` (the default) and ``judge-whole``
        (whole photos only) do where perception's own reading decides (``sight`` and
        ``haze_reader`` left at ``perception``, no ``haze_threshold``); with another reader
        chosen, that reader decides, as before the guard.
        """
        if self.guard in ("judge", "veto"):
            return True
        if self.guard not in ("judge-whole", "judge-veto"):
            return False
        from agents import judge

        options = self.options
        own_reader = options.sight == options.haze_reader == "perception"
        if not (own_reader and options.haze_threshold == 0):
            return False
        return self.guard == "judge-veto" or judge.is_whole(self.env)

    def _judged_tasks(self) -> list[str] | None:
        """The tasks to plan with the judge deciding darkness and haze (:meth:`_judging`).

        The crop judge on images up to 256 px, where it may add a type only under
        ``guard=judge`` or as ``crop_adds`` lists (otherwise it only rules out what
        perception saw); the whole-photo
        judge on a proxy of a larger one, where (but under ``veto``) it may add a type only
        beside another that perception saw, as ``exhaustive``'s does. Without perception
        weights: :func:`seen_tasks` (every task).
        """
        from agents import judge
        from tir_env import perception
        from tir_env.degradations import make_degradation

        if not perception.available():
            return seen_tasks(self.env)
        whole = judge.is_whole(self.env)
        types, self.judge_overruled, executions = judge.judged(
            self.env,
            self.options.params,
            alone=self.options.whole_alone or not whole,
            adds=self._judge_adds(whole),
            adds_need_kept=judge.need_kept(self.options.crop_adds_alone, whole),
            adds_blocked_by=(
                judge.whole_blocked_by(
                    self.env, self.options.whole_adds_blocked_by, self.options.whole_rain_on_top
                )
                if whole
                else self.options.crop_adds_blocked_by
            ),
            blocked_adds=judge.WHOLE_BLOCKED_ADDS if whole else judge.JUDGED,
        )
        self.tool_executions += executions  # the judge's plans ran ahead
        return [make_degradation(t).info.task for t in types]

    def _judge_adds(self, whole: bool) -> bool | tuple[str, ...]:
        """What the judge may add: ``whole_adds`` on a whole photo (none under ``veto``).

        On a crop: every judged type (``judge``), ``crop_adds`` (``judge-veto``) or none.
        """
        if whole:
            return False if self.guard == "veto" else tuple(self.options.whole_adds)
        if self.guard == "judge":
            return True
        return self.options.crop_adds if self.guard == "judge-veto" else False

    def _threshold_overrides(self) -> dict[str, float]:
        """Perception thresholds the options replace (``haze_threshold``)."""
        return {"haze": self.options.haze_threshold} if self.options.haze_threshold > 0 else {}

    def _guarded(self, plan: list[ToolCall]) -> list[ToolCall]:
        """The calls of ``plan`` the quality-gain model predicts to help, run ahead in order.

        Kept calls replay through the env (a pool cache hit) and count there; dropped ones
        count in :attr:`tool_executions`.
        """
        from tir_env import quality_gain

        image, kept = self.env.current_batch(), []
        for call in plan:
            out = self.env.lookahead(image, [call])[0]
            if out is not None:
                gain = quality_gain.predict_gain(image, out, self.env.target_size())
                if float(gain[0]) > 0.0:
                    image = out
                    kept.append(call)
                    continue
            self.tool_executions += 1
        return kept


@dataclass(frozen=True)
class OracleOptions(AgentOptions):
    """Options of ``oracle``.

    Attributes:
        params: ``default``: each preferred tool with its declared defaults (the reference the
            leaderboard reports); ``tuned``: with the parameters ``fixed`` runs
            (:mod:`agents.tuned`), which shows what perfect perception would give ``fixed``.
        plans: ``default``: the plan above for every combination; ``table``: the plan fitted
            to the episode's combination on train photos where :mod:`agents.plan_table` lists
            one (``params`` applies to the other combinations).
        learned: Tasks whose learned tool the plan calls instead of the preferred classical
            tool (as ``fixed``'s option).
    """

    params: ParamsChoice = "default"
    plans: PlansChoice = "default"
    learned: tuple[str, ...] = ()


@register_agent
class OracleAgent(PlanAgent):
    """Knows the true degradations; removes each with its preferred tool, last-applied first."""

    name = "oracle"
    description = "true degradations, preferred tool per task, reverse protocol order"
    Options = OracleOptions
    needs_true_degradations = True
    options: OracleOptions

    def __init__(self, seed: int | str = 0, **options: Any) -> None:
        """Build the agent (options: :class:`OracleOptions`).

        Raises:
            ConfigValueError: ``learned`` names a task without a learned tool.
        """
        super().__init__(seed, **options)
        #: The learned tools the plan calls (``learned``): the env must offer them.
        self.required_tools = tuple(learned_tool(t) for t in self.options.learned)

    def make_plan(self) -> list[ToolCall]:
        """Preferred tools for the episode's degradations, in reverse protocol order."""
        degradations = self.info.get("degradations", [])
        return oracle_plan(
            degradations,
            self.env.tools,
            self.options.params,
            self.options.plans,
            self.options.learned,
        )


@register_agent
class AllInOneAgent(PlanAgent):
    """One call of the all-in-one network, then STOP (the all-in-one models' protocol).

    The env must offer a tool of task ``all_in_one`` (``learned_all_in_one`` by default):
    build it with ``toolbox=("classical", "learned")`` or list the tool in ``tools``.
    """

    name = "all-in-one"
    description = "one call of the all-in-one network (learned_all_in_one), then STOP"
    #: Tools this agent needs in the env's action space.
    required_tools: tuple[str, ...] = ("learned_all_in_one",)

    def make_plan(self) -> list[ToolCall]:
        """The env's all-in-one tool, once.

        Raises:
            InvalidActionError: the env offers no all-in-one tool.
        """
        tools = [t for t in self.env.tools if tool_info(t).task == "all_in_one"]
        if not tools:
            raise InvalidActionError(
                "agent 'all-in-one' needs an all_in_one tool in the action space; make the "
                "env with toolbox=('classical', 'learned') or tools=[..., 'learned_all_in_one']"
            )
        preferred = self.required_tools[0]
        return [ToolCall(preferred if preferred in tools else tools[0], {})]
