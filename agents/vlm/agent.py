"""The ``vlm`` agent: a vision-language model that writes tool calls, for benchmarks and restore.

By default it loads the tiny Qwen2-VL shipped in ``agents/vlm/weights`` with its SFT adapter
merged and its GRPO adapter on top (trained on this machine's CPU, see ``docs/agents.md``);
``model=``, ``merge=`` and ``adapter=`` point it at any local checkpoint and adapters, e.g.
``tir bench mio-a --agents vlm --agent-arg vlm.model=/models/Qwen2.5-VL-3B-Instruct
--agent-arg vlm.adapter=runs/vlm/grpo/adapter --agent-arg vlm.merge=none``.

Each ``predict`` shows the model the current image and the history, samples (or, with
``deterministic=True``, greedily decodes) one answer and parses it strictly. A malformed
answer stops the episode; it is counted in ``format_errors`` and listed in ``errors``.

With ``guard=scene`` the quality-gain model vets the model's darkness and haze calls, as it
does ``ppo``'s (:mod:`agents.ppo.guard`): a brightening or dehazing call runs ahead through
the env's pool and is vetoed when :func:`tir_env.quality_gain.predict_gain` reads a loss. The
vetoed task is not called again this episode; the model is shown the same image and history
once more and its next answer is checked the same way, at most :data:`MAX_CHECKS` answers a
step, then STOP. A wrong scene call is the costliest mistake (docs/tools.md, "What a false
call costs") and the one GRPO moves most (docs/agents.md, "The PSNR-only reward").

With ``guard=judge`` (the default) the learned judge of darkness and haze (:mod:`agents.judge`, what
``exhaustive`` and ``ppo`` ask) rules on both scene types once, at the start of the episode,
from the prior plan run with and without each (its probes count as tool executions): a
brightening or dehazing call it ruled out is vetoed as above, and when the model would STOP
without a task it ruled in, that task's plan tool runs (with the fitted parameters), then the
episode stops. The model still decides everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agents.base import Action, Agent, AgentOptions, Obs, episode_digest, register_agent
from agents.baselines import learned_tool
from agents.tuned import ParamsChoice, with_tuned_params
from agents.vlm import policy, prompt, scene
from agents.vlm.model import VLM, load_vlm
from agents.vlm.parse import ParseError, Stop, parse_action
from tir_env.spaces import encode_call
from tir_env.tools import tool_info
from tir_env.types import ToolCall

#: Answers checked per step under ``guard=scene`` or ``judge`` before the agent STOPs (the
#: rule GRPO's rollouts under the judge follow too, :mod:`agents.vlm.scene`).
MAX_CHECKS = scene.MAX_CHECKS
#: The task ``mask_sr`` vetoes where no upscaling is needed.
SUPER_RESOLUTION = "super_resolution"
#: The types whose tasks ``mask_unseen`` may veto: all but the scene types (``guard``'s) and low
#: resolution (``mask_sr``'s).
_MASKABLE_TYPES = ("noise", "jpeg", "rain", "motion_blur", "defocus_blur")

WEIGHTS = Path(__file__).parent / "weights"
# The shipped policy (docs/agents.md, "Perception in the prompt"): a tiny build with whole-word
# type names, SFT on the expert dataset with perception v2's line and the bare prompt, GRPO on
# top (the seed best on the corpus val photos). Their turns are recorded in tir_turns.json.
DEFAULT_MODEL = WEIGHTS / "tiny-hint-base"
DEFAULT_MERGE = WEIGHTS / "tiny-hint-sft"
DEFAULT_ADAPTER = WEIGHTS / "tiny-hint-grpo"


@dataclass(frozen=True)
class VLMOptions(AgentOptions):
    """Options of the ``vlm`` agent.

    Attributes:
        model: Base model folder.
        merge: Adapter folders merged into the base first, comma-separated on the command
            line (``none``: none).
        adapter: Adapter folder on top (``none``: none).
        device: ``cpu``, ``cuda`` or ``auto``.
        sample: Sample answers even when ``predict`` is called with ``deterministic=True``.
        temperature: Sampling temperature.
        max_new_tokens: Longest answer.
        detail: Tool-schema detail of the system prompt (``None``: as the adapter was trained,
            else the model folder's, else ``full``).
        show_size: State the image size in the prompt (``None``: as the adapter was trained,
            read from its :data:`~agents.vlm.prompt.TURNS_FILE`; stated when unrecorded).
        perception_hint: State perception v2's reading of each image in the prompt (``None``:
            as the adapter was trained; off when unrecorded).
        params: ``tuned``: where the model calls a preferred tool with its declared defaults,
            run it with the parameters fitted to the protocol instead, as ``fixed`` does
            (:func:`agents.tuned.with_tuned_params`; the dialogue keeps the model's own
            words); ``default``: as the model writes it.
        guard: ``scene``: the quality-gain model vets each brightening and dehazing call (see
            the module docstring; vetoed calls ran ahead, so they count as tool executions,
            and the record lists the vetoed tasks as ``guard_vetoed``); ``judge``: the judge
            of darkness and haze rules those two tasks in or out (the module docstring; the
            record adds its rulings as ``judge_scene``), the default since 2026-12-06 (+0.66
            dB on 1,200 val episodes, se over photos 0.29; docs/agents.md, "The judge of
            darkness and haze"); ``none``: every call the model writes runs (the shipped
            policy as trained, what its GRPO and SFT comparisons measured).
        judge_whole_adds: With ``guard=judge``, on a whole photo: the judged types the judge
            may rule in where perception did not see them (``dark``, ``haze``); the others it
            only keeps or rules out. Both by default, as the whole-photo records were played;
            ``tir restore`` passes ``dark`` unless told ``guard`` or this option (rule
            911efdd; with none, rule 0db26a7, the darkened val photos lost the brightening
            the judge adds: docs/agents.md, "On your photo the judge may add brightening").
        judge_whole_alone: With ``guard=judge``, on a whole photo: whether the judge may add a
            type where perception saw no other (a photo it reads as clean). On by default, as
            the whole-photo records were played; off, a photo perception reads as clean stays
            so (``clean_stop``), as ``fixed`` and the search agents leave it
            (``exhaustive.judge_whole_alone``).
        mask_sr: Veto a super-resolution call on an image that needs none: one already at
            the size the restored image should have (a benchmark episode knows it), or, where
            that size is unknown (``tir restore``), any such call when perception reads no
            low resolution on the input. The model is asked again, as for a vetoed scene
            call. The policy upscales full-size images (in ``tir restore`` the result is then
            4x larger). On by default since 2026-12-06: -0.003 dB on 1,200 val episodes (an
            x4 call on a full-size crop is resized back by the metrics), so what it changes
            is ``tir restore``'s output size and the tools' work (docs/agents.md).
        mask_unseen: Above 0: veto a call whose task's degradation perception v2 reads below
            this share of its threshold on the episode's input (read once, as ``ppo``'s option
            of the name reads it); the model is asked again, as for a vetoed scene call.
            Darkness and haze are left to ``guard``, super-resolution to ``mask_sr``. The
            policy calls tools for degradations that are not there in most episodes (JPEG
            removal, denoising, deraining; docs/agents.md). ``0``: no veto.
        complete: When the model STOPs (or is vetoed as often as it may be), run the prior
            plan's calls (the tools and fitted parameters ``fixed`` runs, reverse physical
            order) for the tasks perception v2 sees on the input at its thresholds that no
            call has done yet, then STOP. Darkness and haze are left to ``guard`` (under
            ``judge`` its ruled-in tasks join the same calls). These calls are the plan's, not
            the model's, so neither ``mask_sr`` nor the guard vets them. Off: only the judge's
            ruled-in task runs at STOP.
        clean_stop: STOP at once where perception v2 reads no degradation on the episode's
            input at its thresholds and the judge rules no scene task in (as ``fixed`` leaves
            a photo it reads as clean alone; ``ppo.clean_stop``); the model is not asked. The
            default since rule 7314b94: on 256 px clean val photos it left nine of ten
            untouched where the model changed seven, for +0.001 dB on 1,600 val crop episodes
            (docs/agents.md).
    """

    model: Path = DEFAULT_MODEL
    merge: tuple[Path, ...] | None = (DEFAULT_MERGE,)
    adapter: Path | None = DEFAULT_ADAPTER
    device: str = "cpu"
    sample: bool = False
    temperature: float = 1.0
    max_new_tokens: int = 48
    detail: prompt.Detail | None = None
    show_size: bool | None = None
    perception_hint: bool | None = None
    params: ParamsChoice = "default"
    guard: Literal["none", "scene", "judge"] = "judge"
    judge_whole_adds: tuple[str, ...] = ("dark", "haze")
    judge_whole_alone: bool = True
    mask_sr: bool = True
    mask_unseen: float = 0.0
    complete: bool = False
    clean_stop: bool = True


@register_agent
class VLMAgent(Agent):
    """A VLM policy with LoRA adapters (see the module docstring; options: :class:`VLMOptions`).

    The seed of sampled answers is mixed with the episode's name
    (:func:`agents.base.episode_digest`), the same on every CPU.
    """

    name = "vlm"
    description = "vision-language model writing tool calls (tiny Qwen2-VL + SFT/GRPO LoRA)"
    Options = VLMOptions
    options: VLMOptions

    def __init__(self, seed: int | str = 0, **options: Any) -> None:
        super().__init__(seed, **options)
        opts = self.options
        self.model_path = opts.model
        self.merge = list(opts.merge or ())
        self.adapter = opts.adapter
        self.device = opts.device
        self.sample = opts.sample
        self.temperature = opts.temperature
        self.max_new_tokens = opts.max_new_tokens
        self.params = opts.params
        self.turn = turn_text(opts)
        self.vlm: VLM | None = None
        self.format_errors = 0
        self.errors: list[str] = []
        self._vetoed: set[str] = set()  # an unknown guard is refused by the options' parser
        self._scene: dict[str, bool] = {}
        self._clean_stopped = False
        from tir_env.errors import ConfigValueError

        if not 0.0 <= opts.mask_unseen <= 1.0:
            raise ConfigValueError(
                f"agent 'vlm': mask_unseen is a share of perception's thresholds in [0, 1] "
                f"(0: off), got {opts.mask_unseen}"
            )
        from agents.judge import unjudged

        unknown = unjudged(opts.judge_whole_adds)
        if unknown:
            raise ConfigValueError(
                f"agent 'vlm': judge_whole_adds takes dark, haze or both, got {', '.join(unknown)}"
            )
        #: The learned tools the judge's plans call (``guard=judge``): the env must offer them.
        self.required_tools = tuple(learned_tool(t) for t in self._judge_learned())

    def _judge_learned(self) -> tuple[str, ...]:
        """The tasks whose learned tool the shipped judges' plans call (``guard=judge``)."""
        if self.options.guard != "judge":
            return ()
        from agents import judge

        return judge.shipped_learned()

    def load(self) -> VLM:
        """Load the model and adapters once (on the first episode)."""
        if self.vlm is None:
            self.vlm = load_vlm(self.model_path, self.adapter, merge=self.merge, device=self.device)
        return self.vlm

    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Start the episode's dialogue with the input image."""
        super().reset(env, info)
        vlm = self.load()
        detail = self.turn.detail or vlm.meta.get("prompt_detail", "full")
        self.dialogue = policy.first_dialogue(vlm, self.env, detail, self.turn)
        self._answered = 0
        self._digest = episode_digest(self.env, info)
        self._vetoed = set()
        self._scene = {}
        self._finishing: list[ToolCall] | None = None  # the calls left once the model STOPs
        self._input_seen: Any = None  # perception on the input, read once (``mask_sr``)
        self._unseen_tasks: tuple[str, ...] | None = None  # ``mask_unseen``'s, read once
        self._clean_stopped = False  # ``clean_stop`` ended the episode at once
        if self.options.guard == "judge":
            from agents.ppo.scene import judge_scene

            self._scene, executions = judge_scene(
                self.env,
                "tuned",
                whole_adds=self.options.judge_whole_adds,
                whole_alone=self.options.judge_whole_alone,
            )
            self.tool_executions += executions  # the judge's plans ran ahead

    def act(self, observation: Obs, deterministic: bool = True) -> Action:
        """Show the model the current image and history; return its call (or STOP)."""
        env = self.env
        # after the first answer the env has run our last call: show its result, unless the
        # budget the model was trained with is spent
        if self._finishing is not None:  # the model has stopped: the calls it left, then STOP
            return encode_call(self._finishing.pop(0) if self._finishing else None, env.tools)
        if self.options.clean_stop and not self._answered and self._reads_clean():
            self._clean_stopped = True
            return encode_call(None, env.tools)
        if self._answered and not self._show_current():
            return encode_call(None, env.tools)
        call = self._answer(deterministic)
        for check in range(MAX_CHECKS):
            if self._kept(call):
                break
            if check == MAX_CHECKS - 1:  # vetoed as often as it may be: STOP
                call = None
                break
            shown = self._show_current()  # vetoed: the same image and history, asked again
            assert shown, "no step ran since the last turn, so the budget cannot be spent"
            call = self._answer(deterministic)
        if call is None:
            self._finishing = self._left_undone()
            call = self._finishing.pop(0) if self._finishing else None
        return encode_call(call, env.tools)

    def _left_undone(self) -> list[ToolCall]:
        """At the model's STOP: the plan's calls for the tasks due that no call has done.

        Due: a task the judge ruled in (``guard=judge``); with ``complete``, also a task of a
        degradation perception sees on the input (but darkness and haze, the judge's or the
        guard's). In the prior plan's order, with the fitted parameters.
        """
        from agents.baselines import prior_plan
        from agents.ppo.scene import SCENE_TASKS
        from tir_env.degradations import make_degradation

        due = [task for task, ruled_in in self._scene.items() if ruled_in]
        seen = self._input_reading() if self.options.complete else None
        if seen is not None:  # perception's reading of the input, as `fixed` plans from it
            perceived = (make_degradation(name).info.task for name in seen.present)
            due += [task for task in perceived if task not in SCENE_TASKS.values()]
        done = {tool_info(r.call.tool).task for r in self.env.history if r.call is not None}
        tasks = [task for task in dict.fromkeys(due) if task not in done]

        def plan(of: list[str]) -> list[ToolCall]:
            steps = self.env.config.max_steps
            return prior_plan(of, tuple(self.env.tools), steps, "tuned", self._judge_learned())

        if self.options.complete:
            return plan(tasks)
        # the judge alone: its first ruled-in task the plan has a tool for
        return scene.ruled_in_calls(self.env, self._scene, self._judge_learned())

    def _show_current(self) -> bool:
        """Add a user turn with the current image and history (``False``: budget spent)."""
        env = self.env
        text, left = policy.user_turn(env, self.turn)
        if left <= 0:  # the budget it was trained with is spent (TurnText.budget)
            return False
        image = env.current_image()
        shown = policy.view(image, env.config.obs_size, self.turn.patch, env.target_size())
        self.dialogue.add_user(shown, text)
        return True

    def _answer(self, deterministic: bool) -> ToolCall | None:
        """The model's next answer as the call that would run (``None``: STOP or malformed)."""
        vlm = self.load()
        sampling = policy.Sampling(
            greedy=deterministic and not self.sample,
            temperature=self.temperature,
            max_new_tokens=self.max_new_tokens,
        )
        seed = (self.seed * 7919 + self._digest + self._answered) % 2**31
        ids = policy.generate(vlm, [self.dialogue], sampling, seed)[0]
        parsed = parse_action(self.dialogue.add_action(ids), self.env.tools)
        self._answered += 1
        if isinstance(parsed, ParseError):
            self.format_errors += 1
            self.errors.append(str(parsed))
            return None
        call = None if isinstance(parsed, Stop) else parsed
        return with_tuned_params(call) if self.params == "tuned" else call

    def _kept(self, call: ToolCall | None) -> bool:
        """Whether ``call`` may run: not vetoed by ``mask_sr`` or the guard."""
        if call is not None and self.options.mask_sr and self._needless_upscale(call):
            self._vetoed.add(SUPER_RESOLUTION)
            return False
        if call is not None and tool_info(call.tool).task in self._unseen():
            self._vetoed.add(tool_info(call.tool).task)
            return False
        if self.options.guard == "none" or call is None:
            return True
        from agents.ppo.scene import SCENE_TASKS  # the same two tasks ppo's guard vets

        task = tool_info(call.tool).task
        if task not in SCENE_TASKS.values():
            return True
        if task in self._vetoed:  # vetoed earlier this episode: not run ahead again
            return False
        if self.options.guard == "judge":
            if self._scene.get(task) is False:  # ruled out: no call runs ahead
                self._vetoed.add(task)
                return False
            return True
        from agents.ppo.guard import predicted_gain

        gain = predicted_gain(self.env, call)
        if gain is None or gain > 0.0:
            return True
        self._vetoed.add(task)
        self.tool_executions += 1  # the vetoed call ran ahead through the pool
        return False

    def _unseen(self) -> tuple[str, ...]:
        """The tasks ``mask_unseen`` vetoes this episode (read on first use)."""
        if not self.options.mask_unseen:
            return ()
        if self._unseen_tasks is None:
            from agents.ppo.guard import unseen_tasks

            floor, seen = self.options.mask_unseen, self._input_reading()
            self._unseen_tasks = unseen_tasks(self.env, floor, _MASKABLE_TYPES, seen=seen)
        return self._unseen_tasks

    def _reads_clean(self) -> bool:
        """Whether perception reads the input as clean and the judge rules nothing in."""
        from agents.ppo.scene import reads_clean

        return reads_clean(self._input_reading(), self._scene)

    def _input_reading(self) -> Any:
        """Perception on the episode's input (``False``: none to read with), read once."""
        from agents.ppo.guard import input_reading

        if self._input_seen is None:
            self._input_seen = input_reading(self.env) or False
        return self._input_seen or None

    def _needless_upscale(self, call: ToolCall) -> bool:
        """Whether ``call`` super-resolves an image that needs no upscaling (``mask_sr``)."""
        if tool_info(call.tool).task != SUPER_RESOLUTION:
            return False
        target = self.env.target_size()
        if target is not None:
            height, width = self.env.current_image().shape[:2]
            return height >= target[0] and width >= target[1]
        seen = self._input_reading()
        if seen is None:  # no perception: nothing vetoed
            return False
        return bool(seen.probs["low_resolution"] < seen.thresholds["low_resolution"])

    def episode_extra(self) -> dict[str, Any]:
        """The vetoed tasks (``guard``, ``mask_sr``) and the judge's rulings, for the record."""
        extra: dict[str, Any] = {}
        if self.options.guard != "none" or self.options.mask_sr or self.options.mask_unseen:
            extra["guard_vetoed"] = sorted(self._vetoed)
        if self.options.guard == "judge":
            extra["judge_scene"] = dict(self._scene)
        if self.options.clean_stop:
            extra["clean_stop"] = self._clean_stopped
        return extra


def turn_text(opts: VLMOptions) -> prompt.TurnText:
    """The user turns an agent writes: the options, else what its adapters were trained with.

    The adapter on top decides; without one, the last merged adapter (a GRPO adapter is
    trained on top of a merged SFT one, with the same turns).
    """
    folders = [opts.adapter, *reversed(opts.merge or ())]
    recorded = next(
        (prompt.TurnText.load(f) for f in folders if f and (Path(f) / prompt.TURNS_FILE).is_file()),
        prompt.TurnText(),
    )
    return recorded.told(opts.show_size, opts.perception_hint, opts.detail)
