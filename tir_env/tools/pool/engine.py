"""The batching engine shared by the local and Ray pools.

:class:`BatchingToolPool` is the front end: result cache, coalescing of identical in-flight
calls, grouping into batches, worker threads per lane, one-by-one retry of a failed batch and
a timeout watchdog. Backends (:class:`~tir_env.tools.pool.local.LocalToolPool`,
:class:`~tir_env.tools.pool.ray.RayToolPool`) say which lane runs a call and how a batch runs.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future

import torch

from tir_env.images import image_digest
from tir_env.tools.base import make_tool, validate_call
from tir_env.tools.pool.base import ToolPool, check_result
from tir_env.tools.pool.cache import ResultCache
from tir_env.tools.pool.config import PoolConfig
from tir_env.tools.pool.jobs import CostEstimates, Entry, GroupKey, Worker, check_image, sizes
from tir_env.tools.pool.results import (
    ToolResult,
    describe_crash,
    describe_error,
    done,
    is_crash,
)
from tir_env.types import ToolCall

logger = logging.getLogger(__name__)


class BatchingToolPool(ToolPool):
    """Front end shared by the batching pools: cache, coalescing, grouping, fault isolation.

    Calls are grouped by (resolved tool call, or only the tool under :attr:`group_by_tool`,
    image size, device). Each *lane* (e.g. "device" and "cpu") has worker threads; a free
    worker takes the ready group of its lane whose job should run longest (each tool's
    measured seconds per image, plus the time waited: :class:`CostEstimates`) and runs up
    to ``max_batch`` of its calls as one tool invocation (:meth:`_run_batch`), so
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
        config: The pool's settings; this engine reads ``max_batch``, ``cache_bytes`` (0
            disables caching and coalescing), ``timeout_s`` (enforced by the watchdog when
            ``watchdog``) and ``batch_window_s``.
        watchdog: Whether to run the timeout watchdog thread (a backend with its own
            timeouts, such as Ray's, turns it off).
    """

    def __init__(
        self, lanes: Mapping[str, int], config: PoolConfig, *, watchdog: bool = True
    ) -> None:
        super().__init__()
        self.config = config
        self.max_batch = config.max_batch
        self.timeout_s = config.timeout_s
        self.batch_window_s = config.batch_window_s
        self.cache = ResultCache(config.cache_bytes) if config.cache_bytes > 0 else None
        self._lane_sizes = dict(lanes)
        self._use_watchdog = watchdog
        # One lock guards everything below; each lane, the watchdog and close() wait on their
        # own condition, so an event wakes only the threads it concerns.
        self._lock = threading.RLock()
        self._lane_cv = {lane: threading.Condition(self._lock) for lane in lanes}
        self._watch_cv = threading.Condition(self._lock)
        self._exit_cv = threading.Condition(self._lock)
        self._groups: dict[str, dict[GroupKey, deque[Entry]]] = {lane: {} for lane in lanes}
        self._inflight: dict[tuple[str, ToolCall], Entry] = {}
        self._workers: list[Worker] = []
        self._watchdog: threading.Thread | None = None
        self._started = False
        self._closed = False
        self._last_submit = -math.inf
        self._watch_idle = False  # the watchdog waits without a deadline
        self._outstanding = 0  # queued or running calls (not counting coalesced followers)
        self._pid = os.getpid()
        self._costs = CostEstimates()
        self._name = f"tir-pool-{id(self):x}"

    # ----------------------------------------------------------------- backend hooks
    @abstractmethod
    def _lane_of(self, call: ToolCall) -> str:
        """The lane that runs ``call`` (must be one of the lanes given to ``__init__``)."""

    #: Whether calls of one tool with different parameters share a group (the backend's
    #: :meth:`_run_mixed` runs them as one invocation with per-image parameters).
    group_by_tool: bool = False

    @abstractmethod
    def _run_batch(self, lane: str, call: ToolCall, batch: torch.Tensor) -> torch.Tensor:
        """Run one resolved call on an Nx3xHxW CPU batch; return the CPU result or raise."""

    def _run_mixed(self, lane: str, calls: Sequence[ToolCall], batch: torch.Tensor) -> torch.Tensor:
        """Run one tool's calls (one per image, parameters differ) under :attr:`group_by_tool`."""
        raise NotImplementedError(f"{type(self).__name__} does not group calls by tool")

    def _prepare(self, call: ToolCall) -> None:
        """Build what ``call`` needs before its invocation is timed (e.g. load the tool)."""

    def _take_count(self, lane: str, queue: Sequence[Entry], idle: int) -> int:
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
            return [done(ToolResult(None, message)) for _ in items]  # (stats lock: same)
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
    ) -> Entry | Future[ToolResult]:
        # Validation happens in the caller's thread so a bad call fails alone, at once.
        try:
            if id(image) not in digests:  # ``digests`` lives for one submit: ids stay valid
                check_image(image)
                digest = image_digest(image) if self.cache is not None else None
                # A private copy: a tool editing its input in place (or the caller reusing
                # its tensor before the call runs) cannot corrupt the other side.
                digests[id(image)] = (image.detach().clone(), digest)
            resolved = validate_call(call)
            private, digest = digests[id(image)]
            # what else decides the tool's output keys it too (Tool.cache_variant)
            variant = "" if digest is None else make_tool(resolved.tool).cache_variant()
            key = None if digest is None else (digest + variant, resolved)
        except Exception as err:  # noqa: BLE001 - reported in the result, never raised
            return done(ToolResult(None, describe_error(err)))
        return Entry(private, resolved, key, Future(), 0.0)

    def _lookup(self, entry: Entry) -> torch.Tensor | None:
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
        what = entry.call.tool if self.group_by_tool else entry.call
        group = (what, tuple(entry.image.shape[1:]), str(entry.image.device))
        self._outstanding += 1
        self._groups[self._lane_of(entry.call)].setdefault(group, deque()).append(entry)
        return None

    def _resolve_rejected(self, entry: Entry | Future[ToolResult], closed: bool) -> Future:
        if isinstance(entry, Future):
            return entry
        if closed and not entry.future.done():
            entry.future.set_result(ToolResult(None, f"PoolClosedError: {self._name} was closed"))
        return entry.future

    # ----------------------------------------------------------------- completion
    def _finish(self, entry: Entry, result: ToolResult) -> None:
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
        worker = Worker(lane)
        name = f"{self._name}-{lane}-{len(self._workers)}"
        worker.thread = threading.Thread(
            target=self._worker_loop, args=(worker,), name=name, daemon=True
        )
        self._workers.append(worker)
        worker.thread.start()

    def _worker_loop(self, worker: Worker) -> None:
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
                        self._finish(entry, ToolResult(None, describe_error(err)))
                with self._lock:
                    worker.entries = []
                    if worker.abandoned:
                        return
        finally:
            with self._lock:
                worker.exited = True
                self._watch_cv.notify()
                self._exit_cv.notify_all()

    def _next_job(self, worker: Worker) -> list[Entry] | None:
        """Under the lock: wait for a ready group of ``worker``'s lane and take a batch of it."""
        while not (self._closed or worker.abandoned):
            groups = self._groups[worker.lane]
            now = time.monotonic()
            wait: float | None = None
            best: tuple[float, GroupKey, int] | None = None  # the longest ready job first
            idle = sum(1 for w in self._active_workers() if w.lane == worker.lane and not w.entries)
            for key, queue in groups.items():
                if len(queue) >= self.max_batch or queue[0].ready_at <= now:
                    n = self._take_count(worker.lane, queue, max(1, idle))
                    cost = self._costs.priority(queue[0].call.tool, n, now - queue[0].ready_at)
                    if best is None or cost > best[0]:
                        best = (cost, key, n)
                    continue
                delay = queue[0].ready_at - now
                wait = delay if wait is None else min(wait, delay)
            if best is not None:
                queue = groups[best[1]]
                job = [queue.popleft() for _ in range(best[2])]
                if not queue:
                    del groups[best[1]]
                return job
            self._lane_cv[worker.lane].wait(timeout=wait)
        return None

    def _run_job(self, worker: Worker, entries: list[Entry]) -> None:
        """Run one group's calls as one invocation; on failure retry them one by one."""
        call = entries[0].call
        try:
            self._prepare(call)
        except BaseException as err:  # noqa: BLE001 - SystemExit in a constructor included
            why = describe_crash(call, err) if is_crash(err) else describe_error(err)
            for entry in entries:
                self._finish(entry, ToolResult(None, why))
            return
        images = [e.image for e in entries]
        batch = images[0] if len(images) == 1 else torch.cat(images)
        calls = [e.call for e, n in zip(entries, sizes(images), strict=True) for _ in range(n)]
        out, error, seconds = self._attempt(worker, call, batch, calls)
        if out is not None:
            parts = [out] if len(entries) == 1 else [p.clone() for p in out.split(sizes(images))]
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
            out, error, seconds = self._attempt(worker, entry.call, entry.image)
            self._finish(entry, ToolResult(out, error, seconds))

    def _attempt(
        self, worker: Worker, call: ToolCall, batch: torch.Tensor, calls: Sequence[ToolCall] = ()
    ) -> tuple[torch.Tensor | None, str | None, float]:
        """One timed invocation (``calls``: each image's own); failures become an error string."""
        with self._lock:
            worker.started = time.monotonic()
            if self._watch_idle:  # else it wakes at an earlier deadline and sees this one
                self._watch_cv.notify()
        start = time.perf_counter()
        try:
            if any(c != call for c in calls):  # one tool, different parameters
                result = self._run_mixed(worker.lane, calls, batch)
            else:
                result = self._run_batch(worker.lane, call, batch)
            out: torch.Tensor | None = check_result(call, batch, result)
            error = None
        except Exception as err:  # noqa: BLE001 - a tool must never crash the pool
            out, error = None, describe_error(err)
        except BaseException as err:  # noqa: BLE001 - SystemExit, KeyboardInterrupt, ...
            # Not the user's Ctrl-C (that reaches the main thread only): a tool that called
            # sys.exit() or raised an interrupt. Left alone it would end this worker thread
            # silently and its futures would never resolve.
            out, error = None, describe_crash(call, err)
        seconds = time.perf_counter() - start
        with self._lock:
            worker.started = None
            if out is not None:
                self._costs.update(call.tool, seconds, batch.shape[0])
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

    def _active_workers(self) -> list[Worker]:
        return [w for w in self._workers if not (w.abandoned or w.exited)]

    def _next_deadline(self) -> float | None:
        """Under the lock: seconds until the nearest invocation deadline (None: none running)."""
        starts = [w.started for w in self._active_workers() if w.started is not None]
        return None if not starts else max(0.0, min(starts) + self.timeout_s - time.monotonic())

    def _expired(self) -> list[tuple[list[Entry], str, float]]:
        """Under the lock: abandon workers past their deadline; return the calls to fail."""
        now = time.monotonic()
        expired = []
        for worker in self._active_workers():
            if worker.started is not None and now - worker.started >= self.timeout_s:
                expired.append(self._abandon(worker, now - worker.started))
        return expired

    def _abandon(self, worker: Worker, elapsed: float) -> tuple[list[Entry], str, float]:
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
