"""The ``tir`` command line."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
    records, ran = [], []
    for name in agents:
        try:
            agent = make_agent(name)
        except Exception as err:  # noqa: BLE001 - an agent without its weights is skipped
            print(f"skipping agent {name!r}: {err}")
            continue
        print(f"running {name} on {len(specs)} episodes ...", flush=True)
        try:
            records += evaluate(
                name, specs, env_kwargs, suite="demo", images_dir=out / "images", agent=agent
            )
        except Exception as err:  # noqa: BLE001 - e.g. its tools' weights are not shipped yet
            print(f"skipping agent {name!r}: {err}")
            continue
        ran.append(name)
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
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run agents on a suite; write one JSONL per agent and the leaderboard."""
    from benchmarks.evaluate import evaluate, write_jsonl
    from benchmarks.leaderboard import write_leaderboard
    from benchmarks.suites import get_suite
    from tir_env.errors import TIRError
    from tir_env.tools.presets import toolbox_tools

    if not _register_checkpoints(args):
        return 2
    suite = get_suite(args.suite)
    images = args.images or "test"
    specs = suite.episodes(images, limit=args.limit)
    out = Path(args.out)
    agent_kwargs = _agent_kwargs(args.agent_arg)
    env_kwargs = suite.env_kwargs(images)
    # Another toolbox is another entry: label it, so rows and files do not collide.
    other = args.toolbox and args.toolbox != env_kwargs.get("toolbox", "classical")
    if args.toolbox:
        env_kwargs["toolbox"] = args.toolbox
    try:
        toolbox_tools(env_kwargs.get("toolbox", "classical"))
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = "tir " + shlex.join(getattr(args, "argv", None) or sys.argv[1:])
    for agent in args.agents.split(","):
        label = f"{agent}@{args.toolbox}" if other else agent
        try:
            records = evaluate(
                agent,
                specs,
                env_kwargs,
                suite.name,
                suite.version,
                images_dir=out / "images" / suite.name / (args.toolbox if other else "")
                if args.save_images
                else None,
                agent_kwargs={**agent_kwargs.get("*", {}), **agent_kwargs.get(agent, {})},
            )
        except TIRError as err:
            print(f"error: agent {agent!r} on suite {suite.name!r}: {err}", file=sys.stderr)
            return 2
        for record in records:
            record.update(agent=label, command=command)
            if args.toolbox:
                record["toolbox"] = args.toolbox
        write_jsonl(out / f"{suite.name}__{label}.jsonl", records)
    # Tables cover every record under ``out``, not just this run: the header lists each
    # record file's command, not argv.
    paths = write_leaderboard(out)
    print((out / "leaderboard.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Tables and plots from the JSONL files under a folder."""
    from benchmarks.leaderboard import write_leaderboard

    out = Path(args.out or args.dir)
    write_leaderboard(Path(args.dir), out)
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
    """Train with a one-file recipe (``tir train ppo|ppo-bc|sft|grpo|perception --help``)."""
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
            description = getattr(AGENTS.get(name), "description", "")
        except Exception as err:  # noqa: BLE001 - a broken plug-in must not hide the others
            description = f"(cannot load: {err})"
        print(f"{name:16s} {description}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a user's photo with no reference; print the trajectory, save the result."""
    from agents.base import make_agent, rollout
    from benchmarks.evaluate import with_required_tools
    from tir_env.env import TIREnv
    from tir_env.errors import TIRError
    from tir_env.images import load_image, resize_u8, save_image

    if not _register_checkpoints(args):
        return 2
    try:
        image = load_image(args.image)
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
    h, w = image.shape[:2]
    if args.max_side and max(h, w) > args.max_side:
        scale = args.max_side / max(h, w)
        image = resize_u8(image, (max(8, round(h * scale)), max(8, round(w * scale))))
        print(f"resized {w}x{h} -> {image.shape[1]}x{image.shape[0]} (--max-side {args.max_side})")
    print(_perception_line(image))
    try:
        ep = rollout(
            env, agent, seed=0, options={"image": image, "image_id": Path(args.image).name}
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
    out = save_image(args.output, env.current_image())
    print(f"tool executions: {ep.tool_executions}, wall {ep.wall_time_s:.2f}s; wrote {out}")
    return 0


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
    bench.add_argument("--out", default="runs/bench", help="output folder")
    bench.add_argument("--agent-arg", action="append", help="agent.key=value passed to an agent")
    bench.add_argument("--save-images", action="store_true", help="save every output image")
    _add_toolbox_arg(bench, None)
    _add_checkpoint_args(bench)
    bench.set_defaults(func=cmd_bench)

    board = sub.add_parser("leaderboard", help="tables and plots from JSONL records")
    board.add_argument("dir", help="folder with *.jsonl records")
    board.add_argument("--out", default=None, help="output folder (default: DIR)")
    board.set_defaults(func=cmd_leaderboard)

    restore = sub.add_parser("restore", help="restore your own photo (no reference)")
    restore.add_argument("image", help="png/jpg/webp file")
    restore.add_argument(
        "--agent",
        default="fixed",
        help="agent name (see `tir agents`); default: fixed, the best no-reference agent on whole "
        "photos in docs/agents.md",
    )
    restore.add_argument("-o", "--output", default="restored.png", help="output file")
    restore.add_argument("--max-steps", type=int, default=4)
    restore.add_argument(
        "--max-side", type=int, default=1024, help="downscale larger photos (0: never)"
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

    for name, func, text in [
        ("suites", cmd_suites, "list the benchmark suites"),
        ("agents", cmd_agents, "list the agents"),
    ]:
        sub.add_parser(name, help=text).set_defaults(func=func)
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
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
