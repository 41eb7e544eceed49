"""``tir train``, ``tir train-tools`` and ``tir experts``: hand the words on to a recipe.

Each recipe parses its own words into its typed config (``tir train sft --help``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.commands.configs import ExpertsConfig, TrainRecipeConfig, TrainToolsConfig

#: ``tir train ALGO``: each recipe, as ``tir train --help`` lists it (one line each).
ALGOS: dict[str, str] = {
    "ppo": "Stable-Baselines3 PPO on TIR-v0 (agents/ppo/train.py)",
    "ppo-bc": "PPO policy cloned from expert episodes (agents/ppo/bc.py)",
    "sft": "VLM supervised fine-tuning with LoRA (agents/vlm/sft.py)",
    "grpo": "VLM RL: GRPO, or PPO with --algo ppo (agents/vlm/grpo.py)",
    "perception": "perception v2 and the tirqa head (train_perception.py)",
    "perception-stream": "CNN perception on fresh crops, for a GPU with many cores",
    "gain": "the quality-gain model (benchmarks/train_gain.py)",
    "vlm-vision": "the VLM's vision tower (benchmarks/train_vlm_vision.py)",
}
#: ``tir experts ACTION``: each action, as ``tir experts --help`` lists it.
EXPERT_ACTIONS: dict[str, str] = {
    "collect": "run the expert on training photos, write the dataset",
}


def cmd_train_tools(config: TrainToolsConfig) -> int:
    """Train the learned tools, the all-in-one network and the perception model."""
    from benchmarks.train_tools import main as train_main

    if _refused(config.train_args, "tir train-tools"):
        return 2
    return 0 if train_main(list(config.train_args), prog="tir train-tools") else 1


def _refused(words: tuple[str, ...], what: str) -> bool:
    """Print the named error and say so when ``words`` name the independent set."""
    from tir_env.errors import ReservedPhotosError
    from tir_env.independent import refuse_reserved

    try:
        refuse_reserved(words, what)
    except ReservedPhotosError as err:
        print(f"error: {err}", file=sys.stderr)
        return True
    return False


def cmd_train(config: TrainRecipeConfig) -> int:
    """Train with a recipe (``tir train ALGO --help``).

    ALGO: ppo, ppo-bc, sft, grpo, perception, perception-stream, gain or vlm-vision.

    A refused run (a folder holding another run, a ``--resume`` with another config, no usable
    checkpoint) prints its named error and exits 2.
    """
    from tir_env.errors import TIRError

    if _refused(config.train_args, f"tir train {config.algo}"):
        return 2
    try:
        return _train_recipe(config)
    except TIRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _train_recipe(config: TrainRecipeConfig) -> int:
    """Run the recipe ``config.algo`` names."""
    import logging

    if config.algo == "perception":
        from benchmarks.train_perception import main as train_perception
        from benchmarks.train_perception import parse_args

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        train_perception(parse_args(list(config.train_args)))
        return 0
    if config.algo == "perception-stream":
        from benchmarks import train_perception_stream as stream

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        stream_config = stream.parse_args(list(config.train_args))
        if stream_config.export_photos:
            counts = stream.export_photos(stream_config.train, Path(stream_config.export_photos))
            sys.stdout.write(json.dumps(counts) + "\n")
            return 0
        record = stream.run(stream_config)
        sys.stdout.write(json.dumps(record["progress"], indent=1) + "\n")
        return 0
    if config.algo == "gain":
        from benchmarks.train_gain import main as train_gain
        from benchmarks.train_gain import parse_args as parse_gain_args

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        train_gain(parse_gain_args(list(config.train_args)))
        return 0
    if config.algo == "vlm-vision":
        from benchmarks.train_vlm_vision import main as train_vision
        from benchmarks.train_vlm_vision import parse_args as parse_vision_args

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        record = train_vision(parse_vision_args(list(config.train_args)))
        summary = {k: record[k] for k in ("val", "alignment", "wall_seconds")}
        sys.stdout.write(json.dumps(summary, indent=1) + "\n")
        return 0
    if config.algo == "ppo-bc":
        from agents.ppo.bc import cli as train_bc

        return train_bc(list(config.train_args))
    if config.algo != "ppo":
        return cmd_train_vlm(config)
    from agents.ppo.train import main as train_ppo

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train_ppo(list(config.train_args))
    return 0


def cmd_experts(config: ExpertsConfig) -> int:
    """The expert trajectory dataset: ``tir experts collect [options]`` (agents/experts.py)."""
    from agents.experts import cli

    if _refused(config.experts_args, "tir experts"):
        return 2
    return cli(list(config.experts_args))


def cmd_train_vlm(config: TrainRecipeConfig) -> int:
    """Train the VLM agent: ``tir train sft|grpo [options]`` (``grpo --algo ppo`` for PPO)."""
    if config.algo == "sft":
        from agents.vlm.sft import cli as recipe
    else:
        from agents.vlm.grpo import cli as recipe
    return recipe(list(config.train_args))
