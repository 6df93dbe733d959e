"""The store in company: processes that create it at once, readers beside a writer.

Every test runs real processes on a real SQLite file or a real PostgreSQL database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from aicodec.store import Store, head_revision
from aicodec.store.db import MIGRATION_LOCK
from aicodec.store.models import Base
from tests.test_store import query

OPEN_ON_SIGNAL = """
import sys, time
from pathlib import Path
from aicodec.store import Store
Path(sys.argv[2]).touch()
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.0005)
Store(sys.argv[1]).close()
"""


def released_together(folder: Path, count: int, script: str, *args: str) -> list[str]:
    """Start ``count`` Python processes running ``script``, let them all import and wait on
    one start signal, release them at once; the last stderr line of each that failed."""
    go = folder / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args, str(folder / f"ready{n}"), str(go)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    deadline = time.monotonic() + 120
    while len(list(folder.glob("ready*"))) < count:
        assert time.monotonic() < deadline, "the processes did not get ready"
        assert all(process.poll() is None for process in processes), "a process died early"
        time.sleep(0.01)
    go.touch()
    failures = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            failures.append(stderr.strip().splitlines()[-1])
    return failures


def test_processes_that_open_a_new_store_at_once_all_succeed(
    tmp_path: Path, store_url: str
) -> None:
    """Processes open one new store at the same moment; without the migration lock every
    try had some fail with 'table clips already exists' or 'database is locked' (SQLite, 8
    processes) or 'duplicate key value violates unique constraint' (PostgreSQL, 4)."""
    count = 8 if store_url.startswith("sqlite") else 4
    assert released_together(tmp_path, count, OPEN_ON_SIGNAL, store_url) == []
    assert query(store_url, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    store = Store(store_url)
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    store.close()


def aicodec(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``aicodec ARGS`` in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "aicodec", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_opening_a_store_at_head_neither_writes_nor_waits_for_a_writer(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    Store(str(db)).close()
    with closing(sqlite3.connect(db, isolation_level=None)) as observer:
        before = observer.execute("PRAGMA data_version").fetchone()
        assert aicodec("logs", "--json", "--db", str(db)).returncode == 0
        # data_version changes when another connection commits anything to the file
        assert observer.execute("PRAGMA data_version").fetchone() == before
        observer.execute("BEGIN IMMEDIATE")  # a writer in the middle of a transaction
        observer.execute("CREATE TABLE scratch (x)")
        started = time.monotonic()
        reader = aicodec("logs", "--json", "--db", str(db))
        assert reader.returncode == 0, reader.stderr
        assert time.monotonic() - started < 15, "the reader waited for the write lock"
        observer.execute("ROLLBACK")


@pytest.mark.slow
def test_opening_a_postgres_store_at_head_neither_writes_nor_waits_for_the_lock(
    postgres_url: str,
) -> None:
    Store(postgres_url).close()
    written = "SELECT xmin::text FROM alembic_version"  # the transaction that last wrote it
    before = query(postgres_url, written)
    holder = create_engine(postgres_url)
    opened = threading.Event()
    with holder.connect() as connection:  # another process in the middle of a migration
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        opener = threading.Thread(target=lambda: (Store(postgres_url).close(), opened.set()))
        opener.start()
        assert opened.wait(30), "opening a store at head waited for the migration lock"
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
    holder.dispose()
    opener.join()
    assert query(postgres_url, written) == before


WRITER = """
import sys, time
from pathlib import Path
from aicodec.store import ClipRecord, Store
store, stop, n = Store(sys.argv[1]), Path(sys.argv[2]), 0
while not stop.exists():
    with store.session() as session:  # each transaction holds the write lock for 50 ms
        for _ in range(20):
            n += 1
            session.add(ClipRecord(content_hash=f"{n:064x}", name="c", source="s",
                        start_frame=0, width=2, height=2, frame_count=1, fps_num=1, fps_den=1))
        session.flush()
        time.sleep(0.05)
    if n % 200 == 0:  # new connections now and then, and the checkpoints of closing
        store.engine.dispose()
store.close()
"""

READER = """
import sys
from sqlalchemy import func, select
from aicodec.store import ClipRecord, Store
last = 0
for _ in range(int(sys.argv[2])):
    store = Store(sys.argv[1])
    with store.session() as session:
        count = session.scalar(select(func.count()).select_from(ClipRecord))
    store.close()
    assert count >= last and count % 20 == 0, (count, last)
    last = count
print(last)
"""


def clip_count(url: str) -> int:
    """Clips committed to the store (one short read)."""
    return int(query(url, "SELECT count(*) FROM clips")[0][0])


def test_readers_never_fail_while_a_writer_writes(tmp_path: Path) -> None:
    """(On PostgreSQL, readers beside a writer are covered by test_evolve_postgres.)"""
    db, stop = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "stop"
    Store(db).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db, str(stop)])
    try:
        deadline = time.monotonic() + 60
        while not clip_count(db):
            assert writer.poll() is None and time.monotonic() < deadline, "the writer did not write"
            time.sleep(0.05)
        reader = subprocess.run(
            [sys.executable, "-c", READER, db, "40"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        logs = aicodec("logs", "--json", "--db", db)
        assert writer.poll() is None, "the writer stopped while the readers read"
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert reader.returncode == 0, reader.stderr
    assert 0 < int(reader.stdout) <= clip_count(db)  # readers saw committed rows only
    assert logs.returncode == 0, logs.stderr
    assert writer.returncode == 0
