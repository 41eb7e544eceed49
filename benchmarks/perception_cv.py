"""Cross-validated perception: decide a perception change on 44 photos instead of 5.

A change to the perception network (features, recipe, thresholds) is judged by what the
perceiving agents do with it, and the five val photos are too few for that: one photo's
misty sky or one false haze on a small input moves a val mean by tenths of a dB. Here each
variant is trained ``--folds`` times on the train photos less one fold
(``corpus:train@2[~k/n]``, :func:`tir_env.data.fold`; thresholds tuned on the val photos as
usual) and scored on the fold it never saw (``corpus:train@2[k/n]``), so every train photo is
held out once: the perceived sets (exact-set rate, per-type F1 without true negatives) and
``fixed``'s PSNR on the suites' episodes of the held-out photos. ``fixed`` is run exactly
(:func:`~agents.baselines.prior_plan` of the perceived tasks, stepped in the env); the same
perceived set of an episode is run once.

Usage::

    python -m benchmarks.perception_cv --variant base= --variant profile=--profile
    # 4 folds x 2 variants: about 30 min on 2 cores (two folds at once: --jobs 2)
    python -m benchmarks.perception_cv --report-only   # the table from the JSON
    # thresholds tuned for fixed on each fold's train photos, scored on the held-out fold:
    python -m benchmarks.perception_cv --variant base= --tune-fixed base
    # the search agents too, run for real with each fold's network (about 10 min per agent
    # and variant on 2 cores):
    python -m benchmarks.perception_cv --variant base= --agents exhaustive greedy
    # an agent with options: NAME:KEY=VALUE[,KEY=VALUE]
    python -m benchmarks.perception_cv --variant base= --agents exhaustive:guard=none
    # one variant's presence with another's network as tirqa (both trained before it)
    python -m benchmarks.perception_cv --variant base= --variant 'prof=--profile' \
        --variant 'paired=pair:prof,base' --agents exhaustive

Writes ``benchmarks/results/perception_cv.json`` (every episode's outcome) and prints the
table that docs/perception.md shows (``table``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "perception_cv.json"
#: Suites whose episodes are played on each held-out fold.
SUITES = ("mio-a", "mio-b", "mio-c", "ood-d2", "ood-d3")
#: Suites ``--suites`` may also name (``single``: each type alone, for threshold pricing).
EXTRA_SUITES = ("single",)
#: Suite whose env plays the clean crops (``--clean``): 128 px, the MiO step budget.
CLEAN_ENV_SUITE = "mio-a"
#: PSNR a clean crop scores at most: left alone it scores this (its own PSNR is infinite),
#: and a false alarm costs what its tool takes below it (40 dB: no visible change).
CLEAN_PSNR_CAP = 40.0


def fold_dir(out: Path, variant: str, k: int) -> Path:
    """Training folder of one variant on one fold."""
    return out / f"{variant}_f{k}"


def train_fold(source: str, out: Path, variants: dict[str, str], k: int, n: int) -> None:
    """Train every variant on the photos outside fold ``k`` (examples made once, shared).

    A ``pair:PRESENCE,QUALITY`` variant is not trained: its fold folder links two earlier
    variants' networks (:func:`link_pair`).
    """
    from benchmarks import train_perception

    first: Path | None = None
    for name, extra in variants.items():
        target = fold_dir(out, name, k)
        if extra.startswith(PAIR):  # trained by other variants: link, do not train
            link_pair(out, target, extra, k)
            continue
        if (target / "perception.json").is_file():
            first = first or target
            continue
        if first is not None and (first / "examples").is_dir():  # same settings: same examples
            shutil.copytree(first / "examples", target / "examples", dirs_exist_ok=True)
        args = ["--out", str(target), "--train", f"{source}[~{k}/{n}]", "--threads", "1"]
        start = time.time()
        train_perception.main(train_perception.parse_args(args + shlex.split(extra)))
        print(f"{name} fold {k}: trained in {time.time() - start:.0f} s", flush=True)
        first = first or target


#: Networks a fold's training folder supplies (``tirqa`` and its trees: only when the folder
#: has them; the shipped ones were fitted on every train photo, the fold's held-out ones too).
FOLD_NETWORKS = ("perception.", "tirqa.", "tirqa_trees.")


#: Variant ARGS that pair two trained variants' networks: ``pair:PRESENCE,QUALITY``.
PAIR = "pair:"


def link_pair(out: Path, target: Path, extra: str, k: int) -> None:
    """Fold ``k`` of a paired variant: one variant's perception, another's network as tirqa.

    Raises:
        SystemExit: ``extra`` is not ``pair:PRESENCE,QUALITY``, or a named fold network is
            missing (list those variants first, or train them in an earlier run).
    """
    presence, _, quality = extra.removeprefix(PAIR).partition(",")
    if not presence or not quality:
        raise SystemExit(f"a paired variant wants pair:PRESENCE,QUALITY, got {extra!r}")
    target.mkdir(parents=True, exist_ok=True)
    for source, stem in ((presence, "perception"), (quality, "tirqa")):
        for suffix in (".json", ".safetensors"):
            own = fold_dir(out, source, k).resolve() / f"perception{suffix}"
            if not own.is_file():
                raise SystemExit(f"{own} is missing: variant {source!r} is not trained on fold {k}")
            link = target / f"{stem}{suffix}"
            if not link.exists():
                link.symlink_to(own)


def weights_folder(out: Path, variant: str, k: int) -> Path:
    """The shipped weights with this fold's networks in place (links, no copies).

    The fold folder's ``perception`` network replaces the shipped one. A fold folder may also
    hold a ``tirqa`` network (the quality model, e.g. another variant's network linked in), so
    a variant can pair one network's presence with another's quality; without one, a shipped
    ``tirqa`` is left out, so ``tirqa`` reads the fold's perception network as it would.
    """
    from tir_env.tools.learned.weights import SHIPPED_DIR

    folder = (out / f"weights_{variant}_f{k}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    own = fold_dir(out, variant, k).resolve()
    names = {p.name for p in SHIPPED_DIR.iterdir()} | {
        p.name for p in own.iterdir() if p.name.startswith(FOLD_NETWORKS)
    }
    for name in sorted(names):
        link = folder / name
        if link.exists() or link.is_symlink():
            continue
        if name.startswith(FOLD_NETWORKS):
            if (own / name).exists():  # a shipped tirqa never stands in for the fold's own
                link.symlink_to(own / name)
        else:
            link.symlink_to(SHIPPED_DIR / name)
    return folder


def fold_episodes(images: str, suites: Sequence[str] = SUITES) -> list[tuple[Any, Any]]:
    """(suite, episode) pairs of every suite (or training protocol, ``train-d3``) on a source."""
    from benchmarks.suites import protocol_suite

    return [
        (s, spec) for name in suites for s in [protocol_suite(name)] for spec in s.episodes(images)
    ]


def held_out_episodes(
    source: str, k: int, n: int, suites: Sequence[str] = SUITES, clean: int = 0
) -> list[tuple[Any, Any]]:
    """(suite, episode) pairs of every suite on the photos of fold ``k``.

    Then ``clean`` clean crops per photo (:func:`clean_episodes`).
    """
    images = f"{source}[{k}/{n}]"
    return fold_episodes(images, suites) + clean_episodes(images, clean)


@dataclass(frozen=True)
class CleanEpisode:
    """A clean crop of a photo: nothing to restore, so anything perceived is a false alarm.

    Attributes:
        image_id: The photo.
        seed: Seeds the crop's position.
    """

    image_id: str
    seed: int


def clean_episodes(
    images: str, per_photo: int, suite_name: str = CLEAN_ENV_SUITE
) -> list[tuple[Any, Any]]:
    """``per_photo`` clean crops of every photo of ``images``, as ``(suite, episode)`` pairs.

    The suite is the env that plays them (:data:`CLEAN_ENV_SUITE`, or ``suite_name``: one of
    whole photos, ``NAME@full``, plays each photo whole, so one per photo is all there is);
    crop seeds are a hash of the photo and the index, so adding photos never moves a crop.
    """
    from benchmarks.suites import get_suite
    from tir_env import data

    if per_photo <= 0:
        return []
    suite = get_suite(suite_name)
    if suite.patch_size is None:
        per_photo = 1
    return [
        (suite, CleanEpisode(image, zlib.crc32(f"clean|{image}|{j}".encode())))
        for image in data.source(images).ids
        for j in range(per_photo)
    ]


class FixedRunner:
    """``fixed``'s prior plan on a list of episodes, given the perceived set (each set run once).

    The plan the judge and threshold studies price: the classical one, or with ``learned``
    tasks calling their learned tools (as ``fixed.learned``; the envs offer them).
    """

    def __init__(
        self, episodes: list[tuple[Any, Any]], images: str, learned: Sequence[str] = ()
    ) -> None:
        from agents.baselines import FixedOptions
        from tir_env.degradations import make_degradation
        from tir_env.degradations.protocols import AGENTICIR_TYPES

        self.episodes, self.images = episodes, images
        #: Tasks whose learned tool the plan calls (:func:`agents.baselines.plan_tool`).
        self.learned = tuple(learned)
        #: The parameters ``fixed`` runs its tools with (its default, :mod:`agents.tuned`).
        self.params = FixedOptions().params
        self.types = AGENTICIR_TYPES
        self.task = {t: make_degradation(t).info.task for t in AGENTICIR_TYPES}
        self.envs: dict[str, Any] = {}
        self.cache: dict[tuple[int, tuple[bool, ...]], float] = {}
        self.inputs: dict[int, float] = {}
        self._seen: dict[int, tuple[Any, tuple[int, int] | None]] = {}
        self._source: Any = None

    def reset(self, i: int) -> Any:
        """The env of episode ``i``, reset to its input."""
        from tir_env.env import TIREnv

        suite, spec = self.episodes[i]
        if suite.name not in self.envs:
            kwargs = {**suite.env_kwargs(self.images), "metrics": ("psnr",)}
            self.envs[suite.name] = TIREnv(**self._with_learned_tools(kwargs))
        env = self.envs[suite.name]
        if isinstance(spec, CleanEpisode):
            crop = self.clean_crop(spec, suite.name)
            env.reset(seed=spec.seed, options={"image": crop, "reference": crop})
        else:
            env.reset(
                seed=spec.seed,
                options={"image_id": spec.image_id, "degradations": spec.degradations},
            )
        return env

    def _with_learned_tools(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Env kwargs that offer the learned tools of :attr:`learned`."""
        from agents.baselines import learned_tool
        from benchmarks.evaluate import with_tools

        return with_tools(kwargs, [learned_tool(t) for t in self.learned])

    def clean_crop(self, spec: CleanEpisode, suite_name: str = CLEAN_ENV_SUITE) -> Any:
        """The clean crop of a :class:`CleanEpisode` (uint8 HWC), at its env's patch size.

        The whole photo when that env plays whole photos.
        """
        from tir_env import data

        if self._source is None:
            self._source = data.source(self.images)
        size = self.envs[suite_name].config.patch_size
        image = self._source.load(spec.image_id)
        if size is None:
            return image
        return data.random_patch(image, size, np.random.default_rng(spec.seed))

    def perceived_input(self, i: int) -> tuple[Any, tuple[int, int] | None]:
        """Episode ``i``'s degraded input (uint8) and its target size, made once."""
        if i not in self._seen:
            env = self.reset(i)
            self._seen[i] = (env.input_image(), env.target_size())
        return self._seen[i]

    def psnr(self, i: int, present: tuple[bool, ...]) -> float:
        """Output PSNR of ``fixed`` on episode ``i`` when it perceives ``present``."""
        from agents.baselines import prior_plan
        from tir_env.spaces import encode_call

        if (i, present) not in self.cache:
            env = self.reset(i)
            if i not in self.inputs:
                self.inputs[i] = self._psnr_now(i, env)
            tasks = [self.task[t] for t, on in zip(self.types, present, strict=True) if on]
            plan = prior_plan(tasks, env.tools, env.config.max_steps, self.params, self.learned)
            for call in plan:
                env.step(encode_call(call, env.tools))
            self.cache[(i, present)] = self._psnr_now(i, env)
        return self.cache[(i, present)]

    def _psnr_now(self, i: int, env: Any) -> float:
        """PSNR of episode ``i``'s current image (capped for a clean crop: its input's is inf)."""
        psnr = float(env.score(env.current_batch(), ("psnr",))["psnr"])
        clean = isinstance(self.episodes[i][1], CleanEpisode)
        return min(psnr, CLEAN_PSNR_CAP) if clean else psnr

    def truth(self, i: int) -> tuple[bool, ...]:
        """Which types episode ``i`` really holds (all ``False`` for a clean crop)."""
        spec = self.episodes[i][1]
        held = () if isinstance(spec, CleanEpisode) else spec.degradations
        return tuple(t in held for t in self.types)


#: Thresholds tried per type when tuning them for ``fixed`` (1.01: never perceived).
THRESHOLD_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.975, 1.01)


