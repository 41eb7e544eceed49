"""Perception on the val photos a corpus release added, which no shipped network saw.

The photos a release added to val (``corpus:val@=N``: release 3's five, release 4's eight)
were neither trained nor tuned on by the shipped perception or by one retrained on that
release's train photos (``corpus:train@N``), so they compare the two fairly: 12 random 128 px
crops per combination of every suite, degraded as the env does
(:func:`benchmarks.perception_report.perceive_suite`), per-type ROC AUC, precision, recall and
F1, and the exact-set rates. Which network is read: the weights folder (``$TIR_LEARNED_WEIGHTS``,
default the shipped one).

Usage::

    python -m benchmarks.perception_newval --out benchmarks/results/perception_r3/shipped.json
    TIR_LEARNED_WEIGHTS=DIR python -m benchmarks.perception_newval --out .../new.json
    python -m benchmarks.perception_newval --release 4 --out .../perception_r4/shipped.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.perception_report import SUITES, perceive_suite, presence_scores
from tir_env import data, perception

#: The suites whose exact-set rate the comparison pools (AgenticIR's groups).
MIO = ("mio-a", "mio-b", "mio-c")
#: The committed measurements: the shipped network, and the one retrained on release 3.
RESULTS = Path(__file__).parent / "results" / "perception_r3"
#: The same for release 4: ``shipped.json``, ``retrained_r4.json`` and the agents' val runs
#: (``ab_<agent>.json``, rule b2570f6's second step).
RESULTS_R4 = Path(__file__).parent / "results" / "perception_r4"
#: The empty commit that set release 4's rule.
RULE_R4 = "b2570f6"
#: Release 4's second step: each agent's paired difference must reach the first, their mean the
#: second (dB).
MIN_AGENT_DIFF, MIN_AGENT_MEAN = -0.02, 0.05
AGENTS_R4 = ("fixed", "exhaustive", "greedy")
#: The rule set before measuring (the empty commit "Pre-registered (issue 13): perception
#: retrained on corpus release 3"): the mean AUC must rise by this much, the pooled exact-set
#: rate must not fall.
MIN_AUC_GAIN = 0.01


def new_val_photos(release: int = 3) -> tuple[list[str], list[np.ndarray]]:
    """The ids and images of the val photos ``release`` added."""
    added = data.source(f"corpus:val@={release}")
    return list(added.ids), [added.load(i) for i in added.ids]


def measure(photos: Sequence[np.ndarray], crops: int, seed: int) -> dict[str, Any]:
    """Presence scores (suites without ``single``), exact-set rates, and their summaries."""
    rng = np.random.default_rng(seed)
    rows = [r for s in SUITES for r in perceive_suite(photos, s, crops, rng)]
    presence = presence_scores([r for r in rows if r["suite"] != "single"])
    exact = {
        s: float(np.mean([r["truth"] == r["found"] for r in rows if r["suite"] == s]))
        for s in SUITES
    }
    pooled = [r["truth"] == r["found"] for r in rows if r["suite"] in MIO]
    return {
        "presence": presence,
        "exact_set": exact,
        "exact_set_mio": float(np.mean(pooled)),
        "mean_auc": float(np.mean([v["auc"] for v in presence.values()])),
        "mean_f1": float(np.mean([v["f1"] for v in presence.values()])),
    }


#: The two retrained networks, each judged against the network shipped then by the rule
#: above: (results file stem, column name, the empty commit that set its rule).
RETRAINED = (
    ("retrained_r3", "release 3", "cf7f51f"),
    ("retrained_r3_80k_listed", "release 3, x2, listed", "2fa11f7"),
)


def verdict(old: dict[str, Any], new: dict[str, Any]) -> tuple[float, bool]:
    """The mean-AUC gain of ``new`` over ``old`` and whether the rule lets it replace ``old``."""
    gain = new["mean_auc"] - old["mean_auc"]
    return gain, gain >= MIN_AUC_GAIN and new["exact_set_mio"] >= old["exact_set_mio"]


#: Val records of fixed, exhaustive and greedy with each threshold candidate (rule e05cfb7).
THRESHOLD_RUNS = {
    "t1": "T1, F0.5 (shipped)",
    "t2": "T2, F0.3",
    "t3": "T3, the larger of T1 and release 2's",
    "r2": "the release-2 network as shipped before",
}


def threshold_lines(folder: Path | None = None) -> list[str]:
    """The agents' val PSNR per threshold candidate, from the committed records (or nothing)."""
    from benchmarks.evaluate import read_jsonl

    folder = folder or RESULTS / "thresholds"
    if not all((folder / name).is_dir() for name in THRESHOLD_RUNS):
        return []
    rows, means = [], {}
    for name, label in THRESHOLD_RUNS.items():
        cells = {}
        for path in sorted((folder / name).glob("mio-?__*.jsonl")):
            records = read_jsonl(path)
            cells[path.stem] = float(np.mean([r["metrics_output"]["psnr"] for r in records]))
        means[name] = float(np.mean(list(cells.values())))
        rows.append(
            f"| {label} | " + " | ".join(f"{v:.2f}" for v in cells.values()) + f" | "
            f"**{means[name]:.2f}** |"
        )
    head = "| thresholds | " + " | ".join(k.replace("__", " ") for k in cells) + " | mean |"
    return [
        "Then the thresholds, chosen by the agents that read them (rule e05cfb7, set after the",
        "held-out records with T1 were seen): final PSNR (dB) of `fixed`, `exhaustive` and",
        "`greedy` on `tir bench mio-a/b/c --images corpus:val@3 --limit 10` with each candidate",
        "(records in `benchmarks/results/perception_r3/thresholds/`). The best candidate",
        "replaces T1 at +0.1 dB; the release-2 network comes back at +0.3 dB over the best:",
        "",
        head,
        "|---|" + "---:|" * (len(cells) + 1),
        *rows,
        "",
    ]


