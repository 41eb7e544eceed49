"""A learned judge of darkness and haze: run the plan both ways, look at both, decide.

Perception confuses a darkened or hazed crop with one that is dark or misty by nature (its
weakest types, docs/perception.md), and the cost of a wrong call is large either way: adding a
missed darkness gains about 5 dB, brightening a photo that was not darkened loses about 7, and
a false dehazing 12 (``benchmarks.near_miss``, "Near misses" in docs/agents.md). ``tirqa``
cannot tell these cases apart (its change correlates 0.03 with the gain for darkness). The
judge looks at the results instead: for a type read at :data:`FLOOR` of its threshold or more,
the prior plan runs once with the type and once without, and a ridge regression per type
predicts the PSNR the type's task gains from plain statistics of the input and of both outputs
(:func:`image_cues`: clipped highlights and shadows, brightness, the darkest channel,
saturation, contrast: a dehazed clear photo turns dark and garish, a brightened bright one
burns out); the type is planned when the prediction is positive.

The statistics read no network, so the judge can be fitted on the corpus' train photos with
the shipped perception choosing what to probe (``python -m benchmarks.train_judge``): the
first judge read perception's own outputs, which are overconfident on the photos perception
was trained on and had to be fitted on cross-validation folds. Over 1,600 val episodes the
first judge lifted ``exhaustive`` by +0.11 dB an episode (se 0.09), this one by +0.32 (se 0.07)
on 1,600 others (docs/agents.md, "The judge reads the results").

A whole photo (restored side above :data:`MAX_SIDE`) is judged on a :func:`proxy` of it, 256 px
on the long side once restored, by a second judge fitted on such proxies of the train photos'
whole-photo episodes (``train_judge --whole``, :data:`WHOLE_WEIGHTS_FILE`): a whole frame's
statistics say more than a crop's (a darkened photo seldom reaches white anywhere), and over
160 val episodes at full resolution it lifted ``exhaustive`` by +0.81 dB (se 0.27)
(docs/agents.md, "Whole photos: the judge on a proxy").

The search agents use it with ``judge=true`` (:class:`agents.search.SearchOptions`;
``judge_whole=false`` leaves whole photos to perception's thresholds).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from tir_env.errors import CheckpointError, WeightsNotFoundError

#: The types the judge decides (the others keep perception's threshold).
JUDGED: tuple[str, ...] = ("dark", "haze")
#: What the whole-photo judge adds nowhere beside the types an agent's
#: ``whole_adds_blocked_by`` option names (docs/agents.md, "Brightening beside rain").
WHOLE_BLOCKED_ADDS: tuple[str, ...] = ("dark",)


def unjudged(types: Iterable[str]) -> list[str]:
    """The types of ``types`` the judge does not decide, sorted (what an option must refuse)."""
    return sorted(set(types) - set(JUDGED))


def not_degradations(types: Iterable[str]) -> list[str]:
    """The names of ``types`` that are no AgenticIR degradation type (an option must refuse)."""
    from tir_env.degradations.protocols import AGENTICIR_TYPES

    return [t for t in types if t not in AGENTICIR_TYPES]


def whole_blocked_by(env: Any, blocked_by: Iterable[str], rain_on_top: bool) -> tuple[str, ...]:
    """The types beside which the whole-photo judge adds none of :data:`WHOLE_BLOCKED_ADDS`.

    ``blocked_by`` (an agent's option), and with ``rain_on_top`` also ``rain`` where the photo
    perception reads looks rained on and not darkened after
    (:func:`tir_env.streaks.rain_on_top`): the judge read rainy photos as ones to brighten,
    while beside the protocol's rain then darkness its brightening is right (docs/agents.md,
    "Brightening beside rain").
    """
    blocked = tuple(blocked_by)
    if not rain_on_top or "rain" in blocked:
        return blocked
    from tir_env import streaks

    photo, _ = env.perception_input()
    return (*blocked, "rain") if streaks.rain_on_top(photo) else blocked


#: A type is judged when its reading is at least this share of its threshold (the default;
#: a weights file carries the floor it was fitted with, :func:`load_floor`).
FLOOR = 0.3
#: The fitted judge (committed; ``python -m benchmarks.train_judge`` writes it).
WEIGHTS_FILE = Path(__file__).with_name("judge_weights.json")
#: The judge of whole photos, fitted on proxies of them (``train_judge --whole``).
WHOLE_WEIGHTS_FILE = Path(__file__).with_name("judge_whole_weights.json")
#: Largest side (at the restored size) the crop judge decides on, as it was fitted on 128 px
#: crops; a larger image is a whole photo, judged on a proxy by the whole-photo judge.
MAX_SIDE = 256
#: Long side (at the restored size) of a whole photo's proxy: darkening and haze act on the
#: whole frame, so a downscaled copy shows them, and the plans run ahead in milliseconds.
PROXY_SIDE = 256
#: Statistics per image (:func:`image_cues`): ten of tone and colour, then two of texture.
CUE_SIZE = 12
#: What the judge reads per probe (:func:`features`).
FEATURE_SIZE = 3 * CUE_SIZE + 1
#: The feature set new weights are fitted on.
FEATURES = "cues-v3"
#: How many of :func:`image_cues` (the first ones) each feature set reads: ``cues-v2``, the
#: tone and colour statistics alone, is what the judges fitted before the texture cues read.
CUE_SETS = {"cues-v2": 10, "cues-v3": 12}
#: How far (standard deviations of the rows it was fitted on) a probe's features may lie from
#: their mean before the judge abstains and perception's call stands. A linear fit
#: extrapolates: on a bright held-out photo (a fifth of it burnt out, 25 sd above the fitted
#: rows) the whole-photo judge predicted +21 dB for brightening and cost 9. Chosen on val
#: probes (``python -m benchmarks.judge_range``, rule 81a0e57): whole photos +0.188 -> +0.348
#: dB per episode over perception's calls, crops +0.396 -> +0.393.
RANGE_Z = 8.0


def image_cues(image: torch.Tensor) -> np.ndarray:
    """Twelve statistics of a 1x3xHxW image in [0, 1] that show a wrong brightening or dehazing.

    With V = max(R, G, B) and m = min(R, G, B): the share of burnt-out (V >= 0.995) and of
    black (V <= 0.005) pixels, the mean and the 99th and 1st percentiles of V, the mean of m
    (the dark channel at one pixel), the mean and 90th percentile of the saturation
    (V - m) / V, the grey level's standard deviation and the share of white pixels
    (m >= 0.995); then the texture (:func:`texture_cues`), which a brightening or a dehazing
    multiplies with the rest: where a crop's fine texture is noise, the call that amplifies it
    shows it.
    """
    x = image[0].detach().float().clamp(0.0, 1.0).cpu()
    v, m = x.amax(dim=0), x.amin(dim=0)
    saturation = (v - m) / (v + 1e-3)
    return np.array(
        [
            float((v >= 0.995).float().mean()),
            float((v <= 0.005).float().mean()),
            float(v.mean()),
            float(v.flatten().quantile(0.99)),
            float(v.flatten().quantile(0.01)),
            float(m.mean()),
            float(saturation.mean()),
            float(x.mean(dim=0).std(correction=0)),
            float((m >= 0.995).float().mean()),
            float(saturation.flatten().quantile(0.9)),
            *texture_cues(x.mean(dim=0)),
        ]
    )


def texture_cues(grey: torch.Tensor) -> tuple[float, float]:
    """The fine texture of an HxW grey image: a robust noise level and the mean gradient.

    The noise level is the median absolute deviation of the residual after a 3x3 box
    smoothing (scaled to a standard deviation for Gaussian noise; edges, a minority of the
    pixels, barely move the median), the gradient the mean absolute difference of
    neighbouring pixels (edges and noise together).
    """
    if min(grey.shape) < 3:
        return 0.0, 0.0
    box = torch.nn.functional.avg_pool2d(grey[None, None], 3, stride=1)[0, 0]
    residual = grey[1:-1, 1:-1] - box
    noise = min(1.0, float((residual - residual.median()).abs().median()) / 0.6745)
    gradient = 0.5 * (
        float((grey[1:] - grey[:-1]).abs().mean())
        + float((grey[:, 1:] - grey[:, :-1]).abs().mean())
    )
    return noise, gradient


def feature_columns(feature_set: str) -> np.ndarray | None:
    """Which of :func:`features` a judge of ``feature_set`` reads (``None``: all of them)."""
    n = CUE_SETS[feature_set]
    if n == CUE_SIZE:
        return None
    blocks = [np.arange(n) + k * CUE_SIZE for k in range(3)]  # each block's first n cues
    return np.concatenate([*blocks, [3 * CUE_SIZE]])  # and the reading's ratio


def features(
    before: np.ndarray, with_type: np.ndarray, without_type: np.ndarray, ratio: float
) -> np.ndarray:
    """What the judge reads (31 numbers).

    The input's :func:`image_cues`, how the two outputs' cues differ, the cues of the output
    with the type, and the type's reading as a share of its threshold.
    """
    return np.concatenate([before, with_type - without_type, with_type, [ratio]])


def plan_output(
    env: Any,
    image: torch.Tensor,
    types: Sequence[str],
    params: str,
    learned: Sequence[str] = (),
) -> tuple[torch.Tensor, int]:
    """``image`` after the prior plan of ``types``, and how many tool calls that ran.

    The calls run ahead through ``env``'s pool (:meth:`~tir_env.env.TIREnv.lookahead`). A call
    that fails leaves the image as it was (the env would report it and go on). ``learned``:
    tasks whose learned tool the plan calls where the env offers it
    (:func:`agents.baselines.plan_tool`).
    """
    from agents.baselines import prior_plan
    from tir_env.degradations import make_degradation

    tasks = [make_degradation(t).info.task for t in types]
    calls = prior_plan(tasks, env.tools, env.config.max_steps, params, learned)  # type: ignore[arg-type]
    for call in calls:
        out = env.lookahead(image, [call])[0]
        image = image if out is None else out
    return image, len(calls)


@dataclass(frozen=True)
class TypeModel:
    """One type's ridge regression on standardised :func:`features`."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    #: The columns of :func:`features` it was fitted on (:func:`feature_columns`; ``None``: all).
    columns: np.ndarray | None = None

    def standardised(self, x: np.ndarray) -> np.ndarray:
        """``x`` as the model reads it: its own columns, standardised."""
        own = x if self.columns is None else np.asarray(x)[..., self.columns]
        return (own - self.mean) / self.scale

    def gain(self, x: np.ndarray) -> float:
        """Predicted PSNR gain (dB) of planning the type."""
        return float(self.standardised(x) @ self.weights + self.bias)

    def reach(self, x: np.ndarray) -> float:
        """How far ``x`` lies from the fitted rows: its largest standardised feature, in sd."""
        return float(np.abs(self.standardised(x)).max())


