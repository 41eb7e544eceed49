"""docs/acceptance.md: where each open issue's acceptance stands, read from the committed records.

Every number on the page is computed here from a committed record (named in its row, with the
command that made it where the record keeps one), so the page cannot drift from the records:
``python -m benchmarks.gen_docs`` rewrites it and a test fails when it is stale. A point that is
a behaviour rather than a measurement (a named error, a resumed run) names the tests that hold
it. Nothing is run anew.

Usage::

    python -m benchmarks.acceptance        # print the page
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tir_env.degradations.protocols import AGENTICIR_TYPES as TYPES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("benchmarks/results")
#: The crop suites the perception points are read on (issue 13: `mio-a`, `mio-b`, `mio-c`).
MIO = ("mio-a", "mio-b", "mio-c")
PERCEPTION_LIMITS = RESULTS / "perception_limits.json"
PERCEPTION = RESULTS / "perception.json"
RESTORE = RESULTS / "restore_check.json"
#: `tir restore` on the held-out photos at their files' own size (up to 6028 px, a camera's).
RESTORE_NATIVE = RESULTS / "restore_user" / "test_native.json"
#: The rounds of all nine test photos (the primary reading of the comparisons, rule ad61d0b).
ROUNDS = RESULTS / "heldout_rounds" / "test9.json"
#: The SFT summaries of the first-call probe (image size hidden): the shipped SFT's and the
#: three seeds of the best recipe (docs/agents.md, "Perception in the prompt").
SFT_DIR = RESULTS / "vlm" / "perception_hint"
SHIPPED_SFT = "sft_none_w5_singles.json"
BEST_SFT = (
    "sft_none_w5_taskfirst_r2_x2.json",
    "sft_none_w5_taskfirst_r2_x2_s1.json",
    "sft_none_w5_taskfirst_r2_x2_s2.json",
)
#: GRPO seeds against their SFT on rounds 8-15 of `mio-a` on all nine test photos.
GRPO_ROUNDS = (
    "vlm_grpo_sft.json",
    "vlm_grpo_r3.json",
    "vlm_grpo_sft_judge.json",
    "vlm_grpo_r3_judge.json",
    "vlm_grpo_judge_test.json",
)
#: The shipped PPO recipe's three fine-tuned seeds, run on the test photos' `mio-a` episodes,
#: and the clone they were fine-tuned from (`ppo-bc`) on the same episodes.
PPO_SEEDS = ("ft0", "ft1", "ft2")
PPO_SETS = {
    "bundled": (RESULTS / "ppo_perceived" / "bundled", RESULTS / "leaderboard"),
    "held-out": (RESULTS / "ppo_perceived" / "heldout", RESULTS / "heldout"),
}


@dataclass(frozen=True)
class Point:
    """One acceptance point: what is asked, what the records say, and whether that meets it."""

    asked: str
    measured: str
    met: bool | None  # None: partly, or the records do not decide it
    source: str

    def row(self) -> str:
        """The point as a Markdown table row."""
        verdict = {True: "met", False: "not met", None: "partly"}[self.met]
        return f"| {self.asked} | {self.measured} | {verdict} | {self.source} |"


def _read(path: Path) -> Any:
    return json.loads((ROOT / path).read_text())


def _records(path: Path) -> list[dict[str, Any]]:
    from benchmarks.evaluate import read_jsonl

    return read_jsonl(ROOT / path)


def _f1(rows: Sequence[dict[str, Any]], name: str) -> float:
    """F1 of type ``name`` over ``rows`` (perceived ``found`` against the ``truth``)."""
    tp = sum(name in r["found"] and name in r["truth"] for r in rows)
    fp = sum(name in r["found"] and name not in r["truth"] for r in rows)
    fn = sum(name not in r["found"] and name in r["truth"] for r in rows)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _exact(rows: Sequence[dict[str, Any]]) -> float:
    return float(np.mean([sorted(r["found"]) == sorted(r["truth"]) for r in rows]))


def perception_table(result: dict[str, Any]) -> list[str]:
    """Per-type F1 and the exact-set rate on the `mio-*` crops of each held-out set."""
    sets = result["sets"]
    names = list(sets)
    rows = {n: [r for r in sets[n]["rows"] if r["suite"] in MIO] for n in names}
    lines = [
        "| type | " + " | ".join(f"F1, {n} ({sets[n]['photos']} photos)" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for name in TYPES:
        lines.append(f"| {name} | " + " | ".join(f"{_f1(rows[n], name):.2f}" for n in names) + " |")
    exact = " | ".join(f"{_exact(rows[n]):.2f}" for n in names)
    lines.append(f"| **exact set** | {exact} |")
    return lines


def perception_points(result: dict[str, Any], path: Path = PERCEPTION_LIMITS) -> list[Point]:
    """Issue 13's perception points: every type's F1 >= 0.90, the exact-set rate >= 0.75."""
    source = f"`{path}` (`{result['command']}`)"
    sets = result["sets"]
    rows = {n: [r for r in s["rows"] if r["suite"] in MIO] for n, s in sets.items()}
    below = sorted({t for n in rows for t in TYPES if _f1(rows[n], t) < 0.90})
    lowest = min((_f1(rows[n], t), t, n) for n in rows for t in TYPES)
    exact = {n: _exact(r) for n, r in rows.items()}
    return [
        Point(
            "Per-type F1 >= 0.90 on held-out crops, every type",
            f"{8 - len(below)} of 8 types reach it on every set; lowest {lowest[1]} "
            f"{lowest[0]:.2f} ({lowest[2]}); below: {', '.join(below) or 'none'}",
            not below,
            source,
        ),
        Point(
            "Exact-set rate >= 0.75 (the `mio-*` combinations)",
            ", ".join(f"{n} {v:.2f}" for n, v in exact.items()),
            all(v >= 0.75 for v in exact.values()),
            source,
        ),
    ]


def tirqa_points(result: dict[str, Any], path: Path = PERCEPTION) -> list[Point]:
    """Issue 13's quality-model points: Spearman >= 0.90; the exploit does not raise `tirqa`."""
    source = f"`{path}` (`{result['command']}`)"
    quality = {n: s["quality"] for n, s in result["sets"].items()}
    return [
        Point(
            "`tirqa` Spearman >= 0.90 with PSNR (degraded inputs and tool outputs)",
            ", ".join(f"{n} {q['spearman_tirqa']:.3f}" for n, q in quality.items()),
            all(q["spearman_tirqa"] >= 0.90 for q in quality.values()),
            source,
        ),
        Point(
            "The exploit tool does not raise `tirqa` above the input's",
            "; ".join(
                f"{n}: raised on {q['exploit_raises_tirqa']:.0%} of crops (mean "
                f"{q['exploit_tirqa_change']:+.2f} dB; the exploit's true change "
                f"{q['exploit_psnr_change']:+.2f} dB, as it also removes noise and rain); on "
                f"the {q['exploit_hurts']:.0f} crops it truly harms, raised on "
                f"{q['fooled_tirqa']:.0%} (NIQE fooled on {q['fooled_niqe']:.0%})"
                for n, q in quality.items()
            ),
            all(q["fooled_tirqa"] == 0 for q in quality.values()),
            source,
        ),
    ]


