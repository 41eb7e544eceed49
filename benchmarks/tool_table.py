"""How much each tool restores its own degradation: the tool effectiveness table.

For every registered tool (default: the classical ones), the bundled test photos
(``tir_env.data.bundled("test")``, centre crops) are degraded with the degradation its task
removes, over a few seeds; the tool runs with its default parameters; mean PSNR and SSIM
against the clean crop are reported before and after, with the margins.

For super-resolution the "before" image is the low-resolution input upsampled bicubically to
full size, as AgenticIR's scorer compares it; a classical x4 tool can add little to that.

Usage::

    python -m benchmarks.tool_table --size 128 --seeds 3 --out docs/tools.md
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: Tools whose default call is not expected to raise PSNR or SSIM on their own degradation,
#: and why. ``tests/test_tool_effect.py`` checks every other tool; the table prints these.
KNOWN_NOT_IMPROVING: dict[str, str] = {
    "bicubic_x4": (
        "it is the reference: the 'before' image of super-resolution is the bicubic x4 "
        "upsampling of the low-resolution input, so the margin is 0 by construction"
    ),
    "motion_wiener": (
        "non-blind: it needs the blur's direction; the default (horizontal) matches one "
        "blur in many, as angles are uniform in [-90, 90). Use motion_wiener_blind, or pass "
        "the angle"
    ),
}

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


def clean_crops(size: int) -> list[torch.Tensor]:
    """Centre ``size`` x ``size`` crops of the bundled test photos, as 1x3xHxW batches."""
    from tir_env import data
    from tir_env.images import u8_to_batch

    src = data.bundled("test")
    return [u8_to_batch(data.center_patch(src.load(i), size)) for i in src.ids]


def degraded_inputs(
    clean: Sequence[torch.Tensor], degradation: str, seeds: Sequence[int]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(clean, degraded)`` pairs: every image under every seed (``rng = [seed, index]``)."""
    from tir_env.degradations import degrade

    pairs = []
    for seed in seeds:
        for index, image in enumerate(clean):
            rng = np.random.default_rng([seed, index])
            pairs.append((image, degrade(image, [degradation], rng)[0]))
    return pairs


def _upsample_to(batch: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
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
) -> ToolEffect:
    """Degrade ``clean`` with the tool's task degradation, run the tool, score both.

    All images of one seed go through the tool as one batch.
    """
    from tir_env.tools import make_tool

    tool = make_tool(name)
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
            before = _upsample_to(deg, ref)
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


def render(effects: Sequence[ToolEffect], command: str, metric_name: str, size: int) -> str:
    """The Markdown table, with the command that made it at the top."""
    lines = [
        "# Classical tools: effect on their own degradation",
        "",
        f"Generated by `{command}`.",
        "",
        f"Each tool restores the {size}x{size} centre crops of the 4 bundled test photos "
        "(chelsea, coffee, china, flower), degraded by its task's degradation, with its "
        f"default parameters. Means over {effects[0].n if effects else 0} (image, seed) pairs. "
        f"Metrics: {metric_name}, against the clean crop. ms/img is the wall time of one "
        "batched call divided by the images in it, on this machine (indicative only).",
        "",
        "For super-resolution the 'before' image is the low-resolution input upsampled "
        "bicubically to full size, as AgenticIR's scorer does. Classical x4 tools cannot "
        "invent the detail the downsampling removed, so they beat that baseline by little.",
        "",
        "| tool | task | degradation | PSNR before | PSNR after | ΔPSNR | SSIM before "
        "| SSIM after | ΔSSIM | ms/img |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in effects:
        flag = " †" if e.tool in KNOWN_NOT_IMPROVING else ""
        lines.append(
            f"| `{e.tool}`{flag} | {e.task} | {e.degradation} | {e.psnr_before:.2f} "
            f"| {e.psnr_after:.2f} | {e.psnr_after - e.psnr_before:+.2f} | {e.ssim_before:.3f} "
            f"| {e.ssim_after:.3f} | {e.ssim_after - e.ssim_before:+.3f} | {e.ms_per_image:.1f} |"
        )
    lines += ["", "† Known not to improve with default parameters (not checked by the tests):", ""]
    lines += [f"- `{name}`: {reason}." for name, reason in KNOWN_NOT_IMPROVING.items()]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="centre-crop size (multiple of 4)")
    parser.add_argument("--seeds", type=int, default=3, help="degradation seeds per image")
    parser.add_argument("--out", type=Path, default=Path("docs/tools.md"), help="Markdown file")
    parser.add_argument("--kinds", nargs="+", default=["classical"], help="tool kinds to include")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[ToolEffect]:
    """Build the table, write it to ``--out`` and return the rows."""
    from tir_env.tools import tool_names

    args = parse_args(argv)
    torch.set_num_threads(1)
    command = "python -m benchmarks.tool_table " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    metrics = metric_fns()
    clean = clean_crops(args.size)
    seeds = list(range(args.seeds))
    tasks = task_degradations()
    names = [n for n in tool_names(kinds=tuple(args.kinds)) if _task_of(n) in tasks]
    effects = [evaluate_tool(n, clean, seeds, metrics) for n in _progress(names)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(effects, command.strip(), metrics[0], args.size))
    print(f"wrote {args.out} ({len(effects)} tools)")
    return effects


@functools.cache
def _task_of(name: str) -> str:
    from tir_env.tools import tool_info

    return tool_info(name).task


def _progress(names: Sequence[str]) -> Sequence[str]:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return names
    return tqdm(names, desc="tools", leave=False)


if __name__ == "__main__":
    main()
