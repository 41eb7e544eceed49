"""Can a no-reference scorer choose a task's tool better than the prior?

For every AgenticIR degradation type: random 128 px crops of ``--images`` with that type (and,
in half of them, one other type, applied in a random listed order: the suites' inputs), each
restored by its task's preferred tool (the prior, what ``fixed`` runs) and by every other tool
of that task (default parameters). A search agent with ``prior_margin`` m takes a rival when
the scorer rates it more than m above the preferred tool; this reports the PSNR that rule
gains over always taking the preferred tool, for a grid of margins, and the margin that gains
most. Low resolution is never the second type of another task's crop (the other tools would
work at a quarter of the size).

The scorer has seen its own training photos: measured there, it looks better than it is, so
the answer is only meaningful on photos it was not trained on (``corpus:val``).

Usage::

    python -m benchmarks.tool_choice --images corpus:val --crops 48 --seed 1
    python -m benchmarks.tool_choice --doc-only   # the docs/agents.md section from the JSON
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.tool_speed import stored_or_measured

RESULTS = Path("benchmarks/results/search_prior/tool_choice.json")
DOC = Path("docs/agents.md")
START, END = "<!-- tool-choice:start -->", "<!-- tool-choice:end -->"
#: Margins (scorer units, dB for ``tirqa``) the decision rule is evaluated at.
MARGINS = tuple(float(m) for m in np.arange(0.0, 12.01, 0.25))
SHOWN = (0.0, 1.0, 3.0, 5.0, 10.0)
CROP = 128


def crop_rows(
    name: str, photos: Sequence[np.ndarray], n: int, rng: np.random.Generator, scorer: str
) -> dict[str, Any]:
    """PSNR and score of the preferred tool and each rival on ``n`` crops with ``name``."""
    from agents.baselines import preferred_tool
    from tir_env import data
    from tir_env.degradations import make_degradation
    from tir_env.degradations.base import degrade
    from tir_env.degradations.protocols import AGENTICIR_TYPES
    from tir_env.images import round_to_8_bits, u8_to_batch
    from tir_env.metrics.base import make_metric
    from tir_env.metrics.fast import psnr
    from tir_env.tools.base import make_tool, tool_info, tool_names

    tools = tuple(tool_names(kinds=("classical",)))
    task = make_degradation(name).info.task
    preferred = preferred_tool(task, tools)
    assert preferred is not None
    rivals = [t for t in tools if tool_info(t).task == task and t != preferred]
    others = [t for t in AGENTICIR_TYPES if t not in (name, "low_resolution")]
    metric = make_metric(scorer)
    sign = -1.0 if metric.info.lower_better else 1.0
    rows = []
    for k in range(n):
        clean = u8_to_batch(data.random_patch(photos[k % len(photos)], CROP, rng))
        names = [name] + ([str(rng.choice(others))] if rng.random() < 0.5 else [])
        rng.shuffle(names)
        degraded, _ = degrade(clean, names, rng, order="listed")
        degraded = round_to_8_bits(degraded)  # the env's uint8 input
        outputs = {t: make_tool(t)(degraded) for t in (preferred, *rivals)}
        rows.append(
            {
                "degradations": names,
                "psnr": {t: float(psnr(y, clean)[0]) for t, y in outputs.items()},
                "score": {t: sign * float(metric(y)[0]) for t, y in outputs.items()},
            }
        )
    return {"task": task, "preferred": preferred, "rivals": rivals, "rows": rows}


def rule_gains(entry: dict[str, Any]) -> list[float]:
    """Mean PSNR gain over the preferred tool of "take a rival scored > m above it", per margin."""
    preferred, rows = entry["preferred"], entry["rows"]
    gains = []
    for m in MARGINS:
        total = 0.0
        for r in rows:
            pick = max(r["score"], key=lambda t: r["score"][t] + (m if t == preferred else 0.0))
            total += r["psnr"][pick] - r["psnr"][preferred]
        gains.append(total / max(1, len(rows)))
    return gains


def best_rival_gain(entry: dict[str, Any]) -> float:
    """Mean PSNR gain of an oracle that takes the truly best of the task's tools."""
    rows = entry["rows"]
    return sum(max(r["psnr"].values()) - r["psnr"][entry["preferred"]] for r in rows) / max(
        1, len(rows)
    )


def run(images: str, crops: int, seed: int, scorer: str) -> dict[str, Any]:
    """Every type's crops, the rule's gains and the best margin (smallest of the maxima)."""
    from tir_env import data
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    torch.set_num_threads(1)
    source = data.source(images)
    photos = [source.load(i) for i in source.ids]
    rng = np.random.default_rng(seed)
    types = {}
    for name in tqdm(AGENTICIR_TYPES, desc="types"):
        entry = crop_rows(name, photos, crops, rng, scorer)
        gains = rule_gains(entry)
        entry["gains"] = gains
        entry["best_margin"] = MARGINS[int(np.argmax(gains))]
        entry["oracle_gain"] = best_rival_gain(entry)
        types[name] = entry
    command = (
        f"python -m benchmarks.tool_choice --images {images} --crops {crops} --seed {seed}"
        + (f" --scorer {scorer}" if scorer != "tirqa" else "")
    )
    return {
        "images": images,
        "photos": len(photos),
        "crops": crops,
        "seed": seed,
        "scorer": scorer,
        "margins": list(MARGINS),
        "command": command,
        "types": types,
    }


def section(report: dict[str, Any]) -> str:
    """The Markdown section (with its markers) for ``docs/agents.md``."""
    margins = report["margins"]
    cols = [margins.index(m) for m in SHOWN]
    lines = [
        START,
        f"Made by `{report['command']}` ({report['photos']} photos, {report['crops']} crops "
        f"of 128 px per type; scorer `{report['scorer']}`; default parameters). Mean PSNR "
        "gain (dB) over always running the preferred tool of taking a rival scored more than "
        "the margin above it; *truly best*: an oracle's pick among the task's tools.",
        "",
        "| type | preferred tool | rivals | "
        + " | ".join(f"margin {m:g}" for m in SHOWN)
        + " | best margin | truly best |",
        "|---|---|---|" + "---:|" * (len(SHOWN) + 2),
    ]
    for name, e in report["types"].items():
        gains = " | ".join(f"{e['gains'][c]:+.2f}" for c in cols)
        lines.append(
            f"| {name} | `{e['preferred']}` | {', '.join(f'`{r}`' for r in e['rivals'])} | "
            f"{gains} | {e['best_margin']:g} ({max(e['gains']):+.2f}) | "
            f"{e['oracle_gain']:+.2f} |"
        )
    return "\n".join([*lines, END])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure (unless ``--doc-only``), write the JSON and the doc section."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="corpus:val")
    p.add_argument("--crops", type=int, default=48)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scorer", default="tirqa")
    p.add_argument("--out-json", default=str(RESULTS))
    p.add_argument("--out-md", default=str(DOC))
    p.add_argument("--doc-only", action="store_true", help="rewrite the doc from the JSON")
    args = p.parse_args(argv)
    return stored_or_measured(
        args.out_json,
        args.out_md,
        args.doc_only,
        lambda: run(args.images, args.crops, args.seed, args.scorer),
        section,
        (START, END),
    )


if __name__ == "__main__":
    main()
