"""The experiment store: migrations, reopening, refusal of foreign or newer stores, rollback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, select

from aicodec.errors import StoreError
from aicodec.scoring import stored_frame_psnr_y
from aicodec.settings import Settings, load_settings
from aicodec.store import (
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


def add_clip(store: Store, content_hash: str = "a" * 64) -> None:
    with store.session() as session:
        session.add(
            ClipRecord(
                content_hash=content_hash, name="c", source="s", start_frame=0, width=352,
                height=288, frame_count=30, fps_num=30, fps_den=1,
            )
        )  # fmt: skip


def store_at_revision(path: Path, revision: str) -> Path:
    """A SQLite store made by the migrations up to ``revision`` only (an older lab's store)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()
    return path


def test_new_store_is_migrated_to_head_and_matches_the_models(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "new.db"))
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision()
        assert compare_metadata(context, Base.metadata) == []
    store.close()


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "keep.db"
    store = Store(str(path))
    add_clip(store)
    store.close()
    again = Store(f"sqlite:///{path}")
    with again.session() as session:
        assert session.scalar(select(func.count()).select_from(ClipRecord)) == 1
    again.close()


def test_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "tx.db"))
    add_clip(store)
    with pytest.raises(StoreError, match="store write failed"):
        add_clip(store)  # same content hash: unique constraint
    with pytest.raises(RuntimeError):
        with store.session() as session:
            session.add(
                ClipRecord(
                    content_hash="b" * 64, name="c", source="s", start_frame=0, width=2,
                    height=2, frame_count=1, fps_num=1, fps_den=1,
                )
            )  # fmt: skip
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


def test_a_store_from_newer_code_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    store = Store(str(path))
    add_clip(store)
    store.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(StoreError, match="newer version"):
        Store(str(path))
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM clips").fetchone() == (1,)


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


def test_a_store_with_a_run_from_before_liveness_migrates_and_the_run_is_not_live(
    tmp_path: Path,
) -> None:
    path = store_at_revision(tmp_path / "old.db", "0005")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO candidates (id, code_hash, source, name, origin, created_at) "
            "VALUES (1, 'h', '', 'c', 'seed', '2026-01-01 00:00:00')"
        )
        connection.execute(
            "INSERT INTO evolution_runs (batch, status, iterations_planned, provider, "
            "provider_reason, seed, start_parent_id, config_json, created_at) "
            "VALUES ('b', 'running', 3, 'mutation', 'r', 0, 1, '{}', '2026-01-01 00:00:00')"
        )
    store = Store(str(path))
    with store.session() as session:
        run = session.scalars(select(EvolutionRun)).one()
        assert (run.status, run.host, run.pid, run.heartbeat_at) == ("running", None, None, None)
    refuse_live_run(store, timeout_s=60)  # no carrier recorded: a crashed run, resumable
    store.close()


def test_a_store_at_0006_gains_the_per_frame_psnr_column_with_old_runs_left_empty(
    tmp_path: Path,
) -> None:
    path = store_at_revision(tmp_path / "old.db", "0006")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO clips (id, content_hash, name, source, start_frame, width, height, "
            "frame_count, fps_num, fps_den, created_at) "
            "VALUES (1, 'c', 'c', 's', 0, 16, 16, 2, 1, 1, '2026-01-01 00:00:00')"
        )
        connection.execute(
            "INSERT INTO candidates (id, code_hash, source, name, origin, created_at) "
            "VALUES (1, 'h', '', 'c', 'seed', '2026-01-01 00:00:00')"
        )
        connection.execute(
            "INSERT INTO candidate_runs (candidate_id, clip_id, quality, status, isolation, "
            "kbps, psnr_y, created_at) VALUES (1, 1, 40, 'ok', 'none', 10.0, 35.5, "
            "'2026-01-01 00:00:00')"
        )
    store = Store(str(path))
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
