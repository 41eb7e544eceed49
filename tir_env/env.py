"""The ``TIR-v0`` environment."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from tir_env import data
from tir_env.config import EnvConfig
from tir_env.degradations.depth import depth_provider
from tir_env.device import resolve_device
from tir_env.episode import bounded, given_start, photo_size, restored_size, sample_start
from tir_env.errors import EpisodeEndedError, TIRError
from tir_env.executions import ExecutionLedger, as_stepped
from tir_env.history import encode_history
from tir_env.images import batch_to_u8, hstack_strip, resize_to_u8
from tir_env.metrics.scoring import score_images
from tir_env.reward import RewardOutput, checked_reward, env_metric_names, make_reward
from tir_env.spaces import action_space, decode_action, max_params, observation_space
from tir_env.tools.base import tool_info
from tir_env.tools.pool import ToolPool, ToolResult, default_pool
from tir_env.tools.presets import toolbox_tools
from tir_env.types import Action, ImageU8, Obs, Region, StepRecord, Timing, ToolCall


class TIREnv(gym.Env[Obs, Action]):
    """Tool-calling image restoration as a Gymnasium environment (the spec of ``TIR-v0``).

    ## Description

    Tool-calling image restoration. Each episode starts from a real photograph patch that
    has been degraded by a combination of the AgenticIR MiO100 degradations (low resolution,
    noise, JPEG, dark, haze, motion blur, defocus blur, rain) or RL-Restore's leveled ones.
    At each step the agent calls one restoration tool with parameters, or stops. Tools run
    in a shared tool pool; the reward scores each change of the image with image-quality
    metrics against the clean patch. This re-implements the setting of TIR-Agent
    (arXiv 2603.27742) and AgenticIR (ICLR 2025), with RL-Restore's step reward as default.

    ## Action Space

    `Dict(tool=Discrete(T + 1), params=Box(0, 1, (P,), float32))`, with T the number of tools
    (`env.unwrapped.tools`, default: every registered classical tool) and P the largest
    parameter count among them.

    | tool    | meaning                                                            |
    |---------|--------------------------------------------------------------------|
    | 0       | STOP: end the episode, keep the current image                      |
    | i >= 1  | run `tools[i - 1]`; `params[:k]` are its k parameters in [0, 1]     |

    Parameters are normalised: 0 is the parameter's `low`, 1 its `high` (see `tir tools`).
    Out-of-range values, a bad tool index or a wrong shape raise `InvalidActionError`;
    `tir_env.spaces.encode_call(ToolCall(...), tools)` builds valid actions. Accepted as
    well: `params` of any shape holding the space's width or exactly the tool's own k values
    (it is flattened), and none for a tool without parameters; STOP reads no `params`.

    ## Observation Space

    | key       | space                                  | content                               |
    |-----------|----------------------------------------|---------------------------------------|
    | `image`   | `Box(0, 255, (S, S, 3), uint8)`         | current image, resized to S x S       |
    | `input`   | `Box(0, 255, (S, S, 3), uint8)`         | the degraded input, resized to S x S  |
    | `history` | `Box(-1, 1, (K, 1 + (T+1) + P + 2))`   | last K calls (see below)              |

    A history row is `[valid, one-hot tool (STOP first), normalised params, tanh(reward),
    error]`. S is `obs_size` (default 128), K is `history_len` (default 8). The working image keeps
    its own size (a low-resolution input is 4x smaller until a super-resolution tool runs);
    `info["history"]` holds the full list of `StepRecord`s.

    ## Rewards

    `reward="psnr"` (default, RL-Restore): `PSNR(x_t, y) - PSNR(x_{t-1}, y) - step_cost`,
    so the return is the episode's total PSNR gain. Metrics compare at the clean patch's
    size (bicubic resize first, as AgenticIR's scorer does). A failing tool leaves the image
    unchanged and pays `-failure_penalty`. STOP pays 0. `info["metrics"]` has every metric
    of `metrics` after the step, `info["reward_terms"]` each reward term and
    `info["timing"]` the tool and metric wall times and whether the pool's cache
    answered.

    ## Starting State

    `reset(seed)` draws, from `self.np_random` only: a photo of `images`, a random
    `patch_size` crop (`patch_size=None`: the whole photo, trimmed to a multiple of 4), a
    combination of `combos`, applied in `degradation_order` (`"physical"` or `"listed"`,
    AgenticIR's), and every degradation parameter
    (`combos="rlrestore-mild|moderate|severe"` draws RL-Restore level triples). Haze takes
    its depth from `depth` (a folder of maps, a local depth model, or the proxy), computed
    on the whole photo and cut with the patch's window; `info["haze_depth"]` names it. The
    degraded input is quantised to 8 bits, as a saved image would be. `options` may fix
    `image_id` (a non-empty string) and `degradations` (a non-empty tuple of names, or one
    name as a string), or pass `image` (uint8 HxWx3) and an optional `reference` to restore a
    given image (then `degradations`, if given, only labels it, as for published
    degraded/clean pairs), and with it an optional `photo` (uint8 HxWx3): the whole photo
    `image` was cut from, which agents perceive instead of the cut (`perception_input()`;
    `tir restore` plans on a photo's centre crop, but darkness or haze is a property of the
    whole frame). An option of the wrong type or empty raises `InvalidOptionError`
    (it never falls back to a random draw).

    ## Episode End

    Terminated when the agent calls STOP. Truncated after `max_steps` tool calls. A `step`
    after either raises `EpisodeEndedError` until `reset` (the vector env resets finished
    sub-envs itself, Gymnasium's autoreset).

    ## Arguments

    `gym.make('TIR-v0', **fields)` accepts every `EnvConfig` field, a `config=EnvConfig(...)`,
    a `pool=` (a shared `ToolPool`) and `render_mode='rgb_array'`.

    | argument          | default      | meaning                                        |
    |-------------------|--------------|------------------------------------------------|
    | `images`          | `"train"`    | bundled split or a folder of clean images      |
    | `combos`          | `"mio-a"`    | degradation combinations (protocol name or tuples) |
    | `patch_size`      | 128          | side of the clean patch (`None`: whole photo)  |
    | `degradation_order` | `"physical"` | `physical` (sorted) or `listed` (AgenticIR)  |
    | `obs_size`        | 128          | side of the observation images                 |
    | `max_steps`       | 5            | tool calls before truncation                   |
    | `tools`           | toolbox's    | ordered tool names of the action space         |
    | `toolbox`         | `"classical"` | `classical`, `learned`, `full`, `agenticir`   |
    | `reward`          | `"psnr"`     | `psnr`, `static` or `adaptive`                 |
    | `metrics`         | psnr, ssim   | metrics logged at every step                   |
    | `step_cost`       | 0.0          | subtracted from each call's reward             |
    | `failure_penalty` | 1.0          | reward of a failed call is minus this          |
    | `depth`           | `"proxy"`    | haze depth: `proxy`, `folder:DIR`, `model:DIR` |

    >>> import gymnasium as gym, tir_env
    >>> env = gym.make("TIR-v0", max_steps=3)
    >>> obs, info = env.reset(seed=0)
    >>> obs["image"].shape
    (128, 128, 3)

    ## Helpers for agents

    `current_image()`, `input_image()`, `clean_image()` (uint8 HxWx3), `current_batch()` (the
    float tensor tools see), `has_reference`, `history`; `lookahead(image, calls)` runs tool
    calls through the shared pool without stepping (planners), each as a step of it would
    (so a call looked ahead and then taken runs once), `executions_run` counts what the
    episode ran (`tir_env.executions`), `score(image, names)` scores any candidate the way
    the env scores its own images.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}
    _metrics: dict[str, float]
    _initial_metrics: dict[str, float]
    _ended: str | None
    _current: torch.Tensor | None
    _tool_calls: int

    def __init__(
        self,
        config: EnvConfig | None = None,
        render_mode: str | None = None,
        pool: ToolPool | None = None,
        **overrides: Any,
    ) -> None:
        self.config = EnvConfig.from_kwargs(config, **overrides)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.tools: tuple[str, ...] = self.config.tools or toolbox_tools(self.config.toolbox)
        for name in self.tools:
            tool_info(name)  # fail early, with did-you-mean, on unknown tool names
        # Without an explicit pool the env asks for the process default at each step, so a
        # default pool closed meanwhile is replaced rather than failing every later call.
        self._pool = pool
        self.reward_fn = make_reward(
            self.config.reward,
            step_cost=self.config.step_cost,
            failure_penalty=self.config.failure_penalty,
            **self.config.reward_kwargs,
        )
        # fail early, with did-you-mean, on unknown metric names (a reward's included)
        self.metric_names = env_metric_names(self.reward_fn, self.config.metrics)
        self.action_space = action_space(self.tools)
        self._width = max_params(self.tools)  # the params Box's width, used at every step
        # gym.Env types it as Space[Obs]; ours is the Dict space whose samples are Obs.
        self.observation_space = observation_space(  # type: ignore[assignment]
            self.tools, self.config.obs_size, self.config.history_len
        )
        self._source = data.source(self.config.images)
        resolve_device(self.config.device)  # "cuda" without CUDA fails here, not mid-episode
        self._depth = depth_provider(self.config.depth, self.config.device)
        self._clear_episode()

    @property
    def pool(self) -> ToolPool:
        """The pool tool calls go to: the one given, else the current process default."""
        return self._pool if self._pool is not None else default_pool()

    @pool.setter
    def pool(self, pool: ToolPool | None) -> None:
        self._pool = pool

    # ----------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Start an episode (see the class docstring, Starting State)."""
        return self.end_reset(*self._timed_score(self.begin_reset(seed=seed, options=options)))

    def begin_reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> torch.Tensor:
        """First half of :meth:`reset`: start the episode; return the image to score.

        A vector env scores its sub-envs' images together, then calls :meth:`end_reset`.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        self._clear_episode()
        if "image" in options:
            self._start_given(options)
        else:
            self._start_sampled(options)
        self.reward_fn.reset(seeded=seed is not None)
        return self._require(self._current)

    def end_reset(self, scores: dict[str, float], seconds: float) -> tuple[Obs, dict[str, Any]]:
        """Second half of :meth:`reset`, given the metrics of the input and their time."""
        self._metrics, self._metric_seconds = scores, seconds
        self._initial_metrics = dict(self._metrics)
        return self._observation(), self._info(None, RewardOutput(0.0))

    def step(self, action: Action) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Run one tool call or STOP (see the class docstring)."""
        call = self.decode(action)
        future = None
        if call is not None:
            future = self.live_pool().submit(self._require(self._current), call)
        return self.finish_step(call, None if future is None else future.result())

    def decode(self, action: Action) -> ToolCall | None:
        """Validate an action and return its tool call (``None`` for STOP).

        Raises:
            TIRError: no active episode.
            EpisodeEndedError: the episode terminated or was truncated; call ``reset()``.
            InvalidActionError: the action does not fit the action space.
        """
        self._check_active()
        return decode_action(action, self.tools, width=self._width)

    def _check_active(self) -> None:
        if self._current is None:
            raise TIRError("call reset() before step()")
        if self._ended is not None:
            raise EpisodeEndedError(
                f"the episode has ended ({self._ended}); call reset() before step() again "
                "(Gymnasium's contract: no steps between the end of an episode and reset)"
            )

    def live_pool(self) -> ToolPool:
        """The pool to submit to now (:meth:`ToolPool.require_open`: a closed one is refused)."""
        return self.pool.require_open()

    def finish_step(
        self, call: ToolCall | None, result: ToolResult | None
    ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Second half of :meth:`step`, given the pool's result (lets vector envs batch calls).

        Raises:
            EpisodeEndedError: the episode terminated or was truncated; call ``reset()``.
        """
        image = self.begin_finish(call, result)
        scored = (None, 0.0) if image is None else self._timed_score(image)
        return self.end_finish(call, result, *scored)

    def begin_finish(self, call: ToolCall | None, result: ToolResult | None) -> torch.Tensor | None:
        """Take the pool's result; return the new working image to score (``None``: none).

        A vector env scores its sub-envs' images together, then calls :meth:`end_finish`.

        Raises:
            EpisodeEndedError: the episode terminated or was truncated; call ``reset()``.
        """
        self._check_active()
        if call is None or result is None:
            return None
        self._tool_calls += 1
        self._ledger.note(self._require(self._current), [call], [result])
        if not result.ok or result.image is None:
            return None
        self._current = self.fit_output(result.image)
        return self._current

    def end_finish(
        self,
        call: ToolCall | None,
        result: ToolResult | None,
        scores: dict[str, float] | None,
        seconds: float,
    ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Second half of :meth:`finish_step`, given the new image's metrics and their time."""
        before = self._metrics
        if scores is not None:  # the tool succeeded (begin_finish set the new image)
            self._metrics, self._metric_seconds = scores, seconds
        if call is None or result is None:
            out = self.reward_fn.stop(self._initial_metrics, before)
            out = checked_reward(self.reward_fn, out, self._initial_metrics, before)
            record = StepRecord(None, before, before, out.reward)
        else:
            out = self.reward_fn.failed() if scores is None else self.reward_fn.step(before, scores)
            out = checked_reward(self.reward_fn, out, before, scores)
            record = StepRecord(
                call, before, self._metrics, out.reward, result.seconds, result.error, result.cached
            )
        self._history.append(record)
        terminated = call is None
        truncated = not terminated and self._tool_calls >= self.config.max_steps
        if terminated:
            self._ended = "terminated by STOP"
        elif truncated:
            self._ended = f"truncated after max_steps={self.config.max_steps} tool calls"
        obs, info = self._observation(), self._info(record, out)
        return obs, float(out.reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: a strip of input | current | reference (when known)."""
        if self.render_mode != "rgb_array" or self._current is None:
            return None
        panels = [self.input_image(), self.current_image()]
        if self._clean is not None:
            panels.append(self.clean_image())
        return hstack_strip(panels, height=max(128, self.config.patch_size or 128))

    def close(self) -> None:
        """Drop episode state (the shared pool stays open for other envs)."""
        self._clear_episode()

    # --------------------------------------------------------- image accessors
    def current_batch(self) -> torch.Tensor:
        """The working image as the tools see it: float32 1x3xHxW in [0, 1] (do not modify)."""
        return self._require(self._current)

    def reference_batch(self) -> torch.Tensor | None:
        """The clean reference, 1x3xHxW, as :meth:`score` uses it (``None``: none)."""
        return self._clean

    @property
    def has_reference(self) -> bool:
        """Whether this episode has a clean reference (bundled or given ``clean`` image)."""
        return self._clean is not None

    def lookahead(
        self, image: torch.Tensor, calls: Sequence[ToolCall]
    ) -> list[torch.Tensor | None]:
        """Run tool calls on ``image`` without stepping: for planners that search ahead.

        All calls go to the shared pool together (so they batch and hit its cache), each as a
        step would run it (:mod:`tir_env.executions`), its output bounded in size as a step
        would bound it. A failing call gives ``None``. Score the results with :meth:`score`;
        count them in your agent, or let the agent be charged :attr:`executions_run`.
        """
        calls = [as_stepped(call, self.tools, self._width) for call in calls]
        results = self.live_pool().map([image] * len(calls), calls)
        self._ledger.note(image, calls, results)
        return [self.fit_output(r.image) if r.ok and r.image is not None else None for r in results]

    @property
    def executions_run(self) -> int:
        """Tool executions this episode ran (:class:`~tir_env.executions.ExecutionLedger`)."""
        return self._ledger.count

    def current_image(self) -> ImageU8:
        """The working image at full resolution, uint8 HxWx3."""
        return batch_to_u8(self._require(self._current))

    def input_image(self) -> ImageU8:
        """The degraded input at full resolution, uint8 HxWx3."""
        return batch_to_u8(self._require(self._input))

    def clean_image(self) -> ImageU8:
        """The clean reference, uint8 HxWx3 (raises when the episode has none)."""
        return batch_to_u8(self._require(self._clean))

    @property
    def haze_depth(self) -> str | None:
        """Depth source of this episode's haze: ``proxy``, ``folder``, ``model:<name>`` or None."""
        return self._haze_depth

    @property
    def history(self) -> list[StepRecord]:
        """Records of this episode's steps, oldest first."""
        return list(self._history)

    # --------------------------------------------------------------- internals
    def _clear_episode(self) -> None:
        self._clean: torch.Tensor | None = None
        self._input: torch.Tensor | None = None
        self._current = None
        self._history: list[StepRecord] = []
        self._ledger = ExecutionLedger()  # see executions_run
        self._ended = None  # why the episode ended (until reset)
        self._metrics, self._initial_metrics = {}, {}
        self._tool_calls, self._metric_seconds = 0, 0.0
        self._image_id = ""
        self._applied: list[tuple[str, dict[str, float]]] = []
        self._haze_depth: str | None = None
        self._input_obs: ImageU8 | None = None
        self._photo: ImageU8 | None = None

    def _start_sampled(self, options: Mapping[str, Any]) -> None:
        start = sample_start(self.config, self._source, self._depth, options, self.np_random)
        self._image_id, self._applied, self._haze_depth = start.image_id, start.applied, start.depth
        self._clean, self._input = start.clean, start.input
        self._current = self._input

    def _start_given(self, options: Mapping[str, Any]) -> None:
        start = given_start(options, self.config.reward, self.reward_fn.needs_reference)
        self._image_id, self._input, self._clean = start.image_id, start.input, start.clean
        self._photo, self._applied, self._current = start.photo, start.applied, start.input

    def perception_input(self) -> tuple[ImageU8, tuple[int, int] | None]:
        """What an agent perceives, and the size to see it at (``perception.perceive_photo``).

        The input at :meth:`target_size`; or, when the episode was given the ``photo`` the
        input was cut from (``tir restore`` on a large photo), that whole photo, at its size
        times the input's restoration scale.
        """
        if self._photo is None:
            return self.input_image(), self.target_size()
        shape = self._require(self._input).shape
        return self._photo, photo_size(self._photo, shape, self.target_size())

    def target_size(self) -> tuple[int, int] | None:
        """(H, W) the restored image should have: the clean image's size, if there is one.

        Perception uses it to recognise a low-resolution input (it must be seen at the size
        it should have). ``None`` when the episode has no reference (``tir restore``).
        """
        return None if self._clean is None else self._target_size()

    def _target_size(self) -> tuple[int, int]:
        return restored_size(self._clean, self._require(self._input))

    def fit_output(self, image: torch.Tensor) -> torch.Tensor:
        """A tool's output bounded to the working-image size (:func:`~tir_env.episode.bounded`)."""
        return bounded(image, self._target_size())

    def _timed_score(self, image: torch.Tensor) -> tuple[dict[str, float], float]:
        start = time.perf_counter()
        return self.score(image, self.metric_names), time.perf_counter() - start

    def score(
        self, image: torch.Tensor, names: Sequence[str], region: Region | None = None
    ) -> dict[str, float]:
        """Metrics of a working image (of the reference's ``region``), as the env scores its own.

        With a reference, metrics see the image resized to its size (AgenticIR's scorer);
        full-reference ones are skipped without one. NIQE (96 px) upscales small images.
        """
        ref = self._clean if region is None or self._clean is None else region.of(self._clean)
        return score_images([image], [ref], names, self.config.device)[0]

    def _observation(self) -> Obs:
        size = (self.config.obs_size, self.config.obs_size)
        if self._input_obs is None:  # the input never changes in an episode: resize it once
            self._input_obs = resize_to_u8(self._require(self._input), size)
        return {
            "image": resize_to_u8(self._require(self._current), size),
            "input": self._input_obs.copy(),
            "history": encode_history(
                self._history, self.tools, self.config.history_len, width=self._width
            ),
        }

    def _info(self, record: StepRecord | None, out: RewardOutput) -> dict[str, Any]:
        seconds, cached = (record.seconds, record.cached) if record else (0.0, False)
        return {
            "image_id": self._image_id,
            "degradations": [name for name, _ in self._applied],
            "degradation_params": [dict(p) for _, p in self._applied],
            "degradation_order": self.config.degradation_order,
            "haze_depth": self._haze_depth,
            "step": self._tool_calls,
            "metrics": dict(self._metrics),
            "metrics_input": dict(self._initial_metrics),
            "tool": str(record.call) if record and record.call else None,
            "timing": Timing(seconds, self._metric_seconds, cached),
            "error": record.error if record else None,
            "reward_terms": dict(out.terms),
            "history": list(self._history),
        }

    @staticmethod
    def _require(image: torch.Tensor | None) -> torch.Tensor:
        if image is None:
            raise TIRError("no active episode: call reset() first")
        return image
