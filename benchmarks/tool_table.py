"""How much each tool restores its own degradation: the tool effectiveness table.

For every registered tool (default: the classical ones), the bundled test photos
(``tir_env.data.bundled("test")``, centre crops) are degraded with the degradation its task
removes, over a few seeds; the tool runs with its default parameters; mean PSNR and SSIM
against the clean crop are reported before and after, with the margins.

For super-resolution the "before" image is the low-resolution input upsampled bicubically to
full size, as AgenticIR's scorer compares it; a classical x4 tool can add little to that.

With ``--kinds classical learned`` the learned tools join the table, and three sections
follow it: each learned tool against the best classical tool of its task (with the
training budget from its JSON record), the all-in-one network on every single degradation
and MiO100 group-A pair, and a pointer to the perception page.

Usage::

    python -m benchmarks.tool_table --size 128 --seeds 3 --out docs/tools.md
    python -m benchmarks.tool_table --kinds classical learned --out docs/tools.md
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from tir_env.tools import Tool

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

#: Learned tools that do not beat the best classical tool of their task on the test photos,
#: and why (printed under the learned-vs-classical table).
LEARNED_NOT_WINNING: dict[str, str] = {
    "learned_brightening": (
        "loses 3.9 dB of PSNR (and gains 0.024 SSIM). Half the train split is dark-background "
        "imagery (Hubble deep field, retina, IHC microscopy), on which gamma correction is far "
        "off (20.6 dB on the training crops against 32.8 on the test photos), so the network "
        "learns to brighten more than the test photos need. How bright a photo was is a prior "
        "about photos that six of them cannot teach; SSIM, which ignores the global level, "
        "improves"
    ),
    "learned_dehazing": (
        "loses 0.6 dB. Its corrections help where the dark channel prior fails (+3.6 dB on the "
        "val photo, rocket, with its bright sky) but not on the test photos, where the prior "
        "holds; more varied outdoor training photos would be needed"
    ),
    "learned_motion_deblurring": (
        "ties (-0.05 dB, +0.003 SSIM). The Wiener estimate's errors are mostly those of the "
        "blind kernel estimate, which a 3-block network with a 34-pixel receptive field cannot "
        "see around a 31-pixel trail"
    ),
    "learned_super_resolution": (
        "ties (-0.1 dB, +0.004 SSIM). 1000 steps on six photos teach a 4-block network no "
        "detail that back-projection has not already recovered from a 32x32 input"
    ),
    "learned_jpeg_artifact_removal": (
        "ties (+0.02 dB). Quality 10-29 destroys most of what a network this small could "
        "restore beyond the TV prior; published JPEG networks have 100x the parameters"
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
        "# Tools: effect on their own degradation",
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


def render_learned(effects: Sequence[ToolEffect]) -> str:
    """Each learned tool against the best classical tool of its task, with its budget."""
    from tir_env.tools import tool_info
    from tir_env.tools.learned.weights import read_record

    by_task: dict[str, list[ToolEffect]] = {}
    for e in effects:
        by_task.setdefault(e.task, []).append(e)
    from benchmarks.train_tools import cpu_ms_per_image
    from tir_env.tools import make_tool

    def speed(name: str) -> float:
        return cpu_ms_per_image(make_tool(name), 128 // tool_info(name).scale)

    lines = [
        "## Learned tools against the best classical tool",
        "",
        "Same protocol as above. Each learned tool is a small residual CNN that refines the "
        "output of its task's best classical tool (its *prior*, also a network input), "
        "trained on the train-split photos only (`tir train-tools`; "
        "`benchmarks/train_tools.py`). *Best classical* is the classical tool of the task with "
        "the highest mean PSNR in the table above. *Train CPU s* is one core's training time "
        "(data synthesis, priors and validation included, from the tool's JSON record); "
        "*ms/128px* is the median CPU time of one call on one 128x128 image (32x32 input for "
        "super-resolution), one thread, prior included, for the classical and the learned "
        "tool.",
        "",
        "| task | best classical | PSNR | SSIM | ms/128px | learned tool | PSNR | SSIM | ΔPSNR "
        "| ΔSSIM | ms/128px | params | steps | train CPU s |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task, rows in by_task.items():
        classical = [e for e in rows if tool_info(e.tool).kind == "classical"]
        for e in (e for e in rows if tool_info(e.tool).kind == "learned"):
            best = max(classical, key=lambda c: c.psnr_after)
            r = read_record(e.tool)
            lines.append(
                f"| {task} | `{best.tool}` | {best.psnr_after:.2f} | {best.ssim_after:.3f} "
                f"| {speed(best.tool):.1f} | `{e.tool}` | {e.psnr_after:.2f} "
                f"| {e.ssim_after:.3f} | {e.psnr_after - best.psnr_after:+.2f} "
                f"| {e.ssim_after - best.ssim_after:+.3f} | {speed(e.tool):.1f} "
                f"| {r.get('parameters', '?')} | {r.get('recipe', {}).get('steps', '?')} "
                f"| {r.get('train_cpu_seconds', '?')} |"
            )
    if LEARNED_NOT_WINNING:
        lines += ["", "Where a learned tool does not win, and why:", ""]
        lines += [f"- `{name}`: {reason}." for name, reason in LEARNED_NOT_WINNING.items()]
    return "\n".join(lines) + "\n"


def render_budget() -> str:
    """Every shipped network's size and training cost, from the JSON records."""
    from tir_env.tools.learned.weights import weights_dir

    records = [
        json.loads(p.read_text()) for p in sorted(weights_dir().glob("*.json")) if p.is_file()
    ]
    total_cpu = sum(r.get("train_cpu_seconds", 0.0) for r in records)
    total_kb = sum(p.stat().st_size for p in weights_dir().glob("*.safetensors")) / 1024
    lines = [
        "### Training budget",
        "",
        f"All {len(records)} shipped networks together: {total_cpu / 60:.1f} CPU minutes of "
        f"training (one thread each) and {total_kb:.0f} KiB of safetensors. Each network's "
        "record (`tir_env/assets/learned/<name>.json`) has its command, seed, splits, recipe, "
        "validation curve and test scores. `tir train-tools` retrains all of them (each seeds "
        "itself from its name, so training one alone gives the same weights).",
        "",
        "| network | parameters | steps | batch x crop | train CPU s | train wall s |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in records:
        recipe = r.get("recipe", {})
        lines.append(
            f"| `{r['name']}` | {r.get('parameters', '?')} | {recipe.get('steps', '?')} "
            f"| {recipe.get('batch', '?')} x {recipe.get('crop', '?')} "
            f"| {r.get('train_cpu_seconds', '?')} | {r.get('train_wall_seconds', '?')} |"
        )
    return "\n".join(lines) + "\n"


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
                before, after = _upsample_to(degraded, ref), _upsample_to(tool(degraded), ref)
                scores.append(
                    (psnr(before, ref), psnr(after, ref), ssim(before, ref), ssim(after, ref))
                )
        m = np.mean(np.array(scores), axis=0)
        rows.append(("+".join(combo), float(m[0]), float(m[1]), float(m[2]), float(m[3])))
    return rows


def render_all_in_one(rows: Sequence[tuple[str, float, float, float, float]]) -> str:
    """The all-in-one network on single degradations and group-A pairs."""
    from tir_env.tools.learned.weights import read_record

    r = read_record("learned_all_in_one")
    lines = [
        "## The all-in-one network",
        "",
        "`learned_all_in_one` (agent `all-in-one`: one call, then STOP) is one residual CNN "
        f"({r.get('parameters', '?')} parameters, {r.get('recipe', {}).get('steps', '?')} steps, "
        f"{r.get('train_cpu_seconds', '?')} CPU s) trained on seven single degradations "
        "(all but low resolution alone) and the eight MiO100 group-A pairs, without a "
        "classical prior, with a per-image PSNR loss. It keeps its input's "
        "size (it does not super-resolve): low-resolution inputs are scored after bicubic "
        "upsampling, before and after. Same test crops and seeds as above.",
        "",
        "| degradations | PSNR before | PSNR after | ΔPSNR | SSIM before | SSIM after | ΔSSIM |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for combo, p0, p1, s0, s1 in rows:
        lines.append(
            f"| {combo} | {p0:.2f} | {p1:.2f} | {p1 - p0:+.2f} | {s0:.3f} | {s1:.3f} "
            f"| {s1 - s0:+.3f} |"
        )
    return "\n".join(lines) + "\n"


PERCEPTION_NOTE = """## Perception

Perception v2 and the `tirqa` quality model (one network, trained on the photo corpus) are
measured on held-out photos in [perception.md](perception.md)
(`python -m benchmarks.perception_report`).
"""


PRETRAINED_HELP = """## Pretrained checkpoints (kind `pretrained`)

Real pretrained networks load from files you provide (`tir_env/tools/pretrained.py`); nothing
is downloaded. [spandrel](https://github.com/chaiNNer-org/spandrel) and
`spandrel-extra-arches` detect the architecture from the weights (SwinIR, HAT, SCUNet,
FBCNN, DRUNet, DnCNN, NAFNet, RetinexFormer, MixDehazeNet, Restormer, MPRNet, ...). Files are
read only with safetensors or `torch.load(weights_only=True)`; a missing, corrupt or
unsupported file, or one whose scale does not fit the task (x4 for super-resolution, else
x1), raises an error naming the file. Large images run in overlapping tiles (default 256
input pixels, 16 overlapping, blended linearly), so memory stays bounded.

Licences: spandrel is MIT; `spandrel-extra-arches` (Restormer, MPRNet, ...) is MIT itself but
implements architectures whose own licences restrict use (several are non-commercial). TIR
imports it, vendors none of it, and ships none of those weights: a commercial user should review
the licence of each architecture (and of each checkpoint) they register.

Register a checkpoint from Python, `register_checkpoint(path, task, name)`; from the
command line, `tir tools --register PATH:TASK[:NAME]` (loads, checks and lists it) or
`tir tools --config tools.toml`; or for every process through `TIR_TOOLS_TOML=tools.toml`:

```toml
[[tool]]
name = "swinir_sr"                     # the AgenticIR preset's name for SwinIR (PSNR) x4
task = "super_resolution"
path = "~/weights/001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth"
tile = 256                             # optional (0 = never tile)
overlap = 16                           # optional
```

Toolbox presets (`tir_env.tools.presets.toolbox_tools`): `classical`, `learned`, `full`
(every kind, registered checkpoints included) and `agenticir`: AgenticIR's 33 tools per
task (`AGENTICIR_TOOLBOX`), each resolved to a registered tool of that name; a warning lists
the missing ones (`tir tools --preset agenticir` prints them). Use one with
`gym.make("TIR-v0", toolbox="full")`, or `--toolbox full` on `tir bench` and `tir restore`
(which also take `--register` and `--config`); a bench entry run with another toolbox is
labelled `AGENT@TOOLBOX` in the leaderboard.
"""


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
    text = render(effects, command.strip(), metric_name=metrics[0], size=args.size)
    if "learned" in args.kinds:
        from tir_env.degradations.protocols import MIO_GROUP_A, SINGLE

        combos = [*SINGLE, *MIO_GROUP_A]
        rows = evaluate_combos("learned_all_in_one", clean, combos, seeds, metrics)
        text += "\n" + render_learned(effects) + "\n" + render_budget()
        text += "\n" + render_all_in_one(rows)
        text += "\n" + PERCEPTION_NOTE + "\n" + PRETRAINED_HELP
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
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
