r"""How far a no-reference PSNR predictor can get: regressions told more than the image.

The "Agents that see" issue asks `tirqa` for a Spearman correlation of 0.90 with the true
PSNR over degraded inputs and tool outputs together, on photos it never saw; the shipped
network reaches about 0.45 (docs/perception.md). This asks what a predictor could reach if it
knew more than the pixels, on exactly such candidates (a degraded 128 px crop, made as
``perception_report --quality`` makes its groups, and random tools' outputs of it):

* ``pixels``: the image's perception statistics alone (what `tirqa` reads; a check that the
  regression here is no weaker than the network);
* ``told``: the true degradations of the input (presence and severity of each of the eight
  types) and the tool that made the candidate, no pixels (perfect perception, no content);
* ``told + pixels``: both;
* ``told + pixels + clean content``: also the statistics of the unseen clean crop (a
  predictor that knows the scene's own texture, which no blind model can).

Each is a gradient-boosted regression fitted on crops of the corpus' train photos and scored
on crops of the test photos; the score is the issue's: Spearman over every input and tool
output (the exploit is not among the candidates here). If even ``told + pixels`` falls short
of 0.90, the bar asks for knowledge of the content, not only better perception.

Usage::

    python -m benchmarks.tirqa_ceiling --train-groups 600 --test-groups 300 \
        --json benchmarks/results/tirqa_ceiling.json
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
from tqdm import tqdm

from tir_env.files import write_text_atomic

RESULTS = Path("benchmarks/results/tirqa_ceiling.json")
#: The suites whose combinations degrade the crops (as ``perception_report --quality``).
SUITES = ("mio-a", "mio-b", "mio-c", "ood-d2", "ood-d3")
#: The feature sets compared, each a tuple of the column blocks it reads.
VARIANTS: dict[str, tuple[str, ...]] = {
    "pixels": ("pixels",),
    "told": ("told",),
    "told + pixels": ("told", "pixels"),
    "told + pixels + clean content": ("told", "pixels", "clean"),
    "pixels, MLP": ("pixels",),
}
#: The variants fitted by a two-hidden-layer MLP (as `tirqa`'s head is) instead of trees.
MLP_VARIANTS = ("pixels, MLP",)
#: Shares of the training groups each variant is also fitted on (its learning curve).
SHARES = (0.25, 0.5)


def candidate_tools() -> list[str]:
    """The classical tools that keep the size (as the quality groups draw them)."""
    from benchmarks.train_perception import tool_candidates
    from tir_env.tools import tool_info

    return [t for t in tool_candidates() if tool_info(t).scale == 1 and t != "median_paint"]


def told_features(
    applied: Sequence[tuple[str, dict]], tool: str | None, tools: list[str]
) -> np.ndarray:
    """Presence and severity of each type in the input, and a one-hot of the tool (or none)."""
    from tir_env.degradations import make_degradation
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    truth = dict(applied)
    presence = [float(t in truth) for t in AGENTICIR_TYPES]
    severity = [
        float(make_degradation(t).severity(truth[t])) if t in truth else 0.0
        for t in AGENTICIR_TYPES
    ]
    onehot = [float(tool == t) for t in [None, *tools]]
    return np.array(presence + severity + onehot, dtype=np.float32)


#: A pseudo-protocol: every combination of 1-3 AgenticIR types, each size equally often
#: (:func:`every_combination`): no suite's combinations by name, as perception is trained.
EVERY = "every"


def protocol_combos(protocols: Sequence[str] | None = None) -> list[tuple[str, ...]]:
    """The combinations the groups' crops are degraded with, in order.

    ``None``: the five evaluation suites' (:data:`SUITES`, as the trees were fitted until
    2026-12-06); else each protocol's of ``COMBOS`` (``single mio-a train-d3``: the training
    protocols, docs/protocols.md, section 5), or :data:`EVERY`'s.
    """
    from tir_env.degradations.protocols import COMBOS

    names = SUITES if protocols is None else protocols
    return [c for s in names for c in (every_combination() if s == EVERY else COMBOS[s])]


def every_combination() -> list[tuple[str, ...]]:
    """Every combination of 1-3 AgenticIR types in protocol order, sizes equally often.

    There are 8 singles, 28 pairs and 56 triples, so each single is listed 7 times and each
    pair twice: groups drawn in turn then hold as many singles as pairs as triples.
    """
    from itertools import combinations

    from tir_env.degradations.protocols import AGENTICIR_TYPES

    triples = len(list(combinations(AGENTICIR_TYPES, 3)))
    out: list[tuple[str, ...]] = []
    for size in (1, 2, 3):
        combos = list(combinations(AGENTICIR_TYPES, size))
        out += [c for c in combos for _ in range(triples // len(combos))]
    return out


def make_groups(
    photos: Sequence[np.ndarray],
    n: int,
    seed: int,
    tools_per_crop: int = 4,
    second_steps: int = 0,
    protocols: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """``n`` groups (a degraded crop and random tools' outputs), each candidate's features.

    ``second_steps``: per group, that many more candidates made by a second random tool on
    one of the first tools' outputs (what a search agent scores after its first call). With
    none the groups are drawn exactly as before the option (caches stay valid).
    ``protocols``: whose combinations degrade the crops (:func:`protocol_combos`).
    """
    from benchmarks.perception_report import CROP, _quantised, crops
    from benchmarks.train_perception import random_params
    from tir_env.degradations import degrade
    from tir_env.images import resize, u8_to_batch
    from tir_env.metrics import make_metric
    from tir_env.metrics.fast import psnr
    from tir_env.tools import make_tool
    from tir_env.tools.learned.perception_features import perception_features

    rng = np.random.default_rng(seed)
    tools = candidate_tools()
    tirqa = make_metric("tirqa")
    combos = protocol_combos(protocols)
    keys = ("group", "photo", "steps", "psnr", "tirqa", "told", "pixels", "clean")
    rows: dict[str, list[Any]] = {k: [] for k in keys}
    for k, clean_u8 in enumerate(tqdm(crops(photos, n, rng), desc="groups", mininterval=5)):
        clean = u8_to_batch(clean_u8)
        degraded, applied = degrade(clean, list(combos[k % len(combos)]), rng)
        shown = _quantised(resize(degraded, (CROP, CROP)))
        group: list[tuple[str | None, torch.Tensor]] = [(None, shown)]
        for t in rng.choice(len(tools), size=tools_per_crop, replace=False):
            name = tools[int(t)]
            group.append((name, _quantised(make_tool(name)(shown, random_params(name, rng)))))
        for _ in range(second_steps):
            first = group[1 + int(rng.integers(tools_per_crop))][1]
            name = tools[int(rng.integers(len(tools)))]
            group.append((name, _quantised(make_tool(name)(first, random_params(name, rng)))))
        batch = torch.cat([image for _, image in group])
        clean_stats = perception_features(clean, profile=True)[0].numpy()
        with torch.no_grad():
            pixels = perception_features(batch, profile=True).numpy()
        rows["psnr"] += [float(v) for v in psnr(batch, clean.expand_as(batch))]
        rows["tirqa"] += [float(v) for v in tirqa(batch)]
        for j, (made_by, _) in enumerate(group):
            rows["group"].append(k)
            rows["steps"].append(0 if j == 0 else 1 if j <= tools_per_crop else 2)
            rows["photo"].append(k % len(photos))  # crops() cycles over the photos
            rows["told"].append(told_features(applied, made_by, tools))
            rows["pixels"].append(pixels[j])
            rows["clean"].append(clean_stats)
    return {key: np.array(value) for key, value in rows.items()}


def predictions(
    train: dict[str, np.ndarray], test: dict[str, np.ndarray], seed: int, share: float = 1.0
) -> dict[str, np.ndarray]:
    """Each variant's predicted PSNR of the test candidates (and `tirqa`'s reading).

    ``share``: fit on the first that share of the training groups (a learning curve).
    """
    kept = train["group"] < share * (train["group"].max() + 1)
    # PSNR of an untouched crop is capped (80 dB) and no candidate here is clean; clip the
    # target so a rare near-perfect output does not dominate the squared loss.
    target = np.clip(train["psnr"][kept], 0.0, 50.0)
    out = {"tirqa": test["tirqa"]}
    for name, blocks in VARIANTS.items():
        x_train = np.concatenate([train[b][kept] for b in blocks], axis=1)
        x_test = np.concatenate([test[b] for b in blocks], axis=1)
        model = regression(name in MLP_VARIANTS, seed)
        model.fit(x_train, target)
        out[name] = model.predict(x_test)
    return out


def regression(mlp: bool, seed: int) -> Any:
    """Gradient-boosted trees, or a standardised two-hidden-layer MLP (``mlp``)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if mlp:
        net = MLPRegressor(
            hidden_layer_sizes=(128, 128),
            alpha=1e-3,
            max_iter=300,
            early_stopping=True,
            random_state=seed,
        )
        return make_pipeline(StandardScaler(), net)
    return HistGradientBoostingRegressor(max_iter=400, learning_rate=0.05, random_state=seed)


