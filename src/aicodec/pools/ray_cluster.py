"""The Ray executor (``--executor ray``): each job a Ray task on any node of a cluster.

Imported only when the settings ask for Ray. The driver (this process) keeps the work: it
queues the jobs, sends at most ``size`` of them to the cluster at a time, and settles each
job's future from a watcher thread. A clip travels to the object store once per content
hash (``ray.put``, cached for the life of the connection) and every task gets its
reference, so a node fetches a clip once. A job whose worker or node dies is sent again,
at most ``ray_task_retries`` times, and counted; a job that never finished makes no
figure. Setting the pool's ``cancel`` stops its running tasks (first as a KeyboardInterrupt
in the task, which kills its sandbox child and removes its folder; forcibly after a grace
period) and drops the ones not started. Ray raises that interrupt between two Python
steps, so a job must not block long in one call: the sandbox and ffmpeg waits poll.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aicodec.clips import Clip
from aicodec.errors import ConfigError, ExecutorError
from aicodec.settings import Settings

T = TypeVar("T")

POLL_S = 0.02  # how often the watcher looks at the running tasks (seconds)
STOP_GRACE_S = 5.0  # a cancelled task still running after this long is killed with its worker
PROBE_TIMEOUT_S = 5.0  # connecting to the head's port before handing the address to Ray (s)


@dataclass
class _Connection:
    """This process's link to one Ray cluster: its address, clip cache and retry count."""

    address: str = ""
    clips: dict[str, Any] = field(default_factory=dict)  # content hash -> ObjectRef
    retried: int = 0
    remote: Any = None  # the Ray task that runs one job
    lock: threading.Lock = field(default_factory=threading.Lock)


_CONNECTION = _Connection()


def _ray() -> Any:
    """The ``ray`` module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the Ray executor needs Ray, which is not installed: pip install 'aicodec[ray]'"
        ) from None
    return ray


def _probe(address: str) -> None:
    """Open and close a TCP connection to a HOST:PORT address (Ray itself waits for
    minutes on a dead one); an ExecutorError naming the address when it fails."""
    where = address.removeprefix("ray://")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} is not HOST:PORT (or local)")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ExecutorError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def connect(settings: Settings) -> str:
    """Connect this process to the cluster of ``settings.ray_address`` (else RAY_ADDRESS,
    else a new local cluster) unless it is connected already; one line saying where jobs
    run (CPUs and nodes)."""
    ray = _ray()
    with _CONNECTION.lock:
        if not ray.is_initialized():
            address = settings.ray_address or os.environ.get("RAY_ADDRESS") or "local"
            if address not in ("local", "auto"):
                _probe(address)
            _init(ray, address)
            _CONNECTION.address = address
            _CONNECTION.clips.clear()
        if _CONNECTION.remote is None:
            _CONNECTION.remote = ray.remote(num_cpus=1, max_retries=0)(_run_job)
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    cpus = int(ray.cluster_resources().get("CPU", 0))
    where = _CONNECTION.address or "an existing connection"
    return f"ray at {where}: {cpus} CPUs on {nodes} node(s)"


def _init(ray: Any, address: str) -> None:
    """``ray.init`` that keeps the lab's own SIGTERM handling (Ray replaces it)."""
    in_main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ""
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            hint = " (a cluster with token authentication needs RAY_AUTH_MODE=token here)"
        message = f"cannot connect to the Ray cluster at {address}: {first}{hint}"
        raise ExecutorError(message) from None
    finally:
        if in_main and handler is not None:
            signal.signal(signal.SIGTERM, handler)


def retried_total() -> int:
    """Jobs this process sent again because their Ray worker or node died."""
    return _CONNECTION.retried


def cached_clips() -> int:
    """Clips this process has put in the cluster's object store (one per content hash)."""
    return len(_CONNECTION.clips)


def clip_ref(clip: Clip) -> Any:
    """The object-store reference of ``clip``, put there on first use (keyed by its hash)."""
    ray = _ray()
    with _CONNECTION.lock:
        ref = _CONNECTION.clips.get(clip.content_hash)
        if ref is None:
            ref = _CONNECTION.clips[clip.content_hash] = ray.put(clip)
        return ref


def _run_job(function: Callable[..., T], *args: Any) -> T:
    """The body of every task: run one job on the worker that got it.

    Ray stops a cancelled task by simulating SIGINT in it, which does nothing where SIGINT
    is ignored (a head or worker started in the background inherits that): the handler
    that raises KeyboardInterrupt is put back first, so the job can kill its child.
    """
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return function(*args)


