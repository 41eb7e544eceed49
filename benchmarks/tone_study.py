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
#: The haze readings scored as a detector: (reading, threshold); perception's is its tuned one.
#: 0.4 is the threshold that maximises perception's own haze F1 on the val study's episodes
#: (``best_f1`` of that summary): the reader's gain apart from a threshold tuned for F1.
DETECTORS: tuple[tuple[str, float | None], ...] = (
    ("perception", None),
    ("perception", 0.4),
    ("head", 0.8),
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


def detection(episodes: Sequence[dict[str, Any]], reading: str, at: float) -> dict[str, Any]:
    """Precision, recall and F1 of haze read at ``at`` or more (no true negatives counted)."""
    hits = sum(e["hazy"] and e[reading] >= at for e in episodes)
    called = sum(e[reading] >= at for e in episodes)
    present = sum(e["hazy"] for e in episodes)
    precision, recall = hits / max(called, 1), hits / max(present, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {
        "reading": reading,
        "threshold": at,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
    }


def summarise(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """ROC AUCs of the readings, mean PSNRs by kind of episode, and the decisions' prices."""
    from sklearn.metrics import roc_auc_score

    from tir_env import perception

    tuned = perception.thresholds()["haze"]

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
        "detection": [detection(episodes, r, tuned if t is None else t) for r, t in DETECTORS],
        "best_f1": {r: best_f1_threshold(episodes, r) for r in ("perception", "head")},
    }


def best_f1_threshold(episodes: Sequence[dict[str, Any]], reading: str) -> float:
    """The threshold (0.05 to 0.95 by 0.05) at which ``reading``'s haze F1 is highest here."""
    grid = [round(0.05 * k, 2) for k in range(1, 20)]
    return max(grid, key=lambda at: detection(episodes, reading, at)["f1"])


def reader_label(reading: str) -> str:
    """How the tables name a reading."""
    return "perception" if reading == "perception" else "the haze head"


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
        where = f"{reader_label(d['reading'])} >= {d['threshold']}"
        lines.append(f"| {tool} | {where} | {d['change']:+.3f} | {d['right']} | {d['false']} |")
    if "detection" in s:
        lines += [
            "",
            "| haze read by | at | precision | recall | F1 |",
            "|---|---:|---:|---:|---:|",
        ]
        for d in s["detection"]:
            row = f"| {reader_label(d['reading'])} | {d['threshold']} | {d['precision']:.3f} |"
            row += f" {d['recall']:.3f} |"
            lines.append(f"{row} {d['f1']:.3f} |")
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


#: The committed studies docs/perception.md's section reads.
STUDIES = {
    "val": Path("benchmarks/results/tone_dehaze/study_val.json"),
    "test": Path("benchmarks/results/tone_dehaze/study_test.json"),
}


def section() -> str:
    """docs/perception.md's section on the haze head, from the committed studies ('' without)."""
    if not all(p.is_file() for p in STUDIES.values()):
        return ""
    lines = [
        "",
        "## Haze read from global statistics (measured, not shipped)",
        "",
        'The haze head of the `tone_dehaze` trees (docs/agents.md, "A dehazer that reads the '
        "tone\"): boosted trees over an image's global statistics (per-channel quantiles, "
        "saturation, the thirds' levels, gradients) and perception's haze logit, fitted on env "
        "episodes of the train photos (the training protocols only). Env episodes of the five "
        "crop suites (128 px, the whole photo's haze depth), one draw per combination and photo; "
        "the head's threshold 0.8 was chosen on val before the test study was run. On the val "
        "photos, then on all nine test photos:",
        "",
    ]
    for name, path in STUDIES.items():
        result = json.loads(path.read_text())
        table = markdown(result)
        lines += [f"*{name}*: " + table[0], "", *table[-(2 + len(DETECTORS)) :], ""]
    summary = json.loads(STUDIES["test"].read_text())["summary"]
    rows = {(d["reading"], d["threshold"]): d for d in summary["detection"]}
    head, seen = rows[("head", 0.8)], rows[("perception", 0.4)]
    val_best = json.loads(STUDIES["val"].read_text())["summary"]["best_f1"]["perception"]
    lines += [
        'Perception\'s tuned threshold favours precision ("Choosing the thresholds", above), so '
        "part of the gap is the threshold: at 0.4, where its own haze F1 peaks on the val "
        f"episodes ({val_best}), perception reads haze on the test photos at F1 {seen['f1']:.3f} "
        f"and the head at {head['f1']:.3f} (the issue asks 0.90); on val the two are level. It is "
        "not perception's reading: `fixed` dehazing by the head lost its rule on val (a photo in "
        "natural fog read hazy; docs/agents.md), so no agent reads haze this way by default.",
        "",
        *type_heads_lines(),
    ]
    return "\n".join(lines)


#: The committed per-type study (:mod:`benchmarks.type_heads`).
TYPE_HEADS = Path("benchmarks/results/tone_dehaze/type_heads.json")


def type_heads_lines() -> list[str]:
    """The per-type heads' table and what it says ([] without the study)."""
    from benchmarks import type_heads

    if not TYPE_HEADS.is_file():
        return []
    result = json.loads(TYPE_HEADS.read_text())
    gains = {r["type"]: r["head"]["f1_test"] - r["perception"]["f1_test"] for r in result["types"]}
    better = sorted((t for t, g in gains.items() if g >= 0.02), key=lambda t: -gains[t])
    said = ", ".join(f"{t} {gains[t]:+.2f}" for t in better) or "none"
    rest = ", ".join(t for t in gains if t not in better) or "none"
    return [
        "The same kind of head for every type (`benchmarks.type_heads`), each reader's F1 read at "
        "the threshold best on val:",
        "",
        *type_heads.markdown(result),
        "",
        f"Test F1 gained by 0.02 or more: {said}; read no better from global statistics than "
        f"by perception: {rest}.",
        "",
    ]
