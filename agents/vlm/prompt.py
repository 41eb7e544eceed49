"""Prompts of the VLM agent: the system prompt with the tool schema, and the turns.

The system prompt carries the tool schema, generated from the tool registry
(:func:`tir_env.tools.base.tool_info`: name, task, description, parameters with range,
default and meaning), and the answer format: exactly one tool call in Hermes/Qwen style,

    <tool_call>{"name": "dct_denoise", "arguments": {"strength": 1.5}}</tool_call>

or a stop, ``<tool_call>{"name": "stop", "arguments": {}}</tool_call>``. Each user turn shows
the current image and the text history of the episode (:func:`tir_env.history.render_history`),
without metric values: a deployed agent has no clean reference to compute PSNR against, so the
policy must judge from the image.

Messages are chat-template dicts; images appear as ``{"type": "image"}`` placeholders and are
passed to the processor separately, in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from tir_env.history import render_history
from tir_env.tools.base import tool_info
from tir_env.types import ImageU8, StepRecord, ToolCall

#: The pseudo-tool that ends an episode.
STOP_NAME = "stop"
Detail = Literal["full", "brief", "none"]
Message = dict[str, Any]

_INTRO = (
    "You are an image restoration agent. You see a degraded photo and restore it by calling "
    "restoration tools, one per turn. After each call you see the new image and the history."
)
#: The ``none`` system prompt: one sentence, no schema (see :func:`system_prompt`).
_BARE = "You are an image restoration agent: call one tool per turn, or stop."
_FORMAT = (
    "Answer with exactly one tool call and nothing else:\n"
    '<tool_call>{"name": "<tool>", "arguments": {"<parameter>": <number>}}</tool_call>\n'
    "Omitted arguments take their default values. When the image is clean or no tool helps, "
    "stop:\n" + '<tool_call>{"name": "stop", "arguments": {}}</tool_call>'
)


def _number(value: float) -> float | int:
    """JSON-friendly number: integers without a trailing ``.0``, 4 significant digits."""
    return int(value) if float(value).is_integer() else float(f"{value:.4g}")


def tool_schema(tools: Sequence[str], detail: Detail = "full") -> list[dict[str, Any]]:
    """JSON schema of each tool, from its registry metadata.

    ``full`` adds descriptions and parameter docs (for real models); ``brief`` keeps name,
    task and parameter ranges (for the tiny model, whose context is short).
    """
    out = []
    for name in tools:
        info = tool_info(name)
        params: dict[str, Any] = {}
        for pname, p in info.params.items():
            entry: dict[str, Any] = {
                "type": "integer" if p.integer else "number",
                "minimum": _number(p.low),
                "maximum": _number(p.high),
                "default": _number(p.default),
            }
            if detail == "full" and p.doc:
                entry["description"] = p.doc
            params[pname] = entry if detail == "full" else [entry["minimum"], entry["maximum"]]
        item: dict[str, Any] = {"name": name, "task": info.task}
        if detail == "full" and info.description:
            item["description"] = info.description
        item["parameters"] = params
        out.append(item)
    return out


def system_prompt(tools: Sequence[str], detail: Detail = "full") -> str:
    """The system message: role, answer format, and the tool schema.

    ``full``: one JSON object per tool (Hermes/Qwen ``<tools>`` block). ``brief``: one line
    per task listing its tools as ``name(parameter=[minimum, maximum], ...)``, about a third
    of the tokens, for the tiny model's short context. ``none``: one sentence and no schema,
    for a model that learns the tools from its training dialogues alone: the tiny model,
    trained from scratch, never reads the schema; without it the dialogues are half as long
    and it learns to read a perception line at least as well (100% against 95% with ``brief``,
    ``benchmarks.vlm_line_probe``; docs/agents.md, "Perception in the prompt").
    """
    if detail == "none":
        return _BARE
    schema = tool_schema(tools, detail)
    if detail == "full":
        lines = "\n".join(json.dumps(s) for s in schema)
        return f"{_INTRO}\n{_FORMAT}\nTools:\n<tools>\n{lines}\n</tools>"
    by_task: dict[str, list[str]] = {}
    for s in schema:
        args = ", ".join(f"{k}=[{lo}, {hi}]" for k, (lo, hi) in s["parameters"].items())
        by_task.setdefault(s["task"], []).append(f"{s['name']}({args})")
    lines = "\n".join(f"{task}: {', '.join(names)}" for task, names in by_task.items())
    return f"{_INTRO}\n{_FORMAT}\nTools by task:\n{lines}"


def format_call(call: ToolCall | None) -> str:
    """The assistant's answer for a call (``None``: stop); default-valued arguments omitted."""
    if call is None:
        body: dict[str, Any] = {"name": STOP_NAME, "arguments": {}}
    else:
        spec = tool_info(call.tool).params
        args = {
            k: _number(v)
            for k, v in call.params.items()
            if k not in spec or not np.isclose(v, spec[k].default)
        }
        body = {"name": call.tool, "arguments": args}
    return f"<tool_call>{json.dumps(body)}</tool_call>"


