"""One live evolve per store: a run is live while its process lives (on this host) or its
heartbeat is fresh (on another); a second evolve or a resume of a live run is refused with
one line, a dead run is taken over by --resume. Real processes, real SQLite files."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aicodec.errors import EvolutionError
from aicodec.store import CandidateRecord, EvolutionRun, Store
from aicodec.store.liveness import add_run, carrying_out, refuse_live_run
from tests import test_evolve_bad_states as bad_states
from tests.test_cli import assert_one_line_error
from tests.test_evolve_bad_states import Lab, crash, start_cli, wait_for
from tests.test_generate import aicodec_env
from tests.test_store import query

seeded, lab = bad_states.seeded, bad_states.lab  # a small clip and a store with its seed scored
HOST = socket.gethostname()


def new_store(folder: Path, url: str | None = None) -> Store:
    """A store with one candidate, the start of the runs below (at ``url``, else a SQLite
    file in ``folder``)."""
    store = Store(url or str(folder / "store.db"))
    with store.session() as session:
        session.add(CandidateRecord(code_hash="c" * 64, source="", name="c", origin="seed"))
    return store


def a_run(**columns_on_top: object) -> EvolutionRun:
    """A running run row as ``start_evolution`` makes it, with the given columns on top."""
    columns: dict[str, object] = dict(
        batch=os.urandom(8).hex(),
        status="running",
        iterations_planned=1,
        provider="mutation",
        provider_reason="test",
        seed=0,
        start_parent_id=1,
        config_json="{}",
    )
    return EvolutionRun(**{**columns, **columns_on_top})


def store_run(store: Store, **columns: object) -> int:
    """Store a run with these columns as they are (no liveness check); its id."""
    with store.session() as session:
        run = a_run(**columns)
        session.add(run)
        session.flush()
        return run.id


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process that lives until the test ends it."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield process
    process.kill()
    process.wait()


def test_a_run_is_live_while_its_process_lives_on_this_host(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    store = new_store(tmp_path)
    run_id = store_run(store, host=HOST, pid=sleeper.pid, heartbeat_at=datetime.now(UTC))
    time.sleep(0.2)
    expected = (
        f"evolve run {run_id} is live on this store (host {HOST}, pid {sleeper.pid}, last "
        "heartbeat 0 s ago); wait for it, or stop it"
    )
    with pytest.raises(EvolutionError) as refused:
        refuse_live_run(store, timeout_s=0.01)  # on this host the process decides, not the age
    assert str(refused.value) == expected
    with pytest.raises(EvolutionError, match="is live on this store"):
        add_run(store, a_run(), timeout_s=0.01)
    sleeper.kill()
    sleeper.wait()
    refuse_live_run(store, timeout_s=3600)  # its process has ended: dead, however fresh
    assert add_run(store, a_run(), timeout_s=3600) == run_id + 1
    store.close()


def test_a_pid_now_held_by_a_newer_process_keeps_no_run_live(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """After a crash (or a reboot) the run's pid may belong to a process started since."""
    store = new_store(tmp_path)
    last_beat = datetime.now(UTC) - timedelta(seconds=30)  # before the sleeper started
    store_run(store, host=HOST, pid=sleeper.pid, heartbeat_at=last_beat)
    refuse_live_run(store, timeout_s=3600)
    store.close()