def fit(x: np.ndarray, gain: np.ndarray, lam: float, weight: np.ndarray | None = None) -> TypeModel:
    """Ridge regression of ``gain`` on standardised ``x`` (the bias is not penalised).

    ``weight``: each row's weight (default: all 1), as if the row were repeated that often.

    Raises:
        ValueError: the weights are negative, not finite or all zero (nothing to fit on).
    """
    w_row = np.ones(len(gain)) if weight is None else np.asarray(weight, dtype=float)
    if not (np.isfinite(w_row).all() and (w_row >= 0).all() and w_row.sum() > 0):
        raise ValueError("the judge needs finite row weights >= 0, not all zero")
    share = w_row / w_row.sum()
    mean = share @ x
    scale = np.sqrt(share @ (x - mean) ** 2) + 1e-6
    z = (x - mean) / scale
    centre = float(share @ gain)
    zw = z * w_row[:, None]
    w = np.linalg.solve(zw.T @ z + lam * np.eye(z.shape[1]), zw.T @ (gain - centre))
    return TypeModel(mean, scale, w, centre)


@functools.cache
def load(path: Path = WEIGHTS_FILE) -> Mapping[str, TypeModel]:
    """The fitted judge, per type.

    Raises:
        WeightsNotFoundError: the file is missing.
        CheckpointError: it is unreadable or malformed.
    """
    fix = "rerun `python -m benchmarks.train_judge`"
    if not path.is_file():
        raise WeightsNotFoundError(f"judge weights not found: {path}; {fix}")
    try:
        raw = json.loads(path.read_text())
        feature_set = raw.get("features")
        if feature_set not in CUE_SETS:
            raise CheckpointError(
                f"judge weights {path} were fitted on features {feature_set!r}, not one of "
                f"{', '.join(CUE_SETS)}; {fix}"
            )
        columns = feature_columns(feature_set)
        models = {
            t: TypeModel(
                np.asarray(m["mean"], dtype=float),
                np.asarray(m["scale"], dtype=float),
                np.asarray(m["weights"], dtype=float),
                float(m["bias"]),
                columns,
            )
            for t, m in raw["types"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"judge weights {path} are unreadable ({exc}); {fix}") from exc
    width = FEATURE_SIZE if columns is None else len(columns)
    for t, m in models.items():
        shapes = {m.mean.shape, m.scale.shape, m.weights.shape}
        if shapes != {(width,)} or not all(np.isfinite(v).all() for v in (m.mean, m.weights)):
            raise CheckpointError(f"judge weights {path}: {t} is malformed; {fix}")
        if not math.isfinite(m.bias) or (m.scale <= 0).any():
            raise CheckpointError(f"judge weights {path}: {t} is malformed; {fix}")
    return models


def _saved_number(path: Path, key: str, default: float, valid: Any, wanted: str) -> float:
    """The number ``key`` of the weights file at ``path`` (``default`` if unsaid).

    Raises:
        CheckpointError: the file is unreadable, or the value is not a number ``valid``
            accepts (``wanted`` says which).
    """
    try:
        value = json.loads(path.read_text()).get(key, default)
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"judge weights {path} are unreadable ({exc})") from exc
    bad = CheckpointError(f"judge weights {path}: {key} {value!r:.40} is not {wanted}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad
    try:  # an integer too large for a float overflows
        number = float(value)
    except OverflowError as exc:
        raise bad from exc
    if not valid(number):
        raise bad
    return number


@functools.cache
def load_floor(path: Path = WEIGHTS_FILE) -> float:
    """The floor (:data:`FLOOR`) the judge at ``path`` was fitted with; :data:`FLOOR` if unsaid.

    Raises:
        CheckpointError: the file is unreadable or its floor is not a number in (0, 1].
    """
    return _saved_number(path, "floor", FLOOR, lambda f: 0 < f <= 1, "in (0, 1]")


@functools.cache
def load_margin(path: Path = WEIGHTS_FILE) -> float:
    """The margin (dB) chosen with the judge at ``path`` (``train_judge --margins``); 0 if unsaid.

    Raises:
        CheckpointError: the file is unreadable or its margin is not a finite number >= 0.
    """
    return _saved_number(
        path, "margin", 0.0, lambda m: math.isfinite(m) and m >= 0, "a number >= 0"
    )


@functools.cache
def load_learned(path: Path = WEIGHTS_FILE) -> tuple[str, ...]:
    """The tasks whose learned tool the judge at ``path`` was fitted probing with (its plan's).

    A judge predicts the gain of the plan it was fitted on, so its probes run that plan;
    files without the key were fitted on the classical plan: ``()``.

    Raises:
        CheckpointError: the file is unreadable, or ``learned`` is not a list of tasks.
    """
    from agents.baselines import TASKS

    try:
        value = json.loads(path.read_text()).get("learned", [])
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"judge weights {path} are unreadable ({exc})") from exc
    if not isinstance(value, list) or not all(isinstance(t, str) and t in TASKS for t in value):
        raise CheckpointError(
            f"judge weights {path}: learned {value!r:.60} is not a list of tasks "
            f"({', '.join(TASKS)})"
        )
    return tuple(value)


