"""Two machines, one PostgreSQL store: an evolve on machine A is live, so machine B's evolve
is refused in one line; A dies, and once its heartbeat is older than the timeout B's
--resume takes the run over and finishes it; a reader runs `aicodec history` all along and
never fails. Real processes, a real PostgreSQL server; the machines are told apart by
AICODEC_HOST, as machines that share a host name would be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aicodec.clips import load_clip
from aicodec.settings import Settings
from aicodec.store import Store
from tests.test_cli import assert_one_line_error
from tests.test_evolve_bad_states import INTRA, QUALITIES, crash
from tests.test_generate import aicodec_env
from tests.test_store import query

pytestmark = pytest.mark.slow

DEADLINE_S = 300.0
TIMEOUT_S = 2.0  # machine B's live-run timeout: a silent run of another host is dead after it


def machine(name: str) -> dict[str, str]:
    """The environment of a lab process on the machine called ``name``."""
    return {"AICODEC_HOST": name, "AICODEC_EVOLVE_HEARTBEAT_S": "0.2"}


def start_evolve(args: list[str], env: dict[str, str], folder: Path) -> subprocess.Popen[str]:
    """``aicodec ARGS`` in the background in its own session (its group is its pid)."""
    removed = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AICODEC_PROVIDER")
    base = {key: value for key, value in os.environ.items() if key not in removed}
    with open(folder / "a.out", "w") as out, open(folder / "a.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "aicodec", *args],
            stdout=out,
            stderr=err,
            text=True,
            env={**base, **env},
            start_new_session=True,
        )


class HistoryReader(threading.Thread):
    """Runs ``aicodec history --json`` on the store again and again until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.reads, self.failures = url, threading.Event(), 0, []

    def run(self) -> None:
        while not self.stop.is_set():
            result = aicodec_env("history", "--json", "--db", self.url)
            if result.returncode == 0 and isinstance(json.loads(result.stdout), list):
                self.reads += 1
            else:
                self.failures.append(result.stderr.strip())


def test_two_machines_on_one_postgres_store(postgres_url: str, tmp_path: Path) -> None:
    clip = tmp_path / "source.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(clip)
    evolve = [
        "evolve",
        "--iterations",
        "2",
        "--video",
        str(clip),
        "--qualities",
        QUALITIES,
        "--encoders",
        "x264",
        "--parent",
        str(INTRA),
        "--holdout",
        "none",
        "--db",
        postgres_url,
        "--git-repo",
        str(tmp_path / "codecs"),
    ]
    Store(postgres_url).close()  # the schema, before polling it
    first = start_evolve(evolve, machine("machine-a"), tmp_path)
    reader = HistoryReader(postgres_url)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not query(
            postgres_url,
            "SELECT 1 FROM evolution_runs WHERE heartbeat_at IS NOT NULL AND status = 'running'",
        ):
            assert first.poll() is None, (tmp_path / "a.err").read_text()
            assert time.monotonic() < deadline, "machine A's run never beat"
            time.sleep(0.1)
        reader.start()
        os.killpg(first.pid, signal.SIGSTOP)  # alive, but it goes no further meanwhile
        second = aicodec_env(*evolve[:2], "1", *evolve[3:], env=machine("machine-b"))
        assert_one_line_error(
            second,
            f"error: evolve run 1 is live on this store (host machine-a, pid {first.pid}, last",
        )
        assert query(postgres_url, "SELECT count(*) FROM evolution_runs") == [(1,)]
    finally:
        crash(first)  # machine A dies: its heartbeat stops
    (beat,) = query(postgres_url, "SELECT heartbeat_at FROM evolution_runs WHERE id = 1")[0]
    time.sleep(max(0.0, TIMEOUT_S + 0.5 - (datetime.now(UTC) - beat).total_seconds()))
    resumed = aicodec_env(
        "evolve",
        "--resume",
        "--db",
        postgres_url,
        "--json",
        env={**machine("machine-b"), "AICODEC_EVOLVE_LIVE_TIMEOUT_S": str(TIMEOUT_S)},
    )
    reader.stop.set()
    reader.join(timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert (summary["status"], summary["completed"]) == ("finished", 2)
    runs = query(postgres_url, "SELECT id, status, host, heartbeat_at FROM evolution_runs")
    assert runs == [(1, "finished", "machine-b", None)]  # taken over by B, let go at the end
    numbers = query(
        postgres_url,
        "SELECT number FROM evolution_iterations WHERE run_id = 1 "
        "AND status IN ('scored', 'failed') ORDER BY number",
    )
    assert numbers == [(1,), (2,)]
    assert reader.failures == [] and reader.reads >= 2, (reader.reads, reader.failures)
