"""Training-free search agents: exhaustive traversal (AgenticIR) and greedy best-of-all (4KAgent).

Both plan by running candidate tools through the env's shared pool on copies of the current
image, score the candidates, then replay the chosen path through the env (those replays hit
the pool's cache). They count every distinct tool execution they request in an episode, so
``tool_executions`` measures the work of searching, not just the final path.

Scoring:

* ``exhaustive`` and ``greedy`` score without the reference, with the no-reference metric
  named by their ``metric`` option: ``tirqa`` by default (the learned quality model, which
  predicts PSNR to the unseen clean image and is not fooled by smoothing), or ``niqe``
  (lower is better; the in-repo fit, which smoothing fools: docs/reward.md). This is what a
  deployable training-free agent can do.
* ``metric="gain"`` scores each candidate by the quality-gain model
  (:mod:`tir_env.quality_gain`): the PSNR change it predicts from the episode's input to the
  candidate, looking at both (still without the clean image). It ranks one input's
  candidates far better than a score of the candidate alone (docs/perception.md).
  ``metric="gain-trees"`` predicts the same change with boosted trees over perception's
  statistics of both images (:mod:`tir_env.gain_trees`).
* ``exhaustive-ref`` scores with PSNR against the clean image: an upper bound for
  search over this toolbox, not a deployable agent.

On large photos the search can run on a proxy (``search_size``): the centre crop of the input
(and of the reference, at the reference's scale) is searched, and the path found is then
executed on the whole image. Those final executions are counted too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from agents.base import AgentOptions, PlanAgent, register_agent
from agents.baselines import DEFAULT_LEARNED, learned_tool, perceived_tasks, plan_tool
from agents.tuned import GENTLE_TOOL, ParamsChoice, gentle_denoise, gentle_image, prior_call
from tir_env.errors import InvalidParameterError, TIRError
from tir_env.images import image_digest
from tir_env.tools.base import tool_info
from tir_env.types import TASKS, Region, ToolCall

#: ``metric`` value that scores candidates with the quality-gain model.
GAIN = "gain"
#: ``metric`` value that scores candidates with the gain trees (:mod:`tir_env.gain_trees`).
GAIN_TREES = "gain-trees"
#: The metrics that predict a candidate's PSNR change from the episode's input.
GAIN_METRICS = (GAIN, GAIN_TREES)


def gain_model(metric: str) -> Any:
    """The module that predicts PSNR changes for a gain ``metric`` (``predict_gain``, ...)."""
    if metric == GAIN_TREES:
        from tir_env import gain_trees

        return gain_trees
    from tir_env import quality_gain

    return quality_gain


#: Smallest ``search_size`` (pixels a side): below it the tools' kernels outgrow the crop.
MIN_SEARCH_SIZE = 16
#: Each task's place in the prior plan (:func:`agents.baselines.prior_plan`: reverse physical).
PRIOR_RANK = {task: rank for rank, task in enumerate(reversed(TASKS))}
#: ``prior_margin`` when none is given (scorer units): 3 on the corpus val photos with the
#: declared tool parameters; 5 once the prior runs the fitted ones (cross-validated on the
#: corpus' train photos, confirmed on val: docs/agents.md, "Parameters fitted to the protocol").
DEFAULT_PRIOR_MARGIN = 5.0
#: ``deviation_margin`` when none is given (scorer units; cross-validated on the corpus).
DEFAULT_DEVIATION_MARGIN = 20.0


@dataclass
class _Node:
    image: torch.Tensor
    score: float
    path: tuple[ToolCall, ...]
    tasks: tuple[str, ...]


@dataclass(frozen=True)
class SearchOptions(AgentOptions):
    """Options of the search agents (``exhaustive``, ``exhaustive-ref``, ``greedy``).

    Attributes:
        metric: How candidates are scored: ``gain`` (the quality-gain model: predicted PSNR
            change from the episode's input), ``gain-trees`` (the same change predicted by
            :mod:`tir_env.gain_trees`) or a no-reference metric (``tirqa``, ``niqe``,
            ...); ``exhaustive-ref`` scores PSNR against the reference instead.
        gain_margin: With ``metric="gain"`` or ``"gain-trees"``: the predicted gain (dB) a
            candidate must clear to beat keeping the input (``None``: the model's margin,
            :func:`tir_env.quality_gain.margin`, :func:`tir_env.gain_trees.margin`; noisy
            scores overrate the best of many).
        guard: Check the chosen path with the quality-gain model before executing it: keep
            the prefix whose output it predicts gains most over the input, or nothing when
            none gains (``gain``); ``auto``: ``gain`` when its weights exist; ``none``: execute
            the path as found (the default: on the corpus val photos the guard moved
            ``exhaustive`` by -0.29, -0.25, +0.05 dB on mio-a/b/c and ``greedy`` by +0.27,
            -0.18, +0.05: no gain over ``tirqa``'s own choice). Not used with
            ``metric="gain"`` or ``"gain-trees"`` (already scored by a gain) or by
            ``exhaustive-ref``.
        prior_margin: How far (in the scorer's units: dB for ``tirqa`` and ``gain``) the
            scorer must rate a path that leaves a perceived task out (rollback) above the
            prior's before the search prefers it. Every call of a task's preferred tool (the
            prior plan's tool, :func:`preferred_tool`) in the prior's order adds this much
            to its path's score; rivals and other orders need ``deviation_margin``. The best of
            many noisy scores is overrated (the winner's curse): with no margin the search
            agents picked whichever candidate ``tirqa`` overrated most and ended below
            ``fixed``, which applies the preferred tools blindly. ``None``: the default
            chosen on the corpus (:data:`DEFAULT_PRIOR_MARGIN`); ``0``: the plain
            search. Not used by ``exhaustive-ref`` (it scores against the truth).
        deviation_margin: How far the scorer must rate a path that deviates from the prior
            plan (another tool of a task than its preferred one, or with ``prior_order``
            the tasks in another order) above the prior's path before the search takes it
            (``None``: :data:`DEFAULT_DEVIATION_MARGIN`; a value below ``prior_margin``
            counts as ``prior_margin``). Each deviating call adds ``prior_margin -
            deviation_margin`` to its path's score. Cross-validated on the corpus (docs/
            agents.md), ``tirqa`` tells whether a perceived task helps (a dropped task gains
            on average) better than which tool or which order helps most (both lose).
        prior_order: The prior also fixes the order of the tasks: a preferred-tool call
            deviates (see ``deviation_margin``) where its task comes earlier in the prior
            plan's order (the reverse physical order, :func:`agents.baselines.prior_plan`)
            than a task before it on the path. Without it every order of the preferred
            tools scores alike and the scorer picks among them unchecked. ``greedy`` also
            counts, when it picks a step, the margin of every perceived task still ahead in
            that order, so the next task in the prior's order is favoured over skipping
            ahead.
        search_size: Search on the centre crop of the image, at most this many pixels a side
            at the restored (reference) size, then execute the path found on the whole image
            (``None``: search on the whole image). Tools see less context on a crop (global
            statistics such as the haze airlight come from the crop), so this trades some
            fidelity of the search for its cost, which grows with the pixel count.
        params: The parameters of each task's preferred tool, in the prior plan and among
            the candidates: ``tuned`` (fitted to the protocol's degradations on the corpus'
            train photos, :mod:`agents.tuned`) or the declared ``default``; the other tools
            run their defaults. ``exhaustive-ref`` always runs the defaults (its records and
            the expert data it collects stay reproducible).
        judge: Decide darkness and haze with the learned judge (:mod:`agents.judge`) instead
            of perception's thresholds: where either is read at 0.3 of its threshold or more,
            run the prior plan with it and without it, compare the input and both outputs
            (clipping, brightness, dark channel, saturation), and plan it where the judge
            predicts a gain (two plans run ahead per judged type, counted as tool
            executions). Perceiving agents only; on by default since over 1,600 new val
            episodes it lifted ``exhaustive`` by +0.32 dB (se 0.07) and ``greedy`` by +0.32
            (se 0.07), every suite up (docs/agents.md, "The judge reads the results").
        judge_whole: With ``judge``, also judge whole photos (restored side above 256 px)
            on a 256 px proxy with the whole-photo judge (``agents.judge.proxy``); off,
            a whole photo keeps perception's thresholds, as before the whole-photo judge.
        judge_margin: dB the judge's predicted gain must clear to overrule perception (add a
            type it did not see, or drop one it saw). ``None`` (the default): the margin saved
            with the judge's weights, cross-validated when it was fitted
            (``train_judge --margins``; 0 where the file says none). Larger margins trade
            judged gains for fewer large losses.
        judge_reach: How far (standard deviations of the judge's fitted rows) a probe's
            features may lie before the judge abstains and perception's call stands (``None``:
            :data:`agents.judge.RANGE_Z`, chosen on val probes; ``inf``: judge every probe, as
            before rule 81a0e57). A linear judge extrapolates wildly far from its rows.
        judge_whole_alone: Let the whole-photo judge add darkness or haze to a whole photo
            where perception saw no other degradation (a photo it reads as clean). Off, such
            a photo stays as perception reads it (crops up to 256 px, which the crop judge
            decides, are unaffected): the judge, fitted on degraded photos only,
            cannot tell a dim or misty clean photo from a darkened or hazed one
            (docs/agents.md, "Photos perception reads as clean"). Off by default since the
            whole-photo judge was refitted on release 3: on val probes off gains +0.18 to
            +0.23 dB per episode more and judges in one clean photo fewer (rule be17ec7).
        learned: Tasks (``a,b`` on the command line) whose learned tool (``learned_<task>``,
            docs/tools.md) is the prior's tool for the task instead of the preferred classical
            one, as ``fixed.learned`` (the classical tool stays a candidate, a rival); the env
            must offer it (benchmarks and ``tir restore`` add it: :attr:`required_tools`).
            The judge's probes run the plan its weights were fitted on
            (:func:`agents.judge.load_learned`). Default
            :data:`agents.baselines.DEFAULT_LEARNED` (dehazing, deraining); ``learned=``
            (empty) is the classical prior.
        judge_weights: A crop judge's weights file (``train_judge --weights``) to judge crops
            with instead of the shipped ``agents/judge_weights.json`` (its floor, margin and
            probe plan come with it); empty: the shipped one. Whole photos keep the
            whole-photo judge.
        judge_whole_weights: A whole-photo judge's weights file (``judge_trees --save-ridge
            whole``) to judge whole photos with instead of the shipped
            ``agents/judge_whole_weights.json``; empty: the shipped one.
        judge_crop_types: The types the crop judge decides (of ``dark``, ``haze``; the others
            keep perception's call). Whole photos: both, always.
        judge_crop_adds: The crop judge may add a type perception did not see (the default);
            ``false``: on crops it only rules out what perception saw; types (``haze``): it
            may add only those, and rules out the others only, as ``fixed``'s does
            (``fixed.crop_adds``). Whole photos: as ``judge_whole_alone`` says.
        judge_whole_adds: The judged types the whole-photo judge may add (where
            ``judge_whole_alone`` allows an add at all). Both by default, as the suites'
            whole-photo episodes were judged with; ``tir restore`` passes ``dark`` unless told
            ``judge``, ``judge_whole`` or this option (rule 2b43866: on a user's noisy photo
            the added dehazing cost 10 dB), as it does ``fixed.whole_adds``.
        judge_crop_adds_alone: ``true``: the crop judge may add a type where no type
            perception saw stays after its rulings; ``false``: only beside one that stays
            (:func:`agents.judge.kept_adds`); ``unless-cleared`` (the default since rule
            c4f93e2): anywhere but where it ruled out every type perception saw, so a clean
            small photo whose misread darkness the judge rules out is not dehazed instead (as
            ``fixed.crop_adds_alone``).
        judge_crop_adds_blocked_by: Degradation types (``noise``) beside which the crop judge
            adds nothing: on a crop where perception sees one, it only keeps or rules out what
            perception saw. Empty by default, as the records were played. The judge was fitted
            on the training protocols, where a noisy crop it reads as dark is mostly darkened
            and noisy; on the unseen pairs of noise and blur its additions cost 10-20 dB.
        judge_crop_blocked_adds: The judged types (``dark``, ``haze``) that
            ``judge_crop_adds_blocked_by`` keeps the crop judge from adding: both by default.
        judge_whole_adds_blocked_by: Degradation types beside which the whole-photo judge
            adds no brightening (as ``fixed.whole_adds_blocked_by``): empty by default, as the
            records were played; ``rain`` for a rainy photo of one's own, which the judge
            otherwise reads as one to brighten beside its streaks (test rainy copies,
            ``restore_check --rain``: ``lomiri/sunset`` and ``plasma/Path`` end under their
            inputs; docs/agents.md, "Brightening beside rain").
        judge_whole_rain_on_top: ``true`` (the default, rule 885d8bb): beside rain that lies on
            top of the photo's tones (:func:`tir_env.streaks.rain_on_top`) the whole-photo
            judge adds no brightening, as ``fixed.whole_rain_on_top`` (rule fddc28f).
            ``false``: as the records before it were played.
        whole_gentle_noise: ``true`` (the default, rule 7ca6475): where perception read noise
            on a whole photo only from its flattest blocks, the preferred denoiser is tried at
            the strength those blocks give (:func:`agents.tuned.gentle_denoise`), as
            ``fixed.whole_gentle_noise``. ``false``: at the fitted strength.
    """

    metric: str = "tirqa"
    gain_margin: float | None = None
    guard: Literal["auto", "gain", "none"] = "none"
    prior_margin: float | None = None
    deviation_margin: float | None = None
    prior_order: bool = True
    search_size: int | None = None
    params: ParamsChoice = "tuned"
    judge: bool = True
    judge_whole: bool = True
    judge_margin: float | None = None
    judge_reach: float | None = None
    judge_whole_alone: bool = False
    learned: tuple[str, ...] = DEFAULT_LEARNED
    judge_weights: str = ""
    judge_whole_weights: str = ""
    judge_crop_types: tuple[str, ...] = ("dark", "haze")
    judge_crop_adds: bool | tuple[str, ...] = True
    judge_crop_adds_alone: bool | Literal["unless-cleared"] = "unless-cleared"
    judge_whole_adds: tuple[str, ...] = ("dark", "haze")
    judge_crop_adds_blocked_by: tuple[str, ...] = ()
    judge_crop_blocked_adds: tuple[str, ...] = ("dark", "haze")
    judge_whole_adds_blocked_by: tuple[str, ...] = ()
    judge_whole_rain_on_top: bool = True
    whole_gentle_noise: bool = True

    def __post_init__(self) -> None:
        """Check ``search_size`` and the margins.

        Raises:
            InvalidParameterError: ``search_size`` is below 16 pixels, or ``prior_margin`` or
                ``deviation_margin`` or ``judge_margin`` is negative or not finite, or
                ``judge_reach`` is not above 0.
        """
        reach = self.judge_reach
        if reach is not None and not (reach > 0):  # inf is allowed: judge every probe
            raise InvalidParameterError(
                f"judge_reach={reach}: give a bound above 0 in standard deviations (inf: no bound)"
            )
        for name in ("prior_margin", "deviation_margin", "judge_margin"):
            margin = getattr(self, name)
            if margin is not None and not (math.isfinite(margin) and margin >= 0):
                raise InvalidParameterError(
                    f"{name}={margin}: give a finite margin >= 0 (0: no prior)"
                )
        adds = () if isinstance(self.judge_crop_adds, bool) else self.judge_crop_adds
        from agents.judge import unjudged

        unknown = unjudged(
            [*self.judge_crop_types, *adds, *self.judge_whole_adds, *self.judge_crop_blocked_adds]
        )
        if unknown:
            raise InvalidParameterError(
                "judge_crop_types/judge_crop_adds/judge_whole_adds/judge_crop_blocked_adds: "
                f"{', '.join(unknown)} "
                "is not judged; give dark, haze or both"
            )
        from agents.judge import not_degradations
        from tir_env.degradations.protocols import AGENTICIR_TYPES

        for name in ("judge_crop_adds_blocked_by", "judge_whole_adds_blocked_by"):
            strange = not_degradations(getattr(self, name))
            if strange:
                raise InvalidParameterError(
                    f"{name}: {', '.join(strange)} is not a degradation type; "
                    f"give some of {', '.join(AGENTICIR_TYPES)}"
                )
        if self.search_size is not None and self.search_size < MIN_SEARCH_SIZE:
            raise InvalidParameterError(
                f"search_size={self.search_size}: give at least {MIN_SEARCH_SIZE} pixels, "
                "or leave it unset to search on the whole image"
            )


class _SearchAgent(PlanAgent):
    """Plans a path at ``reset`` with the pool, then replays it; counts its executions."""

    owns_execution_count = True
    use_reference = False
    #: Restrict the search to the perceived tasks (``agents.baselines.perceived_tasks``).
    perceive = False

    Options = SearchOptions
    options: SearchOptions

    def __init__(self, seed: int | str = 0, **options: Any) -> None:
        """Build the agent (options: :class:`SearchOptions`; the search itself is seedless).

        Raises:
            InvalidParameterError: the metric needs the clean reference.
            WeightsNotFoundError: ``metric="gain"`` (``"gain-trees"``) and the quality-gain
                weights (the gain trees) are missing,
                or the ``judge_weights`` or ``judge_whole_weights`` file is.
            CheckpointError: the ``judge_weights`` or ``judge_whole_weights`` file is
                malformed.
        """
        super().__init__(seed, **options)
        from tir_env.metrics import metric_info

        #: The learned tools the prior plan (``learned``) and the judge's probes call: the env
        #: must offer them.
        tasks = (*self.options.learned, *self._judge_learned())
        self.required_tools = tuple(dict.fromkeys(learned_tool(t) for t in tasks))
        margin = self.options.prior_margin
        self.prior_margin = (
            0.0
            if self.use_reference
            else (DEFAULT_PRIOR_MARGIN if margin is None else float(margin))
        )
        deviation = self.options.deviation_margin
        deviation = DEFAULT_DEVIATION_MARGIN if deviation is None else float(deviation)
        self.deviation_margin = 0.0 if self.use_reference else max(deviation, self.prior_margin)
        self.metric = self.options.metric
        self._lower_better = False
        if self.metric in GAIN_METRICS:
            model = gain_model(self.metric)
            model.record()  # a missing or unreadable model: a named error now
            margin = self.options.gain_margin
            self._gain_margin = model.margin() if margin is None else float(margin)
            return
        info = metric_info(self.metric)
        if info.needs_reference:
            raise InvalidParameterError(
                f"agent {self.name!r}: metric {self.metric!r} needs the clean reference; "
                "choose a no-reference metric (tirqa, niqe, musiq, ...)"
            )
        self._lower_better = info.lower_better

    def make_plan(self) -> Sequence[ToolCall]:
        """Search from the episode's input (memo and scores are per episode)."""
        if self.use_reference and not self.env.has_reference:
            raise TIRError(
                f"agent {self.name!r} scores against the clean image; this episode has none"
            )
        self._memo: dict[tuple[str, ToolCall], torch.Tensor | None] = {}
        self._scores: dict[str, float] = {}
        whole, target = self.env.current_batch(), self.env.target_size()
        self._root, self._region = search_view(whole, target, self.options.search_size)
        region = self._region
        self._target = target if region is None or target is None else (region.height, region.width)
        self.tool_executions += self._judge_executions  # the judge's plans run ahead
        path = self.search(self._root)
        path = self._guarded(path) if self._guard_on() else path
        if self._root is not whole:  # searched on a crop: the path runs anew on the whole image
            self.tool_executions += len(path)
        return path

    def _guard_on(self) -> bool:
        from tir_env import quality_gain

        guard = self.options.guard
        if self.use_reference or self.metric in GAIN_METRICS or guard == "none":
            return False
        return guard == "gain" or quality_gain.available()

    def _guarded(self, path: Sequence[ToolCall]) -> Sequence[ToolCall]:
        """The prefix of ``path`` the quality-gain model predicts gains most (empty: none gains).

        Every image on the path is in the episode's memo already: no tool runs again.
        """
        from tir_env import quality_gain

        images, image = [], self._root
        for call in path:
            out = self._memo.get((image_digest(image), call))
            if out is None:
                break
            image = out
            images.append(image)
        if not images:
            return path[:0]
        gains = [float(quality_gain.predict_gain(self._root, x, self._target)[0]) for x in images]
        best = max(range(len(gains)), key=lambda i: gains[i])
        return path[: best + 1] if gains[best] > 0 else path[:0]

    def search(self, image: torch.Tensor) -> Sequence[ToolCall]:
        """The path of tool calls to execute."""
        raise NotImplementedError

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Perceive first (when :attr:`perceive` is set and no tasks are given), then plan."""
        info = dict(info or {})
        self._judge_executions = 0
        #: The types the judge added to perception's and dropped, this episode (``None``: it
        #: did not decide); ``tir restore`` prints them.
        self.judge_overruled: dict[str, list[str]] | None = None
        base = getattr(env, "unwrapped", env)
        #: The preferred denoiser's call where it must run gently this episode (``None``: as
        #: the prior plan runs it); none from the last episode while this one is perceived.
        self._gentle_call: ToolCall | None = None
        if self.perceive and "perceived_tasks" not in info:
            tasks = self._judged_tasks(base) if self.options.judge else perceived_tasks(base)
            if tasks is not None:
                info["perceived_tasks"] = tasks
        self._gentle_call = self._gentle_denoiser(base, info.get("perceived_tasks"))
        super().reset(env, info)

    def _gentle_denoiser(self, env: Any, tasks: Sequence[str] | None) -> ToolCall | None:
        """The gentle denoiser's call for ``env``'s photo (``whole_gentle_noise``), else ``None``.

        Only where the search may try a denoiser (``tasks``: the perceived ones, ``None``:
        every task), so a whole photo without noise is not perceived once more for it.
        """
        if not self.perceive or self.use_reference or not self.options.whole_gentle_noise:
            return None
        if tasks is not None and "denoising" not in tasks:
            return None
        image = gentle_image(env)
        if image is None:
            return None
        return gentle_denoise(prior_call(GENTLE_TOOL, self.options.params), image)

    def _judge_learned(self) -> tuple[str, ...]:
        """The tasks whose learned tool the shipped judges' probes call (:mod:`agents.judge`)."""
        if not (self.options.judge and self.perceive):
            return ()
        from agents import judge

        for named in (self.options.judge_weights, self.options.judge_whole_weights):
            if named:  # a file the user named: refuse it now, not mid-run
                judge.load(Path(named))
        found: list[str] = []
        for path in (self._crop_judge_weights(), self._whole_judge_weights()):
            try:
                found += judge.load_learned(path)
            except TIRError:  # missing or broken weights: the judge reports it when it runs
                continue
        return tuple(dict.fromkeys(found))

    def _crop_judge_weights(self) -> Path:
        """The crop judge's weights file: ``judge_weights``, else the shipped one."""
        from agents import judge

        given = self.options.judge_weights
        return Path(given) if given else judge.WEIGHTS_FILE

    def _whole_judge_weights(self) -> Path:
        """The whole-photo judge's weights file: ``judge_whole_weights``, else the shipped one."""
        from agents import judge

        given = self.options.judge_whole_weights
        return Path(given) if given else judge.WHOLE_WEIGHTS_FILE

    def _judged_tasks(self, env: Any) -> list[str] | None:
        """The tasks the judge leaves planned (``None`` without perception).

        :func:`agents.judge.judged`; :attr:`judge_overruled` says which types the judge
        added and dropped.
        """
        from agents import judge
        from tir_env import perception
        from tir_env.degradations import make_degradation

        if env is None or not perception.available():
            return None
        if not self.options.judge_whole and judge.is_whole(env):
            return perceived_tasks(env)
        alone = self.options.judge_whole_alone or not judge.is_whole(env)
        types, self.judge_overruled, executions = judge.judged(
            env,
            self.options.params,
            margin=self.options.judge_margin,
            alone=alone,
            reach=judge.RANGE_Z if self.options.judge_reach is None else self.options.judge_reach,
            crop_weights=self._crop_judge_weights(),
            whole_weights=self._whole_judge_weights(),
            types=None if judge.is_whole(env) else self.options.judge_crop_types,
            adds=(
                tuple(self.options.judge_whole_adds)
                if judge.is_whole(env)
                else self.options.judge_crop_adds
            ),
            adds_need_kept=judge.need_kept(self.options.judge_crop_adds_alone, judge.is_whole(env)),
            adds_blocked_by=(
                judge.whole_blocked_by(
                    env,
                    self.options.judge_whole_adds_blocked_by,
                    self.options.judge_whole_rain_on_top,
                )
                if judge.is_whole(env)
                else self.options.judge_crop_adds_blocked_by
            ),
            blocked_adds=(
                judge.WHOLE_BLOCKED_ADDS
                if judge.is_whole(env)
                else self.options.judge_crop_blocked_adds
            ),
        )
        self._judge_executions = executions
        return [make_degradation(t).info.task for t in types]

    # ------------------------------------------------------------------ helpers
    def candidates(self, exclude_tasks: Sequence[str] = ()) -> list[ToolCall]:
        """One call of every allowed env tool whose task is not excluded.

        Each task's preferred tool runs as the prior plan runs it (:meth:`prior_call`); the
        others with their defaults.
        """
        return [
            self.prior_call(t) if self._is_preferred(t) else ToolCall(t, {})
            for t in self.env.tools
            if tool_info(t).task not in exclude_tasks and self._allowed(t)
        ]

    def prior_call(self, tool: str) -> ToolCall:
        """``tool`` with the parameters the prior plan runs it with (``params``).

        The preferred denoiser runs gently where ``whole_gentle_noise`` applies.
        """
        gentle = getattr(self, "_gentle_call", None)
        if gentle is not None and tool == gentle.tool:
            return gentle
        return prior_call(tool, "default" if self.use_reference else self.options.params)

    def _is_preferred(self, tool: str) -> bool:
        """Whether ``tool`` is the prior plan's tool for its task (``learned`` or preferred)."""
        return tool == plan_tool(tool_info(tool).task, self.env.tools, self.options.learned)

    def _allowed(self, tool: str) -> bool:
        perceived = self.info.get("perceived_tasks")
        return perceived is None or tool_info(tool).task in perceived

    def run(self, image: torch.Tensor, call: ToolCall) -> torch.Tensor | None:
        """Run one candidate through the pool (memoised per episode, counted once)."""
        return self.run_all(image, [call])[0]

    def run_all(self, image: torch.Tensor, calls: Sequence[ToolCall]) -> list[torch.Tensor | None]:
        """Run many candidates on one image; submitted together so the pool can batch them."""
        digest = image_digest(image)
        todo = list(dict.fromkeys(c for c in calls if (digest, c) not in self._memo))
        for call, output in zip(todo, self.env.lookahead(image, todo), strict=True):
            self.tool_executions += 1
            self._memo[(digest, call)] = output
        return [self._memo[(digest, c)] for c in calls]

    def score(self, image: torch.Tensor) -> float:
        """Higher is better: PSNR to the clean image, or the no-reference :attr:`metric`."""
        key = image_digest(image)
        if key not in self._scores:
            self._scores[key] = self._score(image)
        return self._scores[key]

    def node(self, image: torch.Tensor, path: tuple[ToolCall, ...] = ()) -> _Node:
        """A search node: ``image`` reached by ``path``, scored with the prior's bonus.

        Its score is :meth:`score` plus :meth:`prior_bonus` of the path.
        """
        tasks = tuple(tool_info(c.tool).task for c in path)
        return _Node(image, self.score(image) + self.prior_bonus(path), path, tasks)

    def prior_bonus(self, path: Sequence[ToolCall]) -> float:
        """What the prior adds to the score of ``path`` (see :class:`SearchOptions`).

        :attr:`prior_margin` per call of a task's preferred tool (with ``prior_order``: where
        its task comes later in the prior's order than every task before it), and
        ``prior_margin - deviation_margin`` per other call (a deviation from the prior).
        """
        bonus, latest = 0.0, -1
        for call in path:
            rank = PRIOR_RANK[tool_info(call.tool).task]
            in_order = rank > latest or not self.options.prior_order
            if self._is_prior(call) and in_order:
                bonus += self.prior_margin
            else:
                bonus += self.prior_margin - self.deviation_margin
            latest = max(latest, rank)
        return bonus

    def _is_prior(self, call: ToolCall) -> bool:
        """Whether ``call`` is what the prior plan runs for its task (preferred tool, params)."""
        return self._is_preferred(call.tool) and call == self.prior_call(call.tool)

    def _score(self, image: torch.Tensor) -> float:
        if self.use_reference:
            return self._metric(image, "psnr")
        if self.metric in GAIN_METRICS:
            if image is self._root:
                return 0.0
            gain = gain_model(self.metric).predict_gain(self._root, image, self._target)
            return float(gain[0]) - self._gain_margin
        value = self._metric(image, self.metric)
        if not math.isfinite(value):
            return -math.inf
        return -value if self._lower_better else value

    def _metric(self, image: torch.Tensor, name: str) -> float:
        """``name`` of a searched image (against the part of the reference it shows)."""
        return self.env.score(image, (name,), self._region)[name]


def search_view(
    image: torch.Tensor, target: tuple[int, int] | None, size: int | None
) -> tuple[torch.Tensor, Region | None]:
    """The centre crop of ``image`` a search runs on, and the part of the reference it shows.

    ``size`` is in reference pixels; the input may be smaller than the reference (a
    low-resolution input), so its crop is scaled by the size ratio and the region covers the
    same part of the scene. Returns ``image`` itself and no region when no crop is needed.

    Args:
        image: The episode's input, 1x3xhxw.
        target: The reference's (H, W) (``None`` without one: the input's own size counts).
        size: Largest side of the crop at the reference's size (``None``: no crop).
    """
    h, w = int(image.shape[-2]), int(image.shape[-1])
    big_h, big_w = target or (h, w)
    if size is None or (big_h <= size and big_w <= size):
        return image, None
    scale_y, scale_x = max(1, round(big_h / h)), max(1, round(big_w / w))
    crop_h, crop_w = min(h, max(1, size // scale_y)), min(w, max(1, size // scale_x))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    view = image[..., top : top + crop_h, left : left + crop_w].contiguous()
    return view, Region(top * scale_y, left * scale_x, crop_h * scale_y, crop_w * scale_x)


class _ExhaustiveBase(_SearchAgent):
    """AgenticIR-style traversal of task orders x tools, with rollback.

    Depth-first over sequences of distinct tasks (at most :attr:`depth` of them, or as many as
    were perceived); at each node every tool of every remaining task is tried. A child that
    does not improve on its parent is rolled back (not expanded), as AgenticIR rolls back a
    failed subtask; only the ``branch`` best improving children are expanded. The
    best-scoring node over the whole tree is executed.
    """

    depth = 3
    branch = 3

    def search(self, image: torch.Tensor) -> Sequence[ToolCall]:
        """Best path of the pruned task-order x tool tree."""
        root = self.node(image)
        best = root
        stack = [root]
        perceived = self.info.get("perceived_tasks")
        # every perceived task can be on the path, as in the prior plan (AgenticIR runs each)
        depth = max(self.depth, len(perceived)) if perceived is not None else self.depth
        limit = min(depth, self.env.config.max_steps)
        while stack:
            node = stack.pop()
            if len(node.path) >= limit:
                continue
            children = self._expand(node)
            best = max([best, *children], key=lambda n: n.score)
            stack.extend(sorted(children, key=lambda n: n.score)[-self.branch :])
        return best.path

    def _expand(self, node: _Node) -> list[_Node]:
        calls = self.candidates(node.tasks)
        outs = self.run_all(node.image, calls)
        children = []
        for call, out in zip(calls, outs, strict=True):
            if out is None:
                continue
            child = self.node(out, (*node.path, call))
            if child.score > node.score:
                children.append(child)
        return children


@register_agent
class ExhaustiveAgent(_ExhaustiveBase):
    """Exhaustive traversal of the perceived tasks' tools, scored without the reference.

    Scored by the ``metric`` option (``tirqa`` by default). Like AgenticIR it perceives
    first (every task is explored when the perception weights are missing); an input that
    looks clean is left alone. ``exhaustive-ref`` explores every task.
    """

    name = "exhaustive"
    description = (
        "AgenticIR-like: perceive (darkness and haze judged from trial runs), then a "
        "task-order x tool tree with rollback, no-reference scoring"
    )
    perceive = True


@dataclass(frozen=True)
class ReferenceSearchOptions(SearchOptions):
    """Options of ``exhaustive-ref``: :class:`SearchOptions` with the classical toolbox.

    ``learned`` defaults to none: the reference search and the expert data it collects stay
    what they were recorded as (its toolbox is the suite's, learned tools only when asked).
    """

    learned: tuple[str, ...] = ()


@register_agent
class ExhaustiveRefAgent(_ExhaustiveBase):
    """Exhaustive traversal scored by PSNR against the clean image (an upper bound)."""

    name = "exhaustive-ref"
    description = "the same tree scored against the reference: upper bound, not deployable"
    use_reference = True
    Options = ReferenceSearchOptions
    options: ReferenceSearchOptions


@register_agent
class GreedyAgent(_SearchAgent):
    """4KAgent's Q-MoE: per step, the best perceived-task tool by no-reference score.

    It perceives, then at every step runs every tool of the remaining perceived tasks, keeps
    the best by no-reference score, and stops when none improves it. 4KAgent plans its
    subtasks from perception and picks among one subtask's tools by quality; taking the best
    of all 22 tools each step instead (the first version) picked whichever candidate the
    scorer overrated most and ended 2.9 dB below the input on held-out mio-a with ``tirqa``.
    Every task is explored when the perception weights are missing.
    """

    name = "greedy"
    description = (
        "4KAgent-like: perceive (darkness and haze judged from trial runs), best tool per step "
        "by no-reference score"
    )
    perceive = True

    def search(self, image: torch.Tensor) -> Sequence[ToolCall]:
        """Repeatedly take the best improving tool of an unused task."""
        node = self.node(image)
        for _ in range(self.env.config.max_steps):
            calls = self.candidates(node.tasks)
            outs = self.run_all(node.image, calls)
            scored = [
                self.node(o, (*node.path, c))
                for c, o in zip(calls, outs, strict=True)
                if o is not None
            ]
            best = max(scored, key=lambda n: n.score + self._prior_ahead(n), default=None)
            if best is None or best.score <= node.score:
                break
            node = best
        return node.path

    def _prior_ahead(self, node: _Node) -> float:
        """The margin every perceived task still ahead in the prior's order could earn.

        With ``prior_order`` only: after ``node`` those tasks' preferred calls can still
        follow the prior's order.

        A step looks one call ahead; without this, taking a task out of order would look as
        good as taking the next one, though it forfeits the margin of every task it skips.
        """
        perceived = self.info.get("perceived_tasks")
        if not self.options.prior_order or not node.path or perceived is None:
            return 0.0
        latest = max(PRIOR_RANK[task] for task in node.tasks)
        ahead = [t for t in perceived if t not in node.tasks and PRIOR_RANK.get(t, -1) > latest]
        return self.prior_margin * len(ahead)


__all__ = ["ExhaustiveAgent", "ExhaustiveRefAgent", "GreedyAgent", "SearchOptions", "TASKS"]