def spearman(guess: np.ndarray, truth: np.ndarray) -> float:
    """Spearman's rank correlation."""
    from scipy.stats import spearmanr

    return float(spearmanr(guess, truth).statistic)


def fit_and_score(
    train: dict[str, np.ndarray], test: dict[str, np.ndarray], seed: int, share: float = 1.0
) -> dict[str, float]:
    """Each variant's Spearman with the true PSNR on the test candidates (and `tirqa`'s)."""
    guesses = predictions(train, test, seed, share)
    return {name: spearman(guess, test["psnr"]) for name, guess in guesses.items()}


def by_subset(
    guesses: dict[str, np.ndarray], test: dict[str, np.ndarray], subsets: dict[str, list[int]]
) -> dict[str, dict[str, float]]:
    """Each variant's Spearman on the candidates of each subset of the test photos."""
    out = {}
    for subset, photos in subsets.items():
        mask = np.isin(test["photo"], photos)
        out[subset] = {n: spearman(g[mask], test["psnr"][mask]) for n, g in guesses.items()}
    return out


def photos_of(images: str) -> tuple[list[str], list[np.ndarray]]:
    """Every photo of an image source: its ids and the loaded photos."""
    from tir_env import data

    source = data.source(images)
    return list(source.ids), [source.load(i) for i in source.ids]