#: File in an adapter folder that records the user turns it was trained on (:class:`TurnText`).
TURNS_FILE = "tir_turns.json"
#: Degradation types a perception line names (the most probable first).
PERCEPTION_TOP = 3


@dataclass(frozen=True)
class TurnText:
    """What the user turns state about the image besides the history, and the system prompt.

    A policy is trained and run with the same turns: SFT and GRPO write theirs next to the
    adapter (:meth:`save`) and the ``vlm`` agent reads them back (:meth:`load`).

    Attributes:
        show_size: State the image size. Off, the text says nothing of the size, so a policy
            must read the task from the pixels (the size alone gave the tiny policy
            super-resolution on every small image).
        perception: State perception v2's reading of the image (:func:`tir_env.perceive`):
            its three most probable degradation types with their probabilities. AgenticIR
            tells its LLM what its perception model sees in the same way; a small model whose
            own tower cannot tell degradations apart gets to decide the order, the parameters
            and when to stop from it (docs/agents.md, "Perception in the prompt").
        detail: The system prompt's tool-schema detail (:func:`system_prompt`; ``None``: the
            model folder's, as before this was recorded).
        budget: The tool-call budget of the training dialogues (``None``: unrecorded, the
            env's budget is stated as it is). A turn never states more steps left than the
            policy was trained with, and the ``vlm`` agent stops once it has made ``budget``
            calls: a policy trained on "Steps left: 4, 3, 2, 1" never read a 5 (the suites'
            budget) and never wrote a fifth call.
        perception_network: Which perception weights the perception line reads
            (:func:`tir_env.perceive`'s ``network``; ``None``: the shipped one). A policy
            trained on one network's readings keeps reading that network when a better one
            ships: the shipped ``vlm`` reads ``perception_r1``, the corpus-release-1 network
            it was trained with.
        patch: Side of the training episodes' crops (``None``: unrecorded). The ``vlm``
            agent shows a smaller image at that scale, reflect-padded, instead of stretching
            it (:func:`agents.vlm.policy.view`).
    """

    show_size: bool = True
    perception: bool = False
    detail: Detail | None = None
    budget: int | None = None
    perception_network: str | None = None
    patch: int | None = None

    def steps_left(self, env_left: int, calls: int) -> int:
        """The steps left a turn states: the env's, capped by the budget less ``calls`` made."""
        return env_left if self.budget is None else min(env_left, self.budget - calls)

    def seen(self, image: ImageU8) -> str:
        """The perception sentence for ``image`` (with a leading space), or nothing."""
        if not self.perception:
            return ""
        return perception_sentence(perception_line(image, network=self.perception_network))

    def save(self, folder: str | Path) -> None:
        """Write these settings into an adapter folder."""
        (Path(folder) / TURNS_FILE).write_text(json.dumps(asdict(self)) + "\n")

    def told(
        self,
        show_size: bool | None,
        perception: bool | None,
        detail: Detail | None = None,
        budget: int | None = None,
    ) -> TurnText:
        """These settings with each option that is not ``None`` put in its place."""
        return TurnText(
            show_size=self.show_size if show_size is None else show_size,
            perception=self.perception if perception is None else perception,
            detail=self.detail if detail is None else detail,
            budget=self.budget if budget is None else budget,
            perception_network=self.perception_network,
            patch=self.patch,
        )

    @classmethod
    def load(cls, folder: str | Path | None) -> TurnText:
        """The settings an adapter folder was trained with (the defaults when unrecorded)."""
        path = None if folder is None else Path(folder) / TURNS_FILE
        if path is None or not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        flags = {k: bool(v) for k, v in data.items() if k in ("show_size", "perception")}
        detail = data.get("detail")
        if detail is not None and detail not in get_args(Detail):
            raise ValueError(f"{path}: unknown prompt detail {detail!r}")
        budget = data.get("budget")
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            raise ValueError(f"{path}: the budget must be a positive integer, got {budget!r}")
        network = data.get("perception_network")
        if network is not None and not (isinstance(network, str) and network.isidentifier()):
            raise ValueError(f"{path}: bad perception network name {network!r}")
        patch = data.get("patch")
        if patch is not None and (not isinstance(patch, int) or patch < 8):
            raise ValueError(f"{path}: the patch must be an integer of at least 8, got {patch!r}")
        return cls(**flags, detail=detail, budget=budget, perception_network=network, patch=patch)


#: The user turns of every policy trained before :class:`TurnText` existed.
DEFAULT_TURN = TurnText()


