"""A child's outputs as the parent reads them: from the job folder it ran in (never one
put in its place), regular files only (no links or FIFOs), bounded, and held to the
child's own report, which may claim no more than the parent measured."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

from aicodec.sandbox.report import ChildReport

CLAIM_SLACK_S = 0.05  # a child may claim this much more call time than the parent measured


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


def check_same_folder(job_dir: Path, folder: int) -> None:
    """Raise FileNotFoundError when ``job_dir`` is no longer the folder the job ran in
    (open as descriptor ``folder``): removed, or replaced, by another process."""
    try:
        now = os.stat(job_dir, follow_symlinks=False)
    except FileNotFoundError:
        now = None
    held = os.fstat(folder)
    if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        raise FileNotFoundError(2, "the job folder was removed while the child ran", str(job_dir))


def checked_output(report: ChildReport, data: bytes | str) -> tuple[ChildReport, bytes | None]:
    """The report and the output ``read_output`` gave, when the output could be read and
    agrees with the report; else the report as a failed run that says why, and no output."""
    if isinstance(data, str):
        return replace(report, status="error", stage="output", message=data), None
    problem = disagreement(report, len(data))
    if problem is not None:
        return replace(report, status="error", stage="report", message=problem), None
    return report, data


def disagreement(report: ChildReport, size: int) -> str | None:
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
