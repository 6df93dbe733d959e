"""Shared fixtures: the real media folder beside the repository, ffmpeg, small clips, stores
(SQLite files, and databases on a real PostgreSQL server started once per test session)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aicodec.clips import Clip, load_clip
from aicodec.ffmpeg import ffmpeg_exe
from aicodec.settings import Settings

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"

# The tests written for the mutation random walk (their seeds and the adoptions they expect)
# keep it as the offline provider, in this process and in the commands they start;
# tests/test_tuner.py names the tuner, and checks the default without this.
os.environ["AICODEC_OFFLINE_PROVIDER"] = "mutation"


def pytest_configure(config: pytest.Config) -> None:
    """Compile the metric kernels into numba's cache on disk once, in the main process,
    before the test workers and the commands they start measure anything: with a cold cache
    (a fresh clone or machine) every process that measures before it is written compiles
    them itself, about 8 s each."""
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the main process did it
        return
    from aicodec.scoring.metrics import compare

    frames = load_clip(None, Settings(), count=1).frames
    compare(frames, frames, settings=Settings())


def pytest_report_header() -> str:
    """Say at the top of every run whether the page tests have a browser."""
    from tests.browser import browser_missing, chromium_path

    missing = browser_missing()
    return (
        f"browser: {chromium_path()} (headless, for the page tests)"
        if missing is None
        else (f"browser: none, the page tests skip: {missing}")
    )


def media_path(name: str) -> Path:
    """A clip from ../shared/media, or skip the test with the reason when it is absent."""
    path = MEDIA / name
    if not path.is_file():
        pytest.skip(f"real clip {name} is not in {MEDIA} (the shared media folder is absent)")
    return path


def run_ffmpeg_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the bundled ffmpeg directly, as an independent reference tool (stderr captured)."""
    return subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", *args],
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the store in a temporary folder."""
    return Settings(db=f"sqlite:///{tmp_path / 'experiments.db'}")


@pytest.fixture(scope="session")
def small_clip() -> Clip:
    """The first 8 frames of the built-in clip (352x288)."""
    return load_clip(None, Settings(), count=8)


@pytest.fixture(scope="session")
def carphone() -> Path:
    """The 176x144 Carphone clip from ../shared/media."""
    return media_path("carphone_qcif.mp4")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL server for the whole test session, from the pgserver wheel (its own
    binaries; as root it runs them as a system user it creates). Skips without the wheel."""
    pgserver = pytest.importorskip(
        "pgserver", reason="pgserver is not installed (pip install -e '.[dev,postgres]')"
    )
    pytest.importorskip("psycopg", reason="psycopg is not installed (aicodec[postgres])")
    import psycopg

    folder = tempfile.mkdtemp(prefix="aicodec-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):  # a scratch server
            connection.execute(f"ALTER SYSTEM SET {setting} = off")
        connection.execute("SELECT pg_reload_conf()")
    yield server
    server.cleanup()
    # its databases are ~8 MB of small files each: removed in the background, not waited for
    subprocess.Popen(["rm", "-rf", folder], start_new_session=True)


def postgres_database(server: Any) -> str:
    """A new, empty database on ``server``, as a store URL (over the server's local socket)."""
    import psycopg

    name = f"t{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql+psycopg://postgres@/{name}?host={socket_dir}"


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """A fresh database on the session's PostgreSQL server, as a store URL."""
    return postgres_database(postgres_server)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty store: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def clip_320x180(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A y4m file of 4 frames of 320x180: the built-in clip's first frames, cropped."""
    import numpy as np

    from aicodec.clips import Frames

    whole = load_clip(None, Settings(), count=4).frames
    crop = {
        name: np.ascontiguousarray(getattr(whole, name)[:, :rows, :cols])
        for name, rows, cols in (("y", 180, 320), ("u", 90, 160), ("v", 90, 160))
    }
    path = tmp_path_factory.mktemp("clip320") / "clip_320x180.y4m"
    Frames(crop["y"], crop["u"], crop["v"], whole.fps).write_y4m(path)
    return path
