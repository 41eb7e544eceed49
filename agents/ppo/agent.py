"""The ``ppo`` agent: the shipped Stable-Baselines3 PPO policy, acting deterministically.

It sees what it saw in training (:func:`tir_env.wrappers.policy_image` of the current and the
input image, and the one-hot history of its own catalogue actions: no reward, no reference), so
it also runs on a user's photo (``tir restore --agent ppo``). Its actions are those it was
trained with (the exported JSON's ``action_space``: catalogue presets, or tools with chosen
parameters; :mod:`agents.ppo.actions`). Tool 0 is STOP, which it chooses itself; the env's
``max_steps`` still caps the episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from agents.base import Action, Agent, AgentOptions, Obs, register_agent
from agents.ppo.bright_veto import TASK as BRIGHTENING
from agents.tuned import ParamsChoice, with_tuned_params
from tir_env.errors import ConfigValueError
from tir_env.spaces import encode_call
from tir_env.tools import tool_info
from tir_env.types import ToolCall
from tir_env.wrappers import deployed_view, policy_image, tile_views

if TYPE_CHECKING:
    from agents.ppo.actions import Key
    from tir_env.types import ImageU8

#: The policy shipped with the repository (``.safetensors`` + ``.json``).
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "ppo_mio_a"
#: The behaviour-cloned policy (``tir train ppo-bc``), before any PPO.
DEFAULT_BC_WEIGHTS = Path(__file__).parent / "weights" / "ppo_bc"


#: The scene tasks each ``probe`` option checks before the policy may stop, in order.
PROBED: dict[str, tuple[str, ...]] = {
    "none": (),
    "brightening": ("brightening",),
    "scene": ("brightening", "dehazing"),
}


@dataclass(frozen=True)
class PPOOptions(AgentOptions):
    """Options of the ``ppo`` and ``ppo-bc`` agents.

    Attributes:
        weights: Stem of the ``.safetensors`` + ``.json`` pair (``None``: the shipped policy).
        deterministic: Take the most likely action (``False``: sample, seeded by ``seed``).
        params: ``tuned`` (the default of ``ppo``): where the policy calls a preferred tool
            with its declared defaults, run it with the parameters fitted to the protocol
            instead, as ``fixed`` does (:func:`agents.tuned.with_tuned_params`; the shipped
            policy imitated an expert that runs the declared defaults, and the fitted ones
            gained +0.77 dB on 1,600 val episodes, docs/agents.md); ``default``: as the
            policy says (the default of ``ppo-bc``).
        ensemble: Stems of several policies (``a,b,c`` on the command line) that act
            together: each step takes the action of their averaged action probabilities
            (per dimension for chosen parameters). They must share the observation and the
            actions (:func:`agents.ppo.policy.check_ensemble`); instead of ``weights``.
        tiles: On an image larger than the training crops (a whole photo): ``0`` shows it
            resized whole; ``n`` shows ``n`` x ``n`` windows at the training scale spread
            over it (:func:`tir_env.wrappers.tile_views`) and acts on the action
            probabilities averaged over them (and over the ensemble's members). ``ppo``'s
            default 3 (+0.41 dB on 800 whole-photo val episodes, docs/agents.md); ``ppo-bc``'s
            0.
        flips: Test-time mirrored views: the policy acts on the action probabilities averaged
            over each view and its mirrored copies (``""`` none, ``"h"`` left-right, ``"v"``
            upside down, ``"hv"`` all four; :data:`tir_env.tools.learned.flips.MODES`).
            Perception's readings are of the unflipped images. ``""`` by default.
        judge: Let :mod:`agents.judge` decide darkness or haze (:mod:`agents.ppo.scene`; on
            by default for ``ppo``, haze only, with ``judge_margin`` 2.5: +0.20 dB on 1,600
            val episodes, docs/agents.md): its probes run the prior plan with and without
            the type at the episode's start; the policy may not call a scene task the judge
            rules out, and calls one it rules in before it stops. The probes count as tool
            executions (a probed call the policy then takes, once).
        judge_types: With ``judge``: the scene types the judge decides (``dark``, ``haze``;
            ``ppo``'s default: ``haze``); the policy decides the others (guarded when
            ``judge_margin`` is set; the judge's darkness calls undo true brightenings of
            ``dark+noise``, docs/agents.md).
        judge_whole_adds: With ``judge``, on a whole photo: the judged types the judge may
            rule in where perception did not see them (of ``judge_types``; the others it only
            keeps or rules out). Both by default, as the suites' whole-photo episodes were
            played; ``tir restore`` passes none unless told ``judge``, ``judge_types`` or this
            option (rule 2acf6eb: on a clean and two noisy val photos the added dehazing cost
            them 8-10 dB).
        judge_margin: With ``judge`` and the guard on, above 0: where the judge probed a
            type, it rules its task out only when it predicts a loss of more than this many
            dB; nearer the line it has no say and the guard checks the policy's call
            (:func:`judge_rulings <agents.judge.judge_rulings>`), as it checks the tasks the
            judge does not decide. A type the judge does not probe (read under its floor,
            or beyond its range) keeps perception's call, unchecked: on most crops without
            haze, dehazing is ruled out so. A task ruled in is called at STOP even where
            ``mask_unseen`` hides it from the policy. ``0``, or the guard off: the judge
            decides alone and the guard is off.
        guard: ``scene`` (the default of ``ppo``): each call of the two scene tasks
            (brightening, dehazing) the policy chooses first runs ahead and the quality-gain
            model vetoes it when it predicts a loss (:mod:`agents.ppo.guard`; a vetoed call
            counts as a tool execution, its task is masked for the rest of the episode and
            the policy's next likeliest choice is checked); ``gain``: the same for every
            call; ``none``: no check (the default of ``ppo-bc``). With ``judge`` the guard
            is off (the judge decides the scene tasks) unless ``judge_margin`` is set.
        guard_types: With ``guard=scene``: the scene types (``dark``, ``haze``) whose
            tasks' calls the model checks; the other scene task's calls run unchecked (the
            model's predicted gain of a brightening tells a darkened crop from a dark one no
            better than chance, docs/agents.md).
        whole_dark_floor: On a whole photo (an image larger than the training crops) with
            the guard on, above 0: perception decides brightening there. It is masked where
            perception reads darkness on the photo under this share of its threshold, and
            the quality-gain model does not check it (``rule_in`` still rules it in above).
            Crops keep ``mask_unseen``, ``mask_types`` and ``guard_types``. ``ppo``'s
            default 0.6 (+0.28 dB on 800 whole-photo val episodes, docs/agents.md; on crops the
            same rule lost ``mio-a``'s darkened noisy crops); ``0``: off.
        trust_dark: With the guard on, above 0: where perception reads darkness on the input
            at this share of its threshold or more, the quality-gain model does not check
            brightening (its predicted gain tells a darkened crop from a dark one no better
            than chance; perception's clear reading does). ``0``: off.
        trust_dark_reader: With the guard on, above 0, on a crop: where the darkness reader
            (:mod:`agents.ppo.dark_reader`: trees over perception's eight readings of the
            input, fitted on the training protocols' crops of the corpus' train photos) gives
            the input this probability of having been darkened or more, the quality-gain
            model does not check brightening (``trust_dark`` with the reader in place of
            perception's own darkness reading). Idle without the guard, on a whole photo or
            without the reader's weights (a corrupt file is refused). ``0``: off (the
            default: fitted on the training protocols it reads the unseen combinations worse
            than perception, and at 0.5 it cost 0.59 dB an episode with the veto reading it
            against the gates fitted on the evaluation suites, 0.29 more than the veto alone;
            docs/agents.md, "Fitted on the training protocols only").
        bright_veto: With the guard on, above 0, on a crop (an image no larger than the
            training crops): when the policy would brighten, a classifier fitted on its own
            brightenings of the corpus' train photos (:mod:`agents.ppo.bright_veto`) reads
            perception on the input and on the image now, the image's brightness and the
            tasks run so far, and predicts whether the brightening will pay; under this
            probability brightening is masked for the rest of the episode (nothing runs
            ahead: no tool execution), ``rule_in``'s included. Idle without the guard or
            without the classifier's weights (a corrupt file is refused). ``ppo``'s default
            0.5 with the classifier fitted on the training protocols' crops (+0.20 dB over no
            veto on 1,600 val crop episodes, every suite up; docs/agents.md, "Fitted on the
            training protocols only"); ``0``: off (the default of ``ppo-bc``).
        dehazing_tool: A dehazing tool that runs in place of every dehazing call the policy
            makes (its own parameters: the fitted ones under ``params=tuned``, else the
            declared defaults), the guard's look-ahead included, where the env offers it
            (benchmarks and ``tir restore`` add it to the env's tools; an env without it keeps
            the policy's call); on crops only unless ``dehazing_whole``. ``ppo``'s default
            ``learned_dehazing`` (+0.38 dB on 1,600 val crop episodes, every suite up);
            ``""``: the policy's own calls (the default of ``ppo-bc``).
        deraining_tool: A deraining tool that runs in place of every deraining call the
            policy makes, as ``dehazing_tool`` (on crops and whole photos alike: the
            context-trained ``learned_deraining`` was fitted on both, docs/agents.md,
            "Learned tools trained in context"); ``""`` (the default): the policy's own calls.
        dehazing_whole: With ``dehazing_tool``: swap on whole photos too (images larger than
            the training crops); ``False`` (the default): on crops only (the learned tool was
            fitted on crops; +0.04 dB against the swap everywhere on 400 whole-photo val
            episodes, docs/agents.md).
        probe: With the guard on: when the policy would STOP without having called
            brightening (``brightening``; ``scene``: brightening, then dehazing), that
            task runs ahead with the policy's likeliest preset for it and is taken when the
            quality-gain model predicts a gain above its tuned margin
            (:func:`agents.ppo.guard.probed_action`; once a task an episode, a probe not
            taken counts as a tool execution). ``none``: the policy alone decides to stop.
        mask_sr: With the guard on: mask super-resolution from the policy's choices while
            the working image already has the size the restored image should have (an x4
            call there can only be resized back); the next likeliest choice is taken. Only
            where the env knows that size (a benchmark episode, not ``tir restore``).
        mask_unseen: With the guard on and above 0: mask the tasks of the degradations
            perception v2 reads below this share of their thresholds in the episode's input
            (``env.perception_input()``, once per episode): the policy sometimes calls a
            super-resolution, dehazing or brightening tool for a degradation perception
            barely sees, at up to 20 dB; the next likeliest choice is taken. ``0``: no mask.
        mask_types: With ``mask_unseen``: only these types' tasks are masked (empty: every
            type), e.g. ``dark``: most brightenings the policy makes on crops that were not
            darkened read low darkness (docs/agents.md).
        rule_in: With the guard on (without it, no effect), 1 or above: a scene type the
            judge does not decide that perception reads on the episode's input at this
            multiple of its threshold or more is ruled in
            (:func:`agents.ppo.guard.perceived_scene`): if the policy has not called its task
            when it would stop, it is called then, with the policy's likeliest preset,
            unchecked (the guard still checks the policy's own calls). ``ppo``'s default 1.2
            (darkness: +0.04 dB on 1,600 val episodes, 18 better and none worse,
            docs/agents.md); ``0``: perception rules nothing in.
        native_perception: On an image larger than the training crops, which the policy
            sees resized whole, perception v2's readings in its observation (a policy
            trained ``--perceived``) come from the images at native resolution
            (:func:`agents.ppo.perceived.photo_readings`), not from the resized view, which
            erases noise, JPEG blocks and low resolution (on by default: +2.14 dB on 800
            whole-photo val episodes, docs/agents.md). ``False``: from the view.
        clean_stop: STOP at once where perception v2 reads no degradation on the episode's
            input at its thresholds and the judge rules no scene task in (as ``fixed`` leaves
            a photo it reads as clean alone); the policy acts otherwise. Without perception's
            weights it has no effect. ``ppo``'s default since rule 1145659: on 256 px clean val
            photos it left nine of ten untouched where the policy changed four, for -0.007 dB
            on 1,600 val crop episodes (docs/agents.md); ``ppo-bc``'s: off.
    """

    weights: Path | None = None
    deterministic: bool = True
    params: ParamsChoice = "tuned"
    ensemble: tuple[Path, ...] = ()
    tiles: int = 3
    flips: str = ""
    judge: bool = True
    judge_types: tuple[str, ...] = ("haze",)
    judge_whole_adds: tuple[str, ...] = ("dark", "haze")
    judge_margin: float = 2.5
    guard: Literal["none", "gain", "scene"] = "scene"
    guard_types: tuple[str, ...] = ("dark", "haze")
    probe: Literal["none", "brightening", "scene"] = "none"
    mask_sr: bool = False
    mask_unseen: float = 0.0
    mask_types: tuple[str, ...] = ()
    whole_dark_floor: float = 0.6
    trust_dark: float = 0.0
    trust_dark_reader: float = 0.0
    bright_veto: float = 0.5
    dehazing_tool: str = "learned_dehazing"
    deraining_tool: str = ""
    dehazing_whole: bool = False
    rule_in: float = 1.2
    native_perception: bool = True
    clean_stop: bool = True


#: The option naming the tool that runs in place of the policy's calls of each task.
SWAP_OPTIONS = {"dehazing": "dehazing_tool", "deraining": "deraining_tool"}
#: The observation's keys that hold images (CHW), which ``flips`` mirrors.
IMAGE_KEYS = ("image", "input")


def mirrored(mode: str, views: list[Obs]) -> list[Obs]:
    """``views`` and, for each, its mirrored copies of ``flips`` mode ``mode`` (``""``: as is).

    Only the images are flipped (their last two axes: rows and columns); the history and
    perception's readings are the view's own.

    Raises:
        ConfigValueError: ``mode`` is not a mode of :data:`tir_env.tools.learned.flips.MODES`.
    """
    from tir_env.tools.learned.flips import MODES

    if mode not in MODES:
        raise ConfigValueError(f"ppo: flips must be one of {sorted(MODES)}, got {mode!r}")
    out: list[Obs] = []
    for view in views:
        for dims in MODES[mode]:
            copy = dict(view)
            for key in IMAGE_KEYS:
                if dims and key in copy:
                    copy[key] = np.ascontiguousarray(np.flip(copy[key], axis=dims))
            out.append(copy)
    return out


@dataclass(frozen=True)
class PPOBCOptions(PPOOptions):
    """Options of ``ppo-bc``: as ``ppo``'s, the bare clone by default.

    No guard, no judge (with ``judge=true``: both scene types, as ``ppo``'s judge was before
    its haze-only default), no ``rule_in``, no tiles, no ``whole_dark_floor``, no
    ``bright_veto`` or ``trust_dark_reader``, and the policy's own tools and parameters (no
    ``dehazing_tool``, ``params="default"``).
    """

    guard: Literal["none", "gain", "scene"] = "none"
    params: ParamsChoice = "default"
    judge: bool = False
    judge_types: tuple[str, ...] = ("dark", "haze")
    judge_margin: float = 0.0
    rule_in: float = 0.0
    tiles: int = 0
    whole_dark_floor: float = 0.0
    trust_dark_reader: float = 0.0
    bright_veto: float = 0.0
    dehazing_tool: str = ""
    clean_stop: bool = False


@register_agent
class PPOAgent(Agent):
    """PPO policy over a tool x preset catalogue: a clone of an expert, then PPO on mio-a.

    By default the judge decides haze where it is sure (``judge``) and the quality-gain model
    vets the other darkness and haze calls (``guard=scene``).

    Options: :class:`PPOOptions`.

    Raises:
        WeightsNotFoundError: the policy files are missing (named in the message).
    """

    name = "ppo"
    description = (
        "SB3 PPO policy over a tool x preset catalogue (perceived-expert clone + PPO, mio-a); "
        "the judge decides haze where sure, the quality-gain model vets its other scene calls"
    )
    Options = PPOOptions
    options: PPOOptions
    # Its probes, vetoes and steps all run through the env: a probed call the policy then
    # takes is the pool's cache hit, not a second execution.
    counts_env_runs = True
    #: Stem of the policy loaded when no ``weights`` are given.
    default_weights: Path = DEFAULT_WEIGHTS

    def __init__(self, seed: int | str = 0, **options: Any) -> None:
        super().__init__(seed, **options)
        from agents.ppo.policy import check_ensemble, load_policy

        if self.options.ensemble and self.options.weights is not None:
            raise ConfigValueError(
                f"agent {self.name!r}: give weights (one policy) or ensemble (several), not both"
            )
        if self.options.tiles < 0:
            raise ConfigValueError(
                f"agent {self.name!r}: tiles must be >= 0, got {self.options.tiles}"
            )
        mirrored(self.options.flips, [])  # an unknown mode is refused here, not mid-episode
        self._check_guard()
        stems = self.options.ensemble or (self.options.weights or self.default_weights,)
        loaded = [load_policy(stem) for stem in stems]
        check_ensemble([spec for _, spec in loaded], stems)
        #: Every policy that acts (one, or an ensemble's members).
        self.members = [policy for policy, _ in loaded]
        self.policy, self.spec = loaded[0]
        self._rng = np.random.default_rng(self.seed)
        self.deterministic = self.options.deterministic
        self.params = self.options.params
        self.actions = self.spec.actions()
        self._actions: list[Key] = []
        #: The task of each first action choice (judge and guard; read once, on first use).
        self._choice_tasks: list[str | None] | None = None
        self._scene: dict[str, bool] = {}  # the judge's rulings of this episode (``judge``)
        self._perceived_in: dict[str, bool] = {}  # tasks perception rules in (``rule_in``)
        self._tasks_done: set[str] = set()
        self._vetoed: set[str] = set()  # tasks the guard vetoed this episode (``guard``)
        self._probe_tried: set[str] = set()  # tasks called or probed this episode (``probe``)
        self._unseen: tuple[str, ...] = ()  # tasks masked this episode (``mask_unseen``)
        self._brightening_unchecked = False  # perception decides it (``whole_dark_floor``)
        self._seen_input: Any = None  # perception on the episode's input (read once)
        self._bright_pays: float | None = None  # the brightening veto's reading (``bright_veto``)
        self._reads_clean: bool | None = None  # ``clean_stop``'s verdict, once judged

    def _check_swap_tools(self) -> None:
        """Refuse a ``dehazing_tool`` or ``deraining_tool`` not registered for its task.

        Raises:
            ConfigValueError: one is not.
        """
        from tir_env.tools.base import tool_names

        for task, name in self._swaps().items():
            if name and name not in tool_names(task):
                raise ConfigValueError(
                    f"agent {self.name!r}: {SWAP_OPTIONS[task]} must be one of "
                    f"{', '.join(tool_names(task))}, got {name!r}"
                )

    def _swaps(self) -> dict[str, str]:
        """The tool that runs in place of the policy's call, by task (``""``: its own)."""
        return {task: getattr(self.options, option) for task, option in SWAP_OPTIONS.items()}

    def _learned_gates(self) -> tuple[bool, bool]:
        """Whether ``bright_veto`` and ``trust_dark_reader`` read: on, guarded, weights there.

        A corrupt or stale file of either fails here, not mid-episode.

        Raises:
            ConfigValueError: either is not a probability in [0, 1).
        """
        for name in ("bright_veto", "trust_dark_reader"):
            value = getattr(self.options, name)
            if not 0.0 <= value < 1.0:
                raise ConfigValueError(
                    f"agent {self.name!r}: {name} is a probability in [0, 1), got {value}"
                )
        from agents.ppo import bright_veto, dark_reader

        veto = bool(self.options.bright_veto) and self._guarding() and bright_veto.path().is_file()
        reader = bool(self.options.trust_dark_reader) and self._guarding()
        reader = reader and dark_reader.available()
        if veto:
            bright_veto.load()
        if reader:
            dark_reader.load()
        return veto, reader

    def _check_guard(self) -> None:
        """Refuse unknown or conflicting options; with the guard on, check its weights.

        Raises:
            ConfigValueError: an unknown guard.
            WeightsNotFoundError: the quality-gain weights are missing.
        """
        guard = self.options.guard
        if guard not in ("none", "gain", "scene"):
            raise ConfigValueError(
                f"agent {self.name!r}: guard must be 'none', 'gain' or 'scene', got {guard!r}"
            )
        on = "the guard on (guard=scene or gain; with judge=true, a judge_margin)"
        if self.options.mask_sr and not self._guarding():
            raise ConfigValueError(f"agent {self.name!r}: mask_sr needs {on}")
        if self.options.mask_unseen and not self._guarding():
            raise ConfigValueError(f"agent {self.name!r}: mask_unseen needs {on}")
        for name in ("mask_unseen", "whole_dark_floor"):
            share = getattr(self.options, name)
            if not 0.0 <= share < 1.0:
                raise ConfigValueError(
                    f"agent {self.name!r}: {name} is a share of the thresholds in [0, 1), "
                    f"got {share}"
                )
        self._check_swap_tools()
        from agents.judge import unjudged

        unknown = unjudged(self.options.judge_whole_adds)
        if unknown:
            raise ConfigValueError(
                f"agent {self.name!r}: judge_whole_adds takes dark, haze or both, got "
                f"{', '.join(unknown)}"
            )
        #: Whether ``bright_veto`` and ``trust_dark_reader`` read (on, guarded, weights there).
        self._veto_on, self._reader_on = self._learned_gates()
        if not 0.0 <= self.options.trust_dark < float("inf"):
            raise ConfigValueError(
                f"agent {self.name!r}: trust_dark is a share of the threshold, 0 or above, "
                f"got {self.options.trust_dark}"
            )
        if not (self.options.rule_in == 0 or 1.0 <= self.options.rule_in < float("inf")):
            raise ConfigValueError(
                f"agent {self.name!r}: rule_in is a multiple of the thresholds, 1 or above "
                f"(0: off), got {self.options.rule_in}"
            )
        if self.options.probe != "none" and not self._guarding():
            raise ConfigValueError(f"agent {self.name!r}: probe={self.options.probe} needs {on}")
        from agents.ppo.guard import check_guard_types, check_mask_types
        from agents.ppo.scene import check_judge_options

        check_mask_types(self.name, self.options.mask_types, self.options.mask_unseen)
        check_guard_types(self.name, self.options.guard_types)
        check_judge_options(self.name, self.options.judge_types, self.options.judge_margin)
        if self._guarding():
            from tir_env import quality_gain

            quality_gain.record()

    def _guarding(self) -> bool:
        """Whether the quality-gain guard checks the policy's calls (with the judge: margin)."""
        judge = self.options.judge and not self.options.judge_margin
        return self.options.guard != "none" and not judge

    @property
    def required_tools(self) -> tuple[str, ...]:
        """The policy's tools: an env must offer them (benchmarks add them to its list)."""
        swaps = tuple(t for t in self._swaps().values() if t and t not in self.actions.tools)
        return self.actions.tools + swaps

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Forget the previous episode's actions; with ``judge``, judge the scene tasks."""
        super().reset(env, info)
        self._actions = []
        self._scene, self._tasks_done, self._vetoed = {}, set(), set()
        self._perceived_in = {}
        self._probe_tried = set()
        self._seen_input = None  # perception's reading of this episode's input, once
        self._bright_pays = None
        self._unseen = self._unseen_tasks() if self.has_env else ()
        self._reads_clean = None
        self._brightening_unchecked = self.has_env and (
            self._perception_brightens() or self._darkness_trusted()
        )
        if self.options.judge and self.has_env:
            from agents.ppo.scene import judge_scene

            abstain = self.options.judge_margin if self._guarding() else 0.0  # none: no guard
            self._scene, executions = judge_scene(
                self.env, "tuned", self.options.judge_types, abstain, self.options.judge_whole_adds
            )
            self.tool_executions += executions  # the probes ran ahead through the pool
        if self.options.rule_in and self._guarding() and self.has_env:
            from agents.ppo.guard import perceived_scene
            from agents.ppo.scene import SCENE_TASKS

            judged = self.options.judge_types if self.options.judge else ()
            skip = [SCENE_TASKS[t] for t in judged]  # where the judge abstains, no one rules
            self._perceived_in = perceived_scene(
                self.env, self.options.rule_in, skip, seen=self._input_reading()
            )
        if not self.deterministic:  # SB3 samples with torch's global generator
            import torch

            torch.manual_seed(self.seed)
            self._rng = np.random.default_rng(self.seed)

    def start_episode(self) -> None:
        """SB3's ``episode_start``: forget the previous episode's actions."""
        self._actions = []

    def act(self, observation: Obs, deterministic: bool = True) -> Action:
        """The policy's choice as a native action of the env (tool 0: STOP)."""
        if self.options.clean_stop and self.has_env and self._input_reads_clean():
            return encode_call(None, tuple(self.env.tools))
        views = self.policy_observations(observation)
        if self._scene and not self._guarding():
            action = self._judged_action(views)
        elif self._guarding() and self.has_env:
            action = self._vetted_action(views)
        elif len(self.members) > 1 or len(views) > 1:
            from agents.ppo.policy import ensemble_action

            rng = None if self.deterministic else self._rng
            action = ensemble_action(self.members, views, rng)
        else:
            action, _ = self.policy.predict(views[0], deterministic=self.deterministic)
        self._actions.append(self.actions.key(action))
        call = self.actions.call(action)
        if call is not None:
            self._tasks_done.add(tool_info(call.tool).task)
        tools = tuple(self.env.tools) if self.has_env else ()
        tuned = self._tuned(call)
        if tuned is not call:
            return encode_call(tuned, tools)
        return self.actions.native(action, tools)

    def _tuned(self, call: ToolCall | None) -> ToolCall | None:
        """``call`` as it runs.

        ``dehazing_tool`` in place of a dehazing call (``deraining_tool`` of a deraining one),
        then the protocol-fitted parameters under ``params=tuned``.
        """
        if call is not None:
            call = self._swapped(call)
        return with_tuned_params(call) if self.params == "tuned" else call

    def _swapped(self, call: ToolCall) -> ToolCall:
        """``call``, or its task's swap tool (``dehazing_tool``, ``deraining_tool``) instead."""
        task = tool_info(call.tool).task
        swap = self._swaps().get(task, "")
        offered = not self.has_env or swap in self.env.tools  # an env without it: the policy's
        crops_only = task == "dehazing" and not self.options.dehazing_whole
        if crops_only and self.has_env and self._whole_photo():
            swap = ""  # a whole photo keeps the policy's own dehazing
        if swap and offered and call.tool != swap:
            return ToolCall(swap)
        return call

    def episode_extra(self) -> dict[str, Any]:
        """For the record: the judge's rulings, the guard's vetoes, perception's rule-ins."""
        extra: dict[str, Any] = {"judge_scene": dict(self._scene)} if self.options.judge else {}
        if self._guarding():
            extra["guard_vetoed"] = sorted(self._vetoed)
            if self.options.rule_in:
                extra["perceived_in"] = sorted(self._perceived_in)
            if self.options.mask_unseen or self.options.whole_dark_floor:
                extra["masked"] = sorted(self._unseen)  # tasks perception barely saw
            if self._veto_on:  # None: never read
                pays = self._bright_pays
                extra["bright_pays"] = None if pays is None else round(pays, 4)
        if self.options.clean_stop:
            extra["clean_stop"] = bool(self._reads_clean)  # stopped at once on a clean reading
        return extra

    def _probabilities(self, views: list[Obs]) -> tuple[list[Any], list[str | None]]:
        """The action probabilities (averaged over members and views) and each choice's task."""
        from agents.ppo.policy import mean_action_probabilities
        from agents.ppo.scene import first_dim_tasks

        probs = mean_action_probabilities(self.members, views)
        if self._choice_tasks is None:  # the same for every step of every episode
            self._choice_tasks = first_dim_tasks(self.actions, len(probs[0]), len(probs))
        return probs, self._choice_tasks

    def _judged_action(self, views: list[Obs]) -> Any:
        """The policy's action (averaged over members and views) with the judge's say."""
        from agents.ppo.scene import guarded_action

        probs, tasks = self._probabilities(views)
        rng = None if self.deterministic else self._rng
        return guarded_action(probs, tasks, self._scene, self._tasks_done, rng)

    def _vetted_action(self, views: list[Obs]) -> Any:
        """The policy's action (averaged over members and views) past the quality-gain guard."""
        from agents.ppo.guard import as_action, predicted_gain, vetted_action
        from agents.ppo.scene import SCENE_TASKS, pick_choice, ruled_in_choice, ruled_out

        probs, tasks = self._probabilities(views)

        def keep(action: Any) -> bool:
            gain = predicted_gain(self.env, self._tuned(self.actions.call(action)))
            return gain is None or gain > 0.0

        rng = None if self.deterministic else self._rng
        if self.options.guard == "scene":
            scope = [SCENE_TASKS[kind] for kind in self.options.guard_types]
        else:
            scope = [task for task in tasks if task is not None]
        if self._brightening_unchecked:  # whole_dark_floor: perception decides it
            scope = [task for task in scope if task != SCENE_TASKS["dark"]]
        checked = tuple(t for t in scope if t not in self._scene)  # the judge's rulings stand
        action, vetoes = vetted_action(
            probs,
            tasks,
            self._vetoed,
            keep,
            rng,
            checked=checked,
            unavailable=self._full_size() + self._unseen + ruled_out(self._scene),
            refused=self._brightening_refused,
        )
        self.tool_executions += vetoes  # vetoed calls ran ahead through the pool
        # the judge's rulings, then perception's: called before the policy stops, unchecked
        due = ruled_in_choice(probs, tasks, self._scene | self._perceived_in, self._tasks_done)
        if due is not None and tasks[due] == BRIGHTENING and self._brightening_refused(None):
            due = None
        if self.actions.call(action) is None and due is not None:  # the judge ruled it in
            action = as_action(due, [pick_choice(np.asarray(p, float), rng) for p in probs[1:]])
        if self.actions.call(action) is None and self.options.probe != "none":
            action = self._probed(probs, tasks, action)
        call = self.actions.call(action)
        if call is not None:
            self._probe_tried.add(tool_info(call.tool).task)  # called: never probed again
        return action

    def _brightening_refused(self, action: Any) -> bool:
        """Whether ``bright_veto`` refuses brightening (``action``: a call of it, or ``None``).

        Read once an episode, on the image where the policy first would brighten; a crop only.
        """
        if not self._veto_on:
            return False
        if action is not None:
            call = self.actions.call(action)
            if call is None or tool_info(call.tool).task != BRIGHTENING:
                return False
        if self._whole_photo():  # not fitted on whole photos
            return False
        seen = self._input_reading()
        if seen is None:  # no perception weights: nothing to read
            return False
        if self._bright_pays is None:
            from agents.ppo import bright_veto

            row = bright_veto.features(
                seen.probs,
                self.env.current_batch(),
                self.env.target_size(),
                self._tasks_done,
                sum(1 for step in self.env.history if step.call is not None),
                reader=bright_veto.reads_reader(),
            )
            self._bright_pays = bright_veto.pays(row)
        return self._bright_pays < self.options.bright_veto

    def _unseen_tasks(self) -> tuple[str, ...]:
        """The tasks masked this episode: those of the types perception reads below a share.

        ``mask_unseen`` (of ``mask_types``) on a crop; ``whole_dark_floor`` (of darkness) on a
        whole photo, where it is set (:meth:`_perception_brightens`).
        """
        from agents.ppo.guard import unseen_tasks

        if not self._guarding():
            return ()
        if self._perception_brightens():
            floor = self.options.whole_dark_floor
            return unseen_tasks(self.env, floor, ("dark",), seen=self._input_reading())
        if not self.options.mask_unseen:
            return ()
        floor, types = self.options.mask_unseen, self.options.mask_types
        return unseen_tasks(self.env, floor, types, seen=self._input_reading())

    def _input_reads_clean(self) -> bool:
        """Whether perception reads the input as clean and the judge rules nothing in (once)."""
        if self._reads_clean is None:
            from agents.ppo.scene import reads_clean

            self._reads_clean = reads_clean(self._input_reading(), self._scene)
        return self._reads_clean

    def _input_reading(self) -> Any:
        """Perception on the episode's input, read on first use and kept until ``reset``."""
        if self._seen_input is None:
            from agents.ppo.guard import input_reading

            self._seen_input = input_reading(self.env)
        return self._seen_input

    def _darkness_trusted(self) -> bool:
        """Whether the input reads darkened enough that the guard does not check brightening.

        ``trust_dark_reader`` (the darkness reader, on a crop), then ``trust_dark``
        (perception's darkness reading at that share of its threshold); guarded only.
        """
        if not self._guarding():
            return False
        if self._reader_on and not self._whole_photo():
            seen = self._input_reading()
            if seen is not None:
                from agents.ppo import dark_reader

                if dark_reader.darkened(seen.probs) >= self.options.trust_dark_reader:
                    return True
        if not self.options.trust_dark:
            return False
        from agents.ppo.guard import perceived_scene
        from agents.ppo.scene import SCENE_TASKS

        haze = [SCENE_TASKS["haze"]]
        read = perceived_scene(self.env, self.options.trust_dark, haze, self._input_reading())
        return bool(read.get(SCENE_TASKS["dark"]))

    def _perception_brightens(self) -> bool:
        """Whether perception decides brightening (``whole_dark_floor``, a whole photo, guarded)."""
        floor = self.options.whole_dark_floor
        return bool(floor) and self._guarding() and self._whole_photo()

    def _full_size(self) -> tuple[str, ...]:
        """``("super_resolution",)`` under ``mask_sr`` when the image is already full size."""
        target = self.env.target_size() if self.options.mask_sr else None
        if target is None:
            return ()
        height, width = self.env.current_image().shape[:2]
        full = height >= target[0] and width >= target[1]
        return ("super_resolution",) if full else ()

    def _probed(self, probs: list[Any], tasks: list[str | None], stop: Any) -> Any:
        """At STOP: a probed scene task the quality-gain model backs, else ``stop``."""
        from agents.ppo.guard import predicted_gain, probed_action
        from tir_env import quality_gain

        def gain(action: Any) -> float | None:
            return predicted_gain(self.env, self._tuned(self.actions.call(action)))

        from agents.ppo.scene import ruled_out

        tried = self._probe_tried | self._vetoed | set(ruled_out(self._scene))
        action, rejected = probed_action(
            probs, tasks, PROBED[self.options.probe], tried, gain, quality_gain.margin()
        )
        self._probe_tried |= tried
        self.tool_executions += rejected  # probes not taken ran ahead through the pool
        return action if self.actions.call(action) is not None else stop

    def policy_observation(self, observation: Obs) -> Obs:
        """What the policy sees: CHW images at its size, the history of its own actions.

        Images come from the env at full resolution when the agent knows the env, seen at
        the scale of the training crops (:meth:`view`: on a crop of the training size exactly
        what training saw), else from the observation.
        """
        if self.has_env:
            current, first = self.env.current_image(), self.env.input_image()
            native = self._native_readings(current, first)
            return self._observation(self.view(current), self.view(first), native)
        # the env's observation, already resized
        size = self.spec.obs_size
        image, source = (policy_image(observation[k], size) for k in ("image", "input"))
        return self._observation(image, source)

    def _reads_native(self) -> bool:
        """Whether perception reads the env's images at native resolution (a whole photo)."""
        from agents.ppo import perceived

        if not self.options.native_perception or self.spec.perceived in (None, perceived.TRUTH):
            return False
        return max(self._reference()) > self.spec.train_patch

    def policy_observations(self, observation: Obs) -> list[Obs]:
        """The views the policy reads this step: :meth:`policy_observation`, or its tiles.

        With ``tiles`` > 0 and the env known, tile ``k`` of the current image is paired with
        tile ``k`` of the input (:func:`~tir_env.wrappers.tile_views`).
        """
        grid = self.options.tiles
        if not grid or not self.has_env:
            return mirrored(self.options.flips, [self.policy_observation(observation)])
        reference, size, patch = self._reference(), self.spec.obs_size, self.spec.train_patch
        current, first = self.env.current_image(), self.env.input_image()
        images = tile_views(current, size, patch, reference, grid)
        inputs = tile_views(first, size, patch, reference, grid)
        # perception reads the whole images once (native_perception), each tile shows a part
        native = self._native_readings(current, first)
        views = [self._observation(a, b, native) for a, b in zip(images, inputs, strict=True)]
        return mirrored(self.options.flips, views)

    def _native_readings(self, current: np.ndarray, first: np.ndarray) -> np.ndarray | None:
        """The ``perceived`` vector of the HWC images at native resolution, or ``None``.

        ``None`` where perception reads the views instead (:meth:`_reads_native`).
        """
        if not self._reads_native():
            return None
        from agents.ppo import perceived

        size, network = self._reference(), self.spec.perceived
        assert network is not None  # _reads_native: a policy that reads perception
        rows = [perceived.photo_readings(x, network, size) for x in (current, first)]
        return np.concatenate(rows)

    def _observation(
        self,
        image: np.ndarray,
        source: np.ndarray,
        native: np.ndarray | None = None,
    ) -> Obs:
        """The policy's observation of two CHW views.

        ``native``: perception's readings of the images they show, read at native resolution
        (:meth:`_native_readings`), instead of the views' own.
        """
        obs = {
            "image": image,
            "input": source,
            "history": self.actions.history(self._actions, self.spec.history_len).reshape(-1),
        }
        if self.spec.perceived is not None:
            from agents.ppo import perceived

            if self.spec.perceived == perceived.TRUTH:
                obs[perceived.KEY] = perceived.truth_observation(self._true_types())
            elif native is not None:
                obs[perceived.KEY] = native
            else:
                obs[perceived.KEY] = perceived.observation(
                    obs["image"][None], obs["input"][None], self.spec.perceived
                )[0]
        return obs

    def _true_types(self) -> tuple[str, ...]:
        """The episode's true degradations, for a privileged policy (``perceived: truth``).

        Raises:
            ConfigValueError: the episode has no degradation labels (a user's photo): such a
                policy is a diagnostic, like ``oracle``.
        """
        from agents.ppo import perceived
        from tir_env.errors import ConfigValueError

        names = perceived.true_types(self.env) if self.has_env else ()
        if not names:
            raise ConfigValueError(
                "this PPO policy reads the true degradations (perceived: truth, a diagnostic "
                "trained with --perceived-truth); it runs only on labelled benchmark episodes"
            )
        return names

    def view(self, image: ImageU8) -> np.ndarray:
        """An env image as the policy sees it: at the training scale when not larger.

        The reference scale is the size the restored image should have
        (``env.target_size()``), or without a reference (``tir restore``) the larger of the
        input and the current image. :func:`~tir_env.wrappers.deployed_view`: a smaller crop
        reflect-padded, not stretched (on 96 px crops of the val photos the shipped policy
        ends 1.1 dB higher, mean of mio-a/b/c); a larger image resized whole, as before.
        """
        reference = self._reference()
        return deployed_view(image, self.spec.obs_size, self.spec.train_patch, reference)

    def _whole_photo(self) -> bool:
        """Whether the episode's image is larger than the policy's training crops."""
        return max(self._reference()) > self.spec.train_patch

    def _reference(self) -> tuple[int, int]:
        """The size the restored image should have (or the larger of input and current)."""
        reference = self.env.target_size()
        if reference is None:
            sizes = (self.env.input_image().shape[:2], self.env.current_image().shape[:2])
            reference = max(sizes, key=lambda s: s[0] * s[1])
        return tuple(reference)  # type: ignore[return-value]


@register_agent
class PPOBCAgent(PPOAgent):
    """The PPO policy cloned with DAgger, before any RL (``ppo`` starts from it).

    Trained by ``tir train ppo-bc --dagger-rounds 3 --perceived`` (:mod:`agents.ppo.bc`,
    :mod:`agents.ppo.dagger`) on the perceived expert's dataset (oracle's plan for what
    perception reads; ``agents/ppo/weights/ppo_bc_oracle`` is the oracle clone); the same
    policy format, observation and catalogue as ``ppo``, which it can warm-start
    (``tir train ppo --init STEM``).
    """

    name = "ppo-bc"
    description = "the PPO policy cloned from the perceived expert with DAgger, before any RL"
    Options = PPOBCOptions
    options: PPOBCOptions
    default_weights = DEFAULT_BC_WEIGHTS
