r"""Fit the photo-dark reader (:mod:`tir_env.photo_dark`) on whole corpus train photos.

1. Each photo of ``--images`` (long side ``--side``, as ``tir restore`` runs one episode)
   gives the copies of :data:`COPIES`: clean, degraded by single types and group A's pairs
   without darkness, and as a user's photos come (mild noise, a phone's, an everyday JPEG);
   darkened by each of the protocol's three maps, alone and in group A's pairs, and as a dim
   exposure (darkened, then sensor noise). Parameters are drawn from a seed of the photo's
   name. Only the training protocols' combinations are used (groups B and C and the ``ood``
   suites stay unseen, as for every model here). Each copy is rounded to 8 bits, perception
   reads it whole, and :func:`tir_env.photo_dark.features` makes its row; the label is
   whether it was darkened.
2. Boosted trees (scikit-learn's ``HistGradientBoostingClassifier``) are cross-validated by
   photo; the threshold is the out-of-fold probability that at most ``--false-alarms`` of
   the copies that were not darkened reach (and as few of the clean ones), since a false
   brightening costs a photo 10-20 dB and a missed one leaves it as it came. Then the trees
   are fitted on every row, exported to flat node arrays, checked against scikit-learn and
   written with the threshold and what was measured.

Usage::

    python -m benchmarks.train_photo_dark --images corpus:train@4 --jobs 2 \
        --cache runs/photo_dark/rows.npz --out runs/photo_dark/photo_dark.safetensors
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tir_env.errors import TIRError

#: Long side (px) the photos are read at: ``tir restore``'s one-episode size.
SIDE = 1024
#: Copies of every photo: name -> (degradation combination, darkened, what else is added).
#: ``dark@k`` forces the darkening's map ``k``; ``+sigmaN`` adds Gaussian noise of sigma N
#: (0-255 scale) and ``+jpegQ`` saves a JPEG of quality Q, after the combination.
COPIES: dict[str, tuple[tuple[str, ...], bool, tuple[str, ...]]] = {
    "clean": ((), False, ()),
    "noise": (("noise",), False, ()),
    "jpeg": (("jpeg",), False, ()),
    "haze": (("haze",), False, ()),
    "rain": (("rain",), False, ()),
    "motion_blur": (("motion_blur",), False, ()),
    "defocus_blur": (("defocus_blur",), False, ()),
    "noise+jpeg": (("noise", "jpeg"), False, ()),
    "rain+haze": (("rain", "haze"), False, ()),
    "defocus_blur+jpeg": (("defocus_blur", "jpeg"), False, ()),
    "defocus_blur+haze": (("defocus_blur", "haze"), False, ()),
    "mild noise": ((), False, ("+sigma10",)),
    "faint noise": ((), False, ("+sigma5",)),
    "phone": ((), False, ("+sigma8", "+jpeg85")),
    "everyday jpeg": ((), False, ("+jpeg80",)),
    "dark shift": (("dark@0",), True, ()),
    "dark gamma": (("dark@1",), True, ()),
    "dark linear": (("dark@2",), True, ()),
    "dark+noise": (("dark", "noise"), True, ()),
    "motion_blur+dark": (("motion_blur", "dark"), True, ()),
    "low light": (("dark@1",), True, ("+sigma10",)),
    "dark, everyday jpeg": (("dark",), True, ("+jpeg80",)),
}


def _dark_params(rng: np.random.Generator, mode: int) -> dict[str, float]:
    """The protocol's darkening parameters with map ``mode`` (drawn as :class:`Dark` draws)."""
    from tir_env.degradations import make_degradation

    dark = make_degradation("dark")
    while True:
        params = dark.sample(rng)
        if round(params["mode"]) == mode:
            return params


def degraded_copy(clean: torch.Tensor, copy: str, rng: np.random.Generator) -> np.ndarray:
    """``clean`` (1x3xHxW) made into copy ``copy`` of :data:`COPIES`, as uint8 HxWx3."""
    from tir_env.degradations import make_degradation
    from tir_env.degradations.base import degrade
    from tir_env.degradations.synthesis import jpeg_roundtrip
    from tir_env.images import batch_to_u8, u8_to_batch

    combo, _, extras = COPIES[copy]
    image = clean
    forced = [c for c in combo if "@" in c]
    if forced and len(combo) > 1:
        raise ValueError(f"copy {copy!r}: a forced darkening map must stand alone, got {combo}")
    for name in forced:  # a single darkening with its map forced
        image = make_degradation("dark").apply(image, _dark_params(rng, int(name[-1])))
    if not forced and combo:
        image, _ = degrade(image, combo, rng)
    u8 = batch_to_u8(image.clamp(0.0, 1.0))
    for extra in extras:
        x = u8.astype(np.float32) / 255.0
        if extra.startswith("+sigma"):
            x = x + rng.normal(0.0, float(extra[6:]) / 255.0, x.shape).astype(np.float32)
        else:
            x = jpeg_roundtrip(x.clip(0.0, 1.0), int(extra[5:]))
        u8 = batch_to_u8(u8_to_batch((x.clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)))
    return u8


