"""``tir restore``: restore users' photos with no reference (tiled at full size)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.commands.common import register_checkpoints
from benchmarks.commands.configs import RestoreConfig
from benchmarks.commands.restore_paths import (
    before_after_path,
    check_before_after,
    one_file,
    restore_jobs,
)

if TYPE_CHECKING:  # the heavy imports wait until a command runs
    from agents.base import Agent
    from tir_env.env import TIREnv
    from tir_env.photo_metadata import PhotoMetadata
    from tir_env.types import StepRecord


def cmd_restore(config: RestoreConfig) -> int:
    """Restore users' photos with no reference; print each trajectory, save each result.

    Checked before any work: ``--max-side``'s and ``--max-steps``' ranges, the agent (one that
    needs the clean reference or the true degradations is refused: :func:`refuse_agent`),
    every input (a file, or a folder of photos), every output path (never an input, never an
    existing file without ``--overwrite`` or ``--skip-existing``, a known extension, no two
    inputs onto one output) and, for one photo, the photo itself (read, and downscaled when
    ``--max-side`` asks). One photo writes to a file (``-o``, default ``restored.png``);
    several, or a folder, to a folder (``-o``, default ``restored/``), one ``NAME.png`` each,
    written as soon as it is done. There a photo that cannot be read or restored is reported
    and skipped, the others are still restored (exit status 1). The agent, the env and the
    tool pool are built once for all photos. Photos larger than
    :data:`benchmarks.restore.TILE_SIDE` are planned on a native-resolution crop and restored
    in tiles at full size (:mod:`benchmarks.restore`). ``--fast`` runs each learned network
    once per call (:func:`tir_env.tools.learned.flips.single_pass`). Ctrl-C stops with exit
    status 130 and one line saying which results were written (each is written whole or not
    at all).
    """
    import logging

    logging.basicConfig(format="%(message)s")
    logging.getLogger("tir_env.images").setLevel(logging.INFO)  # 16-bit and alpha conversions
    problem = range_error(config)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    progress = RestoreProgress()
    try:
        if not config.fast:
            return run_restore(config, progress)
        from tir_env.tools.learned.flips import single_pass

        print("--fast: each learned network runs once per call, not on mirrored copies")
        with single_pass():
            return run_restore(config, progress)
    except KeyboardInterrupt:
        print(progress.interrupted(), file=sys.stderr)
        return 130


def range_error(config: RestoreConfig) -> str | None:
    """Why ``--max-side`` or ``--max-steps`` is out of range; ``None`` when both are fine."""
    if config.max_side < 0:
        return f"--max-side must be >= 0 (0: full size), got {config.max_side}"
    if config.max_steps < 1:
        return f"--max-steps must be >= 1, got {config.max_steps}"
    return None


@dataclass
class RestoreProgress:
    """What a run has done so far, for the line Ctrl-C prints.

    Attributes:
        jobs: Every ``(photo, output)`` the run will restore (empty until they are checked).
        written: The files written so far, in order: results, and ``--before-after`` strips.
        strips: Whether the run writes a before/after strip beside each result.
    """

    jobs: list[tuple[Path, Path]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    strips: bool = False

    def interrupted(self) -> str:
        """One line: interrupted, which results were written and which were not."""
        if not self.jobs:
            return "interrupted (Ctrl-C) before any photo was restored; nothing written"
        outputs = {out for _, out in self.jobs}
        results = [p for p in self.written if p in outputs]
        left = [out for _, out in self.jobs if out not in results]
        whole = "each result is written whole or not at all"
        if len(self.jobs) == 1:
            wrote = f"wrote {results[0]}" if results else f"{left[0]} not written"
            return f"interrupted (Ctrl-C): {wrote}{self._strips_said(results)} ({whole})"
        names = ", ".join(p.name for p in left[:5]) + (
            f" and {len(left) - 5} more" if len(left) > 5 else ""
        )
        return (
            f"interrupted (Ctrl-C): wrote {len(results)} of {len(self.jobs)} results into "
            f"{self.jobs[0][1].parent}{self._strips_said(results)}; not written: {names} "
            f"({whole}; rerun with --skip-existing to restore only those)"
        )

    def _strips_said(self, results: list[Path]) -> str:
        """With ``--before-after``: how many of the written results have their strip."""
        if not self.strips or not results:
            return ""
        strips = len(self.written) - len(results)
        if len(self.jobs) == 1:
            return "" if strips else ", its before/after strip not written"
        return f" ({strips} with their before/after strip)"


def run_restore(config: RestoreConfig, progress: RestoreProgress) -> int:
    """:func:`cmd_restore` once the numbers are checked; ``progress`` follows the work."""
    from agents.base import make_agent
    from benchmarks.evaluate import with_required_tools
    from tir_env.env import TIREnv
    from tir_env.errors import TIRError
    from tir_env.images import load_image

    try:
        refuse_agent(config.agent)  # before the checkpoints, the photo and the models load
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not register_checkpoints(config):
        return 2
    try:
        options = restore_agent_options(config.agent_arg, config.agent)
        jobs = restore_jobs(config.images, config.output, config.overwrite, config.skip_existing)
        if config.before_after:
            check_before_after(jobs, config.images)
        one = one_file(config.images)
        if not jobs:  # every result exists (--skip-existing): no model needs loading
            if not one:
                print("nothing to do: every result exists (--skip-existing)")
            return 0
        progress.jobs = list(jobs)
        progress.strips = config.before_after
        # one photo is read before the models load: a broken one fails at once
        first = restore_input(load_image(jobs[0][0]), config.max_side) if one else None
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
    if first is not None:
        return restore_one(env, agent, *jobs[0], config, image=first, written=progress.written)
    return restore_many(env, agent, jobs, config, progress.written)


def refuse_agent(name: str) -> None:
    """Refuse an agent that needs what a user's photo lacks, before any work.

    Such an agent would otherwise fail after the models load (``exhaustive-ref``) or stop at
    once and write an unchanged copy (``oracle``). The search agents declare their use of the
    clean image (``use_reference``), the others their use of the true degradations
    (:attr:`~agents.base.Agent.needs_true_degradations`).

    Raises:
        UnknownNameError: no agent of that name (with a did-you-mean).
        ConfigError: the agent needs the clean reference or the true degradations.
    """
    from agents.base import AGENTS
    from tir_env.errors import ConfigError

    factory = AGENTS.get(name)
    if getattr(factory, "use_reference", False) is True:
        needs = "scores against the clean reference image"
    elif getattr(factory, "needs_true_degradations", False) is True:
        needs = "is told the true degradations"
    else:
        return
    raise ConfigError(
        f"agent {name!r} {needs}, which a photo of yours does not have: it runs only on "
        "benchmark episodes (tir bench); choose a no-reference agent, e.g. --agent fixed "
        "(tir agents lists them)"
    )


#: Options ``tir restore`` gives an agent unless the user sets any of the named ones: a user's
#: photo is rarely hazed, while the suites the judge was fitted on haze a large share of
#: their episodes, so the whole-photo judge may add brightening but not dehazing (rule
#: d2277f4: an added dehazing took noisy val photos from 22 to 12 dB; rule 2b43866 for the
#: search agents). Agent -> (options, the user's options any of which leaves them out).
RESTORE_DEFAULTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "fixed": ({"whole_adds": ("dark",)}, ("whole_adds", "guard")),
    **{
        search: ({"judge_whole_adds": ("dark",)}, ("judge_whole_adds", "judge", "judge_whole"))
        for search in ("exhaustive", "greedy")
    },
    "ppo": ({"judge_whole_adds": ()}, ("judge_whole_adds", "judge", "judge_types")),
    "vlm": ({"judge_whole_adds": ("dark",)}, ("judge_whole_adds", "guard")),
}


def restore_agent_options(items: Sequence[str], agent: str) -> dict[str, Any]:
    """The ``--agent-arg`` options of ``agent``, typed by its ``Options``.

    Over :data:`RESTORE_DEFAULTS` where the user set none of the options they yield to.

    Raises:
        UnknownConfigFieldError: an item names another agent than ``--agent``, or a key the
            agent's options lack.
        ConfigValueError: a malformed item, or a value that does not fit its field's type.
    """
    from benchmarks.commands.bench import parse_agent_args, split_agent_args
    from tir_env.errors import UnknownConfigFieldError

    for name in split_agent_args(items):
        if name not in ("*", agent):
            raise UnknownConfigFieldError(
                f"--agent-arg names agent {name!r}, but --agent is {agent!r}; write "
                f"{agent}.KEY=VALUE or KEY=VALUE (or pass --agent {name})"
            )
    options = parse_agent_args(items, [agent])[agent]
    defaults, yielding_to = RESTORE_DEFAULTS.get(agent, ({}, ()))
    if any(key in options for key in yielding_to):
        return options
    return {**defaults, **options}


def restore_many(
    env: TIREnv,
    agent: Agent,
    jobs: Sequence[tuple[Path, Path]],
    config: RestoreConfig,
    written: list[Path] | None = None,
) -> int:
    """Restore every ``(photo, output)`` of ``jobs`` in turn; 1 if any failed, else 0.

    Each output written is appended to ``written`` as soon as it is.
    """
    print_legend()
    failed = []
    for i, (photo, output) in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] {photo}")
        if restore_one(env, agent, photo, output, config, legend=False, written=written):
            failed.append(str(photo))
    done = len(jobs) - len(failed)
    print(f"restored {done} of {len(jobs)} photos into {jobs[0][1].parent}")
    if failed:
        print(f"error: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def restore_one(
    env: TIREnv,
    agent: Agent,
    photo: Path,
    output: Path,
    config: RestoreConfig,
    image: np.ndarray | None = None,
    legend: bool = True,
    written: list[Path] | None = None,
) -> int:
    """Restore ``photo`` with ``agent`` in ``env``, print what it did, write ``output``.

    ``image`` is the photo already read (and downscaled); ``legend`` prints what the scores
    mean before the trajectory; ``written`` gets ``output`` appended once it is written.

    Returns:
        0 when written, 2 when the photo could not be read or restored (said on stderr;
        nothing written).
    """
    from agents.base import rollout
    from benchmarks import restore
    from tir_env.errors import TIRError
    from tir_env.images import load_image, save_image

    try:
        if image is None:
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
            f"planning on the centre {pw}x{ph} crop at native resolution (the scores below "
            "are the crop's), then applying the plan to the whole "
            f"{image.shape[1]}x{image.shape[0]} photo in tiles"
        )
    try:
        options = {"image": planned, "image_id": photo.name}
        if tiled:  # agents perceive the whole photo, as the perception line above read it
            options["photo"] = image
        ep = rollout(env, agent, seed=0, options=options)
    except TIRError as err:
        print(f"error: agent {config.agent!r} failed on {photo}: {err}", file=sys.stderr)
        return 2
    said = judge_line(getattr(agent, "judge_overruled", None))
    if said:
        print(said)
    if legend:
        print_legend()
    print_trajectory(ep.records)
    result = env.current_image()
    if tiled:
        calls = restore.planned_calls(ep.records)
        try:
            result = restore.replay_tiled(image, calls, env.pool)
        except TIRError as err:
            print(f"error: {err}; nothing written", file=sys.stderr)
            return 2
        print(f"applied {len(calls)} call(s) to {restore.tile_count(image)} tiles")
    h, w = result.shape[:2]
    metadata = result_metadata(photo, (h, w)) if config.keep_metadata else None
    out = save_image(output, result, metadata)  # atomically; makes the folder
    if written is not None:
        written.append(out)
    kept = f"; kept its {metadata.describe()}" if metadata and not metadata.empty else ""
    print(
        f"tool executions: {ep.tool_executions}, wall {ep.wall_time_s:.2f}s; wrote {out} "
        f"({w}x{h}{kept})"
    )
    if config.before_after:
        calls = restore.planned_calls(ep.records)
        write_before_after(image, result, calls, out, config, written, metadata)
    return 0


def result_metadata(photo: Path, size: tuple[int, int]) -> PhotoMetadata:
    """What the result of ``photo`` keeps of it (:mod:`tir_env.photo_metadata`).

    Its RGB colour profile and its EXIF, upright and with the result's ``size`` (H, W).
    """
    from tir_env.photo_metadata import read_metadata, resized

    return resized(read_metadata(photo), size)


def write_before_after(
    photo: np.ndarray,
    result: np.ndarray,
    calls: Sequence[Any],
    output: Path,
    config: RestoreConfig,
    written: list[Path] | None = None,
    metadata: PhotoMetadata | None = None,
) -> None:
    """Write ``OUTPUT-STEM_before_after.png`` beside the result (``--before-after``).

    An existing file is kept unless ``--overwrite`` (said, not an error: the result is written).
    ``written``: where to note the strip once it is written (Ctrl-C's line reads it).
    ``metadata``: the photo's; the strip keeps its colour profile (its pixels are the photo's),
    not its EXIF (the strip is not the photo).
    """
    from benchmarks import restore
    from tir_env.images import save_image
    from tir_env.photo_metadata import PhotoMetadata

    path = before_after_path(output)
    if path.exists() and not config.overwrite:
        print(f"note: {path} exists, not replaced (--overwrite replaces it)")
        return
    profile = PhotoMetadata(icc_profile=metadata.icc_profile) if metadata else None
    save_image(path, restore.before_after(photo, result, calls), profile)
    if written is not None:
        written.append(path)
    print(f"wrote {path} (before | after)")


def print_legend() -> None:
    """What the scores of a trajectory mean."""
    print(
        "scores are no-reference estimates, before -> after each call: tirqa dB (the PSNR "
        "to the unseen clean photo it predicts, a rough guide: docs/perception.md) and NIQE "
        "(lower looks more natural)"
    )


def print_trajectory(records: Sequence[StepRecord]) -> None:
    """Each step's call (or STOP) with the no-reference scores before and after it."""
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


