"""Adapters of ``TIR-v0`` for learners that need simple spaces (Stable-Baselines3).

SB3 accepts neither Dict actions nor channel-last images smaller than its default CNN expects,
and a policy meant to run without a reference must not see reference-based rewards. These
wrappers fix that, one concern each (compose them, or call :func:`sb3_env`):

* :class:`CatalogueAction`: ``Discrete(1 + C)`` over a fixed catalogue of C tool calls (tool x
  parameter preset); index 0 is STOP.
* :class:`MultiDiscreteAction`: ``MultiDiscrete([T + 1] + [L] * P)``: a tool index (0 = STOP)
  and every normalised parameter on an L-level grid over [0, 1].
* :class:`ClipAction`: clips native parameters into [0, 1] instead of raising.
* :class:`ResizeObservation`: ``image`` and ``input`` resized to S x S, optionally channels
  first (what SB3's image policies expect).
* :class:`ActionHistory`: replaces ``history`` by a one-hot of the previous discrete actions.
  The native history carries each step's reward, which is computed against the clean image;
  this one carries only what the agent did, so a policy trained on it runs without a reference.
* :class:`DropInfoHistory`: leaves the StepRecord list out of ``info`` (SB3 copies infos).

The pure helpers :func:`policy_image`, :func:`action_history` and :func:`catalogue_actions` are
what the wrappers compute; vector adapters and deployed agents call them too, so a policy sees
byte-identical observations in training and evaluation. :func:`native_view` shows an image
whose size a policy was not trained on at the training scale, not resized; :func:`deployed_view`
is what the deployed ``ppo`` and ``vlm`` agents see (it, up to the training crop's size).

Example:
    >>> from tir_env.env import TIREnv
    >>> from tir_env.types import ToolCall
    >>> env = sb3_env(TIREnv(patch_size=64, obs_size=64), [ToolCall("gamma_correction")])
    >>> env.action_space, env.observation_space["image"].shape
    (Discrete(2), (3, 64, 64))
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from tir_env.errors import InvalidActionError
from tir_env.images import resize_u8
from tir_env.spaces import encode_call, max_params
from tir_env.tools.base import validate_call
from tir_env.types import Obs, ToolCall


# ------------------------------------------------------------------ pure helpers
def catalogue_actions(catalogue: Sequence[ToolCall], tools: Sequence[str]) -> list[dict[str, Any]]:
    """Native actions of STOP followed by every catalogue call (index ``i`` -> entry ``i``).

    Raises:
        InvalidActionError: a catalogue tool is not in ``tools``, or a parameter is unknown.
    """
    for call in catalogue:
        if call.tool in tools:
            validate_call(call)  # unknown or out-of-range parameters: a named error
    return [encode_call(None, tools)] + [encode_call(call, tools) for call in catalogue]


def policy_image(image: np.ndarray, size: int, channels_first: bool = True) -> np.ndarray:
    """A uint8 HWC image resized (bicubic) to ``size`` x ``size``, optionally as CHW."""
    out = resize_u8(image, (size, size))
    return np.ascontiguousarray(out.transpose(2, 0, 1) if channels_first else out)


def native_view(
    image: np.ndarray,
    size: int,
    patch: int,
    reference: tuple[int, int] | None = None,
    channels_first: bool = True,
    centre: tuple[float, float] = (0.5, 0.5),
) -> np.ndarray:
    """What a policy trained on ``patch`` px crops, seen at ``size`` px, sees of any image.

    A policy trained on ``patch`` x ``patch`` crops (and their low-resolution inputs, a quarter
    the side, which :func:`policy_image` upsamples) knows images at one scale only: resizing a
    whole photo or a smaller crop to ``size`` shrinks or stretches the noise, the JPEG blocks
    and the blur it learned to read. This view keeps the training scale on an image of any
    size. The image is brought to the scale of ``reference`` (the (H, W) the restored image
    should have; the image's own size when ``None``), upsampling a low-resolution input
    (bicubic), and the centred ``patch`` x ``patch`` window is taken there (reflect-padded
    where the image is smaller), then resized to ``size``. On the training sizes (``patch``
    and ``patch / 4`` with ``reference`` ``patch``) it equals :func:`policy_image` exactly.

    Args:
        image: uint8 HxWx3.
        size: Side of the view (the policy's observation size).
        patch: Side of the crops the policy was trained on.
        reference: Size the image is seen at (default: its own).
        channels_first: Return CHW instead of HWC.
        centre: Where the window's centre lies, as fractions of the reference height and
            width (the window is kept inside the image; default: the middle).
    """
    h, w = image.shape[:2]
    ref_h, ref_w = reference or (h, w)
    win_h, win_w = min(patch, ref_h), min(patch, ref_w)
    # The window at the reference scale, its centre moved inside, in this image's pixels.
    top = round(_window_start(centre[0], ref_h, win_h) * h / ref_h)
    left = round(_window_start(centre[1], ref_w, win_w) * w / ref_w)
    rows, cols = max(1, round(win_h * h / ref_h)), max(1, round(win_w * w / ref_w))
    region = image[top : top + rows, left : left + cols]
    if win_h == patch and win_w == patch:  # one resize, as training did
        return policy_image(region, size, channels_first)
    # Smaller than a training crop: reflected around its pixels at the training scale.
    lack_h, lack_w = patch - win_h, patch - win_w
    pad = ((lack_h // 2, lack_h - lack_h // 2), (lack_w // 2, lack_w - lack_w // 2), (0, 0))
    window = np.pad(resize_u8(region, (win_h, win_w)), pad, mode="symmetric")
    return policy_image(window, size, channels_first)


def _window_start(centre: float, extent: int, window: int) -> float:
    """First pixel of a ``window`` centred at ``centre * extent``, kept in ``[0, extent)``."""
    return min(max(centre * extent - window / 2, 0.0), float(extent - window))


def tile_views(
    image: np.ndarray,
    size: int,
    patch: int,
    reference: tuple[int, int],
    grid: int,
    channels_first: bool = True,
) -> list[np.ndarray]:
    """``grid`` x ``grid`` :func:`native_view` windows spread over an image, row by row.

    The windows' centres lie at ``(i + 0.5) / grid`` of the reference height and width, so a
    whole photo is seen at the training scale in several places, where a single resize would
    shrink its noise and JPEG blocks away. An image no larger than ``patch`` gives its one
    centred view (every window would be the same).
    """
    if max(reference) <= patch:
        return [native_view(image, size, patch, reference, channels_first)]
    spots = [(i + 0.5) / grid for i in range(grid)]
    return [
        native_view(image, size, patch, reference, channels_first, centre=(row, col))
        for row in spots
        for col in spots
    ]


def deployed_view(
    image: np.ndarray,
    size: int,
    patch: int,
    reference: tuple[int, int],
    channels_first: bool = True,
) -> np.ndarray:
    """What a deployed policy trained on ``patch`` px crops sees of an image of any size.

    Up to the training crop's size (``reference``, the size the image should have, no larger
    than ``patch``) its :func:`native_view`: a smaller crop is padded at the training scale,
    not stretched. A larger image (a whole photo) is resized whole (:func:`policy_image`):
    the centred window at the native scale was measured and not better on the val photos'
    whole-photo episodes (docs/agents.md, "Images of other sizes").
    """
    if max(reference) > patch:
        return policy_image(image, size, channels_first)
    return native_view(image, size, patch, reference, channels_first)


def action_history(actions: Sequence[int], n_actions: int, rows: int) -> np.ndarray:
    """One-hot rows ``[valid, one-hot(action, n_actions)]`` of the last ``rows`` actions.

    Oldest first, zero-padded at the end (the layout of
    :func:`tir_env.history.encode_history`), float32 of shape ``(rows, 1 + n_actions)``.
    """
    out = np.zeros((rows, 1 + n_actions), dtype=np.float32)
    for row, action in zip(out, list(actions)[-rows:], strict=False):
        row[0] = 1.0
        row[1 + int(action)] = 1.0
    return out


def _image_box(size: int, channels_first: bool) -> spaces.Box:
    shape = (3, size, size) if channels_first else (size, size, 3)
    return spaces.Box(0, 255, shape=shape, dtype=np.uint8)


# ----------------------------------------------------------------------- actions
class CatalogueAction(gym.ActionWrapper[Obs, np.int64, dict[str, Any]]):
    """``Discrete(1 + C)`` actions: 0 is STOP, ``i`` runs ``catalogue[i - 1]``.

    Args:
        env: A ``TIR-v0`` env (possibly wrapped).
        catalogue: The tool calls (tool x parameter preset) the agent chooses from; parameters
            a call omits take their defaults. Default: every tool of the env with its defaults.

    Raises:
        InvalidActionError: a catalogue tool is not in the env's tools; at ``step``, an index
            outside ``0 .. C``.
    """

    def __init__(self, env: gym.Env[Obs, Any], catalogue: Sequence[ToolCall] | None = None):
        super().__init__(env)
        tools = tuple(env.unwrapped.tools)  # type: ignore[attr-defined]
        self.catalogue: tuple[ToolCall, ...] = tuple(
            catalogue if catalogue is not None else (ToolCall(t) for t in tools)
        )
        self._native = catalogue_actions(self.catalogue, tools)
        self.action_space = spaces.Discrete(len(self._native))

    def action(self, action: Any) -> dict[str, Any]:
        """The native action of catalogue index ``action``."""
        index = int(np.asarray(action).reshape(()))
        if not 0 <= index < len(self._native):
            raise InvalidActionError(
                f"catalogue action {index} is out of range 0 (STOP) .. {len(self._native) - 1}"
            )
        native = self._native[index]
        return {"tool": native["tool"], "params": native["params"].copy()}


class MultiDiscreteAction(gym.ActionWrapper[Obs, np.ndarray, dict[str, Any]]):
    """``MultiDiscrete([T + 1] + [L] * P)``: tool index (0 = STOP), then each parameter's level.

    Level ``j`` of ``L`` is the normalised value ``j / (L - 1)`` (0 is the parameter's low end,
    ``L - 1`` its high end); levels of parameters the tool does not have are ignored.

    Args:
        env: A ``TIR-v0`` env (possibly wrapped).
        levels: Grid points per parameter (at least 2).
    """

    def __init__(self, env: gym.Env[Obs, Any], levels: int = 5):
        super().__init__(env)
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        tools = tuple(env.unwrapped.tools)  # type: ignore[attr-defined]
        self.grid = np.linspace(0.0, 1.0, levels, dtype=np.float32)
        self.action_space = spaces.MultiDiscrete([len(tools) + 1] + [levels] * max_params(tools))

    def action(self, action: Any) -> dict[str, Any]:
        """The native action: the tool index and the grid values of the levels."""
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        if a.shape != self.action_space.shape or not self.action_space.contains(a):
            raise InvalidActionError(f"action {a.tolist()} is not in {self.action_space}")
        return {"tool": int(a[0]), "params": self.grid[a[1:]]}


class ClipAction(gym.ActionWrapper[Obs, dict[str, Any], dict[str, Any]]):
    """Clips native parameters into [0, 1] (NaN -> 0) instead of raising, as the env does."""

    def action(self, action: dict[str, Any]) -> dict[str, Any]:
        """The action with ``params`` clipped."""
        params = np.nan_to_num(np.asarray(action["params"], dtype=np.float32), nan=0.0)
        return {"tool": action["tool"], "params": np.clip(params, 0.0, 1.0)}


# ------------------------------------------------------------------ observations
class ResizeObservation(gym.ObservationWrapper[Obs, Any, Any]):
    """``image`` and ``input`` resized (bicubic) to ``size`` x ``size``; ``history`` unchanged.

    Args:
        env: A ``TIR-v0`` env (possibly wrapped).
        size: Side of the output images, at least 8 (default: the env's ``obs_size``).
        channels_first: Emit CHW (SB3's image layout) instead of HWC.
    """

    def __init__(
        self, env: gym.Env[Obs, Any], size: int | None = None, channels_first: bool = True
    ):
        super().__init__(env)
        self.size = int(size or env.observation_space["image"].shape[0])  # type: ignore[index]
        if self.size < 8:
            raise ValueError(f"size must be >= 8, got {self.size}")
        self.channels_first = channels_first
        image = _image_box(self.size, channels_first)
        history = env.observation_space["history"]  # type: ignore[index]
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {"image": image, "input": image, "history": history}
        )

    def observation(self, observation: Obs) -> Obs:
        """Resize (and transpose) the two images."""
        return {
            "image": policy_image(observation["image"], self.size, self.channels_first),
            "input": policy_image(observation["input"], self.size, self.channels_first),
            "history": observation["history"],
        }


class ActionHistory(gym.Wrapper[Obs, Any, Obs, Any]):
    """Replaces ``history`` by :func:`action_history` of this episode's discrete actions.

    Wrap a :class:`CatalogueAction` (or any ``Discrete``-action) env. The rows hold no reward
    and no metric, so the observation needs no reference image. They are flattened to one
    vector of ``rows * (1 + n_actions)`` (SB3 expects images or 1-D vectors).

    Args:
        env: An env with a ``Discrete`` action space and a Dict observation.
        rows: History rows (most recent actions).
    """

    def __init__(self, env: gym.Env[Obs, Any], rows: int = 8):
        super().__init__(env)
        if not isinstance(env.action_space, spaces.Discrete):
            raise TypeError(f"ActionHistory needs a Discrete action space, got {env.action_space}")
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        self.rows, self.n_actions = rows, int(env.action_space.n)
        self._actions: list[int] = []
        history = spaces.Box(0.0, 1.0, shape=(rows * (1 + self.n_actions),), dtype=np.float32)
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {**env.observation_space.spaces, "history": history}  # type: ignore[attr-defined]
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Reset the env and forget the actions."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._actions = []
        return self._with_history(obs), info

    def step(self, action: Any) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env and remember the action."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._actions.append(int(np.asarray(action).reshape(())))
        return self._with_history(obs), reward, terminated, truncated, info

    def _with_history(self, obs: Obs) -> Obs:
        history = action_history(self._actions, self.n_actions, self.rows)
        return {**obs, "history": history.reshape(-1)}


class DropInfoHistory(gym.Wrapper[Obs, Any, Obs, Any]):
    """Leaves ``info["history"]`` out of every info (it stays at ``env.unwrapped.history``).

    SB3 copies every info at every step (``DummyVecEnv`` deep-copies, ``SubprocVecEnv``
    pickles); the StepRecord list grows with the episode and no learner reads it.
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Reset; the info without ``history``."""
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, _without_history(info)

    def step(self, action: Any) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step; the info without ``history``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, _without_history(info)


def _without_history(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "history"}


def sb3_env(
    env: gym.Env[Obs, Any],
    catalogue: Sequence[ToolCall] | None = None,
    obs_size: int | None = None,
    history_len: int = 8,
) -> gym.Env[Obs, Any]:
    """The SB3-facing stack: CHW resized images, catalogue actions, action history.

    Passes ``stable_baselines3.common.env_checker.check_env``; train it with
    ``PPO("MultiInputPolicy", sb3_env(gym.make("TIR-v0")))``. Images under
    :data:`SB3_CNN_MIN_SIDE` px draw a :class:`SmallImageWarning`: SB3's default CNN cannot
    read them (give a features extractor of your own, or a larger ``obs_size``).
    """
    resized = ResizeObservation(DropInfoHistory(env), obs_size, channels_first=True)
    if resized.size < SB3_CNN_MIN_SIDE:
        warnings.warn(
            f"sb3_env: {resized.size} px observations are smaller than the "
            f"{SB3_CNN_MIN_SIDE} px SB3's default CNN (NatureCNN, in CnnPolicy and "
            "MultiInputPolicy) needs: PPO would stop at its first forward pass with a "
            "padded-input-size error. Pass obs_size=64 (or more), or "
            "policy_kwargs=dict(features_extractor_class=...) for small images.",
            SmallImageWarning,
            stacklevel=2,
        )
    return ActionHistory(CatalogueAction(resized, catalogue), history_len)


#: Smallest image side SB3's default CNN (``NatureCNN``: 8/4, 4/2, 3/1 convolutions) reads.
SB3_CNN_MIN_SIDE = 36


class SmallImageWarning(UserWarning):
    """Observations too small for SB3's default CNN (:func:`sb3_env`)."""