def probabilities(runner: FixedRunner) -> np.ndarray:
    """Presence probabilities (episodes x types) of the loaded perception network."""
    from tir_env import perception

    rows = []
    for i in range(len(runner.episodes)):
        probs = perception.perceive(*runner.perceived_input(i))
        rows.append([probs[t] for t in runner.types])
    return np.array(rows)


def mean_fixed(runner: FixedRunner, probs: np.ndarray, limits: np.ndarray) -> float:
    """``fixed``'s mean PSNR when each episode perceives the types at or above ``limits``."""
    seen = probs >= limits[None]
    return float(np.mean([runner.psnr(i, tuple(map(bool, row))) for i, row in enumerate(seen)]))


def tuned_for_fixed(
    runner: FixedRunner,
    probs: np.ndarray,
    start: dict[str, float],
    sweeps: int = 2,
    raise_only: bool = False,
) -> dict[str, float]:
    """Thresholds that raise ``fixed``'s mean PSNR on ``runner``'s episodes (coordinate ascent).

    What a false alarm costs differs by type (a dehazing of a clear image costs far more
    than a missed blur); F-beta on labelled examples weighs them alike, this weighs them by
    what ``fixed`` then does. Each type in turn takes the value of :data:`THRESHOLD_GRID`
    (or keeps its own) with the best mean, twice over the types. ``raise_only``: no threshold
    goes below its start (the suites' episodes are all degraded, so they cannot show what a
    lower threshold costs on a clean photo).
    """
    limits = np.array([start[t] for t in runner.types])
    floor = limits.copy() if raise_only else np.zeros_like(limits)
    for _ in range(sweeps):
        for j in range(len(limits)):
            best, best_value = mean_fixed(runner, probs, limits), limits[j]
            for value in (v for v in THRESHOLD_GRID if v >= floor[j]):
                trial = limits.copy()
                trial[j] = value
                score = mean_fixed(runner, probs, trial)
                if score > best + 1e-9:
                    best, best_value = score, value
            limits[j] = best_value
    return {t: float(v) for t, v in zip(runner.types, limits, strict=True)}


