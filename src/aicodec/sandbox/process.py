"""Starting a sandbox child's process on a prepared job folder and watching it to its end.

The child gets a scrubbed environment, and two pipes: one for its JSON report, one for
its keeper's timing of the candidate's call. Threads read those pipes and its stdout and
stderr (bounded: a flood kills it); the wall clock, the exit status and the keeper's
seconds are the parent's own measurements.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aicodec.errors import SandboxError
from aicodec.processes import stop_process_tree
from aicodec.sandbox.report import ChildReport, Measured, build_report
from aicodec.settings import Settings


def child_environment(settings: Settings, home: str) -> dict[str, str]:
    """The scrubbed environment of a child: no keys, no tokens, nothing inherited."""
    threads = str(settings.sandbox_threads)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
    }
    if settings.device != "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif "LD_LIBRARY_PATH" in os.environ:  # where the GPU driver's libraries may live
        env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
    return env


class _Drain(threading.Thread):
    """Reads a child's stdout or stderr, keeping the first ``keep`` bytes and counting all."""

    def __init__(
        self, stream: IO[bytes], keep: int, on_flood: Callable[[], None], flood: int
    ) -> None:
        super().__init__(daemon=True)
        self.stream, self.keep, self.on_flood, self.flood = stream, keep, on_flood, flood
        self.kept = bytearray()
        self.total = 0

    def run(self) -> None:
        while chunk := self.stream.read(65536):
            self.total += len(chunk)
            if len(self.kept) < self.keep:
                self.kept += chunk[: self.keep - len(self.kept)]
            if self.total > self.flood:
                self.on_flood()

    def text(self) -> str:
        return self.kept.decode("utf-8", "replace")


class _PipeReader(threading.Thread):
    """Reads one of a child's pipes to its end, keeping at most 1 MiB."""

    def __init__(self, descriptor: int) -> None:
        super().__init__(daemon=True)
        self.descriptor = descriptor
        self.chunks: list[bytes] = []

    def run(self) -> None:
        kept = 0
        while chunk := os.read(self.descriptor, 1 << 16):
            if kept < (1 << 20):
                self.chunks.append(chunk)
                kept += len(chunk)

    def data(self) -> bytes:
        return b"".join(self.chunks)

    def seconds(self) -> float | None:
        """The keeper's measured call time (s), None when the codec's code never started."""
        try:
            value = json.loads(self.data().decode("ascii")).get("call_seconds")
        except (ValueError, AttributeError, UnicodeDecodeError):
            return None
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class _Started:
    """A child just started: its process, the read ends of its report and keeper pipes,
    and when it started (perf_counter seconds)."""

    process: subprocess.Popen[bytes]
    report_fd: int
    keeper_fd: int
    at: float


class _Watched:
    """A started child with a thread on each of its pipes (stdout, stderr, report,
    keeper); a flood of stdout or stderr kills it."""

    def __init__(self, started: _Started, settings: Settings) -> None:
        self.process = started.process
        self.report_fd, self.keeper_fd = started.report_fd, started.keeper_fd
        self.flooded = threading.Event()
        keep, flood = settings.sandbox_output_bytes, settings.sandbox_flood_bytes
        streams = (self.process.stdout, self.process.stderr)
        self.drains = [_Drain(stream, keep, self._on_flood, flood) for stream in streams]  # type: ignore[arg-type]
        self.reader, self.keeper = _PipeReader(self.report_fd), _PipeReader(self.keeper_fd)
        for thread in (*self.drains, self.reader, self.keeper):
            thread.start()

    def kill(self) -> None:
        """Kill the child and whatever it left behind in its process group."""
        stop_process_tree(self.process.pid)

    def _on_flood(self) -> None:
        self.flooded.set()
        self.kill()

    def wait(self, deadline: float, cancel: threading.Event | None) -> bool:
        """Wait for the child until ``deadline`` (perf_counter seconds): True when it ended
        in time, False when it was killed for running late. Any interruption (Ctrl-C, a
        set ``cancel``) kills it before it is passed on: the child must not outlive it."""
        try:
            if _wait(self.process, deadline, cancel):
                return True
            self.kill()
            self.process.wait()
            return False
        except BaseException:
            self.kill()
            self.process.wait()
            raise

    def close(self) -> None:
        """Kill what is left of the child, read its pipes to their end and close them."""
        self.kill()  # anything the child left behind in its process group
        for thread in (self.reader, self.keeper, *self.drains):
            thread.join(timeout=5)
        os.close(self.report_fd)
        os.close(self.keeper_fd)

    def output(self) -> tuple[str, str]:
        """What the child printed (kept part): stdout, stderr."""
        return self.drains[0].text(), self.drains[1].text()


def run_process(
    role: str,
    job_dir: Path,
    settings: Settings,
    mode: str,
    limit_s: float,
    cancel: threading.Event | None,
) -> ChildReport:
    """Start the child process on the prepared ``job_dir`` and wait for its report."""
    root_dir: Path | None = None
    if mode == "namespaces":
        root_dir = job_dir.with_name(job_dir.name + "-root")
        root_dir.mkdir()
    started = _start(job_dir, settings, root_dir)
    watched = _Watched(started, settings)
    try:
        timed_out = not watched.wait(started.at + limit_s, cancel)
    finally:
        ended = time.perf_counter()
        watched.close()
        if root_dir is not None:
            _remove_quietly(root_dir)
    ending = "timeout" if timed_out else "flood" if watched.flooded.is_set() else None
    keeper_seconds = watched.keeper.seconds()
    measured = Measured(started.process.returncode, ended - started.at, keeper_seconds, ending)
    return build_report(role, measured, watched.reader.data(), watched.output(), settings, limit_s)


def _start(job_dir: Path, settings: Settings, root_dir: Path | None) -> _Started:
    """Start ``python -m aicodec.sandbox.child`` on ``job_dir`` (with its private root
    ``root_dir`` in namespace mode) in a session of its own, with its two pipes."""
    read_fd, write_fd = os.pipe()
    keeper_read, keeper_write = os.pipe()
    command = [
        sys.executable,
        "-s",
        "-P",
        "-m",
        "aicodec.sandbox.child",
        str(job_dir),
        str(write_fd),
        str(keeper_write),
        str(os.getpid()),
    ]
    if root_dir is not None:
        command.append(str(root_dir))
    home = "/job" if root_dir else str(job_dir)
    at = time.perf_counter()
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_environment(settings, home),
            cwd=job_dir,
            pass_fds=(write_fd, keeper_write),
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        os.close(keeper_read)
        raise
    finally:
        os.close(write_fd)
        os.close(keeper_write)
    return _Started(process, read_fd, keeper_read, at)


def _remove_quietly(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _wait(
    process: subprocess.Popen[bytes], deadline: float, cancel: threading.Event | None
) -> bool:
    """Wait for ``process`` until ``deadline`` (perf_counter seconds): True when it ended.

    Raises SandboxError as soon as ``cancel`` is set (checked every 0.1 s).
    """
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return False
        try:
            process.wait(timeout=left if cancel is None else min(left, 0.1))
            return True
        except subprocess.TimeoutExpired:
            if cancel is not None and cancel.is_set():
                raise SandboxError("the run was interrupted") from None
