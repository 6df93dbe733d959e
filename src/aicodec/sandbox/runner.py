"""The parent side of the sandbox: start a child for one encode or decode, collect the outcome.

The parent trusts only what it measures itself. The candidate is timed from the ready
signal (the monotonic clock, read by trusted code just before the candidate's first line)
to its process's exit, as the child's keeper sees it: a process that runs no candidate
code. The parent opens the outputs itself (regular files only, no links or FIFOs,
bounded) and holds the child's own JSON report to those measurements: a report that
claims more than was measured is a failed run with its reason.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from aicodec.clips import Frames
from aicodec.errors import ConfigError, SandboxError
from aicodec.processes import stop_process_tree
from aicodec.safe_text import printable
from aicodec.sandbox import child, isolation, syscalls
from aicodec.settings import Settings

SIGNAL_MEANINGS: dict[int, str] = {
    signal.SIGKILL: "killed (memory, time or process limit)",
    signal.SIGXCPU: "CPU time limit reached",
    signal.SIGXFSZ: "file size limit reached",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "crashed (bus error)",
}
SIGNALLED = 128  # a child's exit code above this: it died of signal (code - 128)
CLAIM_SLACK_S = 0.05  # a child may claim this much more call time than the parent measured
# the layers a run in namespace mode must report, or it did not run isolated
KERNEL_LAYERS = (
    "mount-namespace",
    "pid-namespace",
    "net-namespace",
    "ipc-namespace",
    "uts-namespace",
    "user-namespace",
    "pivot-root",
    "seccomp",
)
PROBE_CODEC = (
    "def encode(frames, quality):\n    return b'ok'\n\n\ndef decode(data):\n    return None\n"
)


@dataclass(frozen=True)
class ChildReport:
    """How one sandbox child ended: status, failing stage, message, timings, isolation."""

    role: str
    status: str  # ok, error, refused, timeout, crashed, flood
    stage: str | None
    message: str
    exit_code: int | None
    wall_seconds: float  # the whole child, start to exit (s, the parent's clock)
    call_seconds: float | None  # the candidate's code, ready signal to exit (s, keeper-timed)
    isolation: tuple[str, ...]
    stdout: str = ""
    stderr: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # JSON values the child reported
    claimed_seconds: float | None = None  # the call time the child itself reported (a hint)

    @property
    def ok(self) -> bool:
        """Whether the child finished its job."""
        return self.status == "ok"

    def describe(self) -> str:
        """One line: which stage failed and what happened."""
        if self.ok:
            return f"{self.role} ok"
        stage = self.stage or self.role
        return f"{stage} {self.status}: {self.message}"


def isolation_mode(settings: Settings) -> str:
    """The isolation actually used: ``namespaces`` (every kernel layer) where it works here
    (and is asked for), else ``process``."""
    if settings.device not in ("cpu", "cuda"):
        raise ConfigError(f"device {settings.device!r} is not cpu or cuda")
    wanted = settings.sandbox_isolation
    if wanted not in ("auto", "namespaces", "process"):
        raise ConfigError(f"sandbox isolation {wanted!r} is not auto, namespaces or process")
    if wanted == "process":
        return "process"
    problem = kernel_isolation_problem()
    if problem is None:
        return "namespaces"
    if wanted == "namespaces":
        raise ConfigError(f"namespace isolation was asked for but is not available: {problem}")
    return "process"


def refuse_unisolated_model_code(settings: Settings) -> None:
    """Raise ConfigError when code a model wrote would run here without every kernel layer
    and the user has not opted in to process mode (``sandbox_allow_process``)."""
    if settings.sandbox_allow_process or isolation_mode(settings) == "namespaces":
        return
    why = kernel_isolation_problem() or "process isolation was asked for"
    raise ConfigError(
        f"code a model writes runs only with kernel isolation, which is not in force here "
        f"({why}); to run it with process isolation anyway, pass --allow-process-sandbox "
        f"(AICODEC_SANDBOX_ALLOW_PROCESS=1)"
    )


def namespaces_available() -> bool:
    """Whether children can run with every kernel layer here (see kernel_isolation_problem)."""
    return kernel_isolation_problem() is None


@lru_cache(maxsize=1)
def kernel_isolation_problem() -> str | None:
    """Why a child cannot run with every kernel layer on this machine (namespaces, private
    root, user namespace, seccomp), found by running one; None when it can."""
    if sys.platform != "linux":
        return f"kernel isolation needs Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return "namespace isolation needs the lab to run as root"
    problem = syscalls.filter_problem()
    if problem is not None:
        return problem
    settings = Settings(sandbox_isolation="namespaces", sandbox_wall_s=30.0)
    with tempfile.TemporaryDirectory(prefix="aicodec-probe-") as folder:
        os.chmod(folder, 0o711)
        try:
            report, _ = run_child(
                "encode",
                PROBE_CODEC,
                Path(folder) / "job",
                settings,
                mode="namespaces",
                inputs={child.FRAMES_FILE: bytes(96)},
                output=child.BITSTREAM_FILE,
                output_bytes=16,
                job={
                    "quality": 50,
                    "width": 8,
                    "height": 8,
                    "count": 1,
                    "fps_num": 1,
                    "fps_den": 1,
                },
            )
        except (OSError, SandboxError) as exc:
            return f"the probe child could not start ({exc})"
    missing = [layer for layer in KERNEL_LAYERS if layer not in report.isolation]
    if not report.ok:
        return f"the probe child failed: {report.describe()}"
    if missing:
        return f"the probe child ran without {', '.join(missing)}"
    return None


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


def _prepare_job(
    job_dir: Path, source: str, job: dict[str, object], inputs: dict[str, bytes], uid: int
) -> None:
    """Write the job directory (made already): the codec, its job description and inputs."""
    (job_dir / child.CODEC_FILE).write_text(source, encoding="utf-8")
    (job_dir / child.JOB_FILE).write_text(json.dumps(job), encoding="utf-8")
    for name, data in inputs.items():
        (job_dir / name).write_bytes(data)
    job_dir.chmod(0o700)
    if os.geteuid() == 0:
        for path in [job_dir, *job_dir.iterdir()]:
            os.chown(path, uid, uid)


def read_output(folder: int, name: str, max_bytes: int) -> bytes | str:
    """A child's output file ``name`` in the job folder open as descriptor ``folder``: its
    bytes, or why it cannot be trusted (missing, a link, a FIFO or other non-regular
    file, larger than ``max_bytes``). Never blocks: a FIFO is refused, not read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    try:
        descriptor = os.open(name, flags, dir_fd=folder)
    except FileNotFoundError:
        return f"the child left no {name}"
    except OSError as exc:
        return f"cannot open {name} ({exc.strerror})"
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        return f"{name} is not a regular file"
    with os.fdopen(descriptor, "rb") as handle:
        if info.st_size > max_bytes:
            return f"{name} holds {info.st_size} bytes, more than the {max_bytes} allowed"
        data = handle.read(max_bytes + 1)
    if len(data) != info.st_size:
        return f"{name} changed while the lab read it"
    return data


