"""The tool pool: every tool call of every env, agent and rollout goes through one.

A pool takes ``(image, ToolCall)`` requests and answers each with a future of a
:class:`ToolResult`. A call never raises into the caller: a tool that raises (``SystemExit``
and other ``BaseException`` included), breaks its output contract
(:func:`~tir_env.tools.base.check_output`: shape, float32 dtype, finite values), times out, or
a pool that is closed, yields a :class:`ToolResult` with ``error`` set and ``image=None``.
Tools see a private copy of the caller's image, so a tool that edits its input in place cannot
corrupt the caller's tensor (or an env's input image).

Implementations:

* :class:`SyncToolPool`: runs each call at once in the caller's thread; the simple reference.
* :class:`LocalToolPool`: the default (:func:`default_pool`). Batched, asynchronous, cached and
  fault-isolated, with worker threads in this process (the "globally shared model-call pool" of
  TIR-Agent, with the prefix cache of OPERA's inference service; ``notes/paper.md`` §7).
* :class:`~tir_env.tools.ray_pool.RayToolPool`: the same front end, executing on Ray actors
  (``pip install 'tir-env[ray]'``).

Example:
    >>> from tir_env.tools.pool import LocalToolPool
    >>> from tir_env.types import ToolCall
    >>> import torch
    >>> with LocalToolPool(device="cpu") as pool:
    ...     results = pool.map([torch.rand(1, 3, 8, 8)] * 2, [ToolCall("gamma_correction")] * 2)
    >>> [r.cached for r in results]
    [False, True]
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import torch

from tir_env.device import resolve_device
from tir_env.errors import ImageError, ToolExecutionError
from tir_env.images import image_digest
from tir_env.tools.base import TOOLS, Tool, make_tool, tool_info, validate_call
from tir_env.types import ToolCall

logger = logging.getLogger(__name__)

PoolBackend = Literal["sync", "local", "ray"]
DeviceName = Literal["auto", "cpu", "cuda"]

#: Pixel budget of one learned-tool batch on a CPU under ``max_batch_pixels="auto"``: where a
#: 4-layer 32-channel CNN ran fastest per image on the development machine (8 x 32^2,
#: 2 x 64^2, 1 x 128^2); larger batches were up to 2.7x slower per image.
CPU_BATCH_PIXELS = 8192


class ToolTimeoutError(ToolExecutionError):
    """A tool invocation ran longer than the pool's ``timeout_s``."""


class PoolClosedError(ToolExecutionError):
    """A call reached a pool after :meth:`ToolPool.close` (or the pool closed before it ran)."""


@dataclass(frozen=True)
class ToolResult:
    """Outcome of one tool call.

    Attributes:
        image: float32 1x3xHxW result on the CPU, or ``None`` when the call failed.
        error: ``"ErrorType: message"`` when the call failed, else ``None``.
        seconds: Wall time spent executing; a batched call's time is shared equally among
            its images (0 for cache hits).
        cached: Whether the result came from the pool's cache (or a coalesced identical call).
    """

    image: torch.Tensor | None
    error: str | None = None
    seconds: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        """True when the tool produced an image."""
        return self.error is None and self.image is not None


