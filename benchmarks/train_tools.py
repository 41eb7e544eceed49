"""Train the learned tools and the all-in-one network (seeded, CPU).

Perception v2 and the ``tirqa`` quality head train on the photo corpus in
:mod:`benchmarks.train_perception`.

Every network trains on the photo corpus' **train** split (``tir data photos``;
``--photos bundled`` for the six bundled train photos): random 128x128 crops (of the photos
downscaled by 1, 0.75, 0.5 or 0.35 at random, so that crops hold detail at several scales),
degraded with the env's own degradations (:func:`tir_env.degradations.degrade`). Each
network trains for a fixed schedule and ships its last weights; the **val** photos are
scored 8 times along the way, a diagnostic
kept in the record (``val_curve``). Selecting the best-on-val weights was tried and dropped:
one photo, half of it smooth sky, it chose the untrained network (that is, the classical
prior) for motion deblurring and brightening. The **test** photos (chelsea, coffee,
china, flower: the 128x128 centre crops and seeds 0-2 of ``docs/tools.md``) are scored
once, at the end. Training is seeded and single-threaded by default, so the same command
gives the same weights on the same machine.

What each network learns (its :data:`RECIPES` entry):

* ``learned_<task>``: the task's degradation alone; mean squared error to the clean crop
  (an L1 loss taught the hybrids nothing: their corrections are sparse, and L1's optimum
  for a residual that is mostly noise around zero is zero).
* ``learned_all_in_one``: seven single degradations and the eight MiO100 group-A pairs
  (:data:`ALL_IN_ONE_COMBOS`), with the ``psnr`` loss.
  It works at its input's resolution (scale 1): on low-resolution inputs its target is
  the clean image downsampled the same way, so it removes the other degradation and leaves
  super-resolution to the scorer's bicubic upsampling (like the all-in-one models of
  AgenticIR's comparison, which do not super-resolve).

Outputs go to ``--out`` (default: the shipped ``tir_env/assets/learned``): ``<name>.safetensors``
and ``<name>.json`` (task, architecture, command, splits, steps, CPU and wall seconds, val
and test scores, CPU inference speed).

Usage::

    tir train-tools                                    # everything (see RECIPES for budgets)
    python -m benchmarks.train_tools --only learned_denoising --out /tmp/w
    python -m benchmarks.train_tools --only learned_denoising --steps-scale 0.1  # smoke run
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.tool_eval import cpu_ms_per_image, test_scores, upsample_to
from tir_env import data
from tir_env.degradations import degrade, make_degradation
from tir_env.degradations.protocols import MIO_GROUP_A, SINGLE, Combo
from tir_env.images import round_to_8_bits, u8_to_batch
from tir_env.metrics import fast

#: Size of the clean crops every training image is cut from (the env's default patch size).
CROP = 128
#: Photo scales training crops are cut at (a fraction of the photo's full resolution).
SCALES = (1.0, 0.75, 0.5, 0.35)


@dataclass(frozen=True)
class Recipe:
    """How one network is trained.

    Attributes:
        combos: Degradation combinations drawn uniformly for each training image.
        steps: Optimiser steps.
        batch: Crops per step.
        crop: Side of the training crop of the *target* image (inputs are cropped to match).
        pool: Degraded training images generated before training (crops are cut from them).
        lr: Peak Adam learning rate (cosine decay to 0 after a warm-up of up to 50 steps).
        loss: ``mse``, or ``psnr``: the mean over images of ``10 log10(MSE + 1e-4)``, which
            weighs every image's relative improvement alike (with plain MSE the all-in-one
            network spent itself on haze and low light, whose errors are largest, and left
            noise and blur untouched).
        augment: Rotate (by multiples of 90 degrees), flip and permute the colour channels
            of each clean crop before degrading it: 48 looks of each of the six photos.
        keep_share: Share of the pool whose crops lack the network's own degradation (the
            crop clean, or with one other single type, :func:`keep_combos`), with the input
            itself as the target: a tool called where its degradation is not should leave
            the image alone. A shipped dehazer called on a clean crop returned it at about
            18 dB, so every false call of perception cost an episode 6-20 dB. Same-size
            networks only (a x4 network's target is 4x its input).
        round_inputs: Round each degraded input to 8 bits, as the env rounds an episode's
            input (and a photo file is): a network trained on unrounded inputs meets rounded
            ones at its first call (docs/tools.md, "The defocus radius of an 8-bit photo").
        context_share: Share of the pool whose crops carry the network's degradation among
            others: a training combination holding it (:func:`context_combos`), applied in
            physical or listed order, with the same chain replayed *without* the network's
            type as the target. An agent calls a tool on such crops (a pair, a triple), and a
            network trained on its degradation alone meets the others' residue there
            (docs/agents.md, "Learned tools in the plan"). Same-size networks only.
    """

    combos: tuple[Combo, ...]
    steps: int
    batch: int = 16
    crop: int = 64
    pool: int = 384
    lr: float = 1e-3
    loss: Literal["mse", "psnr"] = "mse"
    augment: bool = False
    keep_share: float = 0.0
    round_inputs: bool = False
    context_share: float = 0.0


#: The all-in-one network's training combinations: the single types and MiO100 group A,
#: except low resolution alone, whose target (at scale 1) is the input itself: with the
#: ``psnr`` loss those examples pinned the whole network to the identity.
ALL_IN_ONE_COMBOS: tuple[Combo, ...] = tuple(
    c for c in SINGLE + MIO_GROUP_A if c != ("low_resolution",)
)


def _single(name: str) -> tuple[Combo, ...]:
    return ((name,),)


def keep_combos(recipe: Recipe) -> tuple[Combo, ...]:
    """The inputs a ``keep_share`` example may have (the target is the input itself).

    Clean, or one single type the network does not remove (not low resolution, whose input
    has another size).
    """
    own = {name for combo in recipe.combos for name in combo}
    others = tuple(c for c in SINGLE if not own & set(c) and c != ("low_resolution",))
    return ((), *others)


def context_combos(recipe: Recipe) -> tuple[Combo, ...]:
    """The training combinations (``single`` aside) that hold the network's degradation.

    Only those agents train on (:data:`~tir_env.degradations.protocols.TRAINING`: group A's
    pairs and the ``train-d3`` triples), so no evaluation combination is learned; none with
    low resolution, whose input has another size than the target.
    """
    from tir_env.degradations.protocols import COMBOS

    own = {name for combo in recipe.combos for name in combo}
    pool = COMBOS["mio-a"] + COMBOS["train-d3"]
    return tuple(c for c in pool if own & set(c) and "low_resolution" not in c)


def make_context_pair(
    clean: torch.Tensor, combo: Combo, own: set[str], rng: np.random.Generator, round_inputs: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(``combo`` applied, the same chain without ``own``) of one clean crop (``context_share``).

    The order is physical or listed (the ``mio-*`` suites apply theirs as listed), drawn.
    """
    from tir_env.degradations.base import replay

    listed = bool(rng.integers(2))
    degraded, applied = degrade(clean, list(combo), rng, order="listed" if listed else "physical")
    target = replay(clean, [step for step in applied if step[0] not in own])
    return (round_to_8_bits(degraded) if round_inputs else degraded), target


#: The recipe of every network; together about 30 minutes of one CPU core (docs/tools.md).
RECIPES: dict[str, Recipe] = {
    "learned_dehazing": Recipe(_single("haze"), steps=600, batch=8, crop=128, pool=256),
    "learned_deraining": Recipe(_single("rain"), steps=800),
    "learned_brightening": Recipe(_single("dark"), steps=500, batch=8, crop=128, pool=256, lr=5e-4),
    "learned_motion_deblurring": Recipe(_single("motion_blur"), steps=800, pool=256),
    "learned_defocus_deblurring": Recipe(_single("defocus_blur"), steps=800, pool=256),
    "learned_super_resolution": Recipe(_single("low_resolution"), steps=1000, crop=128),
    "learned_denoising": Recipe(_single("noise"), steps=800),
    "learned_jpeg_artifact_removal": Recipe(_single("jpeg"), steps=800),
    # shipped: trained with --photos corpus@3 --steps-scale 2 (4800 steps; its record)
    "learned_all_in_one": Recipe(
        ALL_IN_ONE_COMBOS, steps=2400, pool=768, loss="psnr", augment=True
    ),
}


# ------------------------------------------------------------------------------ data


#: Where training photos come from: ``corpus`` (the photo corpus' release 1 train/val splits,
#: built by ``tir data photos``: 23 training photos), ``corpus@3`` and ``corpus@4`` (its 63
#: and 93 training photos of releases 1-3 and 1-4, release 1's val photos) or ``bundled`` (the
#: six bundled train photos and the val photo).
#: Set from ``--photos`` by :func:`main`.
PHOTO_SOURCES: dict[str, dict[str, str]] = {
    "corpus": {"train": "corpus:train", "val": "corpus:val"},
    "corpus@3": {"train": "corpus:train@3", "val": "corpus:val"},
    "corpus@4": {"train": "corpus:train@4", "val": "corpus:val"},
    "bundled": {"train": "train", "val": "val"},
}
_photos = "corpus"


def split_source(split: str) -> data.ImageSource:
    """The image source of a training split under the current ``--photos`` choice."""
    return data.source(PHOTO_SOURCES[_photos][split])


@functools.cache
def _photo(spec: str, image_id: str, scale: float) -> np.ndarray:
    """A training photo downscaled by ``scale`` (cached)."""
    from tir_env.images import resize_u8

    image = data.source(spec).load(image_id)
    h, w = image.shape[:2]
    size = (max(CROP, round(h * scale)), max(CROP, round(w * scale)))
    return resize_u8(image, size) if scale != 1.0 else np.asarray(image)


def train_crops(
    split: str, n: int, rng: np.random.Generator, size: int = CROP, augment: bool = False
) -> list[np.ndarray]:
    """``n`` random ``size`` crops of a split's photos at random scales (nearly flat ones redrawn).

    Flat crops (the black surround of ``retina``, empty sky of ``hubble_deep_field``) teach
    nothing, so a crop whose grey-level standard deviation is under 4/255 is redrawn (up to
    ten times). ``augment`` applies :func:`augmented` to each crop.
    """
    spec = PHOTO_SOURCES[_photos][split]
    ids = data.source(spec).ids
    crops = []
    for _ in range(n):
        for _attempt in range(10):
            image_id = ids[int(rng.integers(len(ids)))]
            photo = _photo(spec, image_id, SCALES[int(rng.integers(len(SCALES)))])
            crop = data.random_patch(photo, size, rng)
            if crop.std() >= 4.0:
                break
        crops.append(augmented(crop, rng) if augment else crop)
    return crops


def augmented(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random rotation by a multiple of 90 degrees, flip and colour-channel permutation."""
    image = np.rot90(image, int(rng.integers(4)))
    if rng.integers(2):
        image = image[:, ::-1]
    return np.ascontiguousarray(image[..., rng.permutation(3)])


def make_pair(
    clean: torch.Tensor,
    combo: Combo,
    rng: np.random.Generator,
    scale: int,
    round_inputs: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(degraded input, target) of one clean 1x3xHxW crop.

    The target is the clean crop, except for a scale-1 network given a low-resolution
    input: then it is the clean crop downsampled by the same operator. ``round_inputs``:
    the input rounded to 8 bits (:attr:`Recipe.round_inputs`).
    """
    degraded, _ = degrade(clean, list(combo), rng)
    if round_inputs:
        degraded = round_to_8_bits(degraded)
    target = clean
    if "low_resolution" in combo and scale == 1:
        target = make_degradation("low_resolution").apply(clean, {})
    return degraded, target


@dataclass
class PairSet:
    """Degraded inputs, their targets and (for hybrids) the prior tool's outputs."""

    inputs: list[torch.Tensor]
    targets: list[torch.Tensor]
    priors: list[torch.Tensor] | None


def pair_set(
    split: str,
    n: int,
    recipe: Recipe,
    rng: np.random.Generator,
    scale: int,
    prior: str | None,
) -> PairSet:
    """``n`` crops of ``split``, each degraded by a combination drawn from the recipe.

    Crops are 128x128, except that a scale-1 network's low-resolution examples are cut 4x
    the training crop, so their downsampled targets still fill a training crop. The prior
    tool (if any) runs on every whole degraded image, as it does when the tool is called.
    """
    inputs, targets = [], []
    keep = keep_combos(recipe)
    context = context_combos(recipe) if recipe.context_share > 0 and scale == 1 else ()
    own = {name for combo in recipe.combos for name in combo}
    for _ in range(n):
        # Drawn only with a share, so recipes without one keep their random stream; a
        # super-resolution network's output has another size than its input: no share.
        if context and rng.random() < recipe.context_share:
            crops = train_crops(split, 1, rng, CROP, augment=recipe.augment and split == "train")
            x, y = make_context_pair(
                u8_to_batch(crops[0]),
                context[int(rng.integers(len(context)))],
                own,
                rng,
                recipe.round_inputs,
            )
            inputs.append(x)
            targets.append(y)
            continue
        kept = recipe.keep_share > 0 and scale == 1 and rng.random() < recipe.keep_share
        combos = keep if kept else recipe.combos
        combo = combos[int(rng.integers(len(combos)))]
        small = "low_resolution" in combo and scale == 1
        size = max(CROP, 4 * recipe.crop) if small else CROP
        crop = train_crops(split, 1, rng, size, augment=recipe.augment and split == "train")[0]
        x, y = make_pair(u8_to_batch(crop), combo, rng, scale, recipe.round_inputs)
        inputs.append(x)
        targets.append(x if kept else y)
    priors = None
    if prior is not None:
        from tir_env.tools import make_tool

        tool = make_tool(prior)
        priors = [tool(x) for x in inputs]
    return PairSet(inputs, targets, priors)


def sample_batch(
    pairs: PairSet, recipe: Recipe, scale: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A training batch: random crops (on the 8-pixel grid) of pool images, random h-flips."""
    xs, ys, ps = [], [], []
    for _ in range(recipe.batch):
        i = int(rng.integers(len(pairs.inputs)))
        x, y = pairs.inputs[i], pairs.targets[i]
        p = pairs.priors[i] if pairs.priors is not None else None
        ratio = y.shape[-1] // x.shape[-1]  # 4 for super-resolution, else 1
        side = min(recipe.crop, y.shape[-2], y.shape[-1]) // ratio  # input crop side
        # Offsets on the 8-pixel grid keep JPEG's blocks where they are in whole images.
        top = 8 * int(rng.integers(0, (x.shape[-2] - side) // 8 + 1))
        left = 8 * int(rng.integers(0, (x.shape[-1] - side) // 8 + 1))
        flip = bool(rng.integers(2))

        def cut(
            t: torch.Tensor,
            r: int,
            flip: bool = flip,
            top: int = top,
            left: int = left,
            side: int = side,
        ) -> torch.Tensor:
            out = t[..., top * r : (top + side) * r, left * r : (left + side) * r]
            return out.flip(-1) if flip else out

        xs.append(cut(x, 1))
        ys.append(cut(y, ratio))
        if p is not None:
            ps.append(cut(p, ratio))
    return torch.cat(xs), torch.cat(ys), torch.cat(ps) if ps else None


# ------------------------------------------------------------------------------ metrics


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean PSNR (dB) over a batch of images in [0, 1] (clamped), RGB, capped at 60 dB."""
    return float(fast.psnr(x.clamp(0, 1), y, eps=0.0, floor=1e-6).mean())


def run_net(net: torch.nn.Module, pairs: PairSet, index: int) -> torch.Tensor:
    """The network's output on pool image ``index`` (with its prior), clamped."""
    prior = pairs.priors[index] if pairs.priors is not None else None
    with torch.no_grad():
        return net(pairs.inputs[index], prior).clamp(0, 1)


def val_psnr(net: torch.nn.Module, pairs: PairSet) -> float:
    """Mean PSNR of the network's outputs on a validation set."""
    net.eval()
    scores = [psnr(run_net(net, pairs, i), pairs.targets[i]) for i in range(len(pairs.inputs))]
    net.train()
    return float(np.mean(scores))


# ------------------------------------------------------------------------------ training


def lr_at(step: int, recipe: Recipe) -> float:
    """Linear warm-up over 50 steps, then cosine decay to 0."""
    warm = min(50, recipe.steps // 10)
    if step < warm:
        return recipe.lr * (step + 1) / warm
    progress = (step - warm) / max(1, recipe.steps - warm)
    return recipe.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def fit(
    net: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, tuple[Any, ...]], torch.Tensor],
    batches: Callable[[int], tuple[Any, ...]],
    validate: Callable[[torch.nn.Module], float],
    recipe: Recipe,
    label: str,
) -> tuple[torch.nn.Module, list[tuple[int, float | None, float]]]:
    """Adam with :func:`lr_at` for the whole schedule; return the last network and its curve.

    The curve has ``(step, mean training loss since the last point, validation score)`` at
    the start (no loss yet: ``None``) and 8 times during training.
    """
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    every = max(1, recipe.steps // 8)
    curve: list[tuple[int, float | None, float]] = [(0, None, validate(net))]
    losses: list[float] = []
    net.train()
    for step in tqdm(range(recipe.steps), desc=label, leave=False, mininterval=5):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe)
        loss = loss_fn(net, batches(step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % every == 0 or step + 1 == recipe.steps:
            curve.append((step + 1, float(np.mean(losses)), validate(net)))
            losses = []
    return net.eval(), curve


def train_restorer(name: str, recipe: Recipe, seed: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train learned tool ``name``; return the network and its record fields."""
    from tir_env.tools.learned import spec_of

    spec = spec_of(name)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    torch.manual_seed(seed)
    train = pair_set("train", recipe.pool, recipe, rng, spec.scale, spec.prior)
    # val scores restoring: kept examples (their input is their target) would flatter it
    plain = replace(recipe, keep_share=0.0)
    val = pair_set("val", max(32, 2 * len(recipe.combos)), plain, rng, spec.scale, spec.prior)
    net = spec.build()

    def loss_fn(net: torch.nn.Module, batch: tuple[Any, ...]) -> torch.Tensor:
        x, y, p = batch
        if recipe.loss == "mse":
            return F.mse_loss(net(x, p), y)
        mse = F.mse_loss(net(x, p), y, reduction="none").mean(dim=(1, 2, 3))
        return 10.0 * torch.log10(mse + 1e-4).mean()

    net, curve = fit(
        net,
        loss_fn,
        lambda _: sample_batch(train, recipe, spec.scale, rng),
        lambda n: val_psnr(n, val),
        recipe,
        name,
    )
    pairs = zip(val.inputs, val.targets, strict=True)
    # The super-resolution baseline is the tool table's: bicubic upsampling of the input.
    before = float(np.mean([psnr(upsample_to(x, y), y) for x, y in pairs]))
    return net, {"val_psnr_input": before, "val_curve": curve}


# ------------------------------------------------------------------------------ main


def _share(text: str) -> float:
    """``--keep-share``: a fraction in [0, 1)."""
    value = float(text)
    if not 0.0 <= value < 1.0:  # a share of 1 would leave no example of the degradation
        raise argparse.ArgumentTypeError(f"{text}: give a share from 0 up to (not) 1")
    return value


def parse_args(argv: Sequence[str] | None, prog: str | None = None) -> argparse.Namespace:
    """Command-line options (``prog``: the command's name in ``--help``; ``None``: argparse's)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        choices=sorted(RECIPES),
        metavar="NAME",
        help=f"networks to train (default: all of {', '.join(RECIPES)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the shipped tir_env/assets/learned)",
    )
    parser.add_argument(
        "--photos",
        choices=sorted(PHOTO_SOURCES),
        default="corpus",
        help="training photos: the corpus (`tir data photos`; its release 1; corpus@3 and "
        "corpus@4: its releases 1-3 and 1-4) or "
        "the bundled six",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data and initialisation")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--steps-scale",
        type=float,
        default=1.0,
        help="multiply every recipe's steps (e.g. 0.1 for a smoke run)",
    )
    parser.add_argument(
        "--pool-scale",
        type=float,
        default=1.0,
        help="multiply every recipe's pool of training images (e.g. 0.05 for a smoke run)",
    )
    parser.add_argument(
        "--keep-share",
        type=_share,
        default=None,
        metavar="F",
        help="share of training crops without the network's own degradation, to be left as "
        "they are (default: each recipe's, 0)",
    )
    parser.add_argument(
        "--context-share",
        type=_share,
        default=None,
        metavar="F",
        help="share of training crops holding the network's degradation among others (a "
        "training pair or triple), the target that chain without it (default: each recipe's, 0)",
    )
    parser.add_argument(
        "--round-inputs",
        action="store_true",
        help="round every degraded training input to 8 bits, as the env rounds an episode's",
    )
    parser.add_argument("--no-test", action="store_true", help="skip the test-split scores")
    parser.add_argument(
        "--test-only",
        action="store_true",
        help="train nothing: add the test-split scores and CPU speed to the records of the "
        "networks already in --out (trained with --no-test, scored once chosen on val)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> dict[str, dict[str, Any]]:
    """Train the chosen networks; write weights and records; return the records.

    ``prog`` names the command in ``--help`` (``tir train-tools``); ``None``: argparse's.
    """
    from tir_env.tools.learned.weights import SHIPPED_DIR, weights_folder

    global _photos
    args = parse_args(argv, prog)
    _photos = args.photos
    torch.set_num_threads(args.threads)
    out = args.out or SHIPPED_DIR
    words = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m benchmarks.train_tools", *words]).strip()
    with weights_folder(out):  # the tools evaluated below load what was just written
        if args.test_only:
            return {name: _add_test_scores(name, out) for name in args.only or RECIPES}
        return {name: _train_one(name, args, out, command) for name in args.only or RECIPES}


def _train_one(name: str, args: argparse.Namespace, out: Path, command: str) -> dict[str, Any]:
    """Train, save, evaluate and save again one network; return its record."""
    from tir_env.tools.learned.nets import count_parameters
    from tir_env.tools.learned.weights import save_weights

    base = RECIPES[name]
    recipe = replace(
        base,
        steps=max(1, round(base.steps * args.steps_scale)),
        pool=max(4, round(base.pool * args.pool_scale)),
        keep_share=base.keep_share if args.keep_share is None else args.keep_share,
        round_inputs=base.round_inputs or args.round_inputs,
        context_share=base.context_share if args.context_share is None else args.context_share,
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    net, fields = train_restorer(name, recipe, args.seed)
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    record = {
        "name": name,
        "task": _task(name),
        "network": type(net).__name__,
        "parameters": count_parameters(net),
        "command": command,
        "seed": args.seed,
        "threads": args.threads,
        "photos": _photos,
        "train_split": list(split_source("train").ids),
        "val_split": list(split_source("val").ids),
        "test_split": list(data.SPLITS["test"]),
        "recipe": {**asdict(recipe), "combos": ["+".join(c) for c in recipe.combos]},
        "train_cpu_seconds": round(cpu_s, 1),
        "train_wall_seconds": round(wall_s, 1),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        **fields,
    }
    path = out / f"{name}.safetensors"
    save_weights(net, path, record)
    if not args.no_test:
        record.update(_evaluate(name))
        save_weights(net, path, record)
    print(json.dumps({k: v for k, v in record.items() if k != "val_curve"}, indent=1))
    return record


def _add_test_scores(name: str, out: Path) -> dict[str, Any]:
    """Score a network already in ``out`` on the test split; rewrite its record (weights kept)."""
    from tir_env.tools.learned import spec_of
    from tir_env.tools.learned.weights import load_into, read_record, save_weights

    path = out / f"{name}.safetensors"
    net = load_into(spec_of(name).build(), path)
    record = {**read_record(name), **_evaluate(name)}
    save_weights(net, path, record)
    return record


def _task(name: str) -> str:
    from tir_env.tools.learned import spec_of

    return spec_of(name).task


def _evaluate(name: str) -> dict[str, Any]:
    """Test-split scores and CPU speed of a freshly written network."""
    from tir_env.tools.base import TOOLS

    tool = TOOLS.get(name)()  # a fresh instance: loads the weights just written
    size = CROP // tool.info.scale
    speed = round(cpu_ms_per_image(tool, size), 2)
    return {**test_scores(tool, size=CROP), "cpu_ms_per_128px": speed}


if __name__ == "__main__":
    main()