def shipped_learned() -> tuple[str, ...]:
    """The tasks whose learned tool the shipped judges' probes call (crop, then whole photo).

    Raises:
        CheckpointError: a shipped judge's weights are unreadable.
    """
    found = [*load_learned(WEIGHTS_FILE), *load_learned(WHOLE_WEIGHTS_FILE)]
    return tuple(dict.fromkeys(found))


def save(path: Path, models: Mapping[str, TypeModel], meta: Mapping[str, Any]) -> None:
    """Write the judge (and what made it) as JSON."""
    types = {
        t: {
            "mean": m.mean.tolist(),
            "scale": m.scale.tolist(),
            "weights": m.weights.tolist(),
            "bias": m.bias,
        }
        for t, m in models.items()
    }
    widths = {len(m.mean) for m in models.values()}  # a judge loaded from an older set keeps it
    feature_set = next((n for n, k in CUE_SETS.items() if {3 * k + 1} == widths), FEATURES)
    meta = {**meta, "features": feature_set, "types": types}
    path.write_text(json.dumps(meta, indent=1) + "\n")


@dataclass(frozen=True)
class Probe:
    """One judged type of an input.

    Attributes:
        type: The degradation type.
        ratio: Its reading as a share of its threshold.
        x: The judge's :func:`features`.
        with_type: The prior plan's output with the type.
        without_type: The same without it.
        beside: Whether another type perception saw at its record's threshold stands beside
            it (:func:`read_at_record`): with ``alone=False`` the judge adds it only there.
    """

    type: str
    ratio: float
    x: np.ndarray
    with_type: torch.Tensor
    without_type: torch.Tensor
    beside: bool = True


