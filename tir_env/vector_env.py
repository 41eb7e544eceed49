"""N ``TIR-v0`` episodes in lockstep, sharing one tool pool so their calls are batched.

``gym.make_vec("TIR-v0", num_envs=N, vectorization_mode="vector_entry_point", **fields)``
returns a :class:`TIRVectorEnv`. It behaves exactly like Gymnasium's ``SyncVectorEnv`` over
N ``TIREnv`` (same observations, rewards and autoreset semantics, ``NEXT_STEP`` by default)
but each step first submits every sub-env's tool call to the shared pool and only then waits,
so a batching pool runs same-tool calls together. Sub-envs are then finished lot by lot as
their results arrive (the resets and STOPs first), overlapping the tools still running; the new
images of a lot (and the inputs of the sub-envs it resets) are scored together, one batched call
per metric (:func:`~tir_env.metrics.scoring.score_images`). Rewards, observations and infos are
those of N single envs (metrics up to float rounding).
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import concatenate, iterate

from tir_env.env import TIREnv
from tir_env.metrics.scoring import score_images
from tir_env.tools.pool import ToolPool, ToolResult, default_pool
from tir_env.types import ToolCall


class TIRVectorEnv(SyncVectorEnv):
    """Vectorised ``TIR-v0`` with batched tool calls through one shared pool.

    Args:
        num_envs: Number of parallel episodes.
        pool: The shared pool (default: the process-wide pool).
        autoreset_mode: Gymnasium autoreset mode (batched stepping in ``NEXT_STEP`` and
            ``DISABLED``; ``SAME_STEP`` falls back to one call at a time).
        **kwargs: ``EnvConfig`` fields, as for ``gym.make("TIR-v0", ...)``.
    """

    def __init__(
        self,
        num_envs: int = 1,
        pool: ToolPool | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        kwargs.pop("max_episode_steps", None)  # the env truncates itself at max_steps
        # None: every step asks for the process default (a closed default is replaced).
        self._pool = pool
        fns = [lambda: TIREnv(pool=pool, **kwargs) for _ in range(num_envs)]
        super().__init__(fns, copy=True, autoreset_mode=autoreset_mode)

    @property
    def pool(self) -> ToolPool:
        """The shared pool: the one given, else the current process default."""
        return self._pool if self._pool is not None else default_pool()

    def reset_at(
        self, index: int, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start sub-env ``index`` on a given episode (per-env ``reset`` options).

        Gymnasium's ``reset`` passes one ``options`` to every sub-env; expert collection and
        replays need a different (image, combination) per sub-env. The sub-env no longer
        counts as finished, so the next :meth:`step` plays its action instead of resetting it.
        The batched observation is not updated: use the returned one (or the next step's).
        """
        obs, info = self.envs[index].reset(seed=seed, options=options)
        self._autoreset_envs[index] = False
        return obs, info

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env: submit every tool call, then finish sub-envs as results come."""
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            return super().step(actions)
        envs: list[TIREnv] = [e.unwrapped for e in self.envs]  # type: ignore[misc]
        # NEXT_STEP resets finished sub-envs here; DISABLED leaves that to the caller, so a
        # finished sub-env that was not reset raises EpisodeEndedError from its decode.
        autoreset = self.autoreset_mode == AutoresetMode.NEXT_STEP
        todo = [not (autoreset and self._autoreset_envs[i]) for i in range(self.num_envs)]
        actions_iter = iterate(self.action_space, actions)
        calls = [
            env.decode(a) if go else None
            for env, a, go in zip(envs, actions_iter, todo, strict=True)
        ]
        # Submit every call in one go, so a batching pool groups same-tool calls.
        busy = [(i, c) for i, c in enumerate(calls) if todo[i] and c is not None]
        submitted = (
            envs[0]
            .live_pool()
            .submit_many([envs[i].current_batch() for i, _ in busy], [c for _, c in busy])
        )
        futures = dict(zip([i for i, _ in busy], submitted, strict=True))
        # Sub-envs without a pending call (resets, STOP) go first, then each lot of results as
        # it arrives: this work overlaps the tools still running, and every lot is scored in
        # one batched call per metric.
        outcomes: list[Any] = [None] * self.num_envs
        pending = dict(futures)
        lot = [i for i in range(self.num_envs) if i not in futures]
        while True:
            self._finish_lot(envs, lot, calls, todo, futures, outcomes)
            if not pending:
                break
            wait(set(pending.values()), return_when=FIRST_COMPLETED)
            lot = [i for i, future in pending.items() if future.done()]
            for i in lot:
                del pending[i]
        infos: dict[str, Any] = {}
        env_obs: list[Any] = self._env_obs  # gymnasium annotates it list[None]
        for i, (obs, r, term, trunc, info) in enumerate(outcomes):
            env_obs[i], self._rewards[i] = obs, r
            self._terminations[i], self._truncations[i] = term, trunc
            infos = self._add_info(infos, info, i)
        self._observations = concatenate(
            self.single_observation_space, self._env_obs, self._observations
        )
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (
            self._observations,
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )

    def _finish_lot(
        self,
        envs: list[TIREnv],
        lot: list[int],
        calls: list[ToolCall | None],
        todo: list[bool],
        futures: dict[int, Future[ToolResult]],
        outcomes: list[Any],
    ) -> None:
        """Finish (or reset) the sub-envs of ``lot``, scoring their new images together."""
        results = {i: futures[i].result() if i in futures else None for i in lot}
        images = [
            envs[i].begin_finish(calls[i], results[i]) if todo[i] else envs[i].begin_reset()
            for i in lot
        ]
        scores, seconds = _score_all([envs[i] for i in lot], images)
        for i, score, time_s in zip(lot, scores, seconds, strict=True):
            if todo[i]:
                outcomes[i] = envs[i].end_finish(calls[i], results[i], score, time_s)
            else:  # NEXT_STEP autoreset: this step reset the sub-env
                obs, info = envs[i].end_reset(score or {}, time_s)
                outcomes[i] = (obs, 0.0, False, False, info)


def _score_all(
    envs: list[TIREnv], images: list[torch.Tensor | None]
) -> tuple[list[dict[str, float] | None], list[float]]:
    """Every sub-env's metrics of its image (``None`` where there is none), batched.

    Sub-envs with the same metrics and device are scored together; each is charged an equal
    share of its group's metric time.
    """
    scores: list[dict[str, float] | None] = [None] * len(envs)
    seconds = [0.0] * len(envs)
    groups: dict[tuple[tuple[str, ...], str], list[tuple[int, torch.Tensor]]] = {}
    for i, (env, image) in enumerate(zip(envs, images, strict=True)):
        if image is not None:
            groups.setdefault((env.metric_names, env.config.device), []).append((i, image))
    for (names, device), group in groups.items():
        start = time.perf_counter()
        refs = [envs[i].reference_batch() for i, _ in group]
        found = score_images([image for _, image in group], refs, names, device)
        share = (time.perf_counter() - start) / len(group)
        for (i, _), value in zip(group, found, strict=True):
            scores[i], seconds[i] = value, share
    return scores, seconds
