"""The experiment store: migrations, reopening, refusal of foreign or newer stores, rollback;
on SQLite files and on a real PostgreSQL server."""

from __future__ import annotations

import math
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, make_url, select, text

from aicodec.errors import StoreError
from aicodec.scoring.candidate import stored_frame_psnr_y
from aicodec.settings import Settings, load_settings
from aicodec.store import (
    CandidateRecord,
    ClipRecord,
    EvolutionRun,
    RunRecord,
    Store,
    head_revision,
    normalise_url,
)
from aicodec.store.db import MIGRATIONS_DIR
from aicodec.store.liveness import refuse_live_run
from aicodec.store.models import Base
from tests.conftest import postgres_database


def add_clip(store: Store, content_hash: str = "a" * 64) -> None:
    with store.session() as session:
        session.add(
            ClipRecord(
                content_hash=content_hash,
                name="c",
                source="s",
                start_frame=0,
                width=352,
                height=288,
                frame_count=30,
                fps_num=30,
                fps_den=1,
            )
        )


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of one statement on the store at ``url``, by a connection of its own (committed)."""
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def store_at_revision(url: str, revision: str) -> str:
    """A store made by the migrations up to ``revision`` only (an older lab's store)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(normalise_url(url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()
    return url


def test_new_store_is_migrated_to_head_and_matches_the_models(store_url: str) -> None:
    store = Store(store_url)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision()
        assert compare_metadata(context, Base.metadata) == []
    store.close()


def test_data_survives_reopening(store_url: str) -> None:
    store = Store(store_url)
    add_clip(store)
    store.close()
    again = Store(store_url)
    with again.session() as session:
        assert session.scalar(select(func.count()).select_from(ClipRecord)) == 1
    again.close()


def test_failed_transaction_writes_nothing(store_url: str) -> None:
    store = Store(store_url)
    add_clip(store)
    with pytest.raises(StoreError, match="store write failed"):
        add_clip(store)  # same content hash: unique constraint
    with pytest.raises(RuntimeError):
        with store.session() as session:
            session.add(
                ClipRecord(
                    content_hash="b" * 64,
                    name="c",
                    source="s",
                    start_frame=0,
                    width=2,
                    height=2,
                    frame_count=1,
                    fps_num=1,
                    fps_den=1,
                )
            )
            session.flush()
            raise RuntimeError("crash in the middle of a step")
    with store.session() as session:
        hashes = session.scalars(select(ClipRecord.content_hash)).all()
    assert hashes == ["a" * 64]
    store.close()


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("my precious notes\n" * 50)
    with pytest.raises(StoreError, match="not a database"):
        Store(str(path))
    assert path.read_text() == "my precious notes\n" * 50


def test_a_store_from_newer_code_is_refused_and_left_alone(store_url: str) -> None:
    store = Store(store_url)
    add_clip(store)
    store.close()
    query(store_url, "UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(StoreError, match="newer version"):
        Store(store_url)
    assert query(store_url, "SELECT count(*) FROM clips") == [(1,)]
    assert query(store_url, "SELECT version_num FROM alembic_version") == [("9999_future",)]


def test_missing_folder_and_driver_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(str(tmp_path / "no" / "such" / "x.db"))
    with pytest.raises(StoreError, match="cannot open the store"):
        Store("nosuchdialect://somewhere/x")


def test_store_url_comes_from_environment_or_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICODEC_DB", "/tmp/from-env.db")
    assert Settings().db == "/tmp/from-env.db"
    assert load_settings(db="sqlite:///x.db").db == "sqlite:///x.db"
    assert normalise_url("/tmp/from-env.db") == "sqlite:////tmp/from-env.db"


OLD_CANDIDATE = (  # a candidate row as an older lab stored it
    "INSERT INTO candidates (id, code_hash, source, name, origin, created_at) "
    "VALUES (1, 'h', '', 'c', 'seed', '2026-01-01 00:00:00')"
)


def test_a_store_with_a_run_from_before_liveness_migrates_and_the_run_is_not_live(
    store_url: str,
) -> None:
    url = store_at_revision(store_url, "0005")
    query(url, OLD_CANDIDATE)
    query(
        url,
        "INSERT INTO evolution_runs (batch, status, iterations_planned, provider, "
        "provider_reason, seed, start_parent_id, config_json, created_at) "
        "VALUES ('b', 'running', 3, 'mutation', 'r', 0, 1, '{}', '2026-01-01 00:00:00')",
    )
    store = Store(url)
    with store.session() as session:
        run = session.scalars(select(EvolutionRun)).one()
        assert (run.status, run.host, run.pid, run.heartbeat_at) == ("running", None, None, None)
    refuse_live_run(store, timeout_s=60)  # no carrier recorded: a crashed run, resumable
    store.close()


def test_a_store_at_0006_gains_the_per_frame_psnr_column_with_old_runs_left_empty(
    store_url: str,
) -> None:
    url = store_at_revision(store_url, "0006")
    query(
        url,
        "INSERT INTO clips (id, content_hash, name, source, start_frame, width, height, "
        "frame_count, fps_num, fps_den, created_at) "
        "VALUES (1, 'c', 'c', 's', 0, 16, 16, 2, 1, 1, '2026-01-01 00:00:00')",
    )
    query(url, OLD_CANDIDATE)
    query(
        url,
        "INSERT INTO candidate_runs (candidate_id, clip_id, quality, status, isolation, "
        "kbps, psnr_y, created_at) VALUES (1, 1, 40, 'ok', 'none', 10.0, 35.5, "
        "'2026-01-01 00:00:00')",
    )
    store = Store(url)
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()
    with store.session() as session:
        run = session.scalars(select(RunRecord)).one()
        assert (run.psnr_y, run.frame_psnr_y_json) == (35.5, None)
        assert stored_frame_psnr_y(run) == ()
        run.frame_psnr_y_json = "[36.0, null]"
    with store.session() as session:
        run = session.scalars(select(RunRecord)).one()
        assert stored_frame_psnr_y(run) == (36.0, float("inf"))
    store.close()


def test_values_come_back_as_written(store_url: str) -> None:
    """Booleans, an infinite PSNR (a lossless run), text and UTC times survive a round trip."""
    store = Store(store_url)
    add_clip(store)
    moment = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    with store.session() as session:
        candidate = CandidateRecord(code_hash="h" * 64, source="é\n" * 3, name="c", origin="seed")
        session.add(candidate)
        session.flush()
        session.add(
            RunRecord(
                candidate_id=candidate.id,
                clip_id=1,
                quality=40,
                status="ok",
                isolation="none",
                deterministic=False,
                psnr_y=float("inf"),
                kbps=0.125,
                created_at=moment,
            )
        )
    with store.session() as session:
        run = session.scalars(select(RunRecord)).one()
        source = session.scalars(select(CandidateRecord.source)).one()
    assert (run.deterministic, run.psnr_y, run.kbps, source) == (False, math.inf, 0.125, "é\n" * 3)
    if store.engine.dialect.name == "postgresql":  # times come back aware, in UTC
        assert run.created_at.utcoffset() == timedelta(0)
    assert run.created_at.replace(tzinfo=UTC) == moment
    store.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_password(server: Any, user: str, password: str) -> str:
    """A database owned by a new role that must give ``password``, as a store URL whose
    password is a placeholder; waits until the server asks for it."""
    import psycopg

    base = make_url(postgres_database(server))
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        connection.execute(f"ALTER DATABASE {base.database} OWNER TO {user}")
        hba = Path(server.pgdata) / "pg_hba.conf"
        hba.write_text(f"local all {user} scram-sha-256\n" + hba.read_text())
        connection.execute("SELECT pg_reload_conf()")
    url = unquote(base.set(username=user, password="PASSWORD").render_as_string(False))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server reloads its rules in the background
        try:
            psycopg.connect(url.replace("+psycopg", "").replace("PASSWORD", "x")).close()
        except psycopg.OperationalError:
            return url
        time.sleep(0.05)
    raise AssertionError("the server did not start asking for the password")


@pytest.mark.slow
def test_postgres_failures_are_one_line_each_and_touch_nothing(postgres_server: Any) -> None:
    url = with_password(postgres_server, "lab_user", "s3cret")
    with pytest.raises(StoreError) as wrong:
        Store(url.replace("PASSWORD", "wrong-one"))
    assert str(wrong.value) == (
        f"cannot open the store {url.replace('PASSWORD', '***')}: "
        'password authentication failed for user "lab_user"'
    )
    missing = make_url(url).set(database="no_such_store")
    with pytest.raises(StoreError) as absent:
        Store(missing.render_as_string(hide_password=False).replace("PASSWORD", "s3cret"))
    assert str(absent.value).endswith(
        ': database "no_such_store" does not exist; create it first (createdb no_such_store, '
        "or CREATE DATABASE in psql)"
    )
    port = free_port()
    with pytest.raises(StoreError) as unreachable:
        Store(f"postgresql+psycopg://lab_user:s3cret@127.0.0.1:{port}/lab")
    assert str(unreachable.value) == (
        f"cannot open the store postgresql+psycopg://lab_user:***@127.0.0.1:{port}/lab: "
        f'connection to server at "127.0.0.1", port {port} failed: Connection refused'
    )
    right = url.replace("PASSWORD", "s3cret")
    assert query(right, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    assert query(right, "SELECT count(*) FROM pg_database WHERE datname = 'no_such_store'") == [
        (0,)
    ]
    Store(right).close()  # the right password opens (and migrates) it
    assert query(right, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def test_a_missing_postgres_driver_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if aicodec[postgres] were absent
    with pytest.raises(StoreError) as missing:
        Store("postgresql+psycopg://me:pw@db.example:5432/lab")
    assert str(missing.value) == (
        "cannot open the store postgresql+psycopg://me:***@db.example:5432/lab: the PostgreSQL "
        "driver (psycopg) is not installed; pip install 'aicodec[postgres]' brings psycopg, "
        "for postgresql+psycopg:// URLs"
    )


def test_a_row_another_process_adds_first_is_reused_not_duplicated(store_url: str) -> None:
    mine, theirs = Store(store_url), Store(store_url)  # two connections, as two machines
    lookup = select(ClipRecord).where(ClipRecord.content_hash == "c" * 64)

    def clip_row() -> ClipRecord:
        return ClipRecord(
            content_hash="c" * 64,
            name="n",
            source="s",
            start_frame=0,
            width=2,
            height=2,
            frame_count=1,
            fps_num=1,
            fps_den=1,
        )

    def raced() -> ClipRecord:
        """The other machine adds the same clip after this one looked and found nothing."""
        theirs_id.append(theirs.add_once(lookup, clip_row))
        return clip_row()

    theirs_id: list[int] = []
    assert mine.add_once(lookup, raced) == theirs_id[0]
    assert mine.add_once(lookup, clip_row) == theirs_id[0]  # found at once the next time
    with mine.session() as session:
        assert len(session.scalars(lookup).all()) == 1
    mine.close()
    theirs.close()


def test_a_read_only_store_reads_refuses_writes_and_migrates_nothing(store_url: str) -> None:
    writer = Store(store_url)
    add_clip(writer)
    writer.close()
    reader = Store(store_url, read_only=True)
    try:
        with reader.session() as session:
            assert session.scalar(select(func.count()).select_from(ClipRecord)) == 1
        with pytest.raises(StoreError, match="store write failed"):
            add_clip(reader, "b" * 64)
    finally:
        reader.close()
    assert query(store_url, "SELECT COUNT(*) FROM clips") == [(1,)]


def test_a_read_only_store_refuses_an_older_schema_and_leaves_it(tmp_path: Path) -> None:
    old = store_at_revision(f"sqlite:///{tmp_path / 'old.db'}", "0006")
    with pytest.raises(StoreError, match="older schema revision 0006"):
        Store(old, read_only=True)
    assert query(old, "SELECT version_num FROM alembic_version") == [("0006",)]
