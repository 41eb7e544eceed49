"""Would a brightening that aims at an exposure beat gamma 1.5? Measured, not shipped.

`gamma_correction` brightens every image it is called on by the same curve (V' = V^(1/1.5)),
and a false call costs 7.5 dB on average (docs/tools.md, "What a false call costs"): that is
what makes a misread darkness so expensive. A brightening that reads the image's own exposure
would spare a crop that is bright already: its exponent ``1/g`` with ``g = clip(log(m) /
log(target), 1, cap)``, ``m`` the crop's mean HSV value, reaches ``target`` where it can, never
darkens, and brightens no more than ``cap`` (:func:`exposure_gamma`). This study puts variants
of it against gamma 1.5 where the agents call brightening: on 128 px crops of the photos given
(the val photos by default), degraded with every combination of the suites given in each
suite's own order and rounded to 8 bits, it reads perception's darkness probability and the
PSNR change each brightening makes to the degraded crop. A crop's *utility* at a threshold is
that change where perception reads darkness at or above the threshold, else 0 (the decision an
agent makes, its other calls aside); the table gives its mean over the crops at each threshold.

    python -m benchmarks.bright_target               # measure; JSON and docs/tools.md section
    python -m benchmarks.bright_target --doc-only    # the section from the stored JSON
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

START, END = "<!-- bright-target:start -->", "<!-- bright-target:end -->"
ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "benchmarks" / "results" / "bright_target.json"
#: (label, target mean V, largest gamma): gamma 1.5 first (target 0: the fixed curve).
VARIANTS: tuple[tuple[str, float, float], ...] = (
    ("gamma 1.5", 0.0, 1.5),
    ("target 0.55, cap 1.7", 0.55, 1.7),
    ("target 0.6, cap 1.7", 0.6, 1.7),
    ("target 0.5, cap 2", 0.5, 2.0),
    ("target 0.6, cap 2", 0.6, 2.0),
)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SUITES = ("mio-a", "mio-b", "mio-c", "ood-d2")
CROP = 128


def exposure_gamma(batch: torch.Tensor, target: float, cap: float) -> torch.Tensor:
    """Brighten HSV V by ``V^(1/g)``, ``g`` aimed at mean V ``target`` and kept in [1, cap].

    ``target`` 0: ``g = cap`` for every image (``gamma_correction(gamma=cap)``). Hue and
    saturation are kept (R, G and B scale by ``V'/V``); ``batch`` is N x 3 x H x W in [0, 1].
    """
    value = batch.amax(dim=1, keepdim=True)
    if target <= 0:
        gamma = torch.full((batch.shape[0],), cap, dtype=batch.dtype)
    else:
        mean = value.flatten(1).mean(dim=1).clamp(1e-3, 0.999)
        gamma = (torch.log(mean) / math.log(target)).clamp(1.0, cap)
    brighter = value ** (1.0 / gamma.view(-1, 1, 1, 1))
    return (batch * (brighter / value.clamp_min(1e-6))).clamp(0.0, 1.0)


def _psnr(image: torch.Tensor, clean: torch.Tensor) -> float:
    from tir_env.metrics.fast import psnr

    return float(psnr(image.clamp(0, 1), clean)[0])


def crop_rows(images: str, per_combo: int, seed: int) -> list[dict[str, Any]]:
    """Each crop's suite, whether it was darkened, perception's reading and each change."""
    from benchmarks.perception_report import degraded_crops
    from tir_env import data, perception
    from tir_env.images import batch_to_u8, resize, u8_to_batch

    source = data.source(images)
    photos = [source.load(i) for i in source.ids]
    rng = np.random.default_rng(seed)
    rows = []
    for suite, combo, clean, degraded, _ in degraded_crops(photos, SUITES, per_combo, rng):
        degraded = u8_to_batch(batch_to_u8(degraded))  # the env's 8-bit input
        if degraded.shape != clean.shape:  # low resolution: scored at the clean size
            size = (int(clean.shape[-2]), int(clean.shape[-1]))
            degraded = resize(degraded, size).clamp(0, 1)
        seen = perception.perceive_photo(batch_to_u8(degraded), size=(CROP, CROP))
        before = _psnr(degraded, clean)
        rows.append(
            {
                "suite": suite,
                "dark": "dark" in combo,
                "p_dark": float(seen.probs["dark"]),
                "change": {
                    label: _psnr(exposure_gamma(degraded, target, cap), clean) - before
                    for label, target, cap in VARIANTS
                },
            }
        )
    return rows


def utility(rows: Sequence[Mapping[str, Any]], label: str, threshold: float) -> float:
    """Mean change per crop when brightening exactly where darkness reads >= ``threshold``."""
    return float(np.mean([r["change"][label] if r["p_dark"] >= threshold else 0.0 for r in rows]))


def summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per variant: right and false calls' mean change, the utility at each threshold."""
    out: dict[str, Any] = {}
    dark = [r for r in rows if r["dark"]]
    other = [r for r in rows if not r["dark"]]
    for label, _, _ in VARIANTS:
        at = {str(t): utility(rows, label, t) for t in THRESHOLDS}
        out[label] = {
            "right_call": float(np.mean([r["change"][label] for r in dark])),
            "false_call": float(np.mean([r["change"][label] for r in other])),
            "utility": at,
            "best_threshold": max(at, key=at.__getitem__),
            "told": float(np.mean([r["change"][label] if r["dark"] else 0.0 for r in rows])),
        }
    return out


def section(report: Mapping[str, Any]) -> str:
    """The docs/tools.md section."""
    s = report["summary"]
    head = "| brightening | right call | false call | " + " | ".join(f"at {t}" for t in THRESHOLDS)
    lines = [
        head + " | best | told the truth |",
        "|---|---:|---:|" + "---:|" * len(THRESHOLDS) + "---:|---:|",
    ]
    for label, _, _ in VARIANTS:
        v = s[label]
        cells = " | ".join(f"{v['utility'][str(t)]:+.3f}" for t in THRESHOLDS)
        best = v["utility"][v["best_threshold"]]
        lines.append(
            f"| {label} | {v['right_call']:+.2f} | {v['false_call']:+.2f} | {cells} | "
            f"{best:+.3f} (at {v['best_threshold']}) | {v['told']:+.3f} |"
        )
    base = s[VARIANTS[0][0]]
    at_best = {label: s[label]["utility"][s[label]["best_threshold"]] for label in s}
    rival = max((label for label, _, _ in VARIANTS[1:]), key=at_best.__getitem__)
    gap = at_best[rival] - at_best[VARIANTS[0][0]]
    return "\n".join(
        [
            START,
            "## A brightening that aims at an exposure (measured, not shipped)",
            "",
            f"Generated by `{report['command']}` (`benchmarks/results/bright_target.json`; "
            "`benchmarks/bright_target.py` says what is measured). "
            f"{report['crops']} crops of `{report['images']}` ({report['darkened']} darkened), "
            f"the combinations of {', '.join(f'`{x}`' for x in SUITES)}. PSNR change (dB) of "
            "the degraded crop: *right call* on the darkened crops, *false call* on the others; "
            "then the mean change per crop where perception's darkness reading is at or above "
            "each threshold (perception v2 ships 0.5); *told the truth*: brightening exactly "
            "the darkened crops.",
            "",
            *lines,
            "",
            "Aiming at an exposure makes a false call cheaper but a right call weaker: each at "
            f"its best threshold, the best of the variants (`{rival}`) ends {gap:+.3f} dB a "
            "crop from gamma 1.5, so nothing ships. What an agent loses to darkness is the "
            "reading, not the curve: told which crops were darkened, gamma 1.5 would gain "
            f"{base['told']:+.2f} dB a crop against {base['utility'][base['best_threshold']]:+.2f} "
            "at perception's best threshold.",
            "",
            END,
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure (or read back) the report; write the JSON and the doc section."""
    from benchmarks.tool_speed import stored_or_measured

    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--images", default="corpus:val@3", help="photos to cut crops from")
    p.add_argument("--crops", type=int, default=24, help="crops per combination")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--out-json", default=str(OUT_JSON))
    p.add_argument("--out-md", default="docs/tools.md", help="'' to print only")
    p.add_argument("--doc-only", action="store_true", help="rewrite the section from the JSON")
    args = p.parse_args(argv)
    if args.crops < 1:
        p.error("--crops: at least 1")
    given = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(
        ["python", "-m", "benchmarks.bright_target", *(a for a in given if a != "--doc-only")]
    )

    def run() -> dict[str, Any]:
        torch.set_num_threads(2)
        rows = crop_rows(args.images, args.crops, args.seed)
        return {
            "command": command,
            "images": args.images,
            "seed": args.seed,
            "crops": len(rows),
            "darkened": sum(r["dark"] for r in rows),
            "summary": summary(rows),
            "rows": rows,
        }

    measure: Callable[[], dict[str, Any]] = run
    markers = (START, END)
    return stored_or_measured(args.out_json, args.out_md, args.doc_only, measure, section, markers)


if __name__ == "__main__":
    main()
