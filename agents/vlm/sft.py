"""Supervised fine-tuning of the VLM agent on (perturbed) expert trajectories, with LoRA.

``tir train sft [options]`` (or ``python -m agents.vlm.sft``) runs :func:`main`, which reads top
to bottom:

1. build the tiny base model when asked (``--build-tiny``) and load the model with a fresh
   LoRA adapter (or continue an adapter);
2. load expert trajectories from the shared expert dataset (:mod:`agents.experts`, made by
   ``tir experts collect``; ``--collect`` makes missing folders on the bundled photos first)
   and add re-executed perturbed variants (``--perturb-p``, :mod:`agents.vlm.perturb`);
3. train on the dialogues with the loss on the assistant turns only (the action tokens of
   :class:`~agents.vlm.policy.Tokens`), reporting the loss on held-out dialogues (the
   validation photo) before and during training;
4. save the adapter, the log and a summary, and measure how often the first call addresses
   the right task on single-degradation test photos (chance: 1 in 8).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from agents.vlm import policy, prompt
from agents.vlm import trajectories as traj_io
from agents.vlm.model import VLM, LoraSpec, TinySpec, build_tiny_for_tools, load_vlm
from agents.vlm.parse import parse_action
from agents.vlm.perturb import PerturbConfig, perturb_all
from tir_env import data
from tir_env.config_cli import config_from_args
from tir_env.degradations.base import make_degradation
from tir_env.degradations.protocols import COMBOS
from tir_env.env import TIREnv
from tir_env.files import refuse_used_folder
from tir_env.tools.base import tool_info, tool_names
from tir_env.types import ToolCall

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTConfig:
    """Options of the SFT recipe (every field is a ``--flag``).

    Attributes:
        model: Base model folder (a real checkpoint, or where the tiny model is built).
        build_tiny: Build the tiny Qwen2-VL at ``model`` when the folder does not exist.
        image_size: Image side of a tiny model built here.
        adapter: Continue training this adapter instead of a fresh one (with ``--steps 0``:
            only measure it).
        merge: Adapters merged into the base first (e.g. the SFT adapter under a GRPO one).
        train_data: Expert datasets (``tir experts collect``) or trajectory folders for
            training.
        val_data: Expert datasets or trajectory folders for the held-out loss.
        stale_experts: An expert episode whose replay no longer reproduces its recorded PSNR
            (a tool changed since collection): ``error`` stops, ``drop`` leaves it out.
        task_first_singles: Leave out the training episodes of one degradation whose expert
            does not address it first. ``exhaustive-ref`` picks the path of best PSNR, and on
            19-21% of single-degradation episodes that path starts with another task (it
            upscales or deblocks a defocused photo first); imitated, those episodes teach the
            policy to name the wrong task for what it sees.
        collect: Make missing folders as expert datasets first (bundled train photos for
            ``train_data``, the validation photo for ``val_data``).
        combos: Degradation combinations collected into each train folder, in order.
        seeds_per_pair: Collected episodes per (photo, combination), per train folder.
        base_seeds: Seed of each train folder's first episode (then consecutive).
        val_combos: Combinations of each validation folder.
        val_seeds_per_pair: Episodes per (photo, combination), per validation folder.
        val_base_seeds: Seed of each validation folder's first episode.
        perturb_p: Probability of each perturbation operator (0: experts only).
        perturb_copies: Perturbed variants per expert trajectory.
        jitter: Per-call probability of the parameter-jitter operator.
        out: Output folder (adapter, log, summary).
        steps: Optimizer steps.
        batch: Dialogues per step.
        lr: AdamW learning rate (cosine decay to a tenth).
        lora_r: LoRA rank (alpha = 2 r).
        full_modules: Modules trained in full next to the adapter (empty: the model
            folder's choice, ``visual`` for the tiny model; ``merger`` keeps a pretrained
            vision tower frozen and trains its projector, as LLaVA's stage 2 does).
        eval_every: Steps between held-out evaluations.
        max_steps: The env's step budget shown in the dialogues (the expert path plus STOP).
        images: Clean-image source of the training episodes (re-executed perturbations).
        obs_size: Side of the square view of each image the model is shown (the env's
            ``obs_size`` in RL and evaluation).
        patch_size: Clean patch side of the episodes.
        detail: Tool-schema detail of the system prompt (``brief`` suits the tiny model).
        show_size: State the image size in the user turns (off: the task must be read from
            the pixels; the task-choice check then hides it too).
        first_call_weight: Weight of the first answer's tokens in the loss (1: every assistant
            token counts the same). The first call is the one decided by the input alone, and
            its tool name is one token of a dialogue's ~40 answer tokens.
        perception_hint: State perception v2's reading of each image in the user turns
            (:class:`agents.vlm.prompt.TurnText`); the adapter folder records it, so the
            ``vlm`` agent runs it the same way.
        task_eval_seeds: Episodes per (test photo, degradation) of the task-choice check
            (0 skips it).
        perception_ceiling: Also score perception v2's task choice on the same episodes
            (the ceiling to compare with).
        seed: Seed of data order and perturbations.
        device: ``cpu``, ``cuda`` or ``auto``.
    """

    model: str = "agents/vlm/weights/tiny-base"
    build_tiny: bool = False
    image_size: int = 112
    adapter: str | None = None
    merge: tuple[str, ...] = ()
    train_data: tuple[str, ...] = (
        "runs/vlm/data/train_mioa",
        "runs/vlm/data/train_single",
        "runs/vlm/data/train_single_x0",
        "runs/vlm/data/train_single_x1",
    )
    val_data: tuple[str, ...] = ("runs/vlm/data/val_mioa", "runs/vlm/data/val_single")
    stale_experts: Literal["error", "drop"] = "error"
    task_first_singles: bool = False
    collect: bool = False
    combos: tuple[str, ...] = ("mio-a", "single", "single", "single")
    seeds_per_pair: tuple[int, ...] = (3, 1, 2, 2)
    base_seeds: tuple[int, ...] = (0, 50_000, 60_000, 61_000)
    val_combos: tuple[str, ...] = ("mio-a", "single")
    val_seeds_per_pair: tuple[int, ...] = (2, 1)
    val_base_seeds: tuple[int, ...] = (100_000, 150_000)
    perturb_p: float = 0.0
    perturb_copies: int = 1
    jitter: float = 0.0
    out: str = "runs/vlm/sft"
    steps: int = 600
    batch: int = 4
    lr: float = 5e-3
    lora_r: int = 16
    full_modules: tuple[str, ...] = ()
    eval_every: int = 50
    max_steps: int = 4
    images: str = "train"
    obs_size: int = 64
    patch_size: int = 64
    detail: prompt.Detail = "brief"
    show_size: bool = True
    perception_hint: bool = False
    first_call_weight: float = 1.0
    task_eval_seeds: int = 2
    perception_ceiling: bool = False
    seed: int = 0
    device: str = "cpu"

    @property
    def turn(self) -> prompt.TurnText:
        """What the user turns state about the image."""
        return prompt.TurnText(self.show_size, self.perception_hint, self.detail, self.max_steps)


def main(cfg: SFTConfig) -> dict[str, Any]:
    """Run the recipe (see the module docstring); return the summary it writes."""
    out = Path(cfg.out)
    # One folder, one run: a second run would replace the first one's adapter and log.
    refuse_used_folder(out, ("adapter", "log.jsonl", "summary.json"), "delete it first")
    out.mkdir(parents=True, exist_ok=True)
    tools = tuple(tool_names(kinds=("classical",)))
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)

    # 1. model
    if cfg.build_tiny and not Path(cfg.model).exists():
        build_tiny_for_tools(cfg.model, tools, TinySpec(image_size=cfg.image_size))
    lora = LoraSpec(r=cfg.lora_r, alpha=2 * cfg.lora_r, full=cfg.full_modules or None)
    vlm = load_vlm(
        cfg.model, cfg.adapter, merge=cfg.merge, lora=lora, trainable=True, device=cfg.device
    )
    env = TIREnv(
        images=cfg.images, combos="mio-a", patch_size=cfg.patch_size, max_steps=cfg.max_steps
    )

    # 2. data
    train = _load_or_collect(cfg.train_data, "train", cfg, env if cfg.collect else None)
    val = _load_or_collect(cfg.val_data, "val", cfg, env if cfg.collect else None)
    if cfg.task_first_singles:
        kept = [t for t in train if addresses_first(t)]
        logger.info(
            "left out %d single-degradation episodes that start with another task",
            len(train) - len(kept),
        )
        train = kept
    if cfg.perturb_p > 0:
        perturb = PerturbConfig(p=cfg.perturb_p, copies=cfg.perturb_copies, jitter=cfg.jitter)
        train = train + perturb_all(env, train, perturb, seed=cfg.seed)
    logger.info("SFT on %d trajectories, %d held out", len(train), len(val))

    # 3. train, loss on assistant turns only
    def encode(t: traj_io.Trajectory) -> policy.Tokens:
        dialogue = policy.trajectory_dialogue(
            vlm, t, tools, cfg.max_steps, cfg.detail, cfg.obs_size, cfg.turn
        )
        return dialogue.tokens

    params = vlm.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    # Cosine decay to a tenth of the learning rate over the run.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda t: 0.1 + 0.45 * (1 + math.cos(math.pi * min(t, cfg.steps) / max(1, cfg.steps))),
    )
    log: list[dict[str, Any]] = [{"step": 0, "val_loss": heldout_loss(vlm, val, encode)}]
    start = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        batch = [train[int(i)] for i in rng.integers(len(train), size=cfg.batch)]
        scores = [policy.score(vlm, encode(t)) for t in batch]
        loss = sft_loss(scores, cfg.first_call_weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        row: dict[str, Any] = {"step": step, "train_loss": float(loss.detach())}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row["val_loss"] = heldout_loss(vlm, val, encode)
            row["seconds"] = time.perf_counter() - start
            logger.info("step %d: %s", step, row)
        log.append(row)

    # 4. save, evaluate the task choice
    vlm.save_adapter(out / "adapter")
    cfg.turn.save(out / "adapter")
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    summary: dict[str, Any] = {
        "config": asdict(cfg),
        "train_trajectories": len(train),
        "val_trajectories": len(val),
        "val_loss_before": log[0]["val_loss"],
        "val_loss_after": log[-1]["val_loss"],
        "train_seconds": time.perf_counter() - start,
    }
    if cfg.task_eval_seeds > 0:
        summary["task_choice"] = task_choice(vlm, cfg.task_eval_seeds, cfg.patch_size, cfg)
        if cfg.perception_ceiling:
            ceiling = perception_choice(cfg.task_eval_seeds, cfg.patch_size, cfg)
            summary["perception_choice"] = ceiling
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def sft_loss(scores: Sequence[policy.Scores], first_call_weight: float = 1.0) -> torch.Tensor:
    """Weighted mean negative log-likelihood of the answer tokens of a batch of dialogues.

    Tokens of the first answer weigh ``first_call_weight``, the others 1; with 1 this is the
    plain mean over all answer tokens.
    """
    weights = [
        torch.where(s.turn.to(s.logp.device) == 0, first_call_weight, 1.0).to(s.logp.dtype)
        for s in scores
    ]
    total = torch.stack([w.sum() for w in weights]).sum() if weights else torch.zeros(())
    if float(total) == 0.0:
        return torch.zeros((), requires_grad=True)
    weighted = torch.stack([(w * s.logp).sum() for w, s in zip(weights, scores, strict=True)])
    return -weighted.sum() / total


def heldout_loss(vlm: VLM, trajectories: Sequence[traj_io.Trajectory], encode: Any) -> float:
    """Mean negative log-likelihood per assistant token over ``trajectories``."""
    total, count = 0.0, 0
    with torch.no_grad():
        for t in trajectories:
            logp = policy.score(vlm, encode(t)).logp
            total, count = total - float(logp.sum()), count + len(logp)
    return total / max(1, count)


def _load_or_collect(
    folders: Sequence[str], split: str, cfg: SFTConfig, env: TIREnv | None
) -> list[traj_io.Trajectory]:
    """Load trajectory folders; with ``env``, collect the missing ones first.

    A folder is an expert dataset (:mod:`agents.experts`, re-executed into trajectories) or a
    trajectory folder written by :func:`agents.vlm.trajectories.save`. Missing folders are
    collected as expert datasets: folder ``i`` holds the ``combos[i]`` episodes of every
    bundled photo of the split, seeded from ``base_seeds[i]`` (``val_*`` fields for the
    validation split).
    """
    from agents import experts

    out: list[traj_io.Trajectory] = []
    train = split == "train"
    per_pair = cfg.seeds_per_pair if train else cfg.val_seeds_per_pair
    combos = cfg.combos if train else cfg.val_combos
    bases = cfg.base_seeds if train else cfg.val_base_seeds
    for i, folder in enumerate(folders):
        path = Path(folder)
        if env is not None and not (path / "trajectories.jsonl").is_file():
            collect = experts.CollectConfig(
                out=folder,
                images=f"bundled:{split}",
                protocols=(combos[i],),
                episodes_per_pair=per_pair[i],
                patch_size=cfg.patch_size,
                max_steps=3,
                seed=bases[i],
                progress=False,
            )
            experts.collect(collect, pool=env.pool, command="tir train sft --collect")
        if (path / "manifest.json").is_file():
            pool = env.pool if env is not None else None
            out += traj_io.from_experts(folder, pool=pool, stale=cfg.stale_experts)
        else:
            out += traj_io.load(folder)
    return out


def addresses_first(t: traj_io.Trajectory) -> bool:
    """Whether the first call of a single-degradation episode is a tool of its task.

    Episodes of several degradations (and ones without calls) count as addressing it: the
    task-first rule is only defined for one degradation.
    """
    if len(t.key.degradations) != 1 or not t.calls:
        return True
    return tool_info(t.calls[0].tool).task == make_degradation(t.key.degradations[0]).info.task


def single_episodes(
    seeds: int, patch_size: int, cfg: SFTConfig, images: str = "test"
) -> list[tuple[TIREnv, str]]:
    """The reset episodes of the task-choice check, each with its degradation's task.

    Every (photo of ``images``, single AgenticIR degradation, seed) once, in that order,
    sharing one tool pool.
    """
    env = TIREnv(
        images=images,
        combos="single",
        patch_size=patch_size,
        obs_size=cfg.obs_size,
        max_steps=cfg.max_steps,
    )
    out = []
    for image_id in data.source(images).ids:
        for (name,) in COMBOS["single"]:
            for k in range(seeds):
                e = TIREnv(
                    images=images,
                    combos="single",
                    patch_size=patch_size,
                    obs_size=cfg.obs_size,
                    max_steps=cfg.max_steps,
                    pool=env.pool,
                )
                e.reset(seed=200_000 + k, options={"image_id": image_id, "degradations": (name,)})
                out.append((e, make_degradation(name).info.task))
    return out


def task_choice(
    vlm: VLM, seeds: int, patch_size: int, cfg: SFTConfig, images: str = "test"
) -> dict[str, Any]:
    """How often the first call addresses the image's only degradation (greedy decoding).

    Every (photo of ``images``, single AgenticIR degradation, seed) episode counts once; a
    malformed answer or a stop counts as wrong. Chance is 1 / number of tasks.
    """
    episodes = single_episodes(seeds, patch_size, cfg, images)
    states = [policy.start(vlm, e, cfg.detail, cfg.turn) for e, _ in episodes]
    tasks = [task for _, task in episodes]
    tools = episodes[0][0].tools
    answers: list[list[int]] = []
    for i in range(0, len(states), 16):
        chunk = [s.dialogue for s in states[i : i + 16]]
        answers += policy.generate(vlm, chunk, policy.Sampling(greedy=True), seed=0)
    chosen = []
    for ids in answers:
        parsed = parse_action(vlm.tokenizer.decode(ids, skip_special_tokens=False), tools)
        got = tool_info(parsed.tool).task if isinstance(parsed, ToolCall) else str(parsed)[:20]
        chosen.append(got)
    n_tasks = len({tool_info(t).task for t in tools})
    return choice_summary(chosen, tasks, 1 / n_tasks)


def perception_choice(
    seeds: int, patch_size: int, cfg: SFTConfig, images: str = "test"
) -> dict[str, dict[str, Any]]:
    """Perception v2's task choice on the episodes of :func:`task_choice` (the ceiling).

    ``first``: the first perceived task in protocol order (what a perception-led agent
    calls first; none perceived counts as wrong); ``argmax``: the task of the most probable
    type.
    """
    from tir_env.perception import perceive, perceived

    episodes = single_episodes(seeds, patch_size, cfg, images)
    tasks = [task for _, task in episodes]
    first, top = [], []
    for e, _ in episodes:
        probs = perceive(e.input_image())
        found = perceived(probs)
        first.append(make_degradation(found[0]).info.task if found else "none")
        top.append(make_degradation(max(probs, key=probs.__getitem__)).info.task)
    n_tasks = len({tool_info(t).task for t in episodes[0][0].tools})
    return {
        "first": choice_summary(first, tasks, 1 / n_tasks),
        "argmax": choice_summary(top, tasks, 1 / n_tasks),
    }


def choice_summary(chosen: Sequence[str], tasks: Sequence[str], chance: float) -> dict[str, Any]:
    """Accuracy overall and per task of chosen vs true tasks, and what was chosen."""
    by_task: dict[str, list[int]] = {}
    for got, task in zip(chosen, tasks, strict=True):
        by_task.setdefault(task, [0, 0])
        by_task[task][0] += got == task
        by_task[task][1] += 1
    right = sum(a for a, _ in by_task.values())
    return {
        "accuracy": right / max(1, len(tasks)),
        "correct": right,
        "n": len(tasks),
        "chance": chance,
        "by_task": {k: f"{a}/{b}" for k, (a, b) in sorted(by_task.items())},
        "chosen": {str(k): list(chosen).count(k) for k in sorted(set(chosen))},
    }


# ------------------------------------------------------------------------------ CLI
def parse_args(argv: Sequence[str] | None = None) -> SFTConfig:
    """``--field value`` for every :class:`SFTConfig` field (:mod:`tir_env.config_cli`)."""
    return config_from_args(SFTConfig, argv, "tir train sft")


def cli(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse options, run, print the summary."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    summary = main(parse_args(argv))
    sys.stdout.write(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    sys.stdout.write("\n")
    return 0 if math.isfinite(summary["val_loss_after"]) else 1


if __name__ == "__main__":
    raise SystemExit(cli())
