"""Vision pretraining of a VLM's tower: see degradations before learning to call tools.

Real VLMs see because their vision tower is pretrained before instruction tuning (LLaVA's
stage 1, Qwen-VL's ViT pretraining). The tiny model's tower starts random; these are the
pieces of the two stages ``tir train vlm-vision`` runs (``benchmarks/train_vlm_vision.py``):

1. **Perception.** ``model.visual`` (patch embedding, blocks and the merger) plus a small
   :class:`VisionHead` on the mean- and max-pooled merger outputs learn the perception
   labels (8 presence logits, 8 severities). The images go through exactly the path of the
   agent: :func:`~agents.vlm.policy.view` to the env's ``obs_size``, then
   :func:`~agents.vlm.policy.fit_image` and the processor's ``pixel_values`` /
   ``image_grid_thw``.
2. **Alignment.** The projector (``visual.merger``) alone, the language model frozen, learns
   to make the model answer a short text naming the image's degradations ("denoise, dehaze"
   or "clean") after the image, as LLaVA's stage 1 trains its projector on captions.

The result is saved as a model folder that loads through :func:`~agents.vlm.model.load_vlm`
exactly like the base it started from.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.vlm.model import META_FILE, VLM
from agents.vlm.policy import Dialogue, _patch_factor, fit_image, score, view
from tir_env.types import ImageU8

#: System prompt of the alignment dialogues (short: the tiny model's context is small).
ALIGN_SYSTEM = "Name the degradations of the image."
#: User text of the alignment dialogues.
ALIGN_QUESTION = "What is wrong with this image?"
#: Answer for an image with no degradation.
CLEAN = "clean"


class VisionHead(torch.nn.Module):
    """Presence and severity logits from a tower's merged tokens (mean and max pooled).

    Args:
        width: Width of the merged tokens (the language model's hidden size).
        outputs: Outputs (perception's layout: presence, severity, quality).
        hidden: Width of the hidden layer.
    """

    def __init__(self, width: int, outputs: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.LayerNorm(2 * width),
            torch.nn.Linear(2 * width, hidden),
            torch.nn.GELU(),
            torch.nn.Linear(hidden, outputs),
        )

    def forward(self, tokens: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
        """Outputs per image; ``tokens`` are the images' merged tokens, ``counts`` per image."""
        pooled = [torch.cat([t.mean(0), t.amax(0)]) for t in torch.split(tokens, list(counts))]
        out: torch.Tensor = self.net(torch.stack(pooled))
        return out


def visual(vlm: VLM) -> torch.nn.Module:
    """The vision tower (``model.visual`` of the Qwen-VL families) of a loaded model."""
    base = vlm.base_model
    inner = getattr(base, "model", base)
    tower = getattr(inner, "visual", None) or getattr(base, "visual", None)
    if tower is None:
        from agents.vlm.errors import ModelLoadError

        raise ModelLoadError(
            f"the model in {vlm.path} has no vision tower at model.visual; vision pretraining "
            "needs a Qwen-VL family model"
        )
    return tower


def pixel_inputs(
    vlm: VLM, images: Sequence[ImageU8], obs_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``pixel_values`` and ``image_grid_thw`` of images, as the agent shows them."""
    factor = _patch_factor(vlm)
    pil = [fit_image(view(image, obs_size), vlm.image_size, factor) for image in images]
    enc = vlm.processor.image_processor(images=pil, return_tensors="pt")
    return enc["pixel_values"].to(vlm.device), enc["image_grid_thw"].to(vlm.device)


def merged_tokens(
    vlm: VLM, pixels: torch.Tensor, grids: torch.Tensor
) -> tuple[torch.Tensor, list[int]]:
    """The tower's merged (projected) tokens and how many belong to each image."""
    out = visual(vlm)(pixels, grid_thw=grids)
    tokens = getattr(out, "pooler_output", out)
    merge = int(getattr(vlm.processor.image_processor, "merge_size", 2) or 2)
    counts = [int(g.prod()) // merge**2 for g in grids]
    return tokens, counts


def trainable_only(model: torch.nn.Module, keep: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Freeze every parameter of ``model`` except those of ``keep``; return ``keep``'s."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(keep.parameters())
    for p in params:
        p.requires_grad_(True)
    return params


def answer_text(tasks: Sequence[str]) -> str:
    """The alignment target of an image with these tasks (``clean`` when none)."""
    return ", ".join(tasks) if tasks else CLEAN


def align_loss(vlm: VLM, image: ImageU8, answer: str, obs_size: int | None) -> torch.Tensor:
    """Mean negative log-likelihood of ``answer`` after the image and the question."""
    shown = view(image, obs_size)
    dialogue = Dialogue(vlm, ALIGN_SYSTEM, shown, ALIGN_QUESTION)
    dialogue.add_answer_text(answer)
    return -score(vlm, dialogue.tokens).logp.mean()


def save_folder(
    vlm: VLM,
    out: str | Path,
    record: dict[str, Any],
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Save the model, processor and meta (the base's, plus ``record``) to ``out``, atomically.

    Written into ``<out>.partial`` (``extra`` adds its own files there) and renamed, so
    ``out`` is either absent or complete.
    """
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    vlm.base_model.save_pretrained(str(tmp), safe_serialization=True)
    vlm.processor.save_pretrained(str(tmp))
    meta = {**vlm.meta, "vision_pretraining": record}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    if extra is not None:
        extra(tmp)
    tmp.replace(out)
    return out


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U over ranks, ties averaged); NaN if one class."""
    from scipy.stats import rankdata

    pos = int(truth.sum())
    neg = len(truth) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[truth].sum() - pos * (pos + 1) / 2) / (pos * neg))
