"""Labs beside each other on one machine: a lab never removes a work folder another lab
holds (whatever pid namespace it runs in), a folder left by a killed lab is swept, a job
whose folder vanished fails with its reason, and an evolve run stopped by an internal error
stays resumable, prints its resume command and is resumed without scoring again what was
stored. Real CLI processes, real sandbox children, real SQLite stores."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aicodec.candidates import code_hash
from aicodec.processes import is_running, stop_process_tree
from aicodec.sandbox.folders import PROBE_KIND, SWEPT_PREFIX, remove_folder, sweep_stale_folders
from tests.test_jobs import HANGS, PLAIN

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
INTRA = ROOT / "baselines" / "seeds" / "intra_dct.py"  # the fastest seed
QUALITIES = "30,50,70,90"
# encodes and decodes slowly (some seconds of pure Python each), else as PLAIN
SPIN = "    spin = 0\n    for step in range(60_000_000):\n        spin += 1\n"
SLOW = PLAIN.replace("    head = ", SPIN + "    head = ").replace(
    "def decode(bitstream):\n", "def decode(bitstream):\n" + SPIN
)
# wraps the CLI: logs every sandbox job (code hash, role, quality) to $JOB_LOG and raises an
# unexpected error in the lab at the job numbered $BREAK_JOB, or in generation with
# $BREAK_GENERATION; the rest is the real lab
INJECTING_CLI = """
import os
import sys
import time

import aicodec.evolution.stages as stages
import aicodec.sandbox.execute as execute
from aicodec.candidates import code_hash

real_job, real_generate, jobs = execute.run_sandbox_job, stages.generate_candidates, [0]


def logged_job(job, clip, cancel):
    jobs[0] += 1
    with open(os.environ["JOB_LOG"], "a") as log:
        log.write(f"{code_hash(job.source)} {job.role} {job.quality}\\n")
    if jobs[0] == int(os.environ.get("BREAK_JOB", "0")):
        time.sleep(2)  # the jobs before it are taken in by the lab first
        raise RuntimeError("injected fault in a sandbox job")
    return real_job(job, clip, cancel)


def broken_generate(*args, **kwargs):
    raise KeyError("injected fault in generation")


execute.run_sandbox_job = logged_job
if os.environ.get("BREAK_GENERATION"):
    stages.generate_candidates = broken_generate
from aicodec.cli import main

sys.argv[0] = "aicodec"
main()
"""


def wait_for(condition: Callable[[], object], seconds: float = 60.0) -> object:
    """The first true value of ``condition`` (polled), or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not reached within {seconds} s")


def folders_of(pid: int) -> list[Path]:
    """The work folders named after ``pid`` (in this test's temporary folder)."""
    return sorted(Path(tempfile.gettempdir()).glob(f"{SWEPT_PREFIX}{pid}-*"))


def running_job_folder(pid: int) -> Path | None:
    """A work folder of ``pid`` with a codec's job started in it (not the start-up probe's)."""
    return next(
        (
            folder
            for folder in folders_of(pid)
            if (folder / "job").exists()
            and not folder.name.startswith(f"{SWEPT_PREFIX}{pid}-{PROBE_KIND}")
        ),
        None,
    )


def lab_command(codec: Path, clip: Path, db: Path, *extra: str) -> list[str]:
    """``aicodec run`` of ``codec`` at one quality, as JSON, with its work folders in this
    test's temporary folder (``TMPDIR``)."""
    return [
        "env",
        f"TMPDIR={tempfile.gettempdir()}",
        sys.executable,
        "-m",
        "aicodec",
        "run",
        str(codec),
        "--video",
        str(clip),
        "--qualities",
        "50",
        "--db",
        str(db),
        "--json",
        *extra,
    ]


@pytest.fixture
def own_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary folder of the test's own for work folders (labs get it through TMPDIR,
    this process through ``tempfile``), so that labs of other test runs on this machine,
    which may be of an older aicodec that sweeps by pid alone, never see them; the
    sandbox's unprivileged child may pass through it (mode 711)."""
    folder = Path(tempfile.mkdtemp(prefix="aicodec-labs-beside-"))
    folder.chmod(0o711)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    monkeypatch.undo()
    remove_folder(folder)


def free_pid() -> int:
    """A pid no process has here (from 20 up): what a lab in another pid namespace may be."""
    return next(pid for pid in range(20, 4000) if not is_running(pid) and not is_running(pid + 1))