def restore_points(result: dict[str, Any], path: Path = RESTORE) -> list[Point]:
    """Issue 13's `tir restore` points: clean photos left alone, sigma-20 noise removed."""
    source = f"`{path}` (`{result['command']}`)"
    rows = result["rows"]
    alone = [r["clean"]["psnr_out"] >= 40.0 for r in rows]
    gains = [r["noisy"]["psnr_out"] - r["noisy"]["psnr_in"] for r in rows]
    return [
        Point(
            "`tir restore` leaves a clean photo alone",
            f"{sum(alone)} of {len(rows)} held-out photos within 40 dB of the original",
            all(alone),
            source,
        ),
        Point(
            "`tir restore` removes real sigma-20 noise (gain reported)",
            f"{np.mean(gains):+.2f} dB on average, {min(gains):+.2f} at least",
            min(gains) > 0,
            source,
        ),
    ]


def native_restore_points() -> list[Point]:
    """The `tir restore` points on the held-out photos at their own size; [] without the record."""
    if not RESTORE_NATIVE.exists():
        return []
    points = restore_points(_read(RESTORE_NATIVE), RESTORE_NATIVE)
    return [replace(p, asked=f"{p.asked}: at the photos' own size") for p in points]


def checks_table(
    result: dict[str, Any], issue: str, independent: dict[str, Any] | None = None
) -> list[str]:
    """The issue's rows of the held-out comparisons, by photo set (:mod:`heldout_rounds`).

    ``independent``: the rounds of the independent set too (docs/independent.md), last.
    """
    from benchmarks.heldout_rounds import checks_markdown, only_photos

    sets: list[tuple[str, dict[str, Any]]] = [
        (label, only_photos(result, bundled))
        for label, bundled in (
            ("corpus-only photos", False),
            ("bundled photos", True),
            ("all", None),
        )
    ]
    if independent is not None:
        sets.append(("the independent set (docs/independent.md)", independent))
    lines: list[str] = []
    for label, rounds in sets:
        table = checks_markdown(rounds)
        rows = [line for line in table[2:] if line.startswith(f"| {issue} |")]
        if rows:
            lines += ["", f"*{label}*:", "", *table[:2], *rows]
    return lines


