"""``tir restore``: restore a user's photo with no reference (tiled at full size)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from benchmarks.commands.common import register_checkpoints
from benchmarks.commands.configs import RestoreConfig


def cmd_restore(config: RestoreConfig) -> int:
    """Restore a user's photo with no reference; print the trajectory, save the result.

    Everything that can be checked is checked before any work: the output path (never the
    input, never an existing file without ``--overwrite``, a known extension), ``--max-side``
    and the photo itself. Photos larger than :data:`benchmarks.restore.TILE_SIDE` are planned
    on a native-resolution crop and restored in tiles at full size (:mod:`benchmarks.restore`).
    """
    import logging

    from agents.base import make_agent, rollout
    from benchmarks import restore
    from benchmarks.commands.bench import parse_agent_args
    from benchmarks.evaluate import with_required_tools
    from tir_env.env import TIREnv
    from tir_env.errors import TIRError
    from tir_env.images import check_output_path, load_image, save_image

    logging.basicConfig(format="%(message)s")
    logging.getLogger("tir_env.images").setLevel(logging.INFO)  # 16-bit and alpha conversions
    if config.max_side < 0:
        print(
            f"error: --max-side must be >= 0 (0: full size), got {config.max_side}", file=sys.stderr
        )
        return 2
    if not register_checkpoints(config):
        return 2
    try:
        options = parse_agent_args(config.agent_arg, [config.agent])[config.agent]
        output = check_output_path(config.output, overwrite=config.overwrite, inputs=[config.image])
        image = restore_input(load_image(config.image), config.max_side)
        agent = make_agent(config.agent, **options)
        env_kwargs = {
            "metrics": ("tirqa", "niqe"),
            "max_steps": config.max_steps,
            "toolbox": config.toolbox,
        }
        env = TIREnv(reward="adaptive", **with_required_tools(env_kwargs, agent))
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(perception_line(image))
    tiled = restore.needs_tiles(image)
    planned = restore.plan_crop(image) if tiled else image
    if tiled:
        ph, pw = planned.shape[:2]
        print(
            f"planning on the centre {pw}x{ph} crop at native resolution, then applying the "
            f"plan to the whole {image.shape[1]}x{image.shape[0]} photo in tiles"
        )
    try:
        ep = rollout(
            env, agent, seed=0, options={"image": planned, "image_id": Path(config.image).name}
        )
    except TIRError as err:
        print(f"error: agent {config.agent!r} failed on {config.image}: {err}", file=sys.stderr)
        return 2
    print(
        "scores are no-reference estimates, before -> after each call: tirqa dB (the PSNR to "
        "the unseen clean photo it predicts, a rough guide: docs/perception.md) and NIQE "
        "(lower looks more natural)"
    )
    for i, r in enumerate(ep.records, 1):
        what = str(r.call) if r.call else "STOP"
        scores = "  ".join(
            f"{label} {r.metrics_before.get(name, math.nan):.2f} -> "
            f"{r.metrics_after.get(name, math.nan):.2f}"
            for name, label in (("tirqa", "tirqa dB"), ("niqe", "NIQE"))
        )
        print(f"{i}. {what:50s} {scores}" + (f"  error: {r.error}" if r.error else ""))
    result = env.current_image()
    if tiled:
        calls = restore.planned_calls(ep.records)
        try:
            result = restore.replay_tiled(image, calls, env.pool)
        except TIRError as err:
            print(f"error: {err}; nothing written", file=sys.stderr)
            return 2
        print(f"applied {len(calls)} call(s) to {restore.tile_count(image)} tiles")
    out = save_image(output, result)
    h, w = result.shape[:2]
    print(
        f"tool executions: {ep.tool_executions}, wall {ep.wall_time_s:.2f}s; wrote {out} ({w}x{h})"
    )
    return 0


def restore_input(image: np.ndarray, max_side: int) -> np.ndarray:
    """The photo ``tir restore`` works on: downscaled to ``max_side`` (0: full size).

    The aspect ratio is kept; a downscale that would leave a side under
    :data:`tir_env.images.MIN_SIDE` is refused rather than distorted.

    Raises:
        ImageTooSmallError: the downscaled photo would be too thin.
    """
    from tir_env.errors import ImageTooSmallError
    from tir_env.images import MIN_SIDE, resize_u8

    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (round(h * scale), round(w * scale))
    if min(size) < MIN_SIDE:
        raise ImageTooSmallError(
            f"--max-side {max_side} would make the {w}x{h} photo {size[1]}x{size[0]}, under "
            f"{MIN_SIDE} pixels on a side; use a larger --max-side or 0 (full size)"
        )
    print(f"resized {w}x{h} -> {size[1]}x{size[0]} (--max-side {max_side})")
    return resize_u8(image, size)


def perception_line(image: np.ndarray) -> str:
    """What perception sees in ``image``: present types with severity, predicted PSNR."""
    from tir_env import perception
    from tir_env.errors import TIRError

    if not perception.available():
        return "perceived: (no perception weights)"
    try:
        seen = perception.perceive_photo(image)
    except TIRError as err:
        return f"perceived: (perception failed: {err})"
    found = [f"{n} p={seen.probs[n]:.2f} severity={seen.severity[n]:.2f}" for n in seen.present]
    likeliest = max(seen.probs, key=lambda n: seen.probs[n])
    what = (
        ", ".join(found)
        if found
        else f"nothing (likeliest {likeliest} {seen.probs[likeliest]:.2f})"
    )
    return f"perceived: {what}; predicted quality {seen.psnr:.1f} dB PSNR (tirqa)"
