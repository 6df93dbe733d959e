"""The parent side of the sandbox: start a child for one encode or decode, collect the outcome."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from aicodec.clips import Frames
from aicodec.errors import ConfigError, SandboxError
from aicodec.processes import stop_process_tree
from aicodec.sandbox import child, isolation
from aicodec.settings import Settings

SIGNAL_MEANINGS = {
    signal.SIGKILL: "killed (memory, time or process limit)",
    signal.SIGXCPU: "CPU time limit reached",
    signal.SIGXFSZ: "file size limit reached",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "crashed (bus error)",
}


@dataclass(frozen=True)
class ChildReport:
    """How one sandbox child ended: status, failing stage, message, timings, isolation."""

    role: str
    status: str  # ok, error, refused, timeout, crashed, flood
    stage: str | None
    message: str
    exit_code: int | None
    wall_seconds: float
    call_seconds: float | None
    isolation: tuple[str, ...]
    stdout: str = ""
    stderr: str = ""
    values: dict[str, object] = field(default_factory=dict)

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
    """The isolation actually used: ``namespaces`` where allowed (and asked), else ``process``."""
    if settings.device not in ("cpu", "cuda"):
        raise ConfigError(f"device {settings.device!r} is not cpu or cuda")
    wanted = settings.sandbox_isolation
    if wanted not in ("auto", "namespaces", "process"):
        raise ConfigError(f"sandbox isolation {wanted!r} is not auto, namespaces or process")
    if wanted == "process":
        return "process"
    if isolation.namespaces_available():
        return "namespaces"
    if wanted == "namespaces":
        raise ConfigError("namespace isolation was asked for but unshare is not available")
    return "process"


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

    def __init__(self, stream: IO[bytes], keep: int, on_flood, flood: int) -> None:  # type: ignore[no-untyped-def]
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


def read_output(job_dir: Path, name: str, max_bytes: int) -> bytes | None:
    """A child's output file: None when it is missing, a link or larger than ``max_bytes``."""
    try:
        descriptor = os.open(job_dir / name, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if os.fstat(handle.fileno()).st_size > max_bytes:
            return None
        return handle.read(max_bytes + 1)


def wall_limit(
    settings: Settings, reference_s: float | None, frames: int = 0, width: int = 0,
    height: int = 0,
) -> float:  # fmt: skip
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
        limit = (settings.sandbox_time_floor_s
                 + settings.sandbox_seconds_per_megapixel_frame * megapixel_frames)  # fmt: skip
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
) -> tuple[ChildReport, bytes | None]:
    """Run one encode or decode job of ``source`` in a fresh sandbox child at ``job_dir``;
    its report and its ``output`` file (at most ``output_bytes``) when it succeeded.

    With namespace isolation the job folder is a tmpfs sized for the inputs, the output
    and ``sandbox_scratch_bytes``, unmounted (and so emptied) before this returns. Setting
    ``cancel`` (from another thread) kills the child at once and raises SandboxError: how
    an interrupted run stops the children it started in worker threads.
    """
    mode = isolation_mode(settings)
    cuda = settings.device == "cuda"
    limit_s = settings.sandbox_wall_s if wall_s is None else wall_s
    file_limit = output_bytes + (1 << 20)
    full_job = {
        "role": role,
        "user": settings.sandbox_user,
        "max_bitstream_bytes": settings.sandbox_max_bitstream_bytes,
        "device": settings.device,
        "devices": isolation.gpu_devices() if cuda else [],
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
                str(job_dir), size + settings.sandbox_scratch_bytes, settings.sandbox_user
            )
        except OSError as exc:
            raise SandboxError(f"cannot bound the job folder with a tmpfs: {exc}") from exc
        mounted = True
    try:
        _prepare_job(job_dir, source, full_job, inputs, settings.sandbox_user)
        report = _run_process(role, job_dir, settings, mode, limit_s, cancel)
        if mounted and report.isolation:  # a child that reported its layers
            report = replace(report, isolation=(*report.isolation, "job-tmpfs"))
        if not report.ok:
            return report, None
        data = read_output(job_dir, output, output_bytes)
        if data is None:
            return replace(report, status="error", stage=role,
                           message=f"the child left no readable {output}"), None  # fmt: skip
        return report, data
    finally:
        if mounted:
            isolation.unmount(str(job_dir))


