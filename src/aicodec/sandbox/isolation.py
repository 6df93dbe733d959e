"""Kernel isolation of a sandbox child: namespaces, a minimal root, no privileges, limits.

The walls here are the kernel's, so they hold whatever the candidate's Python does. The
child (``aicodec.sandbox.child``) uses them in this order:

1. ``die_with_parent``: a parent-death signal, so no sandbox process outlives the lab.
2. ``enter_namespaces``: new mount, PID, network, IPC and UTS namespaces (as root). A
   fork then makes the first process of the new PID namespace; when it ends, the kernel
   kills every process left in that namespace, session leaders included.
3. ``enter_private_root``: a fresh root on a tmpfs with read-only binds of the system and
   the Python installation, the job folder as ``/job``, a private ``/proc`` and ``/tmp``;
   ``pivot_root`` into it and the host's tree is detached.
4. ``drop_privileges`` to the sandbox user, then ``enter_user_namespace``: a user
   namespace of the child's own (its keyrings and credentials shared with no one), with
   every capability dropped.
5. ``apply_limits``: resource limits lowered, soft and hard.

``aicodec.sandbox.syscalls`` then adds the seccomp filter, just before candidate code.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal
import sys
from typing import NoReturn

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522
PIVOT_ROOT_SYSCALL = {"x86_64": 155, "aarch64": 41}
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/sys")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
# the namespaces a child enters as root, and the layer names a run records for them
NAMESPACES = (
    (CLONE_NEWNS, "mount-namespace"),
    (CLONE_NEWPID, "pid-namespace"),
    (CLONE_NEWNET, "net-namespace"),
    (CLONE_NEWIPC, "ipc-namespace"),
    (CLONE_NEWUTS, "uts-namespace"),
)
ROOT_TMPFS = "size=16m,nr_inodes=4096,mode=755"
TMP_TMPFS = "size=64m,nr_inodes=1024,mode=1777"


class IsolationError(OSError):
    """A kernel isolation step failed (the child cannot run isolated)."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    """Raise IsolationError naming ``what`` when a libc call returned non-zero."""
    if result != 0:
        errno = ctypes.get_errno()
        raise IsolationError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2); IsolationError with the target on failure."""
    result = _libc().mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(result, f"mount {source} on {target}")


def tmpfs_options(size_bytes: int, inodes: int, owner: int) -> str:
    """Options of a job folder's tmpfs: bounded in bytes and in inodes, owned by ``owner``."""
    return f"size={max(size_bytes, 1 << 20)},nr_inodes={inodes},mode=700,uid={owner},gid={owner}"


def mount_job_folder(path: str, size_bytes: int, inodes: int, owner: int) -> None:
    """Mount a tmpfs of ``size_bytes`` and ``inodes`` files on the (empty) job folder
    ``path``: everything written there, through any library, counts against both."""
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_options(size_bytes, inodes, owner))


def unmount(path: str) -> None:
    """Detach the file system mounted on ``path`` (its memory is freed once unused)."""
    _check(_libc().umount2(path.encode(), MNT_DETACH), f"umount {path}")


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


def die_with_parent(parent: int) -> None:
    """Be killed when the process that started this one dies; exit at once when it has
    died already (between the fork and this call)."""
    _check(_libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(125)


def enter_namespaces() -> tuple[str, ...]:
    """Unshare mount, PID, network, IPC and UTS namespaces (needs root); their layer
    names. The PID namespace takes effect for this process's next child."""
    flags = 0
    for flag, _ in NAMESPACES:
        flags |= flag
    _check(_libc().unshare(flags), "unshare")
    return tuple(name for _, name in NAMESPACES)


def set_hostname(name: str) -> None:
    """Name this UTS namespace's host (the real host name stays unseen)."""
    _check(_libc().sethostname(name.encode(), len(name)), "sethostname")


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


def _pivot_root(root: str) -> None:
    """Make ``root`` (a mount point) this mount namespace's root and detach the old one."""
    number = PIVOT_ROOT_SYSCALL.get(platform.machine())
    if number is None:
        raise IsolationError(0, f"pivot_root: unknown on {platform.machine()}")
    os.chdir(root)
    _check(_libc().syscall(number, b".", b"."), "pivot_root")
    _check(_libc().umount2(b".", MNT_DETACH), "umount of the host's root")
    os.chdir("/")


def process_view(
    job_dir: str, extra_read_only: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """What a child in process mode may read (the system and Python folders, its own
    /proc entry and CPU facts) and read and write (its job folder, the harmless devices):
    the host's view otherwise, so Landlock (``restrict_paths``) narrows it to this."""
    own = f"/proc/{os.getpid()}"
    readable = [path for path in SYSTEM_DIRS if os.path.isdir(path)] + python_dirs()
    readable += [own, "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", *extra_read_only]
    return _top_level(readable), [job_dir, *DEVICES]


def enter_private_root(
    job_dir: str, root: str, extra_read_only: tuple[str, ...] = (), devices: tuple[str, ...] = ()
) -> None:
    """Build the minimal root at ``root`` (an empty directory), pivot into it, cd /job.

    Needs a mount namespace of this process's own (``enter_namespaces``) and, for the
    private ``/proc``, to be the first process of a new PID namespace or its child.
    """
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, ROOT_TMPFS)
    # the private /tmp first: an interpreter or virtualenv under /tmp is bound inside it
    os.makedirs(root + "/tmp", exist_ok=True)
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, TMP_TMPFS)
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
    _pivot_root(root)
    os.chdir("/job")


