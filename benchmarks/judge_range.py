"""Does the judge extrapolate? Its calls on val photos, inside and outside its fitted range.

The judge (:mod:`agents.judge`) is a ridge regression on plain image statistics. On held-out
whole photos it predicted that brightening would gain 21 dB on a bright photo of a bird by a
tree (``lomiri/Kleiber``, a fifth of its pixels burnt out: 25 standard deviations above the
photos it was fitted on) and planned a gamma correction that cost 9 dB. A regression is only
trusted where it was fitted; this study measures what each way of staying there does:

* ``abstain``: where a probe's standardised features reach beyond ``z`` (any of them, in
  standard deviations of the fitted rows), the judge keeps perception's call;
* ``clip``: the standardised features are clipped to ``[-z, z]`` before the prediction.

For every val episode (whole photos ``mio-a/b/c@full`` with the whole-photo judge, one clean
view of each photo; 128 px crops of ``mio-a/b/c`` with the crop judge), every probe is
collected as :mod:`benchmarks.train_judge` collects it (the prior plan with and without the
type, on the proxy for a whole photo), and each variant's calls are scored as train_judge
scores them: the true PSNR the decided set gains over perception's thresholds, per episode.

Usage::

    python -m benchmarks.judge_range   # about 15 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from agents import judge
from tir_env.files import refuse_existing, write_text_atomic

RESULTS = Path("benchmarks/results/judge/range_val.json")
#: The bounds tried (standard deviations of the fitted rows); ``inf`` is the shipped judge.
BOUNDS = (3.0, 4.0, 6.0, 8.0, 12.0, 16.0, math.inf)
MODES = ("abstain", "clip")
SUITES = ("mio-a", "mio-b", "mio-c")


def collect(images: str, whole: bool, first: int, stop: int, clean: int) -> dict[str, Any]:
    """The probes of one kind of episode (a worker's share): rows as train_judge writes them."""
    from benchmarks.ab_test import round_episodes
    from benchmarks.perception_cv import CLEAN_ENV_SUITE, FixedRunner, clean_episodes
    from benchmarks.train_judge import _one_thread, _rows

    _one_thread()
    suites = [f"{s}@full" for s in SUITES] if whole else list(SUITES)
    episodes = round_episodes(images, suites, first, stop)
    episodes += clean_episodes(images, clean, suites[0] if whole else CLEAN_ENV_SUITE)
    runner = FixedRunner(episodes, images)
    path = judge.WHOLE_WEIGHTS_FILE if whole else judge.WEIGHTS_FILE
    rows, count = _rows(0, runner, tuple(judge.load(path)), judge.load_floor(path))
    for row in rows:
        row.pop("fold", None)  # one kind of episode, no folds
    # each episode's photo, so a comparison of two judges can take its error over photos
    photos = [str(getattr(spec, "image", None) or spec.image_id) for _, spec in episodes]
    return {"rows": rows, "episodes": count, "photos": photos}


def predict(model: judge.TypeModel, x: np.ndarray, mode: str, bound: float) -> float | None:
    """``model``'s gain for ``x`` under ``mode`` at ``bound`` (``None``: the judge abstains)."""
    if mode == "abstain":
        return None if model.reach(x) > bound else model.gain(x)
    z = np.clip(model.standardised(x), -bound, bound)
    return float(z @ model.weights + model.bias)


def decide(
    rows: Sequence[Mapping[str, Any]],
    models: Mapping[str, judge.TypeModel],
    mode: str,
    bound: float,
    margin: float,
) -> np.ndarray:
    """Each probe's call (type planned or not), as :func:`agents.judge.judged_types` calls it."""
    calls = []
    for r in rows:
        gain = predict(models[r["type"]], np.asarray(r["x"], dtype=float), mode, bound)
        calls.append(r["seen"] if gain is None else gain > (-margin if r["seen"] else margin))
    return np.array(calls, dtype=bool)


def change_over_perception(gain: np.ndarray, seen: np.ndarray, calls: np.ndarray) -> np.ndarray:
    """Each probe's true PSNR change (dB) from ``calls`` against perception's calls (``seen``)."""
    return np.where(calls, gain, 0.0) - np.where(seen, gain, 0.0)


def score(rows: Sequence[Mapping[str, Any]], calls: np.ndarray, episodes: int) -> dict[str, Any]:
    """The PSNR the calls gain over perception's, per episode, and how they differ from it."""
    gain = np.array([r["gain"] for r in rows])
    seen = np.array([r["seen"] for r in rows], dtype=bool)
    clean = np.array([r.get("clean", False) for r in rows], dtype=bool)
    change = change_over_perception(gain, seen, calls)
    return {
        "per_episode": float(change.sum() / max(1, episodes)),
        "overruled": int((calls != seen).sum()),
        "large_losses": int((change < -5.0).sum()),
        "large_gains": int((change > 5.0).sum()),
        "clean_false_alarms": int((calls & clean).sum()),
    }


def evaluate(kind: Mapping[str, Any], whole: bool) -> list[dict[str, Any]]:
    """Every variant's score on one kind's rows (the shipped judge's weights and margin)."""
    path = judge.WHOLE_WEIGHTS_FILE if whole else judge.WEIGHTS_FILE
    models, margin = judge.load(path), judge.load_margin(path)
    rows = kind["rows"]
    out = []
    for mode in MODES:
        for bound in BOUNDS:
            if mode == "clip" and math.isinf(bound):
                continue  # the same as abstaining at no bound: the shipped judge
            calls = decide(rows, models, mode, bound, margin)
            out.append({"mode": mode, "bound": bound, **score(rows, calls, kind["episodes"])})
    return out


def markdown(result: Mapping[str, Any]) -> list[str]:
    """A table per kind: each variant's PSNR over perception's calls and its large moves."""
    lines = [
        f"`{result['command'].strip()}` on `{result['images']}`; PSNR (dB per episode) the judge's "
        "calls gain over perception's thresholds, scored on the probes' true outputs. "
        "`abstain`: beyond `z` standard deviations of the fitted rows in any feature the judge "
        "keeps perception's call; `clip`: features clipped to `z`; `z = inf`: the shipped judge.",
        "",
    ]
    for kind in ("whole", "crops"):
        k = result[kind]
        lines += [
            f"**{kind}** ({k['episodes']} episodes, {len(k['rows'])} probes)",
            "",
            "| mode | z | dB per episode | overruled | large gains | large losses "
            "| clean false alarms |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for v in k["variants"]:
            lines.append(
                f"| {v['mode']} | {v['bound']:g} | {v['per_episode']:+.3f} | {v['overruled']} "
                f"| {v['large_gains']} | {v['large_losses']} | {v['clean_false_alarms']} |"
            )
        lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Collect the val probes (whole and crops at once), score every variant, write the report."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--images", default="corpus:val@3")
    p.add_argument("--whole-rounds", type=int, nargs=2, default=[2, 6])
    p.add_argument("--crop-rounds", type=int, nargs=2, default=[16, 24])
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    refuse_existing(p, args.json)
    with ProcessPoolExecutor(max_workers=2) as pool:
        first, stop = args.whole_rounds
        whole = pool.submit(collect, args.images, True, first, stop, 1)
        first, stop = args.crop_rounds
        crops = pool.submit(collect, args.images, False, first, stop, 1)
        kinds = {"whole": whole.result(), "crops": crops.result()}
    result: dict[str, Any] = {
        "command": ("python -m benchmarks.judge_range " + shlex.join(argv or sys.argv[1:])).strip(),
        "images": args.images,
    }
    for name, kind in kinds.items():
        result[name] = {**kind, "variants": evaluate(kind, name == "whole")}
    return write_report(args.json, result, markdown)


def write_report(
    path: Path, result: dict[str, Any], render: Callable[[dict[str, Any]], list[str]]
) -> dict[str, Any]:
    """Write a study's ``result`` to ``path`` (JSON, atomically), print its tables, return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(result, indent=1) + "\n")
    print("\n".join(render(result)))
    return result


if __name__ == "__main__":
    main()
