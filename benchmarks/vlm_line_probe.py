"""Can a tiny VLM learn to read one word of its prompt? A probe with no image information.

``python -m benchmarks.vlm_line_probe --model M --system brief|none|short --steps 400``
``python -m benchmarks.vlm_line_probe --model M --swap ADAPTER`` (the swap check)

The model sees a blank image and a first user turn with a perception line
(``Perception: haze 0.91, rain 0.31, jpeg 0.12.``, types and probabilities drawn at random, the
first the most probable) and is trained to answer the preferred tool of the first type's task.
Everything it needs is in that one word, so the accuracy on fresh lines (greedy) says whether the
architecture and the prompt let it learn to read it: with the agent's ``brief`` tool-schema
system prompt, with the agent's one-sentence ``none`` prompt, or with ``Restore the image.``
(``short``). Same optimiser as ``tir train sft``
(AdamW 5e-3; the tower and the language model trained in full, LoRA on ``lm_head``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast, get_args

import numpy as np
import torch

from agents.vlm import policy, prompt
from agents.vlm.model import VLM, LoraSpec, load_vlm
from agents.vlm.sft import sft_loss
from tir_env import data
from tir_env.degradations import make_degradation
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.tools.base import tool_info, tool_names
from tir_env.types import ToolCall

SHORT_SYSTEM = "Restore the image."


def preferred_tools(tools: Sequence[str]) -> dict[str, str]:
    """Task -> the tool the fixed agent uses for it."""
    return {tool_info(t).task: t for t in tools if tool_info(t).preferred}


def example(
    vlm: VLM, system: str, rng: random.Random, preferred: dict[str, str]
) -> tuple[policy.Dialogue, str]:
    """A first turn with a random perception line, and the tool its first type calls for."""
    names = rng.sample(AGENTICIR_TYPES, 3)
    probs = sorted([rng.uniform(0.5, 1), rng.uniform(0, 0.5), rng.uniform(0, 0.3)], reverse=True)
    line = ", ".join(f"{n} {p:.2f}" for n, p in zip(names, probs, strict=True))
    text = prompt.opening_text("", prompt.perception_sentence(line), 4)
    blank = np.zeros((64, 64, 3), np.uint8)
    answer = preferred[make_degradation(names[0]).info.task]
    return policy.Dialogue(vlm, system, blank, text), answer


def run(
    model: str, system_kind: str, steps: int, evals: int, seed: int, lr: float = 5e-3
) -> dict[str, Any]:
    """Train on ``steps`` batches of 4 fresh lines; return the greedy accuracy on ``evals``."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    full = ("visual", "language_model")
    vlm = load_vlm(model, lora=LoraSpec(r=16, alpha=32, full=full), trainable=True)
    tools = tuple(tool_names(kinds=("classical",)))
    preferred = preferred_tools(tools)
    detail = cast(prompt.Detail, system_kind)
    system = SHORT_SYSTEM if system_kind == "short" else prompt.system_prompt(tools, detail)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(vlm.trainable_parameters(), lr=lr, weight_decay=0.0)
    began, losses = time.perf_counter(), []
    for _ in range(steps):
        scores = []
        for _ in range(4):
            dialogue, tool = example(vlm, system, rng, preferred)
            dialogue.add_answer_text(prompt.format_call(ToolCall(tool, {})))
            scores.append(policy.score(vlm, dialogue.tokens))
        loss = sft_loss(scores)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    test = random.Random(seed + 1)
    hits = 0
    for _ in range(evals):
        dialogue, tool = example(vlm, system, test, preferred)
        ids = policy.generate(vlm, [dialogue], policy.Sampling(greedy=True), seed=0)[0]
        hits += f'"{tool}"' in vlm.tokenizer.decode(ids)
    return {
        "model": model,
        "system": system_kind,
        "steps": steps,
        "lr": lr,
        "seed": seed,
        "loss_last_50": sum(losses[-50:]) / max(1, len(losses[-50:])),
        "accuracy": hits / evals,
        "n": evals,
        "chance": 1 / len(preferred),
        "seconds": round(time.perf_counter() - began, 1),
    }


def swap_answers(model: str, adapter: str, photo: str = "chelsea") -> list[str]:
    """A trained policy's first answer as the line's first type runs through all eight.

    One 64 px crop of a bundled test photo, the turns the adapter was trained with
    (:class:`agents.vlm.prompt.TurnText`), the line ``TYPE 0.91, A 0.30, B 0.10`` with the
    other two types fixed; greedy. A policy that ignores the line answers the same each time.
    """
    torch.set_num_threads(1)
    vlm = load_vlm(model, merge=[adapter])
    detail = prompt.TurnText.load(adapter).detail or vlm.meta.get("prompt_detail", "full")
    tools = tuple(tool_names(kinds=("classical",)))
    image = data.bundled("test").load(photo)[:64, :64]
    lines = []
    for first in AGENTICIR_TYPES:
        rest = [t for t in AGENTICIR_TYPES if t != first][:2]
        line = f"{first} 0.91, {rest[0]} 0.30, {rest[1]} 0.10"
        text = prompt.opening_text("", prompt.perception_sentence(line), 4)
        dialogue = policy.Dialogue(vlm, prompt.system_prompt(tools, detail), image, text)
        ids = policy.generate(vlm, [dialogue], policy.Sampling(greedy=True), seed=0)[0]
        lines.append(f"{first} -> {one_line(vlm.tokenizer.decode(ids))}")
    return lines


#: The characters ``str.splitlines`` breaks a line at.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def one_line(text: str) -> str:
    r"""``text`` with each line break (:data:`LINE_BREAKS`) written as ``\uXXXX``.

    A model's answer may hold any character; escaped, it keeps one line per type.
    """
    return "".join(f"\\u{ord(c):04x}" if c in LINE_BREAKS else c for c in text)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the probe (or the swap check), print and optionally write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="tiny model folder")
    kinds = (*get_args(prompt.Detail), "short")
    parser.add_argument("--system", choices=kinds, default="brief", help="prompt detail or short")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--evals", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=5e-3, help="AdamW learning rate")
    parser.add_argument("--out", help="write the result here (JSON; text with --swap)")
    parser.add_argument(
        "--swap", metavar="ADAPTER", help="instead: the swap check of a trained SFT adapter"
    )
    args = parser.parse_args(argv)
    if args.swap:
        text = "\n".join(swap_answers(args.model, args.swap)) + "\n"
    else:
        result = run(args.model, args.system, args.steps, args.evals, args.seed, args.lr)
        text = json.dumps(result, indent=2) + "\n"
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
