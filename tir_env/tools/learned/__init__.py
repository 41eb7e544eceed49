"""Learned tools: small networks trained in this repo, weights shipped as safetensors.

One tool per AgenticIR task, named ``learned_<task>``, plus ``learned_all_in_one`` (task
``all_in_one``): one network for the eight degradations and their group-A pairs (it
keeps the input's size, so it does not super-resolve). Every
network is a few tens of thousands of parameters (:mod:`tir_env.tools.learned.nets`),
trained on the bundled train-split photos degraded by the env's own degradations
(``tir train-tools``, ``benchmarks/train_tools.py``); the weights and a JSON record per
network are in ``tir_env/assets/learned/``. ``docs/tools.md`` compares each with the best
classical tool of its task.

Every per-task tool is a *hybrid*: the network refines the output of its task's best
classical tool (``prior``, see ``docs/tools.md``), which is the residual base and (except
for super-resolution, whose network sees the low-resolution input) three extra input
channels, so the network starts exactly at the classical result (its last layer
is initialised to zero) and only has to learn what the classical tool gets wrong: the
ringing and amplified noise of Wiener deconvolution, streak remnants, JPEG blocks the TV
prior leaves, the haze a dark channel misjudges. A pure network of this size, trained for
minutes on six photos, lost to the best classical tool on denoising (25.7 vs 26.8 dB) and
JPEG (27.0 vs 27.2 dB) in development runs (700 steps, L1 loss). The all-in-one network has
no prior: no single classical tool suits all degradations. ``docs/tools.md`` has the
results, including where the hybrids do not beat their prior and why.

Metadata (:class:`~tir_env.tools.base.ToolInfo`) is available without loading weights;
the weights load on the first call. Missing weights raise
:class:`~tir_env.errors.WeightsNotFoundError` and unreadable ones
:class:`~tir_env.errors.CheckpointError`, both naming the file.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from tir_env.errors import ConfigValueError, did_you_mean
from tir_env.tools.base import Tool, ToolInfo, in_chunks, make_tool, register_tool
from tir_env.tools.learned import flips
from tir_env.tools.learned.nets import RestoreNet, SRNet
from tir_env.tools.learned.weights import CheckpointError, load_into, weights_path

Arch = Literal["restore", "sr"]


@dataclass(frozen=True)
class LearnedSpec:
    """How a learned tool is built.

    Attributes:
        name: Tool name, also the stem of its weight and record files.
        task: The task it addresses.
        arch: ``restore`` (:class:`~tir_env.tools.learned.nets.RestoreNet`) or ``sr``
            (:class:`~tir_env.tools.learned.nets.SRNet`, output 4x larger).
        prior: Classical tool whose output the network refines, or ``None``.
        channels: Feature channels.
        blocks: Residual blocks.
        shuffle: Pixel-unshuffle factor of ``restore`` networks.
        coords: Whether a ``restore`` network sees each pixel's vertical position.
        cost_hint: Relative cost per 128x128 image (1 = a cheap OpenCV filter).
        description: One line for ``tir tools``.
        flips: Test-time flips averaged into the output (:mod:`~tir_env.tools.learned.flips`:
            ``""`` none, ``"h"``, ``"v"`` or ``"hv"``; ``$TIR_LEARNED_FLIPS`` overrides).
    """

    name: str
    task: str
    arch: Arch = "restore"
    prior: str | None = None
    channels: int = 32
    blocks: int = 3
    shuffle: int = 2
    coords: bool = False
    cost_hint: float = 5.0
    description: str = ""
    flips: str = ""

    def build(self) -> nn.Module:
        """A freshly initialised network of this spec."""
        if self.arch == "sr":
            return SRNet(self.channels, self.blocks)
        with_prior = self.prior is not None
        return RestoreNet(self.channels, self.blocks, self.shuffle, with_prior, self.coords)

    @property
    def scale(self) -> int:
        """Output size over input size."""
        return 4 if self.arch == "sr" else 1


#: Every learned tool, in task order.
SPECS: tuple[LearnedSpec, ...] = (
    LearnedSpec(
        "learned_dehazing",
        "dehazing",
        prior="dark_channel_prior",
        coords=True,
        cost_hint=6.0,
        description="Residual CNN refining the dark channel prior (trained in-repo on haze).",
    ),
    LearnedSpec(
        "learned_deraining",
        "deraining",
        prior="derain_opening",
        cost_hint=5.0,
        description="Residual CNN refining morphological rain removal (trained in-repo).",
        # Four mirrored copies averaged: +0.21 dB on its val crops, +0.012 dB an episode of
        # `fixed` on 1600 fresh val episodes, every photo up (rule b4d6b017, docs/tools.md).
        flips="hv",
    ),
    LearnedSpec(
        "learned_brightening",
        "brightening",
        prior="gamma_correction",
        cost_hint=5.0,
        description="Residual CNN refining gamma correction of low light (trained in-repo).",
    ),
    LearnedSpec(
        "learned_motion_deblurring",
        "motion_deblurring",
        prior="motion_wiener_blind",
        cost_hint=85.0,
        description="Blind motion Wiener deconvolution refined by a residual CNN (in-repo).",
    ),
    LearnedSpec(
        "learned_defocus_deblurring",
        "defocus_deblurring",
        prior="defocus_wiener",
        cost_hint=50.0,
        description="Blind defocus Wiener deconvolution refined by a residual CNN (in-repo).",
    ),
    LearnedSpec(
        "learned_super_resolution",
        "super_resolution",
        arch="sr",
        prior="back_projection_x4",
        blocks=4,
        cost_hint=8.0,
        description="x4 back-projection plus an ESPCN-style learned residual (trained in-repo).",
    ),
    LearnedSpec(
        "learned_denoising",
        "denoising",
        prior="dct_denoise",
        cost_hint=35.0,
        description="DCT denoising refined by a residual CNN, Gaussian and Poisson (in-repo).",
    ),
    LearnedSpec(
        "learned_jpeg_artifact_removal",
        "jpeg_artifact_removal",
        prior="jpeg_tv",
        cost_hint=6.0,
        description="TV deblocking refined by a residual CNN, JPEG q 10-29 (trained in-repo).",
    ),
    LearnedSpec(
        "learned_all_in_one",
        "all_in_one",
        blocks=5,
        cost_hint=8.0,
        description="One residual CNN for MiO100 singles and group-A pairs (no x4; in-repo).",
    ),
)


#: Output pixels per network forward on a CPU. Past a few tens of thousands the feature maps
#: (32 channels at each pixel, 4x fewer with the pixel-unshuffle) fall out of the caches and
#: a batch runs slower per image than one image at a time: at 64 px, one forward of 16
#: images took 3.2-5.1 ms per image against 2.5-3.5 in chunks of 4 (16384 pixels), and the
#: x4 network 21 ms per image against 14 one image at a time.
NET_CPU_PIXELS = 16384


def net_chunk(shape: torch.Size, scale: int) -> int:
    """Images per network forward on a CPU for a batch of ``shape`` (at least one)."""
    out_pixels = shape[-2] * shape[-1] * scale * scale
    return max(1, NET_CPU_PIXELS // max(1, out_pixels))


def memory_format(device: torch.device) -> torch.memory_format:
    """How a network's weights and inputs are laid out on ``device``.

    On a CPU, channels last (each pixel's channels side by side), oneDNN's own layout for
    convolutions: on a 1024 px tile each shipped network ran 1.2-1.7x faster than in the
    default layout, the same outputs up to float rounding (under 1e-6;
    ``python -m benchmarks.restore_speed``); CUDA keeps the default.
    """
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


class LearnedTool(Tool):
    """A tool running a shipped network; weights load on the first call (thread-safe)."""

    spec: LearnedSpec

    def __init__(self) -> None:
        self._net: nn.Module | None = None
        self._device = torch.device("cpu")
        self._lock = threading.Lock()

    @classmethod
    def availability(cls) -> str | None:
        """``None`` when the weights file exists, else why the tool cannot run."""
        path = weights_path(cls.spec.name)
        return None if path.is_file() else f"weights not found: {path}"

    def to(self, device: torch.device | str) -> Tool:
        """Run on ``device`` from now on (moves the network if it is loaded)."""
        with self._lock:
            self._device = torch.device(device)
            if self._net is not None:
                self._net.to(self._device).to(memory_format=memory_format(self._device))
        return self

    def cache_variant(self) -> str:
        """The flips in force when they are overridden (:func:`flips.cache_tag`), else ``""``."""
        return flips.cache_tag()

    def network(self) -> nn.Module:
        """The network with its weights, loaded once.

        Raises:
            WeightsNotFoundError: the weights file is missing.
            CheckpointError: it cannot be read or does not fit the network.
        """
        with self._lock:
            if self._net is None:
                net = load_into(self.spec.build(), weights_path(self.spec.name))
                self._net = net.to(self._device).to(memory_format=memory_format(self._device))
            return self._net

    def apply(self, batch: torch.Tensor, params: Mapping[str, float]) -> torch.Tensor:
        """Run the prior tool (if any) on the batch, then the network; clamp to [0, 1].

        On a CPU the network runs in chunks of about :data:`NET_CPU_PIXELS` output pixels
        (the prior, a tool of its own, chooses its own batching), each averaged over the
        spec's test-time flips (:func:`~tir_env.tools.learned.flips.averaged`).
        """
        check_flips_variable()  # set after the import, a typo is named here, not ignored
        mode = flips.mode_for(self.spec.name, self.spec.flips, self.spec.coords)
        net = self.network()
        device = next(net.parameters()).device
        layout = memory_format(device)
        x = batch.to(device).contiguous(memory_format=layout)
        prior = None
        if self.spec.prior is not None:
            prior = make_tool(self.spec.prior)(batch).to(device).contiguous(memory_format=layout)
        step = net_chunk(x.shape, self.spec.scale) if device.type == "cpu" else x.shape[0]

        def forward(i: int, j: int) -> torch.Tensor:
            chunk_prior = None if prior is None else prior[i:j]
            return flips.averaged(net, x[i:j], chunk_prior, mode).clamp(0.0, 1.0)

        return in_chunks(x.shape[0], step, forward).to(batch.device).contiguous()


def _register(spec: LearnedSpec) -> type[LearnedTool]:
    """Create and register the :class:`LearnedTool` subclass of ``spec``."""
    info = ToolInfo(
        name=spec.name,
        task=spec.task,
        kind="learned",
        cost_hint=spec.cost_hint,
        scale=spec.scale,
        description=spec.description,
    )
    cls_name = "".join(part.title() for part in spec.name.split("_"))
    namespace = {"spec": spec, "info": info, "__doc__": spec.description, "__module__": __name__}
    cls = type(cls_name, (LearnedTool,), namespace)  # its module marks it built-in (TOOLS)
    # A learned tool joins the registry (and so the action space) once its weights ship;
    # `tir train-tools --only NAME` makes them.
    return register_tool(cls) if weights_path(spec.name).is_file() else cls


TOOL_CLASSES: dict[str, type[LearnedTool]] = {spec.name: _register(spec) for spec in SPECS}


def check_flips_variable() -> None:
    """Refuse a ``$TIR_LEARNED_FLIPS`` that names no learned network or a mode it cannot run.

    Checked when the learned tools are imported, so a typo stops the run at once instead of
    failing every call of the tool it meant.

    Raises:
        ConfigValueError: the variable is malformed, names an unknown network, or flips a
            network that reads each pixel's row upside down.
    """
    given = flips.overrides() or {}
    specs = {spec.name: spec for spec in SPECS}
    for name, mode in given.items():
        if name not in specs:
            raise ConfigValueError(
                f"{flips.ENV} names {name!r}, which is not a learned network (one of "
                f"{', '.join(specs)}).{did_you_mean(name, specs)}"
            )
        flips.mode_for(name, mode, specs[name].coords)


check_flips_variable()


# The trees-read dehazer joins the registry here too, after the networks (so a task's first
# learned tool, `agents.baselines.learned_tool`, stays its network).
from tir_env.tools.learned import tone as _tone  # noqa: E402, F401


def spec_of(name: str) -> LearnedSpec:
    """The spec of learned tool ``name``."""
    return TOOL_CLASSES[name].spec


__all__ = [
    "SPECS",
    "TOOL_CLASSES",
    "CheckpointError",
    "LearnedSpec",
    "LearnedTool",
    "check_flips_variable",
    "spec_of",
]