def is_whole(env: Any) -> bool:
    """Whether ``env``'s input is a whole photo (restored size above :data:`MAX_SIDE`)."""
    return max(env.target_size() or env.current_batch().shape[-2:]) > MAX_SIDE


def proxy(image: torch.Tensor, restored_side: int) -> torch.Tensor:
    """``image`` downscaled so that, restored, its long side is :data:`PROXY_SIDE`.

    ``restored_side`` is the long side the image will have once restored (4x a
    low-resolution input's), so a low-resolution photo's proxy grows to the same size as
    any other's under the plan's super-resolution.
    """
    from tir_env.images import resize

    scale = min(1.0, PROXY_SIDE / restored_side)
    h, w = image.shape[-2:]
    return resize(image, (max(8, round(h * scale)), max(8, round(w * scale))))


def judged_image(env: Any) -> torch.Tensor:
    """What the judge's plans run on: the working image, or a :func:`proxy` of a whole photo.

    ``tir restore`` plans a photo larger than one episode on its centre crop and gives the env
    the whole photo, which perception reads (:meth:`perception_input`). The proxy is of that
    photo too, not of the crop: darkness and haze belong to the whole frame, and the
    whole-photo judge was fitted on proxies of whole frames. A camera's photo is several times
    the crop's side, so its crop is a zoomed-in part whose statistics the judge never saw (on
    a 6028 px photo with sigma-20 noise it added a brightening that cost 2 dB).
    """
    from tir_env.images import u8_to_batch

    image = env.current_batch()
    if not is_whole(env):
        return image
    photo, size = env.perception_input()
    if photo.shape == env.input_image().shape:  # no photo given: the input is the frame
        return proxy(image, max(env.target_size() or image.shape[-2:]))
    frame = u8_to_batch(photo).to(image.device)
    return proxy(frame, max(size or photo.shape[:2]))