@pytest.fixture
def codecs(tmp_path: Path) -> dict[str, Path]:
    made = {}
    for name, source in (("slow", SLOW), ("plain", PLAIN), ("hangs", HANGS)):
        made[name] = tmp_path / f"{name}.py"
        made[name].write_text(source)
    return made


def pid_namespaces() -> bool:
    """Whether this process may run a command in a new pid namespace (unshare, as root)."""
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--pid", "--fork", "--mount-proc", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not pid_namespaces(), reason="needs unshare --pid (root, namespaces)")
def test_a_lab_in_another_pid_namespace_keeps_its_folder_while_others_sweep(
    tmp_path: Path, codecs: dict[str, Path], clip_320x180: Path, own_tmp: Path
) -> None:
    """Lab A runs in a pid namespace of its own, so its folder is named after a pid that no
    process has here (as for a container's lab, a Ray or pytest-xdist worker elsewhere):
    a sweep here, and a second lab starting its jobs here, leave that folder alone."""
    inner = free_pid()
    forks = " ".join(["/bin/true;"] * (inner - 2))  # bash is 1, its forks 2.., then the lab
    command = shlex.join(lab_command(codecs["slow"], clip_320x180, tmp_path / "a.db"))
    lab_a = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", f"{forks} {command}; exit $?"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        folder = wait_for(lambda: running_job_folder(inner))
        assert isinstance(folder, Path)
        assert not is_running(inner)  # seen from here, the folder's process does not exist
        assert folder not in sweep_stale_folders()
        assert folder.exists() and (folder / "job").exists()
        lab_b = subprocess.Popen(
            lab_command(codecs["plain"], clip_320x180, tmp_path / "b.db"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: folders_of(lab_b.pid) or lab_b.poll() is not None)  # B swept first
        assert lab_a.poll() is None  # B swept while A's jobs ran (in folders it keeps: A ends ok)
        out_b, err_b = lab_b.communicate(timeout=300)
        assert lab_b.returncode == 0, err_b
        out_a, err_a = lab_a.communicate(timeout=300)
    finally:
        stop_process_tree(lab_a.pid)
    assert lab_a.returncode == 0, err_a
    assert json.loads(out_a)["points"][0]["quality"] == 50
    assert json.loads(out_b)["points"][0]["quality"] == 50
    assert not folder.exists()  # A removed its own folder at the end


def test_the_folder_of_a_killed_lab_is_swept(
    tmp_path: Path, codecs: dict[str, Path], clip_320x180: Path, own_tmp: Path
) -> None:
    lab = subprocess.Popen(
        lab_command(codecs["hangs"], clip_320x180, tmp_path / "s.db", "--jobs", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    folder = wait_for(lambda: running_job_folder(lab.pid))
    stop_process_tree(lab.pid)  # kill -9 of the lab and its children: nothing cleans up
    lab.wait(timeout=30)
    assert isinstance(folder, Path) and folder.exists()
    assert folder in sweep_stale_folders()
    assert not folder.exists()


def test_a_job_whose_folder_vanishes_is_a_failed_job_with_its_reason(
    tmp_path: Path, codecs: dict[str, Path], clip_320x180: Path, own_tmp: Path
) -> None:
    """A lab without locks (an older aicodec) removes the folder of a running job: the job
    fails and says why; the lab does not stop with an internal error."""
    db = tmp_path / "s.db"
    lab = subprocess.Popen(
        lab_command(codecs["slow"], clip_320x180, db, "--jobs", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        folder = wait_for(lambda: running_job_folder(lab.pid))
        assert isinstance(folder, Path)
        remove_folder(folder)
        out, err = lab.communicate(timeout=300)
    finally:
        stop_process_tree(lab.pid)
    assert lab.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: slow.py on "), err
    assert "internal error" not in err and "Traceback" not in err
    assert "quality 50: encode: encode error: " in lines[0]
    assert "vanished while it ran" in lines[0] or "left no readable" in lines[0], lines[0]
    with sqlite3.connect(db) as store:
        rows = store.execute("SELECT status, stage, error FROM candidate_runs").fetchall()
    assert [(status, stage) for status, stage, _ in rows] == [("failed", "encode")]
    assert rows[0][2] == lines[0].split("quality 50: ", 1)[1]


# --- evolve: an internal error leaves a resumable run, resumed without scoring again --------


def run_lab(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI through INJECTING_CLI (faults as ``env`` asks), jobs logged in the lab."""
    script = tmp_path / "injecting_cli.py"
    script.write_text(INJECTING_CLI)
    removed = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AICODEC_PROVIDER")
    base = {key: value for key, value in os.environ.items() if key not in removed}
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**base, "JOB_LOG": str(tmp_path / "jobs.log"), **env},
        check=False,
    )


def logged_jobs(tmp_path: Path) -> list[tuple[str, str, int]]:
    """The sandbox jobs logged so far, then the log emptied."""
    log = tmp_path / "jobs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.write_text("")
    return [(digest, role, int(quality)) for digest, role, quality in map(str.split, lines)]


def resume_line(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The stderr line of an internal error: one line, ending in the resume command."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("internal error")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    command = shlex.split(lines[0].split("Resume with: ", 1)[1])
    assert command[:3] == ["aicodec", "evolve", "--resume"], lines[0]
    return command[1:]


def seed_rows(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as store:
        return store.execute(
            "SELECT r.quality, r.status FROM candidate_runs r JOIN candidates c "
            "ON c.id = r.candidate_id WHERE c.origin = 'seed' ORDER BY r.quality, r.id"
        ).fetchall()


def run_row(db: Path) -> tuple[str, str | None]:
    with sqlite3.connect(db) as store:
        return store.execute("SELECT status, stop_reason FROM evolution_runs").fetchone()


def test_an_internal_error_leaves_a_run_that_resumes_without_scoring_the_seed_again(
    tmp_path: Path, clip_320x180: Path
) -> None:
    db, repo = tmp_path / "store.db", tmp_path / "codecs"
    seed = code_hash(INTRA.read_text())
    evolve = [
        "evolve",
        "--iterations",
        "1",
        "--video",
        str(clip_320x180),
        "--qualities",
        QUALITIES,
        "--encoders",
        "x264",
        "--parent",
        str(INTRA),
        "--holdout",
        "none",
        "--db",
        str(db),
        "--git-repo",
        str(repo),
        "--jobs",
        "1",
    ]

    # 1. the lab breaks in the seed's 9th job: with one job at a time, the four encodes go
    # first, then the decodes in order: quality 30 and 50 are done, the rest is not
    crashed = run_lab(tmp_path, *evolve, BREAK_JOB="9")
    assert crashed.returncode == 70, crashed.stderr
    assert "RuntimeError: injected fault in a sandbox job" in crashed.stderr
    command = resume_line(crashed)
    assert command == ["evolve", "--resume", "--db", str(db)]
    status, reason = run_row(db)
    assert status == "interrupted" and reason is not None and "RuntimeError" in reason
    assert {job[0] for job in logged_jobs(tmp_path)} == {seed}
    assert seed_rows(db) == [(30, "ok"), (50, "ok")]  # what finished was kept

    # 2. resumed, the seed runs only its missing points; then generation breaks
    crashed = run_lab(tmp_path, *command, BREAK_GENERATION="1")
    assert crashed.returncode == 70, crashed.stderr
    assert "KeyError" in crashed.stderr and "iteration 1" in crashed.stderr
    assert resume_line(crashed) == command
    seed_jobs = [(role, quality) for digest, role, quality in logged_jobs(tmp_path)]
    assert sorted(quality for role, quality in seed_jobs if role == "encode") == [70, 90]
    assert seed_rows(db) == [(30, "ok"), (50, "ok"), (70, "ok"), (90, "ok")]
    assert run_row(db)[0] == "interrupted"
    history = subprocess.run(
        [sys.executable, "-m", "aicodec", "history", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [entry["status"] for entry in json.loads(history.stdout)] == ["interrupted"]

    # 3. resumed again: the seed is not run at all; the iteration finishes
    finished = run_lab(tmp_path, *command, "--json")
    assert finished.returncode == 0, finished.stderr
    assert seed not in {job[0] for job in logged_jobs(tmp_path)}
    assert seed_rows(db) == [(30, "ok"), (50, "ok"), (70, "ok"), (90, "ok")]
    summary = json.loads(finished.stdout)
    assert summary["status"] == "finished" and summary["completed"] == 1
    assert run_row(db) == ("finished", None)
