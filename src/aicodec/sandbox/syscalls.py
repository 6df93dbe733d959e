"""The seccomp filter of a sandbox child: the system calls candidate code may make.

It is an allow-list, compiled by libseccomp (through ``pyseccomp``, its Python binding)
for this machine's architecture. It allows what numpy, OpenCV, torch and constriction
compute with: memory, files already in reach, threads, time, futexes, signals to the
process's own threads. Everything else fails with EPERM, whatever the Python guard says:
process creation (fork, vfork, clone without CLONE_THREAD, exec), sockets, System V
IPC, keyrings, ptrace and process_vm_*, mknod (no FIFOs), links, mount, namespaces,
bpf, perf, io_uring, userfaultfd, memfd, kill of other processes, changing ids. The
filter is installed after the trusted start-up and cannot be removed; ``clone3`` answers
ENOSYS so the C library falls back to ``clone``, whose flags the filter can see.
"""

from __future__ import annotations

import errno
from functools import lru_cache
from types import ModuleType

CLONE_THREAD = 0x00010000

# Allowed outright; a name this architecture does not know is skipped.
ALLOWED_SYSCALLS = (
    # files and descriptors (what the mount view and the guard leave in reach)
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "open",
    "openat",
    "close",
    "close_range",
    "lseek",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "ftruncate",
    "truncate",
    "fallocate",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "readlink",
    "readlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "umask",
    "pipe",
    "pipe2",
    "ioctl",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "copy_file_range",
    "sendfile",
    # memory
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "msync",
    "mincore",
    "get_mempolicy",
    "set_mempolicy",
    "mbind",
    "membarrier",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    # threads, futexes, scheduling
    "futex",
    "futex_waitv",
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "rseq",
    "arch_prctl",
    "prctl",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "getcpu",
    "gettid",
    "tgkill",
    "tkill",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "restart_syscall",
    # signals to itself
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigpending",
    "rt_sigtimedwait",
    "sigaltstack",
    "pause",
    # time
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "times",
    "getitimer",
    "setitimer",
    "alarm",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    # reading its own identity and limits (lowering a limit is harmless)
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "getresuid",
    "getresgid",
    "getpgrp",
    "getpgid",
    "getsid",
    "getrlimit",
    "prlimit64",
    "getrusage",
    "getpriority",
    "uname",
    "sysinfo",
    "getrandom",
)


@lru_cache(maxsize=1)
def _binding() -> ModuleType | str:
    """The pyseccomp module, or why it cannot be used here (missing libseccomp, ...)."""
    try:
        import pyseccomp
    except (ImportError, OSError, RuntimeError) as exc:
        return f"libseccomp is not usable here ({type(exc).__name__}: {exc})"
    return pyseccomp


def filter_problem() -> str | None:
    """Why the syscall filter cannot be installed on this machine; None when it can."""
    binding = _binding()
    return binding if isinstance(binding, str) else None


def load_binding() -> None:
    """Load libseccomp now (it looks for its library with a subprocess: do it before the
    process is walled in)."""
    _binding()


def install_syscall_filter() -> None:
    """Install the allow-list on this process and its future threads (irreversible)."""
    binding = _binding()
    if isinstance(binding, str):
        raise OSError(errno.ENOSYS, binding)
    arch = binding.system_arch()
    refused = binding.ERRNO(errno.EPERM)
    rules = binding.SyscallFilter(refused)
    for name in ALLOWED_SYSCALLS:
        if binding.resolve_syscall(arch, name) >= 0:
            rules.add_rule(binding.ALLOW, name)
    # threads only: a clone that makes a new process is refused
    thread = binding.Arg(0, binding.MASKED_EQ, CLONE_THREAD, CLONE_THREAD)
    rules.add_rule(binding.ALLOW, "clone", thread)
    if binding.resolve_syscall(arch, "clone3") >= 0:
        rules.add_rule(binding.ERRNO(errno.ENOSYS), "clone3")
    rules.load()
