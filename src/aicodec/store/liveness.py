"""Which evolve run is live: carried out right now by a process, on this host or another.

The process that carries a run out writes its host and pid into the run's row when it takes
the run, a heartbeat every few seconds while it works, and clears the heartbeat when it lets
go. A run is live when it is unfinished (running or interrupted), its heartbeat is set, and
either its host is this one and its process still lives, or its host is another and the
heartbeat is younger than the timeout. A machine is named by its host name, or by the
``host`` setting (``AICODEC_HOST``) where machines sharing a store share a host name. The
check and the taking of a run happen under the store's write lock, so of two processes
starting at once only one wins.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aicodec.errors import EvolutionError, StoreError
from aicodec.processes import is_running, start_time
from aicodec.store.db import Store
from aicodec.store.models import EvolutionRun

UNFINISHED = ("running", "interrupted")
START_SLACK = timedelta(seconds=1)  # /proc gives boot time in whole seconds


@dataclass(frozen=True)
class Carrier:
    """A process that carries out a run: its host name and pid."""

    host: str
    pid: int


def this_process(host: str | None = None) -> Carrier:
    """The carrier that this process is, on the machine named ``host`` (None: the host name)."""
    return Carrier(host or socket.gethostname(), os.getpid())


def _utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC time (SQLite hands them back naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def process_alive(pid: int, since: datetime) -> bool:
    """Whether process ``pid`` lives and is the one that was there at ``since`` (not a zombie,
    not a newer process that was given the same pid)."""
    if not is_running(pid):
        return False
    started = start_time(pid)
    return started is None or started <= since + START_SLACK


def is_live(run: EvolutionRun, timeout_s: float, now: datetime, host: str) -> bool:
    """Whether a run is being carried out now, seen from the machine named ``host`` (see the
    module's description)."""
    if run.status not in UNFINISHED or run.heartbeat_at is None or run.pid is None:
        return False
    heartbeat = _utc(run.heartbeat_at)
    if run.host == host:
        return process_alive(run.pid, heartbeat)
    return (now - heartbeat).total_seconds() < timeout_s


def live_message(run: EvolutionRun, now: datetime) -> str:
    """The one line that refuses a second evolve while ``run`` is live."""
    assert run.heartbeat_at is not None
    age = max(0.0, (now - _utc(run.heartbeat_at)).total_seconds())
    return (
        f"evolve run {run.id} is live on this store (host {run.host}, pid {run.pid}, last "
        f"heartbeat {age:.0f} s ago); wait for it, or stop it"
    )


def _refuse(session: Session, timeout_s: float, carrier: Carrier) -> None:
    """EvolutionError naming the newest run live under another carrier, if there is one."""
    now = datetime.now(UTC)
    held = session.scalars(
        select(EvolutionRun)
        .where(EvolutionRun.status.in_(UNFINISHED), EvolutionRun.heartbeat_at.is_not(None))
        .order_by(EvolutionRun.id.desc())
    )
    for run in held:
        if (run.host, run.pid) != (carrier.host, carrier.pid) and is_live(
            run, timeout_s, now, carrier.host
        ):
            raise EvolutionError(live_message(run, now))


def refuse_live_run(store: Store, timeout_s: float, host: str | None = None) -> None:
    """EvolutionError when another process carries out a run of this store (a read only);
    ``host`` names this machine (None: its host name)."""
    with store.session() as session:
        _refuse(session, timeout_s, this_process(host))


def add_run(store: Store, run: EvolutionRun, timeout_s: float, host: str | None = None) -> int:
    """Store a new run carried out by this process, unless another run is live; its id.

    The check and the insert are one write transaction, so two starters cannot both win.
    """
    carrier = this_process(host)
    with store.write_session() as session:
        _refuse(session, timeout_s, carrier)
        run.host, run.pid, run.heartbeat_at = carrier.host, carrier.pid, datetime.now(UTC)
        session.add(run)
        session.flush()
        return run.id


def _take(store: Store, run_id: int, timeout_s: float, carrier: Carrier) -> None:
    """Make this process the run's carrier, unless a run is live under another."""
    with store.write_session() as session:
        _refuse(session, timeout_s, carrier)
        run = session.get(EvolutionRun, run_id)
        if run is None:
            raise EvolutionError(f"no evolve run {run_id} in the store")
        run.host, run.pid, run.heartbeat_at = carrier.host, carrier.pid, datetime.now(UTC)


def _beat(store: Store, run_id: int, carrier: Carrier, moment: datetime | None) -> None:
    """Write the run's heartbeat (None: let go), while this process is still its carrier."""
    with store.session() as session:
        session.execute(
            update(EvolutionRun)
            .where(
                EvolutionRun.id == run_id,
                EvolutionRun.host == carrier.host,
                EvolutionRun.pid == carrier.pid,
            )
            .values(heartbeat_at=moment)
        )


def _heartbeats(
    store: Store, run_id: int, carrier: Carrier, every_s: float, stop: threading.Event
) -> None:
    """Beat every ``every_s`` seconds until ``stop``; a failed beat waits for the next."""
    while not stop.wait(every_s):
        with suppress(StoreError):
            _beat(store, run_id, carrier, datetime.now(UTC))


@contextmanager
def carrying_out(
    store: Store, run_id: int, *, heartbeat_s: float, timeout_s: float, host: str | None = None
) -> Iterator[None]:
    """Hold the run for this process while the block runs: take it (EvolutionError when
    another run is live), beat in a daemon thread, let go at the end."""
    carrier = this_process(host)
    _take(store, run_id, timeout_s, carrier)
    stop = threading.Event()
    thread = threading.Thread(
        target=_heartbeats,
        args=(store, run_id, carrier, heartbeat_s, stop),
        name=f"evolve-run-{run_id}-heartbeat",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with suppress(StoreError):
            _beat(store, run_id, carrier, None)
