"""A nonlinear judge? Boosted trees against the ridge, fitted on train photos, scored on val.

Planning darkness and haze exactly when they are there would gain 2.2 dB an episode on 128 px
val crops and 3.1 dB on whole val photos over perception's thresholds; the shipped ridge judge
gains 0.4 and 0.35 of that (``benchmarks.judge_range``). Its features hold thresholds a linear
fit cannot draw (a photo with burnt-out highlights was not darkened; a brightened output that
burns out was not dark), which trees can. This study fits, on the corpus' release-3 train
photos, a ridge per type (lambda chosen by 4-fold photo cross-validation, as
``benchmarks.train_judge`` chooses it) and boosted regression trees per type (size chosen by
the same cross-validation), and scores each on the val probes of ``benchmarks.judge_range``
(``benchmarks/results/judge/range_val.json``: other photos, the same shipped perception), with
the shipped judge for reference. Every judge abstains beyond :data:`agents.judge.RANGE_Z`.

Usage::

    python -m benchmarks.judge_trees   # collects the train probes once (about 35 min on 2 cores)
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents import judge
from benchmarks.judge_range import RESULTS as VAL_RESULTS
from benchmarks.judge_range import change_over_perception, write_report
from tir_env.files import refuse_existing

RESULTS = Path("benchmarks/results/judge/trees/report.json")
#: Probes of the train photos, per kind (gzip JSON; remade by the command when missing).
ROWS = Path("benchmarks/results/judge/trees")
#: Rounds of the suites collected per kind (whole photos cost 5x as much a probe).
ROUNDS = {"crops": 2, "whole": 1}
LAMBDAS = (0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1000.0)
#: (trees, leaves per tree) tried for the boosted judge.
TREE_SIZES = ((100, 4), (100, 8), (300, 4), (300, 8))
FOLDS = 4

Predictor = Callable[[np.ndarray], np.ndarray]


def train_rows(kind: str, source: str, jobs: int, folder: Path = ROWS) -> dict[str, Any]:
    """The probes of ``source``'s episodes of one kind (cached in ``folder``).

    They are made with the perception in force (``$TIR_LEARNED_WEIGHTS``): probes for another
    perception network belong in another ``folder``.
    """
    from benchmarks import train_judge

    path = folder / f"{kind}_rows.json.gz"
    if path.is_file():
        return json.loads(gzip.decompress(path.read_bytes()))
    weights = judge.WHOLE_WEIGHTS_FILE if kind == "whole" else judge.WEIGHTS_FILE
    rows, episodes = train_judge.collect(
        Path("runs"),
        "",
        FOLDS,
        source,
        judge.JUDGED,
        "shipped",
        ROUNDS[kind],
        jobs,
        judge.load_floor(weights),
        kind == "whole",
    )
    out = {"source": source, "rounds": ROUNDS[kind], "rows": rows, "episodes": episodes}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(json.dumps(out).encode()))
    return out


def ridge(x: np.ndarray, gain: np.ndarray, lam: float) -> Predictor:
    """A ridge fit as the shipped judge is fitted."""
    model = judge.fit(x, gain, lam)
    return lambda z: ((z - model.mean) / model.scale) @ model.weights + model.bias


def trees(x: np.ndarray, gain: np.ndarray, size: tuple[int, int]) -> Predictor:
    """Boosted regression trees (squared loss, shrinkage 0.05, 20 rows a leaf at least)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(
        max_iter=size[0],
        max_leaf_nodes=size[1],
        learning_rate=0.05,
        min_samples_leaf=20,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    ).fit(x, gain)
    return model.predict


def arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The columns of ``rows`` a judge is fitted and scored on."""
    return {
        "x": np.array([r["x"] for r in rows], dtype=float).reshape(len(rows), -1),
        "gain": np.array([r["gain"] for r in rows], dtype=float),
        "seen": np.array([r["seen"] for r in rows], dtype=bool),
        "type": np.array([r["type"] for r in rows]),
        "fold": np.array([r.get("fold", 0) for r in rows]),
    }


def calls(
    fitted: Mapping[str, Predictor], reach: Mapping[str, judge.TypeModel], a: Mapping
) -> np.ndarray:
    """Each probe's call: the fitted judge's, or perception's beyond :data:`judge.RANGE_Z`."""
    out = a["seen"].copy()
    for t, predict in fitted.items():
        s = a["type"] == t
        if not s.any():
            continue
        inside = np.array([reach[t].reach(x) <= judge.RANGE_Z for x in a["x"][s]])
        out[s] = np.where(inside, predict(a["x"][s]) > 0, a["seen"][s])
    return out


def over_perception(a: Mapping, decided: np.ndarray, episodes: int) -> float:
    """PSNR (dB) per episode the calls gain over perception's calls (true probe outputs)."""
    change = change_over_perception(a["gain"], a["seen"], decided)
    return float(change.sum() / max(1, episodes))


def fit_types(a: Mapping, rows: np.ndarray, make: Callable[..., Predictor], arg: Any) -> tuple:
    """One predictor and one range model (for the reach) per type, on ``rows``."""
    fitted, reach = {}, {}
    for t in sorted(set(a["type"].tolist())):
        s = rows & (a["type"] == t)
        fitted[t] = make(a["x"][s], a["gain"][s], arg)
        reach[t] = judge.fit(a["x"][s], a["gain"][s], 1.0)  # its mean and scale
    return fitted, reach