def agent_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME`` or ``NAME:KEY=VALUE[,KEY=VALUE...]`` -> the agent and its typed options.

    A list value keeps its commas: a piece without ``=`` continues the value before it
    (``fixed:learned=dehazing,defocus_deblurring,params=tuned``).

    Raises:
        ConfigValueError: a malformed option or value (as ``tir bench --agent-arg``).
        UnknownConfigFieldError: an option the agent does not have.
    """
    from benchmarks.commands.bench import parse_agent_args

    name, _, options = spec.partition(":")
    items: list[str] = []
    for piece in options.split(","):
        if items and "=" not in piece:
            items[-1] += f",{piece}"
        elif piece:
            items.append(piece)
    return name, parse_agent_args([f"{name}.{item}" for item in items], [name])[name]


def agent_specs(text: str) -> list[str]:
    """A comma-separated list of agent specs (:func:`agent_spec`) -> the specs.

    A piece that is not a registered agent's name (alone or before ``:``) continues the spec
    before it, so list values keep their commas:
    ``fixed,exhaustive:learned=dehazing,deraining,greedy`` is three specs. An unknown name
    stays in its spec, where building the agent names it (with a did-you-mean).
    """
    from agents.base import agent_names

    names = set(agent_names())
    specs: list[str] = []
    for piece in text.split(","):
        if specs and piece.partition(":")[0] not in names:
            specs[-1] += f",{piece}"
        else:
            specs.append(piece)
    return specs


def agent_records(
    spec: str,
    episodes: list[tuple[Any, Any]],
    images: str,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """The records of an agent (:func:`agent_spec`) on each episode, PSNR measured.

    It perceives (and scores) with the networks loaded. ``on_episode`` is called with each
    record as its episode ends (a progress bar's tick).
    """
    from benchmarks.evaluate import evaluate

    name, options = agent_spec(spec)
    out: list[dict[str, Any]] = []
    for suite in dict.fromkeys(s for s, _ in episodes):  # suites in order, each env made once
        specs = [spec for s, spec in episodes if s is suite]
        kwargs = {**suite.env_kwargs(images), "metrics": ("psnr",)}
        out += evaluate(
            name, specs, kwargs, suite=suite.name, progress=False, agent_kwargs=options,
            strict=True, sink=on_episode,
        )  # fmt: skip
    return out


def agent_psnr(spec: str, episodes: list[tuple[Any, Any]], images: str) -> list[float]:
    """Output PSNR of an agent (:func:`agent_spec`) on each episode (:func:`agent_records`)."""
    return [r["metrics_output"]["psnr"] for r in agent_records(spec, episodes, images)]


def use_fold_networks(out: Path, variant: str, k: int | None) -> None:
    """Perceive and score with fold ``k``'s networks of ``variant`` (``None``: the shipped)."""
    from tir_env import perception

    if k is None:
        os.environ.pop("TIR_LEARNED_WEIGHTS", None)
    else:
        os.environ["TIR_LEARNED_WEIGHTS"] = str(weights_folder(out, variant, k))
    perception.reload()


class PooledRunner:
    """Several folds' :class:`FixedRunner` as one list of episodes (for :func:`tuned_for_fixed`)."""

    def __init__(self, runners: Sequence[FixedRunner]) -> None:
        self.runners = list(runners)
        self.types = self.runners[0].types
        self.index = [(r, i) for r in self.runners for i in range(len(r.episodes))]

    def psnr(self, i: int, present: tuple[bool, ...]) -> float:
        """Output PSNR of ``fixed`` on pooled episode ``i`` when it perceives ``present``."""
        runner, j = self.index[i]
        return runner.psnr(j, present)


def out_of_fold_runners(
    source: str, out: Path, variant: str, n: int, suites: Sequence[str] = SUITES, clean: int = 0
) -> Iterator[tuple[int, FixedRunner]]:
    """Each fold's :class:`FixedRunner` of its held-out photos, with that fold's networks loaded.

    Work on a runner inside the loop (its network is loaded only until the next fold); the
    shipped networks are back once the loop ends or stops.
    """
    try:
        for k in range(n):
            use_fold_networks(out, variant, k)
            episodes = held_out_episodes(source, k, n, suites, clean)
            yield k, FixedRunner(episodes, f"{source}[{k}/{n}]")
    finally:
        use_fold_networks(out, variant, None)


def nested_sentence(
    lead: str, nested: dict[str, Any], describe: Callable[[dict[str, Any]], str]
) -> str:
    """A report's nested cross-validation line: each fold's choice and gain, then the total.

    Args:
        lead: The line's start, ending inside the parenthesis before the folds.
        nested: ``per_fold`` (each with ``fold``, ``per_episode``) and ``per_episode``.
        describe: What was chosen on a fold, e.g. ``lambda 10``.
    """
    folds = "; ".join(
        f"fold {f['fold']}: {describe(f)}, {f['per_episode']:+.3f}" for f in nested["per_fold"]
    )
    return f"{lead}{folds}): **{nested['per_episode']:+.3f} dB per episode** over `fixed`."


def add_fold_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out``, ``--variant``, ``--folds``, ``--source``: whose fold networks read what."""
    parser.add_argument("--out", type=Path, default=Path("runs/cv"), help="perception_cv's folder")
    parser.add_argument("--variant", default="p40kq", help="the variant whose fold networks read")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--source", default="corpus:train@2", help="photos read out of fold")


def out_of_fold_thresholds(
    source: str,
    out: Path,
    variant: str,
    n: int,
    suites: Sequence[str] = SUITES,
    clean: int = 0,
    lower: bool = False,
) -> dict[str, Any]:
    """Thresholds for the network trained on all of ``source``: tuned for ``fixed``'s PSNR.

    Each photo's episodes are read by the fold network that never saw the photo (out-of-fold
    probabilities, how the final network reads photos it never saw), pooled over the folds,
    and the thresholds tuned per type (:func:`tuned_for_fixed`) for ``fixed``'s mean PSNR: a
    false darkness or haze costs what brightening or dehazing a photo that has none costs, not
    one count of F-beta. ``final`` keeps each type's tuned value only where that change alone
    does not lower the mean (``alone``, dB).

    By default a threshold is only raised, from the final network's F-beta thresholds: every
    suite episode is degraded, so a lower one would be judged without the clean photos where
    its false alarms cost most. With ``clean`` clean crops per photo in the pool (scored at
    most :data:`CLEAN_PSNR_CAP`, so a false alarm there costs what its tool takes away),
    ``lower`` lets the thresholds move both ways, from the shipped ones.
    """
    from tir_env import perception

    runners, probs = [], []
    for _, runner in out_of_fold_runners(source, out, variant, n, suites, clean):
        runners.append(runner)
        probs.append(probabilities(runner))
    pooled, readings = PooledRunner(runners), np.concatenate(probs)
    shipped = perception.record()
    # raising: from the F-beta thresholds (the record keeps them once raised ones ship), so a
    # rerun repeats the tuning; lowering too: from what ships
    chosen = (
        shipped["thresholds"] if lower else shipped.get("f_beta_thresholds", shipped["thresholds"])
    )
    start = {k: float(v) for k, v in chosen.items()}
    tuned = tuned_for_fixed(pooled, readings, start, raise_only=not lower)  # type: ignore[arg-type]

    def mean_of(limits: dict[str, float]) -> float:
        row = np.array([limits[t] for t in pooled.types])
        return mean_fixed(pooled, readings, row)  # type: ignore[arg-type]

    # each type's change on its own: a change that costs alone is not kept (the ascent's
    # joint optimum over 1760 noisy episodes can switch a well-recognised type off)
    before = mean_of(start)
    alone = {t: mean_of({**start, t: tuned[t]}) - before for t in start if tuned[t] != start[t]}
    final = {t: tuned[t] if alone.get(t, -1.0) >= 0.0 else start[t] for t in start}
    return {
        "variant": variant,
        "episodes": len(pooled.index),
        "suites": list(suites),
        "clean_per_photo": clean,
        "clean_psnr_cap": CLEAN_PSNR_CAP if clean else None,
        "lower": lower,
        "start": start,
        "tuned": tuned,
        "alone": alone,
        "final": final,
        "fixed": {"start": before, "tuned": mean_of(tuned), "final": mean_of(final)},
        "by_kind": _by_kind(pooled, readings, {"start": start, "final": final}),
    }


def _by_kind(
    pooled: PooledRunner, readings: np.ndarray, tables: dict[str, dict[str, float]]
) -> dict[str, dict[str, Any]]:
    """``fixed``'s mean PSNR under each threshold table, per suite and on the clean crops."""
    kinds: dict[str, list[int]] = {}
    for i, (runner, j) in enumerate(pooled.index):
        suite, spec = runner.episodes[j]
        kinds.setdefault("clean" if isinstance(spec, CleanEpisode) else suite.name, []).append(i)
    out: dict[str, dict[str, Any]] = {}
    for kind, rows in kinds.items():
        entry: dict[str, Any] = {"episodes": len(rows)}
        for name, limits in tables.items():
            row = np.array([limits[t] for t in pooled.types])
            seen = readings[rows] >= row[None]
            entry[name] = float(
                np.mean(
                    [pooled.psnr(i, tuple(map(bool, s))) for i, s in zip(rows, seen, strict=True)]
                )
            )
        out[kind] = entry
    return out


