"""A worker thread that prepares evolve iterations ahead, in order (``parallel`` > 1)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from aicodec.pools.local import STOP_POLL_S

T = TypeVar("T")  # what the preparing function returns


@dataclass(frozen=True)
class _Outcome(Generic[T]):
    """What preparing one iteration gave: its result, or the error it raised."""

    result: T | None = None
    error: BaseException | None = None


class Feeder(Generic[T]):
    """A daemon thread preparing the submitted iterations in order, one at a time; it ends
    after a result for which ``last`` is true (the run stops there)."""

    def __init__(self, prepare: Callable[[int], T], last: Callable[[T], bool]) -> None:
        self._todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[_Outcome[T]] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._work, args=(prepare, last), name="evolve-prepare", daemon=True
        )
        self._thread.start()

    def _work(self, prepare: Callable[[int], T], last: Callable[[T], bool]) -> None:
        while (number := self._todo.get()) is not None:
            try:
                result = prepare(number)
            except BaseException as exc:  # raised again in the driver's thread by take()
                self._done.put(_Outcome(error=exc))
                return
            self._done.put(_Outcome(result))
            if last(result):
                return

    def submit(self, number: int) -> None:
        """Prepare iteration ``number`` after those submitted before it."""
        self._todo.put(number)

    def take(self) -> T:
        """The next prepared iteration, in submission order (its error raised here)."""
        while True:  # woken now and then: a stop signal must reach this (main) thread
            try:
                outcome = self._done.get(timeout=STOP_POLL_S)
                break
            except queue.Empty:
                continue
        if outcome.error is not None:
            raise outcome.error
        return cast(T, outcome.result)

    def close(self, wait: float) -> None:
        """Prepare nothing more; wait up to ``wait`` seconds for the thread to end."""
        self._todo.put(None)
        self._thread.join(wait)
