"""Fit NIQE's pristine model on the corpus' train photos: ``tir_env/assets/niqe_tir_params.mat``.

Follows Mittal, Soundararajan & Bovik (IEEE SPL 2013) and their MATLAB release
(``estimatemodelparam.m``): every image is converted to luma (pyiqa's rounded YIQ-Y, as NIQE
sees it at test time), cut into 96x96 blocks; per block, 18 MSCN features at full and 18 at
half resolution (pyiqa's ``compute_feature``); a block is kept when its mean local sigma
exceeds ``sharpness`` (0.75) times the image's sharpest block; a multivariate Gaussian is fit
to all kept blocks. The defaults are the paper's procedure on the corpus' 63 train photos
(releases 1-3), which made the shipped file; options add blocks on shifted grids (``--stride``
below 96), downscaled copies of each photo (``--scales``) and mirrored views (``--augment``),
which the six bundled photos once needed (see docs/metrics.md for what was tried).

Usage::

    python -m benchmarks.fit_niqe                      # writes tir_env/assets/niqe_tir_params.mat
    python -m benchmarks.fit_niqe --split train --stride 48 --scales 0.5 --augment --out old.mat
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
import torch

from tir_env import data
from tir_env.images import resize, u8_to_batch
from tir_env.metrics.niqe import BLOCK, NIQE_PARAMS, block_features, fit_mvg, luma255, select_sharp


def image_features(
    batch: torch.Tensor, stride: int, sharpness: float, block: int = BLOCK
) -> np.ndarray:
    """Kept block features (K x 36) of one 1x3xHxW image, over grids shifted by ``stride``."""
    y = luma255(batch)
    kept = []
    for dy in range(0, block, stride):
        for dx in range(0, block, stride):
            shifted = y[..., dy:, dx:]
            if min(shifted.shape[-2:]) < block:
                continue
            feats, sharp = block_features(shifted, block)
            kept.append(select_sharp(feats, sharp, sharpness))
    return torch.cat(kept).numpy() if kept else np.zeros((0, 36))


def dihedral(batch: torch.Tensor) -> list[torch.Tensor]:
    """The image, mirrored, transposed, and both (four views of it).

    They swap horizontal, vertical and diagonal neighbour statistics, so the pristine model
    does not learn the photos' orientation.
    """
    flipped = batch.flip(-1)
    return [batch, flipped, batch.transpose(-1, -2), flipped.transpose(-1, -2)]


def pristine_features(
    split: str,
    stride: int,
    sharpness: float,
    scales: Sequence[float],
    augment: bool,
    ids: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Stack the kept block features of every photo of ``split`` (or ``ids``) at every scale."""
    source = data.source(split)
    rows, counts = [], {}
    for image_id in ids or source.ids:
        full = u8_to_batch(source.load(image_id))
        for scale in scales:
            h, w = full.shape[-2:]
            size = (round(h * scale), round(w * scale))
            if min(size) < BLOCK:
                continue
            scaled = resize(full, size).contiguous()
            views = dihedral(scaled) if augment else [scaled]
            feats = np.concatenate([image_features(v, stride, sharpness) for v in views])
            counts[f"{image_id}@{scale:g}"] = len(feats)
            rows.append(feats)
    return np.concatenate(rows), counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--split",
        default="corpus:train@3",
        help="image source to fit on: corpus:train@3 (default), train (the bundled six), a folder",
    )
    p.add_argument("--ids", nargs="+", help="only these photos of the split")
    p.add_argument("--stride", type=int, default=96, help="block grid stride (paper: 96)")
    p.add_argument("--sharpness", type=float, default=0.75, help="keep threshold (paper 0.75)")
    p.add_argument(
        "--scales", type=float, nargs="+", default=[1.0], help="resize factors (paper: 1)"
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="add mirrored and transposed copies (paper: no)",
    )
    p.add_argument("--out", type=Path, default=NIQE_PARAMS, help="output .mat file")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> Path:
    """Fit and save the model; return the path written."""
    args = parse_args(argv)
    torch.set_grad_enabled(False)
    feats, counts = pristine_features(
        args.split, args.stride, args.sharpness, args.scales, args.augment, args.ids
    )
    mu, cov = fit_mvg(feats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        args.out,
        {
            "mu_prisparam": mu,
            "cov_prisparam": cov,
            "n_blocks": np.array([[len(feats)]]),
            "recipe": np.array(
                [
                    f"benchmarks/fit_niqe.py --split {args.split} "
                    + (f"--ids {' '.join(args.ids)} " if args.ids else "")
                    + f"--stride {args.stride} "
                    f"--sharpness {args.sharpness} --scales {' '.join(map(str, args.scales))} "
                    f"--{'' if args.augment else 'no-'}augment"
                ]
            ),
        },
        do_compression=True,
    )
    print(f"{len(feats)} pristine blocks: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main(sys.argv[1:])