def evaluate_fold(
    source: str,
    out: Path,
    variants: Sequence[str],
    k: int,
    n: int,
    suites: Sequence[str] = SUITES,
    tune: Sequence[str] = (),
    agents: Sequence[str] = (),
) -> dict:
    """Perceived sets and ``fixed``'s PSNR on fold ``k``'s episodes, per variant.

    A variant in ``tune`` is also scored as ``NAME+tuned``: its thresholds retuned for
    ``fixed`` (:func:`tuned_for_fixed`) on the episodes of the photos it was trained on.
    Each of ``agents`` (perceiving agents such as ``exhaustive``) is run on the episodes with
    each variant's network loaded (not with tuned thresholds).
    """
    import torch

    from tir_env import perception

    torch.set_num_threads(1)
    episodes = held_out_episodes(source, k, n, suites)
    runner = FixedRunner(episodes, f"{source}[{k}/{n}]")
    truth = [tuple(t in spec.degradations for t in runner.types) for _, spec in episodes]
    result: dict[str, Any] = {
        "fold": k,
        "suites": [s.name for s, _ in episodes],
        "truth": [list(t) for t in truth],
        "oracle": [runner.psnr(i, t) for i, t in enumerate(truth)],
    }
    result["input"] = [runner.inputs[i] for i in range(len(episodes))]
    for name in variants:
        use_fold_networks(out, name, k)
        probs = probabilities(runner)
        chosen = {name: perception.thresholds()}
        if name in tune:
            rest = f"{source}[~{k}/{n}]"
            trained_on = FixedRunner(fold_episodes(rest, suites), rest)
            chosen[f"{name}+tuned"] = tuned_for_fixed(
                trained_on, probabilities(trained_on), chosen[name]
            )
        for label, limits in chosen.items():
            seen = probs >= np.array([limits[t] for t in runner.types])[None]
            rows = [tuple(map(bool, row)) for row in seen]
            result[label] = {
                "perceived": [list(r) for r in rows],
                "fixed": [runner.psnr(i, r) for i, r in enumerate(rows)],
                "thresholds": limits,
            }
        result[name]["run"] = {a: agent_psnr(a, episodes, runner.images) for a in agents}
    use_fold_networks(out, variants[0], None)
    return result


