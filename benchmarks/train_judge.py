"""Fit the judge of darkness and haze (:mod:`agents.judge`) on the corpus' train photos.

Every episode of the five suites on the train photos (``--rounds`` rounds:
:func:`benchmarks.ab_test.round_episodes`) is read by the shipped perception; for each type
:mod:`agents.judge` probes, the prior plan runs with and without it and the PSNR it gains is
the target. The judge's features are plain image statistics, not perception's outputs, so the
photos perception was trained on do not flatter them (the first judge read perception's
outputs and had to be fitted on the out-of-fold readings of :mod:`benchmarks.perception_cv`'s
fold networks: ``--network fold``). A ridge regression per type is cross-validated over
``--folds`` folds of photos (fitted on three, deciding on the fourth) for each ``--lambdas``
value; the value whose decisions beat ``fixed``'s thresholds most is refitted on every row
and written to ``--weights``.

Usage::

    python -m benchmarks.train_judge   # 2 rounds of 44 photos: about 4 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from agents import judge
from agents.baselines import learned_tool
from benchmarks.perception_cv import add_fold_arguments, nested_sentence
from tir_env.errors import TIRError

RESULTS = Path("benchmarks/results/judge/train_cues.json")
#: ``--whole``'s report.
WHOLE_RESULTS = Path("benchmarks/results/judge/train_whole.json")


def collect(
    out: Path,
    variant: str,
    folds: int,
    source: str,
    types: Sequence[str] = judge.JUDGED,
    network: str = "shipped",
    rounds: int = 1,
    jobs: int = 1,
    floor: float = judge.FLOOR,
    whole: bool = False,
    clean: int = 0,
    learned: Sequence[str] = (),
    protocols: Sequence[str] | None = None,
) -> tuple[list[dict], list[int]]:
    """One row per (episode, probed type), and the number of episodes of each fold.

    ``network="shipped"``: the shipped perception chooses what to probe on every fold's photos
    (``rounds`` rounds of each suite, :func:`benchmarks.ab_test.round_episodes`; ``jobs``
    folds at once); ``"fold"``: each fold's photos are read by the fold network of ``variant``
    that never saw them (one round; what the first judge, which read perception's outputs,
    needed). ``floor``: the share of its threshold a type's reading needs to be probed.
    ``whole``: whole photos (each suite ``@full``), judged on their proxies. ``clean``: that
    many clean views of each photo too (a whole photo has one), where any darkness or haze
    judged in is a false alarm (rows marked ``clean``). ``learned``: tasks whose learned tool
    the probed plans call (``fixed.learned``; the judge is fitted on that plan's gains).
    ``protocols``: the suites or training protocols whose episodes are read (``None``: the
    five evaluation suites, as the shipped judge was fitted; ``single mio-a train-d3`` keeps
    the evaluation suites' other combinations unseen, docs/protocols.md, section 5).
    """
    if network == "fold":
        from benchmarks import perception_cv as cv

        _one_thread()
        if learned:
            raise ValueError("--network fold probes the classical plan only; drop --learned")
        pairs = [(k, _rows(k, runner, types, floor)) for k, runner in cv.out_of_fold_runners(
            source, out, variant, folds)]  # fmt: skip
    else:
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [
                pool.submit(
                    _shipped_fold,
                    source,
                    k,
                    folds,
                    rounds,
                    tuple(types),
                    floor,
                    whole,
                    clean,
                    tuple(learned),
                    None if protocols is None else tuple(protocols),
                )
                for k in range(folds)
            ]
            pairs = [(k, f.result()) for k, f in enumerate(futures)]
    rows = [r for _, (fold_rows, _) in pairs for r in fold_rows]
    return rows, [n for _, (_, n) in pairs]


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _shipped_fold(
    source: str,
    k: int,
    folds: int,
    rounds: int,
    types: Sequence[str],
    floor: float,
    whole: bool = False,
    clean: int = 0,
    learned: Sequence[str] = (),
    protocols: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Fold ``k``'s rows read by the shipped perception (in a worker process)."""
    from benchmarks.ab_test import round_episodes
    from benchmarks.perception_cv import CLEAN_ENV_SUITE, SUITES, FixedRunner, clean_episodes

    _one_thread()
    images = f"{source}[{k}/{folds}]"
    names = SUITES if protocols is None else tuple(protocols)
    suites = [f"{s}@full" for s in names] if whole else names
    episodes = round_episodes(images, suites, 0, rounds)
    episodes += clean_episodes(images, clean, suites[0] if whole else CLEAN_ENV_SUITE)
    runner = FixedRunner(episodes, images, learned)
    return _rows(k, runner, types, floor)


def _rows(
    k: int, runner: Any, types: Sequence[str], floor: float = judge.FLOOR
) -> tuple[list[dict[str, Any]], int]:
    """Every probe of a runner's episodes as a row of fold ``k``, and its episode count."""
    from benchmarks.perception_cv import CleanEpisode

    rows: list[dict[str, Any]] = []
    for i in range(len(runner.episodes)):
        env = runner.reset(i)
        is_clean = isinstance(runner.episodes[i][1], CleanEpisode)
        present, probed, _ = judge.probes(env, runner.params, types, floor, runner.learned)
        truth = dict(zip(runner.types, runner.truth(i), strict=True))
        for p in probed:
            rows.append(
                {
                    "fold": k,
                    "episode": i,
                    "type": p.type,
                    "ratio": p.ratio,
                    "seen": p.type in present,
                    # what else perception saw: a photo it reads as clean is judged alone
                    "others": sum(t != p.type for t in present),
                    "true": truth[p.type],
                    "clean": is_clean,
                    "gain": _psnr(env, p.with_type) - _psnr(env, p.without_type),
                    "x": p.x.tolist(),
                }
            )
    return rows, len(runner.episodes)


def _psnr(env: Any, image: Any) -> float:
    """PSNR of a probe's output: against the clean photo, downscaled to a proxy's size."""
    if not judge.is_whole(env):
        return float(env.score(image, ("psnr",))["psnr"])
    from tir_env.images import resize, u8_to_batch
    from tir_env.metrics.scoring import score_images

    clean = resize(u8_to_batch(env.clean_image()), tuple(image.shape[-2:]))
    return float(score_images([image], [clean], ("psnr",), "cpu")[0]["psnr"])


def _arrays(rows: Sequence[dict[str, Any]], clean_weight: float = 1.0) -> dict[str, np.ndarray]:
    clean = np.array([r.get("clean", False) for r in rows], dtype=bool)
    return {
        "clean": clean,
        # a clean row stands for the clean photos a user brings, more than the suites hold
        "weight": np.where(clean, clean_weight, 1.0),
        "x": np.array([r["x"] for r in rows], dtype=float).reshape(len(rows), -1),
        "gain": np.array([r["gain"] for r in rows]),
        "seen": np.array([r["seen"] for r in rows], dtype=bool),
        # perception saw no other type (rows made before "others" was recorded: unknown)
        "no_others": np.array([r.get("others", 1) == 0 for r in rows], dtype=bool),
        "true": np.array([r["true"] for r in rows], dtype=bool),
        "fold": np.array([r["fold"] for r in rows]),
        "type": np.array([r["type"] for r in rows]),
    }


def _decide(
    a: dict[str, np.ndarray],
    train: np.ndarray,
    test: np.ndarray,
    lam: float,
    margin: float = 0.0,
    alone: bool = True,
) -> np.ndarray:
    """The judge's decisions on the ``test`` rows, one model per type fitted on ``train``.

    With a ``margin`` the judge overrules perception only when sure, as
    :func:`agents.judge.judged_types` decides: an unseen type comes in above ``margin``, a
    seen one goes out below ``-margin``. ``alone=False``: an unseen type never comes in
    where perception saw no other type.
    """
    decided = a["seen"] & test  # a type with nothing to fit on keeps perception's call
    for t in sorted(set(a["type"].tolist())):
        fit_on, decide_on = train & (a["type"] == t), test & (a["type"] == t)
        if (a["weight"][fit_on] > 0).sum() < 2 or not decide_on.any():
            continue
        model = judge.fit(a["x"][fit_on], a["gain"][fit_on], lam, a["weight"][fit_on])
        predicted = np.array([model.gain(x) for x in a["x"][decide_on]])
        decided[decide_on] = predicted > np.where(a["seen"][decide_on], -margin, margin)
    if not alone:
        decided &= a["seen"] | ~a["no_others"]
    return decided


def _over_fixed(a: dict[str, np.ndarray], decided: np.ndarray, rows: np.ndarray) -> float:
    """Summed PSNR change of ``decided`` over ``fixed``'s thresholds on ``rows``."""
    return float(
        (np.where(decided, a["gain"], 0.0) - np.where(a["seen"], a["gain"], 0.0))[rows].sum()
    )


#: A judge's call that costs more than this (dB) against ``fixed``'s is counted as a large loss.
LARGE_LOSS_DB = 5.0


def cross_validate(
    rows: Sequence[dict[str, Any]],
    episodes: Sequence[int],
    lam: float,
    clean_weight: float = 1.0,
    margin: float = 0.0,
    alone: bool = True,
) -> dict:
    """The judge's decisions on each fold, fitted on the others: dB per episode over ``fixed``.

    ``fixed`` plans a probed type when its reading reaches the threshold (``seen``); the judge
    when its model predicts a gain (beyond ``margin`` where it disagrees with perception; with
    ``alone=False`` never adding a type where perception saw no other, :func:`_decide`). Also
    the ceiling: planning exactly the types truly there, the calls that differ from
    ``fixed``'s and those that cost more than :data:`LARGE_LOSS_DB`, and, where there are
    clean rows (fitted with ``clean_weight``), what the judge did on them.
    """
    if not alone and not all("others" in r for r in rows):
        raise ValueError("alone=False needs rows that record what else perception saw (others)")
    a = _arrays(rows, clean_weight)
    decided = np.zeros(len(rows), dtype=bool)
    for k in sorted(set(a["fold"].tolist())):
        test = a["fold"] == k
        decided |= _decide(a, ~test, test, lam, margin, alone)
    total = sum(episodes)
    change = np.where(decided, a["gain"], 0.0) - np.where(a["seen"], a["gain"], 0.0)
    by_type = {}
    for t in sorted(set(a["type"].tolist())):
        s = a["type"] == t
        by_type[t] = {
            "probes": int(s.sum()),
            "truly_there": float(a["true"][s].mean()),
            "judge": _over_fixed(a, decided, s) / total,
            "ceiling": _over_fixed(a, a["true"], s) / total,
        }
    every = np.ones(len(rows), dtype=bool)
    suite = ~a["clean"]
    out = {
        "lambda": lam,
        "margin": margin,
        "alone": alone,
        "judge": _over_fixed(a, decided, every) / total,
        "overruled": int((decided != a["seen"])[suite].sum()),
        "large_losses": int((change < -LARGE_LOSS_DB)[suite].sum()),
        "large_gains": int((change > LARGE_LOSS_DB)[suite].sum()),
        "ceiling": _over_fixed(a, a["true"], every) / total,
        "by_type": by_type,
    }
    if a["clean"].any():
        out["clean"] = {
            "probes": int(a["clean"].sum()),
            "judged_in": int((decided & a["clean"]).sum()),
            "perceived": int((a["seen"] & a["clean"]).sum()),
            "db_over_fixed": _over_fixed(a, decided, a["clean"]),
        }
    return out


def nested_cross_validate(
    rows: Sequence[dict[str, Any]],
    episodes: Sequence[int],
    lambdas: Sequence[float],
    clean_weight: float = 1.0,
) -> dict[str, Any]:
    """Lambda chosen without the held-out fold too: an estimate free of the choice's bias.

    For each fold, lambda is chosen by the same cross-validation over the other folds alone,
    then the judge fitted on them decides on the held-out fold.
    """
    a = _arrays(rows, clean_weight)
    folds = sorted(set(a["fold"].tolist()))
    per_fold = []
    for k in folds:
        others = [j for j in folds if j != k]

        def inner(lam: float, k: int = k, others: list[int] = others) -> float:
            return sum(
                _over_fixed(a, _decide(a, (a["fold"] != k) & (a["fold"] != j), a["fold"] == j, lam),
                            a["fold"] == j)
                for j in others
            )  # fmt: skip

        lam = max(lambdas, key=inner)
        test = a["fold"] == k
        gain = _over_fixed(a, _decide(a, ~test, test, lam), test)
        per_fold.append({"fold": k, "lambda": lam, "per_episode": gain / episodes[k]})
    total = sum(f["per_episode"] * episodes[f["fold"]] for f in per_fold)
    return {"per_fold": per_fold, "per_episode": total / sum(episodes)}


def fit_all(
    rows: Sequence[dict[str, Any]], lam: float, clean_weight: float = 1.0
) -> dict[str, judge.TypeModel]:
    """One model per type on every row."""
    a = _arrays(rows, clean_weight)
    out = {}
    for t in sorted(set(a["type"].tolist())):
        s = a["type"] == t
        out[t] = judge.fit(a["x"][s], a["gain"][s], lam, a["weight"][s])
    return out


def margins_markdown(paths: Sequence[Path]) -> list[str]:
    """The margins table alone of a committed training report (``--margins``)."""
    return _margin_table(json.loads(Path(paths[0]).read_text()))[1:]


def markdown_table(paths: Sequence[Path]) -> list[str]:
    """The cross-validation table of a committed training report."""
    report = json.loads(Path(paths[0]).read_text())
    types = list(report["cross_validation"][0]["by_type"])
    lines = [
        "| ridge lambda | judge vs `fixed`, dB per episode | " + " | ".join(types) + " |",
        "|---:|---:|" + "---:|" * len(types),
    ]
    for cv in report["cross_validation"]:
        mark = " (chosen)" if cv["lambda"] == report["lambda"] else ""
        per_type = " | ".join(f"{cv['by_type'][t]['judge']:+.3f}" for t in types)
        lines.append(f"| {cv['lambda']:g}{mark} | {cv['judge']:+.3f} | {per_type} |")
    nested = report.get("nested")
    if nested:
        lead = "Nested (lambda chosen without the held-out fold; "
        lines += ["", nested_sentence(lead, nested, lambda f: f"lambda {f['lambda']:g}")]
    first = report["cross_validation"][0]
    probes = ", ".join(f"{t}: {v['probes']} probes" for t, v in first["by_type"].items())
    lines += [
        "",
        f"Ceiling (planning exactly the probed types truly there): {first['ceiling']:+.3f} dB "
        f"per episode over `fixed`, over {report['episodes']} episodes ({probes}).",
    ]
    return lines + _margin_table(report)


def _margin_table(report: Mapping[str, Any]) -> list[str]:
    """The margins' cross-validation, where the report tried more than one or the guard."""
    rows = [*report.get("margins", []), *report.get("margins_not_alone", [])]
    if len(rows) < 2:
        return []
    clean = "clean" in rows[0]
    lines = [
        "",
        f"Margins at lambda {report['lambda']:g}: the judge overrules perception only when its "
        "predicted gain clears the margin; *alone*: whether it may add a type to a photo where "
        "perception saw no other (calls counted over the suites' probes; a large loss or gain: "
        f"the call changes the episode by more than {LARGE_LOSS_DB:g} dB against `fixed`'s).",
        "",
        "| margin (dB) | alone | judge vs `fixed`, dB per episode | calls overruling perception "
        "| large gains | large losses |" + (" clean-view probes judged in |" if clean else ""),
        "|---:|---|---:|---:|---:|---:|" + ("---:|" if clean else ""),
    ]
    for cv in rows:
        alone = cv.get("alone", True)
        mark = " (chosen)" if cv["margin"] == report["margin"] and alone else ""
        line = (
            f"| {cv['margin']:g}{mark} | {'yes' if alone else 'no'} | {cv['judge']:+.3f} | "
            f"{cv['overruled']} | {cv['large_gains']} | {cv['large_losses']} |"
        )
        if clean:
            line += f" {cv['clean']['judged_in']} of {cv['clean']['probes']} |"
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect, cross-validate, fit and write the judge and its report."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_fold_arguments(p)
    p.add_argument("--lambdas", type=float, nargs="+", default=[1.0, 10.0, 100.0, 1000.0])
    p.add_argument(
        "--types", nargs="+", default=list(judge.JUDGED), help="degradation types to judge"
    )
    p.add_argument(
        "--network",
        choices=("shipped", "fold"),
        default="shipped",
        help="who chooses what to probe: the shipped perception, or each fold's network",
    )
    p.add_argument("--rounds", type=int, default=2, help="with --network shipped: suite rounds")
    p.add_argument("--jobs", type=int, default=2, help="with --network shipped: folds at once")
    p.add_argument(
        "--floor",
        type=float,
        default=judge.FLOOR,
        help="probe a type read at this share of its threshold or more (saved with the weights)",
    )
    p.add_argument(
        "--whole",
        action="store_true",
        help="the whole-photo judge: each suite @full, probes on proxies (default files: "
        f"{WHOLE_RESULTS}, {judge.WHOLE_WEIGHTS_FILE.name})",
    )
    p.add_argument(
        "--clean", type=int, default=0, help="clean views per photo too (whole photos: 1 at most)"
    )
    p.add_argument(
        "--clean-weight",
        type=float,
        default=1.0,
        help="weight of a clean view's rows in the fit (they stand for users' clean photos; "
        "0: judged and reported, not fitted on; their losses still count in choosing lambda "
        "and the margin)",
    )
    p.add_argument(
        "--margins",
        type=float,
        nargs="+",
        default=[0.0],
        help="margins (dB) to cross-validate at the chosen lambda; the best is saved with the "
        "weights (the judge overrules perception only beyond it)",
    )
    p.add_argument(
        "--learned",
        default="",
        help="TASK[,TASK]: the probed plans call these tasks' learned tools, as fixed.learned "
        "(saved with the weights: the search agents' probes then call them too)",
    )
    p.add_argument(
        "--protocols",
        nargs="+",
        default=None,
        help="suites or training protocols read (default: the five evaluation suites, as the "
        "shipped judge; single mio-a train-d3 keeps the unseen combinations unseen)",
    )
    p.add_argument(
        "--json", type=Path, default=None, help=f"report (default {RESULTS}; never overwritten)"
    )
    p.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="default: agents/judge_weights.json (never overwritten: delete it to replace it)",
    )
    args = p.parse_args(argv)
    if args.json is None:
        args.json = WHOLE_RESULTS if args.whole else RESULTS
    if args.weights is None:
        args.weights = judge.WHOLE_WEIGHTS_FILE if args.whole else judge.WEIGHTS_FILE
    if args.whole and args.network != "shipped":
        p.error("--whole reads with the shipped perception (--network shipped)")
    if args.clean < 0 or not (np.isfinite(args.clean_weight) and args.clean_weight >= 0):
        p.error("--clean wants a count >= 0, --clean-weight a weight >= 0 (0: judged, not fitted)")
    if not 0 < args.floor <= 1:
        p.error(f"--floor {args.floor}: want a share of the threshold in (0, 1]")
    if not all(np.isfinite(m) and m >= 0 for m in args.margins):
        p.error(f"--margins {args.margins}: want finite margins >= 0 (dB)")
    learned = tuple(t for t in args.learned.split(",") if t)
    if learned and args.network != "shipped":
        p.error("--learned probes with the shipped perception (--network shipped)")
    try:
        for task in learned:
            learned_tool(task)
    except TIRError as exc:
        p.error(f"--learned {args.learned}: {exc}")
    from tir_env.files import refuse_existing

    # the defaults are the shipped judge and its committed report: replacing them is a choice
    refuse_existing(p, args.json, args.weights)
    rows, episodes = collect(
        args.out,
        args.variant,
        args.folds,
        args.source,
        args.types,
        args.network,
        args.rounds,
        args.jobs,
        args.floor,
        args.whole,
        args.clean,
        learned,
        args.protocols,
    )
    cvs = [cross_validate(rows, episodes, lam, args.clean_weight) for lam in args.lambdas]
    best = max(cvs, key=lambda c: c["judge"])
    # the margin is chosen at the chosen lambda, by the same cross-validation
    by_margin = [
        cross_validate(rows, episodes, best["lambda"], args.clean_weight, m)
        for m in sorted(set(args.margins))
    ]
    margin = max(by_margin, key=lambda c: c["judge"])["margin"]
    # the same margins where the judge never adds a type to a photo perception reads as clean
    not_alone = [
        cross_validate(rows, episodes, best["lambda"], args.clean_weight, m, alone=False)
        for m in sorted(set(args.margins))
    ]
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m benchmarks.train_judge", *map(shlex.quote, given)])
    report = {
        "command": command,
        "episodes": sum(episodes),
        "lambda": best["lambda"],
        "margin": margin,
        "cross_validation": cvs,
        "margins": by_margin,
        "margins_not_alone": not_alone,
        "nested": nested_cross_validate(rows, episodes, args.lambdas, args.clean_weight),
        # the decisions' inputs are large (52 numbers a row) and remade by the command
        "rows": [{k: v for k, v in r.items() if k != "x"} for r in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report) + "\n")
    judge.save(
        args.weights,
        fit_all(rows, best["lambda"], args.clean_weight),
        {
            "command": command,
            "lambda": best["lambda"],
            "floor": args.floor,
            "margin": margin,
            "learned": list(learned),
        },
    )
    print("\n".join(markdown_table([args.json])))
    return report


if __name__ == "__main__":
    main()
