"""The work folders of sandbox jobs: made locked, removed with whatever is mounted in them,
and swept when a lab that was killed left them behind."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aicodec.processes import is_running
from aicodec.sandbox import isolation

SWEPT_PREFIX = "aicodec-sandbox-"
_MAKING = "."  # a folder being made is hidden (".aicodec-sandbox-...") until it is locked
_SWEPT_NAME = re.compile(rf"{re.escape(SWEPT_PREFIX)}(\d+)-\w+")
MAKING_GRACE_S = 3600.0  # a hidden folder left this long unlocked lost its maker


PROBE_KIND = "probe_"  # in the name of the isolation probe's work folder, after the pid


@contextmanager
def work_folder(kind: str = "") -> Iterator[Path]:
    """A temporary folder for sandbox jobs, held by this process for its whole life.

    It is made hidden, locked (an exclusive ``flock`` on its directory, held until it is
    removed), then given its name ``aicodec-sandbox-PID-XXXX``: a sweep by any lab on this
    machine removes only folders whose lock it can take, so never one in use, whatever
    pid namespace either lab is in or whoever reuses the pid. The unprivileged child may
    pass through it to its own job directory (mode 711) but not list it; removed
    afterwards. ``kind`` (letters and ``_``) follows the pid in the name: ``probe_`` for
    the start-up probe's."""
    sweep_stale_folders()
    base, lock = _locked_folder(kind)
    try:
        yield base
    finally:
        try:
            remove_folder(base)
        finally:
            os.close(lock)  # the lock goes last: a sweep never meets a half-removed folder


def _locked_folder(kind: str = "") -> tuple[Path, int]:
    """Make a work folder and take its lock before it has its sweepable name; the folder
    and the open descriptor holding the lock."""
    hidden = Path(tempfile.mkdtemp(prefix=f"{_MAKING}{SWEPT_PREFIX}{os.getpid()}-{kind}"))
    lock = os.open(hidden, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else can hold it
        hidden.chmod(0o711)
        base = hidden.with_name(hidden.name.removeprefix(_MAKING))
        os.rename(hidden, base)
    except BaseException:
        os.close(lock)
        shutil.rmtree(hidden, ignore_errors=True)
        raise
    return base, lock


def remove_folder(folder: Path) -> None:
    """Unmount whatever is still mounted below ``folder`` (job tmpfs), then delete it."""
    for mount_point in isolation.mounts_under(str(folder)):
        try:
            isolation.unmount(mount_point)
        except OSError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


def sweep_stale_folders() -> list[Path]:
    """Remove the work folders that no process holds any more (a run killed with SIGKILL
    cannot clean up); the folders removed.

    A folder is removed only when it belongs to this user, its lock can be taken at once
    (its maker holds it while the folder lives, from any pid namespace), and the process
    its name gives does not run here: the pid is a hint that can only keep a folder (one
    made by a lab without locks), never condemn it. Hidden folders still being made are
    left for an hour."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"*{SWEPT_PREFIX}*-*"):
        hidden = folder.name.startswith(_MAKING)
        named = _SWEPT_NAME.fullmatch(folder.name.removeprefix(_MAKING) if hidden else folder.name)
        if named is None or is_running(int(named.group(1))):
            continue
        if _take_stale(folder, MAKING_GRACE_S if hidden else 0.0):
            removed.append(folder)
    return removed


def _take_stale(folder: Path, min_age_s: float) -> bool:
    """Remove ``folder`` if it is this user's, at least ``min_age_s`` old, and its lock is
    free (taken while it is removed); whether it was removed."""
    try:
        seen = folder.lstat()
        if (
            not stat.S_ISDIR(seen.st_mode)
            or seen.st_uid != os.geteuid()
            or time.time() - seen.st_mtime < min_age_s
        ):
            return False
        lock = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False  # gone already, or not ours to open
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live process holds it
        held = os.fstat(lock)
        if (held.st_dev, held.st_ino) != (seen.st_dev, seen.st_ino):
            return False  # removed and made again under this name meanwhile
        try:
            if folder.lstat().st_ino != held.st_ino:
                return False
        except OSError:
            return False  # another sweep removed it first
        remove_folder(folder)
        return True
    finally:
        os.close(lock)


def folder_lost(base: Path, exc: OSError) -> str:
    """Why a job failed when the lab could not use its work folder ``base``: one line."""
    what = f"{type(exc).__name__}: {exc.strerror or exc}"
    if exc.filename:
        what += f": {exc.filename}"
    if not base.is_dir():
        return f"its work folder {base} vanished while it ran (removed by another process?): {what}"
    return f"the lab could not use its work folder {base}: {what}"
