"""The ``tir`` command line: every subcommand's options come from its typed config.

Each subcommand is a row of :data:`COMMANDS`: a frozen config dataclass
(:mod:`benchmarks.commands.configs`; ``SpeedConfig`` in :mod:`benchmarks.throughput`) whose
fields are its flags and whose field docs are its ``--help``, and the function that runs it
on that config (:mod:`benchmarks.commands`). ``tir train ...``, ``tir train-tools`` and
``tir experts collect`` hand their words on to the recipes, which parse them into their own
configs the same way (:mod:`tir_env.config_cli`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.commands import bench, catalog, data, demo, restore, train, weights
from benchmarks.commands import configs as c
from benchmarks.commands.common import choice_list
from benchmarks.throughput import SpeedConfig
from tir_env.config_cli import CONFIG_KEY, add_config_arguments, config_from_namespace, summary
from tir_env.help_text import HelpFormatter

#: Config fields that are no flags: ``tir`` fills them with the command line as typed.
FILLED_BY_TIR = ("argv",)


@dataclass(frozen=True)
class Command:
    """One ``tir`` subcommand.

    Attributes:
        words: Its name after ``tir`` (two words for ``data photos``).
        help: One line in ``tir --help``.
        config: The frozen dataclass its options fill.
        run: The function that runs it on that config; its return is the exit status.
        add_help: False when ``--help`` belongs to the recipe the words are handed to.
        epilog: Text after the options in ``--help`` (its lines kept: a list of choices).
    """

    words: tuple[str, ...]
    help: str
    config: type
    run: Callable[[Any], int]
    add_help: bool = True
    epilog: str = ""


COMMANDS: tuple[Command, ...] = (
    Command(("demo",), "quick leaderboard of every agent on the bundled photos", c.DemoConfig,
            demo.cmd_demo),
    Command(("bench",), "run agents on a benchmark suite", c.BenchConfig, bench.cmd_bench),
    Command(("leaderboard",), "tables and plots from JSONL records", c.LeaderboardConfig,
            bench.cmd_leaderboard),
    Command(("compare",), "did a change help? two folders of records, paired, with intervals",
            c.CompareConfig, bench.cmd_compare),
    Command(("restore",), "restore your own photo (no reference)", c.RestoreConfig,
            restore.cmd_restore),
    Command(("tools",), "list the tools (and register checkpoints)", c.ToolsConfig,
            catalog.cmd_tools),
    Command(("train-tools",),
            "train the learned tools and the all-in-one network (benchmarks/train_tools.py)",
            c.TrainToolsConfig, train.cmd_train_tools, add_help=False),
    Command(("train",),
            "train an agent (ppo: agents/ppo/train.py; ppo-bc: agents/ppo/bc.py; sft, grpo: VLM)",
            c.TrainRecipeConfig, train.cmd_train, epilog=choice_list("algos", train.ALGOS)),
    Command(("experts",), "expert trajectory dataset for SFT and PPO-BC (agents/experts.py)",
            c.ExpertsConfig, train.cmd_experts,
            epilog=choice_list("actions", train.EXPERT_ACTIONS)),
    Command(("data", "check"),
            "list the images of a folder that the env cannot use (unreadable, too small)",
            c.CheckImagesConfig, data.cmd_data_check),
    Command(("data", "photos"),
            "build the real-photo corpus from the reviewed list (docs/data.md)", c.PhotosConfig,
            data.cmd_data_photos),
    Command(("weights",), "list, fetch and verify published checkpoints", c.WeightsConfig,
            weights.cmd_weights),
    Command(("speed",),
            "throughput: env, vector env (N = 1, 4, 16, 64) and every tool, per device",
            SpeedConfig, data.cmd_speed),
    Command(("suites",), "list the benchmark suites", c.SuitesConfig, catalog.cmd_suites),
    Command(("agents",), "list the agents", c.AgentsConfig, catalog.cmd_agents),
)  # fmt: skip

#: Subcommands that only group others (``tir data photos``), with their help.
GROUPS = {"data": "build and check data sets (the photo corpus, your own folders)"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tir``: one subparser per :data:`COMMANDS` row, from its config.

    Every subcommand's ``--help`` (``tir train --help`` too: a recipe's own options are
    ``tir train ALGO --help``) prints its usage and options; ``tir train-tools`` hands even
    ``--help`` to its recipe (:func:`parse_command`).
    """
    parser = argparse.ArgumentParser(
        prog="tir", description=__doc__.split("\n")[0], formatter_class=HelpFormatter
    )
    top = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, Any] = {}
    for command in COMMANDS:
        sub, *rest = command.words
        if rest:  # a command of a group: `tir data photos`
            if sub not in groups:
                group = top.add_parser(
                    sub, help=GROUPS[sub], description=GROUPS[sub], formatter_class=HelpFormatter
                )
                groups[sub] = group.add_subparsers(dest=f"{sub}_command", required=True)
            where, sub = groups[command.words[0]], rest[0]
        else:
            where = top
        parser_of = where.add_parser(
            sub,
            help=command.help,
            description=summary(command.config),
            epilog=command.epilog or None,
            formatter_class=HelpFormatter,
            add_help=command.add_help,
        )
        add_config_arguments(parser_of, command.config, skip=FILLED_BY_TIR)
        parser_of.set_defaults(func=command.run)
    return parser


def parse_command(words: Sequence[str]) -> tuple[Any, Callable[[Any], int]]:
    """The typed config of ``tir WORDS`` and the function that runs it.

    Raises:
        SystemExit: argparse's exit on ``--help`` or a malformed option (with its message).
    """
    if words[:1] == ["train-tools"]:
        # Every option (--help too) belongs to the recipe; argparse's REMAINDER would not take
        # an option as the first word.
        return c.TrainToolsConfig(train_args=tuple(words[1:])), train.cmd_train_tools
    parser = build_parser()
    args = parser.parse_args(words)
    cls = getattr(args, CONFIG_KEY)
    filled = {k: tuple(words) for k in FILLED_BY_TIR if k in cls.__dataclass_fields__}
    return config_from_namespace(cls, args, parser, **filled), args.func


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tir`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    words = list(sys.argv[1:] if argv is None else argv)
    config, run = parse_command(words)
    np.set_printoptions(precision=3)
    from tir_env.errors import TIRError

    try:
        return int(run(config))
    except TIRError as err:  # a named, actionable error: its message, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
