"""Clean shutdown and a bounded sandbox: signals end every child's whole process tree and
remove work folders; a dead run's folders are swept; the job folder has a size cap."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from aicodec.clips import Clip, Frames, load_clip
from aicodec.processes import descendants, stop_process_tree
from aicodec.sandbox.execute import run_candidate
from aicodec.sandbox.folders import SWEPT_PREFIX, sweep_stale_folders, work_folder
from aicodec.sandbox.probe import namespaces_available
from aicodec.settings import Settings
from tests.test_jobs import HANGS

IGNORES_TERM = "trap '' TERM HUP INT; sleep 300"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return state[state.rindex(b")") + 2 :].split()[0] != b"Z"


def wait_for(condition, seconds: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def folders_of(pid: int) -> set[Path]:
    """The sandbox work folders of the lab process ``pid``."""
    return set(Path(tempfile.gettempdir()).glob(f"{SWEPT_PREFIX}{pid}-*"))


def test_a_process_tree_that_ignores_signals_and_left_its_group_is_killed() -> None:
    # a leader ignoring TERM, a child in its group, and a grandchild in a new session
    script = f'setsid bash -c "{IGNORES_TERM}" & bash -c "{IGNORES_TERM}" & {IGNORES_TERM}'
    leader = subprocess.Popen(["bash", "-c", script], start_new_session=True)

    def sleeping() -> list[int]:  # every shell has set its trap and become `sleep 300`
        tree = [leader.pid, *descendants(leader.pid)]
        return tree if all(_command(pid) == "sleep 300 " for pid in tree) else []

    assert wait_for(lambda: len(sleeping()) == 3)
    tree = sleeping()
    assert len({os.getsid(pid) for pid in tree}) == 2  # one left the session (and group)
    os.killpg(leader.pid, signal.SIGTERM)  # what a polite stop does: nothing here
    time.sleep(0.3)
    assert all(alive(pid) for pid in tree)
    stop_process_tree(leader.pid)
    leader.wait(timeout=10)
    assert wait_for(lambda: not any(alive(pid) for pid in tree), 10)


def start_hung_lab(tmp_path: Path) -> subprocess.Popen[str]:
    """``aicodec run`` of a codec whose encoder never returns, once both its encodes run:
    each is a sandbox child (under unshare with namespaces)."""
    codec = tmp_path / "hangs.py"
    codec.write_text(HANGS)
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aicodec",
            "run",
            str(codec),
            "--frames",
            "2",
            "--jobs",
            "2",
            "--db",
            str(tmp_path / "s.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # both job folders made and children in them (the lab's start-up probe of the kernel
    # layers is a sandbox child too, in a folder of its own)
    assert wait_for(
        lambda: (
            len(folders_of(lab.pid)) >= 2
            and sum("aicodec.sandbox.child" in _command(pid) for pid in descendants(lab.pid)) >= 2
        ),
        60,
    )
    return lab


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_ends_every_child_and_removes_the_work_folders(
    stop: signal.Signals, tmp_path: Path
) -> None:
    lab = start_hung_lab(tmp_path)
    tree = descendants(lab.pid)
    assert folders_of(lab.pid)
    lab.send_signal(stop)
    _, stderr = lab.communicate(timeout=30)
    assert lab.returncode == 130 and "Traceback" not in stderr
    assert "interrupted" in stderr
    assert wait_for(lambda: not any(alive(pid) for pid in tree), 10)
    assert not folders_of(lab.pid)


TGKILL = {"x86_64": 234, "aarch64": 131}  # the syscall's number on the machines we run on


def signal_a_thread(pid: int, tid: int, stop: signal.Signals) -> None:
    """Send ``stop`` to one thread of ``pid`` (tgkill), as the kernel may do by itself."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(TGKILL[os.uname().machine], pid, tid, int(stop)) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