def _retryable(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors that mean the machine failed the job, not the job itself."""
    errors = ray.exceptions
    return (
        errors.WorkerCrashedError,
        errors.NodeDiedError,
        errors.LocalRayletDiedError,
        errors.ObjectLostError,
        errors.OutOfMemoryError,
    )


@dataclass
class _Job:
    """One submitted call: the function, its (carried) arguments, its future, its tries."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    future: Future[Any]
    retries: int = 0
    stop_asked: float | None = None  # monotonic time of the first ray.cancel
    forced: bool = False
    dropped: bool = False  # its future was cancelled and its waiters told


def _drop(job: _Job) -> None:
    """Cancel the job's future (unless it has its outcome) and wake whoever waits on it: a
    future that no executor thread runs must be told it is cancelled-and-notified."""
    if job.dropped:
        return
    job.dropped = True
    if job.future.cancel():
        job.future.set_running_or_notify_cancel()


def _resolve(job: _Job, value: Any) -> None:
    try:
        job.future.set_result(value)
    except InvalidStateError:  # the caller cancelled it meanwhile
        _drop(job)


def _reject(job: _Job, error: BaseException) -> None:
    try:
        job.future.set_exception(error)
    except InvalidStateError:
        _drop(job)


class RayPool:
    """Jobs as Ray tasks: at most ``size`` running, retried when their worker dies."""

    def __init__(self, settings: Settings, most: int | None = None) -> None:
        connect(settings)
        self._ray = _ray()
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        size = settings.jobs or cpus
        self.size = max(1, min(size, most) if most else size)
        self.retries = settings.ray_task_retries
        self.cancel = threading.Event()
        self.retried = 0
        self._retryable = _retryable(self._ray)
        self._changed = threading.Condition()
        self._waiting: deque[_Job] = deque()
        self._running: dict[Any, _Job] = {}
        self._closing = False
        self._broken: ExecutorError | None = None  # why the watcher stopped, if it failed
        self._watcher = threading.Thread(target=self._watch, name="aicodec-ray", daemon=True)
        self._watcher.start()

    def submit(self, function: Callable[..., T], /, *args: Any) -> Future[T]:
        """Queue ``function(*args)`` for the cluster; Clips go by reference, this pool's
        ``cancel`` as None."""
        job = _Job(function, tuple(self._carried(arg) for arg in args), Future())
        with self._changed:
            if self._broken is not None:
                _reject(job, self._broken)
            elif self.cancel.is_set() or self._closing:
                _drop(job)
            else:
                self._waiting.append(job)
                self._changed.notify()
        return job.future

    def _carried(self, arg: Any) -> Any:
        if arg is self.cancel:
            return None
        if isinstance(arg, Clip):
            return clip_ref(arg)
        return arg

    def close(self) -> None:
        """Wait until every sent task has ended (stopped ones included); no more jobs."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._watcher.join()

    def _watch(self) -> None:
        """Run the pool; should Ray itself fail, every job left fails with its error."""
        try:
            self._loop()
        except Exception as exc:  # the watcher must not die leaving futures unsettled
            error = _short(exc)
            with self._changed:
                self._broken = error
                left = [*self._running.values(), *self._waiting]
                self._running.clear()
                self._waiting.clear()
            for job in left:
                _reject(job, error)

    def _loop(self) -> None:
        """Send queued jobs, stop cancelled ones, settle the finished ones; until closed."""
        while True:
            with self._changed:
                self._send_waiting()
                if self._closing and not self._running and not self._waiting:
                    return
                refs = list(self._running)
                if not refs:
                    self._changed.wait(POLL_S)
                    continue
            self._stop_cancelled()
            ready, _ = self._ray.wait(refs, num_returns=1, timeout=POLL_S)
            for ref in ready:
                self._settle(ref)

    def _send_waiting(self) -> None:
        """Drop the queued jobs that were cancelled (all once ``cancel`` is set), then start
        queued jobs while fewer than ``size`` run."""
        if self.cancel.is_set() or any(job.future.cancelled() for job in self._waiting):
            for job in self._waiting:
                if self.cancel.is_set() or job.future.cancelled():
                    _drop(job)
            self._waiting = deque(job for job in self._waiting if not job.dropped)
        while self._waiting and len(self._running) < self.size:
            job = self._waiting.popleft()
            ref = _CONNECTION.remote.remote(job.function, *job.args)
            self._running[ref] = job

    def _stop_cancelled(self) -> None:
        """Cancel the tasks of abandoned jobs: politely first, by force after the grace."""
        now = time.monotonic()
        for ref, job in list(self._running.items()):
            if not (self.cancel.is_set() or job.future.cancelled()):
                continue
            _drop(job)
            if job.stop_asked is None:
                job.stop_asked = now
                self._ray.cancel(ref)
            elif not job.forced and now - job.stop_asked > STOP_GRACE_S:
                job.forced = True
                self._ray.cancel(ref, force=True)

    def _settle(self, ref: Any) -> None:
        """Hand a finished task's value or error to its future, or send it again."""
        with self._changed:
            job = self._running.pop(ref)
        errors = self._ray.exceptions
        try:
            value = self._ray.get(ref)
        except errors.TaskCancelledError:
            _drop(job)
        except self._retryable as exc:
            if job.stop_asked is not None or self.cancel.is_set():
                _drop(job)
            elif job.retries < self.retries:
                job.retries += 1
                self.retried += 1
                with _CONNECTION.lock:
                    _CONNECTION.retried += 1
                with self._changed:
                    self._waiting.appendleft(job)
            else:
                tries = job.retries + 1
                _reject(
                    job,
                    ExecutorError(
                        f"the Ray worker running a job died {tries} time(s), the last with "
                        f"{type(exc).__name__}; the job made no figure"
                    ),
                )
        except errors.RayTaskError as exc:  # the job itself raised: the same error here
            cause = exc.cause
            _reject(job, cause if isinstance(cause, Exception) else _short(exc))
        except errors.RayError as exc:
            _reject(job, _short(exc))
        else:
            _resolve(job, value)


def _short(exc: BaseException) -> ExecutorError:
    """A Ray error as one line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return ExecutorError(f"Ray could not run a job: {type(exc).__name__} {first}".strip())
