"""Containment that does not rely on the candidate's cooperation (tests/hostile_kernel).

Each hostile codec here switches the Python guard off, or works around the lab's own
code in the child, so what stops it is the kernel (namespaces, seccomp, limits, parent-
death signals) and the parent's own measurements. Each must end as a failed run with its
reason or as a run whose figures are no better than its bytes allow, leaving nothing on
the host.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aicodec.clips import Clip, load_clip
from aicodec.processes import descendants, is_running
from aicodec.safe_text import printable
from aicodec.sandbox import syscalls
from aicodec.sandbox.execute import CandidateRun, run_candidate
from aicodec.sandbox.folders import PROBE_KIND, SWEPT_PREFIX
from aicodec.sandbox.isolation import landlock_version, mounts_under, tmpfs_options
from aicodec.sandbox.outputs import read_output
from aicodec.sandbox.probe import kernel_isolation_problem, namespaces_available
from aicodec.settings import Settings
from tests.test_sandbox import tight

pytestmark = pytest.mark.slow

HOSTILE = Path(__file__).parent / "hostile_kernel"
CHANNEL_KEY = 0x41434F44  # the SysV key the channel codecs use
EPERM, ENOENT, EACCES = 1, 2, 13
NAMESPACES = pytest.mark.skipif(
    not namespaces_available(), reason=f"no kernel isolation here: {kernel_isolation_problem()}"
)
# the modes in which the seccomp filter is in force on this machine
FILTERED_MODES = [
    pytest.param("namespaces", marks=NAMESPACES),
    pytest.param(
        "process",
        marks=pytest.mark.skipif(
            syscalls.filter_problem() is not None, reason=str(syscalls.filter_problem())
        ),
    ),
]


@pytest.fixture(scope="module")
def clip() -> Clip:
    return load_clip(None, Settings(), count=3)


@pytest.fixture(autouse=True)
def nothing_left_on_the_host() -> Iterator[None]:
    """After each test: no sandbox process of this test process, and none of its work
    folders or mounts."""
    yield
    mine = f"{SWEPT_PREFIX}{os.getpid()}-"
    assert sandbox_processes(os.getpid()) == []
    assert [path for path in Path(tempfile.gettempdir()).iterdir() if mine in path.name] == []
    assert [point for point in mounts_under(tempfile.gettempdir()) if mine in point] == []


def hostile(name: str, tmp_path: Path, **marks: object) -> str:
    """The source of hostile codec ``name`` with its place-holders filled in."""
    text = (HOSTILE / f"{name}.py").read_text().replace("{SENTINEL}", str(tmp_path / "escaped"))
    for key, value in marks.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def run(source: str, clip: Clip, mode: str, **overrides: object) -> CandidateRun:
    return run_candidate(source, clip, [50], tight(sandbox_isolation=mode, **overrides))


def sysv_keys() -> set[int]:
    """The keys of every System V segment, queue and semaphore set on the host."""
    keys: set[int] = set()
    for kind in ("shm", "msg", "sem"):
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        keys.update(int(line.split()[0]) for line in lines if line.split())
    return keys


@NAMESPACES
def test_a_sysv_shared_memory_channel_carries_nothing(clip: Clip, tmp_path: Path) -> None:
    result = run(hostile("sysv_shm_channel", tmp_path), clip, "namespaces")
    point = result.points[0]
    assert point.bitstream is not None and len(point.bitstream) == 16
    assert int.from_bytes(point.bitstream[12:], "little") == EPERM  # the kernel said no
    assert result.ok, result.first_error()
    assert point.decoded is not None and np.all(point.decoded.y == 128)  # nothing came across
    assert CHANNEL_KEY not in sysv_keys()
    assert sorted(path.name for path in tmp_path.iterdir()) == []


@NAMESPACES
def test_a_keyring_channel_carries_nothing(clip: Clip, tmp_path: Path) -> None:
    result = run(hostile("keyring_channel", tmp_path), clip, "namespaces")
    point = result.points[0]
    assert point.bitstream is not None
    assert int.from_bytes(point.bitstream[12:], "little") == EPERM
    assert result.ok, result.first_error()
    assert point.decoded is not None and np.all(point.decoded.y == 128)


@pytest.mark.parametrize("mode", FILTERED_MODES)
def test_with_the_guard_off_the_kernel_still_refuses(mode: str, clip: Clip, tmp_path: Path) -> None:
    result = run(hostile("guard_off_escapes", tmp_path), clip, mode)
    encode = result.points[0].encode
    assert encode.ok, encode.describe()  # the codec caught every refusal itself
    outcomes = dict(
        item.split("=") for item in (result.points[0].bitstream or b"").decode().split(";")
    )
    assert set(outcomes) == {"fork", "shell", "connect", "setsid_child", "fifo", "message_queue"}
    assert all(value == str(EPERM) for value in outcomes.values()), outcomes
    assert "seccomp" in encode.isolation
    assert not (tmp_path / "escaped").exists()
    assert CHANNEL_KEY not in sysv_keys()


@pytest.mark.parametrize("mode", ["namespaces", "process"])
def test_with_the_guard_off_files_outside_stay_out_of_reach(
    mode: str, clip: Clip, tmp_path: Path
) -> None:
    if mode == "namespaces" and not namespaces_available():
        pytest.skip(str(kernel_isolation_problem()))
    if mode == "process" and landlock_version() < 1:
        pytest.skip("no Landlock in this kernel: process mode cannot narrow the file system")
    source = tmp_path / "source.y4m"
    clip.frames.write_y4m(source)
    for path in (tmp_path, source):  # readable by anyone: only the sandbox stands in the way
        path.chmod(0o755 if path.is_dir() else 0o644)
    result = run(hostile("guard_off_files", tmp_path, SOURCE=source), clip, mode)
    encode = result.points[0].encode
    assert encode.ok, encode.describe()
    outcomes = dict(
        item.split("=") for item in (result.points[0].bitstream or b"").decode().split(";")
    )
    if mode == "process":  # the host's files are there, but Landlock refuses them
        assert "landlock" in encode.isolation
        assert outcomes == dict.fromkeys(outcomes, str(EACCES)) and len(outcomes) == 4
    else:  # the private root holds neither the source nor the lab; its /tmp is its own
        assert outcomes["read_source"] == outcomes["write_sentinel"] == str(ENOENT)
        assert outcomes["read_lab_environ"] in (str(EACCES), str(ENOENT))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["source.y4m"]
    assert not Path("/tmp/aicodec-escaped").exists()


@pytest.mark.parametrize("mode", ["namespaces", "process"])
def test_a_forged_ok_report_is_timed_and_checked_by_the_lab(
    mode: str, clip: Clip, tmp_path: Path
) -> None:
    if mode == "namespaces" and not namespaces_available():
        pytest.skip(str(kernel_isolation_problem()))
    agreeing = run(hostile("forged_report", tmp_path, EXTRA_FRAMES=0), clip, mode)
    assert agreeing.ok, agreeing.first_error()  # its frames are real frames: gray ones
    for report in agreeing.points[0].decodes:
        assert report.claimed_seconds == pytest.approx(1e-9)
        assert report.call_seconds is not None and report.call_seconds >= 0.6
    lying = run(hostile("forged_report", tmp_path, EXTRA_FRAMES=1), clip, mode)
    assert not lying.ok
    assert lying.points[0].error is not None and lying.points[0].error.startswith("decode:")
    failed = next(report for report in lying.points[0].decodes if not report.ok)
    assert failed.stage == "report" and "frames" in failed.message, failed.describe()


@pytest.mark.parametrize("mode", ["namespaces", "process"])
def test_work_done_at_import_time_is_timed(mode: str, clip: Clip, tmp_path: Path) -> None:
    if mode == "namespaces" and not namespaces_available():
        pytest.skip(str(kernel_isolation_problem()))
    result = run(hostile("import_time_work", tmp_path), clip, mode)
    assert result.ok, result.first_error()
    point = result.points[0]
    for report in (point.encode, *point.decodes):
        assert report.claimed_seconds is not None and report.claimed_seconds < 0.4
        assert report.call_seconds is not None and report.call_seconds >= 0.8


@pytest.mark.parametrize("mode", ["namespaces", "process"])
def test_an_exit_hook_cannot_hang_the_lab(mode: str, clip: Clip, tmp_path: Path) -> None:
    if mode == "namespaces" and not namespaces_available():
        pytest.skip(str(kernel_isolation_problem()))
    started = time.monotonic()
    result = run(hostile("exit_hook_fifo", tmp_path), clip, mode)
    assert time.monotonic() - started < 30  # the codec's threads sleep for 600 s
    point = result.points[0]
    if not result.ok:  # the thread moved the output away in time: a failure with its reason
        assert point.error is not None and "decoded.i420" in point.error, point.error
    else:
        assert point.deterministic


def test_the_lab_never_reads_a_fifo_link_or_oversized_output(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "target").write_bytes(b"x" * 10)
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "folder").mkdir()
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        started = time.monotonic()
        assert read_output(folder, "fifo", 100) == "fifo is not a regular file"
        assert time.monotonic() - started < 1  # no writer ever opens the FIFO: no wait
        assert str(read_output(folder, "link", 100)).startswith("cannot open link")
        assert read_output(folder, "folder", 100) == "folder is not a regular file"
        assert read_output(folder, "missing", 100) == "the child left no missing"
        assert read_output(folder, "target", 5) == "target holds 10 bytes, more than the 5 allowed"
        assert read_output(folder, "target", 10) == b"x" * 10
    finally:
        os.close(folder)


@pytest.mark.parametrize("mode", ["namespaces", "process"])
def test_control_characters_from_a_codec_are_escaped(mode: str, clip: Clip, tmp_path: Path) -> None:
    if mode == "namespaces" and not namespaces_available():
        pytest.skip(str(kernel_isolation_problem()))
    result = run(hostile("control_characters", tmp_path), clip, mode)
    encode = result.points[0].encode
    assert encode.status == "error"
    for text in (encode.message, encode.describe(), result.first_error() or ""):
        assert printable(text) == text  # nothing left to escape
        assert "\x1b" not in text and "\r" not in text and "\u2028" not in text
    assert "\\x1b]52;c;" in encode.message and "\\u2028" in encode.message


@NAMESPACES
def test_an_inode_flood_stops_at_the_job_folder_limit(clip: Clip, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(hostile("inode_flood", tmp_path), clip, "namespaces")
    encode = result.points[0].encode
    # the tmpfs ran out of inodes after about sandbox_job_inodes files, not 300,000, and
    # left none for the bitstream: a failed run that says so
    assert encode.status == "error" and "No space left on device" in encode.message
    assert time.monotonic() - started < 20


HANG = """
def encode(frames, quality):
    while True:
        pass


