"""The ``tir`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tir_env.degradations.depth import DepthSource
    from tir_env.weights_manifest import Manifest, WeightEntry

DEMO_COMBOS: tuple[tuple[str, ...], ...] = (
    ("dark", "noise"),
    ("noise", "jpeg"),
    ("motion_blur", "low_resolution"),
    ("rain", "haze"),
)


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: a quick leaderboard of every available agent on the bundled test photos."""
    import torch

    from agents.base import agent_names, make_agent
    from benchmarks.evaluate import EpisodeSpec, evaluate, write_jsonl
    from benchmarks.leaderboard import write_leaderboard
    from benchmarks.report import demo_strip, summary_table
    from tir_env import data

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = Path(args.out)
    ids = data.bundled("test").ids
    specs = [
        EpisodeSpec(i, c, seed) for seed in range(args.seeds) for i in ids for c in DEMO_COMBOS
    ]
    env_kwargs = dict(
        images="test",
        patch_size=args.patch_size,
        obs_size=64,
        max_steps=args.max_steps,
        metrics=("psnr", "ssim", "niqe"),
    )
    agents = args.agents.split(",") if args.agents else agent_names()
    records, ran, failed = [], [], []
    for name in agents:
        print(f"running {name} on {len(specs)} episodes ...", flush=True)
        try:
            agent = make_agent(name)
            records += evaluate(
                name, specs, env_kwargs, suite="demo", images_dir=out / "images", agent=agent
            )
        except Exception as err:  # noqa: BLE001 - every agent is tried; failures reported below
            if not _missing_weights(err):
                failed.append(f"agent {name!r} failed: {type(err).__name__}: {err}")
                continue
            print(f"skipped: missing weights: agent {name!r}: {err}")
            continue
        ran.append(name)
    if not records:
        for line in failed or ["no agent ran (every one was skipped)"]:
            print(f"error: {line}", file=sys.stderr)
        return 1
    write_jsonl(out / "episodes.jsonl", records)
    paths = write_leaderboard(out, command="tir demo")
    table = summary_table(records)
    (out / "summary.md").write_text(table + "\n")
    picks = [
        s
        for k, s in enumerate(specs[: len(ids) * len(DEMO_COMBOS)])
        if k % (len(DEMO_COMBOS) + 1) == 0
    ]
    strip = demo_strip(out / "images", ran, picks)
    print((out / "leaderboard.md").read_text())
    print(f"per combination: {out / 'summary.md'}")
    print("wrote " + ", ".join(str(p) for p in [*paths, out / "episodes.jsonl", strip]))
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    return 1 if failed else 0


def _missing_weights(err: BaseException) -> bool:
    """The documented skip of ``tir demo``: the agent's weights, model or server are missing."""
    from tir_env.errors import AgentUnavailableError, MetricUnavailableError

    return isinstance(err, FileNotFoundError | MetricUnavailableError | AgentUnavailableError)


def _suite_pairs(folder: str, suite: Any) -> list[Any]:
    """The pairs under ``folder`` that belong to ``suite`` (all of them if unlabelled).

    Raises:
        DataError: bad folder layout (see :mod:`tir_env.pairs`) or no pair of this suite.
    """
    from tir_env.errors import DataError
    from tir_env.pairs import find_pairs

    found = find_pairs(folder)
    chosen = [p for p in found if not p.degradations or p.degradations in suite.combos]
    if not chosen:
        combos = sorted({"+".join(p.degradations) for p in found})
        raise DataError(
            f"none of the {len(found)} pairs under {folder} is a combination of suite "
            f"{suite.base_name!r} (found {combos}); pick the suite of those combinations"
        )
    return chosen


def _patch_size(text: str) -> int:
    """A crop side for argparse: a multiple of 4, at least 8."""
    value = int(text)
    if value < 8 or value % 4:
        raise argparse.ArgumentTypeError(f"--patch-size must be a multiple of 4, >= 8: {text}")
    return value


