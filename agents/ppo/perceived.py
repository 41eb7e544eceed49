"""Perception v2's readings as part of the PPO policy's observation (``--perceived``).

The policy's own CNN names the degradations with a small head pretrained on a few thousand
patches; perception v2 (:mod:`tir_env.perception`), trained on the photo corpus, reads them
far better (on val crops of the training combinations: mean per-type F1 0.71 against 0.48 for
the cloned policy's head, JPEG 0.97 against 0.23; docs/agents.md). With ``--perceived`` the
observation gains a ``perceived`` vector: perception v2's presence probabilities and
severities (8 + 8) of the current image and of the input, which the features extractor
appends to its own features. The network is frozen and its readings are computed once per
image (cached by content), so neither PPO's minibatch passes nor the input, which is the same
at every step of an episode, pay for it again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

#: Observation key of the readings.
KEY = "perceived"
#: Readings per image: presence probability and severity of each AgenticIR type.
PER_IMAGE = 16
#: Width of the observation vector: the current image's readings, then the input's.
WIDTH = 2 * PER_IMAGE
#: ``perceived`` name of the privileged diagnostic (``tir train ppo --perceived-truth``): the
#: episode's true degradation types instead of perception's readings. A policy trained on it
#: needs the reference's labels, so it is a diagnostic (how much of the gap to ``oracle`` is
#: perception), not an agent for users' photos.
TRUTH = "truth"
#: Most images whose readings are kept (a few episodes' worth per env; 64 bytes each).
CACHE_SIZE = 16384

_cache: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
_lock = threading.Lock()


def network(enabled: bool, truth: bool = False) -> str | None:
    """The perception network a ``--perceived`` run reads (the shipped one), or ``None``.

    ``truth``: :data:`TRUTH`, the privileged diagnostic's true labels.
    """
    from tir_env.perception import WEIGHTS_NAME

    if truth:
        return TRUTH
    return WEIGHTS_NAME if enabled else None


def space() -> spaces.Box:
    """The ``perceived`` entry of the policy's observation space."""
    return spaces.Box(0.0, 1.0, shape=(WIDTH,), dtype=np.float32)


def readings(images: np.ndarray, network: str) -> np.ndarray:
    """Perception ``network``'s presence and severity of each uint8 N x 3 x S x S image.

    Returns:
        float32 N x :data:`PER_IMAGE`: the 8 presence probabilities, then the 8 severities,
        each in ``AGENTICIR_TYPES`` order.

    Raises:
        WeightsNotFoundError: the perception weights are missing.
    """
    keys = [(network, hashlib.sha1(np.ascontiguousarray(x).tobytes()).digest()) for x in images]
    with _lock:
        found = {k: _cache[k] for k in keys if k in _cache}
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        computed = _compute(images[missing], network)
        found |= _remember([keys[i] for i in missing], list(computed))
    return np.stack([found[k] for k in keys]) if keys else np.zeros((0, PER_IMAGE), np.float32)


def photo_readings(image: np.ndarray, network: str, size: tuple[int, int]) -> np.ndarray:
    """:func:`readings` of one uint8 HWC image of any size, read at its native resolution.

    What a policy that sees a whole photo resized to its observation should read instead of
    the resized view (which erases noise, JPEG blocks and low resolution): perception's
    tiles at native resolution (:func:`tir_env.perception.perceive_photo`), a low-resolution
    image seen at ``size``, the size it should have. Cached by content and size.

    Returns:
        float32 :data:`PER_IMAGE`.
    """
    from tir_env.images import u8_to_batch
    from tir_env.perception import prepare

    digest = hashlib.sha1(np.ascontiguousarray(image).tobytes())
    digest.update(np.asarray([*image.shape, *size], np.int64).tobytes())
    key = (f"{network}@photo", digest.digest())
    with _lock:
        if key in _cache:
            return _cache[key]
    row = _readings_of(prepare(u8_to_batch(image), (int(size[0]), int(size[1]))), network)[0]
    return _remember([key], [row])[key]


