"""Pretrain the tiny VLM's vision tower on the photo corpus, then align its projector.

``tir train vlm-vision [options]`` runs :func:`main`, which reads top to bottom:

1. build the tiny base model at ``--base`` when it is missing (its vision tower grown to
   ``--vision-dim`` x ``--vision-depth``), and load it;
2. load perception v2's examples of the corpus (``benchmarks.train_perception``: 96 px crops
   with presence and severity labels, cached under ``<examples>/examples`` by
   ``tir train perception``; made here with the same settings when missing);
3. **perception stage**: ``model.visual`` and a small head (:class:`agents.vlm.vision.VisionHead`)
   learn presence (BCE) and severity (masked squared error) of the 8 AgenticIR types, the
   images shown exactly as the agent shows them (resized to ``--obs-size``, the processor's
   ``pixel_values``); val presence AUC and F1 per type on the corpus val crops;
4. **alignment stage**: the projector (``visual.merger``) alone, the language model frozen,
   learns to answer the tasks of the image's degradations ("denoise, dehaze", or "clean");
5. save a model folder that loads through ``load_vlm`` / ``AutoModelForImageTextToText`` like
   the base (``tir_vlm.json`` gains a ``vision_pretraining`` record), the head, and
   ``vision_record.json`` (command, val scores per type, times).

Usage::

    tir train vlm-vision --out runs/vlm/vision            # the measured run (docs/agents.md)
    tir train vlm-vision --out /tmp/v --steps 2 --align-steps 2 --val-samples 50  # smoke run

The SFT recipe then starts from it: ``tir train sft --model runs/vlm/vision ...``.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from agents.vlm import vision
from agents.vlm.model import TinySpec, build_tiny_for_tools, load_vlm
from benchmarks import train_perception as tp
from tir_env.degradations import make_degradation
from tir_env.degradations.protocols import AGENTICIR_TYPES
from tir_env.files import refuse_used_folder
from tir_env.perception import N_OUTPUTS, PRESENCE, SEVERITY
from tir_env.tools.base import tool_names

logger = logging.getLogger(__name__)

#: Files only a finished run writes into ``--out``.
MARKERS = ("config.json", "vision_record.json", "tir_vlm.json")


@dataclass(frozen=True)
class VisionConfig:
    """Options of the vision pretraining recipe (every field is a ``--flag``).

    Attributes:
        out: Output model folder (refused when it already holds a run).
        base: Tiny base model folder to start from; built here when missing.
        vision_dim: Vision tower width of a base built here (the shipped tiny model: 32).
        vision_depth: Vision tower blocks of a base built here (shipped: 2).
        vision_heads: Vision attention heads of a base built here.
        image_size: Longest image side fed to the tower, of a base built here.
        examples: Folder whose ``examples/`` cache holds perception v2's arrays
            (``tir train perception --out`` of that folder made them; made here if missing).
        samples: Training examples (perception's setting: it keys the cache).
        val_samples: Validation examples (perception's setting: it keys the cache).
        val_limit: Validation examples scored (the first ones).
        obs_size: Side of the view the agent shows (the env's ``obs_size``).
        steps: Optimiser steps of the perception stage.
        batch: Images per step.
        lr: Peak learning rate of the perception stage (one-cycle).
        severity_weight: Weight of the severity loss (presence weighs 1).
        align_steps: Optimiser steps of the alignment stage (0 skips it).
        align_batch: Dialogues per alignment step.
        align_lr: Learning rate of the alignment stage.
        eval_every: Perception steps between validation scores.
        seed: Seed of data order, augmentation and the head's weights.
        threads: Torch CPU threads.
        device: ``cpu``, ``cuda`` or ``auto``.
    """

    out: str = "runs/vlm/vision"
    base: str = "runs/vlm/tiny-vision-base"
    vision_dim: int = 64
    vision_depth: int = 4
    vision_heads: int = 4
    image_size: int = 112
    examples: str = "runs/perception"
    samples: int = 20000
    val_samples: int = 1500
    val_limit: int = 1500
    obs_size: int = 64
    steps: int = 800
    batch: int = 32
    lr: float = 2e-3
    severity_weight: float = 1.0
    align_steps: int = 150
    align_batch: int = 8
    align_lr: float = 1e-3
    eval_every: int = 200
    seed: int = 0
    threads: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        if min(self.steps, self.align_steps, self.batch, self.align_batch) < 0 or self.batch < 1:
            raise ValueError("steps and align-steps must be >= 0, batch sizes >= 1")
        if self.obs_size < 8 or self.val_limit < 1:
            raise ValueError("obs-size must be >= 8 and val-limit >= 1")


def main(cfg: VisionConfig) -> dict[str, Any]:
    """Run both stages (see the module docstring); return the record it writes."""
    start, cpu0 = time.time(), time.process_time()
    out = Path(cfg.out)
    refuse_used_folder(out, MARKERS, "delete it first")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    # 1. model
    if not Path(cfg.base).exists():
        spec = TinySpec(
            vision_dim=cfg.vision_dim,
            vision_depth=cfg.vision_depth,
            vision_heads=cfg.vision_heads,
            image_size=cfg.image_size,
        )
        build_tiny_for_tools(cfg.base, tuple(tool_names(kinds=("classical",))), spec)
    vlm = load_vlm(cfg.base, device=cfg.device, dtype="float32")
    tower = vision.visual(vlm)
    before = {k: v.detach().clone() for k, v in tower.state_dict().items()}

    # 2. data: perception v2's cached examples (same settings, same cache keys)
    train, val = _examples(cfg)
    train_index = np.flatnonzero(train.labelled > 0.5)
    val_index = np.flatnonzero(val.labelled > 0.5)[: cfg.val_limit]
    data_seconds = time.time() - start
    torch.set_num_threads(cfg.threads)
    logger.info("%d labelled train crops, %d val", len(train_index), len(val_index))

    # 3. perception stage: the whole tower and the head
    width = int(vlm.base_model.config.text_config.hidden_size)
    head = vision.VisionHead(width, N_OUTPUTS).to(vlm.device)
    params = vision.trainable_only(vlm.base_model, tower) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, cfg.lr, total_steps=max(1, cfg.steps), pct_start=0.1
    )
    vlm.base_model.train()
    curve: list[dict[str, Any]] = []
    t0 = time.time()
    for step in tqdm(range(1, cfg.steps + 1), desc="vision", mininterval=10):
        index = rng.choice(train_index, cfg.batch)
        images = _augment(train.images[index], rng)
        parts = tp.losses(_outputs(vlm, head, images, cfg), train, index)
        loss = parts["presence"] + cfg.severity_weight * parts["severity"]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row = {
                "step": step,
                "loss": float(loss.detach()),
                **_mean(evaluate(vlm, head, val, val_index, cfg)),
            }
            curve.append(row)
            logger.info("vision step %d: %s", step, row)
    vision_seconds = time.time() - t0
    scores = evaluate(vlm, head, val, val_index, cfg)

    # 4. alignment stage: the projector alone, the language model frozen
    t0 = time.time()
    align = align_stage(vlm, train, train_index, val, val_index, cfg, rng)
    align_seconds = time.time() - t0
    after_align = evaluate(vlm, head, val, val_index, cfg) if cfg.align_steps else scores

    # 5. save
    changed = any(
        not torch.equal(before[k], v.detach().cpu()) for k, v in tower.state_dict().items()
    )
    record: dict[str, Any] = {
        "command": command_of(cfg),
        "config": asdict(cfg),
        "base": str(cfg.base),
        "visual_changed": changed,
        "val_examples": int(len(val_index)),
        "val": scores,
        "val_after_alignment": after_align,
        "val_curve": curve,
        "alignment": align,
        "data_seconds": round(data_seconds, 1),
        "vision_seconds": round(vision_seconds, 1),
        "align_seconds": round(align_seconds, 1),
        "wall_seconds": round(time.time() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    vlm.base_model.eval()

    def extra(folder: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in head.state_dict().items()}
        save_file(state, str(folder / "vision_head.safetensors"))
        (folder / "vision_record.json").write_text(json.dumps(record, indent=2) + "\n")

    vision.save_folder(vlm, out, {k: v for k, v in record.items() if k != "val_curve"}, extra)
    return record


def command_of(cfg: VisionConfig) -> str:
    """The ``tir train vlm-vision`` command line that reruns ``cfg`` (non-default fields)."""
    words = ["tir train vlm-vision"]
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if value != f.default:
            words.append(f"--{f.name.replace('_', '-')} {value}")
    return " ".join(words)


def _examples(cfg: VisionConfig) -> tuple[tp.Examples, tp.Examples]:
    """Perception v2's train and val examples, drawn as ``tir train perception`` draws them."""
    pcfg = replace(tp.Config(), out=cfg.examples, samples=cfg.samples, val_samples=cfg.val_samples)
    rng = np.random.default_rng(pcfg.seed)
    train = tp.cached_examples(pcfg, pcfg.train, pcfg.samples, Path(cfg.examples), rng)
    val = tp.cached_examples(pcfg, pcfg.val, pcfg.val_samples, Path(cfg.examples), rng)
    return train, val


def _augment(images: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """A random flip and quarter turns of each uint8 crop (labels are invariant to both)."""
    out = []
    for image in images:
        turned = np.rot90(image, int(rng.integers(4)))
        out.append(np.ascontiguousarray(turned[:, ::-1] if rng.integers(2) else turned))
    return out


def _outputs(
    vlm: Any, head: vision.VisionHead, images: Sequence[np.ndarray], cfg: VisionConfig
) -> torch.Tensor:
    """Head outputs (N x 18, perception's layout) of images shown as the agent shows them."""
    pixels, grids = vision.pixel_inputs(vlm, images, cfg.obs_size)
    tokens, counts = vision.merged_tokens(vlm, pixels, grids)
    return head(tokens, counts).cpu()


def evaluate(
    vlm: Any, head: vision.VisionHead, ex: tp.Examples, index: np.ndarray, cfg: VisionConfig
) -> dict[str, Any]:
    """Presence AUC and F1 (threshold 0.5) per type, and the severity MAE, on ``index``."""
    with torch.no_grad():
        outs = [
            _outputs(vlm, head, list(ex.images[index[i : i + 64]]), cfg)
            for i in range(0, len(index), 64)
        ]
    out = torch.cat(outs)
    probs = torch.sigmoid(out[:, PRESENCE]).numpy()
    truth = ex.presence[index] > 0.5
    sev_err = np.abs(torch.sigmoid(out[:, SEVERITY]).numpy() - ex.severity[index])[truth]
    return {
        "auc": {
            n: round(vision.auc(probs[:, j], truth[:, j]), 4) for j, n in enumerate(AGENTICIR_TYPES)
        },
        "f1": {
            n: round(tp.f1_score(probs[:, j] >= 0.5, truth[:, j]), 4)
            for j, n in enumerate(AGENTICIR_TYPES)
        },
        "severity_mae": round(float(sev_err.mean()), 4) if sev_err.size else float("nan"),
    }


def _mean(scores: dict[str, Any]) -> dict[str, float]:
    """Mean AUC and F1 over the types (the curve's summary)."""
    auc = [v for v in scores["auc"].values() if not math.isnan(v)]
    return {
        "mean_auc": round(float(np.mean(auc)), 4) if auc else float("nan"),
        "mean_f1": round(float(np.mean(list(scores["f1"].values()))), 4),
        "severity_mae": scores["severity_mae"],
    }


def _answer(presence: np.ndarray) -> str:
    """The tasks of the present types, in protocol order, as the alignment target."""
    tasks = [
        make_degradation(n).info.task
        for n, p in zip(AGENTICIR_TYPES, presence, strict=True)
        if p > 0.5
    ]
    return vision.answer_text(list(dict.fromkeys(tasks)))


def align_stage(
    vlm: Any,
    train: tp.Examples,
    train_index: np.ndarray,
    val: tp.Examples,
    val_index: np.ndarray,
    cfg: VisionConfig,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Train ``visual.merger`` alone on the degradation answers; its val loss before and after.

    The language model (and the rest of the tower) stays frozen: only the projection of the
    image tokens into its input space moves, as in LLaVA's stage 1.
    """
    if cfg.align_steps == 0:
        return {"steps": 0}
    merger = vision.visual(vlm).merger
    if not isinstance(merger, torch.nn.Module):
        from agents.vlm.errors import ModelLoadError

        raise ModelLoadError(f"the vision tower of {vlm.path} has no merger (projector) module")
    params = vision.trainable_only(vlm.base_model, merger)
    opt = torch.optim.AdamW(params, lr=cfg.align_lr, weight_decay=0.0)
    held = val_index[: min(len(val_index), 64)]

    def val_loss() -> float:
        with torch.no_grad():
            losses = [
                float(vision.align_loss(vlm, val.images[i], _answer(val.presence[i]), cfg.obs_size))
                for i in held
            ]
        return round(float(np.mean(losses)), 4)

    first = val_loss()
    for _ in tqdm(range(cfg.align_steps), desc="align", mininterval=10):
        index = rng.choice(train_index, cfg.align_batch)
        loss = torch.stack(
            [
                vision.align_loss(vlm, train.images[i], _answer(train.presence[i]), cfg.obs_size)
                for i in index
            ]
        ).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return {"steps": cfg.align_steps, "val_loss_before": first, "val_loss_after": val_loss()}


def parse_args(argv: Sequence[str] | None = None) -> VisionConfig:
    """``--field value`` for every :class:`VisionConfig` field (:mod:`tir_env.config_cli`)."""
    from tir_env.config_cli import config_from_args

    return config_from_args(
        VisionConfig, argv, "tir train vlm-vision", description=(__doc__ or "").split("\n\n")[0]
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = main(parse_args())
    sys.stdout.write(
        json.dumps({k: v for k, v in result.items() if k != "val_curve"}, indent=1) + "\n"
    )


def head_choice(folder: str, seeds: int = 4, patch_size: int = 128) -> dict[str, Any]:
    """The pretrained head's own task choice on the SFT task-choice episodes (most probable type).

    What the tower alone can tell apart on those images: the ceiling of a policy reading it.

    Example: ``python -c "from benchmarks.train_vlm_vision import head_choice;
    print(head_choice('runs/vlm/vision3'))"``.
    """
    from safetensors.torch import load_file

    from agents.vlm.sft import SFTConfig, choice_summary, single_episodes

    vlm = load_vlm(folder, dtype="float32")
    width = int(vlm.base_model.config.text_config.hidden_size)
    head = vision.VisionHead(width, N_OUTPUTS)
    head.load_state_dict(load_file(str(Path(folder) / "vision_head.safetensors")))
    cfg = SFTConfig(patch_size=patch_size)
    episodes = single_episodes(seeds, patch_size, cfg)
    images = [e.input_image() for e, _ in episodes]
    with torch.no_grad():
        pixels, grids = vision.pixel_inputs(vlm, images, cfg.obs_size)
        tokens, counts = vision.merged_tokens(vlm, pixels, grids)
        probs = torch.sigmoid(head(tokens, counts)[:, PRESENCE])
    chosen = [make_degradation(AGENTICIR_TYPES[int(j)]).info.task for j in probs.argmax(1)]
    return choice_summary(chosen, [task for _, task in episodes], 1 / 8)


# ------------------------------------------------------------------------------ document
#: The committed measurements docs/agents.md's vision-pretraining tables are made from.
RESULTS = Path(__file__).resolve().parent / "results" / "vlm" / "vision_pretraining.json"


def results_tables(results: dict[str, Any]) -> str:
    """The two tables of docs/agents.md's vision-pretraining section (val AUC, task choice)."""
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    lines = [
        "| run | steps | " + " | ".join(AGENTICIR_TYPES) + " | mean | wall (CPU) min |",
        "|---|---:|" + "---:|" * (len(AGENTICIR_TYPES) + 2),
    ]
    for name, run in results["vision"].items():
        auc = run["val"]["auc"]
        mean = sum(auc.values()) / len(auc)
        cells = " | ".join(f"{auc[t]:.2f}" for t in AGENTICIR_TYPES)
        wall, cpu = run["wall_seconds"] / 60, run["cpu_seconds"] / 60
        step = run["val_curve"][-1]["step"]
        lines.append(f"| `{name}` | {step} | {cells} | {mean:.2f} | {wall:.1f} ({cpu:.1f}) |")
    lines += [
        "",
        "| start | tower during SFT | task accuracy | first calls chosen |",
        "|---|---|---:|---|",
    ]
    for name, run in results["sft"].items():
        tc = run["task_choice"]
        frozen = "frozen (`--full-modules merger`)" if "frozen" in name else "trained"
        chosen = ", ".join(
            f"{k} {v}" for k, v in sorted(tc["chosen"].items(), key=lambda kv: -kv[1])
        )
        start = Path(run["model"]).name
        score = f"{tc['correct']}/{tc['n']} = {tc['accuracy']:.1%}"
        lines.append(f"| `{start}` | {frozen} | {score} | {chosen} |")
    for name, head in results["vision_head_choice"].items():
        lines.append(
            f"| `{name}`'s pretraining head alone | | "
            f"{head['correct']}/{head['n']} = {head['accuracy']:.1%} | |"
        )
    labels = {"first": "first perceived type", "argmax": "most probable type"}
    for key, label in labels.items():
        p = results["perception_v2"][key]
        lines.append(
            f"| perception v2, {label} | | {p['correct']}/{p['n']} = {p['accuracy']:.1%} | |"
        )
    lines.append(f"| chance | | {results['chance']:.1%} | |")
    return "\n".join(lines) + "\n"