def scores(folds: Sequence[dict], name: str) -> dict[str, Any]:
    """One variant's pooled scores over the folds."""
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    truth = np.array([t for f in folds for t in f["truth"]], dtype=bool)
    seen = np.array([s for f in folds for s in f[name]["perceived"]], dtype=bool)
    tp, fp, fn = ((seen & truth).sum(0), (seen & ~truth).sum(0), (~seen & truth).sum(0))
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    suites = [s for f in folds for s in f["suites"]]
    fixed = episode_psnr(folds, name)
    run = {agent: episode_psnr(folds, name, agent) for agent in agents_run(folds, name)}
    return {
        "exact_set": float((seen == truth).all(1).mean()),
        "f1": dict(zip(AGENTICIR_TYPES, f1.round(3).tolist(), strict=True)),
        "fixed": float(fixed.mean()),
        "fixed_by_suite": {s: float(fixed[[x == s for x in suites]].mean()) for s in set(suites)},
        "run": {a: float(v.mean()) for a, v in run.items()},
        "run_by_suite": {
            a: {s: float(v[[x == s for x in suites]].mean()) for s in set(suites)}
            for a, v in run.items()
        },
    }


def agents_run(folds: Sequence[dict], name: str) -> list[str]:
    """The agents run for real (``--agents``) with variant ``name`` on every fold."""
    keys = [set(f[name].get("run", {})) for f in folds]
    return sorted(set.intersection(*keys)) if keys else []


