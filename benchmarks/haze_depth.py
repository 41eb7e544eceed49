"""Input PSNR of haze with the depth proxy against a depth folder, on whole photos.

Hazes every photo of a source with AgenticIR's parameters (A ~ U(0.7, 1), beta ~ U(0.6, 1.8),
``--draws`` seeded draws per photo, plus the midpoint A = 0.85, beta = 1.2) once with the
proxy and once with each photo's map from a depth folder, and prints the mean depth and the
mean input PSNR (RGB, 8-bit quantised input) of both.

Without ``--depth`` it writes a **synthetic** folder first (:func:`ground_plane_depth`): a
flat ground plane seen from eye level, the same for every photo and blind to its content,
whose mean depth (0.29) matches AgenticIR's example map. It shows what a depth map of
MiO100's statistics does to the numbers; it is not a depth estimate of these photos.

    python -m benchmarks.haze_depth                          # bundled test photos, synthetic
    python -m benchmarks.haze_depth --depth folder:DIR       # your maps
    python -m benchmarks.haze_depth --depth model:DIR        # a local depth model
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from tir_env import data
from tir_env.degradations import make_degradation
from tir_env.degradations.depth import depth_provider, disparity_to_depth
from tir_env.degradations.synthesis import depth_proxy
from tir_env.images import batch_to_u8, u8_to_batch
from tir_env.metrics import make_metric

#: Nearest over farthest depth of the synthetic maps (AgenticIR's example map: 1/11.4).
NEAR_FAR = 1.0 / 12.0


def ground_plane_depth(h: int, w: int, near_far: float = NEAR_FAR) -> np.ndarray:
    """Synthetic depth of a ground plane filling the frame, in the depth convention.

    Disparity falls linearly from the bottom row (1) to the top row (0);
    :func:`~tir_env.degradations.depth.disparity_to_depth` with floor ``near_far`` turns it
    into depth: ``near_far`` at the bottom, 1 at the top, mean ``f (1 + ln(1/f))`` = 0.29 for
    ``f = 1/12``, the mean of AgenticIR's example map.
    """
    disparity = np.linspace(0.0, 1.0, h)
    return np.repeat(disparity_to_depth(disparity, near_far)[:, None], w, axis=1)


def write_synthetic(folder: Path, source: data.ImageSource) -> Path:
    """Write :func:`ground_plane_depth` for every photo of ``source`` as 16-bit PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    for image_id in source.ids:
        h, w = source.load(image_id).shape[:2]
        depth = ground_plane_depth(h, w)
        cv2.imwrite(
            str(folder / f"{Path(image_id).stem}.png"), np.rint(depth * 65535).astype(np.uint16)
        )
    return folder


def input_psnr(photo: np.ndarray, depth: np.ndarray | None, params: dict[str, float]) -> float:
    """PSNR of the 8-bit hazy photo against the clean one (``depth=None``: the proxy)."""
    clean = u8_to_batch(photo)
    hazy = make_degradation("haze").with_depth(depth).apply(clean, params)
    hazy = u8_to_batch(batch_to_u8(hazy))
    return float(make_metric("psnr")(hazy, clean)[0])


def main(argv: list[str] | None = None) -> int:
    """Print the proxy-vs-folder table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="test", help="image source (default: bundled test)")
    parser.add_argument(
        "--depth", default=None, help="folder:DIR or model:DIR (default: synthetic)"
    )
    parser.add_argument("--draws", type=int, default=8, help="(A, beta) draws per photo")
    args = parser.parse_args(argv)
    source = data.source(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        spec = args.depth or f"folder:{write_synthetic(Path(tmp), source)}"
        label = args.depth or f"SYNTHETIC ground plane, near/far {NEAR_FAR:.3f} (not a real map)"
        provider = depth_provider(spec)
        rng = np.random.default_rng(0)
        haze = make_degradation("haze")
        print(f"depth: {label}\n")
        print(
            "| photo | mean d proxy | mean d depth | PSNR proxy | PSNR depth "
            "| beta 1.2 proxy | beta 1.2 depth |"
        )
        print("|---|---|---|---|---|---|---|")
        totals = []
        for image_id in source.ids:
            photo = source.load(image_id)
            depth, _ = provider.depth(image_id, photo)
            draws = [haze.sample(rng) for _ in range(args.draws)]
            mid = {"A": 0.85, "beta": 1.2}
            row = [
                float(depth_proxy((photo / 255.0).astype(np.float32)).mean()),
                float(np.mean(depth)) if depth is not None else float("nan"),
                float(np.mean([input_psnr(photo, None, p) for p in draws])),
                float(np.mean([input_psnr(photo, depth, p) for p in draws])),
                input_psnr(photo, None, mid),
                input_psnr(photo, depth, mid),
            ]
            totals.append(row)
            print(f"| {image_id} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
        mean = np.mean(totals, axis=0)
        print("| **mean** | " + " | ".join(f"{v:.2f}" for v in mean) + " |")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    raise SystemExit(main())