def test_subsets(ids: Sequence[str]) -> dict[str, list[int]]:
    """The test photos by set: those that ship with the repo (bundled) and the others."""
    from benchmarks.heldout_rounds import shipped

    bundled = [k for k, i in enumerate(ids) if shipped(i)]
    others = [k for k in range(len(ids)) if k not in bundled]
    return {"corpus-only": others, "bundled": bundled} if bundled and others else {}


def groups_cached(
    images: str,
    n: int,
    seed: int,
    cache: Path | None,
    second_steps: int = 0,
    protocols: Sequence[str] | None = None,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """:func:`make_groups` of every photo of ``images``, read from or written to ``cache``.

    A cache made with other settings (size, seed, second steps, protocols) is made afresh.
    """
    ids, photos = photos_of(images)
    tag = "" if protocols is None else "+".join(protocols)  # "": the five suites
    if cache is not None and cache.is_file():
        saved = dict(np.load(cache))
        made_with = (
            int(saved["n"]),
            int(saved["seed"]),
            int(saved.get("second_steps", 0)),
            str(saved.get("protocols", "")),
        )
        if made_with == (n, seed, second_steps, tag):
            return ids, {k: v for k, v in saved.items() if k not in CACHE_KEYS}
    rows = make_groups(photos, n, seed, second_steps=second_steps, protocols=protocols)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"n": n, "seed": seed, "second_steps": second_steps, **rows}
        if tag:
            arrays["protocols"] = tag
        np.savez_compressed(cache, **arrays)
    return ids, rows


