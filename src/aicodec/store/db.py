"""Opening the experiment store: URL handling, migrations to the current schema, sessions."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, Select, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from aicodec.errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x61696364_0001  # PostgreSQL advisory-lock keys ("aicd"), one per purpose
RUNS_LOCK = 0x61696364_0002
BUSY_TIMEOUT_S = 30.0  # how long SQLite waits for another process's write lock
CONNECT_TIMEOUT_S = 10  # how long a connection to a PostgreSQL server may take to open
POSTGRES_EXTRA = "pip install 'aicodec[postgres]'"
URL_FORMS = "a SQLite file path, sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL; a bare file path means a SQLite file at that path."""
    return url if "://" in url else f"sqlite:///{url}"


def shown_url(url: str) -> str:
    """``url`` as it may be printed: any password replaced by ***."""
    try:
        return unquote(make_url(url).render_as_string(hide_password=True))
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _alembic_config() -> Config:
    """Alembic configuration pointing at the package's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def _write_ahead_journal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL once; a store already in WAL mode is only read.

    Switching needs the file to itself, and SQLite answers "database is locked" at once,
    without waiting, while another process creates the same new store; so this waits.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _enable_sqlite_pragmas(engine: Engine, *, read_only: bool = False) -> None:
    """Foreign keys on and a write-ahead journal, so a crash loses at most the step in flight;
    a read-only engine changes nothing in the file and refuses every write."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("PRAGMA foreign_keys=ON")
            _write_ahead_journal(cursor)
        cursor.close()


def hold_write_lock(connection: Connection, key: int) -> None:
    """Take the store's write lock for ``key`` until the connection's transaction ends.

    Must be the first statement of that transaction. SQLite: ``BEGIN IMMEDIATE`` (one writer
    at a time, readers go on in WAL mode); PostgreSQL: an advisory lock on ``key``; other
    databases: none.
    """
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _current_revision(connection: Connection, known: set[str]) -> str | None:
    """The store's schema revision; StoreError when it comes from newer code."""
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in known:
        raise StoreError(
            f"the store is at schema revision {current}, which this aicodec does not know; "
            "it was written by a newer version"
        )
    return current


def migrate(engine: Engine) -> None:
    """Bring the store's schema to the newest revision; refuse a store from newer code.

    A store already at head is only read. Otherwise the check and the upgrade run under the
    write lock, so processes that open a new store at once upgrade it exactly once.
    """
    config = _alembic_config()
    known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
    head = head_revision()
    with engine.connect() as connection:
        if _current_revision(connection, known) == head:
            return
    with engine.connect() as connection:
        hold_write_lock(connection, MIGRATION_LOCK)
        if _current_revision(connection, known) == head:  # another process got there first
            connection.rollback()
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def check_readable(engine: Engine) -> None:
    """Refuse, without writing, a store this code cannot read as it is: one from newer code,
    one with no schema yet, or one at an older revision (which a writing command upgrades)."""
    config = _alembic_config()
    known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
    with engine.connect() as connection:
        current = _current_revision(connection, known)
    if current is None:
        raise StoreError("the store is empty: no evolve run or score was ever stored in it")
    if current != head_revision():
        raise StoreError(
            f"the store is at the older schema revision {current}; any writing command "
            "(aicodec history, say) upgrades it, then it can be read"
        )


def _postgres_connect_args(url: URL, *, read_only: bool = False) -> dict[str, object]:
    """libpq options the URL leaves open: a bounded connect wait, and times in UTC (as SQLite
    stores them), so every client shows the same clock whatever the server's time zone; a
    read-only engine's transactions are read-only on the server."""
    options = "-c TimeZone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
    defaults: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_S, "options": options}
    return {key: value for key, value in defaults.items() if key not in url.query}


def _open_failure(url: URL, exc: Exception) -> str:
    """Why the store at ``url`` could not be opened, in one line for its user."""
    if isinstance(exc, ImportError) and url.get_backend_name() == "postgresql":
        return (
            f"the PostgreSQL driver ({exc.name or url.get_driver_name()}) is not installed; "
            f"{POSTGRES_EXTRA} brings psycopg, for postgresql+psycopg:// URLs"
        )
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    reason = re.sub(r"^connection (failed|is bad): ", "", reason)
    if "FATAL:" in reason:  # the server answered: keep its words only
        reason = reason.rsplit("FATAL:", 1)[1].strip()
    if missing := re.fullmatch(r'database "(.+)" does not exist', reason):
        reason += f"; create it first (createdb {missing[1]}, or CREATE DATABASE in psql)"
    return reason


def open_engine(url: str, *, read_only: bool = False) -> Engine:
    """Create an engine for ``url`` and migrate its schema; StoreError when unusable.

    A read-only engine migrates nothing, creates no file and refuses writes (for pages that
    show a store while another process writes it)."""
    url = normalise_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = Path(url.removeprefix("sqlite:///")).expanduser().resolve()
        if not path.parent.is_dir():
            raise StoreError(f"store folder {path.parent} does not exist")
        if read_only and not path.is_file():
            raise StoreError(f"no store at {path}: nothing was ever stored there")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"{shown_url(url)} is not a database URL ({URL_FORMS})") from exc
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed)
            _enable_sqlite_pragmas(engine, read_only=read_only)
        elif parsed.get_backend_name() == "postgresql":
            engine = create_engine(
                parsed,
                connect_args=_postgres_connect_args(parsed, read_only=read_only),
                pool_pre_ping=True,
            )
        else:
            engine = create_engine(parsed)
        if read_only:
            check_readable(engine)
        else:
            migrate(engine)
    except StoreError:
        raise
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(
            f"cannot open the store {shown_url(url)}: {_open_failure(parsed, exc)}"
        ) from exc
    return engine


class Store:
    """The experiment store: a migrated database and transactional sessions on it."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine = open_engine(self.url, read_only=read_only)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed together, or rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"store write failed: {str(exc).splitlines()[0]}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def write_session(self, key: int = RUNS_LOCK) -> Iterator[Session]:
        """A session holding the write lock from its start: a check and the write it
        decides happen with no other writer in between."""
        with self.session() as session:
            hold_write_lock(session.connection(), key)
            yield session

    def add_once(self, lookup: Select[Any], make: Callable[[], Any]) -> int:
        """The id of the row ``lookup`` finds, adding ``make()`` when there is none.

        Another process (on this machine or another one sharing the store) may add the same
        row, by the same unique key, between the lookup and the insert: its row is then the
        one returned, and nothing is stored twice.
        """
        with self.session() as session:
            found = session.scalar(lookup)
            if found is not None:
                return int(found.id)
        try:
            with self.session() as session:
                record = make()
                session.add(record)
                session.flush()
                added = int(record.id)
            return added
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        with self.session() as session:
            found = session.scalar(lookup)
        if found is None:  # the conflict was with another key: not a race, a real error
            raise StoreError("store write failed: a unique key clashed with no row to reuse")
        return int(found.id)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()