def wall_limit(
    settings: Settings,
    reference_s: float | None,
    frames: int = 0,
    width: int = 0,
    height: int = 0,
) -> float:
    """A child's wall-clock limit (s), at most the absolute cap ``sandbox_wall_s``.

    With a reference time (a related codec's, same clip, quality and role): its
    ``sandbox_time_multiple``, at least ``sandbox_time_floor_s``. Without one, from the
    clip (``frames`` of ``width`` x ``height``): the floor plus
    ``sandbox_seconds_per_megapixel_frame`` per million pixels of all its frames. The cap
    when neither is known."""
    if reference_s is not None and reference_s > 0:
        limit = max(settings.sandbox_time_floor_s, settings.sandbox_time_multiple * reference_s)
    elif frames > 0 and width > 0 and height > 0:
        megapixel_frames = frames * width * height / 1e6
        limit = (
            settings.sandbox_time_floor_s
            + settings.sandbox_seconds_per_megapixel_frame * megapixel_frames
        )
    else:
        return settings.sandbox_wall_s
    return min(settings.sandbox_wall_s, limit)


def run_child(
    role: str,
    source: str,
    job_dir: Path,
    settings: Settings,
    *,
    inputs: dict[str, bytes],
    job: dict[str, object],
    output: str,
    output_bytes: int,
    wall_s: float | None = None,
    cancel: threading.Event | None = None,
    mode: str | None = None,
) -> tuple[ChildReport, bytes | None]:
    """Run one encode or decode job of ``source`` in a fresh sandbox child at ``job_dir``;
    its report and its ``output`` file (at most ``output_bytes``) when it succeeded.

    With namespace isolation the job folder is a tmpfs bounded in bytes (the inputs, the
    output and ``sandbox_scratch_bytes``) and in inodes, unmounted (and so emptied) before
    this returns. Setting ``cancel`` (from another thread) kills the child at once and
    raises SandboxError: how an interrupted run stops the children it started in worker
    threads. A job folder that cannot be made, or that vanished while the child ran, raises
    OSError. ``mode`` overrides ``isolation_mode`` (the probe uses it).
    """
    mode = mode or isolation_mode(settings)
    cuda = settings.device == "cuda"
    limit_s = settings.sandbox_wall_s if wall_s is None else wall_s
    file_limit = output_bytes + (1 << 20)
    full_job = {
        "role": role,
        "user": settings.sandbox_user,
        "max_bitstream_bytes": settings.sandbox_max_bitstream_bytes,
        "device": settings.device,
        "devices": isolation.gpu_devices() if cuda else [],
        "syscall_filter": mode == "namespaces" or syscalls.filter_problem() is None,
        "limits": {
            "cpu_s": settings.sandbox_cpu_s,
            "memory": -1 if cuda else settings.sandbox_memory_bytes,
            "file_bytes": file_limit,
            "open_files": settings.sandbox_open_files,
            "procs": settings.sandbox_processes,
        },
        **job,
    }
    job_dir.mkdir(parents=True)
    mounted = False
    if mode == "namespaces":
        size = sum(map(len, inputs.values())) + len(source.encode()) + file_limit
        try:
            isolation.mount_job_folder(
                str(job_dir),
                size + settings.sandbox_scratch_bytes,
                settings.sandbox_job_inodes,
                settings.sandbox_user,
            )
        except OSError as exc:
            raise SandboxError(f"cannot bound the job folder with a tmpfs: {exc}") from exc
        mounted = True
    try:
        _prepare_job(job_dir, source, full_job, inputs, settings.sandbox_user)
        folder = os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            report = _run_process(role, job_dir, settings, mode, limit_s, cancel)
            if mounted and report.isolation:  # a child that reported its layers
                report = replace(report, isolation=(*report.isolation, "job-tmpfs"))
            _check_same_folder(job_dir, folder)  # also when the child failed for want of it
            if not report.ok:
                return report, None
            data = read_output(folder, output, output_bytes)
        finally:
            os.close(folder)
        if isinstance(data, str):
            return replace(report, status="error", stage="output", message=data), None
        problem = _disagreement(report, len(data))
        if problem is not None:
            return replace(report, status="error", stage="report", message=problem), None
        return report, data
    finally:
        if mounted:
            _unmount_quietly(job_dir)