def _photo_rows(job: tuple[str, str, int]) -> tuple[str, list[str], np.ndarray, np.ndarray]:
    """One photo's rows: its id, the copies' names, features and labels."""
    from tir_env import data, perception, photo_dark
    from tir_env.images import resize_u8, u8_to_batch

    spec, image_id, side = job
    torch.set_num_threads(1)
    photo = data.source(spec).load(image_id)
    scale = side / max(photo.shape[:2])
    if scale < 1.0:
        photo = resize_u8(photo, (round(photo.shape[0] * scale), round(photo.shape[1] * scale)))
    h, w = (d - d % 4 for d in photo.shape[:2])  # low resolution's x4 is not among the copies
    clean = u8_to_batch(np.ascontiguousarray(photo[:h, :w]))
    rng = np.random.default_rng(zlib.crc32(image_id.encode()))
    names, rows, labels = [], [], []
    for copy, (_, darkened, _) in COPIES.items():
        u8 = degraded_copy(clean, copy, rng)
        with photo_dark.suspended():  # perception's own reading, whatever reader is installed
            reading = perception.perceive_photo(u8).probs["dark"]
        names.append(copy)
        rows.append(photo_dark.features(u8, reading))
        labels.append(darkened)
    return image_id, names, np.array(rows), np.array(labels)


def read(spec: str, side: int, jobs: int) -> dict[str, np.ndarray]:
    """Every photo's rows: ``rows``, ``labels``, ``photos`` (group of each row), ``copies``."""
    from tir_env import data

    ids = [i for i in data.source(spec).ids]
    out: dict[str, list[Any]] = {"rows": [], "labels": [], "photos": [], "copies": []}
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        done = pool.map(_photo_rows, [(spec, i, side) for i in ids])
        for image_id, names, rows, labels in tqdm(done, total=len(ids), desc="photos"):
            out["rows"].append(rows)
            out["labels"].append(labels)
            out["photos"] += [image_id] * len(names)
            out["copies"] += names
    return {
        "rows": np.concatenate(out["rows"]),
        "labels": np.concatenate(out["labels"]),
        "photos": np.array(out["photos"]),
        "copies": np.array(out["copies"]),
    }


def chosen_threshold(p: np.ndarray, data: dict[str, np.ndarray], false_alarms: float) -> float:
    """The least probability that at most ``false_alarms`` of the undarkened copies reach.

    The same bound holds for the clean copies alone (a user's clean photo matters most).
    """
    negatives = ~np.asarray(data["labels"], dtype=bool)
    clean = data["copies"] == "clean"

    def bound(scores: np.ndarray) -> float:
        allowed = int(np.floor(false_alarms * len(scores)))
        ranked = np.sort(scores)[::-1]
        return float(ranked[allowed]) + 1e-9 if allowed < len(ranked) else 0.0

    return min(0.999, max(bound(p[negatives]), bound(p[clean]), 1e-3))


def report(p: np.ndarray, data: dict[str, np.ndarray], threshold: float) -> dict[str, Any]:
    """Share of each copy read as darkened at ``threshold``, and perception's own reading's."""
    from sklearn.metrics import roc_auc_score

    from tir_env import perception

    network = perception.thresholds()["dark"]
    logit = np.log(network / (1.0 - network))
    by_copy = {
        copy: {
            "reader": float((p[data["copies"] == copy] >= threshold).mean()),
            "perception": float((data["rows"][data["copies"] == copy, 0] >= logit).mean()),
        }
        for copy in COPIES
    }
    return {
        "roc_auc": float(roc_auc_score(data["labels"], p)),
        "perception_roc_auc": float(roc_auc_score(data["labels"], data["rows"][:, 0])),
        "read_as_darkened": by_copy,
    }


def _cached(cache: Path | None, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, Any]:
    """The rows from ``cache`` when it exists, else made and saved there."""
    if cache is not None and cache.is_file():
        with np.load(cache) as f:
            return {k: f[k] for k in f.files}
    made = make()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            rows=made["rows"],
            labels=made["labels"],
            photos=made["photos"],
            copies=made["copies"],
        )
    return made


