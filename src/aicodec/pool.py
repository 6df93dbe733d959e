"""Where the lab's jobs run at once: one small interface, and the local pool behind it.

A job is a plain function call (one sandbox child, one ladder encode) submitted from the
lab's own thread; the pool runs up to its size of them at the same time and hands back
futures. ``make_pool`` chooses the implementation from the settings (today: local
threads, each driving its own child process).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from aicodec.settings import Settings

T = TypeVar("T")


class JobPool(Protocol):
    """Runs submitted calls concurrently, at most ``size`` at a time; ``cancel`` is set when
    the work is abandoned (an error or Ctrl-C in the caller), and long jobs watch it."""

    size: int
    cancel: threading.Event

    def submit(self, function: Callable[..., T], /, *args: Any) -> Future[T]:
        """Schedule ``function(*args)``; its future."""
        ...


class LocalPool:
    """Threads on this machine, each running one job (a sandbox child or an ffmpeg call)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.cancel = threading.Event()
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


@contextmanager
def make_pool(settings: Settings, most: int | None = None) -> Iterator[JobPool]:
    """A pool of ``job_count(settings)`` workers (no more than ``most`` when given)."""
    size = job_count(settings)
    pool = LocalPool(max(1, min(size, most) if most else size))
    try:
        yield pool
    except BaseException:  # stop the jobs still running before waiting for them
        pool.cancel.set()
        raise
    finally:
        pool.close()