def _check_same_folder(job_dir: Path, folder: int) -> None:
    """Raise FileNotFoundError when ``job_dir`` is no longer the folder the job ran in
    (open as descriptor ``folder``): removed, or replaced, by another process."""
    try:
        now = os.stat(job_dir, follow_symlinks=False)
    except FileNotFoundError:
        now = None
    held = os.fstat(folder)
    if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        raise FileNotFoundError(2, "the job folder was removed while the child ran", str(job_dir))


def _unmount_quietly(job_dir: Path) -> None:
    """Unmount the job folder's tmpfs; one already gone is fine."""
    try:
        isolation.unmount(str(job_dir))
    except OSError:
        pass


def _disagreement(report: ChildReport, size: int) -> str | None:
    """How the child's own report disagrees with what the parent measured (``size``: bytes
    of its output file, the call time on the parent's clock); None when it agrees."""
    if report.call_seconds is None:
        return "the child never signalled the start of the codec's code"
    claimed, measured = report.claimed_seconds, report.call_seconds
    if not isinstance(claimed, int | float) or not 0 <= claimed <= measured + CLAIM_SLACK_S:
        return (
            f"the child reported {claimed!r} s in the codec's call, but the lab measured "
            f"{report.call_seconds:.3f} s"
        )
    if report.role == "encode":
        if report.values.get("bytes") != size:
            return f"the child reported {report.values.get('bytes')!r} bytes, its file holds {size}"
        return None
    try:
        frames, width, height = (int(report.values[key]) for key in ("frames", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return "the child reported no frame count and size"
    expected = frames * (width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2))
    if min(frames, width, height) <= 0 or expected != size:
        shown = f"{frames} frames of {width}x{height}"
        return f"the child reported {shown}, its file holds {size} bytes"
    return None


def _run_process(
    role: str,
    job_dir: Path,
    settings: Settings,
    mode: str,
    limit_s: float,
    cancel: threading.Event | None,
) -> ChildReport:
    """Start the child process on the prepared ``job_dir`` and wait for its report."""
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
    root_dir: Path | None = None
    if mode == "namespaces":
        root_dir = job_dir.with_name(job_dir.name + "-root")
        root_dir.mkdir()
        command.append(str(root_dir))
    home = "/job" if root_dir else str(job_dir)
    started = time.perf_counter()
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
    flooded = threading.Event()

    def kill() -> None:
        stop_process_tree(process.pid)

    def on_flood() -> None:
        flooded.set()
        kill()

    keep, flood = settings.sandbox_output_bytes, settings.sandbox_flood_bytes
    drains = [_Drain(stream, keep, on_flood, flood) for stream in (process.stdout, process.stderr)]  # type: ignore[arg-type]
    reader, keeper = _PipeReader(read_fd), _PipeReader(keeper_read)
    for thread in (*drains, reader, keeper):
        thread.start()
    try:
        timed_out = not _wait(process, started + limit_s, cancel)
        if timed_out:
            kill()
            process.wait()
    except BaseException:  # Ctrl-C or another interruption: the child must not outlive it
        kill()
        process.wait()
        raise
    finally:
        ended = time.perf_counter()
        kill()  # anything the child left behind in its process group
        for thread in (reader, keeper, *drains):
            thread.join(timeout=5)
        os.close(read_fd)
        os.close(keeper_read)
        if root_dir is not None:
            _remove_quietly(root_dir)
    ending = "timeout" if timed_out else "flood" if flooded.is_set() else None
    measured = _Measured(process.returncode, ended - started, keeper.seconds(), ending)
    return _report(role, measured, reader.data(), drains, settings, limit_s)


def _remove_quietly(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


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
class _Measured:
    """What the parent measured of a child: exit code, seconds, how it was stopped."""

    exit_code: int | None
    wall_seconds: float
    call_seconds: float | None  # from the ready signal to the exit, timed by the keeper
    ending: str | None  # timeout, flood, or None when the child ended by itself


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


def _exit_meaning(code: int | None) -> str:
    """What a child's exit status says when it left no report."""
    if code is not None and code < 0:
        return SIGNAL_MEANINGS.get(-code, f"killed by signal {-code}")
    if code is not None and code > SIGNALLED:
        return SIGNAL_MEANINGS.get(code - SIGNALLED, f"killed by signal {code - SIGNALLED}")
    return f"exited with status {code} without a report"


def _report(
    role: str,
    measured: _Measured,
    raw: bytes,
    drains: list[_Drain],
    settings: Settings,
    limit_s: float,
) -> ChildReport:
    """Turn a finished child's exit status, the parent's timings and the child's JSON
    report into a ChildReport; every text from the child has its control characters
    escaped."""
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    crashed = ChildReport(
        role=role,
        status="crashed",
        stage=role,
        message=_exit_meaning(measured.exit_code),
        exit_code=measured.exit_code,
        wall_seconds=measured.wall_seconds,
        call_seconds=None,
        isolation=tuple(printable(str(layer)) for layer in data.get("isolation", ()) or ()),
        stdout=printable(drains[0].text(), keep_newlines=True),
        stderr=printable(drains[1].text(), keep_newlines=True),
    )
    if measured.ending == "timeout":
        message = f"no result within the {limit_s:.0f} s wall-clock limit"
        return replace(crashed, status="timeout", message=message)
    if measured.ending == "flood":
        message = f"wrote more than {settings.sandbox_flood_bytes} bytes to stdout/stderr"
        return replace(crashed, status="flood", message=message)
    if not data:
        return crashed
    values = {k: v for k, v in data.items() if k in ("bytes", "frames", "height", "width", "fps")}
    status = printable(str(data.get("status", "error")))
    if status == "ok" and measured.exit_code != 0:
        status, data["message"] = "error", f"reported ok but {_exit_meaning(measured.exit_code)}"
    claimed = data.get("call_seconds")
    return replace(
        crashed,
        status=status,
        stage=printable(str(data["stage"])) if data.get("stage") is not None else None,
        message=printable(str(data.get("message", ""))),
        call_seconds=measured.call_seconds,
        claimed_seconds=claimed if isinstance(claimed, int | float) else None,
        values=values,
    )


def encode_in_sandbox(
    source: str,
    frames: Frames,
    quality: int,
    job_dir: Path,
    settings: Settings,
    *,
    wall_s: float | None = None,
    cancel: threading.Event | None = None,
) -> tuple[ChildReport, bytes | None]:
    """Encode ``frames`` at ``quality`` in a child; the bitstream when it succeeded."""
    job: dict[str, object] = {
        "quality": quality,
        "width": frames.width,
        "height": frames.height,
        "count": frames.count,
        "fps_num": frames.fps.numerator,
        "fps_den": frames.fps.denominator,
    }
    return run_child(
        "encode",
        source,
        job_dir,
        settings,
        inputs={child.FRAMES_FILE: frames.i420_bytes()},
        job=job,
        output=child.BITSTREAM_FILE,
        output_bytes=settings.sandbox_max_bitstream_bytes,
        wall_s=wall_s,
        cancel=cancel,
    )


def decode_in_sandbox(
    source: str,
    bitstream: bytes,
    job_dir: Path,
    settings: Settings,
    *,
    max_bytes: int,
    wall_s: float | None = None,
    cancel: threading.Event | None = None,
) -> tuple[ChildReport, bytes | None]:
    """Decode ``bitstream`` in a child that sees nothing else; its raw I420 output."""
    return run_child(
        "decode",
        source,
        job_dir,
        settings,
        inputs={child.BITSTREAM_FILE: bitstream},
        job={},
        output=child.DECODED_FILE,
        output_bytes=max_bytes,
        wall_s=wall_s,
        cancel=cancel,
    )