def independent_points() -> list[Point]:
    """Issue 13's perception and `tir restore` points on the independent set; [] before it ran."""
    from benchmarks import independent

    if not independent.available():
        return []
    points = [
        *perception_points(_read(independent.LIMITS), independent.LIMITS),
        *tirqa_points(independent.tirqa_result(), independent.TIRQA),
        *restore_points(_read(independent.RESTORE), independent.RESTORE),
    ]
    return [replace(p, asked=f"{p.asked}: the independent set") for p in points]


def _with_independent(limits: dict[str, Any]) -> dict[str, Any]:
    """The test sets' perception record, with the independent set's as a further set."""
    from benchmarks import independent

    if not independent.available():
        return limits
    return {**limits, "sets": {**limits["sets"], **_read(independent.LIMITS)["sets"]}}


def _independent_rounds() -> dict[str, Any] | None:
    from benchmarks import independent

    return _read(independent.ROUNDS) if independent.available() else None


def sft_point() -> Point:
    """Issue 14: first-call task accuracy after SFT, image size hidden, >= 80%."""
    shipped = _read(SFT_DIR / SHIPPED_SFT)["task_choice"]
    seeds = [_read(SFT_DIR / name) for name in BEST_SFT]
    best = [s["task_choice"]["accuracy"] for s in seeds]
    ceiling = [s["perception_choice"]["argmax"]["accuracy"] for s in seeds]
    return Point(
        "First-call task accuracy >= 80% after SFT, image size hidden",
        f"shipped SFT {shipped['accuracy']:.1%} ({shipped['correct']}/{shipped['n']}); the "
        f"best recipe {np.mean(best):.1%} over 3 seeds ({', '.join(f'{b:.1%}' for b in best)}), "
        f"perception's own pick {np.mean(ceiling):.1%}",
        None if np.mean(best) >= 0.80 > shipped["accuracy"] else shipped["accuracy"] >= 0.80,
        f"`{SFT_DIR}/{SHIPPED_SFT}`, `{SFT_DIR}/{BEST_SFT[0][:-5]}*.json`",
    )