def judge_line(overruled: dict[str, list[str]] | None) -> str | None:
    """What the agent's judge changed in the perception line's reading (``None``: nothing).

    ``overruled``: the types it ``added`` and ``dropped`` (the ``judge_overruled`` of
    ``fixed``, ``exhaustive`` and ``greedy``).
    """
    if not overruled:
        return None
    parts = []
    if overruled["added"]:
        parts.append(f"added {', '.join(overruled['added'])}")
    if overruled["dropped"]:
        parts.append(f"ruled out {', '.join(overruled['dropped'])}")
    if not parts:
        return None
    return (
        "judge (darkness and haze, read from the plan's results with and without each): "
        + "; ".join(parts)
    )


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
    from tir_env import photo_dark, photo_thresholds
    from tir_env.noise_level import noise_level

    def described(name: str) -> str:
        if name == "noise" and photo_thresholds.noise_by_level(seen.thresholds):
            # the network itself read the photo as clean: say where the noise was read
            return (
                f"noise p={seen.probs['noise']:.2f}, read in the flattest blocks "
                f"(level {noise_level(image):.2f}: a phone's noise the network misses)"
            )
        if name == "dark" and seen.thresholds["dark"] < perception.thresholds()["dark"]:
            # under the network's threshold: the whole-photo darkness reader read it
            reader = photo_dark.darkened(image, seen.probs["dark"])
            return (
                f"dark p={seen.probs['dark']:.2f}, read from the brightness histogram "
                f"(photo-dark reader {reader:.2f}) severity={seen.severity['dark']:.2f}"
            )
        return f"{name} p={seen.probs[name]:.2f} severity={seen.severity[name]:.2f}"

    found = [described(n) for n in seen.present]
    likeliest = max(seen.probs, key=lambda n: seen.probs[n])
    what = (
        ", ".join(found)
        if found
        else f"nothing (likeliest {likeliest} {seen.probs[likeliest]:.2f})"
    )
    # the tirqa metric's PSNR (the trees when shipped), as the steps' tirqa column reads it
    from tir_env.images import u8_to_batch

    size = (int(image.shape[0]), int(image.shape[1]))
    psnr = float(perception.quality_psnr(perception.prepare(u8_to_batch(image), size))[0])
    return f"perceived: {what}; predicted quality {psnr:.1f} dB PSNR (tirqa)"
