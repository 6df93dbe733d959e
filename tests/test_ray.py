"""The Ray executor on a real local cluster (2 CPUs, started once by this module): a score
equal to the local executor's, an evolve, a dead worker's job retried and counted, cancel;
and the default path, which never imports Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

from aicodec.clips import Clip, load_clip
from aicodec.errors import ExecutorError
from aicodec.pools.local import make_pool
from aicodec.pools.ray_cluster import cached_clips, retried_total
from aicodec.settings import Settings
from tests.test_evolve import INTRA, QUALITIES, evolve_args

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install -e '.[ray]')")

SCORE = [
    "score",
    str(INTRA),
    "--frames",
    "4",
    "--qualities",
    QUALITIES,
    "--encoders",
    "x264",
    "--json",
]
# a CLI run that writes, at exit, the ray modules it imported
WATCHED = (
    "import atexit, runpy, sys; out = sys.argv.pop(1); "
    "atexit.register(lambda: open(out, 'w').write("
    "' '.join(name for name in sys.modules if name.split('.')[0] == 'ray'))); "
    "runpy.run_module('aicodec', run_name='__main__')"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray cluster of 2 CPUs owned by this test process; its address. Its processes
    ignore SIGINT, as those of a head started in the background do (the lab copes)."""
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        context = ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False
        )
    finally:
        signal.signal(signal.SIGINT, interrupt)
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def lab(*args: str, watch: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``aicodec ARGS`` in a fresh process (with ``watch``: it records its ray imports)."""
    head = (
        [sys.executable, "-c", WATCHED, str(watch)] if watch else [sys.executable, "-m", "aicodec"]
    )
    # RAY_AUTH_MODE=token, which ray.init put in this environment, lets them join the cluster
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    return subprocess.run(
        [*head, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def stored(db: Path) -> list[tuple]:  # type: ignore[type-arg]
    """Each stored run's figures and hashes, by quality."""
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "select quality, status, isolation, bytes, bitstream_sha256, decoded_sha256, psnr_y, "
            "psnr_yuv, ssim_y, frame_psnr_y_json from candidate_runs order by quality"
        ).fetchall()


