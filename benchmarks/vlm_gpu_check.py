"""GPU check of the VLM path: one SFT step and one GRPO step, tools on cuda.

``bash benchmarks/gpu_check.sh`` runs it on the lent GPU machine; ``--device cpu`` runs the
same steps here. It builds a Qwen2-VL with random weights in a temporary folder (``--arch
tiny``: the CPU-trainable model; ``--arch qwen2-vl-2b``: Qwen2-VL-2B's architecture at its
real size, saved in bfloat16, LoRA on the language model), runs a learned tool through a pool
on the device, makes two short trajectories, then one SFT step and one GRPO step (``--device``
passed unchanged to both recipes; the GRPO group has ``--group-size`` rollouts), and prints
one JSON object with timings, parameter count, peak device memory of each step and where each
part ran. Exit status 0 when everything ran on the requested device.

``--layers N`` keeps the architecture's widths with N decoder layers and N vision blocks: a
quick CPU smoke test of the real-size path (``--arch qwen2-vl-2b --layers 1 --device cpu``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from agents.vlm.model import TinySpec


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks; print and optionally write the JSON report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vlm_gpu_check")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--arch", choices=sorted(ARCHS), default="tiny")
    parser.add_argument("--layers", type=int, default=None, help="decoder layers and vision blocks")
    parser.add_argument("--group-size", type=int, default=2, help="GRPO rollouts per image")
    parser.add_argument("--out", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.stderr.write("error: --device cuda but torch.cuda.is_available() is False\n")
        return 2
    spec = ARCHS[args.arch]()
    if args.layers is not None:
        spec = replace(spec, layers=args.layers, vision_depth=args.layers)
    report: dict[str, Any] = {
        "device": args.device,
        "torch": torch.__version__,
        "arch": args.arch,
        "spec": asdict(spec),
    }
    if args.device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory() as tmp:
        report |= _run(Path(tmp), args.device, spec, args.group_size)
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if report["ok"] else 1


def _tiny() -> TinySpec:
    from agents.vlm.model import TinySpec

    return TinySpec(vocab_size=600)


def _qwen2_vl_2b() -> TinySpec:
    from agents.vlm.model import QWEN2_VL_2B

    return replace(QWEN2_VL_2B, vocab_size=600)


#: ``--arch`` choices: the spec each builds.
ARCHS: dict[str, Callable[[], TinySpec]] = {"tiny": _tiny, "qwen2-vl-2b": _qwen2_vl_2b}


class _Peak:
    """Seconds and peak device memory (GiB, CUDA only) of the block it wraps."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"
        self.seconds = 0.0
        self.peak_gib: float | None = None

    def __enter__(self) -> _Peak:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak_gib = torch.cuda.max_memory_allocated() / 2**30
        self.seconds = time.perf_counter() - self.start


def _run(tmp: Path, device: str, spec: TinySpec, group_size: int) -> dict[str, Any]:
    from agents.vlm import grpo, sft
    from agents.vlm import trajectories as T
    from agents.vlm.model import build_tiny_for_tools, load_vlm
    from tir_env.env import TIREnv
    from tir_env.tools.base import tool_names
    from tir_env.tools.pool import make_pool, set_default_pool
    from tir_env.types import ToolCall

    out: dict[str, Any] = {}
    tools = tuple(tool_names(kinds=("classical",)))
    start = time.perf_counter()
    dtype = None if spec.tiny_training else torch.bfloat16  # a real-size folder: half the disk
    model = build_tiny_for_tools(tmp / "model", tools, spec, dtype)
    out["build_seconds"] = time.perf_counter() - start

    # Tools on the device: a learned tool through a pool that runs on it.
    pool = make_pool(device=device)
    set_default_pool(pool)
    start = time.perf_counter()
    result = pool.run(torch.rand(1, 3, 64, 64), ToolCall("learned_dehazing"))
    out["pool"] = {
        "ok": result.ok,
        "error": result.error,
        "device": str(getattr(pool, "device", "?")),
        "seconds": time.perf_counter() - start,
    }

    # Two short trajectories (train and held out), then one SFT step.
    env = TIREnv(images="test", patch_size=32, max_steps=3, metrics=("psnr", "ssim"), pool=pool)
    path = [ToolCall("gamma_correction"), ToolCall("tv_denoise")]
    for split, image in (("train", "chelsea"), ("val", "coffee")):
        key = T.EpisodeKey(image, ("dark", "noise"), 1)
        T.save([T.execute(env, key, path, "expert")], tmp / split)
    with _Peak(device) as took:
        summary = sft.main(
            sft.SFTConfig(
                model=str(model),
                train_data=(str(tmp / "train"),),
                val_data=(str(tmp / "val"),),
                out=str(tmp / "sft"),
                steps=1,
                batch=1,
                eval_every=1,
                images="test",
                patch_size=32,
                task_eval_seeds=0,
                device=device,
            )
        )
    out["sft"] = {
        "val_loss": [summary["val_loss_before"], summary["val_loss_after"]],
        "seconds": took.seconds,
        "peak_memory_gib": took.peak_gib,
    }

    # One GRPO step from that adapter (merged: the reference policy is the SFT policy).
    with _Peak(device) as took:
        summary = grpo.main(
            grpo.GRPOConfig(
                model=str(model),
                sft_adapter=str(tmp / "sft" / "adapter"),
                out=str(tmp / "grpo"),
                steps=1,
                images_per_step=1,
                group_size=group_size,
                eval_episodes=2,
                images="test",
                patch_size=32,
                max_steps=2,
                reward_metrics=("psnr", "ssim"),
                device=device,
            )
        )
    out["grpo"] = {
        "last": summary["last_eval"],
        "group_size": group_size,
        "seconds": took.seconds,
        "peak_memory_gib": took.peak_gib,
    }
    vlm = load_vlm(model, tmp / "grpo" / "adapter", device=device)
    param = next(vlm.model.parameters())
    out["model"] = {
        "device": str(param.device),
        "dtype": str(param.dtype),
        "parameters": sum(p.numel() for p in vlm.model.parameters()),
    }
    out["ok"] = bool(result.ok and param.device.type == torch.device(device).type)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
