"""The runtime guard inside a sandbox child: a Python audit hook that refuses escapes.

Once installed (after the trusted runner has read its inputs, before any candidate code
runs) the hook refuses sockets, process creation, signals, ctypes, changing limits,
frame and object-graph introspection, new code objects, ``exec``/``compile`` of strings,
imports of system modules, and every file open outside the child's own directory
(reads of the read-only Python installation are allowed, since libraries load lazily).
A refused event raises ``GuardViolation`` and is remembered: a run with any refusal fails,
even when the code (or a library it called) caught the exception.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

# Audit events refused outright (exact names or prefixes ending in '.').
BLOCKED_EVENTS = (
    "socket.",
    "subprocess.",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.kill",
    "os.killpg",
    "os.putenv",
    "os.unsetenv",
    "os.chdir",
    "os.chmod",
    "os.chown",
    "os.chflags",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.utime",
    "os.listdir",
    "os.scandir",
    "os.startfile",
    "os.setxattr",
    "os.removexattr",
    "os.listxattr",
    "os.getxattr",
    "os.add_dll_directory",
    "ctypes.",
    "pty.",
    "resource.setrlimit",
    "resource.prlimit",
    "signal.",
    "fcntl.",
    "sys.settrace",
    "sys.setprofile",
    "sys._getframe",
    "sys._current_frames",
    "sys._current_exceptions",
    "sys.addaudithook",
    "sys.setrecursionlimit",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "pickle.find_class",
    "code.__new__",
    "function.__new__",
    "mmap.__new__",
    "shutil.",
    "glob.",
    "webbrowser.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "imaplib.",
    "poplib.",
    "nntplib.",
    "telnetlib.",
    "sqlite3.",
    "builtins.input",
    "cpython.PyInterpreterState_New",
    "cpython.run_",
    "_posixsubprocess.",
    "syslog.",
    "os.setuid",
    "os.setgid",
    "winreg.",
    "msvcrt.",
)

# Modules whose import is refused once the guard is on (first dotted part).
BLOCKED_IMPORTS = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "socket",
        "ctypes",
        "importlib",
        "shutil",
        "pathlib",
        "tempfile",
        "multiprocessing",
        "threading",
        "_thread",
        "signal",
        "pty",
        "pickle",
        "marshal",
        "code",
        "codeop",
        "gc",
        "resource",
        "mmap",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "webbrowser",
        "sqlite3",
        "asyncio",
        "selectors",
        "select",
        "builtins",
        "io",
        "_io",
        "posix",
        "fcntl",
        "inspect",
        "runpy",
        "pkgutil",
        "zipimport",
        "site",
        "sysconfig",
        "platform",
        "ssl",
        "concurrent",
        "faulthandler",
        "tracemalloc",
        "_posixsubprocess",
        "_ctypes",
        "cffi",
        "aicodec",
    }
)

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class GuardViolation(PermissionError):
    """The candidate tried something the sandbox refuses."""


def _is_blocked_event(event: str) -> bool:
    """Whether an audit event is refused outright."""
    return any(
        event.startswith(prefix) if prefix.endswith(".") else event == prefix
        for prefix in BLOCKED_EVENTS
    )


def _is_write(mode: object, flags: object) -> bool:
    """Whether an open call can create, change or extend a file."""
    if isinstance(mode, str) and any(char in mode for char in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & WRITE_FLAGS)


def _inside(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` lies in one of ``roots`` (all absolute, symlinks resolved)."""
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


class Guard:
    """The audit-hook policy: what a candidate may open and which events it may raise."""

    def __init__(self, workdir: str, read_roots: Iterable[str]) -> None:
        self.workdir = os.path.realpath(workdir)
        self.read_roots = tuple(sorted({os.path.realpath(root) for root in read_roots}))
        self.allowed_code: set[int] = set()
        self.refusals: list[str] = []

    def allow_code_once(self, code: object) -> None:
        """Let the runner exec this one code object (the candidate module's body) once."""
        self.allowed_code.add(id(code))

    def refuse(self, message: str) -> None:
        """Remember a refusal and raise it."""
        self.refusals.append(message)
        raise GuardViolation(message)

    def check(self, event: str, args: tuple[object, ...]) -> None:
        """Raise GuardViolation when ``event`` is not allowed, and remember the refusal."""
        try:
            self._check(event, args)
        except GuardViolation as refusal:
            self.refuse(str(refusal))

    def _check(self, event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            self._check_open(*args[:3])
        elif event == "exec":
            code = args[0] if args else None
            if id(code) in self.allowed_code:
                self.allowed_code.discard(id(code))
                return
            filename = os.path.realpath(str(getattr(code, "co_filename", "")))
            if not _inside(filename, self.read_roots):  # lazy imports of installed modules
                raise GuardViolation("exec of code is not allowed in a codec")
        elif event == "compile":
            raise GuardViolation("compiling code is not allowed in a codec")
        elif event == "import":
            name = str(args[0]) if args else ""
            if name.split(".")[0] in BLOCKED_IMPORTS:
                raise GuardViolation(f"importing {name} is not allowed in a codec")
        elif _is_blocked_event(event):
            raise GuardViolation(f"{event} is not allowed in a codec")

    def _check_open(self, path: object, mode: object = "r", flags: object = 0) -> None:
        """Allow opens inside the work directory, and reads of the Python installation."""
        if isinstance(path, int):
            if path in (1, 2) and _is_write(mode, flags):
                return
            raise GuardViolation(f"opening file descriptor {path} is not allowed")
        if path is None:
            return  # os.open of an already-open descriptor by the runtime itself
        if not isinstance(path, str | bytes | os.PathLike):
            raise GuardViolation("opening a non-path object is not allowed")
        try:
            text = os.fsdecode(os.fspath(path))
        except TypeError:  # __fspath__ returned neither str nor bytes
            raise GuardViolation("opening a non-path object is not allowed") from None
        real = os.path.realpath(text)
        if _inside(real, (self.workdir,)):
            return
        if not _is_write(mode, flags) and _inside(real, self.read_roots):
            return
        raise GuardViolation(f"opening {text} is not allowed (only the codec's own directory)")

    def install(self) -> None:
        """Register the hook; from now on it checks every event (it cannot be removed)."""
        sys.addaudithook(self.check)


def python_read_roots() -> list[str]:
    """Directories of the Python installation and its libraries (read-only for candidates)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(path for path in sys.path if path and os.path.isdir(path))
    return sorted(roots)