def seeds_gain(result: dict[str, Any], seeds: Sequence[str], bundled: bool) -> tuple[float, float]:
    """The seeds' mean gain over ``result``'s versus on `mio-a` and its standard error.

    Each episode's gain is averaged over the seeds, then over each photo's episodes; the
    error is over the photos (whose episodes move together).
    """
    from benchmarks.ab_test import standard_error
    from benchmarks.heldout_rounds import only_photos, photo_means

    sub = only_photos(result, bundled)
    base = [r for r in sub["episodes"][result["versus"]] if r["suite"] == "mio-a"]
    gains = np.mean(
        [
            [r["output"] - b["output"] for r, b in zip(_mio_a(sub, s), base, strict=True)]
            for s in seeds
        ],
        axis=0,
    )
    photos = photo_means(gains, np.array([r["image"] for r in base]))
    return float(gains.mean()), float(standard_error(photos) or 0.0)


def _mio_a(result: dict[str, Any], agent: str) -> list[dict[str, Any]]:
    return [r for r in result["episodes"][agent] if r["suite"] == "mio-a"]


def grpo_rows() -> list[str]:
    """Issue 14: each GRPO rounds record, the 3 seeds' mean gain over the SFT by photo set."""
    lines = [
        "| record | seeds | corpus-only, mean over seeds (dB, ± 2 se) | bundled | fewest calls "
        "a seed | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in GRPO_ROUNDS:
        result = _read(RESULTS / "heldout_rounds" / name)
        seeds = [a for a in result["agents"] if a not in (result["versus"], "vlm")]
        gains = {
            label: seeds_gain(result, seeds, b)
            for label, b in (("corpus", False), ("bundled", True))
        }
        calls = min(result["comparison"]["mio-a"]["agents"][s]["calls"] for s in seeds)
        met = min(mean for mean, _ in gains.values()) >= 0.3 and calls >= 1.5
        cells = " | ".join(f"{mean:+.2f} ± {2 * se:.2f}" for mean, se in gains.values())
        lines.append(
            f"| `{name}` | {len(seeds)} | {cells} | {calls:.2f} | {'met' if met else 'not met'} |"
        )
    return lines


def _paired_mean(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]]) -> float:
    """Mean output PSNR of ``a`` minus ``b`` over the episodes both ran."""

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["image"], tuple(r["degradations"]), r["seed"])

    theirs = {key(r): r["metrics_output"]["psnr"] for r in b}
    diffs = [r["metrics_output"]["psnr"] - theirs[key(r)] for r in a if key(r) in theirs]
    return float(np.mean(diffs))


def bc_point() -> Point:
    """Issue 15: PPO fine-tuning over BC alone on `mio-a`, mean of 3 seeds, >= +0.3 dB."""
    gains = {}
    for label, (runs, clone_dir) in PPO_SETS.items():
        clone = _records(clone_dir / "mio-a__ppo-bc.jsonl")
        gains[label] = [
            _paired_mean(_records(runs / seed / "mio-a__ppo.jsonl"), clone) for seed in PPO_SEEDS
        ]
    measured = "; ".join(
        f"{label} {np.mean(g):+.2f} dB ({', '.join(f'{x:+.2f}' for x in g)})"
        for label, g in gains.items()
    )
    return Point(
        "PPO fine-tuning beats BC alone by >= 0.3 dB on `mio-a`, mean of 3 seeds",
        measured + " (the fine-tunes run `ppo`'s scene guard, the clone none)",
        all(np.mean(g) >= 0.3 for g in gains.values()),
        f"`{RESULTS}/ppo_perceived/{{bundled,heldout}}/ft*` against `ppo-bc`'s records",
    )


def _points_table(points: Sequence[Point]) -> list[str]:
    return [
        "| acceptance point | measured | verdict | record |",
        "|---|---|---|---|",
        *(p.row() for p in points),
    ]


