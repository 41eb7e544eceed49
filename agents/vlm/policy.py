"""The VLM as a policy: token-level dialogues, sampling, scoring, and lockstep rollouts.

A :class:`Dialogue` keeps the episode's token ids exactly as the model saw and produced them
(token-in/token-out, as verl and OpenRLHF do): the prompt segments are rendered by the
processor's chat template and tokenised once, the assistant turns are the sampled ids
themselves, so re-scoring never re-tokenises generated text. :class:`Tokens` marks which
tokens are actions (the only ones SFT and RL train on) and which turn each belongs to.

:func:`rollouts` plays several episodes in lockstep: one batched ``generate`` per turn, the
answers parsed strictly (:mod:`agents.vlm.parse`), the tool calls submitted together to the
envs' shared pool (the cache serves identical calls on identical images, which GRPO groups
share), malformed answers recorded and ending their episode. With ``judge`` they are played as
the ``vlm`` agent plays them under ``guard=judge`` (:mod:`agents.vlm.scene`): a scene call the
judge ruled out is vetoed and the model asked again, and a task it ruled in runs from the plan
at the model's STOP.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.vlm import prompt, scene
from agents.vlm.errors import ChatTemplateError
from agents.vlm.model import VLM
from agents.vlm.parse import Parsed, ParseError, Stop, parse_action
from agents.vlm.trajectories import Trajectory, answers, tool_records
from tir_env.env import TIREnv
from tir_env.images import resize_u8
from tir_env.types import AgentContext, ImageU8, StepRecord, ToolCall
from tir_env.wrappers import deployed_view


# ------------------------------------------------------------------------ tokens
@dataclass
class Tokens:
    """Token ids of one dialogue with their image inputs and action marks.

    Attributes:
        ids: Token ids.
        mm: ``mm_token_type_ids`` (1 on image placeholder tokens), needed by Qwen-VL forwards.
        action: Whether each token was produced by the policy (trained on).
        turn: Turn index of each action token (-1 elsewhere).
        pixels: Processor ``pixel_values`` of each image, in order.
        grids: Processor ``image_grid_thw`` row of each image.
    """

    ids: list[int] = field(default_factory=list)
    mm: list[int] = field(default_factory=list)
    action: list[bool] = field(default_factory=list)
    turn: list[int] = field(default_factory=list)
    pixels: list[torch.Tensor] = field(default_factory=list)
    grids: list[torch.Tensor] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def extend(self, ids: Sequence[int], mm: Sequence[int] | None = None, turn: int = -1) -> None:
        """Append ids (``turn >= 0`` marks them as that turn's action)."""
        self.ids += [int(i) for i in ids]
        self.mm += [int(m) for m in mm] if mm is not None else [0] * len(ids)
        self.action += [turn >= 0] * len(ids)
        self.turn += [turn] * len(ids)

    @property
    def n_turns(self) -> int:
        """Number of action turns."""
        return max(self.turn, default=-1) + 1

    def inputs(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Model keyword arguments for a batch of one."""
        out = {
            "input_ids": torch.tensor([self.ids], device=device),
            "attention_mask": torch.ones(1, len(self.ids), dtype=torch.long, device=device),
            "mm_token_type_ids": torch.tensor([self.mm], device=device),
        }
        if self.pixels:
            out["pixel_values"] = torch.cat(self.pixels).to(device)
            out["image_grid_thw"] = torch.cat(self.grids).to(device)
        return out


def collate_left(batch: Sequence[Tokens], pad_id: int, device: torch.device) -> dict[str, Any]:
    """Left-padded batch inputs for ``generate``."""
    width = max(len(t) for t in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    mm = torch.zeros((len(batch), width), dtype=torch.long)
    for row, t in enumerate(batch):
        n = len(t)
        ids[row, width - n :] = torch.tensor(t.ids)
        mask[row, width - n :] = 1
        mm[row, width - n :] = torch.tensor(t.mm)
    out: dict[str, Any] = {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "mm_token_type_ids": mm.to(device),
    }
    pixels = [p for t in batch for p in t.pixels]
    if pixels:
        out["pixel_values"] = torch.cat(pixels).to(device)
        out["image_grid_thw"] = torch.cat([g for t in batch for g in t.grids]).to(device)
    return out


def fit_image(image: ImageU8, size: int, factor: int = 28) -> Any:
    """A PIL image with longest side ``size``, both sides multiples of ``factor``."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = size / max(h, w)
    th = max(factor, round(h * scale / factor) * factor)
    tw = max(factor, round(w * scale / factor) * factor)
    return Image.fromarray(np.ascontiguousarray(image)).resize((tw, th), Image.Resampling.BICUBIC)


def _patch_factor(vlm: VLM) -> int:
    ip = getattr(vlm.processor, "image_processor", None)
    patch = int(getattr(ip, "patch_size", 14) or 14)
    merge = int(getattr(ip, "merge_size", 2) or 2)
    return patch * merge


# ---------------------------------------------------------------------- dialogue
class Dialogue:
    """An episode's conversation, tokenised incrementally (see the module docstring).

    Args:
        vlm: The model and processor.
        system: System prompt.
        image: The input image (uint8 HxWx3).
        text: Text of the first user turn.
    """

    def __init__(self, vlm: VLM, system: str, image: ImageU8, text: str) -> None:
        self.vlm = vlm
        self.messages: list[prompt.Message] = [
            {"role": "system", "content": system},
            prompt.user_message(text),
        ]
        self.tokens = Tokens()
        self.images: list[Any] = []
        self._add_text(self._template(self.messages, True), image)

    @property
    def turns(self) -> int:
        """Assistant turns so far."""
        return sum(m["role"] == "assistant" for m in self.messages)

    def _template(self, messages: list[prompt.Message], generation: bool) -> str:
        return str(
            self.vlm.processor.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation
            )
        )

    def _add_text(self, text: str, image: ImageU8 | None) -> None:
        images = None
        if image is not None:
            pil = fit_image(image, self.vlm.image_size, _patch_factor(self.vlm))
            images = [pil]
            self.images.append(pil)
        enc = self.vlm.processor(text=[text], images=images, return_tensors="pt")
        ids = enc["input_ids"][0].tolist()
        mm = enc.get("mm_token_type_ids")
        self.tokens.extend(ids, mm[0].tolist() if mm is not None else None)
        if image is not None:
            self.tokens.pixels.append(enc["pixel_values"])
            self.tokens.grids.append(enc["image_grid_thw"])

    def add_action(self, ids: Sequence[int], trainable: bool = True) -> str:
        """Append the assistant's answer (token ids, ending with an end-of-turn token).

        An answer cut off before its end-of-turn token gets one appended (not an action).

        Returns:
            The answer's text (without the end-of-turn token).
        """
        eos = set(self.vlm.eos_ids)
        ids = [int(i) for i in ids]
        body = ids[:-1] if ids and ids[-1] in eos else ids
        turn = self.turns if trainable else -1
        self.tokens.extend(ids, turn=turn)
        if not ids or ids[-1] not in eos:
            self.tokens.extend([self.vlm.eos_ids[0]])
        text = self.vlm.tokenizer.decode(body, skip_special_tokens=False)
        self.messages.append({"role": "assistant", "content": text})
        return str(text)

    def add_answer_text(self, text: str) -> None:
        """Append an assistant answer given as text (expert turns for SFT)."""
        ids = self.vlm.tokenizer(text, add_special_tokens=False)["input_ids"]
        end = self.vlm.token_id("<|im_end|>")
        self.add_action([*ids, end if end is not None else self.vlm.eos_ids[0]])

    def add_user(self, image: ImageU8, text: str) -> None:
        """Append a user turn with the current image.

        Raises:
            ChatTemplateError: the chat template does not render the dialogue as a prefix
                of its continuation (it rewrites earlier turns).
        """
        base = self._template(self.messages, False)
        self.messages.append(prompt.user_message(text))
        full = self._template(self.messages, True)
        if not full.startswith(base):
            raise ChatTemplateError(
                "the chat template rewrites earlier turns when a turn is added; multi-turn "
                "token-level rollouts need a prefix-preserving template"
            )
        end = self.vlm.tokenizer.decode([self.tokens.ids[-1]], skip_special_tokens=False)
        cut = base.rfind(end)
        if cut < 0:
            raise ChatTemplateError(f"end-of-turn token {end!r} not found in the template text")
        self._add_text(base[cut + len(end) :] + full[len(base) :], image)


# -------------------------------------------------------------- sampling / scoring
@dataclass(frozen=True)
class Sampling:
    """How answers are drawn.

    Attributes:
        greedy: Argmax decoding instead of sampling.
        temperature: Softmax temperature when sampling.
        max_new_tokens: Longest answer.
    """

    greedy: bool = False
    temperature: float = 1.0
    max_new_tokens: int = 48


def generate(
    vlm: VLM, dialogues: Sequence[Dialogue], sampling: Sampling, seed: int = 0
) -> list[list[int]]:
    """One answer per dialogue (batched, left-padded); each ends at its first end token."""
    from transformers import GenerationConfig

    batch = collate_left([d.tokens for d in dialogues], vlm.pad_id, vlm.device)
    config = GenerationConfig(
        do_sample=not sampling.greedy,
        temperature=sampling.temperature if not sampling.greedy else None,
        top_k=0 if not sampling.greedy else None,
        top_p=1.0 if not sampling.greedy else None,
        max_new_tokens=sampling.max_new_tokens,
        eos_token_id=vlm.eos_ids,
        pad_token_id=vlm.pad_id,
        suppress_tokens=vlm.suppress_ids or None,
    )
    torch.manual_seed(seed)
    with torch.no_grad():
        out = vlm.model.generate(**batch, generation_config=config)
    new = out[:, batch["input_ids"].shape[1] :].tolist()
    eos = set(vlm.eos_ids)
    answers = []
    for row in new:
        cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        answers.append(row[:cut])
    return answers


@dataclass
class Scores:
    """Log-probabilities of a dialogue's action tokens (and hidden states at turn starts)."""

    logp: torch.Tensor
    turn: torch.Tensor
    hidden: torch.Tensor | None = None


def score(
    vlm: VLM,
    tokens: Tokens,
    *,
    reference: bool = False,
    hidden: bool = False,
    temperature: float = 1.0,
) -> Scores:
    """Log-probabilities of the action tokens under the policy (or the reference).

    The reference policy is the base model: the same forward with the LoRA adapter disabled.
    Vision placeholder tokens are masked as in sampling, so scores match what was sampled.
    With ``hidden``, also returns the last hidden state at the position that predicts each
    turn's first token (the value head's input).
    """
    action = torch.tensor(tokens.action)
    pos = action.nonzero()[:, 0]
    if len(pos) == 0:
        empty = torch.zeros(0, device=vlm.device)
        return Scores(empty, torch.zeros(0, dtype=torch.long), None)
    ids = torch.tensor(tokens.ids, device=vlm.device)
    inputs = tokens.inputs(vlm.device)
    keep = (pos - 1).to(vlm.device)
    ctx = vlm.model.disable_adapter() if reference and vlm.has_adapter else nullcontext()
    with ctx:
        out = vlm.model(**inputs, logits_to_keep=keep, output_hidden_states=hidden)
    logits = out.logits[0].float() / temperature
    if vlm.suppress_ids:
        logits[:, vlm.suppress_ids] = float("-inf")
    logp = torch.log_softmax(logits, -1).gather(1, ids[pos.to(vlm.device)][:, None])[:, 0]
    turn = torch.tensor(tokens.turn)[pos]
    states = None
    if hidden:
        first = torch.tensor([int(pos[turn == k][0]) - 1 for k in range(int(turn.max()) + 1)])
        states = out.hidden_states[-1][0, first.to(vlm.device)]
    return Scores(logp, turn, states)


# ------------------------------------------------------------------------- rollouts
@dataclass
class Turn:
    """One answer of the policy and what it did."""

    ids: list[int]
    text: str
    parsed: Parsed
    record: StepRecord | None = None
    #: The judge vetoed the call (nothing ran; the model was asked again or stopped).
    vetoed: bool = False

    @property
    def format_error(self) -> bool:
        """Whether the answer failed to parse."""
        return isinstance(self.parsed, ParseError)

    @property
    def from_plan(self) -> bool:
        """A call the judge's plan ran at the model's STOP: no tokens of the model's."""
        return not self.ids


@dataclass
class Rollout:
    """One episode played by the policy.

    Attributes:
        env: The env it ran in (its final state).
        dialogue: The token-level dialogue.
        turns: Answers, in order.
        done: Whether the episode has ended.
        info: The env's last info.
        turn: What its user turns state about the image.
        scene: The judge's rulings (task -> in or out; ``None``: played without the judge).
        vetoed: The scene tasks vetoed this episode.
        checks: Answers vetoed since the last step.
        probe_executions: Tool executions the judge's probes ran.
    """

    env: TIREnv
    dialogue: Dialogue
    turns: list[Turn] = field(default_factory=list)
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    turn: prompt.TurnText = prompt.DEFAULT_TURN
    scene: dict[str, bool] | None = None
    vetoed: set[str] = field(default_factory=set)
    checks: int = 0
    probe_executions: int = 0

    @property
    def format_errors(self) -> int:
        """Malformed answers (at most one: it ends the episode)."""
        return sum(t.format_error for t in self.turns)

    @property
    def calls(self) -> list[ToolCall]:
        """The tool calls made (the judge's vetoed ones not: they never ran)."""
        return [t.parsed for t in self.turns if isinstance(t.parsed, ToolCall) and not t.vetoed]


def view(
    image: ImageU8,
    obs_size: int | None,
    patch: int | None = None,
    reference: tuple[int, int] | None = None,
) -> ImageU8:
    """What the policy is shown: the image resized to the env's ``obs_size`` square.

    The same view as the env's observation, whatever the patch size: a policy trained on
    64 px patches sees a 128 px benchmark patch at the scale it learned on (shown at full
    resolution, 128 px patches looked sharper than anything in training and the tiny policy
    stopped at once). The text of the turn still gives the working image's true size.

    With ``patch`` (the training crops' side, :attr:`agents.vlm.prompt.TurnText.patch`), an
    image whose ``reference`` size (the size it should have; its own when ``None``) is not
    larger is shown at the training scale, reflect-padded instead of stretched
    (:func:`tir_env.wrappers.deployed_view`, as the ``ppo`` agent does); on a training-size
    crop that is the same view.
    """
    if obs_size is None:
        return image
    if patch is None:
        return resize_u8(image, (obs_size, obs_size))
    size = reference or (int(image.shape[0]), int(image.shape[1]))
    return deployed_view(image, obs_size, patch, size, channels_first=False)


def start(
    vlm: VLM,
    env: TIREnv,
    detail: prompt.Detail,
    turn: prompt.TurnText = prompt.DEFAULT_TURN,
    judge: bool = False,
) -> Rollout:
    """A rollout of an env that was just reset (``turn``: what its user turns state).

    With ``judge`` the judge rules on the input first (:func:`agents.vlm.scene.judge_episode`).
    """
    rollout = Rollout(env, first_dialogue(vlm, env, detail, turn), turn=turn)
    if judge:
        rollout.scene, rollout.probe_executions = scene.judge_episode(env)
    return rollout


def first_dialogue(
    vlm: VLM, env: AgentContext, detail: prompt.Detail, turn: prompt.TurnText = prompt.DEFAULT_TURN
) -> Dialogue:
    """The dialogue of an episode that was just reset: system prompt and first user turn."""
    image = env.current_image()
    text = prompt.first_user_text(image, turn.steps_left(env.config.max_steps, 0), turn)
    shown = view(image, env.config.obs_size, turn.patch, env.target_size())
    return Dialogue(vlm, prompt.system_prompt(env.tools, detail), shown, text)


def act(vlm: VLM, states: Sequence[Rollout], sampling: Sampling, seed: int) -> None:
    """Advance every unfinished rollout by one turn (one batched generate, batched tools)."""
    active = [s for s in states if not s.done]
    if not active:
        return
    answers = generate(vlm, [s.dialogue for s in active], sampling, seed)
    todo: list[tuple[Rollout, ToolCall | None]] = []
    for state, ids in zip(active, answers, strict=True):
        text = state.dialogue.add_action(ids)
        parsed = parse_action(text, state.env.tools)
        state.turns.append(Turn(ids, text, parsed))
        if isinstance(parsed, ParseError):
            state.done = True
            continue
        call = None if isinstance(parsed, Stop) else parsed
        again = False
        if state.scene is not None:
            again, call = _judged(state, call, state.scene)
        if not again:  # vetoed with checks left: shown the same image, answers next turn
            todo.append((state, call))
    _step_envs(todo)


def _judged(
    state: Rollout, call: ToolCall | None, rulings: dict[str, bool]
) -> tuple[bool, ToolCall | None]:
    """The judge on one answer: whether the model answers again, else the call to run.

    A vetoed call is marked and, with checks left, the same image is shown again; out of
    checks, it counts as STOP. At STOP, the plan's call of a task the judge ruled in and the
    model left undone runs instead, as a turn of no tokens, the episode's last.
    """
    if call is not None and scene.ruled_out(call, rulings, state.vetoed):
        state.turns[-1].vetoed = True
        state.vetoed.add(str(scene.scene_task(call)))
        state.checks += 1
        if state.checks < scene.MAX_CHECKS:
            _show_again(state)
            return True, None
        call = None
    if call is None:
        finishing = scene.ruled_in_calls(state.env, rulings)
        if finishing:  # no tokens: the plan's call, rewarded with the episode
            state.turns.append(Turn([], "", finishing[0]))
            return False, finishing[0]
    return False, call


def _show_again(state: Rollout) -> None:
    """A user turn with the current image and history (after a step, or again after a veto)."""
    text, _ = user_turn(state.env, state.turn)
    state.dialogue.add_user(view(state.env.current_image(), state.env.config.obs_size), text)


def user_turn(env: AgentContext, turn: prompt.TurnText) -> tuple[str, int]:
    """The text of the next user turn (the current image's history) and the steps it says left.

    The opening turn's text while no call has run (a first answer vetoed).
    """
    image = env.current_image()
    calls = [r for r in env.history if r.call is not None]
    left = turn.steps_left(env.config.max_steps - len(calls), len(calls))
    if calls:
        return prompt.next_user_text(image, calls, left, turn), left
    return prompt.first_user_text(image, left, turn), left


def _step_envs(todo: Sequence[tuple[Rollout, ToolCall | None]]) -> None:
    """Submit every tool call to the shared pool together, then finish each env's step."""
    busy = [(s, c) for s, c in todo if c is not None]
    futures: dict[int, Any] = {}
    if busy:
        pool = busy[0][0].env.pool
        images = [s.env.current_batch() for s, _ in busy]  # as TIRVectorEnv does
        futures = dict(
            zip(
                [id(s) for s, _ in busy],
                pool.submit_many(images, [c for _, c in busy]),
                strict=True,
            )
        )
    for state, call in todo:
        result = futures[id(state)].result() if call is not None else None
        _, _, terminated, truncated, info = state.env.finish_step(call, result)
        state.turns[-1].record = info["history"][-1]
        state.info = info
        # the plan's call at the model's STOP (a turn of no tokens) ends the episode
        state.done = terminated or truncated or state.turns[-1].from_plan
        state.checks = 0
        if not state.done:
            _show_again(state)  # the new image and its history


def rollouts(
    vlm: VLM,
    envs: Sequence[TIREnv],
    sampling: Sampling,
    seed: int = 0,
    detail: prompt.Detail = "full",
    turn: prompt.TurnText = prompt.DEFAULT_TURN,
    judge: bool = False,
) -> list[Rollout]:
    """Play the (already reset) envs to the end in lockstep (``judge``: as under the judge)."""
    states = [start(vlm, env, detail, turn, judge) for env in envs]
    answered = 0
    while not all(s.done for s in states):
        act(vlm, states, sampling, seed * 1000 + answered)
        answered += 1
    return states


def trajectory_dialogue(
    vlm: VLM,
    traj: Trajectory,
    tools: Sequence[str],
    max_steps: int,
    detail: prompt.Detail,
    obs_size: int | None = None,
    turn: prompt.TurnText = prompt.DEFAULT_TURN,
) -> Dialogue:
    """A recorded trajectory as a token-level dialogue (its answers are the actions).

    The same turns :func:`rollouts` produces in an env of this ``obs_size``, ``max_steps``
    and ``turn``, so SFT trains on exactly the RL format.
    """
    records = tool_records(traj)
    text = prompt.first_user_text(traj.images[0], max_steps, turn)
    first = view(traj.images[0], obs_size)
    dialogue = Dialogue(vlm, prompt.system_prompt(tools, detail), first, text)
    for k, call in enumerate(answers(traj, max_steps)):
        dialogue.add_answer_text(prompt.format_call(call))
        if call is None or k + 1 >= max_steps:
            break
        image = traj.images[k + 1]
        text = prompt.next_user_text(image, records[: k + 1], max_steps - k - 1, turn)
        dialogue.add_user(view(image, obs_size), text)
    return dialogue
