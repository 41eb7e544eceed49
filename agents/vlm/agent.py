"""The ``vlm`` agent: a vision-language model that writes tool calls, for benchmarks and restore.

By default it loads the tiny Qwen2-VL shipped in ``agents/vlm/weights`` with its SFT adapter
merged and its GRPO adapter on top (trained on this machine's CPU, see ``docs/agents.md``);
``model=``, ``merge=`` and ``adapter=`` point it at any local checkpoint and adapters, e.g.
``tir bench mio-a --agents vlm --agent-arg vlm.model=/models/Qwen2.5-VL-3B-Instruct
--agent-arg vlm.adapter=runs/vlm/grpo/adapter --agent-arg vlm.merge=none``.

Each ``predict`` shows the model the current image and the history, samples (or, with
``deterministic=True``, greedily decodes) one answer and parses it strictly. A malformed
answer stops the episode; it is counted in ``format_errors`` and listed in ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.base import Action, Agent, AgentOptions, Obs, episode_digest, register_agent
from agents.tuned import ParamsChoice, with_tuned_params
from agents.vlm import policy, prompt
from agents.vlm.model import VLM, load_vlm
from agents.vlm.parse import ParseError, Stop, parse_action
from tir_env.spaces import encode_call

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

    def act(self, observation: Obs, deterministic: bool = True) -> Action:
        """Show the model the current image and history; return its call (or STOP)."""
        vlm, env, dialogue = self.load(), self.env, self.dialogue
        if self._answered:  # the env ran our last call: show its result
            image = env.current_image()
            calls = [r for r in env.history if r.call is not None]
            left = self.turn.steps_left(env.config.max_steps - len(calls), len(calls))
            if left <= 0:  # the budget it was trained with is spent (TurnText.budget)
                return encode_call(None, env.tools)
            text = prompt.next_user_text(image, calls, left, self.turn)
            shown = policy.view(image, env.config.obs_size, self.turn.patch, env.target_size())
            dialogue.add_user(shown, text)
        sampling = policy.Sampling(
            greedy=deterministic and not self.sample,
            temperature=self.temperature,
            max_new_tokens=self.max_new_tokens,
        )
        seed = (self.seed * 7919 + self._digest + self._answered) % 2**31
        ids = policy.generate(vlm, [dialogue], sampling, seed)[0]
        parsed = parse_action(dialogue.add_action(ids), env.tools)
        self._answered += 1
        if isinstance(parsed, ParseError):
            self.format_errors += 1
            self.errors.append(str(parsed))
            return encode_call(None, env.tools)
        call = None if isinstance(parsed, Stop) else parsed
        return encode_call(with_tuned_params(call) if self.params == "tuned" else call, env.tools)


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