def drop_privileges(uid: int) -> bool:
    """Become ``uid`` (group ``uid``, no supplementary groups) when running as root."""
    if os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    return True


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> None:
    """Clear every capability of this process (effective, permitted, inheritable)."""
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc().capset(ctypes.byref(header), data), "capset")


def enter_user_namespace() -> None:
    """Move into a new user namespace of this process alone, its own uid and gid mapped
    to themselves, and drop the capabilities that the new namespace grants."""
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    # a uid change cleared "dumpable", which makes /proc/self root's; the maps need it back
    _check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(DUMPABLE)")
    _check(libc.unshare(CLONE_NEWUSER), "unshare(user)")
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:
            handle.write(text)
    drop_capabilities()
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")


# Landlock (Linux 5.13+): the same system call numbers on every architecture
LANDLOCK_CREATE_RULESET, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION, LANDLOCK_RULE_PATH_BENEATH = 1, 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_DIR, FS_MAKE_REG = 1 << 4, 1 << 5, 1 << 7, 1 << 8
FS_ALL_ABI1 = (1 << 13) - 1  # the 13 file-system rights of Landlock's first version
FS_TRUNCATE = 1 << 14  # version 3
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
FS_READ_WRITE = FS_READ | FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_version() -> int:
    """The Landlock ABI version this kernel offers; 0 where it has none."""
    version = _libc().syscall(LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(version), 0)


def restrict_paths(readable: list[str], writable: list[str]) -> bool:
    """Limit this process (and its threads) to reading below ``readable`` and reading and
    writing below ``writable``, with Landlock; no device, FIFO, socket or link can be made
    anywhere. False where the kernel has no Landlock (nothing is restricted then)."""
    libc = _libc()
    version = landlock_version()
    if version < 1:
        return False
    handled = FS_ALL_ABI1 | (FS_TRUNCATE if version >= 3 else 0)
    attr = _RulesetAttr(handled)
    ruleset = libc.syscall(LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        return False
    try:
        write_rights = FS_READ_WRITE | (FS_TRUNCATE if version >= 3 else 0)
        for paths, rights in ((readable, FS_READ), (writable, write_rights)):
            for path in paths:
                _allow_beneath(libc, ruleset, path, rights)
        forbid_new_privileges()  # Landlock's condition for an unprivileged process
        _check(libc.syscall(LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return True


def _allow_beneath(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    """Add a Landlock rule: ``rights`` below ``path`` (a file gets only the file rights)."""
    try:
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # not on this machine: nothing to allow
    try:
        if not os.path.isdir(path):
            rights &= FS_EXECUTE | FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE
        rule = _PathBeneathAttr(rights, descriptor)
        rule_type = LANDLOCK_RULE_PATH_BENEATH
        result = libc.syscall(LANDLOCK_ADD_RULE, ruleset, rule_type, ctypes.byref(rule), 0)
        _check(result, f"landlock_add_rule {path}")
    finally:
        os.close(descriptor)


def forbid_new_privileges() -> None:
    """No execve may ever grant privileges again (setuid files, file capabilities)."""
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


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


def wait_for(pid: int) -> int:
    """Wait until child ``pid`` ends; its wait status."""
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def exit_as(status: int) -> NoReturn:
    """End this process as a child with wait ``status`` ended: its exit code, or 128 plus
    the signal that killed it (a namespace's first process cannot die of most signals)."""
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