def cmd_bench(args: argparse.Namespace) -> int:
    """Run agents on a suite; append one JSONL per agent (resumable); write the leaderboard.

    Re-running into the same ``--out`` skips the episodes already recorded there; a re-run
    whose configuration differs (suite version, images, env or agent settings) is refused
    before any episode runs. ``--limit`` is not part of the configuration: a larger one adds
    episodes, a smaller one runs nothing new.
    """
    from agents.base import agent_options
    from benchmarks.evaluate import (
        check_same_episodes,
        evaluate,
        evaluate_pairs,
        pair_spec,
        resume_records,
        spec_of,
    )
    from benchmarks.suites import get_suite
    from tir_env.errors import TIRError
    from tir_env.tools.presets import toolbox_tools

    if not _register_checkpoints(args):
        return 2
    suite = get_suite(args.suite)
    if args.pairs and (args.images or args.whole or args.patch_size):
        print("error: --pairs brings its own images; drop --images/--whole/--patch-size")
        return 2
    if args.whole or args.patch_size:
        suite = suite.at_size(None if args.whole else args.patch_size)
    images = args.images or "test"
    specs = suite.episodes(images, limit=args.limit)
    out = Path(args.out)
    agent_kwargs = _agent_kwargs(args.agent_arg)
    env_kwargs = suite.env_kwargs(images)
    # Another toolbox is another entry: label it, so rows and files do not collide.
    other = args.toolbox and args.toolbox != env_kwargs.get("toolbox", "classical")
    if args.toolbox:
        env_kwargs["toolbox"] = args.toolbox
    command = "tir " + shlex.join(getattr(args, "argv", None) or sys.argv[1:])
    plans = []
    try:
        toolbox_tools(env_kwargs.get("toolbox", "classical"))
        if args.depth != "proxy":
            env_kwargs["depth"] = _depth_source(args)
        pairs = _suite_pairs(args.pairs, suite) if args.pairs else None
        if pairs is not None:
            suite = replace(suite, name=f"{suite.base_name}@pairs", patch_size=None)
            specs = [pair_spec(p) for p in pairs]
            images = f"pairs:{Path(args.pairs).expanduser().resolve()}"
        for agent in args.agents.split(","):  # every refusal comes before any episode runs
            label = f"{agent}@{args.toolbox}" if other else agent
            kwargs = {**agent_kwargs.get("*", {}), **agent_kwargs.get(agent, {})}
            agent_options(agent, kwargs)  # a mistyped option fails here, parsed by its type
            run = _bench_run(args, suite, images, env_kwargs, label, kwargs)
            path = out / f"{suite.name}__{label}.jsonl"
            siblings = [p for p in sorted(out.glob(f"{suite.name}__*.jsonl")) if p != path]
            check_same_episodes(siblings, run)
            done = {spec_of(r) for r in resume_records(path, run)}
            plans.append((agent, label, kwargs, run, path, done))
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    skipped = 0
    for agent, label, kwargs, run, path, done in plans:
        bad: list[str] = []
        sink = _bench_sink(path, {"agent": label, "command": command, "run": run}, args.toolbox)
        try:
            if pairs is not None:
                records = evaluate_pairs(
                    agent,
                    pairs,
                    env_kwargs,
                    suite.name,
                    suite.version,
                    agent_kwargs=kwargs,
                    done=done,
                    sink=sink,
                )
            else:
                records = evaluate(
                    agent,
                    specs,
                    env_kwargs,
                    suite.name,
                    suite.version,
                    images_dir=out / "images" / suite.name / (args.toolbox if other else "")
                    if args.save_images
                    else None,
                    agent_kwargs=kwargs,
                    done=done,
                    sink=sink,
                    on_skip=lambda spec, _: bad.append(spec.image_id),  # noqa: B023 - called at once
                    strict=args.strict,
                )
        except (TIRError, OSError) as err:
            print(
                f"error: agent {agent!r} on suite {suite.name!r}: {err} (the episodes "
                f"recorded so far are kept in {path}; re-run to resume)",
                file=sys.stderr,
            )
            return 2
        kept = sum(1 for s in specs if s in done)
        line = f"{suite.name} / {label}: {len(records)} episodes run, {kept} already in {path}"
        if bad:
            line += f", {len(bad)} skipped (unreadable images: {', '.join(sorted(set(bad)))})"
        print(line)
        skipped += len(bad)
    return _bench_leaderboard(out, skipped)