def decode(bitstream):
    while True:
        pass
"""


def sandbox_processes(lab: int) -> list[int]:
    """The sandbox children (keepers, inits, workers) below process ``lab``."""
    found = []
    for pid in descendants(lab):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"aicodec.sandbox.child" in command:
            found.append(pid)
    return found


@pytest.mark.parametrize("mode", ["namespaces", "process"])
def test_a_lab_killed_with_sigkill_leaves_no_sandbox_process(mode: str, tmp_path: Path) -> None:
    if mode == "namespaces" and not namespaces_available():
        pytest.skip(str(kernel_isolation_problem()))
    codec = tmp_path / "hang.py"
    codec.write_text(HANG)
    environment = {**os.environ, "AICODEC_SANDBOX_ISOLATION": mode}
    store = str(tmp_path / "store.db")
    command = [
        sys.executable,
        "-m",
        "aicodec",
        "run",
        str(codec),
        "--frames",
        "2",
        "--qualities",
        "20,80",
        "--jobs",
        "2",
        "--db",
        store,
    ]
    quiet = subprocess.DEVNULL
    lab = subprocess.Popen(command, env=environment, stdout=quiet, stderr=quiet)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2 * (3 if mode == "namespaces" else 2):
            time.sleep(0.2)
            workers = sandbox_processes(lab.pid)
        assert workers, "the lab started no sandbox child"
        time.sleep(0.5)  # the workers are in the codec's endless loop by now
        workers = sandbox_processes(lab.pid)
    finally:
        lab.send_signal(signal.SIGKILL)
        lab.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(is_running(pid) for pid in workers):
        time.sleep(0.05)
    assert not [pid for pid in workers if is_running(pid)]


def test_the_job_folder_tmpfs_counts_inodes() -> None:
    options = dict(
        item.partition("=")[::2] for item in tmpfs_options(1 << 24, 512, 65534).split(",")
    )
    assert options["nr_inodes"] == "512" and options["size"] == str(1 << 24)
    assert stat.S_IMODE(int(options["mode"], 8)) == 0o700


# a lab killed (SIGKILL) while its start-up probe's job folder is mounted
KILLED_IN_THE_PROBE = """
import os
import signal

from aicodec.sandbox import isolation
from aicodec.sandbox.probe import kernel_isolation_problem

real_mount = isolation.mount_job_folder


def mount_then_die(*args, **kwargs):
    real_mount(*args, **kwargs)
    print(args[0], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


isolation.mount_job_folder = mount_then_die
kernel_isolation_problem()
"""


@NAMESPACES
def test_a_lab_killed_in_its_start_up_probe_leaves_nothing_after_the_next_sweep() -> None:
    from aicodec.sandbox.folders import sweep_stale_folders

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_THE_PROBE], capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    job = Path(killed.stdout.strip())
    folder = job.parent
    assert re.fullmatch(rf"{SWEPT_PREFIX}\d+-{PROBE_KIND}\w+", folder.name), folder.name
    assert mounts_under(str(job)) == [str(job)]
    assert folder in sweep_stale_folders()
    assert not folder.exists() and mounts_under(str(folder)) == []