def acceptance_markdown() -> str:
    """docs/acceptance.md."""
    limits, perception = _read(PERCEPTION_LIMITS), _read(PERCEPTION)
    rounds, independent = _read(ROUNDS), _independent_rounds()
    issue13 = [
        *perception_points(limits),
        *tirqa_points(perception),
        *restore_points(_read(RESTORE)),
        *native_restore_points(),
        *independent_points(),
        Point(
            "A corrupt or missing corpus file, a failed download, an empty corpus: a named "
            "error, never a half-written manifest",
            "tests/test_corpus.py (`test_failed_rebuild_leaves_previous_corpus`, "
            "`test_failed_download_midway_leaves_nothing`, `test_empty_corpus_refused`, "
            "`test_verify_reports_corrupt_and_missing`, ...)",
            True,
            "the default test tier",
        ),
    ]
    issue15 = [
        bc_point(),
        Point(
            "A run killed at any moment resumes from the last complete checkpoint; a rerun "
            "into an existing `--out` refuses; no duplicated steps in the curve",
            "tests/test_faults_ppo_kill.py, tests/test_faults_runs.py "
            "(`test_ppo_learning_curve_has_no_repeated_steps_after_resume`, ...)",
            True,
            "the default test tier",
        ),
    ]
    first, stop = rounds["rounds"]
    parts = [
        "<!-- generated by `python -m benchmarks.gen_docs` from the records -->",
        "# Where the issues' acceptance stands",
        "",
        "Each open issue's acceptance points against the committed records, computed from "
        "them by `benchmarks/acceptance.py` (nothing is typed by hand or measured anew: a "
        "remade record changes this page at the next `python -m benchmarks.gen_docs`). "
        "*Partly*: met by a recipe or on a set that is not what ships. The comparisons between "
        f"agents read rounds {first}-{stop - 1} of every suite on all nine test photos "
        f"(`{ROUNDS}`: `{rounds['command']}`), split into the five corpus photos that never "
        "ship and the four bundled ones; *above* / *below* / *undecided* by two standard "
        "errors over the photos (docs/heldout.md, rule ad61d0b). Rows and blocks marked *the "
        "independent set* read the 12 photos nothing was ever chosen on, evaluated once by "
        "a registered command (docs/independent.md).",
        "",
        "## Issue 13: agents that see",
        "",
        *_points_table(issue13),
        "",
        "Perception on the held-out crops of the `mio-*` combinations, at the shipped "
        'thresholds (docs/perception.md, "What the crops still show", says why each type '
        "stops where it does):",
        "",
        *perception_table(_with_independent(limits)),
        "",
        "The agents against the input and each other:",
        *checks_table(rounds, "13", independent),
        "",
        "## Issue 14: the VLM",
        "",
        *_points_table([sft_point()]),
        "",
        "GRPO against its SFT on `mio-a` (>= +0.3 dB on both photo sets, mean of 3 seeds, "
        "and >= 1.5 calls an episode for every seed), each rounds record of "
        f"`{RESULTS}/heldout_rounds/` (their commands are in the files; docs/agents.md, "
        '"GRPO from the perception-line SFT", says what each trained):',
        "",
        *grpo_rows(),
        "",
        "The shipped `vlm` against `oracle` and the other agents:",
        *checks_table(rounds, "14", independent),
        "",
        "## Issue 15: PPO",
        "",
        *_points_table(issue15),
        "",
        "The shipped `ppo` against `oracle`, `fixed` and `exhaustive` (and its tool executions "
        "on `mio-a`: "
        f"{_executions(rounds, 'ppo', 'mio-a'):.2f} an image, asked <= 3):",
        *checks_table(rounds, "15", independent),
        "",
    ]
    return "\n".join(parts)


def _executions(result: dict[str, Any], agent: str, suite: str) -> float:
    return float(
        np.mean([r["executions"] for r in result["episodes"][agent] if r["suite"] == suite])
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Print the page."""
    del argv
    print(acceptance_markdown())


if __name__ == "__main__":
    main()
