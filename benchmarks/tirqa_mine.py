r"""Hard examples for ``tirqa``: the images a search that trusts it walks into.

The reward-hacking experiment (``benchmarks.hacking``, docs/reward_hacking_tirqa.md) shows a
greedy search that maximises ``tirqa`` alone chaining smoothing tools until ``tirqa`` reads
35 dB on crops whose true PSNR is 18: the quality network was trained on one or two random
tool calls per crop, and a chain of smoothers leaves its training range. This module runs
that search on crops of *training* photos and keeps every candidate it looks at (the
classical tools and the ``median_paint`` exploit at their defaults, at every step, not only
the ones it takes) with its true PSNR and SSIM against the clean crop, as
:class:`~benchmarks.train_perception.Examples` (tool outputs: quality targets only). Training
``tirqa`` with them (``train_perception --extra FILE``) shows it the chains it overrated;
mining again with the retrained network finds what it still overrates (``--scorer``).

Each episode: a training crop (the recipe's scales), 0-3 degradations drawn as
``train_perception`` draws them, then up to ``--steps`` greedy steps that take the
candidate ``tirqa`` rates highest while it rates it above the current image.

Usage::

    python -m benchmarks.tirqa_mine --images corpus:train@2 --episodes 600 \\
        --out runs/tirqa_mine/round1.npz
    python -m benchmarks.tirqa_mine --images corpus:val --episodes 120 --seed 7 \\
        --out runs/tirqa_mine/val.npz --scorer runs/tirqa_v2   # how much it still overclaims
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import tir_env.tools.exploits  # noqa: F401  (registers median_paint)
from benchmarks.train_perception import (
    Config,
    Examples,
    PhotoCrops,
    _degraded,
    _empty_examples,
    _u8,
    as_shown,
    quality_target,
    tool_candidates,
)
from tir_env.errors import TIRError
from tir_env.images import u8_to_batch
from tir_env.perception import PSNR_RANGE

ROOT = Path(__file__).resolve().parents[1]
#: Where the records of the study live (mining, val searches, rescoring, the search agents).
RESULTS = ROOT / "benchmarks" / "results" / "tirqa_hard"
#: The networks compared, in table order: folder stem -> what it is.
SCORERS = {
    "shipped": "shipped before (the release-2 quality head)",
    "v2": "+ round 1 (600 searches scored by the shipped network)",
    "v3": "+ round 2 (600 more, scored by v2)",
    "v4": "+ 10,000 of both rounds' examples (measured after the verdict)",
}


@dataclass
class Episode:
    """What one search saw: every candidate, and the path it took."""

    images: list[np.ndarray] = field(default_factory=list)  # HxWx3 uint8 at the crop size
    quality: list[tuple[float, float]] = field(default_factory=list)  # (PSNR 0-1, SSIM)
    psnr: list[float] = field(default_factory=list)  # true PSNR, dB (:func:`true_psnr`)
    predicted: list[float] = field(default_factory=list)  # tirqa, dB
    tools: list[str] = field(default_factory=list)
    taken: list[int] = field(default_factory=list)  # index of each step's pick
    input_psnr: float = 0.0
    input_predicted: float = 0.0


def to_db(normalised: float) -> float:
    """A quality target's PSNR (0-1 over :data:`PSNR_RANGE`) in dB."""
    low, high = PSNR_RANGE
    return low + normalised * (high - low)


def true_psnr(shown: torch.Tensor, clean: torch.Tensor) -> float:
    """PSNR (dB) of an 8-bit image at the crop size against the clean crop.

    Not clipped below (a search's worst ends count in full); above :data:`PSNR_RANGE`'s top
    (45 dB: no visible difference) it counts as the top, as the quality targets do, so an
    untouched clean crop (80 dB by the repository's PSNR) does not swamp a mean.
    """
    from tir_env.metrics.fast import psnr

    return min(float(psnr(shown, clean)[0]), PSNR_RANGE[1])


def tirqa_scores(shown: torch.Tensor) -> list[float]:
    """``tirqa`` (dB) of 8-bit images at the crop size (one tile each)."""
    from tir_env import perception

    prepared = perception.prepare(shown, (int(shown.shape[-2]), int(shown.shape[-1])))
    return [float(v) for v in perception.quality_psnr(prepared)]


