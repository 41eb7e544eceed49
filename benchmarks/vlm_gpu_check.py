"""GPU check of the VLM path: one SFT step and one GRPO step of the tiny model, tools on cuda.

``bash benchmarks/gpu_check.sh`` runs it on the lent GPU machine; ``--device cpu`` runs the
same steps here. It builds the tiny Qwen2-VL in a temporary folder, runs a learned tool through
a pool on the device, makes two short trajectories, then one SFT step and one GRPO step
(``--device`` passed unchanged to both recipes), and prints one JSON object with timings and
where each part ran. Exit status 0 when everything ran on the requested device.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks; print and optionally write the JSON report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vlm_gpu_check")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.stderr.write("error: --device cuda but torch.cuda.is_available() is False\n")
        return 2
    report: dict[str, Any] = {"device": args.device, "torch": torch.__version__}
    if args.device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory() as tmp:
        report |= _run(Path(tmp), args.device)
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if report["ok"] else 1


def _run(tmp: Path, device: str) -> dict[str, Any]:
    from agents.vlm import grpo, sft
    from agents.vlm import trajectories as T
    from agents.vlm.model import TinySpec, build_tiny_for_tools, load_vlm
    from tir_env.env import TIREnv
    from tir_env.tools.base import tool_names
    from tir_env.tools.pool import make_pool, set_default_pool
    from tir_env.types import ToolCall

    out: dict[str, Any] = {}
    tools = tuple(tool_names(kinds=("classical",)))
    model = build_tiny_for_tools(tmp / "tiny", tools, TinySpec(vocab_size=600))

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
    start = time.perf_counter()
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
        "seconds": time.perf_counter() - start,
    }

    # One GRPO step from that adapter (merged: the reference policy is the SFT policy).
    start = time.perf_counter()
    summary = grpo.main(
        grpo.GRPOConfig(
            model=str(model),
            sft_adapter=str(tmp / "sft" / "adapter"),
            out=str(tmp / "grpo"),
            steps=1,
            images_per_step=1,
            group_size=2,
            eval_episodes=2,
            images="test",
            patch_size=32,
            max_steps=2,
            reward_metrics=("psnr", "ssim"),
            device=device,
        )
    )
    out["grpo"] = {"last": summary["last_eval"], "seconds": time.perf_counter() - start}
    vlm = load_vlm(model, tmp / "grpo" / "adapter", device=device)
    param = next(vlm.model.parameters())
    out["model"] = {"device": str(param.device), "dtype": str(param.dtype)}
    out["ok"] = bool(result.ok and param.device.type == torch.device(device).type)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