def _bench_run(
    args: argparse.Namespace,
    suite: Any,
    images: str,
    env_kwargs: dict[str, Any],
    label: str,
    agent_kwargs: dict[str, str],
) -> dict[str, Any]:
    """What defines a bench's records (stored in each; a re-run must match it to resume)."""
    import json

    folder = Path(images).expanduser()
    env = {k: v for k, v in env_kwargs.items() if k not in ("images", "toolbox")}
    run = {
        "suite": suite.name,
        "suite_version": suite.version,
        "images": str(folder.resolve()) if folder.is_dir() else images,
        "env": env,
        "agent": label,
        "agent_kwargs": agent_kwargs,
        "toolbox": env_kwargs.get("toolbox", "classical"),
        "register": list(args.register or []),
        "config": list(args.config or []),
    }
    return dict(json.loads(json.dumps(run, sort_keys=True, default=str)))


def _bench_sink(
    path: Path, fields: dict[str, Any], toolbox: str | None
) -> Callable[[dict[str, Any]], None]:
    """Label a record as this run's and append it to ``path`` at once."""
    from benchmarks.evaluate import append_jsonl

    def sink(record: dict[str, Any]) -> None:
        record.update(fields)
        if toolbox:
            record["toolbox"] = toolbox
        append_jsonl(path, record)

    return sink