def read_at_record(seen: Any, present: Sequence[str]) -> list[str]:
    """The types of ``present`` that ``seen`` reads at the record's thresholds too.

    A whole photo reads noise at a lower threshold than a crop
    (:data:`tir_env.perception.WHOLE_NOISE_THRESHOLD`). A type seen only at that lower threshold
    is planned, but a judged type is not added beside it (``alone=False``): that guard was
    chosen with the record's thresholds, and a weak noise reading on a phone's photo unlocked
    a brightening that cost it 11.7 dB (docs/agents.md, "A phone's photo").
    """
    from tir_env import perception

    record = perception.thresholds()
    return [
        t
        for t in present
        if seen.thresholds.get(t, 0.0) >= record.get(t, 0.0) or seen.probs[t] >= record[t]
    ]


def probes(
    env: Any,
    params: str,
    types: Sequence[str] = JUDGED,
    floor: float = FLOOR,
    learned: Sequence[str] = (),
    adds: bool | Collection[str] = True,
    adds_blocked_by: Collection[str] = (),
    blocked_adds: Collection[str] = JUDGED,
) -> tuple[list[str], list[Probe], int]:
    """Perception's types for ``env``'s input, a :class:`Probe` per judged type, tool calls.

    A type of ``types`` read at ``floor`` of its threshold or more is probed: the
    prior plan of the other perceived types (its ``learned`` tasks calling their learned
    tools, :func:`plan_output`), with it and without it; with ``adds=False`` only a type
    perception saw (the judge may only veto it); with a collection of types, a type
    perception saw or one of those (the types the judge may add). ``adds_blocked_by``: where
    perception sees one of these types, a type of ``blocked_adds`` is probed only if perception
    saw it (the judge adds none of them there). On a whole photo (:func:`is_whole`) the plans
    run on its :func:`proxy` (:func:`judged_image`). Each probe says what it may stand beside
    (:attr:`Probe.beside`).
    """
    from tir_env import perception

    photo, size = env.perception_input()  # the whole photo when the input was cut from one
    seen = perception.perceive_photo(photo, size=size)
    # The judged types are read by the network the judge was fitted on (the others by
    # perception's): its readings, as a share of its thresholds, are among the judge's inputs.
    network = perception.judge_network()
    judging, present = seen, list(seen.present)
    if network != perception.WEIGHTS_NAME:
        judging = perception.perceive_photo(photo, size=size, network=network)
        from tir_env.degradations.base import protocol_sorted

        mine = [t for t in judging.present if t in types]
        present = protocol_sorted([*(t for t in present if t not in types), *mine])
    if any(t in present for t in adds_blocked_by):  # a veto of these where a blocker is seen
        allowed = [t for t in types if may_add(adds, t) and t not in blocked_adds]
        adds = allowed if allowed else False
    image = judged_image(env)
    steady = read_at_record(seen, present)  # what an addition may stand beside
    out: list[Probe] = []
    executions = 0
    before: np.ndarray | None = None
    for t in types:
        ratio = judging.probs[t] / judging.thresholds[t]
        if ratio < floor or not (may_add(adds, t) or t in present):  # a veto: only the seen
            continue
        before = image_cues(image) if before is None else before  # only when a type is probed
        others = [p for p in present if p != t]
        with_image, ran_with = plan_output(env, image, [*others, t], params, learned)
        without_image, ran_without = plan_output(env, image, others, params, learned)
        executions += ran_with + ran_without
        x = features(before, image_cues(with_image), image_cues(without_image), ratio)
        beside = any(o != t for o in steady)
        out.append(Probe(t, float(ratio), x, with_image, without_image, beside))
    return present, out, executions


