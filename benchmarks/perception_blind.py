r"""Perception that also reads the blind deblurring's kernel fits: measured, not shipped.

:func:`~tir_env.tools.classical.kernel_fits.kernel_fit_features` turns the blind
deblurring tools' spectral fits into 24 numbers per tile. A network retrained with them
(``python -m benchmarks.train_perception --blind``, otherwise the shipped recipe: same
seed, so the same 80,000 examples) is compared with the shipped network

* on the training run's own val examples (corpus:val, never trained on; each network at the
  thresholds it tuned there): per-type F1 and the exact-set rate;
* on the held-out photos, from ``benchmarks.perception_report`` run with each network
  (the shipped network's report is ``benchmarks/results/perception.json``).

The verdict follows the rule registered before the run (commit b113254): motion and
defocus F1 must both rise on val, mean F1 must not fall; only then are the test photos
looked at, where motion and defocus F1 must both rise again.

Usage::

    python -m benchmarks.train_perception --out runs/perc_blind --train corpus:train@3 \\
        --samples 80000 --profile --blind --listed-order 0.5 --threads 1
    TIR_LEARNED_WEIGHTS=W python -m benchmarks.perception_report --crops 12 --quality 120 \\
        --seed 0 --out benchmarks/results/perception_blind/report.json   # W: the new weights
    python -m benchmarks.perception_blind --run runs/perc_blind   # val scores, this record
    # the agents on the val crops (a diagnostic), without and with W, copied to
    # benchmarks/results/perception_blind/val_agents/{shipped,blind}:
    [TIR_LEARNED_WEIGHTS=W] tir bench SUITE --images corpus:val --limit 5 \
        --agents fixed,exhaustive --out DIR   # SUITE: mio-a, mio-b, mio-c, ood-d2, ood-d3
    python -m benchmarks.perception_blind --doc-only              # the doc section only
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tir_env.degradations.protocols import AGENTICIR_TYPES

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "benchmarks" / "results" / "perception_blind"
VAL = FOLDER / "val.json"
REPORT = FOLDER / "report.json"
SHIPPED_REPORT = ROOT / "benchmarks" / "results" / "perception.json"
SHIPPED = ROOT / "tir_env" / "assets" / "learned" / "perception.safetensors"
#: ``benchmarks.ab_test`` runs (fixed against exhaustive) on the same val@3 rounds with each
#: network: the registered test of whether the network helps the agents (commit d261a39).
AB_RUNS = {
    "shipped": FOLDER / "ab_val" / "shipped.json",
    "with fits": FOLDER / "ab_val" / "blind.json",
}
#: Val-crop records of ``fixed`` and ``exhaustive`` with each network (a diagnostic).
AGENTS = {
    "shipped": FOLDER / "val_agents" / "shipped",
    "with fits": FOLDER / "val_agents" / "blind",
}
#: The types the kernel fits are for (the rule's).
BLUR_TYPES = ("motion_blur", "defocus_blur")


def per_type_scores(
    probs: np.ndarray, truth: np.ndarray, limits: dict[str, float]
) -> dict[str, Any]:
    """Per-type precision, recall and F1 (no true negatives) and the exact-set rate."""
    predicted = probs >= np.array([limits[t] for t in AGENTICIR_TYPES])
    scores: dict[str, Any] = {}
    for j, name in enumerate(AGENTICIR_TYPES):
        hits = float(np.sum(predicted[:, j] & truth[:, j]))
        said, true = float(predicted[:, j].sum()), float(truth[:, j].sum())
        scores[name] = {
            "precision": hits / max(1.0, said),
            "recall": hits / max(1.0, true),
            "f1": 2 * hits / (said + true) if said + true else 0.0,
            "support": int(true),
        }
    return {
        "types": scores,
        "mean_f1": float(np.mean([s["f1"] for s in scores.values()])),
        "exact_set": float(np.mean(np.all(predicted == truth, axis=1))),
    }


def net_blind(record: dict[str, Any]) -> bool:
    """Whether a record's network reads the kernel fits."""
    return bool(record["architecture"].get("blind", False))