@pytest.fixture(scope="module")
def ray_scored(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    """The seed scored through the CLI on the cluster: its store and its JSON."""
    db = tmp_path_factory.mktemp("ray") / "ray.db"
    result = lab(*SCORE, "--db", str(db), "--executor", "ray", "--ray-address", cluster)
    assert result.returncode == 0, result.stderr
    assert "executor: ray at" in result.stderr and "2 CPUs on 1 node" in result.stderr
    return db, json.loads(result.stdout)


def without_times(data: object) -> object:
    """JSON with the measured times left out (they differ from run to run)."""
    if isinstance(data, dict):
        return {
            key: without_times(value)
            for key, value in data.items()
            if not key.endswith(("_seconds", "_fps"))
        }
    if isinstance(data, list):
        return [without_times(value) for value in data]
    return data


def test_a_score_on_ray_equals_the_local_score(
    ray_scored: tuple[Path, dict],  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    ray_db, on_ray = ray_scored
    imported = tmp_path / "imported"
    local = lab(*SCORE, "--db", str(tmp_path / "local.db"), watch=imported)
    assert local.returncode == 0, local.stderr
    assert imported.read_text() == ""  # the default executor never imports ray
    assert "executor:" not in local.stderr
    here = json.loads(local.stdout)
    assert without_times(on_ray) == without_times(here)
    assert on_ray["bd_rate_vs"]["x264-medium"] is not None
    runs = stored(ray_db)
    assert runs == stored(tmp_path / "local.db")
    assert len(runs) == 4 and all(run[1] == "ok" and run[4] and run[5] for run in runs)


def test_evolve_on_ray_finishes_and_stores_its_runs(
    ray_scored: tuple[Path, dict],  # type: ignore[type-arg]
    cluster: str,
    tmp_path: Path,
) -> None:
    # the store already holds the ladder and the seed's runs on this clip: evolve reuses them
    shutil.copy(ray_scored[0], tmp_path / "store.db")
    source = tmp_path / "source.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(source)
    args = evolve_args(source, tmp_path, 2, "--executor", "ray", "--ray-address", cluster)
    result = lab(*args, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished" and summary["completed"] == 2
    with sqlite3.connect(tmp_path / "store.db") as connection:
        iterations = connection.execute(
            "select status, candidate_id from evolution_iterations order by number"
        ).fetchall()
        assert [status for status, _ in iterations] == ["scored", "scored"]
        for _, candidate in iterations:
            runs = connection.execute(
                "select status, decoded_sha256 from candidate_runs where candidate_id = ?",
                (candidate,),
            ).fetchall()
            assert len(runs) == 4 and all(s == "ok" and digest for s, digest in runs)


def dies_once(marker: str, clip: Clip) -> tuple[str, int]:
    """A job that kills the worker running it the first time (``marker`` remembers); then
    the clip's hash as the worker sees it, and the worker's pid."""
    if not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return clip.content_hash, os.getpid()


def sleeps(marker: str) -> None:
    """A job that notes in ``marker`` that it started, waits a minute in short sleeps (as
    the jobs watching a child do), and notes that it was stopped."""
    Path(marker).write_text("started")
    try:
        for _ in range(1200):
            time.sleep(0.05)
    except BaseException:
        Path(marker).write_text("stopped")
        raise


def test_a_job_whose_worker_dies_is_sent_again_and_counted(
    cluster: str, small_clip: Clip, tmp_path: Path
) -> None:
    retrying = Settings(executor="ray", ray_address=cluster)  # 3 retries by default
    strict = Settings(executor="ray", ray_address=cluster, ray_task_retries=0)
    with make_pool(retrying) as pool, make_pool(strict) as no_retry:
        again = pool.submit(dies_once, str(tmp_path / "first"), small_clip)
        failed = no_retry.submit(dies_once, str(tmp_path / "second"), small_clip)
        content_hash, pid = again.result(timeout=120)
        with pytest.raises(ExecutorError, match="died 1 time"):
            failed.result(timeout=120)
    assert content_hash == small_clip.content_hash  # the clip came through the object store
    assert pid != int((tmp_path / "first").read_text())  # on another worker
    assert (pool.retried, no_retry.retried) == (1, 0)
    assert retried_total() >= 1 and cached_clips() >= 1


def test_cancel_stops_the_running_jobs_and_drops_the_rest(cluster: str, tmp_path: Path) -> None:
    settings = Settings(executor="ray", ray_address=cluster, jobs=1)
    with make_pool(settings) as pool:
        running = pool.submit(sleeps, str(tmp_path / "first"))
        queued = pool.submit(sleeps, str(tmp_path / "second"))
        deadline = time.monotonic() + 60
        while not (tmp_path / "first").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        pool.cancel.set()
    assert time.monotonic() - started < 10
    for future in (running, queued):
        with pytest.raises(CancelledError):
            future.result(timeout=0)
    assert (tmp_path / "first").read_text() == "stopped"  # interrupted, not left to run
    assert not (tmp_path / "second").exists()


def test_a_missing_ray_or_an_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    hidden = (
        "import runpy, sys; sys.modules['ray'] = None; "
        "runpy.run_module('aicodec', run_name='__main__')"
    )
    db = str(tmp_path / "s.db")
    missing = subprocess.run(
        [sys.executable, "-c", hidden, *SCORE, "--db", db, "--executor", "ray"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "error: the Ray executor needs Ray, which is not installed: pip install 'aicodec[ray]'"
    )
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    away = lab(*SCORE, "--db", db, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")
    assert away.returncode == 2 and len(away.stderr.strip().splitlines()) == 1
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in away.stderr
