"""Score working images the way the env does, batched over images (one env or a vector env).

The env's convention (the ``Rewards`` section of ``TIREnv``): with a reference, every metric
sees the image resized to the reference size (AgenticIR's scorer); full-reference metrics are
skipped without one; a metric that needs larger images (NIQE: 96 px) scores a bicubic upscale
of both images. :func:`score_images` applies it to many (image, reference) pairs at once: the
pairs whose views have the same size go through each metric as one batch, so a vector env
pays one metric call per step instead of one per sub-env. Every metric scores each image of a
batch on its own, so the scores equal one call per image up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tir_env.device import resolve_device
from tir_env.images import resize
from tir_env.metrics import metric_on
from tir_env.metrics.base import Metric


def at_least(image: torch.Tensor, metric: Metric) -> torch.Tensor:
    """Bicubic upscale so the smaller side reaches the metric's ``min_size`` (if any)."""
    need = int(getattr(metric, "min_size", 1))
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if min(h, w) >= need:
        return image
    scale = need / min(h, w)
    return resize(image, (max(need, round(h * scale)), max(need, round(w * scale))))


def reference_view(image: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
    """The image as metrics see it: resized to the reference's size when there is one."""
    if reference is None or reference.shape[-2:] == image.shape[-2:]:
        return image
    return resize(image, (int(reference.shape[-2]), int(reference.shape[-1])))


def score_images(
    images: Sequence[torch.Tensor],
    references: Sequence[torch.Tensor | None],
    names: Sequence[str],
    device: str,
) -> list[dict[str, float]]:
    """Every metric of ``names`` for each 1x3xHxW image against its reference (or none).

    Args:
        images: Working images, one per entry.
        references: The clean image of each entry (``None``: full-reference metrics skipped).
        names: Metric names, in the order of the returned dicts' keys.
        device: Where the metrics run (``EnvConfig.device``); the images are moved there.

    Returns:
        One ``{metric: score}`` per image.
    """
    # Device-agnostic metrics (PSNR, SSIM, NIQE) compute where their input lives, and the
    # env's images stay on the CPU: they move to the env's device once, here.
    place = resolve_device(device)
    images = [x.to(place) for x in images]
    references = [None if y is None else y.to(place) for y in references]
    views = [reference_view(x, y) for x, y in zip(images, references, strict=True)]
    scores: list[dict[str, float]] = [{} for _ in views]
    for name in names:
        metric = metric_on(name, device)
        needs = metric.info.needs_reference
        todo = [i for i, ref in enumerate(references) if ref is not None or not needs]
        xs = {i: at_least(views[i], metric) for i in todo}
        ys = {i: at_least(references[i], metric) for i in todo if needs}  # type: ignore[arg-type]
        for group in _same_size(todo, xs):
            batch = torch.cat([xs[i] for i in group])
            ref = torch.cat([ys[i] for i in group]) if needs else None
            for i, value in zip(group, metric(batch, ref).tolist(), strict=True):
                scores[i][name] = float(value)
    return scores


def _same_size(indices: list[int], views: dict[int, torch.Tensor]) -> list[list[int]]:
    """``indices`` grouped by the shape of their view (first-seen order within a group)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i in indices:
        groups.setdefault(tuple(views[i].shape), []).append(i)
    return list(groups.values())