def _bench_leaderboard(out: Path, skipped: int) -> int:
    """The leaderboard of every record under ``out``, and the count of skipped episodes."""
    from benchmarks.leaderboard import write_leaderboard
    from tir_env.errors import NoRecordsError

    if skipped:
        print(
            f"skipped {skipped} episodes whose image could not be read "
            "(warnings above; --strict stops instead)"
        )
    try:
        # Tables cover every record under ``out``, not just this run: the header lists each
        # record file's command, not argv.
        paths = write_leaderboard(out)
    except NoRecordsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((out / "leaderboard.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Tables and plots from the JSONL files under a folder."""
    from benchmarks.leaderboard import write_leaderboard
    from tir_env.errors import NoRecordsError

    out = Path(args.out or args.dir)
    try:
        write_leaderboard(Path(args.dir), out)
    except NoRecordsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((out / "leaderboard.md").read_text())
    return 0


def _register_checkpoints(args: argparse.Namespace) -> bool:
    """Register ``--config`` files and ``--register`` checkpoints; False (and why) on error."""
    from tir_env.errors import TIRError
    from tir_env.tools.pretrained import parse_register, register_checkpoint, register_from_toml

    try:
        for path in args.config or []:
            register_from_toml(path)
        for item in args.register or []:
            path, task, name = parse_register(item)
            register_checkpoint(path, task, name, check=True)
    except (TIRError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return False
    return True


def _add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    """``--register`` and ``--config``: the user's checkpoints, as pretrained tools."""
    parser.add_argument(
        "--register",
        action="append",
        metavar="PATH:TASK[:NAME]",
        help="load a checkpoint with spandrel and add it as a pretrained tool",
    )
    parser.add_argument(
        "--config", action="append", metavar="TOML", help="register the [[tool]] entries of a file"
    )


def _add_depth_args(parser: argparse.ArgumentParser) -> None:
    """``--depth``, ``--depth-missing``, ``--depth-cache``: where haze takes its depth from."""
    parser.add_argument(
        "--depth",
        default="proxy",
        metavar="SPEC",
        help="haze depth: proxy (default), folder:DIR (maps named like the clean images: "
        "STEM.npy, STEM.png, STEM/predict_depth.mat) or model:DIR (a local transformers "
        "depth model, e.g. Depth Anything); see docs/haze.md",
    )
    parser.add_argument(
        "--depth-missing",
        default="error",
        choices=("error", "proxy"),
        help="folder: an image without a depth map is an error (default) or uses the proxy",
    )
    parser.add_argument(
        "--depth-cache", default=None, metavar="DIR", help="model: also cache depth maps here"
    )


def _depth_source(args: argparse.Namespace) -> DepthSource:
    from dataclasses import replace

    from tir_env.degradations.depth import DepthSource

    cache = Path(args.depth_cache).expanduser() if args.depth_cache else None
    return replace(DepthSource.parse(args.depth), missing=args.depth_missing, cache_dir=cache)


def _add_toolbox_arg(parser: argparse.ArgumentParser, default: str | None) -> None:
    from typing import get_args

    from tir_env.types import ToolboxPreset

    parser.add_argument(
        "--toolbox",
        default=default,
        choices=get_args(ToolboxPreset),
        help="tool preset: classical, learned, full (with registered checkpoints) or agenticir"
        + ("" if default else " (default: the suite's)"),
    )


def cmd_tools(args: argparse.Namespace) -> int:
    """List every registered tool with its task, kind, parameters and availability."""
    from tir_env.tools.base import TOOLS, tool_info, tool_names
    from tir_env.tools.presets import agenticir_status

    if not _register_checkpoints(args):
        return 2
    print("| tool | task | kind | parameters | available |\n|---|---|---|---|---|")
    for name in tool_names():
        try:
            info = tool_info(name)
            check = getattr(TOOLS.get(name), "availability", None)
            problem = check() if callable(check) else None
        except Exception as err:  # noqa: BLE001 - report, don't crash the listing
            print(f"| {name} | ? | ? | ? | no: {err} |")
            continue
        params = ", ".join(
            f"{k} [{p.low:g}, {p.high:g}] = {p.default:g}" for k, p in info.params.items()
        )
        ok = "yes" if problem is None else f"no: {problem}"
        print(f"| {name} | {info.task} | {info.kind} | {params or '-'} | {ok} |")
    if args.preset == "agenticir":
        status = agenticir_status()
        print(f"\nagenticir preset: {len(status.available)} tools available")
        if status.missing:
            print(status.message())
    return 0


def cmd_train_tools(args: argparse.Namespace) -> int:
    """Train the learned tools, the all-in-one network and the perception model."""
    from benchmarks.train_tools import main as train_main

    return 0 if train_main(args.train_args) else 1


def cmd_train(args: argparse.Namespace) -> int:
    """Train with a one-file recipe (``tir train ppo|ppo-bc|sft|grpo|perception --help``).

    A refused run (a folder holding another run, a ``--resume`` with another config, no usable
    checkpoint) prints its named error and exits 2.
    """
    from tir_env.errors import TIRError

    try:
        return _train_recipe(args)
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _train_recipe(args: argparse.Namespace) -> int:
    """Run the recipe ``args.algo`` names."""
    import logging

    if args.algo == "perception":
        from benchmarks.train_perception import main as train_perception
        from benchmarks.train_perception import parse_args

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        train_perception(parse_args(args.train_args))
        return 0
    if args.algo == "ppo-bc":
        from agents.ppo.bc import cli as train_bc

        return train_bc(args.train_args)
    if args.algo != "ppo":
        return cmd_train_vlm(args)
    from agents.ppo.train import main as train_ppo

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train_ppo(args.train_args)
    return 0


def cmd_experts(args: argparse.Namespace) -> int:
    """The expert trajectory dataset: ``tir experts collect [options]`` (agents/experts.py)."""
    from agents.experts import cli

    return cli(args.experts_args)


def cmd_train_vlm(args: argparse.Namespace) -> int:
    """Train the VLM agent: ``tir train sft|grpo [options]`` (``grpo --algo ppo`` for PPO)."""
    if args.algo == "sft":
        from agents.vlm.sft import cli as recipe
    else:
        from agents.vlm.grpo import cli as recipe
    return recipe(args.train_args)


def cmd_suites(args: argparse.Namespace) -> int:
    """List the benchmark suites."""
    from benchmarks.suites import SUITES

    for suite in SUITES.values():
        combos = "; ".join("+".join(c) for c in suite.combos)
        print(f"{suite.name:20s} v{suite.version}  {suite.description}\n{'':24s}{combos}")
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    """List the registered agents (plug-ins included)."""
    from agents.base import AGENTS, agent_names

    for name in agent_names():
        try:
            factory = AGENTS.get(name)
        except Exception as err:  # noqa: BLE001 - a broken plug-in must not hide the others
            print(f"{name:16s} (cannot load: {err})")
            continue
        print(f"{name:16s} {getattr(factory, 'description', '')}")
        options = getattr(factory, "Options", None)
        if getattr(args, "options", False) and isinstance(options, type):
            for line in _option_lines(name, options):
                print(line)
    return 0


def _option_lines(agent: str, options: type) -> list[str]:
    """``--agent-arg`` help of one agent: ``agent.key=default`` and the field's doc."""
    from tir_env.config_cli import field_docs

    if not dataclasses.is_dataclass(options):
        return []
    docs = field_docs(options)
    keys = [(f"{agent}.{f.name}={f.default!s}", f.name) for f in dataclasses.fields(options)]
    width = max(len(k) for k, _ in keys)
    return [f"    {key:<{width}}  {docs.get(name, '')}" for key, name in keys]


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a user's photo with no reference; print the trajectory, save the result.

    Everything that can be checked is checked before any work: the output path (never the
    input, never an existing file without ``--overwrite``, a known extension), ``--max-side``
    and the photo itself. Photos larger than :data:`benchmarks.restore.TILE_SIDE` are planned
    on a native-resolution crop and restored in tiles at full size (:mod:`benchmarks.restore`).
    """
    import logging

    from agents.base import make_agent, rollout
    from benchmarks import restore
    from benchmarks.evaluate import with_required_tools
    from tir_env.env import TIREnv
    from tir_env.errors import TIRError
    from tir_env.images import check_output_path, load_image, save_image

    logging.basicConfig(format="%(message)s")
    logging.getLogger("tir_env.images").setLevel(logging.INFO)  # 16-bit and alpha conversions
    if args.max_side < 0:
        print(
            f"error: --max-side must be >= 0 (0: full size), got {args.max_side}", file=sys.stderr
        )
        return 2
    if not _register_checkpoints(args):
        return 2
    try:
        output = check_output_path(args.output, overwrite=args.overwrite, inputs=[args.image])
        image = _restore_input(load_image(args.image), args.max_side)
        agent = make_agent(args.agent)
        env_kwargs = {
            "metrics": ("tirqa", "niqe"),
            "max_steps": args.max_steps,
            "toolbox": args.toolbox,
        }
        env = TIREnv(reward="adaptive", **with_required_tools(env_kwargs, agent))
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(_perception_line(image))
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
            env, agent, seed=0, options={"image": planned, "image_id": Path(args.image).name}
        )
    except TIRError as err:
        print(f"error: agent {args.agent!r} failed on {args.image}: {err}", file=sys.stderr)
        return 2
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


def _restore_input(image: np.ndarray, max_side: int) -> np.ndarray:
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


def cmd_data_photos(args: argparse.Namespace) -> int:
    """Build (or ``--verify``) the photo corpus (:mod:`benchmarks.photos`)."""
    import time

    from benchmarks import photos
    from tir_env import corpus
    from tir_env.errors import DataError

    out = Path(args.out).expanduser() if args.out else corpus.default_root()
    start = time.perf_counter()
    try:
        if args.verify:
            problems = corpus.verify(out)
            count = len(corpus.read_manifest(out)["photos"])
        else:
            manifest = photos.build(
                out,
                debs=args.debs,
                only_python=args.only_python,
                force=args.force,
                command=shlex.join(["tir", *args.argv]),
            )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.verify:
        for line in problems:
            print(line)
        print(f"{out}: {count - len(problems)}/{count} photos intact")
        return 1 if problems else 0
    total = sum(p["bytes"] for p in manifest["photos"])
    print(
        f"wrote {len(manifest['photos'])} photos ({total / 1e6:.1f} MB) and manifest.json to "
        f"{out} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def cmd_speed(args: argparse.Namespace) -> int:
    """``tir speed``: measure, write the JSON and the docs section, print the summary."""
    import logging

    from benchmarks.throughput import config_from_args, run, section

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    words = list(args.argv)
    report = run(config_from_args(args, words[1:] if words[:1] == ["speed"] else words))
    print(section(report))
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    """``tir weights list | fetch | verify``: the published checkpoints of the manifest."""
    from tir_env import downloads
    from tir_env.errors import TIRError
    from tir_env.weights_manifest import load_manifest

    try:
        manifest = load_manifest(args.manifest)
        root = downloads.weights_root(args.weights_dir)
        if args.action == "list":
            print(_weights_table(manifest, root))
            return 0
        if args.action == "verify":
            found = downloads.verify(args.names, manifest=manifest, root=root)
            for r in found:
                print(f"{r.entry.name:22s} {r.status:8s} {r.detail}")
            print(f"{root}: {sum(r.status in ('ok', 'pinned') for r in found)}/{len(found)} ok")
            return 0 if all(r.status in ("ok", "pinned") for r in found) else 1
        entries = (
            downloads.toolbox_entries(args.toolbox, manifest)
            if args.toolbox
            else manifest.select(args.names)
        )
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return _fetch_entries(entries, root, args)


def _weights_table(manifest: Manifest, root: Path) -> str:
    """Every manifest file and every AgenticIR slot, with size, licence and whether present."""
    from tir_env.tools.base import tool_names
    from tir_env.tools.presets import AGENTICIR_TOOLBOX

    entries = {e.name: e for e in manifest.entries}
    slots = {n: task for task, names in AGENTICIR_TOOLBOX.items() for n in names}
    builtin = set(tool_names(kinds=("classical",)))
    rows = ["name | for | size | licence | NC | sha256 | here", "---|---|---|---|---|---|---"]
    for name in [*slots, *(n for n in entries if n not in slots)]:
        e = entries.get(name)
        if e is None:
            what = "built in (classical)" if name in builtin else "no downloadable checkpoint"
            rows.append(f"{name} | {slots[name]} | - | - | - | - | {what}")
            continue
        here = "yes" if e.path(root).is_file() else ("no" if e.direct else "no (manual)")
        use = e.task if e.kind == "tool" else "metric " + ",".join(e.metrics)
        nc = "yes" if e.noncommercial else "no"
        rows.append(f"{e.name} | {use} | {e.size} | {e.licence} | {nc} | {e.hash_kind} | {here}")
    return "\n".join(rows) + f"\nweights folder: {root}"


def _fetch_entries(entries: Sequence[WeightEntry], root: Path, args: argparse.Namespace) -> int:
    """Print each licence, refuse unaccepted non-commercial ones, then fetch one by one."""
    from tir_env import downloads
    from tir_env.errors import TIRError

    config = downloads.FetchConfig(
        base_url=args.base_url,
        offline=args.offline,
        accept_noncommercial=args.accept_noncommercial,
        timeout=args.timeout,
        deadline=args.deadline,
        retries=args.retries,
        progress=not args.no_progress,
    )
    for e in entries:
        nc = ", NON-COMMERCIAL" if e.noncommercial else ""
        print(f"{e.name}: {e.file} ({e.size}), licence: {e.licence}{nc}")
    failed = 0
    for e in entries:
        try:
            r = downloads.fetch_entry(e, root, config)
        except TIRError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        pin = " (no full published hash: pinned now)" if r.pinned else ""
        print(f"{r.entry.name}: {r.status} {r.path} sha256 {r.sha256}{pin}")
    print(f"{len(entries) - failed}/{len(entries)} files in place under {root}")
    return 1 if failed else 0


def _add_weights_parser(sub: argparse._SubParsersAction) -> None:
    """``tir weights list | fetch NAME... | fetch --toolbox agenticir | verify [NAME...]``."""
    weights = sub.add_parser("weights", help="list, fetch and verify published checkpoints")
    weights.add_argument("action", choices=["list", "fetch", "verify"])
    weights.add_argument("names", nargs="*", help="manifest names (see `tir weights list`)")
    weights.add_argument("--toolbox", choices=["agenticir"], help="fetch every slot's file")
    weights.add_argument("--weights-dir", default=None, help="default: $TIR_WEIGHTS_DIR")
    weights.add_argument("--manifest", default=None, help="default: the shipped manifest")
    weights.add_argument("--base-url", default=None, help="mirror: fetch BASE_URL/<file>")
    weights.add_argument("--offline", action="store_true", help="refuse to download")
    weights.add_argument(
        "--accept-noncommercial", action="store_true", help="accept non-commercial licences"
    )
    weights.add_argument("--timeout", type=float, default=30.0, help="connect/read timeout, s")
    weights.add_argument("--deadline", type=float, default=3600.0, help="per-file limit, s")
    weights.add_argument("--retries", type=int, default=3, help="resumes after a cut")
    weights.add_argument("--no-progress", action="store_true", help="no progress bar")
    weights.set_defaults(func=cmd_weights)


def _perception_line(image: np.ndarray) -> str:
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


def _agent_kwargs(items: Sequence[str] | None) -> dict[str, dict[str, str]]:
    """``agent.key=value`` (or ``key=value`` for every agent) -> per-agent kwargs."""
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        agent, _, field = key.rpartition(".")
        out.setdefault(agent or "*", {})[field] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tir`` and its subcommands."""
    parser = argparse.ArgumentParser(prog="tir", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="quick leaderboard of every agent on the bundled photos")
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--agents", default="", help="comma-separated agents (default: all)")
    demo.add_argument("--seeds", type=int, default=1, help="episodes per image and combination")
    demo.add_argument("--patch-size", type=int, default=96)
    demo.add_argument("--max-steps", type=int, default=3)
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="run agents on a benchmark suite")
    bench.add_argument("suite", help="suite name (see `tir suites`)")
    bench.add_argument("--agents", default="random,fixed,oracle", help="comma-separated agents")
    bench.add_argument(
        "--images", default=None, help="folder of clean images (default: bundled test)"
    )
    bench.add_argument("--limit", type=int, default=None, help="use only the first N images")
    bench.add_argument(
        "--pairs",
        default=None,
        help="evaluate on given degraded/clean pairs in DIR (AgenticIR's HQ/ + LQ/d*/COMBO/ "
        "layout, or clean/ + degraded/; see tir_env/pairs.py) instead of synthesising inputs",
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument(
        "--whole",
        action="store_true",
        help="degrade and score whole photos (any size) instead of crops (suite name SUITE@full)",
    )
    size.add_argument(
        "--patch-size", type=_patch_size, default=None, help="crop side (suite name SUITE@N)"
    )
    bench.add_argument(
        "--out",
        default="runs/bench",
        help="output folder; a re-run into it resumes (skips recorded episodes) or refuses",
    )
    bench.add_argument("--agent-arg", action="append", help="agent.key=value passed to an agent")
    bench.add_argument("--save-images", action="store_true", help="save every output image")
    bench.add_argument(
        "--strict",
        action="store_true",
        help="stop at an unreadable image (default: skip its episodes with a warning)",
    )
    _add_toolbox_arg(bench, None)
    _add_depth_args(bench)
    _add_checkpoint_args(bench)
    bench.set_defaults(func=cmd_bench)

    board = sub.add_parser("leaderboard", help="tables and plots from JSONL records")
    board.add_argument("dir", help="folder with *.jsonl records")
    board.add_argument("--out", default=None, help="output folder (default: DIR)")
    board.set_defaults(func=cmd_leaderboard)

    restore = sub.add_parser("restore", help="restore your own photo (no reference)")
    restore.add_argument("image", help="photo file (png, jpg, webp, bmp, tif, gif)")
    restore.add_argument(
        "--agent",
        default="fixed",
        help="agent name (see `tir agents`); default: fixed, the best no-reference agent on whole "
        "photos in docs/agents.md",
    )
    restore.add_argument(
        "-o", "--output", default="restored.png", help="output file (png, jpg, webp, bmp, tif)"
    )
    restore.add_argument(
        "--overwrite", action="store_true", help="replace an existing output (never the input)"
    )
    restore.add_argument("--max-steps", type=int, default=4)
    restore.add_argument(
        "--max-side",
        type=int,
        default=0,
        help="downscale photos larger than this first (default 0: full size, in tiles)",
    )
    _add_toolbox_arg(restore, "classical")
    _add_checkpoint_args(restore)
    restore.set_defaults(func=cmd_restore)

    tools = sub.add_parser("tools", help="list the tools (and register checkpoints)")
    _add_checkpoint_args(tools)
    tools.add_argument(
        "--preset", choices=["agenticir"], help="also say which preset tools are missing"
    )
    tools.set_defaults(func=cmd_tools)

    train = sub.add_parser(
        "train-tools",
        help="train the learned tools and the perception model (benchmarks/train_tools.py)",
        add_help=False,
    )
    train.add_argument("train_args", nargs=argparse.REMAINDER, help="options of train_tools")
    train.set_defaults(func=cmd_train_tools)

    train_algo = sub.add_parser(
        "train",
        help="train an agent (ppo: agents/ppo/train.py; ppo-bc: agents/ppo/bc.py; sft, grpo: VLM)",
        add_help=False,
    )
    train_algo.add_argument(
        "algo", choices=["ppo", "ppo-bc", "sft", "grpo", "perception"], help="which recipe"
    )
    train_algo.add_argument("train_args", nargs=argparse.REMAINDER, help="options of the recipe")
    train_algo.set_defaults(func=cmd_train)

    experts = sub.add_parser(
        "experts",
        help="expert trajectory dataset for SFT and PPO-BC (agents/experts.py)",
        add_help=False,
    )
    experts.add_argument("action", choices=["collect"], help="what to do")
    experts.add_argument("experts_args", nargs=argparse.REMAINDER, help="options (--help)")
    experts.set_defaults(func=cmd_experts)

    data = sub.add_parser("data", help="build data sets (the photo corpus)")
    photos = data.add_subparsers(dest="dataset", required=True).add_parser(
        "photos", help="build the real-photo corpus from the reviewed list (docs/data.md)"
    )
    photos.add_argument(
        "--out", default=None, help="corpus folder (default: $TIR_PHOTOS or ~/.cache/tir/photos)"
    )
    photos.add_argument(
        "--debs",
        default=None,
        help="folder of .deb files to use (and to "
        "download missing ones into) instead of a scratch folder",
    )
    photos.add_argument("--only-python", action="store_true", help="leave out Debian packages")
    photos.add_argument("--force", action="store_true", help="replace an existing corpus")
    photos.add_argument("--verify", action="store_true", help="re-hash an existing corpus")
    photos.set_defaults(func=cmd_data_photos)

    _add_weights_parser(sub)

    speed = sub.add_parser(
        "speed", help="throughput: env, vector env (N = 1, 4, 16, 64) and every tool, per device"
    )
    from benchmarks.throughput import add_arguments

    add_arguments(speed)
    speed.set_defaults(func=cmd_speed)

    sub.add_parser("suites", help="list the benchmark suites").set_defaults(func=cmd_suites)
    agents = sub.add_parser("agents", help="list the agents")
    agents.add_argument(
        "--options", action="store_true", help="also each agent's options (--agent-arg NAME.KEY=V)"
    )
    agents.set_defaults(func=cmd_agents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tir`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["train-tools"]:  # every option (--help too) belongs to the recipe
        return cmd_train_tools(argparse.Namespace(train_args=words[1:]))
    args = build_parser().parse_args(words)
    args.argv = words
    np.set_printoptions(precision=3)
    from tir_env.errors import TIRError

    try:
        return int(args.func(args))
    except TIRError as err:  # a named, actionable error: its message, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
