"""Ray backend of the tool pool: tools resident in Ray actors, one per CPU or GPU slot.

:class:`RayToolPool` keeps the front end of :class:`~tir_env.tools.pool.LocalToolPool`
(result cache, coalescing of identical calls, grouping into batches, one-by-one retry of a
failed batch) and sends each batch to the least-loaded live actor. An actor that dies mid-call
(:class:`ray.exceptions.RayActorError`) is replaced and its calls are retried on another live
actor, so no result is lost; an invocation past ``timeout_s`` kills its actor (Ray can end a
stuck process, unlike a thread) and fails only its calls.

Tools reach the actors as their registry factory (usually a class), pickled by Ray: a tool
must be importable in the actors (a built-in tool, an installed package or an entry point),
or be registered for pickling by value with ``ray.cloudpickle.register_pickle_by_value``.
Actors build each tool once, by name, and keep it resident.

Ray is imported only here, when a :class:`RayToolPool` is created: ``pip install 'tir-env[ray]'``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from tir_env.errors import ToolExecutionError
from tir_env.tools.base import TOOLS, Tool, make_tool, tool_names
from tir_env.tools.pool.config import PoolConfig, pool_config
from tir_env.tools.pool.engine import BatchingToolPool
from tir_env.tools.pool.results import ToolTimeoutError
from tir_env.types import ToolCall

logger = logging.getLogger(__name__)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "RayToolPool needs Ray; install it with: pip install 'tir-env[ray]' "
            "(or pip install 'ray[default]>=2.9')"
        ) from err
    return ray


class ToolActor:
    """The body of a tool actor: builds tools by name once, keeps them on its device.

    Args:
        device: Torch device of this actor's slot (``"cpu"`` or ``"cuda"``).
        threads: Torch intra-op threads (one per CPU slot by default).
    """

    def __init__(self, device: str, threads: int) -> None:
        torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.tools: dict[str, Tool] = {}
        tool_names()  # import the built-in tools now, not inside the first timed call

    def run(
        self,
        name: str,
        factory: Callable[[], Tool] | None,
        params: Mapping[str, float],
        batch: torch.Tensor,
    ) -> torch.Tensor:
        """Run tool ``name`` (built by ``factory``, else the registry) on ``batch``."""
        tool = self.tools.get(name)
        if tool is None:
            tool = (factory() if factory is not None else make_tool(name)).to(self.device)
            self.tools[name] = tool
        return tool(batch.to(self.device), params).to("cpu")

    def pid(self) -> int:
        """Process id (answers once the actor is up)."""
        return os.getpid()


@dataclass(eq=False)
class _Slot:
    """One actor slot: the current actor handle, its load and a replacement counter."""

    actor: Any
    load: int = 0
    ready: bool = True
    generation: int = 0


class RayToolPool(BatchingToolPool):
    """Tool pool executing on Ray actors, with the :class:`~tir_env.tools.pool.ToolPool` API.

    Args:
        config: The settings (:class:`~tir_env.tools.pool.config.PoolConfig`): this pool
            reads ``num_actors`` (``None``: one per CPU of the cluster, or per GPU when
            ``device`` is CUDA), ``address`` (``"auto"``, ``"ray://host:10001"``, ...;
            ``None`` starts a local Ray unless one is already initialised in this process),
            ``device`` (``"cpu"``, ``"cuda"``: one GPU per actor, or ``"auto"``: CUDA when
            the cluster has GPUs), ``max_batch`` (most images in one actor call),
            ``cache_bytes`` (the result cache, kept in this process), ``timeout_s`` (longest
            one actor call may take, building the tool on an actor's first call included; a
            stuck actor is killed and replaced) and ``batch_window_s``.
        threads_per_actor: Torch threads in each CPU actor.
        max_retries: Actor deaths one batch survives before its calls fail.
        start_timeout_s: Longest an actor may take to start.
        init_kwargs: Extra :func:`ray.init` arguments when this pool starts Ray
            (default: ``include_dashboard=False``, ``log_to_driver=False``).
        **overrides: ``PoolConfig`` fields replacing those of ``config``.

    Ray stays initialised after :meth:`close` (which kills this pool's actors); call
    ``ray.shutdown()`` when done with Ray.
    """

    def __init__(
        self,
        config: PoolConfig | None = None,
        /,
        *,
        threads_per_actor: int = 1,
        max_retries: int = 3,
        start_timeout_s: float = 120.0,
        init_kwargs: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        cfg = pool_config(config, **overrides)
        device, num_actors = cfg.device, cfg.num_actors
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, **(init_kwargs or {})}
            ray.init(address=cfg.address, **kwargs)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        self.device = (
            "cuda" if device == "auto" and gpus else ("cpu" if device == "auto" else str(device))
        )
        if self.device == "cuda" and not gpus:
            raise ValueError("device='cuda' but the Ray cluster has no GPU; use 'auto' or 'cpu'")
        slots = gpus if self.device == "cuda" else int(resources.get("CPU", 1))
        self.num_actors = num_actors or max(1, slots)
        super().__init__(
            {"ray": self.num_actors},
            cfg,
            watchdog=False,  # ray.get(timeout=...) bounds every call, and can kill the actor
        )
        self.max_retries = max_retries
        self.start_timeout_s = start_timeout_s
        self._ray = ray
        options = {"num_gpus": 1} if self.device == "cuda" else {"num_cpus": 1}
        self._actor_cls = ray.remote(**options)(ToolActor)
        self._actor_args = (self.device, threads_per_actor)
        self._slots_cv = threading.Condition()
        self._watchers: list[threading.Thread] = []
        self._factories: dict[str, Any] = {}
        self.restarts = 0
        """Actors replaced so far (died, or killed after a timeout)."""
        self._slots = [_Slot(self._new_actor()) for _ in range(self.num_actors)]
        ray.get([s.actor.pid.remote() for s in self._slots], timeout=start_timeout_s)

    def __repr__(self) -> str:
        return (
            f"RayToolPool(num_actors={self.num_actors}, device={self.device!r}, "
            f"max_batch={self.max_batch}, timeout_s={self.timeout_s})"
        )

    def actors(self) -> list[Any]:
        """Current actor handles, one per slot (for monitoring and fault-injection tests)."""
        with self._slots_cv:
            return [s.actor for s in self._slots]

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(*self._actor_args)

    def _lane_of(self, call: ToolCall) -> str:
        return "ray"

    def _run_batch(self, lane: str, call: ToolCall, batch: torch.Tensor) -> torch.Tensor:
        ray = self._ray
        factory = self._factory(call.tool)
        params = dict(call.params)
        last: BaseException | None = None
        for _ in range(self.max_retries + 1):
            slot, generation = self._acquire()
            try:
                ref = slot.actor.run.remote(call.tool, factory, params, batch)
                return ray.get(ref, timeout=self.timeout_s)
            except ray.exceptions.GetTimeoutError:
                self._replace(slot, generation, kill=True)
                raise ToolTimeoutError(
                    f"tool {call.tool!r} did not finish within timeout_s={self.timeout_s:g} s "
                    "(its actor was killed and replaced)"
                ) from None
            except ray.exceptions.RayActorError as err:
                logger.warning("tool actor died running %s; retrying on another actor", call)
                self._replace(slot, generation)
                last = err
            except ray.exceptions.RayTaskError as err:
                raise err.cause if isinstance(err.cause, Exception) else err from None
            finally:
                with self._slots_cv:
                    slot.load -= 1
        raise ToolExecutionError(
            f"tool actors died {self.max_retries + 1} times running {call}: {last}"
        )

    def _factory(self, name: str) -> Any:
        """The tool's registry factory, put in the object store once (actors fetch it)."""
        with self._slots_cv:
            ref = self._factories.get(name)
            if ref is None:
                ref = self._factories[name] = self._ray.put(TOOLS.get(name))
            return ref

    def _acquire(self) -> tuple[_Slot, int]:
        """The least-loaded ready slot (waiting while every slot is restarting)."""
        with self._slots_cv:
            while not (ready := [s for s in self._slots if s.ready]):
                self._slots_cv.wait()
            slot = min(ready, key=lambda s: s.load)
            slot.load += 1
            return slot, slot.generation

    def _replace(self, slot: _Slot, generation: int, kill: bool = False) -> None:
        """Give ``slot`` a fresh actor, once per death; it takes calls again once it is up."""
        with self._slots_cv:
            if slot.generation != generation or self._closed:
                return
            old, slot.actor = slot.actor, self._new_actor()
            slot.generation += 1
            self.restarts += 1
            slot.ready = False
            watcher = threading.Thread(
                target=self._await_ready,
                args=(slot, slot.actor, slot.generation),
                name=f"{self._name}-actor-start",
                daemon=True,
            )
            self._watchers.append(watcher)
        if kill:
            self._ray.kill(old, no_restart=True)
        watcher.start()

    def _await_ready(self, slot: _Slot, actor: Any, generation: int) -> None:
        try:
            self._ray.get(actor.pid.remote(), timeout=self.start_timeout_s)
        except Exception as err:  # noqa: BLE001 - a later call fails and is retried
            if not self._closed:
                logger.warning("replacement tool actor failed to start: %s", err)
        with self._slots_cv:
            if slot.generation == generation:
                slot.ready = True
            self._slots_cv.notify_all()

    def _shutdown(self) -> None:
        with self._slots_cv:
            actors = [s.actor for s in self._slots]
            self._slots_cv.notify_all()
        for actor in actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception as err:  # noqa: BLE001 - already dead
                logger.debug("killing tool actor: %s", err)
        for watcher in self._watchers:  # they end once their (now killed) actor answers
            if watcher.is_alive():
                watcher.join()
