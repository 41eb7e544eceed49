"""The deraining tools with and without reading the rain from the unclipped channels.

Rain adds one amount to R, G and B and the sum clips at 1. ``derain_opening`` and
``derain_median`` read the rain layer as the minimum over channels of the image minus a
background estimate; since 2026-12-04 a channel at full scale is left out of that minimum
and, under a streak, takes the background (``tir_env.tools.classical.deraining``). This
study sets each tool against its former self, which took the minimum over all three
channels and subtracted it everywhere, on the same crops: random 128 px crops of the photos,
each clean, with rain, and with haze then rain (the physical order, where the rain is last
and clips), the protocol's parameters drawn per crop. The former rule is put back for the
comparison only (:func:`former_rule`).

    python -m benchmarks.derain_clipping               # measure; JSON and docs/tools.md section
    python -m benchmarks.derain_clipping --doc-only    # the section from the stored JSON
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: (label, tool, parameters other than its defaults) of each row.
ROWS: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("derain_opening", "derain_opening", {}),
    ("derain_opening(width=15)", "derain_opening", {"width": 15.0}),  # the tuned value
    ("derain_median", "derain_median", {}),
)
CASES = ("clean", "rain", "haze>rain")
START, END = "<!-- derain-clipping:start -->", "<!-- derain-clipping:end -->"
ROOT = Path(__file__).resolve().parents[1]
OUT_JSON = ROOT / "benchmarks" / "results" / "derain_clipping.json"


@contextlib.contextmanager
def former_rule() -> Iterator[None]:
    """The rain layer as it was: the minimum over all channels, subtracted everywhere.

    Both the NumPy references (``restore``, which this study runs) and the torch ports
    (``apply``, what a tool call runs on a GPU, and ``derain_median``'s on a CPU) are put back.
    """
    import torch

    from tir_env.images import channel_min
    from tir_env.tools.classical import deraining

    def layer(image: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
        return np.maximum(channel_min(image - background) - threshold, 0.0)[..., None]

    def remove(image: np.ndarray, rain: np.ndarray, background: np.ndarray) -> np.ndarray:
        return image - rain

    def layer_torch(
        batch: torch.Tensor, background: torch.Tensor, threshold: torch.Tensor
    ) -> torch.Tensor:
        return ((batch - background).amin(dim=1, keepdim=True) - threshold).clamp_min(0.0)

    def remove_torch(
        batch: torch.Tensor, rain: torch.Tensor, background: torch.Tensor
    ) -> torch.Tensor:
        return batch - rain

    names = ("_rain_layer", "_remove_rain", "_rain_layer_torch", "_remove_rain_torch")
    saved = [getattr(deraining, name) for name in names]
    for name, former in zip(names, (layer, remove, layer_torch, remove_torch), strict=True):
        setattr(deraining, name, former)
    try:
        yield
    finally:
        for name, current in zip(names, saved, strict=True):
            setattr(deraining, name, current)


def crops(images: str, per_photo: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(case, clean, input) float32 HxWx3 crops: each clean crop in every one of :data:`CASES`."""
    import torch

    from tir_env import data
    from tir_env.degradations.base import make_degradation

    rng = np.random.default_rng(seed)
    rain, haze = make_degradation("rain"), make_degradation("haze")
    source = data.source(images)
    out = []
    for photo_id in source.ids:
        photo = source.load(photo_id)
        for _ in range(per_photo):
            clean = data.random_patch(photo, 128, rng).astype(np.float32) / 255.0
            batch = torch.from_numpy(clean).permute(2, 0, 1)[None]
            rain_params, haze_params = rain.sample(rng), haze.sample(rng)
            rainy = rain.apply(batch, rain_params)
            hazy_rainy = rain.apply(haze.apply(batch, haze_params), rain_params)
            out.append(("clean", clean, clean))
            for case, x in (("rain", rainy), ("haze>rain", hazy_rainy)):
                out.append((case, clean, x[0].permute(1, 2, 0).numpy()))
    return out


def psnr(image: np.ndarray, clean: np.ndarray) -> float:
    """PSNR in dB of ``image`` (clipped to [0, 1]) against ``clean``: the repository's one."""
    import torch

    from tir_env.metrics.fast import psnr as batch_psnr

    def batch(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)).permute(2, 0, 1)[None]

    return float(batch_psnr(batch(np.clip(image, 0.0, 1.0)), batch(clean))[0])