def _auc_f1_table(runs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Per-type ROC AUC then F1 of each run, and their means."""
    head = "| type | " + " | ".join(f"ROC AUC, {n}" for n in names) + " | "
    head += " | ".join(f"F1, {n}" for n in names) + " |"
    rows = [
        f"| {t} | " + " | ".join(f"{r['presence'][t]['auc']:.3f}" for r in runs) + " | "
        + " | ".join(f"{r['presence'][t]['f1']:.2f}" for r in runs) + " |"
        for t in runs[0]["presence"]
    ]  # fmt: skip
    rows.append(
        "| mean | " + " | ".join(f"{r['mean_auc']:.3f}" for r in runs) + " | "
        + " | ".join(f"{r['mean_f1']:.2f}" for r in runs) + " |"
    )  # fmt: skip
    return [head, "|---|" + "---:|" * (2 * len(runs)), *rows]


def agent_step(folder: Path) -> tuple[list[str], bool] | None:
    """Release 4's second step from its ``ab_<agent>.json`` runs: table lines and whether it held.

    ``None`` until every agent's run is there.
    """
    paths = [folder / f"ab_{agent}.json" for agent in AGENTS_R4]
    if not all(p.is_file() for p in paths):
        return None
    summaries = [json.loads(p.read_text())["summary"] for p in paths]
    lines = [
        "| agent | episodes | shipped | retrained | difference (se over photos) | better / worse |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for agent, s in zip(AGENTS_R4, summaries, strict=True):
        lines.append(
            f"| `{agent}` | {s['episodes']} | {s['a']:.2f} | {s['b']:.2f} | "
            f"{s['mean']:+.3f} ({s['se_photos']:.3f}) | {s['better']} / {s['worse']} |"
        )
    diffs = [s["mean"] for s in summaries]
    held = min(diffs) >= MIN_AGENT_DIFF and float(np.mean(diffs)) >= MIN_AGENT_MEAN
    lines.append(f"| mean of the three | | | | {float(np.mean(diffs)):+.3f} | |")
    return lines, held


def section_r4(folder: Path | None = None) -> list[str]:
    """docs/perception.md's section on release 4 ("" before the first step is measured)."""
    folder = folder or RESULTS_R4
    stems = ("shipped", "retrained_r4")
    if not all((folder / f"{stem}.json").is_file() for stem in stems):
        return []
    old, new = (json.loads((folder / f"{stem}.json").read_text()) for stem in stems)
    gain, first = verdict(old, new)
    exact = "; ".join(
        f"{s} {old['exact_set'][s]:.2f} -> {new['exact_set'][s]:.2f}" for s in old["exact_set"]
    )
    lines = [
        "",
        "## More photos again (corpus release 4)",
        "",
        "Corpus release 4 (docs/data.md) adds 30 training photos (63 -> 93: Scratch's photo",
        "backgrounds, everyday street and building scenes, and the JPEG XL test data's lossless",
        "photographs) and 8 val photos. The shipped recipe retrained on them (`python -m",
        "benchmarks.train_perception --out runs/perc4_80k_lo --train corpus:train@4 --samples",
        "80000 --profile --listed-order 0.5 --threads 1`; record",
        "`benchmarks/results/perception_r4/retrained_r4_record.json`) against the shipped network,",
        "on the 8 new val photos neither saw (`python -m benchmarks.perception_newval --release 4",
        f"--out ...`, {old['crops_per_combination']} crops of 128 px per combination of every "
        "suite):",
        "",
        *_auc_f1_table([old, new], ["shipped", "release 4"]),
        "",
        f"Exact-set rate: {exact}; pooled over mio-a/b/c {old['exact_set_mio']:.3f} -> "
        f"{new['exact_set_mio']:.3f}.",
        "",
        f"Rule {RULE_R4}, set before training, asked first the mean AUC to rise by >= "
        f"{MIN_AUC_GAIN} with the pooled exact-set rate not lower: the mean AUC moved by "
        f"{gain:+.3f}, so the first step " + ("holds." if first else "fails and nothing ships."),
    ]
    if not first:
        return [
            *lines,
            "",
            "Thirty more photos barely change how well the types separate; what the exact-set",
            "rate gains comes mostly from where the retrained network's val-tuned thresholds fall",
            "(haze and rain called more often), which the judge and the agents' margins, fitted",
            "on the shipped network, would also have to follow. The shipped network stays; the",
            "corpus release stays for whatever is trained next.",
            "",
        ]
    step = agent_step(folder)
    if step is None:
        return [*lines, ""]
    table, held = step
    return [
        *lines,
        "",
        "Then the agents that read perception, on fresh val crop rounds (`python -m",
        "benchmarks.ab_test --a AGENT --b AGENT --weights-b W --images corpus:val@3 --rounds 259",
        "261`, W the shipped weights with the retrained network as `perception` and the shipped",
        "one kept as `perception_judge`, so the judge reads what it was fitted on), PSNR dB:",
        "",
        *table,
        "",
        f"The second step asked each agent's difference to be at least {MIN_AGENT_DIFF:+.2f} dB "
        f"and their mean at least {MIN_AGENT_MEAN:+.2f}: "
        + ("it holds." if held else "it fails, so the shipped network stays."),
        "",
    ]


def section() -> list[str]:
    """docs/perception.md's sections on releases 3 and 4 ("" before the measurements exist)."""
    return _section_r3() + section_r4()


def _section_r3() -> list[str]:
    """docs/perception.md's section on release 3 ("" before the measurements exist)."""
    stems = ["shipped", *(stem for stem, _, _ in RETRAINED)]
    if not all((RESULTS / f"{stem}.json").is_file() for stem in stems):
        return []
    old, *news = (json.loads((RESULTS / f"{stem}.json").read_text()) for stem in stems)
    names = ["release 2 (shipped then)", *(name for _, name, _ in RETRAINED)]
    runs = [old, *news]
    exact = "; ".join(
        f"{s} " + " -> ".join(f"{r['exact_set'][s]:.2f}" for r in runs) for s in old["exact_set"]
    )
    pooled = " -> ".join(f"{r['exact_set_mio']:.3f}" for r in runs)
    verdicts = []
    for (_, name, commit), new in zip(RETRAINED, news, strict=True):
        gain, ships = verdict(old, new)
        verdicts.append(
            f"*{name}* (rule {commit}): the mean AUC rose by {gain:+.3f}, the pooled exact-set "
            f"rate {old['exact_set_mio']:.3f} -> {new['exact_set_mio']:.3f}: "
            + ("it replaces the shipped network." if ships else "not shipped.")
        )
    return [
        "",
        "## More photos (corpus release 3)",
        "",
        "Corpus release 3 (docs/data.md) adds 19 training photos, five of them dark or misty by",
        "nature, and 5 val photos. Two networks trained on the 63 training photos were judged",
        "against the release-2 network shipped before them, on the five new val photos, which",
        "none of them saw (`python -m benchmarks.perception_newval --out ...`, with",
        "`TIR_LEARNED_WEIGHTS` for a retrained one; "
        f"{old['crops_per_combination']} crops of 128 px per combination of every suite):",
        "",
        "- *release 3*: the release-2 recipe (`python -m benchmarks.train_perception --out "
        "runs/perc3 --train corpus:train@3 --samples 40000 --profile --threads 1`, 527 s; record "
        "`benchmarks/results/perception_r3/retrained_r3_record.json`);",
        "- *release 3, x2, listed*: twice the examples, and half of AgenticIR's listed "
        "combinations degraded in their listed order, as the version-2 `mio-*` suites do "
        "(`... --out runs/perc3_80k_lo --samples 80000 --listed-order 0.5`, 999 s; record "
        "`benchmarks/results/perception_r3/retrained_r3_80k_listed_record.json`). These val photos "
        "had judged the first one when this variant was chosen (disclosed in its rule).",
        "",
        *_auc_f1_table(runs, names),
        "",
        f"Exact-set rate: {exact}; pooled over mio-a/b/c {pooled}.",
        "",
        f"Each rule, set before measuring, asked the mean AUC to rise by >= {MIN_AUC_GAIN} with "
        "the pooled exact-set rate not lower:",
        "",
        *(f"- {v}" for v in verdicts),
        "",
        "The types that most need photos gain most: darkness, the type a dark or misty photo is",
        "confused with, and motion blur. The shipped network's thresholds are the F0.5 ones tuned",
        "on `corpus:val` (the release-2 network's were then raised on out-of-fold readings of the",
        'train photos: "The direction profile ships").',
        "",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the network in the weights folder and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--crops", type=int, default=12, help="crops per combination")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--release", type=int, default=3, help="read the val photos this corpus release added"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ids, photos = new_val_photos(args.release)
    result = {
        "photos": ids,
        "release": args.release,
        "weights": perception.record().get("command", ""),
        "thresholds": perception.thresholds(),
        "crops_per_combination": args.crops,
        **measure(photos, args.crops, args.seed),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    keys = ("mean_auc", "mean_f1", "exact_set_mio")
    print(json.dumps({k: round(result[k], 4) for k in keys}))


if __name__ == "__main__":
    main()
