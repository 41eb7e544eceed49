r"""Fit ``ppo``'s brightening veto (:mod:`agents.ppo.bright_veto`) on the corpus' train photos.

1. The shipped ``ppo`` with its veto off (``--agent ppo:bright_veto=0``) plays rounds of
   the training protocols on ``--images`` (``--protocols``, default
   :data:`benchmarks.train_dark_reader.PROTOCOLS`: the evaluation suites' other
   combinations stay unseen; :func:`benchmarks.ab_test.round_episodes`); the records are
   kept in ``--cache``, so a rerun only fits.
2. Each episode with a brightening call is replayed through the env twice, the calls run as
   a step runs them (:meth:`tir_env.env.TIREnv.lookahead`): as recorded, and without its
   brightening calls. The classifier's row is read where the first brightening call was
   made; its label is whether the recorded episode ends with the higher PSNR.
3. Boosted trees (scikit-learn's ``HistGradientBoostingClassifier``) are fitted on the rows,
   cross-validated by photo first (ROC AUC, and the dB a veto at each threshold would have
   saved an episode of the replays), then exported to flat node arrays, checked against
   scikit-learn, and written with a record of what was measured.

Usage::

    python -m benchmarks.train_bright_veto --images corpus:train@3 --rounds 0 3 --jobs 2 \
        --cache runs/bright_veto --out tir_env/assets/learned/bright_veto.safetensors
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmarks.perception_cv import SUITES
from benchmarks.train_dark_reader import PROTOCOLS
from tir_env.errors import TIRError
from tir_env.files import write_text_atomic

#: The veto thresholds whose replayed effect the record reports.
THRESHOLDS = (0.2, 0.3, 0.4, 0.5)


def _play(job: tuple[str, str, int, tuple[str, ...]]) -> list[dict[str, Any]]:
    """One round of the agent's records (in a worker)."""
    from benchmarks.ab_test import round_episodes, run_spec

    spec, images, k, protocols = job
    return run_spec(spec, round_episodes(images, protocols, k, k + 1), images)


def played(
    spec: str,
    images: str,
    rounds: range,
    jobs: int,
    cache: Path,
    protocols: Sequence[str] = PROTOCOLS,
) -> list[dict[str, Any]]:
    """The agent's records of ``rounds``, each round read from ``cache`` or played there.

    A round's file is named by the images and the protocols (the five suites' files of
    the earlier veto, which read no protocols, keep their old names).
    """
    cache.mkdir(parents=True, exist_ok=True)
    tag = "" if tuple(protocols) == SUITES else "_" + "+".join(protocols)
    stem = f"records_{images.replace(':', '_')}{tag}"
    files = {k: cache / f"{stem}_r{k}.jsonl" for k in rounds}
    todo = [k for k, f in files.items() if not f.is_file()]
    with ProcessPoolExecutor(max(1, min(jobs, len(todo) or 1))) as pool:
        jobs_out = pool.map(_play, [(spec, images, k, tuple(protocols)) for k in todo])
        for k, records in zip(todo, jobs_out, strict=True):
            lines = "".join(json.dumps(r, default=str) + "\n" for r in records)
            write_text_atomic(files[k], lines)
    return [json.loads(line) for k in rounds for line in files[k].read_text().splitlines()]


def _is_brightening(action: dict[str, Any] | None) -> bool:
    from tir_env.tools.base import tool_info

    return action is not None and tool_info(action["tool"]).task == "brightening"


def replay(
    env: Any, record: dict[str, Any], reader: bool = False
) -> tuple[np.ndarray, float, float] | None:
    """(row, PSNR as recorded, PSNR without the brightening calls) of one episode.

    The episode is played in ``env`` (:func:`benchmarks.rescore.replay`) three times: up to
    its first brightening call (where the row is read), whole, and without its brightening
    calls; the shared prefixes are the pool cache's hits. ``None`` when the episode made no
    brightening call. ``reader``: the row ends with the darkness reader's logit.
    """
    from agents.ppo import bright_veto
    from agents.ppo.guard import input_reading
    from benchmarks.rescore import replay as play
    from tir_env.tools.base import tool_info

    actions = [a for a in record.get("actions") or [] if a]
    first = next((i for i, a in enumerate(actions) if _is_brightening(a)), None)
    if first is None:
        return None
    play(env, {**record, "actions": actions[:first]})
    seen = input_reading(env)
    if seen is None:
        raise TIRError("the veto reads perception v2: its weights are missing")
    done = {tool_info(a["tool"]).task for a in actions[:first]}
    batch, size = env.current_batch(), env.target_size()
    row = bright_veto.features(seen.probs, batch, size, done, first, reader=reader)
    with_, _, _ = play(env, {**record, "actions": actions})
    without, _, _ = play(env, {**record, "actions": [a for a in actions if not _is_brightening(a)]})
    return row, with_, without


