"""Where the lab's jobs run at once: one small interface, and the local pool behind it.

A job is a plain function call (one sandbox child, one ladder encode) submitted from the
lab's own thread; the pool runs up to its size of them at the same time and hands back
futures. ``make_pool`` chooses the implementation from the settings: local threads, each
driving its own child process (the default), or Ray tasks on a cluster (``pool_ray``, imported
only when asked for).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aicodec.settings import Settings

if TYPE_CHECKING:
    from aicodec.pools.ray_cluster import RayPool

T = TypeVar("T")
STOP_POLL_S = 0.2  # how often the lab's waiting main thread wakes to run a stop signal


def wait_for_jobs(
    futures: Iterable[Future[Any]], return_when: str = FIRST_COMPLETED
) -> tuple[set[Future[Any]], set[Future[Any]]]:
    """``concurrent.futures.wait`` (no time limit) that wakes every ``STOP_POLL_S``.

    The kernel may hand a SIGTERM or Ctrl-C to any of the lab's threads; Python then runs
    its handler in the main thread only once that thread runs again. A main thread asleep
    until a hung job ends would never see the stop, so every wait of the main thread on
    jobs goes through here.
    """
    futures = list(futures)
    while True:
        done, pending = wait(futures, timeout=STOP_POLL_S, return_when=return_when)
        if not pending or (return_when == FIRST_COMPLETED and done):
            return done, pending


def job_result(future: Future[T]) -> T:
    """``future.result()`` for the main thread, woken as ``wait_for_jobs`` is."""
    wait_for_jobs([future], ALL_COMPLETED)
    return future.result()


class JobPool(Protocol):
    """Runs submitted calls concurrently, at most ``size`` at a time; ``cancel`` is set when
    the work is abandoned (an error or Ctrl-C in the caller), and long jobs watch it.

    A job is a module-level function with picklable arguments, for a pool may run it on
    another machine: there a ``Clip`` argument comes from the pool's clip cache, and the
    pool's own ``cancel`` given as an argument arrives as None (that pool stops the job
    itself). ``retried`` counts the jobs sent again because the worker running them died.
    """

    size: int
    cancel: threading.Event
    retried: int

    def submit(self, function: Callable[..., T], /, *args: Any) -> Future[T]:
        """Schedule ``function(*args)``; its future."""
        ...


class LocalPool:
    """Threads on this machine, each running one job (a sandbox child or an ffmpeg call)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.cancel = threading.Event()
        self.retried = 0  # a thread of this process does not die alone
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="aicodec-job")

    def submit(self, function: Callable[..., T], /, *args: Any) -> Future[T]:
        """Schedule ``function(*args)`` on a free thread."""
        return self._threads.submit(function, *args)

    def close(self) -> None:
        """Wait for running jobs (the caller has stopped them) and release the threads."""
        self._threads.shutdown(wait=True, cancel_futures=True)


def job_count(settings: Settings) -> int:
    """How many jobs run at once: the setting, else one per CPU core (with ``--device cuda``
    at most ``cuda_jobs``: the children share the GPU's memory)."""
    if settings.jobs:
        return settings.jobs
    cores = len(os.sched_getaffinity(0))
    return min(cores, settings.cuda_jobs) if settings.device == "cuda" else cores


def start_executor(settings: Settings) -> str:
    """Make the chosen executor ready (with Ray: connect to the cluster, a ConfigError or
    ExecutorError when that fails); one line saying where jobs run."""
    if settings.executor == "ray":
        from aicodec.pools.ray_cluster import connect

        return connect(settings)
    return f"local: {job_count(settings)} jobs at once"


def retried_jobs(settings: Settings) -> int:
    """Jobs sent again in this process because the worker running them died (Ray only)."""
    if settings.executor == "ray":
        from aicodec.pools.ray_cluster import retried_total

        return retried_total()
    return 0


@contextmanager
def make_pool(settings: Settings, most: int | None = None) -> Iterator[JobPool]:
    """A pool of ``job_count(settings)`` workers (with Ray, by default one per CPU of the
    cluster), no more than ``most`` when given; closed when the block ends."""
    pool: LocalPool | RayPool
    if settings.executor == "ray":
        from aicodec.pools.ray_cluster import RayPool

        pool = RayPool(settings, most)
    else:
        size = job_count(settings)
        pool = LocalPool(max(1, min(size, most) if most else size))
    try:
        yield pool
    except BaseException:  # stop the jobs still running before waiting for them
        pool.cancel.set()
        raise
    finally:
        pool.close()
