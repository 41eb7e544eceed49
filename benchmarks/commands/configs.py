"""One frozen config per ``tir`` subcommand; the parser of each is built from it.

Each field is a flag (``--field-name``) whose help is the field's text below
(:func:`tir_env.config_cli.add_config_arguments`); ``Arg`` annotations make a field
positional, repeated or short. A field called ``argv`` is no flag: ``tir`` fills it with the
command line as typed (recorded with the results).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Annotated, Literal

from tir_env.config_cli import Arg
from tir_env.types import ToolboxPreset

__all__ = [
    "AgentsConfig",
    "BenchConfig",
    "CheckpointConfig",
    "DemoConfig",
    "ExpertsConfig",
    "LeaderboardConfig",
    "PhotosConfig",
    "RestoreConfig",
    "SuitesConfig",
    "ToolsConfig",
    "TrainRecipeConfig",
    "TrainToolsConfig",
    "WeightsConfig",
    "patch_size",
]


def patch_size(text: str) -> int:
    """A crop side from the command line: a multiple of 4, at least 8.

    Raises:
        argparse.ArgumentTypeError: anything else (argparse prints it and exits 2).
    """
    value = int(text)
    if value < 8 or value % 4:
        raise argparse.ArgumentTypeError(f"--patch-size must be a multiple of 4, >= 8: {text}")
    return value


@dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
    """The user's checkpoints, added as pretrained tools before the command runs.

    Attributes:
        register: Load a checkpoint with spandrel and add it as a pretrained tool (repeat the
            flag for several).
        config: Register the [[tool]] entries of a TOML file (repeat the flag for several).
    """

    register: Annotated[tuple[str, ...], Arg(append=True, metavar="PATH:TASK[:NAME]")] = ()
    config: Annotated[tuple[str, ...], Arg(append=True, metavar="TOML")] = ()


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """A quick leaderboard of every available agent on the bundled test photos.

    Attributes:
        out: Output folder.
        agents: Agents to run; empty: every registered agent.
        seeds: Episodes per image and combination.
        patch_size: Crop side of the episodes (pixels).
        max_steps: Tool calls per episode at most.
    """

    out: str = "runs/demo"
    agents: Annotated[tuple[str, ...], Arg(one_word=True)] = ()
    seeds: int = 1
    patch_size: int = 96
    max_steps: int = 3


@dataclass(frozen=True, kw_only=True)
class BenchConfig(CheckpointConfig):
    """Run agents on a benchmark suite; one resumable JSONL per agent; the leaderboard.

    Attributes:
        suite: Suite name (see `tir suites`).
        agents: Agents to run.
        images: Folder of clean images; None: the bundled test photos.
        limit: Use only the first N images (0: every image; negative: refused).
        pairs: Evaluate on given degraded/clean pairs in DIR (AgenticIR's HQ/ + LQ/d*/COMBO/
            layout, or clean/ + degraded/; see tir_env/pairs.py) instead of synthesising
            inputs.
        whole: Degrade and score whole photos (any size) instead of crops (suite name
            SUITE@full).
        patch_size: Crop side (suite name SUITE@N); a multiple of 4, at least 8.
        out: Output folder; a re-run into it resumes (skips recorded episodes) or refuses.
        agent_arg: An agent's option, AGENT.KEY=VALUE (KEY=VALUE: every agent), parsed by the
            type of the agent's Options field (`tir agents --options`); repeat the flag.
        save_images: Save every output image.
        strict: Stop at an unreadable image (else its episodes are skipped with a warning).
        toolbox: Tool preset: classical, learned, full (with registered checkpoints) or
            agenticir; None: the suite's.
        depth: Haze depth: proxy, folder:DIR (maps named like the clean images: STEM.npy,
            STEM.png, STEM/predict_depth.mat) or model:DIR (a local transformers depth model,
            e.g. Depth Anything); see docs/haze.md.
        depth_missing: folder: an image without a depth map is an error or uses the proxy.
        depth_cache: model: also cache depth maps here.
        tool_timeout: Longest one tool call may run, in seconds, before it fails with
            ToolTimeoutError; None: the pool's 30 s on crops, 300 s on whole photos (a blind
            motion deblur of a 1536 px photo takes over 30 s on a busy 2-core CPU).
        argv: The command line as typed (set by `tir`, recorded in each record).
    """

    suite: Annotated[str, Arg(positional=True)]
    agents: Annotated[tuple[str, ...], Arg(one_word=True)] = ("random", "fixed", "oracle")
    images: str | None = None
    limit: int | None = None
    pairs: Annotated[str | None, Arg(metavar="DIR")] = None
    whole: Annotated[bool, Arg(group="size")] = False
    patch_size: Annotated[int | None, Arg(group="size", parse=patch_size)] = None
    out: str = "runs/bench"
    agent_arg: Annotated[tuple[str, ...], Arg(append=True, metavar="AGENT.KEY=VALUE")] = ()
    save_images: bool = False
    strict: bool = False
    toolbox: ToolboxPreset | None = None
    depth: Annotated[str, Arg(metavar="SPEC")] = "proxy"
    depth_missing: Literal["error", "proxy"] = "error"
    depth_cache: Annotated[str | None, Arg(metavar="DIR")] = None
    tool_timeout: Annotated[float | None, Arg(metavar="SECONDS")] = None
    argv: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        """Check ``tool_timeout``.

        Raises:
            ValueError: ``tool_timeout`` is not positive.
        """
        if self.tool_timeout is not None and not self.tool_timeout > 0:
            raise ValueError(f"--tool-timeout must be > 0 seconds, got {self.tool_timeout}")


@dataclass(frozen=True, kw_only=True)
class LeaderboardConfig:
    """Tables and plots from the JSONL records under a folder.

    Attributes:
        dir: Folder with *.jsonl records.
        out: Output folder; None: DIR.
    """

    dir: Annotated[str, Arg(positional=True)]
    out: str | None = None


@dataclass(frozen=True)
class CompareConfig:
    """Compare two folders of records of the same episodes, with intervals over the photos.

    Attributes:
        base: Folder of the records before the change (FOLDER:AGENT: that agent's only).
        new: Folder of the records after it (FOLDER:AGENT: that agent's, paired with BASE's).
        metric: The metric compared (as the records name it).
        agents: Agents to compare; empty: every agent both folders hold.
        out: Also write the report to this new Markdown file; None: print only.
    """

    base: Annotated[str, Arg(positional=True)]
    new: Annotated[str, Arg(positional=True)]
    metric: str = "psnr"
    agents: Annotated[tuple[str, ...], Arg(one_word=True)] = ()
    out: str | None = None


@dataclass(frozen=True, kw_only=True)
class RestoreConfig(CheckpointConfig):
    """Restore your own photos with no reference; print each trajectory, save the results.

    Attributes:
        images: Photo files (png, jpg, webp, bmp, tif, gif) or folders of them (each photo in
            a folder, not its subfolders).
        agent: Agent name (see `tir agents`); fixed is the best no-reference agent on whole
            photos in docs/agents.md.
        output: Output file for one photo (default restored.png); output folder for several
            photos or a folder (default restored/), where each result is NAME.png.
        overwrite: Replace an existing output (never an input).
        skip_existing: Leave out photos whose result exists (resumes an interrupted run over
            a folder) instead of refusing them.
        max_steps: Tool calls at most.
        max_side: Downscale photos larger than this first (0: full size, in tiles).
        toolbox: Tool preset: classical, learned, full (with registered checkpoints) or
            agenticir.
        agent_arg: An option of the agent, AGENT.KEY=VALUE or KEY=VALUE (`tir agents
            --options`); repeat the flag.
        before_after: Also write NAME_before_after.png beside each result: the photo and the
            result side by side (at most 512 px high), labelled with the calls, to see what
            changed.
        keep_metadata: Write each result with its photo's colour profile and EXIF (the
            orientation dropped, as the pixels are written upright), as a photo editor exports.
        fast: Run each learned network once per call, not averaged over mirrored copies (the
            deraining's four): on a rainy camera photo 20 s instead of 32, about 0.3 dB less.
    """

    images: Annotated[tuple[str, ...], Arg(positional=True, split=False, metavar="IMAGE")]
    agent: str = "fixed"
    output: Annotated[str | None, Arg(flags=("-o",))] = None
    overwrite: bool = False
    skip_existing: bool = False
    max_steps: int = 4
    max_side: int = 0
    toolbox: ToolboxPreset = "classical"
    agent_arg: Annotated[tuple[str, ...], Arg(append=True, metavar="AGENT.KEY=VALUE")] = ()
    before_after: bool = False
    keep_metadata: bool = True
    fast: bool = False


@dataclass(frozen=True, kw_only=True)
class ToolsConfig(CheckpointConfig):
    """List every registered tool with its task, kind, parameters and availability.

    Attributes:
        preset: Also say which tools of this preset are missing.
    """

    preset: Literal["agenticir"] | None = None


@dataclass(frozen=True, kw_only=True)
class AgentsConfig:
    """List the registered agents (plug-ins included).

    Attributes:
        options: Also each agent's options (--agent-arg NAME.KEY=VALUE) with their docs.
    """

    options: bool = False


@dataclass(frozen=True, kw_only=True)
class SuitesConfig:
    """List the benchmark suites (no options)."""


@dataclass(frozen=True, kw_only=True)
class PhotosConfig:
    """Build (or verify) the real-photo corpus from the reviewed list (docs/data.md).

    Attributes:
        out: Corpus folder; None: $TIR_PHOTOS or ~/.cache/tir/photos.
        debs: Folder of .deb files to use (and to download missing ones into) instead of a
            scratch folder.
        only_python: Leave out Debian packages.
        force: Replace an existing corpus.
        verify: Re-hash an existing corpus instead of building one.
        independent: The independent evaluation set instead (MATE's nature photos, reserved:
            evaluate on it, never train or tune; docs/independent.md); out defaults to
            $TIR_INDEPENDENT or ~/.cache/tir/independent.
        argv: The command line as typed (set by `tir`, recorded in the manifest).
    """

    out: str | None = None
    debs: str | None = None
    only_python: bool = False
    force: bool = False
    verify: bool = False
    independent: bool = False
    argv: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, kw_only=True)
class CheckImagesConfig:
    """List the images of a source that the env and tir bench cannot use.

    Attributes:
        images: A folder (every image file under it) or a named source (test, corpus:val, ...).
    """

    images: Annotated[str, Arg(positional=True)]


@dataclass(frozen=True, kw_only=True)
class WeightsConfig:
    """List, fetch and verify the published checkpoints of the weights manifest.

    Attributes:
        action: list (every file and slot), fetch (download, verify, place) or verify.
        names: Manifest names (see `tir weights list`); verify with none: every file.
        toolbox: fetch: every file of this preset's slots.
        weights_dir: Weights folder; None: $TIR_WEIGHTS_DIR.
        manifest: Manifest file; None: the shipped one.
        base_url: Mirror: fetch BASE_URL/<file>.
        offline: Refuse to download.
        accept_noncommercial: Accept non-commercial licences.
        timeout: Connect/read timeout (s).
        deadline: Time limit per file (s).
        retries: Resumes after a cut connection.
        progress: Show a progress bar.
    """

    action: Annotated[Literal["list", "fetch", "verify"], Arg(positional=True)]
    names: Annotated[tuple[str, ...], Arg(positional=True)] = ()
    toolbox: Literal["agenticir"] | None = None
    weights_dir: str | None = None
    manifest: str | None = None
    base_url: str | None = None
    offline: bool = False
    accept_noncommercial: bool = False
    timeout: float = 30.0
    deadline: float = 3600.0
    retries: int = 3
    progress: bool = True


@dataclass(frozen=True, kw_only=True)
class TrainRecipeConfig:
    """Train an agent with a one-file recipe (`tir train ALGO --help`: the recipe's options).

    Attributes:
        algo: Which recipe: ppo (agents/ppo/train.py), ppo-bc (agents/ppo/bc.py), sft or grpo
            (the VLM), perception (benchmarks/train_perception.py), perception-stream (the
            CNN perception on a stream of fresh crops, for a GPU with many cores:
            benchmarks/train_perception_stream.py), gain (the quality-gain
            model, benchmarks/train_gain.py), vlm-vision (the VLM's vision pretraining,
            benchmarks/train_vlm_vision.py).
        train_args: Options of the recipe (its own typed config).
    """

    algo: Annotated[
        Literal[
            "ppo", "ppo-bc", "sft", "grpo", "perception", "perception-stream", "gain", "vlm-vision"
        ],
        Arg(positional=True),
    ]
    train_args: Annotated[tuple[str, ...], Arg(remainder=True)] = ()


@dataclass(frozen=True, kw_only=True)
class TrainToolsConfig:
    """Train the learned tools and the perception model (benchmarks/train_tools.py).

    Attributes:
        train_args: Options of benchmarks/train_tools.py (`tir train-tools --help`).
    """

    train_args: Annotated[tuple[str, ...], Arg(remainder=True)] = ()


@dataclass(frozen=True, kw_only=True)
class ExpertsConfig:
    """The expert trajectory dataset for SFT and PPO-BC (agents/experts.py).

    Attributes:
        action: What to do (`tir experts collect --help`: its options).
        experts_args: Options of the action (its own typed config).
    """

    action: Annotated[Literal["collect"], Arg(positional=True)]
    experts_args: Annotated[tuple[str, ...], Arg(remainder=True)] = ()
