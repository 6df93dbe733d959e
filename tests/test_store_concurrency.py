"""The store in company: processes that create it at once, readers beside a writer.

Every test runs real processes on a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from aicodec.store import Store, head_revision
from aicodec.store.models import Base

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


def test_processes_that_open_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Eight processes open one new store at the same moment; without the migration lock
    every try had some fail with 'table clips already exists' or 'database is locked'."""
    db = tmp_path / "new.db"
    assert released_together(tmp_path, 8, OPEN_ON_SIGNAL, str(db)) == []
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]
    store = Store(str(db))
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    store.close()