def table(results: dict[str, Any]) -> list[str]:
    """The markdown table of docs/perception.md: each variant's pooled held-out scores."""
    folds, names = results["folds"], results["variants"]
    pooled = {name: scores(folds, name) for name in names}
    inputs = np.array([x for f in folds for x in f["input"]])
    oracle = np.array([x for f in folds for x in f["oracle"]])
    suites = [s for f in folds for s in f["suites"]]
    lines = [f"| | {' | '.join(names)} |", "|---|" + "---:|" * len(names)]
    lines.append(
        "| exact-set rate | " + " | ".join(f"{pooled[n]['exact_set']:.3f}" for n in names) + " |"
    )
    for t in pooled[names[0]]["f1"]:
        lines.append(
            f"| F1, {t} | " + " | ".join(f"{pooled[n]['f1'][t]:.2f}" for n in names) + " |"
        )
    for s in [name for name in SUITES if name in suites]:
        mask = np.array([x == s for x in suites])
        ref = f"input {inputs[mask].mean():.2f}, oracle {oracle[mask].mean():.2f}"
        cells = " | ".join(f"{pooled[n]['fixed_by_suite'][s]:.2f}" for n in names)
        lines.append(f"| `fixed` PSNR, {s} ({ref}) | {cells} |")
    lines.append(
        f"| `fixed` PSNR, all {len(suites)} episodes | "
        + " | ".join(f"{pooled[n]['fixed']:.2f}" for n in names)
        + " |"
    )
    for agent in sorted(set.intersection(*(set(pooled[n]["run"]) for n in names))):
        for s in [name for name in SUITES if name in suites]:
            cells = " | ".join(f"{pooled[n]['run_by_suite'][agent][s]:.2f}" for n in names)
            lines.append(f"| `{agent}` (run) PSNR, {s} | {cells} |")
        cells = " | ".join(f"{pooled[n]['run'][agent]:.2f}" for n in names)
        lines.append(f"| `{agent}` (run) PSNR, all {len(suites)} episodes | {cells} |")
    return lines