def cross_validate(a: Mapping, episodes: int, make: Callable[..., Predictor], arg: Any) -> float:
    """PSNR (dB) per episode over perception, each photo fold decided by a fit on the others."""
    decided = np.zeros(len(a["gain"]), dtype=bool)
    for k in sorted(set(a["fold"].tolist())):
        test = a["fold"] == k
        fitted, reach = fit_types(a, ~test, make, arg)
        sub = {key: value[test] for key, value in a.items()}
        decided[test] = calls(fitted, reach, sub)
    return over_perception(a, decided, episodes)


def study(kind: str, train: Mapping[str, Any], val: Mapping[str, Any]) -> dict[str, Any]:
    """Choose each family's setting on the train folds, then score every judge on val."""
    a, v = arrays(train["rows"]), arrays(val["rows"])
    n_train, n_val = sum(train["episodes"]), val["episodes"]
    every = np.ones(len(a["gain"]), dtype=bool)
    out: dict[str, Any] = {"train_episodes": n_train, "val_episodes": n_val, "families": {}}
    for family, make, grid in (("ridge", ridge, LAMBDAS), ("trees", trees, TREE_SIZES)):
        cv = {str(arg): cross_validate(a, n_train, make, arg) for arg in grid}
        best = max(grid, key=lambda arg: cv[str(arg)])
        fitted, reach = fit_types(a, every, make, best)
        out["families"][family] = {
            "cross_validation": cv,
            "chosen": str(best),
            "val": over_perception(v, calls(fitted, reach, v), n_val),
        }
    path = judge.WHOLE_WEIGHTS_FILE if kind == "whole" else judge.WEIGHTS_FILE
    models = judge.load(path)
    shipped = {t: _shipped(m) for t, m in models.items()}
    out["families"]["shipped"] = {"val": over_perception(v, calls(shipped, models, v), n_val)}
    out["ceiling"] = over_perception(v, v["gain"] > 0, n_val)
    return out


def _shipped(model: judge.TypeModel) -> Predictor:
    return lambda x: np.array([model.gain(row) for row in x])


def markdown(result: Mapping[str, Any]) -> list[str]:
    """One table: each judge's dB per episode over perception's calls, on val, per kind."""
    lines = [
        "| kind | judge | chosen on train folds | train folds | val |",
        "|---|---|---|---:|---:|",
    ]
    for kind in ("crops", "whole"):
        if kind not in result:  # --kinds left it out
            continue
        r = result[kind]
        for name, f in r["families"].items():
            cv = f"{f['cross_validation'][f['chosen']]:+.3f}" if "chosen" in f else "-"
            shown = "shipped when run" if name == "shipped" else name
            lines.append(f"| {kind} | {shown} | {f.get('chosen', '-')} | {cv} | {f['val']:+.3f} |")
        lines.append(f"| {kind} | ceiling (truth) | - | - | {r['ceiling']:+.3f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect (or read) the train probes, run the study, write the report."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--source", default="corpus:train@3")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument(
        "--rows",
        type=Path,
        default=ROWS,
        help="folder of the cached train probes (another perception network: another folder)",
    )
    p.add_argument("--kinds", nargs="+", choices=("crops", "whole"), default=["crops", "whole"])
    p.add_argument(
        "--save-ridge",
        nargs=2,
        metavar=("KIND", "PATH"),
        help="also write the ridge refit of KIND (crops or whole) as judge weights to PATH",
    )
    args = p.parse_args(argv)
    refuse_existing(p, args.json, Path(args.save_ridge[1]) if args.save_ridge else None)
    val = json.loads(VAL_RESULTS.read_text())
    result: dict[str, Any] = {
        "command": ("python -m benchmarks.judge_trees " + shlex.join(argv or sys.argv[1:])).strip()
    }
    if args.save_ridge and args.save_ridge[0] not in args.kinds:
        p.error(f"--save-ridge {args.save_ridge[0]}: add {args.save_ridge[0]} to --kinds")
    rows = {kind: train_rows(kind, args.source, args.jobs, args.rows) for kind in args.kinds}
    for kind in args.kinds:
        result[kind] = study(kind, rows[kind], val[kind])
    if args.save_ridge:
        kind, path = args.save_ridge
        lam = float(result[kind]["families"]["ridge"]["chosen"])
        save_ridge(Path(path), kind, rows[kind], lam, result)
    return write_report(args.json, result, markdown)


def save_ridge(
    path: Path, kind: str, train: Mapping[str, Any], lam: float, result: Mapping[str, Any]
) -> None:
    """Write the ridge refit of ``kind`` on every train probe as judge weights (margin 0).

    Raises:
        FileExistsError: ``path`` exists (weights are never overwritten in place).
    """
    from benchmarks.train_judge import fit_all

    if path.exists():
        raise FileExistsError(f"{path} exists; remove it or choose another path")
    weights = judge.WHOLE_WEIGHTS_FILE if kind == "whole" else judge.WEIGHTS_FILE
    meta = {
        "command": f"{result['command']} (ridge refit of {kind})",
        "lambda": lam,
        "floor": judge.load_floor(weights),
        "margin": 0.0,
        "source": train["source"],
        "rounds": train["rounds"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    judge.save(path, fit_all(train["rows"], lam), meta)


if __name__ == "__main__":
    main()