def summary(before: Sequence[float], after: Sequence[float]) -> dict[str, Any]:
    """Means, the paired change with its standard error, and how many crops moved each way."""
    change = np.asarray(after) - np.asarray(before)
    return {
        "n": len(change),
        "former": float(np.mean(before)),
        "now": float(np.mean(after)),
        "change": float(change.mean()),
        "se": float(change.std(ddof=1) / math.sqrt(len(change))) if len(change) > 1 else 0.0,
        "better": int((change > 1e-3).sum()),
        "worse": int((change < -1e-3).sum()),
    }


def measure(cases: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Per row and case, :func:`summary` of the former rule against the current one."""
    from tir_env.tools import make_tool
    from tir_env.tools.classical._common import PerImageTool

    report: dict[str, Any] = {}
    for label, name, extra in ROWS:
        tool = make_tool(name)
        assert isinstance(tool, PerImageTool)  # the deraining tools have a NumPy reference
        params: Mapping[str, float] = {
            **{k: p.default for k, p in tool.info.params.items()},
            **extra,
        }
        now = [psnr(tool.restore(x, params), clean) for _, clean, x in cases]
        with former_rule():
            former = [psnr(tool.restore(x, params), clean) for _, clean, x in cases]
        report[label] = {
            case: summary(
                [f for f, (c, _, _) in zip(former, cases, strict=True) if c == case],
                [n for n, (c, _, _) in zip(now, cases, strict=True) if c == case],
            )
            for case in CASES
        }
    return report


def table(report: Mapping[str, Any]) -> str:
    """The report as a Markdown table: PSNR former -> now, paired change (se), better/worse."""
    lines = [
        "| tool | " + " | ".join(CASES) + " |",
        "|---|" + "---:|" * len(CASES),
    ]
    for label, by_case in report.items():
        cells = [
            f"{s['former']:.2f} -> {s['now']:.2f}, {s['change']:+.3f} ({s['se']:.3f}), "
            f"{s['better']}/{s['worse']}"
            for s in (by_case[case] for case in CASES)
        ]
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(report: Mapping[str, Any]) -> str:
    """The docs/tools.md section: what the rule is, the command, the table."""
    return "\n".join(
        [
            START,
            "## Rain on a clipped channel",
            "",
            "Generated by `python -m benchmarks.derain_clipping` "
            "(`benchmarks/results/derain_clipping.json`).",
            "Rain adds one amount to R, G and B, and the sum clips at 1. `derain_opening` and "
            "`derain_median` read the rain as the minimum over channels of the image minus a "
            "background; a channel at full scale only bounds it, so the minimum leaves it out, "
            "and under a streak that channel takes the background. Against the former rule "
            "(the minimum over all three channels, subtracted everywhere) on "
            f"{report['crops_per_photo']} random 128 px crops a photo of `{report['images']}` "
            f"(seed {report['seed']}), each "
            "clean, with rain, and with haze then rain (the physical order: the rain is last "
            "and clips): mean PSNR former -> now, the paired change (its standard error), and "
            "the crops better / worse.",
            "",
            table(report["rows"]),
            "",
            END,
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure (or read back) the report; write the JSON and the doc section."""
    from benchmarks.tool_speed import stored_or_measured

    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--images", default="corpus:val", help="photos to cut crops from")
    p.add_argument("--crops", type=int, default=10, help="crops per photo")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--out-json", default=str(OUT_JSON))
    p.add_argument("--out-md", default="docs/tools.md", help="'' to print only")
    p.add_argument("--doc-only", action="store_true", help="rewrite the section from the JSON")
    args = p.parse_args(argv)
    if args.crops < 2:
        p.error("--crops: at least 2 (a standard error needs two crops)")

    def run() -> dict[str, Any]:
        import torch

        torch.set_num_threads(1)
        rows = measure(crops(args.images, args.crops, args.seed))
        return {
            "images": args.images,
            "crops_per_photo": args.crops,
            "seed": args.seed,
            "rows": rows,
        }

    return stored_or_measured(args.out_json, args.out_md, args.doc_only, run, section, (START, END))


if __name__ == "__main__":
    main()
