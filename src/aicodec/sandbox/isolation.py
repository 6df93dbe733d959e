"""Operating-system isolation of a sandbox child: namespaces, a minimal mount view, no root.

The parent starts the child under ``unshare --net --mount --pid``. Inside, while still
root, the child builds a fresh root file system on a tmpfs: read-only binds of the system
and the Python installation, its own job directory as ``/job``, a private ``/proc`` and
``/tmp``; then it chroots there, drops to an unprivileged user and lowers its resource
limits. The source clip, the store and the other child's directory do not exist in that
view, and the network namespace has no interface but a downed loopback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import shutil
import subprocess
import sys
from functools import lru_cache

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/sys")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
UNSHARE_ARGS = ("--net", "--mount", "--pid", "--kill-child")


@lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """Whether ``unshare`` can create network, mount and pid namespaces here (as root)."""
    command = shutil.which("unshare")
    if command is None or os.geteuid() != 0:
        return False
    try:
        probe = subprocess.run(
            [command, *UNSHARE_ARGS, "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def unshare_prefix() -> list[str]:
    """The command prefix that starts a child in new network, mount and pid namespaces."""
    return [shutil.which("unshare") or "unshare", *UNSHARE_ARGS, "--"]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2); OSError with the target on failure."""
    result = _libc().mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def mount_job_folder(path: str, size_bytes: int, owner: int) -> None:
    """Mount a tmpfs of ``size_bytes`` on the (empty) job folder ``path``, owned by
    ``owner``: everything written there, through any library, counts against that size."""
    options = f"size={max(size_bytes, 1 << 20)},mode=700,uid={owner},gid={owner}"
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, options)


def unmount(path: str) -> None:
    """Detach the file system mounted on ``path`` (its memory is freed once unused)."""
    if _libc().umount2(path.encode(), MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"umount {path}: {os.strerror(errno)}")


def mounts_under(folder: str) -> list[str]:
    """Mount points at or below ``folder`` (deepest first), from /proc/self/mounts."""
    prefix = folder.rstrip("/") + "/"
    found: list[str] = []
    try:
        with open("/proc/self/mounts", encoding="utf-8") as handle:
            for line in handle:
                target = line.split()[1].replace("\\040", " ")
                if target == folder or target.startswith(prefix):
                    found.append(target)
    except OSError:
        return []
    return sorted(found, key=len, reverse=True)


def _top_level(paths: list[str]) -> list[str]:
    """The paths not inside another path of the list (binding those covers the rest)."""
    chosen: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path == top or path.startswith(top.rstrip("/") + "/") for top in chosen):
            chosen.append(path)
    return chosen


def python_dirs() -> list[str]:
    """Directories the interpreter needs: its prefixes and every existing sys.path entry."""
    roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    roots += [path for path in sys.path if path and os.path.isdir(path)]
    return [os.path.realpath(path) for path in roots]


def _bind(source: str, root: str, *, read_only: bool) -> None:
    """Bind ``source`` at the same path under ``root`` (read-only unless asked)."""
    target = root + source
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def gpu_devices() -> list[str]:
    """The NVIDIA device files a CUDA codec needs (empty where there is no GPU)."""
    names = sorted(os.listdir("/dev")) if os.path.isdir("/dev") else []
    return [f"/dev/{name}" for name in names if name.startswith("nvidia")]


def enter_private_root(
    job_dir: str, root: str, extra_read_only: tuple[str, ...] = (), devices: tuple[str, ...] = ()
) -> None:
    """Build the minimal root at ``root`` (an empty directory), chroot into it, cd /job."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    # the private /tmp first: an interpreter or virtualenv under /tmp is bound inside it
    os.makedirs(root + "/tmp", exist_ok=True)
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    readable = [path for path in SYSTEM_DIRS if os.path.isdir(path)]
    readable += python_dirs() + [path for path in extra_read_only if os.path.exists(path)]
    for path in _top_level(readable):
        _bind(path, root, read_only=True)
    for device in (*DEVICES, *devices):
        if os.path.exists(device):
            _bind(device, root, read_only=False)
    os.makedirs(root + "/job", exist_ok=True)
    _mount(job_dir, root + "/job", None, MS_BIND)
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chroot(root)
    os.chdir("/job")


def drop_privileges(uid: int) -> bool:
    """Become ``uid`` (group ``uid``, no supplementary groups) when running as root."""
    if os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    return True


def apply_limits(*, cpu_s: int, memory: int, file_bytes: int, open_files: int, procs: int) -> None:
    """Lower the child's resource limits (soft and hard, so they cannot be raised again).

    A ``memory`` below 0 leaves the address space unlimited (CUDA reserves tens of GB of it).
    """
    if memory < 0:
        memory = resource.RLIM_INFINITY
    for limit, value in (
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, file_bytes),
        (resource.RLIMIT_NOFILE, open_files),
        (resource.RLIMIT_NPROC, procs),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(limit, (value, value))