def test_on_another_host_the_heartbeat_decides(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    beat = datetime.now(UTC) - timedelta(seconds=5)
    run_id = store_run(store, host="elsewhere", pid=os.getpid(), heartbeat_at=beat)
    with pytest.raises(EvolutionError, match=f"evolve run {run_id} is live .*host elsewhere"):
        refuse_live_run(store, timeout_s=60)
    refuse_live_run(store, timeout_s=2)  # its heartbeat is older than the limit
    with store.session() as session:
        run = session.get(EvolutionRun, run_id)
        assert run is not None
        run.heartbeat_at = None  # its carrier let go of it
    refuse_live_run(store, timeout_s=60)
    store_run(store, host="elsewhere", pid=1, heartbeat_at=beat, status="finished")
    refuse_live_run(store, timeout_s=60)
    store.close()


def heartbeat(db: Path, run_id: int) -> tuple[str | None, str | None, int | None]:
    """A run's carrier columns, read by a connection of its own."""
    with closing(sqlite3.connect(db)) as connection:
        row = connection.execute(
            "SELECT heartbeat_at, host, pid FROM evolution_runs WHERE id = ?", (run_id,)
        ).fetchone()
    return row[0], row[1], row[2]


REFUSE = """
import sys
from aicodec.store import Store
from aicodec.store.liveness import refuse_live_run
refuse_live_run(Store(sys.argv[1]), timeout_s=60)
"""


def test_a_run_beats_while_carried_out_and_is_let_go_after(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    db = tmp_path / "store.db"
    run_id = store_run(store)  # a run from before the carrier columns: never live
    with carrying_out(store, run_id, heartbeat_s=0.1, timeout_s=60):
        first, host, pid = heartbeat(db, run_id)
        assert first is not None and (host, pid) == (HOST, os.getpid())
        time.sleep(0.5)
        assert heartbeat(db, run_id)[0] > first  # type: ignore[operator]
        other = subprocess.run(
            [sys.executable, "-c", REFUSE, str(db)], capture_output=True, text=True, check=False
        )
        assert other.returncode != 0
        assert f"EvolutionError: evolve run {run_id} is live on this store" in other.stderr
    assert heartbeat(db, run_id) == (None, HOST, os.getpid())
    done = subprocess.run(
        [sys.executable, "-c", REFUSE, str(db)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    store.close()


START = """
import sys, time
from pathlib import Path
from aicodec.store import EvolutionRun, Store
from aicodec.store.liveness import add_run
store = Store(sys.argv[1])
ready, go, done = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
ready.touch()
while not go.exists():
    time.sleep(0.0005)
run = EvolutionRun(batch=ready.name, status="running", iterations_planned=1,
                   provider="mutation", provider_reason="test", seed=0, start_parent_id=1,
                   config_json="{}")
add_run(store, run, timeout_s=60)
ready.with_suffix(".won").touch()
while not done.exists():  # alive, so its run stays live, until every other has tried
    time.sleep(0.01)
"""


def test_of_processes_starting_runs_at_once_exactly_one_starts(
    tmp_path: Path, store_url: str
) -> None:
    new_store(tmp_path, store_url).close()
    db, go, done, count = store_url, tmp_path / "go", tmp_path / "done", 6
    ready = [tmp_path / f"ready{n}" for n in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", START, db, str(ready[n]), str(go), str(done)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all(path.exists() for path in ready):
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
            time.sleep(0.01)
        go.touch()
        while (
            sum(
                p.poll() is not None or path.with_suffix(".won").exists()
                for p, path in zip(processes, ready, strict=True)
            )
            < count
        ):
            assert time.monotonic() < deadline, "the starters did not all finish"
            time.sleep(0.01)
    finally:
        done.touch()
    errors = [p.communicate(timeout=60)[1].strip().splitlines()[-1:] for p in processes]
    winners = [n for n, p in enumerate(processes) if p.returncode == 0]
    assert len(winners) == 1, errors
    runs = query(db, "SELECT id, batch FROM evolution_runs")
    assert runs == [(1, f"ready{winners[0]}")]
    for n, lines in enumerate(errors):
        if n not in winners:
            assert lines[0].startswith("aicodec.errors.EvolutionError: evolve run 1 is live")


@pytest.mark.slow
def test_a_live_evolve_refuses_others_and_a_resume_takes_it_over_once_dead(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AICODEC_EVOLVE_HEARTBEAT_S", "0.2")
    first = start_cli(lab, *lab.evolve(1))
    try:
        wait_for(
            lab,
            first,
            "the run's heartbeat",
            lambda: bool(
                lab.query(
                    "SELECT 1 FROM evolution_runs WHERE heartbeat_at "
                    "IS NOT NULL AND status = 'running'"
                )
            ),
        )
        os.killpg(first.pid, signal.SIGSTOP)  # alive, but it goes no further meanwhile
        assert lab.query("SELECT id, host, pid FROM evolution_runs") == [(1, HOST, first.pid)]
        line = f"error: evolve run 1 is live on this store (host {HOST}, pid {first.pid}, last"
        second = aicodec_env(*lab.evolve(1))
        assert_one_line_error(second, line)
        assert second.returncode == 2 and "wait for it, or stop it" in second.stderr
        assert_one_line_error(lab.resume(), line)
        assert lab.query("SELECT count(*) FROM evolution_runs") == [(1,)]
    finally:
        crash(first)
    resumed = lab.resume("--json")
    assert resumed.returncode == 0, resumed.stderr
    runs = lab.query("SELECT id, status, host, pid, heartbeat_at FROM evolution_runs")
    assert len(runs) == 1 and runs[0][:3] == (1, "finished", HOST)
    assert runs[0][3] not in (None, first.pid)  # the resume carried it out, then let go
    assert runs[0][4] is None