def val_scores(weights: Path, features: np.ndarray, presence: np.ndarray) -> dict[str, Any]:
    """One network's scores on val feature rows, at the thresholds in its record."""
    from tir_env.perception import PRESENCE, build
    from tir_env.tools.learned.perception_features import PerceptionFeatureNet, n_features
    from tir_env.tools.learned.weights import load_state

    record = json.loads(weights.with_suffix(".json").read_text())
    net = build(record["architecture"])
    if not isinstance(net, PerceptionFeatureNet):
        raise ValueError(f"{weights}: not a PerceptionFeatureNet (no cached features to read)")
    net.load_state_dict(load_state(weights))
    net.eval()
    with torch.no_grad():
        width = n_features(record["architecture"].get("profile", False), net_blind(record))
        out = net.head(torch.from_numpy(features[:, :width]))
    probs = torch.sigmoid(out[:, PRESENCE]).numpy()
    return {
        "weights": record.get("command", str(weights)),
        "thresholds": record["thresholds"],
        **per_type_scores(probs, presence > 0.5, record["thresholds"]),
    }


def run_val(run: Path) -> dict[str, Any]:
    """Both networks on the run's cached val examples (the blind columns come last)."""
    from benchmarks.perception_mlp import cached_features
    from benchmarks.train_perception import Config, cached_examples

    record = json.loads((run / "perception.json").read_text())
    cfg = Config(**record["config"])
    rng = np.random.default_rng(cfg.seed)
    cached_examples(cfg, cfg.train, cfg.samples, run, rng)  # the same stream as training
    val = cached_examples(cfg, cfg.val, cfg.val_samples, run, rng)
    keep = val.labelled > 0.5
    features = cached_features(val, run, profile=True, blind=True)[keep]
    return {
        "examples": int(keep.sum()),
        "val_photos": cfg.val,
        "shipped": val_scores(SHIPPED, features, val.presence[keep]),
        "blind": val_scores(run / "perception.safetensors", features, val.presence[keep]),
    }


def verdict(val: dict[str, Any], report: dict[str, Any] | None) -> tuple[bool, bool | None]:
    """The registered rule: (val part holds, test part holds or None when not judged)."""

    def rises(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return all(b[t]["f1"] > a[t]["f1"] for t in BLUR_TYPES)

    old, new = val["shipped"], val["blind"]
    first = rises(old["types"], new["types"]) and new["mean_f1"] >= old["mean_f1"]
    if not first or report is None:
        return first, None
    shipped = json.loads(SHIPPED_REPORT.read_text())["sets"]["corpus-test"]["presence"]
    return first, rises(shipped, report["sets"]["corpus-test"]["presence"])


def _f1_table(rows: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    """Per-type F1, shipped -> blind, one column pair per set."""
    sets = list(rows)
    head = "| type | " + " | ".join(f"{s}: shipped | {s}: with fits" for s in sets) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(sets))]
    for t in AGENTICIR_TYPES:
        cells = [f"{old[t]['f1']:.2f} | {new[t]['f1']:.2f}" for old, new in rows.values()]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines


def _held_out_lines(report: dict[str, Any] | None) -> list[str]:
    """Per held-out set: each suite's exact-set rate and the blur types' ROC AUC, old -> new."""
    if report is None:
        return []
    shipped = json.loads(SHIPPED_REPORT.read_text())["sets"]
    lines = []
    for name, new in report["sets"].items():
        old = shipped[name]
        rates = ", ".join(
            f"{suite} {old['exact_set'][suite]:.2f} -> {rate:.2f}"
            for suite, rate in new["exact_set"].items()
        )
        aucs = ", ".join(
            f"{t} {old['presence'][t]['auc']:.3f} -> {new['presence'][t]['auc']:.3f}"
            for t in BLUR_TYPES
        )
        lines += [textwrap_join(f"{name}: exact-set rate {rates}; ROC AUC {aucs}."), ""]
    return lines