def evaluate(reader: Path, spec: str, side: int, jobs: int, out: Path) -> dict[str, Any]:
    """The fitted ``reader`` on the copies of ``spec``'s photos, written to ``out`` (JSON).

    For photos the reader was not fitted on (``corpus:val@4``): each copy's share read as
    darkened at the reader's threshold against perception's own threshold's, and ROC AUC.
    """
    from tir_env import photo_dark
    from tir_env.files import write_text_atomic
    from tir_env.quality_trees import ensemble_reading

    trees = ensemble_reading(reader, (len(photo_dark.feature_names()),), photo_dark.REFIT)
    record = json.loads(reader.with_suffix(".json").read_text())
    data = read(spec, side, jobs)
    p = 1.0 / (1.0 + np.exp(-trees.predict(data["rows"])))
    result = {
        "command": "python -m benchmarks.train_photo_dark " + shlex.join(sys.argv[1:]),
        "reader": str(reader),
        "images": spec,
        "side": side,
        "threshold": float(record["threshold"]),
        **report(p, data, float(record["threshold"])),
        "rows": [
            {"photo": str(ph), "copy": str(c), "reader": float(q), "perception_logit": float(r[0])}
            for ph, c, q, r in zip(data["photos"], data["copies"], p, data["rows"], strict=True)
        ],
    }
    write_text_atomic(out, json.dumps(result, indent=1) + "\n")
    return result


def markdown(result: dict[str, Any]) -> list[str]:
    """The table of an :func:`evaluate` report (docs' ``<!-- photo-dark: FILE.json -->``)."""
    photos = len({row["photo"] for row in result["rows"]})
    lines = [
        f"`{result['command']}`: {photos} photos ({result['images']}, long side "
        f"{result['side']}), the reader's threshold {result['threshold']:.3f}. ROC AUC of "
        f"darkened against not: the reader {result['roc_auc']:.3f}, perception's reading "
        f"{result['perception_roc_auc']:.3f}.",
        "",
        "| copy | darkened | read as darkened: the reader | perception's threshold |",
        "|---|---|---:|---:|",
    ]
    for copy, shares in result["read_as_darkened"].items():
        darkened = "yes" if COPIES.get(copy, ((), False, ()))[1] else "no"
        lines.append(
            f"| {copy} | {darkened} | {shares['reader']:.2f} | {shares['perception']:.2f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Read the copies, cross-validate, choose the threshold, fit, write the file and record."""
    from benchmarks.train_dark_reader import classifier, out_of_fold, write_reader
    from benchmarks.train_tirqa_trees import exported, refuse_out
    from tir_env import photo_dark

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--images", default="corpus:train@4")
    parser.add_argument("--side", type=int, default=SIDE)
    parser.add_argument("--jobs", type=int, default=2, help="photos read at once")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--false-alarms", type=float, default=0.02)
    parser.add_argument("--cache", type=Path, default=None, help="rows saved/reused here (.npz)")
    parser.add_argument(
        "--out", type=Path, required=True, help="a .safetensors file (a .json with --evaluate)"
    )
    parser.add_argument(
        "--evaluate",
        type=Path,
        default=None,
        metavar="READER",
        help="instead of fitting: read --images' copies with this fitted reader file and "
        "write the shares it reads as darkened to --out (a .json; no overwrite)",
    )
    args = parser.parse_args(argv)
    if args.evaluate is not None:
        from tir_env.files import refuse_existing

        if args.out.suffix != ".json":
            parser.error(f"--out {args.out}: with --evaluate, want a .json file")
        refuse_existing(parser, args.out)
        return evaluate(args.evaluate, args.images, args.side, args.jobs, args.out)
    refuse_out(parser, args.out)
    if not 0.0 <= args.false_alarms < 1.0:
        parser.error(f"--false-alarms {args.false_alarms}: want a share in [0, 1)")
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = _cached(args.cache, lambda: read(args.images, args.side, args.jobs))
    if data["labels"].all() or not data["labels"].any():
        raise TIRError(f"{args.images}: the copies are all of one label")
    p = out_of_fold(data, args.folds, args.seed)
    threshold = chosen_threshold(p, data, args.false_alarms)
    model = classifier(args.seed).fit(data["rows"], data["labels"])
    trees = exported(model, data["rows"][:500])
    record = {
        "name": photo_dark.WEIGHTS_NAME,
        "what": "boosted trees: whether a whole photo was darkened (tir_env.photo_dark)",
        "command": "python -m benchmarks.train_photo_dark "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "images": args.images,
        "side": args.side,
        "photos": int(len(set(data["photos"].tolist()))),
        "copies": list(COPIES),
        "rows": int(len(data["labels"])),
        "threshold": threshold,
        "false_alarms": args.false_alarms,
        "features": photo_dark.feature_names(),
        "cross_validated": {"folds": args.folds, **report(p, data, threshold)},
        "seconds": round(time.perf_counter() - start, 1),
    }
    return write_reader(trees, args.out, record)


if __name__ == "__main__":
    main()