def replayed(
    records: Sequence[dict[str, Any]], images: str, reader: bool = False
) -> dict[str, np.ndarray]:
    """Rows, labels and replayed PSNRs of the records' brightening episodes (:func:`replay`)."""
    from benchmarks.evaluate import with_tools
    from benchmarks.suites import protocol_suite
    from tir_env.env import TIREnv

    # the tools the agent added to its env (ppo's learned dehazing on crops) replay too
    called = sorted({a["tool"] for r in records for a in r.get("actions") or [] if a})
    envs: dict[str, Any] = {}
    rows, with_, without, photos, suites = [], [], [], [], []
    for record in tqdm(records, desc="replaying", leave=False):
        suite = record["suite"]
        if suite not in envs:
            kwargs = {**protocol_suite(suite).env_kwargs(images), "metrics": ("psnr",)}
            envs[suite] = TIREnv(**with_tools(kwargs, called))
        out = replay(envs[suite], record, reader)
        if out is None:
            continue
        rows.append(out[0])
        with_.append(out[1])
        without.append(out[2])
        photos.append(record["image"])
        suites.append(suite)
    return {
        "rows": np.array(rows),
        "with": np.array(with_),
        "without": np.array(without),
        "photos": np.array(photos),
        "suites": np.array(suites),
    }


def classifier(seed: int) -> Any:
    """The unfitted classifier (shallow trees: a few hundred examples)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_depth=3, max_iter=150, learning_rate=0.05, random_state=seed
    )


def cross_validated(data: dict[str, np.ndarray], folds: int, seed: int) -> dict[str, Any]:
    """ROC AUC and the replayed dB a veto at each threshold saves, out of fold by photo."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    gain = data["with"] - data["without"]
    labels = gain > 0
    p = np.zeros(len(labels))
    for train, test in GroupKFold(folds).split(data["rows"], labels, data["photos"]):
        model = classifier(seed).fit(data["rows"][train], labels[train])
        p[test] = model.predict_proba(data["rows"][test])[:, 1]
    return {
        "folds": folds,
        "roc_auc": float(roc_auc_score(labels, p)),
        "saved_db_per_brightening_episode": {
            str(t): float(-(gain * (p < t)).sum() / len(gain)) for t in THRESHOLDS
        },
        "vetoed_share": {str(t): float((p < t).mean()) for t in THRESHOLDS},
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Play, replay, fit, check the export, write the file and its record."""
    from agents.ppo import bright_veto
    from benchmarks.train_dark_reader import write_reader
    from benchmarks.train_tirqa_trees import exported, refuse_out

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument(
        "--agent",
        default="ppo:bright_veto=0",
        help="the agent spec whose calls it judges; its veto off, or the veto's own refusals "
        "would hide the brightenings it learns from",
    )
    parser.add_argument("--images", default="corpus:train@3")
    parser.add_argument("--rounds", type=int, nargs=2, default=[0, 3], metavar=("FIRST", "STOP"))
    parser.add_argument("--jobs", type=int, default=2, help="rounds played at once")
    parser.add_argument(
        "--protocols", nargs="+", default=list(PROTOCOLS), help="suites or training protocols"
    )
    parser.add_argument("--cache", type=Path, required=True, help="records kept here")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--with-reader",
        action="store_true",
        help="read the darkness reader too (agents.ppo.dark_reader, in the weights folder)",
    )
    parser.add_argument("--out", type=Path, required=True, help="a .safetensors file; no overwrite")
    args = parser.parse_args(argv)
    refuse_out(parser, args.out)
    torch.set_num_threads(1)
    start = time.perf_counter()
    rounds = range(*args.rounds)
    records = played(args.agent, args.images, rounds, args.jobs, args.cache, args.protocols)
    data = replayed(records, args.images, args.with_reader)
    labels = data["with"] - data["without"] > 0
    model = classifier(args.seed).fit(data["rows"], labels)
    trees = exported(model, data["rows"][:500])
    record = {  # shaped like the other records of a weights folder (name, what, ...)
        "name": bright_veto.WEIGHTS_NAME,
        "what": "boosted trees: whether ppo's brightening pays (agents.ppo.bright_veto)",
        "command": "python -m benchmarks.train_bright_veto "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "agent": args.agent,
        "images": args.images,
        "rounds": list(args.rounds),
        "protocols": list(args.protocols),
        "episodes": len(records),
        "brightening_episodes": int(len(labels)),
        "brightening_pays": float(labels.mean()),
        "replayed_gain_db_per_episode": float((data["with"] - data["without"]).sum())
        / max(1, len(records)),
        "features": bright_veto.feature_names(args.with_reader),
        "cross_validated": cross_validated(data, args.folds, args.seed),
        "seconds": round(time.perf_counter() - start, 1),
    }
    return write_reader(trees, args.out, record)


if __name__ == "__main__":
    main()
