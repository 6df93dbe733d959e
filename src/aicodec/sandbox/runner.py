"""The parent side of the sandbox: start a child for one encode or decode, collect the outcome.

The parent trusts only what it measures itself. The candidate is timed from the ready
signal (the monotonic clock, read by trusted code just before the candidate's first line)
to its process's exit, as the child's keeper sees it: a process that runs no candidate
code (:mod:`aicodec.sandbox.process`). The parent opens the outputs itself (regular files
only, no links or FIFOs, bounded) and holds the child's own JSON report to those
measurements: a report that claims more than was measured is a failed run with its reason
(:mod:`aicodec.sandbox.outputs`). Which isolation a child gets is found by
:mod:`aicodec.sandbox.probe`.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

from aicodec.clips import Frames
from aicodec.errors import SandboxError
from aicodec.sandbox import child, isolation, syscalls
from aicodec.sandbox.outputs import check_same_folder, checked_output, read_output
from aicodec.sandbox.probe import isolation_mode

# the docs (kernel_isolation_problem) and the evolve loop import these two from here
from aicodec.sandbox.probe import kernel_isolation_problem as kernel_isolation_problem
from aicodec.sandbox.probe import refuse_unisolated_model_code as refuse_unisolated_model_code
from aicodec.sandbox.process import run_process
from aicodec.sandbox.report import ChildReport
from aicodec.settings import Settings


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
    limit_s = settings.sandbox_wall_s if wall_s is None else wall_s
    file_limit = output_bytes + (1 << 20)
    full_job = _full_job(role, job, settings, mode, file_limit)
    job_dir.mkdir(parents=True)
    mounted = mode == "namespaces"
    if mounted:
        size = sum(map(len, inputs.values())) + len(source.encode()) + file_limit
        _mount_job_folder(job_dir, settings, size)
    try:
        _prepare_job(job_dir, source, full_job, inputs, settings.sandbox_user)
        folder = os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            report = run_process(role, job_dir, settings, mode, limit_s, cancel)
            if mounted and report.isolation:  # a child that reported its layers
                report = replace(report, isolation=(*report.isolation, "job-tmpfs"))
            check_same_folder(job_dir, folder)  # also when the child failed for want of it
            if not report.ok:
                return report, None
            data = read_output(folder, output, output_bytes)
        finally:
            os.close(folder)
        return checked_output(report, data)
    finally:
        if mounted:
            _unmount_quietly(job_dir)


def _full_job(
    role: str, job: dict[str, object], settings: Settings, mode: str, file_limit: int
) -> dict[str, object]:
    """The job file a child reads: its role, user, device and limits (``file_limit``:
    bytes of a file it writes), then ``job``'s own values."""
    cuda = settings.device == "cuda"
    return {
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


def _mount_job_folder(job_dir: Path, settings: Settings, size: int) -> None:
    """Bound ``job_dir`` with a tmpfs: ``size`` bytes (its files) and the scratch space,
    ``sandbox_job_inodes`` inodes; SandboxError when it cannot be mounted."""
    try:
        isolation.mount_job_folder(
            str(job_dir),
            size + settings.sandbox_scratch_bytes,
            settings.sandbox_job_inodes,
            settings.sandbox_user,
        )
    except OSError as exc:
        raise SandboxError(f"cannot bound the job folder with a tmpfs: {exc}") from exc


def _unmount_quietly(job_dir: Path) -> None:
    """Unmount the job folder's tmpfs; one already gone is fine."""
    try:
        isolation.unmount(str(job_dir))
    except OSError:
        pass


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
