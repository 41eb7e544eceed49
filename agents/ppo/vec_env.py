"""An SB3 ``VecEnv`` over ``TIRVectorEnv``: PPO's N envs batch their tool calls in one pool.

SB3 does not consume Gymnasium vector envs: it expects its own ``VecEnv`` API, in which a
finished sub-env resets in the same step and its last observation travels in
``infos[i]["terminal_observation"]``. This adapter runs ``TIRVectorEnv`` with Gymnasium's
``DISABLED`` autoreset (every step is one batched submission to the pool), resets finished
sub-envs itself, and presents the observations and actions of :func:`tir_env.wrappers.sb3_env`
(CHW images, the policy's actions of :mod:`agents.ppo.actions`, reference-free action
history).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from agents.ppo import perceived
from agents.ppo.actions import CatalogueActions, Key, PolicyActions
from agents.ppo.policy import observation_space
from agents.tuned import ParamsChoice, with_tuned_params
from tir_env.env import TIREnv
from tir_env.spaces import encode_call
from tir_env.tools.pool import ToolPool
from tir_env.types import Obs, ToolCall
from tir_env.vector_env import TIRVectorEnv


class TIRSB3VecEnv(VecEnv):
    """N ``TIR-v0`` episodes for SB3, tool calls batched through one shared pool.

    Args:
        num_envs: Parallel episodes.
        catalogue: The policy's actions (:mod:`agents.ppo.actions`), or the tool calls of
            catalogue actions ``1 .. C`` (0 is STOP).
        obs_size: Side of the observation images (the envs render at this size).
        history_len: Rows of the action history.
        pool: The shared pool (default: the process-wide pool).
        perceived: Add this perception network's readings of both images to the observation
            (:mod:`agents.ppo.perceived`); ``None``: not.
        params: ``tuned``: run each call with the parameters fitted to the protocol where it
            asks for a preferred tool's declared defaults (:func:`agents.tuned.with_tuned_params`,
            as the ``ppo`` agent runs them); ``default``: as the action says.
        **env_kwargs: ``EnvConfig`` fields of every sub-env (``images``, ``combos``, ...).

    Each step's info holds ``psnr`` and ``psnr_input`` (when the env computes PSNR) and, at the
    end of an episode, ``terminal_observation`` and ``TimeLimit.truncated``, as SB3 expects.
    """

    def __init__(
        self,
        num_envs: int,
        catalogue: PolicyActions | Sequence[ToolCall],
        obs_size: int = 64,
        history_len: int = 8,
        pool: ToolPool | None = None,
        perceived: str | None = None,
        params: ParamsChoice = "default",
        **env_kwargs: Any,
    ) -> None:
        self.venv = TIRVectorEnv(
            num_envs,
            pool=pool,
            autoreset_mode=AutoresetMode.DISABLED,
            obs_size=obs_size,
            **env_kwargs,
        )
        self.tir_envs: list[TIREnv] = [env.unwrapped for env in self.venv.envs]  # type: ignore[misc]
        self.actions = (
            catalogue if isinstance(catalogue, PolicyActions) else CatalogueActions(catalogue)
        )
        self._tools = tuple(self.tir_envs[0].tools)
        self.actions.check_tools(self._tools)
        self.history_len = history_len
        self.perceived = perceived
        self.params = params
        image = spaces.Box(0, 255, shape=(3, obs_size, obs_size), dtype=np.uint8)
        width = history_len * self.actions.row_width()
        history = spaces.Box(0.0, 1.0, shape=(width,), dtype=np.float32)
        observation = observation_space(image, history, perceived)
        super().__init__(num_envs, observation, self.actions.space())
        self._actions: list[list[Key]] = [[] for _ in range(num_envs)]
        self._pending: list[Any] = [0] * num_envs

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> Obs:
        """Reset every sub-env (seeded by :meth:`seed` when it was called since last reset)."""
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        self._actions = [[] for _ in range(self.num_envs)]
        return self._policy_obs(obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Remember the policy actions to run at :meth:`step_wait` (one per sub-env)."""
        batch = np.asarray(actions, dtype=np.int64).reshape(self.num_envs, -1)
        self._pending = [self.actions.key(a) for a in batch]

    def step_wait(self) -> VecEnvStepReturn:
        """One batched step; finished sub-envs reset at once (SB3 semantics)."""
        native = [self._native(a) for a in self._pending]
        batch = {
            "tool": np.array([a["tool"] for a in native], dtype=np.int64),
            "params": np.stack([a["params"] for a in native]),
        }
        obs, rewards, terminated, truncated, vec_info = self.venv.step(batch)
        for i, a in enumerate(self._pending):
            self._actions[i].append(a)
        dones = np.logical_or(terminated, truncated)
        policy_obs = self._policy_obs(obs)
        infos = [_psnr_info(vec_info, i) for i in range(self.num_envs)]
        if dones.any():
            for i in map(int, np.flatnonzero(dones)):
                infos[i]["terminal_observation"] = {k: v[i].copy() for k, v in policy_obs.items()}
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                self._actions[i] = []
            obs, _ = self.venv.reset(options={"reset_mask": dones})
            policy_obs = self._policy_obs(obs)
        return policy_obs, rewards.astype(np.float32), dones, infos

    def _native(self, key: Key) -> dict[str, Any]:
        """The env's action for a policy action (with the fitted parameters under ``tuned``)."""
        if self.params == "tuned":
            return encode_call(with_tuned_params(self.actions.call(key)), self._tools)
        return self.actions.native(key, self._tools)

    def close(self) -> None:
        """Close the sub-envs (the shared pool stays open)."""
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attribute of the unwrapped sub-envs."""
        return [getattr(self.tir_envs[i], attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the unwrapped sub-envs."""
        for i in self._indices(indices):
            setattr(self.tir_envs[i], attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the unwrapped sub-envs."""
        return [
            getattr(self.tir_envs[i], method_name)(*method_args, **method_kwargs)
            for i in self._indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """The sub-envs are bare ``TIREnv``s."""
        return [False for _ in self._indices(indices)]

    # ------------------------------------------------------------------ internals
    def _indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def _policy_obs(self, obs: Obs) -> Obs:
        history = [self.actions.history(a, self.history_len).reshape(-1) for a in self._actions]
        policy_obs = {
            # The envs render at obs_size already; only the layout changes (HWC -> CHW).
            "image": np.ascontiguousarray(obs["image"].transpose(0, 3, 1, 2)),
            "input": np.ascontiguousarray(obs["input"].transpose(0, 3, 1, 2)),
            "history": np.stack(history),
        }
        if self.perceived == perceived.TRUTH:  # the privileged diagnostic: the envs' labels
            policy_obs[perceived.KEY] = np.stack(
                [perceived.truth_observation(perceived.true_types(e)) for e in self.tir_envs]
            )
        elif self.perceived is not None:
            policy_obs[perceived.KEY] = perceived.observation(
                policy_obs["image"], policy_obs["input"], self.perceived
            )
        return policy_obs


def _psnr_info(vec_info: dict[str, Any], i: int) -> dict[str, Any]:
    """Sub-env ``i``'s PSNR now and at its input, from Gymnasium's batched info."""
    now, start = vec_info.get("metrics", {}), vec_info.get("metrics_input", {})
    if "psnr" not in now or "psnr" not in start:
        return {}
    return {"psnr": float(now["psnr"][i]), "psnr_input": float(start["psnr"][i])}
