"""``tir restore``: restore users' photos with no reference (tiled at full size)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.commands.common import register_checkpoints
from benchmarks.commands.configs import RestoreConfig


def cmd_restore(config: RestoreConfig) -> int:
    """Restore users' photos with no reference; print each trajectory, save each result.

    Everything that can be checked is checked before any work: every input (a file, or a
    folder of photos), every output path (never an input, never an existing file without
    ``--overwrite``, a known extension, no two inputs onto one output) and ``--max-side``. One
    photo writes to a file (``-o``, default ``restored.png``); several, or a folder, to a
    folder (``-o``, default ``restored/``), one ``NAME.png`` each, written as soon as it is
    done. A photo that cannot be read or restored is reported and skipped, the others are
    still restored (exit status 1). The agent, the env and the tool pool are built once for
    all photos. Photos larger than :data:`benchmarks.restore.TILE_SIDE` are planned on a
    native-resolution crop and restored in tiles at full size (:mod:`benchmarks.restore`).
    """
    import logging

    from agents.base import make_agent
    from benchmarks.commands.bench import parse_agent_args
    from benchmarks.evaluate import with_required_tools
    from tir_env.env import TIREnv
    from tir_env.errors import TIRError

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
        jobs = restore_jobs(config.images, config.output, config.overwrite)
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
    if len(jobs) == 1:
        return restore_one(env, agent, *jobs[0], config)
    failed = []
    for i, (photo, output) in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {photo}")
        if restore_one(env, agent, photo, output, config, legend=i == 1):
            failed.append(str(photo))
    done = len(jobs) - len(failed)
    print(f"restored {done} of {len(jobs)} photos into {jobs[0][1].parent}")
    if failed:
        print(f"error: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def restore_jobs(
    images: Sequence[str], output: str | None, overwrite: bool
) -> list[tuple[Path, Path]]:
    """``(photo, output file)`` for each photo named by ``images`` (files or folders).

    One photo file writes to ``output`` (default ``restored.png``); several, or a folder, to
    ``output`` as a folder (default ``restored``), ``NAME.png`` each. Checked before any work.

    Raises:
        ImageReadError: an input does not exist, or a folder holds no photo.
        OutputPathError: an output path :func:`~tir_env.images.check_output_path` refuses,
            two photos of the same name, or an output folder that is a file.
        OutputExistsError: an output exists (without ``overwrite``) or is an input.
    """
    from tir_env.errors import ImageReadError, OutputPathError
    from tir_env.images import IMAGE_SUFFIXES, check_output_path

    photos: list[Path] = []
    for name in images:
        path = Path(name).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise ImageReadError(
                    f"folder {name} holds no photo ({', '.join(IMAGE_SUFFIXES)}); name files or "
                    "another folder"
                )
            photos.extend(found)
        elif path.exists():
            photos.append(path)
        else:
            raise ImageReadError(f"no such file or folder: {name}")
    if len(images) == 1 and len(photos) == 1 and not Path(images[0]).expanduser().is_dir():
        target = check_output_path(output or "restored.png", overwrite, inputs=photos)
        return [(photos[0], target)]
    folder = Path(output or "restored").expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(
            f"output {folder} is a file; with several photos -o names a folder (e.g. restored/)"
        )
    by_name: dict[str, Path] = {}
    jobs = []
    for photo in photos:
        target = folder / f"{photo.stem}.png"
        if target.name in by_name:
            raise OutputPathError(
                f"{by_name[target.name]} and {photo} would both be written to {target}; restore "
                "them in separate runs (each with its own -o)"
            )
        by_name[target.name] = photo
        jobs.append((photo, check_output_path(target, overwrite, inputs=photos)))
    return jobs


def restore_one(
    env: Any, agent: Any, photo: Path, output: Path, config: RestoreConfig, legend: bool = True
) -> int:
    """Restore ``photo`` with ``agent`` in ``env``, print what it did, write ``output``.

    ``legend`` prints what the scores mean before the trajectory (once per run is enough).

    Returns:
        0 when written, 2 when the photo could not be read or restored (said on stderr;
        nothing written).
    """
    from agents.base import rollout
    from benchmarks import restore
    from tir_env.errors import TIRError
    from tir_env.images import load_image, save_image

    try:
        image = restore_input(load_image(photo), config.max_side)
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
        ep = rollout(env, agent, seed=0, options={"image": planned, "image_id": photo.name})
    except TIRError as err:
        print(f"error: agent {config.agent!r} failed on {photo}: {err}", file=sys.stderr)
        return 2
    print_trajectory(ep.records, legend)
    result = env.current_image()
    if tiled:
        calls = restore.planned_calls(ep.records)
        try:
            result = restore.replay_tiled(image, calls, env.pool)
        except TIRError as err:
            print(f"error: {err}; nothing written", file=sys.stderr)
            return 2
        print(f"applied {len(calls)} call(s) to {restore.tile_count(image)} tiles")
    output.parent.mkdir(parents=True, exist_ok=True)
    out = save_image(output, result)
    h, w = result.shape[:2]
    print(
        f"tool executions: {ep.tool_executions}, wall {ep.wall_time_s:.2f}s; wrote {out} ({w}x{h})"
    )
    return 0


def print_trajectory(records: Sequence[Any], legend: bool = True) -> None:
    """Each step's call (or STOP) with the no-reference scores before and after it."""
    if legend:
        print(
            "scores are no-reference estimates, before -> after each call: tirqa dB (the PSNR "
            "to the unseen clean photo it predicts, a rough guide: docs/perception.md) and NIQE "
            "(lower looks more natural)"
        )
    for i, r in enumerate(records, 1):
        what = str(r.call) if r.call else "STOP"
        scores = "  ".join(
            f"{label} {r.metrics_before.get(name, math.nan):.2f} -> "
            f"{r.metrics_after.get(name, math.nan):.2f}"
            for name, label in (("tirqa", "tirqa dB"), ("niqe", "NIQE"))
        )
        print(f"{i}. {what:50s} {scores}" + (f"  error: {r.error}" if r.error else ""))


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
