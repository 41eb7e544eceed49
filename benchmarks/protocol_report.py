"""What the protocol choices do to the inputs: listed vs physical order, crops vs whole photos.

For every MiO100 combination and photo, the same degradation parameters are drawn and applied
in AgenticIR's listed order and in TIR's physical order, on whole photos and on 128 px crops;
the table is the input PSNR / SSIM (RGB, pyiqa's convention) of each setting. The gap between
a crop's mean PSNR and the PSNR of the pooled error shows why whole-image scoring matters.

    python -m benchmarks.protocol_report --images corpus:test --out benchmarks/results/protocol.json
    python -m benchmarks.protocol_report --doc-only   # docs/protocols.md from the JSON
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from tir_env import data
from tir_env.degradations import degrade
from tir_env.degradations.protocols import COMBOS
from tir_env.images import batch_to_u8, u8_to_batch
from tir_env.metrics.fast import psnr

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "protocol.json"
DOC = ROOT / "docs" / "protocols.md"
GROUPS = ("mio-a", "mio-b", "mio-c")
CROP = 128


def input_psnr(clean: np.ndarray, combo: Sequence[str], order: str, seed: int) -> float:
    """PSNR (dB) of one degraded input against its clean image (8-bit, as saved)."""
    batch = u8_to_batch(clean)
    rng = np.random.default_rng(seed)
    degraded, _ = degrade(batch, combo, rng, order=order)  # type: ignore[arg-type]
    if degraded.shape[-2:] != batch.shape[-2:]:  # low resolution: scored at the clean size
        from tir_env.images import resize

        degraded = resize(degraded, (int(batch.shape[-2]), int(batch.shape[-1])))
    return float(psnr(u8_to_batch(batch_to_u8(degraded)), batch)[0])


def measure(images: str, limit: int | None) -> list[dict[str, Any]]:
    """One row per (group, combination): mean input PSNR in each setting."""
    source = data.source(images)
    ids = source.ids[:limit] if limit else source.ids
    photos = {i: data.whole_image(source.load(i)) for i in ids}
    rows = []
    combos = [(g, c) for g in GROUPS for c in COMBOS[g]]
    for group, combo in tqdm(combos, desc="combinations"):
        cells: dict[str, list[float]] = {}
        for image_id, photo in photos.items():
            seed = zlib.crc32(f"{image_id}|{'+'.join(combo)}".encode())
            crop = data.center_patch(photo, CROP)
            for order in ("listed", "physical"):
                cells.setdefault(f"whole_{order}", []).append(input_psnr(photo, combo, order, seed))
                cells.setdefault(f"crop_{order}", []).append(input_psnr(crop, combo, order, seed))
        row: dict[str, Any] = {"group": group, "combination": "+".join(combo)}
        row.update({k: statistics.fmean(v) for k, v in cells.items()})
        row["photos"] = len(photos)
        rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The table of docs/protocols.md (PSNR in dB; order gap = listed - physical)."""
    head = (
        "| group | combination (listed order) | whole, listed | whole, physical | order gap |"
        " 128 px crop, listed | crop - whole |\n|---|---|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        gap = r["whole_listed"] - r["whole_physical"]
        crop_gap = r["crop_listed"] - r["whole_listed"]
        lines.append(
            f"| {r['group']} | {r['combination']} | {r['whole_listed']:.2f} | "
            f"{r['whole_physical']:.2f} | {gap:+.2f} | {r['crop_listed']:.2f} | {crop_gap:+.2f} |"
        )
    return "\n".join(lines)


def write_doc(results: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the generated table in ``doc`` (between its markers)."""
    from benchmarks.niqe_table import replace_section

    body = (
        f"Made by `{results['command']}` ({results['rows'][0]['photos']} photos of "
        f"`{results['images']}`; input PSNR in dB, RGB).\n\n{markdown(results['rows'])}"
    )
    doc.write_text(replace_section(doc.read_text(), "order-table", body))


def main(argv: Sequence[str] | None = None) -> int:
    """Measure (or only re-render with ``--doc-only``) and write the JSON and the doc."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", default="corpus:test", help="image source (default corpus:test)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    p.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    p.add_argument("--doc-only", action="store_true", help="re-render the doc from --out")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if not args.doc_only:
        rows = measure(args.images, args.limit)
        shown = argv if argv is not None else sys.argv[1:]
        command = "python -m benchmarks.protocol_report " + " ".join(shown)
        results = {"images": args.images, "rows": rows, "command": command.strip()}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    results = json.loads(args.out.read_text())
    if not all(math.isfinite(r["whole_listed"]) for r in results["rows"]):
        raise SystemExit("non-finite PSNR in the results")
    write_doc(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