def _run_process(
    role: str,
    job_dir: Path,
    settings: Settings,
    mode: str,
    limit_s: float,
    cancel: threading.Event | None,
) -> ChildReport:
    """Start the child process on the prepared ``job_dir`` and wait for its report."""
    command = [sys.executable, "-s", "-P", "-m", "aicodec.sandbox.child", str(job_dir)]
    root = ""
    if mode == "namespaces":
        root_dir = job_dir.with_name(job_dir.name + "-root")
        root_dir.mkdir()
        root = str(root_dir)
        command = isolation.unshare_prefix() + command
    read_fd, write_fd = os.pipe()
    command += [str(write_fd)] + ([root] if root else [])
    home = "/job" if root else str(job_dir)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=child_environment(settings, home), cwd=job_dir, pass_fds=(write_fd,),
        start_new_session=True,
    )  # fmt: skip
    os.close(write_fd)
    flooded = threading.Event()

    def kill() -> None:
        stop_process_tree(process.pid)

    def on_flood() -> None:
        flooded.set()
        kill()

    keep, flood = settings.sandbox_output_bytes, settings.sandbox_flood_bytes
    drains = [_Drain(stream, keep, on_flood, flood) for stream in (process.stdout, process.stderr)]  # type: ignore[arg-type]
    report_chunks: list[bytes] = []

    def read_report() -> None:
        while chunk := os.read(read_fd, 1 << 16):
            if sum(map(len, report_chunks)) < (1 << 20):
                report_chunks.append(chunk)

    reader = threading.Thread(target=read_report, daemon=True)
    for thread in (*drains, reader):
        thread.start()
    try:
        timed_out = not _wait(process, started + limit_s, cancel)
        if timed_out:
            kill()
            process.wait()
    except BaseException:  # Ctrl-C or another interruption: the child must not outlive it
        kill()
        process.wait()
        os.close(read_fd)
        raise
    kill()  # anything the child left behind in its process group
    wall = time.perf_counter() - started
    reader.join(timeout=5)
    for thread in drains:
        thread.join(timeout=5)
    os.close(read_fd)
    if root:
        os.rmdir(root)
    ending = "timeout" if timed_out else "flood" if flooded.is_set() else None
    raw = b"".join(report_chunks)
    return _report(role, process.returncode, raw, wall, ending, drains, settings, limit_s)


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


def _report(
    role: str,
    code: int | None,
    raw: bytes,
    wall: float,
    ending: str | None,
    drains: list[_Drain],
    settings: Settings,
    limit_s: float,
) -> ChildReport:
    """Turn a finished child's exit status and JSON report into a ChildReport."""
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except ValueError:
        data = {}
    layers = tuple(str(layer) for layer in data.get("isolation", ()))
    common = dict(role=role, exit_code=code, wall_seconds=wall, isolation=layers,
                  stdout=drains[0].text(), stderr=drains[1].text())  # fmt: skip
    if ending == "timeout":
        message = f"no result within the {limit_s:.0f} s wall-clock limit"
        return ChildReport(status="timeout", stage=role, message=message, call_seconds=None,
                           **common)  # type: ignore[arg-type]  # fmt: skip
    if ending == "flood":
        message = f"wrote more than {settings.sandbox_flood_bytes} bytes to stdout/stderr"
        return ChildReport(status="flood", stage=role, message=message, call_seconds=None,
                           **common)  # type: ignore[arg-type]  # fmt: skip
    if not data:
        if code is not None and code < 0:
            meaning = SIGNAL_MEANINGS.get(-code, f"killed by signal {-code}")
        else:
            meaning = f"exited with status {code} without a report"
        return ChildReport(status="crashed", stage=role, message=meaning, call_seconds=None,
                           **common)  # type: ignore[arg-type]  # fmt: skip
    values = {k: v for k, v in data.items() if k in ("bytes", "frames", "height", "width", "fps")}
    return ChildReport(
        status=str(data.get("status", "error")),
        stage=data.get("stage"),
        message=str(data.get("message", "")),
        call_seconds=data.get("call_seconds"),
        values=values,
        **common,  # type: ignore[arg-type]
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
    job = {
        "quality": quality,
        "width": frames.width,
        "height": frames.height,
        "count": frames.count,
        "fps_num": frames.fps.numerator,
        "fps_den": frames.fps.denominator,
    }
    return run_child(
        "encode", source, job_dir, settings, inputs={child.FRAMES_FILE: frames.i420_bytes()},
        job=job, output=child.BITSTREAM_FILE, output_bytes=settings.sandbox_max_bitstream_bytes,
        wall_s=wall_s, cancel=cancel,
    )  # fmt: skip


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
        "decode", source, job_dir, settings, inputs={child.BITSTREAM_FILE: bitstream}, job={},
        output=child.DECODED_FILE, output_bytes=max_bytes, wall_s=wall_s, cancel=cancel,
    )  # fmt: skip