def may_add(adds: bool | Collection[str], type_name: str) -> bool:
    """Whether the judge may add ``type_name`` where perception did not see it (``adds``)."""
    return adds if isinstance(adds, bool) else type_name in adds


def judged_types(
    env: Any, params: str, models: Mapping[str, TypeModel] | None = None, **options: Any
) -> tuple[list[str], int]:
    """The types to plan for ``env``'s input, and the tool calls the probes ran.

    Perception's types, where each probed type (:func:`probes`) is in when its model
    predicts a gain and out otherwise, each decided against the other perceived types; the
    rest keep perception's thresholds. ``options``: those of :func:`judge_rulings` (the
    rulings planned here), but ``abstain``.
    """
    types, _, executions = judged(env, params, models, **options)
    return types, executions


def judged(
    env: Any, params: str, models: Mapping[str, TypeModel] | None = None, **options: Any
) -> tuple[list[str], dict[str, list[str]], int]:
    """:func:`judged_types`, with which types the judge added and dropped (:func:`overruled`)."""
    present, rulings, executions = judge_rulings(env, params, models, **options)
    types = chosen_types(present, rulings)
    return types, overruled(present, types), executions


def chosen_types(present: Sequence[str], rulings: Mapping[str, bool | None]) -> list[str]:
    """Perception's ``present`` types with the judge's ``rulings`` applied, in protocol order.

    A type ruled ``True`` is in, any other ruling out; a type without a ruling keeps
    perception's call.
    """
    from tir_env import perception

    chosen = {t for t in present if t not in rulings} | {t for t, on in rulings.items() if on}
    return [t for t in perception.AGENTICIR_TYPES if t in chosen]


def overruled(present: Sequence[str], chosen: Sequence[str]) -> dict[str, list[str]]:
    """Which types the judge ``added`` to perception's ``present`` and which it ``dropped``."""
    return {
        "added": [t for t in chosen if t not in present],
        "dropped": [t for t in present if t not in chosen],
    }


