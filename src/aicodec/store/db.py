"""Opening the experiment store: URL handling, migrations to the current schema, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from aicodec.errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalise_url(url: str) -> str:
    """A SQLAlchemy URL; a bare file path means a SQLite file at that path."""
    return url if "://" in url else f"sqlite:///{url}"


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


def _enable_sqlite_pragmas(engine: Engine) -> None:
    """Foreign keys on and a write-ahead journal, so a crash loses at most the step in flight."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the store's schema to the newest revision; refuse a store from newer code."""
    config = _alembic_config()
    known = {rev.revision for rev in ScriptDirectory.from_config(config).walk_revisions()}
    with engine.begin() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None and current not in known:
            raise StoreError(
                f"the store is at schema revision {current}, which this aicodec does not know; "
                "it was written by a newer version"
            )
        if current == head_revision():
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_engine(url: str) -> Engine:
    """Create an engine for ``url`` and migrate its schema; StoreError when unusable."""
    url = normalise_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        parent = Path(url.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not parent.is_dir():
            raise StoreError(f"store folder {parent} does not exist")
    try:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            _enable_sqlite_pragmas(engine)
        migrate(engine)
    except StoreError:
        raise
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"cannot open the store {url}: {reason}") from exc
    return engine


class Store:
    """The experiment store: a migrated database and transactional sessions on it."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = open_engine(self.url)
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

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()
