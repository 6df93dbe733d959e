"""evolve in bad states: crashes mid-write, dirty codec repositories, vanished clips, a model
that answers garbage, nothing to resume, Ctrl-C. Each drives the real CLI in a subprocess
and reads the SQLite store to check that nothing stored is lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aicodec.clips import load_clip
from aicodec.settings import Settings
from tests.fake_llm import Reply, fake_llm_fixture
from tests.test_cli import assert_one_line_error
from tests.test_generate import aicodec_env

fake_llm = fake_llm_fixture()
ROOT = Path(__file__).resolve().parents[1]
INTRA = ROOT / "baselines" / "seeds" / "intra_dct.py"  # the fastest seed
QUALITIES = "30,50,70,90"
FINISHED = ("scored", "failed")
KEY = "sk-ant-test-KEY-0123456789"
DEADLINE_S = 300.0  # generous: another heavy job may share the two cores
REMOVED_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AICODEC_PROVIDER")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path("/proc/self/stat").exists(), reason="needs /proc to follow the CLI's processes"
    ),
]


# --- the lab: a clip, a store where the seed is already scored, a codec repository ----------


@dataclass
class Lab:
    folder: Path
    clip: Path
    db: Path
    repo: Path

    def evolve(self, iterations: int, *extra: str, video: Path | None = None) -> list[str]:
        """Arguments of a small, fast evolve run on this lab."""
        return [
            "evolve",
            "--iterations",
            str(iterations),
            "--video",
            str(video or self.clip),
            "--qualities",
            QUALITIES,
            "--encoders",
            "x264",
            "--parent",
            str(INTRA),
            "--holdout",
            "none",
            "--db",
            str(self.db),
            "--git-repo",
            str(self.repo),
            *extra,
        ]

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of one read of the store (its own short connection)."""
        connection = sqlite3.connect(self.db, timeout=30)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def iterations(self) -> list[tuple[Any, ...]]:
        """Every stored iteration row, every column, by run and number."""
        return self.query("SELECT * FROM evolution_iterations ORDER BY run_id, number")

    def history(self) -> list[dict[str, Any]]:
        """``aicodec history --json --plans`` of the last run."""
        result = aicodec_env("history", "--plans", "--json", "--db", str(self.db))
        assert result.returncode == 0, result.stderr
        entries: list[dict[str, Any]] = json.loads(result.stdout)
        return entries

    def resume(
        self, *extra: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``aicodec evolve --resume`` on this lab's store."""
        return aicodec_env("evolve", "--resume", "--db", str(self.db), *extra, env=env)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 4-frame y4m clip and a store in which the intra seed is scored on it against x264.

    Every evolve run first scores its starting codec; stored runs are reused, so each test
    starts from a copy of this store instead of paying for that again.
    """
    folder = tmp_path_factory.mktemp("seeded")
    clip, db = folder / "source.y4m", folder / "template.db"
    load_clip(None, Settings(), count=4).frames.write_y4m(clip)
    scored = aicodec_env(
        "score",
        str(INTRA),
        "--video",
        str(clip),
        "--qualities",
        QUALITIES,
        "--encoders",
        "x264",
        "--db",
        str(db),
        "--json",
    )
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["bd_rate_vs"]["x264-medium"] is not None
    return clip, db


@pytest.fixture
def lab(seeded: tuple[Path, Path], tmp_path: Path) -> Lab:
    clip, template = seeded
    made = Lab(tmp_path, tmp_path / "source.y4m", tmp_path / "store.db", tmp_path / "codecs")
    shutil.copyfile(clip, made.clip)
    source, target = sqlite3.connect(template), sqlite3.connect(made.db)
    try:
        source.backup(target)  # a consistent copy, whatever the template's WAL holds
    finally:
        source.close()
        target.close()
    return made


# --- processes: start the CLI, follow what it starts, crash it --------------------------------


def _default_sigint() -> None:
    """In the child before exec: Ctrl-C must work even if this test runs with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(lab: Lab, *args: str) -> subprocess.Popen[str]:
    """``aicodec ARGS`` in the background, in its own session (its group is its pid), with
    stdout and stderr in files of the lab (a full pipe never blocks it); no API keys."""
    env = {key: value for key, value in os.environ.items() if key not in REMOVED_ENV}
    with open(lab.folder / "evolve.out", "w") as out, open(lab.folder / "evolve.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "aicodec", *args],
            stdout=out,
            stderr=err,
            text=True,
            env=env,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    cmdline: str


def processes() -> dict[int, Proc]:
    """Every process /proc shows now."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        cmdline = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        table[pid] = Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0], cmdline)
    return table


def descendants(pid: int) -> dict[int, Proc]:
    """The processes started, directly or not, by ``pid`` (those still linked to it)."""
    table = processes()
    found: dict[int, Proc] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for proc in table.values():
            if proc.ppid == parent and proc.pid not in found:
                found[proc.pid] = proc
                frontier.append(proc.pid)
    return found


def alive(pids: set[int], groups: set[int], sessions: set[int]) -> list[Proc]:
    """Live (not zombie) processes among ``pids`` or in those process groups or sessions."""
    return [
        proc
        for proc in processes().values()
        if proc.state != "Z" and (proc.pid in pids or proc.pgid in groups or proc.sid in sessions)
    ]


def crash(process: subprocess.Popen[str]) -> None:
    """kill -9 the CLI and everything it started, the way a power cut ends them."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGSTOP)  # frozen, it starts nothing new
    family = descendants(process.pid)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for group in {proc.pgid for proc in family.values()} - {process.pid}:  # sandbox sessions
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def freeze_sandbox(process: subprocess.Popen[str], sandbox: dict[int, Proc]) -> bool:
    """SIGSTOP the CLI's sandbox children (their process groups): True, with every process
    of theirs added to ``sandbox``, once one is seen stopped."""
    family = descendants(process.pid)
    groups = {proc.pgid for proc in family.values() if "aicodec.sandbox.child" in proc.cmdline}
    signalled = False
    for group in groups - {process.pid}:
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGSTOP)
            signalled = True
    if not signalled:  # between two children (or the one seen just ended): look again soon
        return False
    for _ in range(100):
        family = descendants(process.pid)
        if any(proc.state == "T" and proc.pgid in groups for proc in family.values()):
            sandbox.update({pid: p for pid, p in family.items() if p.pgid != process.pid})
            return True
        time.sleep(0.01)
    return False


def interrupt_and_survivors(
    lab: Any,
    process: subprocess.Popen[str],
    what: str,
    ready: Callable[[], bool],
    sandbox: dict[int, Proc],
) -> list[Proc]:
    """Once ``ready``, Ctrl-C the CLI (SIGINT to its group) and wait for it to end; the
    sandbox processes (collected in ``sandbox`` by ``ready``) still alive, then killed."""
    try:
        wait_for(lab, process, what, ready)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            crash(process)
        # no sandbox child (nor anything it started) outlives the interrupted CLI
        groups = {proc.pgid for proc in sandbox.values()} | {process.pid}
        sessions = {proc.sid for proc in sandbox.values()} - {os.getsid(0)}
        left = alive(set(sandbox), groups, sessions)
        for proc in left:  # they are this test's; never leave them stopped
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    return left


def wait_for(
    lab: Lab, process: subprocess.Popen[str], what: str, ready: Callable[[], bool]
) -> None:
    """Poll until ``ready()``; fail (with the CLI's stderr) if the CLI ends first or never."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        with suppress(sqlite3.OperationalError):  # the store may still be being created
            if lab.db.exists() and ready():
                return
        if process.poll() is not None:
            pytest.fail(f"evolve ended ({process.returncode}) before {what}: {stderr_of(lab)}")
        time.sleep(0.05)
    crash(process)
    pytest.fail(f"no {what} within {DEADLINE_S:.0f} s: {stderr_of(lab)}")


def stderr_of(lab: Lab) -> str:
    """What the background CLI wrote on stderr."""
    return (lab.folder / "evolve.err").read_text()


def iteration_status(lab: Lab, number: int) -> str | None:
    rows = lab.query("SELECT status FROM evolution_iterations WHERE number = ?", number)
    return rows[0][0] if rows else None


def run_until_scored(lab: Lab, iterations: int) -> list[tuple[Any, ...]]:
    """Start an evolve run, kill -9 it once iteration 1 is scored; the iterations it left."""
    process = start_cli(lab, *lab.evolve(iterations))
    try:
        wait_for(lab, process, "iteration 1 scored", lambda: iteration_status(lab, 1) in FINISHED)
    finally:
        if process.poll() is None:
            crash(process)
    assert lab.query("SELECT id, status FROM evolution_runs") == [(1, "running")]
    entries = lab.history()  # what the user sees of the crashed run
    assert entries[0]["iteration"] == 1 and entries[0]["status"] in FINISHED
    assert entries[0]["candidate"] is not None
    return lab.iterations()


def assert_finished(lab: Lab, summary: dict[str, Any], planned: int) -> None:
    """The run reached its planned count with each iteration stored once, finished."""
    assert summary["status"] == "finished" and summary["stop_reason"] is None, summary
    assert summary["planned"] == planned and summary["completed"] == planned
    assert [entry["iteration"] for entry in summary["iterations"]] == list(range(1, planned + 1))
    assert all(entry["status"] in FINISHED for entry in summary["iterations"])
    rows = lab.query("SELECT number, status FROM evolution_iterations ORDER BY id")
    assert sorted(number for number, _ in rows) == list(range(1, planned + 1))
    assert all(status in FINISHED for _, status in rows)
    assert lab.query("SELECT status FROM evolution_runs") == [("finished",)]
    assert lab.query("PRAGMA integrity_check") == [("ok",)]


# --- 1. a crash in the middle of a write ------------------------------------------------------

HALF_WRITER = """
import sqlite3, sys, time
db, marker = sys.argv[1], sys.argv[2]
connection = sqlite3.connect(db, isolation_level=None)
connection.execute("PRAGMA cache_size=8")  # a tiny page cache: the write spills to the disk
connection.execute("BEGIN IMMEDIATE")
connection.execute(
    "INSERT INTO candidates (code_hash, source, name, origin, parent_id, created_at) "
    "VALUES (?, ?, ?, 'llm', 1, '2026-01-01 00:00:00')",
    (marker, ("# " + marker + "\\n") * 100000, marker + ".py"),
)
connection.execute(
    "UPDATE evolution_iterations SET status = 'failed', failure_kind = 'torn', reason = ?, "
    "candidate_id = last_insert_rowid() WHERE number = 1", (marker,),
)
print("in the transaction", flush=True)
time.sleep(600)
"""


def test_resume_after_kill_9_and_a_write_torn_by_a_crash(lab: Lab) -> None:
    before = run_until_scored(lab, 3)

    # another process dies in the middle of a write transaction, pages already on the disk
    marker = f"half-written-{uuid.uuid4().hex}"
    writer = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITER, str(lab.db), marker], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "in the transaction\n"
        wal = lab.db.with_name(lab.db.name + "-wal")
        assert marker.encode() in wal.read_bytes()  # the unfinished write reached the disk
    finally:
        writer.kill()  # SIGKILL, before any COMMIT
        writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    resumed = lab.resume("--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert_finished(lab, summary, 3)
    assert summary["run_id"] == 1
    # the torn write left nothing: no half-written candidate, iteration 1 as it was stored
    assert lab.query(
        "SELECT count(*) FROM candidates WHERE code_hash = ? OR name LIKE ?", marker, f"{marker}%"
    ) == [(0,)]
    assert lab.query(
        "SELECT count(*) FROM evolution_iterations WHERE reason LIKE ?", f"%{marker}%"
    ) == [(0,)]
    assert lab.iterations()[0] == before[0]


# --- 2. a codec repository with uncommitted changes -------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def test_a_codec_repository_with_uncommitted_changes_is_refused_at_start(lab: Lab) -> None:
    lab.repo.mkdir()
    git(lab.repo, "init", "-q")
    (lab.repo / "codec.py").write_text("# adopted codec\n")
    git(lab.repo, "add", "codec.py")
    git(lab.repo, "commit", "-q", "-m", "v1")
    (lab.repo / "codec.py").write_text("# adopted codec, edited by hand\n")
    (lab.repo / "notes.txt").write_text("untracked\n")
    candidates = lab.query("SELECT id, code_hash FROM candidates ORDER BY id")

    refused = aicodec_env(*lab.evolve(2))
    assert_one_line_error(
        refused,
        f"codec repository {lab.repo.resolve()} has uncommitted changes "
        "(codec.py, notes.txt); commit or discard them first",
    )
    assert refused.returncode == 2
    # refused before the run row exists: nothing left 'running' for --resume to pick up
    assert lab.query("SELECT count(*) FROM evolution_runs") == [(0,)]
    assert lab.query("SELECT id, code_hash FROM candidates ORDER BY id") == candidates
    assert (lab.repo / "codec.py").read_text() == "# adopted codec, edited by hand\n"


def test_a_starting_codec_that_fails_leaves_no_run_to_resume(lab: Lab) -> None:
    seed = INTRA.read_text()
    assert seed.count("\ndef encode(frames, quality):\n") == 1
    broken = lab.folder / "broken.py"
    broken.write_text(
        seed.replace(
            "\ndef encode(frames, quality):\n",
            "\ndef encode(frames, quality):\n    raise RuntimeError('broken on purpose')\n",
        )
    )
    args = lab.evolve(2)
    args[args.index(str(INTRA))] = str(broken)
    refused = aicodec_env(*args)
    # the encodes run at once: the line names whichever quality failed first
    assert_one_line_error(refused, "fails: broken.py on source.y4m, quality ")
    assert re.search(r"quality \d+: encode: encode error", refused.stderr), refused.stderr
    assert "RuntimeError: broken on purpose" in refused.stderr and refused.returncode == 2
    # nothing was run, so there must be nothing for --resume to retry
    assert lab.query("SELECT count(*) FROM evolution_iterations") == [(0,)]
    unfinished = "SELECT count(*) FROM evolution_runs WHERE status IN ('running', 'interrupted')"
    assert lab.query(unfinished) == [(0,)]


# --- 3. a clip that disappeared ---------------------------------------------------------------


def test_a_clip_that_disappeared(lab: Lab) -> None:
    missing = lab.folder / "missing.y4m"
    gone = aicodec_env(*lab.evolve(1, video=missing))
    assert_one_line_error(gone, f"{missing}: no such file")
    assert gone.returncode == 2
    assert lab.query("SELECT count(*) FROM evolution_runs") == [(0,)]

    before = run_until_scored(lab, 2)
    runs = lab.query("SELECT * FROM evolution_runs")
    aside = lab.folder / "aside.y4m"
    lab.clip.rename(aside)
    refused = lab.resume()
    assert_one_line_error(refused, f"{lab.clip}: no such file")
    assert refused.returncode == 2
    assert lab.iterations() == before  # the stored iterations are all still there, unchanged
    assert lab.query("SELECT * FROM evolution_runs") == runs

    # other frames under the clip's name are refused too: the run's clip is its content
    load_clip(None, Settings(), start=4, count=4).frames.write_y4m(lab.clip)
    changed = lab.resume()
    assert_one_line_error(changed, f"clip {lab.clip} changed since the run began")
    assert lab.iterations() == before

    aside.replace(lab.clip)
    resumed = lab.resume("--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert_finished(lab, summary, 2)
    assert lab.iterations()[0] == before[0]


# --- 4. a model that only answers garbage -----------------------------------------------------


def test_a_model_that_only_answers_garbage_stops_the_run(fake_llm, lab: Lab) -> None:  # type: ignore[no-untyped-def]
    garbage = "I am sorry, I cannot help with codecs today. Have a lovely afternoon!"
    server = fake_llm(*(Reply(garbage) for _ in range(40)))
    env = {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": server.url,
        "AICODEC_LLM_MAX_RETRIES": "1",
        "AICODEC_EVOLVE_MAX_FAILURES_IN_ROW": "3",
    }
    result = aicodec_env(*lab.evolve(10, "--provider", "anthropic", "--json"), env=env)
    # the run ends by itself with its summary; failing out is exit 1 for scripts
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed" and summary["planned"] == 10
    assert "3 iterations in a row produced no scored codec (no-code x3)" in summary["stop_reason"]
    assert summary["failures"] == {"no-code": 3}
    assert summary["completed"] == 3 and summary["scored"] == 0 and summary["adoptions"] == []
    assert summary["best_candidate"] == summary["start_candidate"]
    assert summary["cost_usd"] > 0
    entries = summary["iterations"]
    assert [(entry["iteration"], entry["status"], entry["failure_kind"]) for entry in entries] == [
        (number, "failed", "no-code") for number in (1, 2, 3)
    ]
    # nothing adopted: the cost per gain is what the run cost in all, every call of its log
    # (the unreadable plans' calls too), with no figure per percent
    cost = summary["cost_per_gain"]
    assert cost["adoptions"] == [] and cost["run"]["per_percent"] is None
    spent = cost["run"]["spent"]
    assert spent["iterations"] == 3 and spent["tokens"] == 6 * (120 + 30)  # the replies' usage
    assert spent["cost_usd"] == pytest.approx(summary["cost_usd"])
    assert lab.query(
        "SELECT iteration, count(*) FROM model_calls GROUP BY iteration ORDER BY iteration"
    ) == [(1, 2), (2, 2), (3, 2)]
    # each iteration asked twice (a plan, then code); neither answer is repaired or retried
    assert all(entry["planner"] == "rules (model plan unavailable)" for entry in entries)
    assert len(server.requests) == 6 and server.remaining == 34
    assert {request.path for request in server.requests} == {"/v1/messages"}
    assert lab.query("SELECT status, stop_reason FROM evolution_runs") == [
        ("failed", summary["stop_reason"])
    ]
    assert lab.query("SELECT count(*) FROM evolution_iterations") == [(3,)]
    assert KEY.encode() not in lab.db.read_bytes() and KEY not in result.stdout + result.stderr
    # a failed run is over: --resume does not take it up again
    assert_one_line_error(lab.resume(env=env), "no unfinished evolve run in the store to resume")
    assert len(server.requests) == 6


# --- 5. --resume with nothing to resume, or with settings of its own --------------------------


def test_resume_with_nothing_to_resume_or_new_settings(tmp_path: Path) -> None:
    db = str(tmp_path / "empty.db")
    nothing = aicodec_env("evolve", "--resume", "--db", db)
    assert_one_line_error(
        nothing,
        "error: no unfinished evolve run in the store to resume; start one with aicodec evolve",
    )
    assert nothing.returncode == 2
    clash = aicodec_env("evolve", "--resume", "--video", "x", "--db", db)
    assert_one_line_error(
        clash, "error: --resume continues a run with its own settings; drop --video"
    )
    assert clash.returncode == 2
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT count(*) FROM evolution_runs").fetchall() == [(0,)]


# --- 6. Ctrl-C in the middle of an iteration --------------------------------------------------


def test_ctrl_c_while_scoring_then_resume(lab: Lab) -> None:
    # one job at a time: iteration 1 scores for seconds, not a moment, so the test catches a
    # child of it even when other work slows this machine down
    process = start_cli(lab, *lab.evolve(2, "--jobs", "1"))
    sandbox: dict[int, Proc] = {}

    def sandbox_child_frozen() -> bool:
        """Iteration 1 is scoring and one of its sandbox children is stopped (SIGSTOP): it
        cannot finish by itself, so only the CLI's own clean-up can end it."""
        rows = lab.query("SELECT stage, status FROM evolution_iterations WHERE number = 1")
        if rows != [("score", "running")]:
            return False
        return freeze_sandbox(process, sandbox)

    candidates: list[Any] = []

    def frozen_and_noted() -> bool:
        if not sandbox_child_frozen():
            return False
        number_one = "SELECT candidate_id FROM evolution_iterations WHERE number = 1"
        candidates.append(lab.query(number_one))
        return True

    left = interrupt_and_survivors(
        lab, process, "a sandbox child scoring iteration 1", frozen_and_noted, sandbox
    )
    candidate = candidates[0]
    assert sandbox and left == []
    err = stderr_of(lab)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "evolve run 1 interrupted in iteration 1 (score)" in err
    assert f"Resume with: aicodec evolve --resume --db {lab.db}" in err
    assert lab.query("SELECT status FROM evolution_runs") == [("interrupted",)]
    assert lab.query("SELECT number, status, stage FROM evolution_iterations") == [
        (1, "interrupted", "score")
    ]

    # a resume refused (the codec repository got dirty) leaves the run as it was: interrupted
    interrupted = lab.iterations()
    lab.repo.mkdir()
    git(lab.repo, "init", "-q")
    (lab.repo / "README").write_text("adopted codecs\n")
    refused = lab.resume()
    assert_one_line_error(
        refused, f"codec repository {lab.repo.resolve()} has uncommitted changes (README)"
    )
    assert lab.query("SELECT status FROM evolution_runs") == [("interrupted",)]
    assert lab.iterations() == interrupted
    git(lab.repo, "add", "README")
    git(lab.repo, "commit", "-q", "-m", "start")

    resumed = lab.resume("--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert_finished(lab, summary, 2)
    # iteration 1 was done again from its stored candidate, not from a new one
    assert candidate[0][0] is not None
    assert summary["iterations"][0]["candidate"] == candidate[0][0]
