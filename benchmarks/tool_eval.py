"""Tool evaluation shared by the tool table and the training of the learned tools.

One protocol (``docs/tools.md``): the bundled test photos (centre crops) are degraded with
the degradation a tool's task removes, over a few seeds; the tool runs with its default
parameters; mean PSNR and SSIM against the clean crop are reported before and after. For
super-resolution the "before" image is the low-resolution input upsampled bicubically to full
size (:func:`upsample_to`), as AgenticIR's scorer compares it.

:mod:`benchmarks.tool_table` renders these numbers; :mod:`benchmarks.train_tools` records them
for each network it trains. Both import this module and not each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from tir_env.tools import Tool

MetricFn = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass(frozen=True)
class ToolEffect:
    """Mean quality of a tool's inputs and outputs against the clean images.

    Attributes:
        tool: Tool name.
        task: Its task.
        degradation: The degradation its inputs carry.
        psnr_before: Mean PSNR (dB) of the degraded inputs.
        psnr_after: Mean PSNR (dB) of the tool's outputs.
        ssim_before: Mean SSIM of the degraded inputs.
        ssim_after: Mean SSIM of the tool's outputs.
        ms_per_image: Median wall time of one call per image, in milliseconds.
        n: Number of (image, seed) pairs averaged.
    """

    tool: str
    task: str
    degradation: str
    psnr_before: float
    psnr_after: float
    ssim_before: float
    ssim_after: float
    ms_per_image: float
    n: int

    @property
    def improves(self) -> bool:
        """Whether the mean PSNR or the mean SSIM rose."""
        return self.psnr_after > self.psnr_before or self.ssim_after > self.ssim_before


def task_degradations() -> dict[str, str]:
    """Task -> the AgenticIR degradation it removes, read from the degradation registry."""
    from tir_env.degradations import degradation_names, make_degradation

    return {make_degradation(n).info.task: n for n in degradation_names(protocol="agenticir")}


def metric_fns() -> tuple[str, MetricFn, MetricFn]:
    """PSNR and SSIM on RGB in [0, 1], and the name of the library computing them.

    The TIR metric registry (pyiqa's definitions) is used when it provides ``psnr`` and
    ``ssim``; otherwise scikit-image (``peak_signal_noise_ratio``; ``structural_similarity``
    on RGB, 7x7 window).
    """
    from tir_env.errors import TIRError

    try:
        from tir_env.metrics import make_metric

        psnr_m, ssim_m = make_metric("psnr"), make_metric("ssim")
    except (ImportError, TIRError):
        pass
    else:
        return (
            f"tir_env.metrics: {psnr_m.info.description}; {ssim_m.info.description}",
            lambda x, ref: float(psnr_m(x, ref).mean()),
            lambda x, ref: float(ssim_m(x, ref).mean()),
        )
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    def hwc(x: torch.Tensor) -> np.ndarray:
        return x[0].permute(1, 2, 0).double().cpu().numpy()

    return (
        "scikit-image (peak_signal_noise_ratio, structural_similarity on RGB)",
        lambda x, ref: float(peak_signal_noise_ratio(hwc(ref), hwc(x), data_range=1.0)),
        lambda x, ref: float(
            structural_similarity(hwc(ref), hwc(x), data_range=1.0, channel_axis=-1)
        ),
    )


def test_crops(size: int) -> list[torch.Tensor]:
    """Centre ``size`` x ``size`` crops of the bundled test photos, as 1x3xHxW batches."""
    from tir_env import data
    from tir_env.images import u8_to_batch

    src = data.bundled("test")
    return [u8_to_batch(data.center_patch(src.load(i), size)) for i in src.ids]


def degraded_inputs(
    clean: Sequence[torch.Tensor], degradation: str, seeds: Sequence[int]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(clean, degraded)`` pairs: every image under every seed (``rng = [seed, index]``).

    The degraded image is rounded to 8 bits, as the env rounds an episode's input (a saved
    file's levels): the blind deblurring tools read rounded input worse than unrounded
    (docs/tools.md, "The defocus radius of an 8-bit photo").
    """
    from tir_env.degradations import degrade
    from tir_env.images import round_to_8_bits

    pairs = []
    for seed in seeds:
        for index, image in enumerate(clean):
            rng = np.random.default_rng([seed, index])
            degraded = degrade(image, [degradation], rng)[0]
            pairs.append((image, round_to_8_bits(degraded)))
    return pairs


def upsample_to(batch: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bicubic upsampling of ``batch`` to ``like``'s size (the super-resolution baseline)."""
    if batch.shape[-2:] == like.shape[-2:]:
        return batch
    up = F.interpolate(batch, size=like.shape[-2:], mode="bicubic", align_corners=False)
    return up.clamp(0.0, 1.0)


def evaluate_tool(
    name: str,
    clean: Sequence[torch.Tensor],
    seeds: Sequence[int],
    metrics: tuple[str, MetricFn, MetricFn] | None = None,
    tool: Tool | None = None,
) -> ToolEffect:
    """Degrade ``clean`` with the tool's task degradation, run the tool, score both.

    All images of one seed go through the tool as one batch. ``tool`` replaces the
    registry's (cached) instance of ``name``, e.g. one holding freshly trained weights.
    """
    from tir_env.tools import make_tool

    tool = tool or make_tool(name)
    degradation = task_degradations()[tool.info.task]
    _, psnr, ssim = metrics or metric_fns()
    pairs = degraded_inputs(clean, degradation, seeds)
    rows, times = [], []
    for start in range(0, len(pairs), len(clean)):
        chunk = pairs[start : start + len(clean)]
        inputs = torch.cat([d for _, d in chunk])
        t0 = time.perf_counter()
        outputs = tool(inputs)
        times.append((time.perf_counter() - t0) / len(chunk))
        for (ref, deg), out in zip(chunk, outputs.split(1), strict=True):
            before = upsample_to(deg, ref)
            rows.append((psnr(before, ref), psnr(out, ref), ssim(before, ref), ssim(out, ref)))
    means = np.mean(np.array(rows), axis=0)
    psnr_before, psnr_after, ssim_before, ssim_after = map(float, means)
    return ToolEffect(
        tool=name,
        task=tool.info.task,
        degradation=degradation,
        psnr_before=psnr_before,
        psnr_after=psnr_after,
        ssim_before=ssim_before,
        ssim_after=ssim_after,
        ms_per_image=1000.0 * float(np.median(times)),
        n=len(rows),
    )


def evaluate_combos(
    name: str,
    clean: Sequence[torch.Tensor],
    combos: Sequence[Sequence[str]],
    seeds: Sequence[int],
    metrics: tuple[str, MetricFn, MetricFn],
) -> list[tuple[str, float, float, float, float]]:
    """``(combo, PSNR in, PSNR out, SSIM in, SSIM out)`` of tool ``name`` per combination.

    Inputs and outputs smaller than the clean image (low resolution) are upsampled
    bicubically before scoring, as AgenticIR's scorer does.
    """
    from tir_env.degradations import degrade
    from tir_env.tools import make_tool

    tool, (_, psnr, ssim) = make_tool(name), metrics
    rows = []
    for combo in combos:
        scores = []
        for seed in seeds:
            for index, ref in enumerate(clean):
                rng = np.random.default_rng([seed, index])
                degraded = degrade(ref, list(combo), rng)[0]
                before, after = upsample_to(degraded, ref), upsample_to(tool(degraded), ref)
                scores.append(
                    (psnr(before, ref), psnr(after, ref), ssim(before, ref), ssim(after, ref))
                )
        m = np.mean(np.array(scores), axis=0)
        rows.append(("+".join(combo), float(m[0]), float(m[1]), float(m[2]), float(m[3])))
    return rows


def test_scores(tool: Tool, seeds: Sequence[int] = (0, 1, 2), size: int = 128) -> dict[str, Any]:
    """Test-split PSNR/SSIM of ``tool`` and of its task's classical tools (docs protocol).

    ``size``: side of the centre crops of the test photos (:func:`test_crops`).
    """
    from tir_env.tools import tool_names

    task = tool.info.task
    if task not in task_degradations():
        return {}
    metrics, clean = metric_fns(), test_crops(size)
    mine = evaluate_tool(tool.name, clean, list(seeds), metrics, tool=tool)
    classical = [
        evaluate_tool(n, clean, list(seeds), metrics)
        for n in tool_names(task=task, kinds=("classical",))
    ]
    best = max(classical, key=lambda e: e.psnr_after)
    return {
        "test_psnr_input": mine.psnr_before,
        "test_ssim_input": mine.ssim_before,
        "test_psnr": mine.psnr_after,
        "test_ssim": mine.ssim_after,
        "best_classical": best.tool,
        "best_classical_psnr": best.psnr_after,
        "best_classical_ssim": best.ssim_after,
    }


def cpu_ms_per_image(
    fn: Callable[[torch.Tensor], torch.Tensor], size: int, repeats: int = 7
) -> float:
    """Median CPU milliseconds of ``fn`` on one 1x3x``size``x``size`` image.

    Process CPU time rather than wall time, so other work on a shared machine does not
    inflate it; with one torch thread the two agree on an idle machine.
    """
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    fn(x)  # warm-up: weights, allocator
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn(x)
        times.append(time.process_time() - start)
    return 1000.0 * float(np.median(times))
