r"""What ``tone_dehaze`` and its haze head would do for a plan: an offline study on crops.

Episodes exactly as the env starts them (:func:`benchmarks.train_tone_dehaze.episodes`: 128 px
crops, the whole photo's haze depth, 8-bit inputs) of every combination of the five crop suites
(``mio-*`` in their listed order, ``ood-*`` in physical order), one draw per photo. Each input
is read by perception (haze, as an agent reads it) and by the haze head of the ``tone_dehaze``
trees, and dehazed once by ``learned_dehazing`` (the dehazer ``fixed`` calls) and once by
``tone_dehaze``. No agent runs: the table prices a dehazing decision made on the input alone,
episode by episode (the mean PSNR change over all episodes when the dehazer runs where the
reading is at or above a threshold, 0 elsewhere).

Usage (the trees in the learned-weights folder: ``$TIR_LEARNED_WEIGHTS``)::

    TIR_LEARNED_WEIGHTS=runs/tone/wfull2 python -m benchmarks.tone_study \
        --images corpus:val@3 --seed 7 --json benchmarks/results/tone_dehaze/study_val.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: The crop suites and the order each degrades in.
SUITES: tuple[tuple[str, str], ...] = (
    ("mio-a", "listed"),
    ("mio-b", "listed"),
    ("mio-c", "listed"),
    ("ood-d2", "physical"),
    ("ood-d3", "physical"),
)
#: The decisions priced: (dehazer, reading, threshold).
DECISIONS: tuple[tuple[str, str, float], ...] = (
    ("learned", "perception", 0.85),
    ("tone", "perception", 0.85),
    ("tone", "perception", 0.3),
    *(("tone", "head", t) for t in (0.5, 0.6, 0.7, 0.8, 0.9)),
)
#: PSNR above this (dB) is read as this: a clean crop left alone would otherwise count as inf.
PSNR_CAP = 50.0


def rows(images: str, seed: int) -> list[dict[str, Any]]:
    """One row per episode: the readings and the PSNR of the input and of each dehazer's output."""
    from benchmarks.train_tone_dehaze import episodes
    from tir_env import perception
    from tir_env.images import batch_to_u8
    from tir_env.metrics import fast
    from tir_env.tools import make_tool
    from tir_env.tools.learned.tone import ToneDehaze

    tone, learned = ToneDehaze(), make_tool("learned_dehazing")

    def psnr(image: torch.Tensor, clean: torch.Tensor) -> float:
        return min(float(fast.psnr(image.clamp(0, 1), clean)), PSNR_CAP)

    out = []
    for clean, given, raw, combo in episodes(images, 1, 0, seed, SUITES):
        size = (int(clean.shape[-2]), int(clean.shape[-1]))
        seen = perception.perceive_photo(batch_to_u8(raw), size).probs["haze"]
        out.append(
            {
                "combo": list(combo),
                "hazy": "haze" in combo,
                "perception": round(seen, 4),
                "head": round(tone.haze_probability(given[0], seen), 4),
                "input": psnr(given, clean),
                "learned": psnr(learned(given), clean),
                "tone": psnr(tone(given), clean),
            }
        )
    return out


def decision_gain(
    episodes: Sequence[dict[str, Any]], tool: str, reading: str, at: float
) -> dict[str, Any]:
    """Mean PSNR change when ``tool`` runs where ``reading`` >= ``at``, and how often it runs."""
    runs = [e for e in episodes if e[reading] >= at]
    change = sum(e[tool] - e["input"] for e in runs) / max(len(episodes), 1)
    return {
        "tool": tool,
        "reading": reading,
        "threshold": at,
        "change": round(change, 3),
        "right": sum(e["hazy"] for e in runs),
        "false": sum(not e["hazy"] for e in runs),
    }


def summarise(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """ROC AUCs of the readings, mean PSNRs by kind of episode, and the decisions' prices."""
    from sklearn.metrics import roc_auc_score

    hazy = [e["hazy"] for e in episodes]
    kinds = {
        "hazy": [e for e in episodes if e["hazy"]],
        "haze-free": [e for e in episodes if not e["hazy"]],
    }
    return {
        "auc": {
            r: round(float(roc_auc_score(hazy, [e[r] for e in episodes])), 3)
            for r in ("perception", "head")
        },
        "psnr": {
            kind: {
                "n": len(es),
                **{
                    k: round(float(np.mean([e[k] for e in es])), 2)
                    for k in ("input", "learned", "tone")
                },
            }
            for kind, es in kinds.items()
        },
        "decisions": [decision_gain(episodes, *d) for d in DECISIONS],
    }


def markdown(result: dict[str, Any]) -> list[str]:
    """The study's two tables."""
    s = result["summary"]
    n = sum(v["n"] for v in s["psnr"].values())
    lines = [
        f"`{result['command']}`: {n} episodes. ROC AUC of haze: perception "
        f"{s['auc']['perception']:.3f}, the haze head {s['auc']['head']:.3f}.",
        "",
        "| episodes | n | input | `learned_dehazing` | `tone_dehaze` |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, v in s["psnr"].items():
        lines.append(
            f"| {kind} | {v['n']} | {v['input']:.2f} | {v['learned']:.2f} | {v['tone']:.2f} |"
        )
    lines += [
        "",
        "| dehazer | runs where | PSNR change an episode (dB) | right calls | false calls |",
        "|---|---|---:|---:|---:|",
    ]
    for d in s["decisions"]:
        tool = "`learned_dehazing`" if d["tool"] == "learned" else "`tone_dehaze`"
        reader = "perception" if d["reading"] == "perception" else "the haze head"
        where = f"{reader} >= {d['threshold']}"
        lines.append(f"| {tool} | {where} | {d['change']:+.3f} | {d['right']} | {d['false']} |")
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the study and write its JSON."""
    from tir_env.files import refuse_existing, write_text_atomic

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--images", default="corpus:val@3")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, required=True, help="where to write (no overwrite)")
    args = parser.parse_args(argv)
    refuse_existing(parser, args.json)
    torch.set_num_threads(1)
    episodes = rows(args.images, args.seed)
    words = sys.argv[1:] if argv is None else list(argv)
    result = {
        "command": "python -m benchmarks.tone_study " + shlex.join(words),
        "summary": summarise(episodes),
        "episodes": episodes,
    }
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    print("\n".join(markdown(result)))
    return result


if __name__ == "__main__":
    main()