def _remember(
    keys: Sequence[tuple[str, bytes]], rows: Sequence[np.ndarray]
) -> dict[tuple[str, bytes], np.ndarray]:
    """Cache ``rows`` under ``keys`` (the oldest entries go past :data:`CACHE_SIZE`)."""
    with _lock:
        for key, row in zip(keys, rows, strict=True):
            _cache[key] = row
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return dict(zip(keys, rows, strict=True))


def observation(image: np.ndarray, source: np.ndarray, network: str) -> np.ndarray:
    """The ``perceived`` vectors (N x :data:`WIDTH`) of current images and their inputs."""
    return np.concatenate([readings(image, network), readings(source, network)], axis=1)


def observations(
    image: np.ndarray, source: np.ndarray, network: str, truths: Sequence[Sequence[str]]
) -> np.ndarray:
    """The ``perceived`` vectors of N states: :func:`observation`, or the true types' rows.

    ``truths``: each state's true degradation types, read only for :data:`TRUTH` (the
    privileged diagnostic, :func:`truth_observation`).
    """
    if network == TRUTH:
        rows = [truth_observation(names) for names in truths]
        return np.stack(rows) if rows else np.zeros((0, WIDTH), np.float32)
    return observation(image, source, network)


def _compute(images: np.ndarray, network: str) -> np.ndarray:
    from tir_env.perception import prepare

    batch = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
    return _readings_of(prepare(batch), network)


def _readings_of(prepared: torch.Tensor, network: str) -> np.ndarray:
    """Presence and severity (N x :data:`PER_IMAGE`) of images :func:`prepare` made."""
    from tir_env.perception import PRESENCE, SEVERITY, raw_outputs

    outputs = raw_outputs(prepared, network)
    probs = torch.sigmoid(torch.cat([outputs[:, PRESENCE], outputs[:, SEVERITY]], dim=1))
    return probs.numpy().astype(np.float32)


def clear_cache() -> None:
    """Forget every cached reading (after the perception weights changed on disk)."""
    with _lock:
        _cache.clear()


def true_types(env: Any) -> tuple[str, ...]:
    """The degradations applied to (or labelling) ``env``'s episode input, in order.

    Read from the env's own record of the episode (what its ``info["degradations"]``
    reports); a diagnostic's privilege, never an agent's input on users' photos.
    """
    return tuple(name for name, _ in getattr(env, "_applied", ()))


def truth_observation(names: Sequence[str]) -> np.ndarray:
    """The ``perceived`` vector (:data:`WIDTH`) of a privileged policy: the true types.

    Presence 1 for each type in ``names`` (severities 0), for the current image and the
    input alike: the policy's action history says what it has already removed. A type of
    another protocol (RL-Restore's ``gaussian_noise``, ...) sets the AgenticIR type its
    tools remove (the same task: ``noise``).

    Raises:
        ValueError: a name that is no degradation, or whose task no AgenticIR type shares.
    """
    from tir_env.perception import AGENTICIR_TYPES

    present = {_agenticir_type(name, AGENTICIR_TYPES) for name in names}
    row = np.zeros(PER_IMAGE, np.float32)
    row[: len(AGENTICIR_TYPES)] = [t in present for t in AGENTICIR_TYPES]
    return np.concatenate([row, row])


def _agenticir_type(name: str, types: Sequence[str]) -> str:
    """``name``, or the AgenticIR type that shares its task (see :func:`truth_observation`)."""
    from tir_env.degradations import degradation_names, make_degradation

    if name in types:
        return name
    if name in degradation_names():
        task = make_degradation(name).info.task
        for kind in types:
            if make_degradation(kind).info.task == task:
                return kind
    raise ValueError(f"not an AgenticIR degradation type, nor one of its tasks: {name!r}")