@dataclass
class PoolStats:
    """Counters a pool keeps.

    Attributes:
        calls: Calls submitted (including invalid ones and cache hits).
        executions: Images actually processed by tools (a failed batch retried one by one
            counts twice: it is work done).
        batches: Tool invocations (one per batch).
        cache_hits: Calls answered from the cache or by coalescing with an identical call.
        failures: Calls answered with an error.
        tool_seconds: Wall time spent inside tools.
    """

    calls: int = 0
    executions: int = 0
    batches: int = 0
    cache_hits: int = 0
    failures: int = 0
    tool_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Plain dict copy, for logs and benchmark records."""
        return dict(vars(self))


@dataclass(frozen=True)
class PoolConfig:
    """How the shared tool pool executes calls (see :func:`make_pool`).

    Attributes:
        backend: ``"local"`` (threads in this process; the default), ``"sync"`` (the caller's
            thread, no batching or cache) or ``"ray"`` (tool actors on a Ray cluster).
        device: Where learned and pretrained tools run; ``"auto"`` is CUDA when available.
            Classical tools always run on the CPU.
        max_batch: Most images concatenated into one tool invocation.
        max_batch_pixels: Most pixels (N x H x W) in one invocation of a learned tool (local
            backend): ``"auto"`` caps CPU batches at :data:`CPU_BATCH_PIXELS` and leaves CUDA
            batches uncapped; ``None`` never caps. On a CPU, large conv batches fall out of
            cache and run slower than single images (``docs/performance.md``).
        workers: Threads running classical tools (local backend).
        cache_bytes: Bound of the LRU result cache, in bytes of result tensors; 0 disables
            caching and the coalescing of identical in-flight calls.
        timeout_s: Longest one tool invocation (a whole batch) may run before its calls fail
            with :class:`ToolTimeoutError`.
        batch_window_s: How long a call arriving among concurrent submissions waits for more
            calls of the same group to batch with (calls of one :meth:`ToolPool.submit_many` or
            :meth:`ToolPool.map` never wait).
        num_actors: Ray actors (``None``: one per CPU, or per GPU on CUDA).
        address: Ray cluster to join (``None``: start a local one unless Ray is initialised).
    """

    backend: PoolBackend = "local"
    device: DeviceName = "auto"
    max_batch: int = 16
    max_batch_pixels: int | Literal["auto"] | None = "auto"
    workers: int = 2
    cache_bytes: int = 256 * 2**20
    timeout_s: float = 30.0
    batch_window_s: float = 0.002
    num_actors: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("sync", "local", "ray"):
            raise ValueError(f"backend must be 'sync', 'local' or 'ray', got {self.backend!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.max_batch < 1 or self.workers < 1:
            raise ValueError("max_batch and workers must be >= 1")
        if self.max_batch_pixels not in ("auto", None) and not (
            isinstance(self.max_batch_pixels, int) and self.max_batch_pixels >= 1
        ):
            got = self.max_batch_pixels
            raise ValueError(f"max_batch_pixels must be 'auto', None or an int >= 1, got {got!r}")
        if self.cache_bytes < 0 or self.batch_window_s < 0:
            raise ValueError("cache_bytes and batch_window_s must be >= 0")
        if not (self.timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.num_actors is not None and self.num_actors < 1:
            raise ValueError(f"num_actors must be >= 1 or None, got {self.num_actors}")


class ToolPool(ABC):
    """Interface shared by every pool implementation."""

    def __init__(self) -> None:
        self.stats = PoolStats()
        self._stats_lock = threading.Lock()

    @abstractmethod
    def submit(self, image: torch.Tensor, call: ToolCall) -> Future[ToolResult]:
        """Queue ``call`` on a 1x3xHxW float32 image; the future never raises."""

    def run(self, image: torch.Tensor, call: ToolCall) -> ToolResult:
        """Submit one call and wait for it."""
        return self.submit(image, call).result()

    def submit_many(
        self, images: Sequence[torch.Tensor], calls: Sequence[ToolCall]
    ) -> list[Future[ToolResult]]:
        """Queue several calls at once (a batching pool groups them without waiting)."""
        if len(images) != len(calls):
            raise ValueError(f"{len(images)} images but {len(calls)} calls")
        return [self.submit(im, c) for im, c in zip(images, calls, strict=True)]

    def map(self, images: Sequence[torch.Tensor], calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Submit every call first (so a batching pool can group them), then wait for all."""
        return [f.result() for f in self.submit_many(images, calls)]

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for stateless pools
        """Release workers and models; idempotent."""

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every later call would fail)."""
        return False

    def __enter__(self) -> ToolPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, **increments: float) -> None:
        with self._stats_lock:
            for key, value in increments.items():
                setattr(self.stats, key, getattr(self.stats, key) + value)


def execute(image: torch.Tensor, call: ToolCall, device: torch.device | None = None) -> ToolResult:
    """Run one call in this thread, turning every failure into an error result.

    The tool gets a private copy of ``image``. Every exception the tool raises becomes an
    error result, ``SystemExit`` included; only a ``KeyboardInterrupt`` in the main thread
    propagates (the user's Ctrl-C must still stop the program).
    """
    start = time.perf_counter()
    try:
        tool = make_tool(call.tool)
        batch = image.detach().clone() if device is None else image.to(device, copy=True)
        out = check_result(call, batch, tool(batch, call.params)).to("cpu")
    except Exception as err:  # noqa: BLE001 - a tool must never crash its caller
        return ToolResult(None, _describe_error(err), time.perf_counter() - start)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt) and _in_main_thread():
            raise
        return ToolResult(None, _describe_crash(call, err), time.perf_counter() - start)
    return ToolResult(out, None, time.perf_counter() - start)


def check_result(call: ToolCall, batch: torch.Tensor, out: object) -> torch.Tensor:
    """The pool's own check of a tool output: a finite float32 tensor with the batch's size.

    :func:`~tir_env.tools.base.check_output` checks the full contract inside ``Tool.__call__``;
    this cheap check also covers tools that override ``__call__``.

    Raises:
        ToolExecutionError: not a tensor, not float32, a different number of images, or
            NaN/Inf values.
    """
    if not isinstance(out, torch.Tensor):
        raise ToolExecutionError(f"tool {call.tool!r} returned {type(out).__name__}, not a tensor")
    if out.dtype != torch.float32:
        raise ToolExecutionError(
            f"tool {call.tool!r} returned dtype {out.dtype}, expected torch.float32 (the tool "
            "contract; convert inside the tool)"
        )
    if out.ndim != 4 or out.shape[0] != batch.shape[0]:
        raise ToolExecutionError(
            f"tool {call.tool!r} returned shape {tuple(out.shape)} for a batch of "
            f"{batch.shape[0]} image(s)"
        )
    if not torch.isfinite(out).all():  # cheap next to any tool; NaN would poison metrics
        raise ToolExecutionError(f"tool {call.tool!r} returned NaN or Inf")
    return out


class SyncToolPool(ToolPool):
    """Runs every call immediately in the caller's thread (no batching, no cache)."""

    def submit(self, image: torch.Tensor, call: ToolCall) -> Future[ToolResult]:
        """Execute now and return an already-completed future."""
        result = execute(image, call)
        self._count(
            calls=1,
            executions=1,
            batches=1,
            failures=0 if result.ok else 1,
            tool_seconds=result.seconds,
        )
        return _done(result)


class ResultCache:
    """LRU map ``(image digest, resolved ToolCall) -> result tensor``, bounded in bytes.

    Not thread-safe on its own: the pool calls it under its lock. Stored tensors are never
    handed out; callers get clones, so they cannot corrupt the cache.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple[str, ToolCall], torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[str, ToolCall]) -> torch.Tensor | None:
        """The stored tensor (not a copy) or ``None``; marks it recently used."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[str, ToolCall], value: torch.Tensor) -> None:
        """Store ``value`` (the caller passes a private copy), evicting least recently used."""
        size = value.numel() * value.element_size()
        if size > self.max_bytes or key in self._items:
            return
        self._items[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()


@dataclass(eq=False)
class _Entry:
    """One pending call: its image, resolved call, cache key and future."""

    image: torch.Tensor
    call: ToolCall
    key: tuple[str, ToolCall] | None
    future: Future[ToolResult]
    ready_at: float
    followers: list[Future[ToolResult]] = field(default_factory=list)
    done: bool = False


@dataclass(eq=False)
class _Worker:
    """A worker thread of one lane and what it is running."""

    lane: str
    thread: threading.Thread | None = None
    entries: list[_Entry] = field(default_factory=list)
    started: float | None = None  # monotonic start of the running tool invocation
    abandoned: bool = False
    exited: bool = False


_GroupKey = tuple[ToolCall, tuple[int, ...], str]


class BatchingToolPool(ToolPool):
    """Front end shared by the batching pools: cache, coalescing, grouping, fault isolation.

    Calls are grouped by (resolved tool call, image size, device). Each *lane* (e.g. "device"
    and "cpu") has worker threads; a free worker takes the oldest ready group of its lane and
    runs up to ``max_batch`` of its calls as one tool invocation (:meth:`_run_batch`), so
    batches grow by themselves while workers are busy. A call is *ready* at once when it came
    with others in one :meth:`submit_many` or :meth:`map`, or from a caller that waits for
    each result (sequential submits); a call arriving while others are outstanding and less
    than ``batch_window_s`` after the previous submit (concurrent callers, e.g. envs stepping
    in threads) waits up to that window for companions.

    Fault isolation: when a batched invocation fails, its calls are retried one by one, so one
    bad input does not fail its neighbours. A watchdog thread fails the calls of an invocation
    running longer than ``timeout_s`` and replaces its worker thread. Python threads cannot be
    killed: the stuck thread is abandoned (it is a daemon, so it never blocks interpreter exit)
    and its late result is dropped; a tool that hangs forever leaks one thread per timeout.

    Subclasses define the lanes and :meth:`_run_batch`.

    Args:
        lanes: Lane name -> number of worker threads.
        max_batch: Most images in one tool invocation.
        cache_bytes: LRU cache bound (0 disables caching and coalescing).
        timeout_s: Longest one invocation may run (enforced by the watchdog when ``watchdog``).
        batch_window_s: Longest a concurrent call waits for companions.
        watchdog: Whether to run the timeout watchdog thread (a backend with its own
            timeouts, such as Ray's, turns it off).
    """

    def __init__(
        self,
        lanes: Mapping[str, int],
        *,
        max_batch: int = 16,
        cache_bytes: int = 256 * 2**20,
        timeout_s: float = 30.0,
        batch_window_s: float = 0.002,
        watchdog: bool = True,
    ) -> None:
        super().__init__()
        # PoolConfig validates the values, with the same messages as a config file would get.
        PoolConfig(
            max_batch=max_batch,
            cache_bytes=cache_bytes,
            timeout_s=timeout_s,
            batch_window_s=batch_window_s,
        )
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self.batch_window_s = batch_window_s
        self.cache = ResultCache(cache_bytes) if cache_bytes > 0 else None
        self._lane_sizes = dict(lanes)
        self._use_watchdog = watchdog
        # One lock guards everything below; each lane, the watchdog and close() wait on their
        # own condition, so an event wakes only the threads it concerns.
        self._lock = threading.RLock()
        self._lane_cv = {lane: threading.Condition(self._lock) for lane in lanes}
        self._watch_cv = threading.Condition(self._lock)
        self._exit_cv = threading.Condition(self._lock)
        self._groups: dict[str, dict[_GroupKey, deque[_Entry]]] = {lane: {} for lane in lanes}
        self._inflight: dict[tuple[str, ToolCall], _Entry] = {}
        self._workers: list[_Worker] = []
        self._watchdog: threading.Thread | None = None
        self._started = False
        self._closed = False
        self._last_submit = -math.inf
        self._watch_idle = False  # the watchdog waits without a deadline
        self._outstanding = 0  # queued or running calls (not counting coalesced followers)
        self._pid = os.getpid()
        self._name = f"tir-pool-{id(self):x}"

    # ----------------------------------------------------------------- backend hooks
    @abstractmethod
    def _lane_of(self, call: ToolCall) -> str:
        """The lane that runs ``call`` (must be one of the lanes given to ``__init__``)."""

    @abstractmethod
    def _run_batch(self, lane: str, call: ToolCall, batch: torch.Tensor) -> torch.Tensor:
        """Run one resolved call on an Nx3xHxW CPU batch; return the CPU result or raise."""

    def _prepare(self, call: ToolCall) -> None:
        """Build what ``call`` needs before its invocation is timed (e.g. load the tool)."""

    def _take_count(self, lane: str, queue: Sequence[_Entry], idle: int) -> int:
        """How many of the calls pending in ``queue`` (one group) a free worker takes.

        ``idle`` counts the lane's free workers, this one included.
        """
        return min(self.max_batch, len(queue))

    def _shutdown(self) -> None:
        """Release backend resources after the threads have stopped."""

    # ----------------------------------------------------------------- public API
    def submit(self, image: torch.Tensor, call: ToolCall) -> Future[ToolResult]:
        """Queue ``call`` on a 1x3xHxW float32 image; the future never raises.

        The pool copies the image at submission, so the caller may reuse it at once and the
        tool cannot modify it. After :meth:`close`, the future holds a
        :class:`PoolClosedError` result.
        """
        return self._enqueue([(image, call)], together=False)[0]

    def submit_many(
        self, images: Sequence[torch.Tensor], calls: Sequence[ToolCall]
    ) -> list[Future[ToolResult]]:
        """Queue every call at once: they batch together without waiting for a window."""
        if len(images) != len(calls):
            raise ValueError(f"{len(images)} images but {len(calls)} calls")
        return self._enqueue(list(zip(images, calls, strict=True)), together=True)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Stop the pool; idempotent.

        Calls not yet started fail with :class:`PoolClosedError`; running invocations finish
        (or time out) and every worker thread is joined, except threads already abandoned on a
        timeout, which are daemons and end when their tool returns. In a forked child process
        it does nothing (the threads belong to the parent).
        """
        if os.getpid() != self._pid:
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = [e for lane in self._groups.values() for g in lane.values() for e in g]
            for lane in self._groups.values():
                lane.clear()
            self._notify_all()
        error = f"PoolClosedError: {self._name} was closed before the call ran"
        for entry in pending:
            self._finish(entry, ToolResult(None, error))
        self._join_threads()
        self._shutdown()

    def cache_clear(self) -> None:
        """Empty the result cache."""
        with self._lock:
            if self.cache is not None:
                self.cache = ResultCache(self.cache.max_bytes)

    # ----------------------------------------------------------------- submission
    def _enqueue(
        self, items: Sequence[tuple[torch.Tensor, ToolCall]], together: bool
    ) -> list[Future[ToolResult]]:
        if os.getpid() != self._pid:
            # A forked child inherits neither the worker threads nor a usable lock (another
            # thread may have held it at the fork): answer without touching either.
            message = (
                f"PoolClosedError: {self._name} was used in a forked child process; make a new one"
            )
            return [_done(ToolResult(None, message)) for _ in items]  # (stats lock: same)
        # Many calls on one image (a planner's lookahead) check, hash and copy it once.
        digests: dict[int, tuple[torch.Tensor, str | None]] = {}
        prepared = [self._prepare_entry(image, call, digests) for image, call in items]
        hits: list[tuple[Future[ToolResult], torch.Tensor]] = []
        rejected = 0
        with self._lock:
            now = time.monotonic()
            # Another caller is active when calls are outstanding and the last submit was
            # recent; a lone caller waiting on each result never lingers.
            recent = now - self._last_submit < self.batch_window_s
            concurrent = not together and self._outstanding > 0 and recent
            ready_at = now + self.batch_window_s if concurrent else now
            self._last_submit = now
            closed = self._closed
            for entry in prepared:
                if isinstance(entry, Future) or closed:
                    rejected += 1
                    continue
                entry.ready_at = ready_at
                cached = self._lookup(entry)
                if cached is not None:
                    hits.append((entry.future, cached))
            if not closed:
                self._ensure_started()
                for lane, groups in self._groups.items():
                    if groups:
                        self._lane_cv[lane].notify_all()
        self._count(calls=len(items), cache_hits=len(hits), failures=rejected)
        for future, tensor in hits:
            future.set_result(ToolResult(tensor.clone(), None, 0.0, cached=True))
        return [self._resolve_rejected(e, closed) for e in prepared]

    def _prepare_entry(
        self,
        image: torch.Tensor,
        call: ToolCall,
        digests: dict[int, tuple[torch.Tensor, str | None]],
    ) -> _Entry | Future[ToolResult]:
        # Validation happens in the caller's thread so a bad call fails alone, at once.
        try:
            if id(image) not in digests:  # ``digests`` lives for one submit: ids stay valid
                _check_image(image)
                digest = image_digest(image) if self.cache is not None else None
                # A private copy: a tool editing its input in place (or the caller reusing
                # its tensor before the call runs) cannot corrupt the other side.
                digests[id(image)] = (image.detach().clone(), digest)
            resolved = validate_call(call)
            private, digest = digests[id(image)]
            key = (digest, resolved) if digest is not None else None
        except Exception as err:  # noqa: BLE001 - reported in the result, never raised
            return _done(ToolResult(None, _describe_error(err)))
        return _Entry(private, resolved, key, Future(), 0.0)

    def _lookup(self, entry: _Entry) -> torch.Tensor | None:
        """Under the lock: a cached tensor, or join an identical in-flight call, or queue."""
        if entry.key is not None and self.cache is not None:
            cached = self.cache.get(entry.key)
            if cached is not None:
                return cached
            leader = self._inflight.get(entry.key)
            if leader is not None:
                leader.followers.append(entry.future)
                return None
            self._inflight[entry.key] = entry
        group = (entry.call, tuple(entry.image.shape[1:]), str(entry.image.device))
        self._outstanding += 1
        self._groups[self._lane_of(entry.call)].setdefault(group, deque()).append(entry)
        return None

    def _resolve_rejected(self, entry: _Entry | Future[ToolResult], closed: bool) -> Future:
        if isinstance(entry, Future):
            return entry
        if closed and not entry.future.done():
            entry.future.set_result(ToolResult(None, f"PoolClosedError: {self._name} was closed"))
        return entry.future

    # ----------------------------------------------------------------- completion
    def _finish(self, entry: _Entry, result: ToolResult) -> None:
        """Resolve ``entry`` (once) and its coalesced followers; cache a success."""
        with self._lock:
            if entry.done:
                return
            entry.done = True
            self._outstanding -= 1
            followers: list[Future[ToolResult]] = []
            if entry.key is not None:
                if self._inflight.get(entry.key) is entry:
                    del self._inflight[entry.key]
                followers = entry.followers
                if result.ok and self.cache is not None and result.image is not None:
                    self.cache.put(entry.key, result.image.clone())
        failed = 0 if result.ok else 1 + len(followers)
        self._count(failures=failed, cache_hits=len(followers) if result.ok else 0)
        entry.future.set_result(result)
        for future in followers:
            image = result.image.clone() if result.image is not None else None
            future.set_result(ToolResult(image, result.error, 0.0, cached=result.ok))

    # ----------------------------------------------------------------- workers
    def _notify_all(self) -> None:
        """Under the lock: wake every waiting thread (on close)."""
        for cv in [*self._lane_cv.values(), self._watch_cv, self._exit_cv]:
            cv.notify_all()

    def _ensure_started(self) -> None:
        """Under the lock: start the worker and watchdog threads on first use."""
        if self._started:
            return
        self._started = True
        for lane, size in self._lane_sizes.items():
            for _ in range(size):
                self._spawn(lane)
        if self._use_watchdog:
            self._watchdog = threading.Thread(
                target=self._watchdog_loop, name=f"{self._name}-watchdog", daemon=True
            )
            self._watchdog.start()

    def _spawn(self, lane: str) -> None:
        worker = _Worker(lane)
        name = f"{self._name}-{lane}-{len(self._workers)}"
        worker.thread = threading.Thread(
            target=self._worker_loop, args=(worker,), name=name, daemon=True
        )
        self._workers.append(worker)
        worker.thread.start()

    def _worker_loop(self, worker: _Worker) -> None:
        try:
            while True:
                with self._lock:
                    job = self._next_job(worker)
                    if job is None:
                        return
                    worker.entries = job
                try:
                    self._run_job(worker, job)
                except BaseException as err:  # noqa: BLE001 - a pool bug must not strand futures
                    logger.exception("tool pool worker failed")
                    for entry in job:
                        self._finish(entry, ToolResult(None, _describe_error(err)))
                with self._lock:
                    worker.entries = []
                    if worker.abandoned:
                        return
        finally:
            with self._lock:
                worker.exited = True
                self._watch_cv.notify()
                self._exit_cv.notify_all()

    def _next_job(self, worker: _Worker) -> list[_Entry] | None:
        """Under the lock: wait for a ready group of ``worker``'s lane and take a batch of it."""
        while not (self._closed or worker.abandoned):
            groups = self._groups[worker.lane]
            now = time.monotonic()
            wait: float | None = None
            for key, queue in groups.items():
                if len(queue) >= self.max_batch or queue[0].ready_at <= now:
                    idle = sum(
                        1 for w in self._active_workers() if w.lane == worker.lane and not w.entries
                    )
                    n = self._take_count(worker.lane, queue, max(1, idle))
                    job = [queue.popleft() for _ in range(n)]
                    if not queue:
                        del groups[key]
                    return job
                delay = queue[0].ready_at - now
                wait = delay if wait is None else min(wait, delay)
            self._lane_cv[worker.lane].wait(timeout=wait)
        return None

    def _run_job(self, worker: _Worker, entries: list[_Entry]) -> None:
        """Run one group's calls as one invocation; on failure retry them one by one."""
        call = entries[0].call
        try:
            self._prepare(call)
        except BaseException as err:  # noqa: BLE001 - SystemExit in a constructor included
            why = _describe_crash(call, err) if _is_crash(err) else _describe_error(err)
            for entry in entries:
                self._finish(entry, ToolResult(None, why))
            return
        images = [e.image for e in entries]
        batch = images[0] if len(images) == 1 else torch.cat(images)
        out, error, seconds = self._attempt(worker, call, batch)
        if out is not None:
            parts = [out] if len(entries) == 1 else [p.clone() for p in out.split(_sizes(images))]
            for entry, part in zip(entries, parts, strict=True):
                share = seconds * part.shape[0] / out.shape[0]
                self._finish(entry, ToolResult(part, None, share))
            return
        if len(entries) == 1:
            self._finish(entries[0], ToolResult(None, error, seconds))
            return
        for entry in entries:  # isolate the bad input(s)
            if worker.abandoned:
                return
            out, error, seconds = self._attempt(worker, call, entry.image)
            self._finish(entry, ToolResult(out, error, seconds))

    def _attempt(
        self, worker: _Worker, call: ToolCall, batch: torch.Tensor
    ) -> tuple[torch.Tensor | None, str | None, float]:
        """One timed tool invocation; failures become an error string."""
        with self._lock:
            worker.started = time.monotonic()
            if self._watch_idle:  # else it wakes at an earlier deadline and sees this one
                self._watch_cv.notify()
        start = time.perf_counter()
        try:
            out: torch.Tensor | None = check_result(
                call, batch, self._run_batch(worker.lane, call, batch)
            )
            error = None
        except Exception as err:  # noqa: BLE001 - a tool must never crash the pool
            out, error = None, _describe_error(err)
        except BaseException as err:  # noqa: BLE001 - SystemExit, KeyboardInterrupt, ...
            # Not the user's Ctrl-C (that reaches the main thread only): a tool that called
            # sys.exit() or raised an interrupt. Left alone it would end this worker thread
            # silently and its futures would never resolve.
            out, error = None, _describe_crash(call, err)
        seconds = time.perf_counter() - start
        with self._lock:
            worker.started = None
        self._count(executions=batch.shape[0], batches=1, tool_seconds=seconds)
        return out, error, seconds

    # ----------------------------------------------------------------- timeouts, shutdown
    def _watchdog_loop(self) -> None:
        while True:
            with self._lock:
                if self._closed and not self._active_workers():
                    return
                expired = self._expired()
                if not expired:
                    timeout = self._next_deadline()
                    self._watch_idle = timeout is None
                    self._watch_cv.wait(timeout=timeout)
                    self._watch_idle = False
                    continue
            for entries, message, elapsed in expired:  # outside the lock: runs callbacks
                for entry in entries:
                    self._finish(entry, ToolResult(None, message, elapsed))

    def _active_workers(self) -> list[_Worker]:
        return [w for w in self._workers if not (w.abandoned or w.exited)]

    def _next_deadline(self) -> float | None:
        """Under the lock: seconds until the nearest invocation deadline (None: none running)."""
        starts = [w.started for w in self._active_workers() if w.started is not None]
        return None if not starts else max(0.0, min(starts) + self.timeout_s - time.monotonic())

    def _expired(self) -> list[tuple[list[_Entry], str, float]]:
        """Under the lock: abandon workers past their deadline; return the calls to fail."""
        now = time.monotonic()
        expired = []
        for worker in self._active_workers():
            if worker.started is not None and now - worker.started >= self.timeout_s:
                expired.append(self._abandon(worker, now - worker.started))
        return expired

    def _abandon(self, worker: _Worker, elapsed: float) -> tuple[list[_Entry], str, float]:
        """Under the lock: mark ``worker`` abandoned, start a replacement, say what to fail."""
        worker.abandoned = True
        worker.started = None
        tool = worker.entries[0].call.tool if worker.entries else "?"
        name = worker.thread.name if worker.thread else "?"
        logger.warning(
            "tool %r ran %.2f s > timeout_s=%g s; abandoning thread %s (Python threads cannot "
            "be killed) and starting a replacement",
            tool,
            elapsed,
            self.timeout_s,
            name,
        )
        if not self._closed:
            self._spawn(worker.lane)
        message = (
            f"ToolTimeoutError: tool {tool!r} did not finish within timeout_s={self.timeout_s:g} s"
        )
        return [e for e in worker.entries if not e.done], message, elapsed

    def _join_threads(self) -> None:
        """Wait for every non-abandoned worker (and the watchdog) to exit."""
        me = threading.current_thread()
        with self._lock:
            while [w for w in self._active_workers() if w.thread is not me]:
                self._exit_cv.wait(timeout=0.1)
            threads = [w.thread for w in self._workers if not w.abandoned]
        for thread in [*threads, self._watchdog]:
            if thread is not None and thread is not me:
                thread.join()


class LocalToolPool(BatchingToolPool):
    """The default pool: batched, asynchronous, cached, fault-isolated, in this process.

    Learned and pretrained tools run in one "device" worker thread on ``device``; each is
    built once, moved there once and kept resident (on CUDA the pool builds its own instance,
    so the CPU instance shared through :func:`~tir_env.tools.base.make_tool` stays on the CPU).
    Classical tools run in ``workers`` CPU threads; a group of classical calls is split evenly
    between the CPU workers (their tools loop over images, so parallelism beats batching).
    Results are identical to per-call results for tools that process images independently;
    float convolutions may differ by about one unit in the last place between batch sizes.

    Args:
        device: Where learned/pretrained tools run (``"auto"``: CUDA when available).
        max_batch: Most images concatenated into one tool invocation.
        workers: Threads for classical tools.
        max_batch_pixels: Pixel cap of a learned-tool batch (``"auto"``:
            :data:`CPU_BATCH_PIXELS` on a CPU, none on CUDA; ``None``: no cap).
        cache_bytes: LRU result-cache bound in bytes (0 disables caching and coalescing).
        timeout_s: Longest one tool invocation may run.
        batch_window_s: Longest a concurrently submitted call waits for companions.
    """

    def __init__(
        self,
        device: DeviceName | str = "auto",
        max_batch: int = 16,
        workers: int = 2,
        max_batch_pixels: int | Literal["auto"] | None = "auto",
        cache_bytes: int = 256 * 2**20,
        timeout_s: float = 30.0,
        batch_window_s: float = 0.002,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        super().__init__(
            {"device": 1, "cpu": workers},
            max_batch=max_batch,
            cache_bytes=cache_bytes,
            timeout_s=timeout_s,
            batch_window_s=batch_window_s,
        )
        self.device = resolve_device(device)
        self.workers = workers
        PoolConfig(max_batch_pixels=max_batch_pixels)  # validates
        if max_batch_pixels == "auto":
            max_batch_pixels = CPU_BATCH_PIXELS if self.device.type == "cpu" else None
        self.max_batch_pixels: int | None = max_batch_pixels
        self._tools: dict[str, Tool] = {}
        self._tools_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LocalToolPool(device={str(self.device)!r}, max_batch={self.max_batch}, "
            f"workers={self.workers}, timeout_s={self.timeout_s})"
        )

    def _lane_of(self, call: ToolCall) -> str:
        return "cpu" if tool_info(call.tool).kind == "classical" else "device"

    def _take_count(self, lane: str, queue: Sequence[_Entry], idle: int) -> int:
        if lane == "cpu":  # share the group among the free CPU workers
            return min(self.max_batch, -(-len(queue) // idle))
        n = min(self.max_batch, len(queue))
        if self.max_batch_pixels is not None:
            image = queue[0].image
            per_call = image.shape[0] * image.shape[2] * image.shape[3]
            n = min(n, max(1, self.max_batch_pixels // per_call))
        return n

    def _prepare(self, call: ToolCall) -> None:
        self._tool(call.tool)

    def _tool(self, name: str) -> Tool:
        with self._tools_lock:
            tool = self._tools.get(name)
            if tool is None:
                if tool_info(name).kind == "classical":
                    tool = make_tool(name)
                elif self.device.type == "cpu":
                    tool = make_tool(name).to(self.device)
                else:
                    tool = TOOLS.get(name)().to(self.device)
                self._tools[name] = tool
            return tool

    def _run_batch(self, lane: str, call: ToolCall, batch: torch.Tensor) -> torch.Tensor:
        tool = self._tool(call.tool)
        if lane == "device":
            return tool(batch.to(self.device), call.params).to("cpu")
        return tool(batch, call.params)


def make_pool(config: PoolConfig | None = None, **overrides: Any) -> ToolPool:
    """Build the pool ``config`` describes (keyword overrides replace its fields).

    Raises:
        TypeError: an override that is not a :class:`PoolConfig` field.
        ImportError: ``backend="ray"`` without Ray installed.
    """
    names = {f.name for f in fields(PoolConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown PoolConfig field(s) {unknown}; fields: {sorted(names)}")
    cfg = replace(config or PoolConfig(), **overrides)
    if cfg.backend == "sync":
        return SyncToolPool()
    common: dict[str, Any] = dict(
        device=cfg.device,
        max_batch=cfg.max_batch,
        cache_bytes=cfg.cache_bytes,
        timeout_s=cfg.timeout_s,
        batch_window_s=cfg.batch_window_s,
    )
    if cfg.backend == "ray":
        from tir_env.tools.ray_pool import RayToolPool

        return RayToolPool(num_actors=cfg.num_actors, address=cfg.address, **common)
    return LocalToolPool(workers=cfg.workers, max_batch_pixels=cfg.max_batch_pixels, **common)


_DEFAULT_POOL: ToolPool | None = None
_DEFAULT_PID: int | None = None
_DEFAULT_LOCK = threading.Lock()


def default_pool() -> ToolPool:
    """The process-wide shared pool: a :class:`LocalToolPool` built from :class:`PoolConfig`.

    Created on first use and closed at interpreter exit; a forked child process gets its own,
    and so does a caller after the default was closed.
    Replace it with :func:`set_default_pool`.
    """
    global _DEFAULT_POOL, _DEFAULT_PID
    with _DEFAULT_LOCK:
        if _DEFAULT_POOL is None or os.getpid() != _DEFAULT_PID or _DEFAULT_POOL.closed:
            # A closed default (someone called default_pool().close()) is replaced: serving
            # from it would fail every later call with reward -1.
            _DEFAULT_POOL, _DEFAULT_PID = make_pool(PoolConfig()), os.getpid()
        return _DEFAULT_POOL


def set_default_pool(pool: ToolPool | None) -> ToolPool | None:
    """Make ``pool`` the process-wide default (``None``: build a new one on next use).

    Returns:
        The previous default pool, which the caller may close; it is not closed here
        because envs may still hold it.
    """
    global _DEFAULT_POOL, _DEFAULT_PID
    with _DEFAULT_LOCK:
        previous = _DEFAULT_POOL if os.getpid() == _DEFAULT_PID else None
        _DEFAULT_POOL, _DEFAULT_PID = pool, os.getpid()
        return previous


@atexit.register
def _close_default_pool() -> None:
    if _DEFAULT_POOL is not None and os.getpid() == _DEFAULT_PID:
        _DEFAULT_POOL.close()


def _done(result: ToolResult) -> Future[ToolResult]:
    future: Future[ToolResult] = Future()
    future.set_result(result)
    return future


def _describe_error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _is_crash(err: BaseException) -> bool:
    return not isinstance(err, Exception)


def _describe_crash(call: ToolCall, err: BaseException) -> str:
    """A tool raised a ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``): a failure."""
    return (
        f"ToolExecutionError: tool {call.tool!r} raised {type(err).__name__}({err}); the call "
        "failed (tools must not exit or interrupt the process)"
    )


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _sizes(images: Sequence[torch.Tensor]) -> list[int]:
    return [int(im.shape[0]) for im in images]


def _check_image(image: object) -> None:
    """Cheap structural check at submit time (values are checked by the tool itself)."""
    if not isinstance(image, torch.Tensor) or image.dtype != torch.float32:
        raise ImageError(f"image must be a float32 torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3 or image.shape[0] < 1:
        raise ImageError(f"image must be Nx3xHxW (N >= 1), got shape {tuple(image.shape)}")