def perception_line(image: ImageU8, top: int = PERCEPTION_TOP, network: str | None = None) -> str:
    """``noise 0.93, haze 0.41, jpeg 0.12``: the most probable degradation types of ``image``.

    ``network``: the perception weights to read (``None``: the shipped ones).
    """
    from tir_env.perception import WEIGHTS_NAME, perceive

    probs = sorted(perceive(image, network=network or WEIGHTS_NAME).items(), key=lambda kv: -kv[1])
    probs = probs[:top]
    return ", ".join(f"{name} {p:.2f}" for name, p in probs)


def perception_sentence(line: str) -> str:
    """`` Perception: LINE.``: how a turn states a perception line (:func:`perception_line`)."""
    return f" Perception: {line}."


def _size(image: ImageU8) -> str:
    return f"{image.shape[1]}x{image.shape[0]} pixels"


def first_user_text(image: ImageU8, steps_left: int, turn: TurnText = DEFAULT_TURN) -> str:
    """Text of the first user turn (after the input image).

    Args:
        image: The working image (its size and perception's reading are stated as ``turn``
            says).
        steps_left: The env's remaining step budget.
        turn: What the turn states about the image.
    """
    size = f": {_size(image)}" if turn.show_size else ""
    return opening_text(size, turn.seen(image), steps_left)


def opening_text(size: str, seen: str, steps_left: int) -> str:
    """The first user turn from its parts.

    Args:
        size: ``": 64x64 pixels"``, or empty when the size is not stated.
        seen: A :func:`perception_sentence`, or empty.
        steps_left: The env's remaining step budget.
    """
    return (
        f"Input image{size}.{seen} Steps left: {steps_left}. No tools called yet.\n"
        "Call one tool or stop."
    )


def next_user_text(
    image: ImageU8, records: Sequence[StepRecord], steps_left: int, turn: TurnText = DEFAULT_TURN
) -> str:
    """Text of a later user turn: the last call's outcome, the image (as ``turn`` says), history."""
    last = records[-1]
    what = str(last.call) if last.call else "stop"
    outcome = "ok" if last.ok else f"failed: {str(last.error)[:120]}"
    history = render_history(records, metrics=())
    size = f" Image: {_size(image)}." if turn.show_size else ""
    return (
        f"Result of {what}: {outcome}.{size}{turn.seen(image)} Steps left: {steps_left}.\n"
        f"History:\n{history}\nCall one tool or stop."
    )


def user_message(text: str) -> Message:
    """A user turn: one image placeholder, then the text."""
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}


def dialogue(
    tools: Sequence[str],
    images: Sequence[ImageU8],
    calls: Sequence[ToolCall],
    records: Sequence[StepRecord],
    max_steps: int,
    detail: Detail = "full",
    turn: TurnText = DEFAULT_TURN,
) -> list[Message]:
    """A whole episode as messages: system, then (user with image, assistant answer) turns.

    The answers are ``calls`` in order, then a stop when the budget is not used up.

    Args:
        tools: The env's tool list (the schema).
        images: The input, then the image after each call.
        calls: The calls as the policy wrote them.
        records: The env's record of each call (same length as ``calls``).
        max_steps: The env's step budget (for "steps left").
        detail: Schema detail of the system prompt.
        turn: What the user turns state about the image.
    """
    msgs: list[Message] = [{"role": "system", "content": system_prompt(tools, detail)}]
    msgs.append(user_message(first_user_text(images[0], max_steps, turn)))
    for k, call in enumerate(calls):
        msgs.append({"role": "assistant", "content": format_call(call)})
        if k + 1 >= max_steps:
            return msgs
        text = next_user_text(images[k + 1], records[: k + 1], max_steps - k - 1, turn)
        msgs.append(user_message(text))
    msgs.append({"role": "assistant", "content": format_call(None)})
    return msgs


def tool_words(tools: Sequence[str]) -> list[str]:
    """Words a tiny model's tokenizer keeps whole: tool names, ``stop``, degradation types.

    The types are what a perception line names (one token each, so a 2-layer model can read it).
    """
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    return [*tools, STOP_NAME, *AGENTICIR_TYPES]


def corpus(tools: Sequence[str]) -> list[str]:
    """Text a tiny model's tokenizer is trained on: prompts, turns and every tool's calls."""
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    texts = [system_prompt(tools, d) for d in get_args(Detail)] + [format_call(None)]
    texts.append(first_user_text(image, 3))
    texts.append(first_user_text(image, 3, TurnText(show_size=False)))
    for name in tools:
        call = ToolCall(name, {})
        texts.append(format_call(call))
        record = StepRecord(call, {}, {}, 0.0)
        texts.append(next_user_text(image, [record, record], 1))
        for pname, p in tool_info(name).params.items():
            texts.append(format_call(ToolCall(name, {pname: (p.low + p.high) / 2})))
    texts.append("0123456789 . , - : x pixels failed ok Perception: " + " ".join(tool_words([])))
    return texts * 4