#: What a cache file holds besides the groups' rows (what they were made with).
CACHE_KEYS = ("n", "seed", "second_steps", "protocols")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Make the groups, fit the regressions, print and write the Spearman correlations."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--train", default="corpus:train@3")
    parser.add_argument("--test", default="corpus:test")
    parser.add_argument("--train-groups", type=int, default=600)
    parser.add_argument("--test-groups", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS, help="refuses to overwrite")
    parser.add_argument(
        "--cache", type=Path, default=None, help="folder for the groups' arrays (reused)"
    )
    args = parser.parse_args(argv)
    if args.json.exists():
        parser.error(f"{args.json} exists; choose another path or delete it first")
    torch.set_num_threads(1)
    cache = {k: args.cache / f"{k}.npz" if args.cache else None for k in ("train", "test")}
    _, train = groups_cached(args.train, args.train_groups, args.seed, cache["train"])
    ids, test = groups_cached(args.test, args.test_groups, args.seed + 1, cache["test"])
    guesses = predictions(train, test, args.seed)
    scores = {name: spearman(guess, test["psnr"]) for name, guess in guesses.items()}
    curve = {str(share): fit_and_score(train, test, args.seed, share) for share in SHARES}
    result = {
        "command": "python -m benchmarks.tirqa_ceiling "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "train": args.train,
        "test": args.test,
        "candidates": {"train": len(train["psnr"]), "test": len(test["psnr"])},
        "spearman": scores,
        "by_set": by_subset(guesses, test, test_subsets(ids)),
        "learning_curve": curve,
    }
    print(markdown(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return result


def markdown(result: dict[str, Any]) -> str:
    """The table: each predictor's Spearman with the true PSNR on the test candidates."""
    lines = [
        "| predictor | knows | Spearman with true PSNR |",
        "|---|---|---:|",
        f"| shipped `tirqa` | the image | {result['spearman']['tirqa']:.3f} |",
    ]
    knows = {
        "pixels": "the image's perception statistics",
        "told": "the true degradations and the tool, not the image",
        "told + pixels": "both",
        "told + pixels + clean content": "both, and the clean crop's statistics",
        "pixels, MLP": "the image's perception statistics (an MLP, not trees)",
    }
    for name in VARIANTS:
        if name in result["spearman"]:  # results before a variant was added lack it
            lines.append(f"| `{name}` | {knows[name]} | {result['spearman'][name]:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()


#: The run docs/perception.md shows (three times the default training groups).
DOC_RESULT = Path("benchmarks/results/tirqa_ceiling_3000.json")


def doublings_to(
    target: float, curve: dict[str, dict[str, float]], full: float, name: str
) -> float | None:
    """More doublings of the training groups that reach ``target`` at the last one's rate.

    ``None`` when the curve does not rise from half the groups to all of them.
    """
    half = curve.get("0.5", {}).get(name)
    if half is None or full <= half:
        return None
    return max(0.0, (target - full) / (full - half))


def section(path: Path = DOC_RESULT) -> str:
    """docs/perception.md's section ("" before the results are committed)."""
    import textwrap

    if not path.is_file():
        return ""
    result = json.loads(path.read_text())
    score, curve, sets = result["spearman"], result["learning_curve"], result["by_set"]
    n = result["candidates"]
    head = "| predictor | Spearman, all | " + "".join(f"{s} | " for s in sets)
    head += "".join(f"fitted on {float(k):.0%} | " for k in curve) + "fitted on all |"
    lines = [
        "",
        "## How far a blind PSNR predictor can get (measured)",
        "",
        "Generated by `python -m benchmarks.perception_report --doc-only` (the section of",
        f"`benchmarks.tirqa_ceiling`) from `{path}`, made by",
        f"`{result['command']}`.",
        "",
        *textwrap.wrap(
            "The issue asks `tirqa` for a Spearman correlation of 0.90 with the true PSNR over "
            "degraded inputs and tool outputs together. What would a predictor reach if it "
            "knew more than the pixels? Gradient-boosted regressions fitted on "
            f"{n['train']} candidates of the train photos (`{result['train']}`) and scored on "
            f"{n['test']} of the test photos (`{result['test']}`): each a 128 px crop degraded "
            "with a combination of the five crop suites, and four random tools' outputs of it, "
            "as the quality groups above (the exploit left out). *Told*: the presence and "
            "severity of each true degradation of the input and the tool that made the "
            "candidate; *pixels*: the 98 perception statistics `tirqa` reads; *clean content*: "
            "the same statistics of the unseen clean crop, which no blind model has. *Pixels, "
            "MLP*: the pixels fitted by a two-hidden-layer MLP, as `tirqa`'s head is, instead "
            "of trees.",
            96,
        ),
        "",
        head,
        "|---|" + "---:|" * (1 + len(sets) + len(curve) + 1),
    ]
    for name in ("tirqa", *(v for v in VARIANTS if v in score)):
        label = "`tirqa` (the shipped network)" if name == "tirqa" else f"`{name}`"
        row = f"| {label} | {score[name]:.3f} | "
        row += "".join(f"{sets[s][name]:.3f} | " for s in sets)
        fits = [f"{curve[k][name]:.3f}" for k in curve] + [f"{score[name]:.3f}"]
        row += " | ".join(fits if name != "tirqa" else ["-"] * len(fits)) + " |"
        lines.append(row)
    told, bound = score["told + pixels"], score["told + pixels + clean content"]
    verdict = (
        f"Told the true degradations and the tool, and reading the pixels too, a predictor "
        f"reaches {told:.3f}, {'under' if told < 0.9 else 'over'} the 0.90 the issue asks; "
        f"knowing the clean crop's statistics as well, {bound:.3f}. Perfect perception is worth "
        f"{told - score['pixels']:+.3f} here; what is left is the content: what a blur, a "
        "darkening or a tool costs in PSNR depends on the texture and brightness the clean crop "
        "had, which a blind model can only guess."
    )
    steps = doublings_to(0.9, curve, told, "told + pixels")
    rise = " -> ".join(f"{curve[k]['told + pixels']:.3f}" for k in curve) + f" -> {told:.3f}"
    verdict += f" With a quarter, half and all of the training groups it reads {rise}" + (
        f": at the last doubling's rate, about {steps:.1f} more doublings of the examples "
        "would bring even a predictor told the truth to 0.90."
        if steps is not None
        else "."
    )
    if score["pixels"] > score["tirqa"]:
        verdict += (
            f" The regression on the pixels alone ({score['pixels']:.3f}) ranks these candidates "
            f"better than the shipped network ({score['tirqa']:.3f}): trained on candidates made "
            "as these are, the same statistics carry more than `tirqa`'s head draws from them."
        )
    mlp = score.get("pixels, MLP")
    if mlp is not None:
        verdict += f" An MLP fitted on the same examples reaches {mlp:.3f}: " + (
            "the trees, not the examples, make the difference."
            if mlp < score["pixels"] - 0.03
            else "the examples, not the trees, make the difference."
        )
    return "\n".join([*lines, "", *textwrap.wrap(verdict, 96), ""])
