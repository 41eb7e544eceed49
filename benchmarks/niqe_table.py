"""Does NIQE (in-repo fit) rank clean photos above degraded ones? The table in docs/metrics.md.

For every registered degradation, the bundled test photos (``tir_env.data.bundled("test")``,
centre crops of ``--size`` px; ``--split val --crops 8`` for choosing a fit) are degraded over
``--seeds`` seeds; NIQE (lower is better) of the clean crop and of the degraded one are
averaged. ``low_resolution`` shrinks the image 4x; its output is upsampled back (bicubic) so
NIQE sees the same size. "scored worse" counts the (crop, seed) pairs where the degraded image
scores higher (worse) than its clean crop.

It also regenerates the generated sections of ``docs/metrics.md`` (``--docs``): the metric
table and the weight-file table (from the code), and this NIQE table.

Usage::

    python -m benchmarks.niqe_table --size 256 --seeds 3 --docs docs/metrics.md
    python -m benchmarks.niqe_table --split val --crops 8 --seeds 2 --params /tmp/fit.mat
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch

from tir_env import data
from tir_env.images import resize, u8_to_batch
from tir_env.metrics import Metric
from tir_env.metrics.niqe import NIQE_PARAMS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


@dataclass(frozen=True)
class NiqeRow:
    """Mean NIQE of clean and degraded test crops for one degradation.

    Attributes:
        degradation: Degradation name.
        clean: Mean NIQE of the clean crops.
        degraded: Mean NIQE of the degraded crops.
        worse: Pairs where the degraded crop scored worse (higher) than its clean crop.
        n: Number of (photo, seed) pairs.
    """

    degradation: str
    clean: float
    degraded: float
    worse: int
    n: int


def niqe_metric(params: Path = NIQE_PARAMS) -> Metric:
    """A fresh NIQE metric on the CPU using the parameter file ``params``."""
    from tir_env.metrics import METRICS
    from tir_env.metrics.pyiqa_backend import MetricSpec

    spec = cast(MetricSpec, METRICS.get("niqe"))  # the built-in NIQE is declared as a spec
    spec = dataclasses.replace(spec, options={"pretrained_model_path": str(params)})
    return spec(device="cpu")


def clean_crops(split: str, size: int, crops: int) -> torch.Tensor:
    """Centre crops of an image source (``crops=0``) or ``crops`` random crops per photo.

    ``split`` is any :func:`tir_env.data.source` spec: ``test`` and ``val`` are the bundled
    photos, ``corpus:val@3`` the corpus' val photos up to release 3, or a folder.
    """
    source = data.source(split)
    rng = np.random.default_rng(123)
    patches = []
    for image_id in source.ids:
        image = source.load(image_id)
        if crops == 0:
            patches.append(data.center_patch(image, size))
        else:
            patches.extend(data.random_patch(image, size, rng) for _ in range(crops))
    return torch.cat([u8_to_batch(p) for p in patches])


def niqe_rows(
    names: Sequence[str],
    size: int,
    seeds: int,
    params: Path = NIQE_PARAMS,
    split: str = "test",
    crops: int = 0,
) -> list[NiqeRow]:
    """One :class:`NiqeRow` per degradation of ``names``."""
    from tir_env.degradations import make_degradation

    metric = niqe_metric(params)
    clean = clean_crops(split, size, crops)
    clean_scores = metric(clean).numpy()
    rows = []
    for name in names:
        degradation = make_degradation(name)
        scores = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            degraded = torch.cat([degradation(c[None], rng)[0] for c in clean])
            scores.append(metric(resize(degraded, (size, size))).numpy())
        deg = np.stack(scores)  # seeds x photos
        rows.append(
            NiqeRow(
                name,
                float(clean_scores.mean()),
                float(deg.mean()),
                int((deg > clean_scores[None]).sum()),
                deg.size,
            )
        )
    return rows


def rows_markdown(rows: Sequence[NiqeRow], command: str) -> str:
    """The NIQE table as Markdown, with the command that made it."""
    lines = [
        "| degradation | NIQE clean | NIQE degraded | degraded scored worse |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.degradation} | {r.clean:.2f} | {r.degraded:.2f} | {r.worse}/{r.n} |")
    share = sum(r.worse for r in rows) / max(1, sum(r.n for r in rows))
    return "\n".join(lines) + f"\n\nOverall share scored worse: {share:.2f}. Made with `{command}`."


def metrics_markdown() -> str:
    """The registry table: name, FR/NR, direction, range, backend, weight files, cost."""
    from tir_env.metrics import metric_info, metric_names
    from tir_env.metrics.weights import REQUIRED_WEIGHTS

    lines = [
        "| metric | FR/NR | better | range | backend | weight files | cost | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in metric_names():
        info = metric_info(name)
        files = ", ".join(f"`{f.relpath}`" for f in REQUIRED_WEIGHTS.get(name, ())) or "none"
        lines.append(
            f"| `{name}` | {'FR' if info.needs_reference else 'NR'} | "
            f"{'lower' if info.lower_better else 'higher'} | {info.range[0]:g}-{info.range[1]:g} | "
            f"{info.backend} | {files} | {info.cost:g} | {info.description} |"
        )
    return "\n".join(lines)


def replace_section(text: str, key: str, body: str) -> str:
    """Replace the text between ``<!-- key:start -->`` and ``<!-- key:end -->``."""
    pattern = re.compile(rf"(<!-- {key}:start -->\n).*?(<!-- {key}:end -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"docs section {key!r} markers not found")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


#: The fits compared on the corpus' val photos when the corpus fit replaced the bundled one.
FIT_CHOICE = Path(__file__).parent / "results" / "niqe_fit" / "val.json"


def fit_choice_markdown(path: Path = FIT_CHOICE) -> str:
    """The table of NIQE fits compared on val photos, from their committed results."""
    results = json.loads(path.read_text())
    lines = [
        f"Each fit scored by `{results['measure']}` (rule {results['rule']}: the highest share "
        "ships if it is not below the bundled fit's):",
        "",
        "| fit | pristine blocks | mean NIQE of the clean crops | degraded crops scored worse |",
        "|---|---:|---:|---:|",
    ]
    best = max(results["candidates"].values(), key=lambda c: c["worse"])
    for c in results["candidates"].values():
        share = f"{c['worse']}/{c['n']} = {c['worse'] / c['n']:.3f}"
        cells = [f"`{c['recipe']}`", str(c["pristine_blocks"]), f"{c['clean_mean']:.2f}", share]
        if c is best:
            cells = [f"**{x}**" for x in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_docs(path: Path, niqe_md: str | None) -> None:
    """Regenerate the generated sections of ``docs/metrics.md``."""
    from tir_env.metrics.weights import weights_table_markdown

    text = path.read_text()
    text = replace_section(text, "metric-table", metrics_markdown())
    text = replace_section(text, "weights-table", weights_table_markdown())
    text = replace_section(text, "niqe-fit", fit_choice_markdown())
    if niqe_md is not None:
        text = replace_section(text, "niqe-table", niqe_md)
    path.write_text(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="centre-crop side (>= 192 px)")
    p.add_argument("--seeds", type=int, default=3, help="degradation seeds per photo")
    p.add_argument("--params", type=Path, default=NIQE_PARAMS, help="NIQE .mat parameters")
    p.add_argument(
        "--split", default="test", help="image source: test, val (bundled), corpus:val@3, a folder"
    )
    p.add_argument("--crops", type=int, default=0, help="random crops per photo (0: centre)")
    p.add_argument("--only", nargs="*", help="degradations to test (default: all registered)")
    p.add_argument("--docs", type=Path, help="also update this docs/metrics.md")
    p.add_argument("--tables-only", action="store_true", help="skip NIQE; update code tables")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[NiqeRow]:
    """Print the NIQE table (and update the docs); return the rows."""
    args = parse_args(argv)
    torch.set_grad_enabled(False)
    rows: list[NiqeRow] = []
    niqe_md = None
    if not args.tables_only:
        from tir_env.degradations import degradation_names

        names = args.only or degradation_names()
        rows = niqe_rows(names, args.size, args.seeds, args.params, args.split, args.crops)
        shown = list(argv if argv is not None else sys.argv[1:])
        command = shlex.join(["python", "-m", "benchmarks.niqe_table", *shown])
        niqe_md = rows_markdown(rows, command)
        print(niqe_md)
    if args.docs:
        update_docs(args.docs, niqe_md)
        print(f"updated {args.docs}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