def episode_psnr(folds: Sequence[dict], name: str, agent: str = "fixed") -> np.ndarray:
    """Per-episode output PSNR of an agent with variant ``name``, pooled over the folds.

    ``fixed`` is the simulated one; any other agent is one run with ``--agents``.
    """
    return np.array(
        [
            x
            for f in folds
            for x in (f[name]["fixed"] if agent == "fixed" else f[name]["run"][agent])
        ]
    )


def paired_difference(
    results: dict[str, Any], a: str, b: str, agent: str = "fixed"
) -> tuple[float, float]:
    """Mean and standard error of ``agent``'s per-episode PSNR, variant ``b`` minus ``a``."""
    diff = episode_psnr(results["folds"], b, agent) - episode_psnr(results["folds"], a, agent)
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


def _episodes_of(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What makes two result files comparable: their folds, suites and true degradations."""
    return [(f["fold"], f["suites"], f["truth"]) for f in result["folds"]]


def agents_table(paths: Sequence[Path], variant: str = "p40kq") -> list[str]:
    """Markdown table of every agent run with ``variant`` in result files of the same folds.

    One row per agent spec (the first file that ran it counts), one column per suite, the
    pooled mean, and the paired difference to the simulated ``fixed`` on the same episodes
    (mean and standard error: the search agents differ from ``fixed`` on a minority of
    episodes, so a paired difference is far more precise than the means' gap suggests).

    Raises:
        ValueError: a file holds other folds or episodes than the first.
    """
    runs = [json.loads(Path(p).read_text()) for p in paths]
    folds = runs[0]["folds"]
    agents: dict[str, np.ndarray] = {}
    for result in runs:
        if _episodes_of(result) != _episodes_of(runs[0]):
            raise ValueError("the result files hold other folds or episodes")
        for agent in agents_run(result["folds"], variant):
            agents.setdefault(agent, episode_psnr(result["folds"], variant, agent))
    suites = np.array([s for f in folds for s in f["suites"]])
    names = [name for name in SUITES if name in set(suites)]
    fixed = episode_psnr(folds, variant)
    lines = [
        "| agent | " + " | ".join(names) + f" | all {len(suites)} | minus `fixed` (se) |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for agent, psnr in [("fixed", fixed), *agents.items()]:
        cells = [f"{psnr[suites == s].mean():.2f}" for s in names] + [f"{psnr.mean():.2f}"]
        diff = psnr - fixed
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        cells.append("-" if agent == "fixed" else f"{diff.mean():+.3f} ({se:.3f})")
        lines.append(f"| `{agent}` | " + " | ".join(cells) + " |")
    return lines


def merged(paths: Sequence[Path]) -> dict[str, Any]:
    """Several result files of the same folds and episodes as one (variants side by side).

    Raises:
        ValueError: the files hold other folds or other episodes.
    """
    runs = [json.loads(Path(p).read_text()) for p in paths]
    first = runs[0]
    out = {**first, "variants": list(first["variants"]), "folds": [dict(f) for f in first["folds"]]}
    out["command"] = " ; ".join(r["command"] for r in runs)
    for other in runs[1:]:
        if _episodes_of(other) != _episodes_of(first):
            raise ValueError("the result files hold other folds or episodes; they do not merge")
        for fold, theirs in zip(out["folds"], other["folds"], strict=True):
            fold.update({n: theirs[n] for n in other["variants"]})
        out["variants"] += [n for n in other["variants"] if n not in out["variants"]]
    return out


def parse_variants(items: Sequence[str]) -> dict[str, str]:
    """``NAME=ARGS`` pairs (ARGS: extra ``train_perception`` options) as a dict."""
    out = {}
    for item in items:
        name, sep, extra = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"--variant wants NAME=ARGS (NAME a word), got {item!r}")
        out[name] = extra
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Train every variant on every fold, score the held-out folds, write the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--variant", action="append", default=[], help="NAME=TRAIN_ARGS")
    parser.add_argument("--source", default="corpus:train@2", help="photos to cross-validate")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2, help="folds trained at once")
    parser.add_argument("--out", type=Path, default=Path("runs/perception_cv"))
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--suites", nargs="+", default=list(SUITES), choices=SUITES + EXTRA_SUITES)
    parser.add_argument(
        "--clean",
        type=int,
        default=0,
        metavar="N",
        help="with --oof-thresholds: also N clean crops per photo (false alarms priced)",
    )
    parser.add_argument(
        "--lower",
        action="store_true",
        help="with --oof-thresholds: thresholds may also fall (give --clean too)",
    )
    parser.add_argument(
        "--tune-fixed",
        nargs="*",
        default=[],
        metavar="NAME",
        help="also score these variants with thresholds tuned for fixed on their train photos",
    )
    parser.add_argument(
        "--agents",
        nargs="*",
        default=[],
        metavar="AGENT",
        help="also run these perceiving agents with each variant: NAME or "
        "NAME:KEY=VALUE[,KEY=VALUE] (e.g. exhaustive greedy exhaustive:guard=none)",
    )
    parser.add_argument(
        "--oof-thresholds",
        metavar="NAME",
        help="only tune the shipped network's thresholds for fixed on out-of-fold readings by "
        "variant NAME's fold networks (already trained); write them to --json",
    )
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m benchmarks.perception_cv", *map(shlex.quote, given)])
    if args.oof_thresholds:
        import torch

        torch.set_num_threads(1)
        if args.lower and args.clean <= 0:
            parser.error("--lower needs --clean N: lower thresholds must pay for false alarms")
        result = out_of_fold_thresholds(
            args.source,
            args.out,
            args.oof_thresholds,
            args.folds,
            args.suites,
            args.clean,
            args.lower,
        )
        result["command"] = command
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
        return
    if not args.report_only:
        for spec in args.agents:
            agent_spec(spec)  # a bad name or option: an error now, not after the training
        variants = parse_variants(args.variant or ["base="])
        n = args.folds
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            jobs = [
                pool.submit(train_fold, args.source, args.out, variants, k, n) for k in range(n)
            ]
            for job in jobs:
                job.result()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            evaluations = [
                pool.submit(
                    evaluate_fold,
                    args.source,
                    args.out,
                    list(variants),
                    k,
                    n,
                    args.suites,
                    args.tune_fixed,
                    args.agents,
                )
                for k in range(n)
            ]
            folds = [job.result() for job in evaluations]
        results = {
            "command": command,
            "source": args.source,
            "variants": [*variants, *(f"{name}+tuned" for name in args.tune_fixed)],
            "folds": folds,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results) + "\n")
    results = json.loads(args.json.read_text())
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