@pytest.mark.skipif(os.uname().machine not in TGKILL, reason="tgkill's number is not known here")
def test_a_stop_signal_that_reaches_a_worker_thread_still_stops_the_lab(tmp_path: Path) -> None:
    """The kernel may hand a process's signal to any of its threads; Python runs the handler
    in the main thread, so a main thread asleep until a hung job ends must wake for it."""
    lab = start_hung_lab(tmp_path)
    try:
        threads = [int(tid) for tid in os.listdir(f"/proc/{lab.pid}/task")]
        signal_a_thread(lab.pid, max(tid for tid in threads if tid != lab.pid), signal.SIGTERM)
        _, stderr = lab.communicate(timeout=30)
    finally:
        if lab.poll() is None:
            stop_process_tree(lab.pid)
    assert lab.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_start_sweeps_the_folders_of_dead_runs_and_keeps_live_ones() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path(tempfile.mkdtemp(prefix=f"{SWEPT_PREFIX}{dead.pid}-"))
    (stale / "q20-encode").mkdir()
    (stale / "q20-encode" / "frames.i420").write_bytes(b"x" * 1000)
    live = Path(tempfile.mkdtemp(prefix=f"{SWEPT_PREFIX}{os.getppid()}-"))
    try:
        removed = sweep_stale_folders()
        assert stale in removed and not stale.exists()
        assert live.exists()
        with work_folder() as folder:
            assert folder.name.startswith(f"{SWEPT_PREFIX}{os.getpid()}-")
        assert not folder.exists()
    finally:
        live.rmdir()


# writes 1 MB files of noise through OpenCV's own file functions until one fails
DISK_FILLER = """
import struct

import cv2
import numpy as np


def encode(frames, quality):
    noise = np.random.default_rng(1).integers(0, 256, (1000, 1000), dtype=np.uint8)
    written = 0
    for index in range(200):
        try:
            if not cv2.imwrite(f"fill{index}.png", noise):
                break
        except cv2.error:
            break
        written += 1
    return struct.pack("<I", written)


def decode(bitstream):
    raise ValueError("not used")
"""


@pytest.fixture(scope="module")
def clip() -> Clip:
    return load_clip(None, Settings(), count=2)


@pytest.mark.skipif(not namespaces_available(), reason="the job tmpfs needs namespace isolation")
def test_the_job_folder_has_a_size_cap_that_native_writes_cannot_pass(clip: Clip) -> None:
    settings = Settings(sandbox_scratch_bytes=8 << 20, sandbox_max_bitstream_bytes=1 << 20)
    run = run_candidate(DISK_FILLER, clip, [50], settings)
    encode = run.points[0].encode
    assert "job-tmpfs" in encode.isolation
    written = struct.unpack("<I", run.points[0].bitstream or b"\0\0\0\0")[0]
    cap = len(clip.frames.i420_bytes()) + len(DISK_FILLER) + (2 << 20) + (8 << 20)
    assert 1 <= written and written * 1_000_000 <= cap  # stopped by the cap, not after 200 MB


def test_a_stop_signal_ends_the_ladders_running_encoders(tmp_path: Path) -> None:
    noise = np.random.default_rng(5).integers(0, 256, (24, 720, 1280), dtype=np.uint8)
    chroma = noise[:, ::2, ::2].copy()
    video = tmp_path / "noise.y4m"  # seconds per x264 encode: a stop must not wait for it
    Frames(noise, chroma, chroma, Fraction(24)).write_y4m(video)
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aicodec",
            "baselines",
            "--video",
            str(video),
            "--encoders",
            "x264",
            "--jobs",
            "2",
            "--db",
            str(tmp_path / "s.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def encoders() -> list[int]:
        return [pid for pid in descendants(lab.pid) if "libx264" in _command(pid)]

    assert wait_for(lambda: len(encoders()) == 2, 60)  # two rate points encode at once
    running = encoders()
    lab.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, stderr = lab.communicate(timeout=30)
    assert time.monotonic() - started < 10  # ffmpeg was killed, not waited for (30 s+)
    assert lab.returncode == 130 and "Traceback" not in stderr
    assert wait_for(lambda: not any(alive(pid) for pid in running), 10)