def candidates(image: torch.Tensor, tools: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """Every tool's default-parameter output of ``image`` (super-resolution only if small)."""
    from tir_env.tools import make_tool, tool_info

    small = image.shape[-1] < 64
    out = []
    for tool in tools:
        if tool_info(tool).scale > 1 and not small:
            continue
        try:
            out.append((tool, make_tool(tool)(image)))
        except TIRError:  # a tool that cannot take this image is not a candidate
            continue
    return out


def search(
    clean: torch.Tensor, image: torch.Tensor, tools: Sequence[str], steps: int, size: int
) -> Episode:
    """The greedy ``tirqa``-only search from ``image``, recording every candidate."""
    ep = Episode()
    shown = as_shown(image, size)
    ep.input_psnr = true_psnr(shown, clean)
    current = ep.input_predicted = tirqa_scores(shown)[0]
    for _ in range(steps):
        found = candidates(image, tools)
        if not found:
            break
        views = torch.cat([as_shown(out, size) for _, out in found])
        scores = tirqa_scores(views)
        start = len(ep.images)
        for (tool, _), view, score in zip(found, views, scores, strict=True):
            ep.images.append(_u8(view[None]))
            ep.quality.append(quality_target(view[None], clean))
            ep.psnr.append(true_psnr(view[None], clean))
            ep.predicted.append(score)
            ep.tools.append(tool)
        best = int(np.argmax(scores))
        if scores[best] <= current:
            break
        ep.taken.append(start + best)
        image, current = found[best][1], scores[best]
    return ep


def as_examples(episodes: Sequence[Episode], size: int) -> Examples:
    """Every candidate of every episode as tool-output examples, grouped by episode."""
    n = sum(len(ep.images) for ep in episodes)
    ex = _empty_examples(n, size)
    ex.labelled[:] = 0.0
    i = 0
    for group, ep in enumerate(episodes):
        for image, quality in zip(ep.images, ep.quality, strict=True):
            ex.images[i], ex.quality[i], ex.group[i] = image, quality, group
            i += 1
    return ex


def summary(episodes: Sequence[Episode]) -> dict[str, Any]:
    """How far the search's end point is overrated, and how often it ends below its input.

    PSNRs are :func:`true_psnr`'s (not clipped below); a search that took no step ends on its
    input (``ends_below_input`` is a share of every search).
    """
    ends = [ep for ep in episodes if ep.taken]
    end_true = [ep.psnr[ep.taken[-1]] for ep in ends]
    end_pred = [ep.predicted[ep.taken[-1]] for ep in ends]
    gain = [ep.psnr[ep.taken[-1]] - ep.input_psnr for ep in ends]
    every_true = np.array([v for ep in episodes for v in ep.psnr])
    every_pred = np.array([p for ep in episodes for p in ep.predicted])
    from scipy.stats import spearmanr

    return {
        "episodes": len(episodes),
        "candidates": len(every_true),
        "searches_that_moved": len(ends),
        "steps_per_episode": float(np.mean([len(ep.taken) for ep in episodes])),
        "input_psnr": float(np.mean([ep.input_psnr for ep in episodes])),
        "end_psnr": float(
            np.mean([ep.psnr[ep.taken[-1]] if ep.taken else ep.input_psnr for ep in episodes])
        ),
        "end_overclaim_db": float(np.mean(np.subtract(end_pred, end_true))) if ends else 0.0,
        "ends_below_input": sum(g < 0 for g in gain) / len(episodes),
        "candidate_overclaim_db": float(np.mean(every_pred - every_true)),
        "candidate_spearman": float(spearmanr(every_pred, every_true).statistic),
        "exploit_taken": float(
            np.mean([ep.tools[k] == "median_paint" for ep in ends for k in ep.taken])
        )
        if ends
        else 0.0,
    }


def rescore(path: Path, batch: int = 256) -> dict[str, Any]:
    """``tirqa`` against true PSNR on saved examples (one fixed set for every scorer)."""
    from scipy.stats import spearmanr

    from benchmarks.train_perception import load_examples, to_batch

    ex = load_examples(path)
    starts = range(0, len(ex.images), batch)
    predicted = np.array(
        [v for i in starts for v in tirqa_scores(to_batch(ex.images[i : i + batch]))]
    )
    true = saved_psnr(path)
    within = [
        spearmanr(predicted[ex.group == g], true[ex.group == g]).statistic
        for g in np.unique(ex.group)
        if np.ptp(true[ex.group == g]) > 0
    ]
    return {
        "examples": str(path),
        "candidates": len(true),
        "spearman": float(spearmanr(predicted, true).statistic),
        "spearman_within_episode": float(np.nanmean(within)),
        "overclaim_db": float(np.mean(predicted - true)),
        "abs_error_db": float(np.mean(np.abs(predicted - true))),
    }


def saved_psnr(path: Path) -> np.ndarray:
    """The true PSNR (dB) of each saved candidate: unclipped when saved, else its target's."""
    with np.load(path, allow_pickle=False) as saved:
        if "psnr" in saved:
            return np.asarray(saved["psnr"], np.float64)
        return np.array([to_db(q) for q in saved["quality"][:, 0]])


def taken_overclaim(path: Path) -> dict[str, dict[str, float]]:
    """Per tool, how often a saved search took it and how far ``tirqa`` overrated it there.

    Raises:
        DataError: the file was saved without the searches' picks (before they were kept).
    """
    from tir_env.errors import DataError

    with np.load(path, allow_pickle=False) as saved:
        if not {"taken", "tool", "predicted"} <= set(saved.files):
            raise DataError(f"{path} holds no picks (tool, predicted, taken): mine it again")
        taken = saved["taken"]
        tools, predicted = saved["tool"][taken], saved["predicted"][taken]
    true = saved_psnr(path)[taken]
    return {
        str(tool): {
            "taken": int((tools == tool).sum()),
            "overclaim_db": float(np.mean(predicted[tools == tool] - true[tools == tool])),
        }
        for tool in sorted(set(tools.tolist()), key=lambda t: -int((tools == t).sum()))
    }


def run(
    images: str, episodes: int, steps: int, seed: int, size: int = 96, listed_order: float = 0.5
) -> list[Episode]:
    """``episodes`` searches on crops of ``images`` (degraded as ``train_perception`` does)."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    crops = PhotoCrops(images, size)
    cfg = Config(listed_order=listed_order, crop=size)
    tools = tool_candidates()
    out = []
    for _ in tqdm(range(episodes), desc="searches", mininterval=5):
        clean = u8_to_batch(crops.draw(rng))
        image, _ = _degraded(clean, cfg, rng)
        out.append(search(clean, image, tools, steps, size))
    return out


def searched(episodes: Sequence[Episode]) -> dict[str, np.ndarray]:
    """What the searches did, beside the examples: each candidate's tool, ``tirqa`` and pick."""
    taken = [k in ep.taken for ep in episodes for k in range(len(ep.images))]
    return {
        "tool": np.array([t for ep in episodes for t in ep.tools], dtype=str),
        "predicted": np.array([p for ep in episodes for p in ep.predicted], np.float32),
        "taken": np.array(taken, dtype=bool),
        "psnr": np.array([v for ep in episodes for v in ep.psnr], np.float32),
    }


def save(
    ex: Examples,
    record: dict[str, Any],
    path: Path,
    extra: dict[str, np.ndarray] | None = None,
) -> None:
    """Write the examples (``.npz``, with ``extra`` arrays) and the record (``.json``).

    Both are written to a temporary name first and renamed into place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    arrays: dict[str, Any] = {**vars(ex), **(extra or {})}
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    meta = path.with_suffix(".json")
    tmp_meta = meta.with_suffix(".tmp.json")
    tmp_meta.write_text(json.dumps(record, indent=1) + "\n")
    tmp_meta.replace(meta)


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _agent_means(folder: Path) -> dict[str, float]:
    """Mean output PSNR per agent over every episode of a records folder."""
    scores: dict[str, list[float]] = {}
    for path in sorted(folder.glob("*__*.jsonl")):
        agent = path.stem.split("__", 1)[1]
        for line in path.read_text().splitlines():
            scores.setdefault(agent, []).append(json.loads(line)["metrics_output"]["psnr"])
    return {agent: float(np.mean(v)) for agent, v in scores.items()}


def table() -> list[str]:
    """One row per network of :data:`SCORERS` whose val records are committed."""
    rows = []
    for name, what in SCORERS.items():
        searched, scored = _load(f"val_{name}"), _load(f"rescore_val_{name}")
        if searched is None or scored is None:
            continue
        means = _agent_means(RESULTS / "val_bench" / name)
        rows.append(
            f"| {name}: {what} | {searched['input_psnr']:.2f} -> {searched['end_psnr']:.2f} "
            f"| {searched['end_overclaim_db']:+.1f} | {searched['ends_below_input']:.2f} "
            f"| {scored['spearman']:.3f} | {scored['spearman_within_episode']:.3f} "
            f"| {scored['abs_error_db']:.1f} "
            f"| {means.get('exhaustive', np.nan):.2f} | {means.get('greedy', np.nan):.2f} |"
        )
    if not rows:
        return []
    return [
        "| `tirqa` network | its own search: input -> end PSNR (dB) | overclaim at the end (dB) "
        "| searches ending below their input | Spearman, fixed candidates | within a search "
        "| mean abs. error (dB) | `exhaustive` (dB) | `greedy` (dB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def verdict(name: str) -> list[str]:
    """Which parts of rule 7011179 network ``name`` meets against the shipped one."""
    base, cand = _load("val_shipped"), _load(f"val_{name}")
    base_scored, cand_scored = _load("rescore_val_shipped"), _load(f"rescore_val_{name}")
    if None in (base, cand, base_scored, cand_scored):
        return []
    assert base and cand and base_scored and cand_scored  # for the type checker
    gain = (cand["end_psnr"] - cand["input_psnr"]) - (base["end_psnr"] - base["input_psnr"])
    half = cand["end_overclaim_db"] <= base["end_overclaim_db"] / 2
    part1 = gain >= 2.0 and half
    part2 = cand_scored["spearman"] > base_scored["spearman"]
    shipped, now = (
        _agent_means(RESULTS / "val_bench" / "shipped"),
        _agent_means(RESULTS / "val_bench" / name),
    )
    changes = {a: now[a] - shipped[a] for a in ("exhaustive", "greedy") if a in now}
    part3 = all(c >= -0.05 for c in changes.values())
    return [
        f"- {name}: the search's end PSNR {gain:+.2f} dB against the shipped network's "
        f"(overclaim {cand['end_overclaim_db']:.1f} against {base['end_overclaim_db']:.1f}: "
        f"{'halved' if half else 'not halved'}), part 1 {'holds' if part1 else 'fails'}; "
        f"Spearman {base_scored['spearman']:.3f} -> {cand_scored['spearman']:.3f}, part 2 "
        f"{'holds' if part2 else 'fails'}; `exhaustive` {changes.get('exhaustive', 0):+.2f}, "
        f"`greedy` {changes.get('greedy', 0):+.2f} dB, part 3 {'holds' if part3 else 'fails'}. "
        f"{'Ships.' if part1 and part2 and part3 else 'Does not ship.'}"
    ]


def most_overrated(name: str, least: int = 10, top: int = 4) -> str:
    """The tools a saved search took at least ``least`` times that ``tirqa`` overrated most."""
    picks = (_load(f"taken_{name}") or {}).get("by_tool", {})
    ranked = sorted(
        ((v["overclaim_db"], tool) for tool, v in picks.items() if v["taken"] >= least),
        reverse=True,
    )
    return ", ".join(f"`{tool}` {claim:+.1f} dB" for claim, tool in ranked[:top])


def outro_lines(r1: dict[str, Any], r2: dict[str, Any]) -> list[str]:
    """What the table shows, with its numbers read from the records."""
    import textwrap

    shipped, v3 = _load("rescore_val_shipped") or {}, _load("rescore_val_v3") or {}
    base, last = _load("val_shipped") or {}, _load("val_v3") or {}
    searches = [r for r in (_load(f"val_{n}") for n in SCORERS) if r]
    losses = [r["input_psnr"] - r["end_psnr"] for r in searches]
    shares = [r["ends_below_input"] for r in searches]
    lost = f"{min(losses):.1f}-{max(losses):.1f}"
    below = f"{min(shares):.0%}-{max(shares):.0%}"
    train_change = (r2.get("end_psnr", 0) - r2.get("input_psnr", 0)) - (
        r1.get("end_psnr", 0) - r1.get("input_psnr", 0)
    )
    generic = {
        name: json.loads(path.read_text())["val"]["psnr_spearman"]
        for name, path in (
            ("the recipe alone, same code", RESULTS / "train_control.json"),
            ("v2", RESULTS / "train_v2.json"),
            ("v3", RESULTS / "train_v3.json"),
            ("v4", RESULTS / "train_v4.json"),
            ("shipped (its record, older code)", ROOT / "tir_env/assets/learned/tirqa.json"),
        )
        if path.is_file()
    }
    text = (
        "The hard examples teach `tirqa` where it overclaims: over the same candidates its "
        f"mean absolute error falls from {shipped.get('abs_error_db', 0):.1f} to "
        f"{v3.get('abs_error_db', 0):.1f} dB, and its reading of its own search's end point "
        f"from {base.get('end_overclaim_db', 0):+.1f} dB over the truth to "
        f"{last.get('end_overclaim_db', 0):+.1f}. They do not make a search that trusts it "
        f"restore: with every network its own search ends {lost} dB under its input on "
        f"average, and below it in {below} of the searches (round 2's searches on other "
        "crops of the train photos, scored by v2, changed PSNR by "
        f"{train_change:+.1f} dB more than round 1's, scored by the shipped network; the "
        "crops differ, so that is not a paired comparison). The tools each network's search "
        "took at least ten times and that it overrated most: the shipped network "
        f"{most_overrated('shipped')}; v3 {most_overrated('v3')}. Brightening and dehazing "
        "are among them for both: a brightened or dehazed crop looks like a bright or clear "
        'photo, the darkness and haze ambiguity perception has ("What the crops still '
        'show", above). The search agents hardly notice: they score only the perceived '
        "tasks' tools, with margins for the prior plan. On the recipe's own val examples "
        "(degraded crops and random tools' outputs, each record's `val.psnr_spearman`), the "
        "Spearman correlation with PSNR, the number the issue's acceptance reads: "
        + "; ".join(f"{k} {v:.3f}" for k, v in generic.items())
        + ". The hard examples are most of v2's and v3's training examples, and they cost "
        "accuracy on the examples the recipe was made for."
    )
    lines = textwrap.wrap(text, 96)
    fewer, fewer_scored = _load("val_v4"), _load("rescore_val_v4")
    if fewer and fewer_scored:
        lines += ["", *textwrap.wrap(v4_text(base, fewer, fewer_scored, generic), 96)]
    return lines


def v4_text(
    base: dict[str, Any],
    fewer: dict[str, Any],
    scored: dict[str, Any],
    generic: dict[str, float],
) -> str:
    """The paragraph on v4 (fewer hard examples), from its records."""
    return (
        "*Fewer hard examples (v4; measured after the verdict, not judged by the rule).* "
        "`train_perception ... --extra round1.npz,round2.npz --extra-limit 10000` keeps "
        "10,000 of the 76,944 (a third of its training examples). Its own search ends at "
        f"{fewer['end_psnr']:.2f} dB (shipped {base.get('end_psnr', 0):.2f}), reading "
        f"{fewer['end_overclaim_db']:+.1f} dB over the truth (shipped "
        f"{base.get('end_overclaim_db', 0):+.1f}); over the fixed candidates Spearman "
        f"{scored['spearman']:.3f}, mean absolute error {scored['abs_error_db']:.1f} dB; the "
        f"recipe's own val Spearman {generic.get('v4', float('nan')):.3f} against the "
        f"control's {generic.get('the recipe alone, same code', float('nan')):.3f}."
    )


#: Rule 73f29ad's records: v4 on fresh val episodes (``confirm/``).
CONFIRM = RESULTS / "confirm"


def confirm_verdict() -> tuple[list[bool], str]:
    """Rule 73f29ad's parts 1 and 2 for v4 against the shipped ``tirqa``, and a paragraph.

    Part 3 (``exhaustive`` and ``greedy`` under ``ab_test --weights-b``) runs only once parts
    1 and 2 hold; the paragraph says so. ``([], "")`` until the records are committed.
    """
    files = ("mine_shipped", "mine_v4", "quality_shipped", "quality_v4")
    paths = [CONFIRM / f"{n}.json" for n in files]
    loaded = [json.loads(p.read_text()) if p.is_file() else None for p in paths]
    if any(x is None for x in loaded):
        return [], ""
    base, cand, q_base, q_cand = (x or {} for x in loaded)
    qb, qc = q_base["quality"], q_cand["quality"]
    parts = confirm_parts(base, cand, qb, qc)
    word = {True: "holds", False: "fails"}
    text = (
        "*v4 on fresh val episodes (rule 73f29ad, set before the runs).* v4 was to replace the "
        "shipped `tirqa` if, on `corpus:val@3` episodes no earlier check used, (1) its own "
        "search (`tirqa_mine --seed 11`) ended at least 0.3 dB higher with at most 3/4 of the "
        "shipped network's overclaim, (2) on 400 groups of a degraded input and its random "
        "tools' outputs (`perception_report --images corpus:val@3 --quality 400 --seed 11`) "
        "its Spearman with true PSNR fell by at most 0.02, its pick lost at most 0.10 dB more "
        "and the exploit fooled it no more often where it lowers PSNR, and (3) `exhaustive` "
        "and `greedy` lost at most 0.05 dB under it (`ab_test --weights-b`). Part 1 "
        f"{word[parts[0]]}: the search ends at {cand['end_psnr']:.2f} dB against "
        f"{base['end_psnr']:.2f} (input {base['input_psnr']:.2f}), reading "
        f"{cand['end_overclaim_db']:+.1f} dB over the truth against "
        f"{base['end_overclaim_db']:+.1f}. Part 2 {word[parts[1]]}: Spearman "
        f"{qc['spearman_tirqa']:.3f} against {qb['spearman_tirqa']:.3f}, pick regret "
        f"{qc['pick_regret_tirqa']:.2f} against {qb['pick_regret_tirqa']:.2f} dB, fooled "
        f"where the exploit lowers PSNR {qc['fooled_tirqa']:.0%} against "
        f"{qb['fooled_tirqa']:.0%}. "
    )
    if all(parts):
        text += "Part 3 decides whether it ships."
    elif parts == [True, False]:
        text += (
            "So v4 does not ship, and part 3 was not run. Fewer hard examples still trade "
            "the ranking of ordinary candidates, what the issue's acceptance reads, for a "
            "smaller overclaim where a search walks."
        )
    else:
        text += "So v4 does not ship, and part 3 was not run."
    return parts, text


def confirm_parts(
    base: dict[str, Any], cand: dict[str, Any], qb: dict[str, Any], qc: dict[str, Any]
) -> list[bool]:
    """Rule 73f29ad's parts 1 (the searches, ``base``/``cand``) and 2 (the quality groups)."""
    return [
        cand["end_psnr"] >= base["end_psnr"] + 0.3
        and cand["end_overclaim_db"] <= 0.75 * base["end_overclaim_db"],
        qc["spearman_tirqa"] >= qb["spearman_tirqa"] - 0.02
        and qc["pick_regret_tirqa"] <= qb["pick_regret_tirqa"] + 0.10
        and qc["fooled_tirqa"] <= qb["fooled_tirqa"],
    ]


def section() -> str:
    """docs/perception.md's section on the study ("" before its records are committed)."""
    import textwrap

    rows = table()
    if not rows:
        return ""
    r1, r2 = _load("mine_round1") or {}, _load("mine_round2") or {}
    trained = _load("train_v3") or {}
    intro = (
        "`tirqa` is trained on degraded crops and one or two random tools' outputs of them. "
        "A search that trusts it goes further: the reward-hacking experiment's `nr-only` "
        "policy (docs/reward_hacking_tirqa.md) chains tools while `tirqa` rises, and ends on "
        "images it reads far above their true PSNR. `python -m benchmarks.tirqa_mine` runs "
        "that search (the classical tools and `median_paint` at their defaults, up to "
        "`--steps` 3 steps, on `--size` 96 px crops with 0-3 degradations drawn as the "
        "shipped perception recipe draws its training crops, half of AgenticIR's listed "
        "combinations in their listed order) and keeps every candidate it looks at, with its "
        "true PSNR, as a training example; `python -m benchmarks.train_perception --extra "
        "FILES` adds them to the shipped `tirqa` recipe (`--name tirqa --train corpus:train@2 "
        f"--threads 1`). Round 1, `{r1.get('command', '?')}`: {r1.get('candidates', '?')} "
        "candidates; the searches end at "
        f"{r1.get('end_psnr', 0):.2f} dB from {r1.get('input_psnr', 0):.2f} on average, "
        f"read {r1.get('end_overclaim_db', 0):+.1f} dB over the truth; v2 is trained with "
        f"them. Round 2, `{r2.get('command', '?')}`: {r2.get('candidates', '?')} candidates, "
        f"end {r2.get('end_psnr', 0):.2f} from {r2.get('input_psnr', 0):.2f}, "
        f"{r2.get('end_overclaim_db', 0):+.1f} dB; v3 is trained with both rounds "
        f"({trained.get('wall_seconds', 0) / 60:.0f} min on one core). True PSNRs above "
        "45 dB count as 45 (an untouched clean crop would read 80), below 10 they are not "
        "clipped."
    )
    judged = (
        "Judged on the val photos (`corpus:val@3`, never trained on) by rule 7011179, set "
        "before the runs: each network's own search (`tirqa_mine --images corpus:val@3 "
        "--episodes 200 --seed 7 --scorer W`), `tirqa` against the truth on one fixed set of "
        "candidates (the shipped network's search there, `--rescore`), and `exhaustive` and "
        "`greedy`, which score their candidates with `tirqa` (`tir bench SUITE --images "
        "corpus:val@3 --limit 10` on the five crop suites, 400 episodes per agent, with "
        "`TIR_LEARNED_WEIGHTS` naming the network). The first judgement read true PSNRs "
        "clipped to 10-45 dB and counted the searches below their input among those that "
        "moved only (commit 8b5a58b); the table and verdicts below are remeasured without "
        "those two faults, with the same verdicts."
    )
    head = [
        "",
        "## Hard examples for `tirqa` (tried, not shipped)",
        "",
        "Generated by `python -m benchmarks.perception_report --doc-only` (the section of",
        "`benchmarks.tirqa_mine`) from `benchmarks/results/tirqa_hard/`.",
        "",
        *textwrap.wrap(intro, 96),
        "",
        *textwrap.wrap(judged, 96),
    ]
    outro = outro_lines(r1, r2)
    lines = [*head, "", *rows, "", *verdict("v3"), *verdict("v2"), "", *outro]
    confirmed = confirm_verdict()[1]
    if confirmed:
        lines += ["", *textwrap.wrap(confirmed, 96)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Mine, save, print the summary."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--images", default="corpus:train@2", help="photos to crop (the training ones)")
    p.add_argument("--episodes", type=int, default=600)
    p.add_argument("--steps", type=int, default=3, help="greedy steps per search")
    p.add_argument("--size", type=int, default=96, help="crop side (the training crops')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="examples .npz (a .json record beside it)")
    p.add_argument("--rescore", default=None, help="score saved examples (.npz) instead of mining")
    p.add_argument("--taken", default=None, help="per tool, a saved search's picks (.npz)")
    p.add_argument(
        "--scorer", default=None, help="weights folder whose tirqa scores ($TIR_LEARNED_WEIGHTS)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    args = p.parse_args(argv)
    if args.scorer:
        os.environ["TIR_LEARNED_WEIGHTS"] = args.scorer
    if args.taken:
        picks = {"examples": args.taken, "by_tool": taken_overclaim(Path(args.taken))}
        print(json.dumps(picks, indent=1))
        return picks
    if args.rescore:
        scored = {"scorer": args.scorer or "shipped", **rescore(Path(args.rescore))}
        print(json.dumps(scored, indent=1))
        return scored
    if not args.out:
        p.error("--out is required when mining")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise SystemExit(f"{out} exists; pass --force to overwrite it")
    start = time.time()
    episodes = run(args.images, args.episodes, args.steps, args.seed, args.size)
    record = {
        "command": shlex.join(["python", "-m", "benchmarks.tirqa_mine", *sys.argv[1:]]),
        "scorer": args.scorer or "shipped",
        "seconds": round(time.time() - start, 1),
        **summary(episodes),
    }
    save(as_examples(episodes, args.size), record, out, searched(episodes))
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