def judge_rulings(
    env: Any,
    params: str,
    models: Mapping[str, TypeModel] | None = None,
    floor: float | None = None,
    margin: float | None = None,
    alone: bool = True,
    reach: float = RANGE_Z,
    adds: bool | Collection[str] = True,
    learned: Sequence[str] | None = None,
    crop_weights: Path | None = None,
    whole_weights: Path | None = None,
    types: Sequence[str] | None = None,
    abstain: float = 0.0,
    adds_need_kept: bool | Literal["unless-cleared"] = False,
    adds_blocked_by: Collection[str] = (),
    blocked_adds: Collection[str] = JUDGED,
) -> tuple[list[str], dict[str, bool | None], int]:
    """Perception's types, the judge's ruling on each type it judged, the probes' calls.

    A ruling is ``True`` (plan the type), ``False`` (do not) or, with ``abstain`` above 0,
    ``None`` where the judge would rule a type out but predicts it loses no more than
    ``abstain`` dB: too close to call, the caller decides. A type not probed (read under
    the floor) or beyond ``reach`` has no ruling (:func:`judged_types` keeps perception's
    call there).

    With a ``margin`` (dB) the judge overrules perception only when sure: a type perception
    did not see comes in when the predicted gain exceeds it, one it saw goes out when the
    prediction is below minus it. ``None``: the shipped judge's own floor and margin (those
    it was fitted and cross-validated with), or :data:`FLOOR` and 0 for ``models`` given.
    ``adds=False``: the judge only rules out types perception saw (a veto; one it did not
    see is not probed and gets no ruling); a collection of types: it may add only those.
    ``alone=False``: a type perception did not see is never added where perception saw no
    other type (a photo it reads as clean stays as it is; the judge may still drop a type
    perception saw). A probe whose features lie beyond ``reach`` standard deviations of the
    fitted rows (:meth:`TypeModel.reach`) is not judged: perception's call stands, read by
    the judge's network (``perception_judge`` when it ships,
    :func:`tir_env.perception.judge_network`) for the judged types (``math.inf``: judge
    every probe). ``learned``: the tasks whose learned tool the probes' plans call;
    ``None``: the shipped judge's own (:func:`load_learned`), or none for ``models`` given.
    ``crop_weights``: the judge of a crop when ``models`` is ``None`` (``None``:
    :data:`WEIGHTS_FILE`), ``whole_weights`` that of a whole photo (``None``:
    :data:`WHOLE_WEIGHTS_FILE`). ``types``: judge only these of the judged types (``None``:
    every type the weights hold); the others keep perception's call.
    ``adds_need_kept``: a type perception did not see comes in only beside one it saw that
    stays after the rulings (:func:`kept_adds`); ``"unless-cleared"``: unless the judge ruled
    out every type perception saw (an image it clears of what perception read gets nothing
    added in its place; one perception read as clean may). ``adds_blocked_by``: where
    perception sees one of these types the judge adds none of ``blocked_adds``
    (:func:`probes`).
    """
    if models is None:  # the shipped judge probes from the floor it was fitted with
        if is_whole(env):
            path = whole_weights or WHOLE_WEIGHTS_FILE
        else:
            path = crop_weights or WEIGHTS_FILE
        models = load(path)
        floor = load_floor(path) if floor is None else floor
        margin = load_margin(path) if margin is None else margin
        learned = load_learned(path) if learned is None else learned
    if types is not None:
        models = {t: m for t, m in models.items() if t in types}
    floor = FLOOR if floor is None else floor
    learned = () if learned is None else learned
    margin = 0.0 if margin is None else margin
    present, probed, executions = probes(
        env, params, tuple(models), floor, learned, adds, adds_blocked_by, blocked_adds
    )
    rulings: dict[str, bool | None] = {}
    for p in probed:
        if p.type not in models or not models[p.type].reach(p.x) <= reach:  # NaN: not judged
            continue
        gain, seen = models[p.type].gain(p.x), p.type in present
        on = gain > (-margin if seen else margin) and (alone or seen or p.beside)
        rulings[p.type] = None if not on and abstain > 0 and gain >= -abstain else on
    if adds_need_kept:
        rulings = kept_adds(present, rulings, cleared_only=adds_need_kept == "unless-cleared")
    return present, rulings, executions


def need_kept(
    adds_alone: bool | Literal["unless-cleared"], whole: bool
) -> bool | Literal["unless-cleared"]:
    """The judge's ``adds_need_kept`` for a crop judge's ``adds_alone`` option (whole: off)."""
    if whole or adds_alone is True:
        return False
    return "unless-cleared" if adds_alone == "unless-cleared" else True


def kept_adds(
    present: Sequence[str], rulings: Mapping[str, bool | None], cleared_only: bool = False
) -> dict[str, bool | None]:
    """``rulings`` with each added type ruled out unless a type ``present`` stays beside it.

    A type perception saw stays when it has no ruling or is ruled in (:func:`chosen_types`).
    ``cleared_only``: rule additions out only where the judge ruled out every type perception
    saw (an image perception read as clean may still get one).
    """
    stays = any(rulings.get(t, True) is True for t in present) or (cleared_only and not present)
    return {t: on and (t in present or stays) for t, on in rulings.items()}