def _agent_lines() -> list[str]:
    """``fixed`` and ``exhaustive`` on the val crops with each network, paired by episode."""
    from benchmarks.evaluate import read_jsonl

    if not all(folder.is_dir() for folder in AGENTS.values()):
        return []
    old, new = AGENTS["shipped"], AGENTS["with fits"]
    lines = [
        textwrap_join(
            "`fixed` and `exhaustive` on 128 px crops of the five val photos with each network",
            "(a diagnostic; no decision rests on it: `[TIR_LEARNED_WEIGHTS=W] tir bench SUITE",
            "--images corpus:val --limit 5 --agents fixed,exhaustive`, W the shipped weights",
            "with this network; records in `benchmarks/results/perception_blind/val_agents/`),",
            "PSNR dB, and the paired difference over the episodes (standard error):",
        ),
        "",
        "| suite | agent | episodes | input | shipped | with fits | difference (se) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    pooled: dict[str, list[np.ndarray]] = {}
    for path in sorted(old.glob("*__*.jsonl")):
        suite, agent = path.stem.split("__", 1)
        a, b = read_jsonl(path), read_jsonl(new / path.name)
        diff = np.array(
            [
                y["metrics_output"]["psnr"] - x["metrics_output"]["psnr"]
                for x, y in zip(a, b, strict=True)
            ]
        )
        pooled.setdefault(agent, []).append(diff)
        inputs = np.mean([x["metrics_input"]["psnr"] for x in a])
        before = np.mean([x["metrics_output"]["psnr"] for x in a])
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        lines.append(
            f"| {suite} | {agent} | {len(diff)} | {inputs:.2f} | {before:.2f} | "
            f"{before + diff.mean():.2f} | {diff.mean():+.2f} ({se:.2f}) |"
        )
    for agent, diffs in sorted(pooled.items()):
        d = np.concatenate(diffs)
        se = d.std(ddof=1) / np.sqrt(len(d))
        lines.append(f"| all | {agent} | {len(d)} | | | | {d.mean():+.2f} ({se:.2f}) |")
    return [*lines, ""]


def _episode_key(e: dict[str, Any]) -> tuple:
    return e["suite"], e["image"], e["seed"], tuple(e["degradations"])


def network_differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Per agent of two ``ab_test`` runs on the same episodes: new minus old output PSNR.

    The mean over episodes, and its standard error over the photos (the episodes of one
    photo are not independent); ``pooled`` takes both agents' differences together.
    """
    photo_diffs: dict[str, dict[str, list[float]]] = {}
    summary: dict[str, Any] = {}
    for side, agent in (("a", old["a"]), ("b", old["b"])):
        before = {_episode_key(e): e for e in old["episodes"][side]}
        after = {_episode_key(e): e for e in new["episodes"][side]}
        if before.keys() != after.keys():
            raise ValueError(f"{agent}: the two runs hold different episodes")
        by_photo: dict[str, list[float]] = {}
        for key, e in before.items():
            change = after[key]["output"] - e["output"]
            by_photo.setdefault(e["image"], []).append(change)
            photo_diffs.setdefault("pooled", {}).setdefault(e["image"], []).append(change)
        photo_diffs[agent] = by_photo
    for agent, by_photo in photo_diffs.items():
        means = np.array([np.mean(v) for v in by_photo.values()])
        every = np.concatenate([np.array(v) for v in by_photo.values()])
        summary[agent] = {
            "episodes": len(every),
            "mean": float(every.mean()),
            "se_photos": float(means.std(ddof=1) / np.sqrt(len(means))),
            "photos": len(means),
            "better": int((every > 0.01).sum()),
            "worse": int((every < -0.01).sum()),
        }
    return summary


def ab_holds(summary: dict[str, Any]) -> bool:
    """The registered rule (d261a39): both agents up, the pooled gain >= 2 se (photos)."""
    agents = [a for a in summary if a != "pooled"]
    pooled = summary["pooled"]
    ups = all(summary[a]["mean"] > 0 for a in agents)
    return ups and pooled["mean"] >= 2 * pooled["se_photos"]


def _ab_lines() -> list[str]:
    """The registered agents test on val rounds, if its runs are committed."""
    if not all(path.is_file() for path in AB_RUNS.values()):
        return []
    old, new = (json.loads(path.read_text()) for path in AB_RUNS.values())
    summary = network_differences(old, new)
    lines = [
        textwrap_join(
            f"The registered test of the agents (commit d261a39): `{old['command']}` run",
            "twice on the same episodes, with the shipped network and (`TIR_LEARNED_WEIGHTS`)",
            "with this one; runs in `benchmarks/results/perception_blind/ab_val/`. Output",
            "PSNR, this network minus the shipped one, paired by episode (standard error over",
            "the photos):",
        ),
        "",
        "| agent | episodes | shipped | with fits | difference (se, photos) | better / worse |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for side, agent in (("a", old["a"]), ("b", old["b"])):
        s = summary[agent]
        before = old["summary"][side]
        lines.append(
            f"| {agent} | {s['episodes']} | {before:.2f} | {before + s['mean']:.2f} | "
            f"{s['mean']:+.3f} ({s['se_photos']:.3f}) | {s['better']} / {s['worse']} |"
        )
    p = summary["pooled"]
    lines += [
        f"| both | {p['episodes']} | | | {p['mean']:+.3f} ({p['se_photos']:.3f}) | "
        f"{p['better']} / {p['worse']} |",
        "",
        textwrap_join(
            "Rule: both agents' differences above 0 and the pooled one at least two standard",
            f"errors above 0: {'held' if ab_holds(summary) else 'did not hold'}.",
        ),
        "",
    ]
    return lines


def _closing() -> str:
    """What follows for the shipped network, from whichever agents test is committed."""
    if all(path.is_file() for path in AB_RUNS.values()):
        old, new = (json.loads(path.read_text()) for path in AB_RUNS.values())
        if not ab_holds(network_differences(old, new)):
            return (
                "The shipped network stays: the network sees the blurs better, but the"
                " agents that act on what it sees do not end higher on the val rounds"
                " (the registered agents test above did not hold). The option stays for"
                " those who train their own perception."
            )
        return (
            "The agents test held: shipping the network is next, with every perceiving"
            " agent's records regenerated (docs/heldout.md, docs/leaderboard.md)."
        )
    return (
        "The shipped network stays as it is until the agents are measured on enough val"
        " episodes (the 200 above are too few to decide it)."
    )


def section() -> str:
    """docs/perception.md's section on the option, from the committed records."""
    if not VAL.is_file():
        return ""
    val = json.loads(VAL.read_text())
    report = json.loads(REPORT.read_text()) if REPORT.is_file() else None
    first, second = verdict(val, report)
    rows = {"val": (val["shipped"]["types"], val["blind"]["types"])}
    if report is not None:
        shipped = json.loads(SHIPPED_REPORT.read_text())["sets"]
        for name in report["sets"]:
            rows[name] = (shipped[name]["presence"], report["sets"][name]["presence"])
    old, new = val["shipped"], val["blind"]
    outcome = "held" if first and second else "did not hold"
    if first and second is None:
        outcome = "held on val; the test photos were not scored"
    lines = [
        "",
        "## What the blind deblurring sees (an option, not shipped)",
        "",
        "Generated by `python -m benchmarks.perception_report --doc-only` (the section of",
        "`benchmarks.perception_blind`) from `benchmarks/results/perception_blind/` (how each",
        "file was made: that module's doc).",
        "",
        textwrap_join(
            "The blind deblurring tools decide whether a tile is blurred by fitting kernels to its",
            "power spectrum (docs/tools.md). `kernel_fit_features` hands those fits to the",
            "classifier: for each of six motion trails (best of 36 directions) and fifteen defocus",
            "disks, how much better it explains the spectrum than no blur, and how directional",
            "the best trail's fit is (24 columns). `--blind` retrains the shipped recipe with",
            f"them (same seed, same examples). On the run's {val['examples']} val examples",
            f"({val['val_photos']}, each network at its own tuned thresholds) mean F1",
            f"{old['mean_f1']:.3f} -> {new['mean_f1']:.3f}, exact-set rate",
            f"{old['exact_set']:.3f} -> {new['exact_set']:.3f}; per type (F1; held-out sets:",
            "`perception_report` with each network, 12 crops per combination):",
        ),
        "",
        *_f1_table(rows),
        "",
        *_held_out_lines(report),
        *_agent_lines(),
        *_ab_lines(),
        textwrap_join(
            "The rule registered before the run (motion and defocus F1 both up and mean F1",
            "not down on val, then motion and defocus F1 both up on the corpus' test photos):",
            f"{outcome}.",
            _closing(),
        ),
        "",
    ]
    return "\n".join(lines)


def textwrap_join(*parts: str) -> str:
    """Sentence fragments joined and wrapped to the docs' width."""
    import textwrap

    return textwrap.fill(" ".join(parts), width=100, break_on_hyphens=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Score the run's val examples (``--run``) and/or print the doc section."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="the --blind training run's folder")
    parser.add_argument("--doc-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.run is not None and not args.doc_only:
        FOLDER.mkdir(parents=True, exist_ok=True)
        tmp = VAL.with_suffix(".tmp")
        tmp.write_text(json.dumps(run_val(args.run), indent=1) + "\n")
        tmp.replace(VAL)
    print(section())


if __name__ == "__main__":
    main()
