"""Entry point of a sandbox child: ``python -m aicodec.sandbox.child JOB_DIR RESULT_FD
KEEPER_FD LAB_PID [ROOT]``.

Trusted steps first, then the candidate. Each process below is killed when the one that
started it dies, so nothing outlives the lab:

- the *keeper* (with a ``ROOT``, namespace isolation as root, it first enters new
  namespaces) forks, then times its child from the ready signal to its exit and writes
  that time to ``KEEPER_FD``, a pipe no candidate code can reach; it exits as its child
  did. It runs no candidate code, so the lab trusts its clock.
- the *init* (namespace mode only: the first process of the new PID namespace) builds the
  private root and forks, then waits; when it ends the kernel kills whatever is left in
  the namespace, session leaders included.
- the *worker* drops to the sandbox user (in a user namespace of its own), lowers its
  limits, reads its input, installs the seccomp filter and the guard, sends the ready
  signal (a byte and the monotonic clock) and runs the candidate's code: its module
  body, then ``encode`` or ``decode``.

The worker's closing JSON report on ``RESULT_FD`` is a hint: the lab checks the outputs,
files in the job directory, on its own and holds the report to them.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import struct
import sys
import time
import traceback
import types
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import numpy as np

from aicodec.candidates.contract import ALLOWED_IMPORTS
from aicodec.sandbox import isolation, syscalls
from aicodec.sandbox.guard import BLOCKED_IMPORTS, Guard, GuardViolation, python_read_roots

CODEC_FILE = "codec.py"
JOB_FILE = "job.json"
Job = dict[str, Any]  # the job file as read: JSON values written by the lab
FRAMES_FILE = "frames.i420"
BITSTREAM_FILE = "bitstream.bin"
DECODED_FILE = "decoded.i420"
REMOVED_BUILTINS = (
    "open",
    "exec",
    "eval",
    "compile",
    "input",
    "breakpoint",
    "help",
    "exit",
    "quit",
    "globals",
    "locals",
    "vars",
    "copyright",
    "credits",
    "license",
    "__loader__",
    "__spec__",
)
OPTIONAL_MODULES = ("cv2", "torch")
# Imported before the guard, so codecs find them loaded (numpy loads these lazily).
PRELOADED_MODULES = ("numpy.random", "numpy.fft", "numpy.linalg", "numpy.polynomial", "numpy.ma")
READY = b"R"  # then the monotonic clock, written just before the candidate's first line runs
READY_BYTES = len(READY) + 8
SANDBOX_HOSTNAME = "sandbox"


class CandidateFailure(Exception):
    """The candidate did something wrong; carries the stage for the report."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def _restricted_builtins(guard: Guard) -> dict[str, object]:
    """The candidate's builtins: no file, code or namespace access; a guarded __import__."""
    table = {name: value for name, value in vars(builtins).items()}
    for name in REMOVED_BUILTINS:
        table.pop(name, None)
    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        if level != 0 or name.split(".")[0] in BLOCKED_IMPORTS:
            guard.refuse(f"importing {name} is not allowed in a codec")
        return real_import(name, globals, locals, fromlist, level)

    table["__import__"] = guarded_import
    return table


def _preload(source: str) -> None:
    """Import allowed modules before the guard is on: all light ones, heavy ones when named."""
    for module in (*PRELOADED_MODULES, *sorted(ALLOWED_IMPORTS - set(OPTIONAL_MODULES))):
        try:
            __import__(module)
        except ImportError:
            continue
    for module in OPTIONAL_MODULES:
        if uses_module(source, module):
            __import__(module)


def uses_module(source: str, module: str) -> bool:
    """Whether the codec's source imports ``module`` (a top-level import statement)."""
    return re.search(rf"^\s*(import|from)\s+{module}\b", source, re.MULTILINE) is not None


def _prepare_cuda() -> None:
    """With ``--device cuda``, before the guard: create torch's CUDA context and load the
    libraries it opens lazily (cuBLAS, cuFFT, cuDNN), so a codec's tensors can use the GPU
    while the codec's own ``ctypes``/``dlopen`` stays refused."""
    import torch

    if not torch.cuda.is_available():
        raise CandidateFailure("setup", "--device cuda, but torch sees no CUDA device here")
    torch.cuda.init()
    square = torch.ones((64, 64), device="cuda")
    (square @ square).sum().item()  # cuBLAS
    torch.fft.rfft2(square).abs().sum().item()  # cuFFT
    kernel = torch.ones((1, 1, 3, 3), device="cuda")
    torch.nn.functional.conv2d(square[None, None], kernel).sum().item()  # cuDNN
    torch.cuda.synchronize()


def _frames_namespace(job: Job) -> types.SimpleNamespace:
    """The encoder's input as a plain namespace of read-only planes (no lab objects)."""
    width, height, count = int(job["width"]), int(job["height"]), int(job["count"])
    luma, chroma = width * height, (width // 2) * (height // 2)
    flat = np.fromfile(FRAMES_FILE, dtype=np.uint8).reshape(count, luma + 2 * chroma)
    y = flat[:, :luma].reshape(count, height, width).copy()
    u = flat[:, luma : luma + chroma].reshape(count, height // 2, width // 2).copy()
    v = flat[:, luma + chroma :].reshape(count, height // 2, width // 2).copy()
    for plane in (y, u, v):
        plane.flags.writeable = False
    fps = Fraction(int(job["fps_num"]), int(job["fps_den"]))
    return types.SimpleNamespace(y=y, u=u, v=v, fps=fps, count=count, width=width, height=height)


def _planes(result: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decoder's (y, u, v), checked to be uint8 [T, H, W] with 4:2:0 chroma."""
    if isinstance(result, tuple | list) and len(result) >= 3:
        planes = tuple(result[:3])
    elif all(hasattr(result, name) for name in ("y", "u", "v")):
        planes = (result.y, result.u, result.v)  # type: ignore[attr-defined]
    else:
        raise CandidateFailure("decode", f"decode returned {type(result).__name__}, not (y, u, v)")
    for name, plane in zip("yuv", planes, strict=True):
        if not isinstance(plane, np.ndarray) or plane.dtype != np.uint8 or plane.ndim != 3:
            kind = getattr(plane, "dtype", type(plane).__name__)
            shape = getattr(plane, "shape", "?")
            raise CandidateFailure("decode", f"plane {name} is {kind} {shape}, not uint8 [T,H,W]")
    y, u, v = planes
    expected = (y.shape[0], (y.shape[1] + 1) // 2, (y.shape[2] + 1) // 2)
    if u.shape != expected or v.shape != expected:
        raise CandidateFailure(
            "decode", f"chroma planes {u.shape} and {v.shape} do not match luma {y.shape}"
        )
    return y, u, v


def _frame_rate(result: object) -> list[int] | None:
    """The frame rate a decoder returned (4th tuple item or ``fps`` attribute), if any: a
    number, a Fraction or a (numerator, denominator) pair."""
    value: Any = result[3] if isinstance(result, tuple | list) and len(result) > 3 else None
    value = getattr(result, "fps", value)
    try:
        if isinstance(value, tuple | list) and len(value) == 2:
            value = Fraction(value[0], value[1])  # integers only: (30000, 1001)
        rate = Fraction(value).limit_denominator(1_000_000) if value is not None else None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return [rate.numerator, rate.denominator] if rate is not None and rate > 0 else None


def _where(exc: BaseException) -> str:
    """The last frames an exception passed, as file:line (no source: parsing it compiles)."""
    frames = [(frame.f_code, line) for frame, line in traceback.walk_tb(exc.__traceback__)]
    return "; ".join(f"{code.co_filename}:{line} in {code.co_name}" for code, line in frames[-3:])


def _write_output(name: str, chunks: Iterable[bytes]) -> None:
    """Write an output file into the job folder; a symbolic link planted under that name
    by the codec is not followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    descriptor = os.open(name, flags, 0o600)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def _run(
    job: Job,
    guard: Guard,
    report: dict[str, object],
    ready_fd: int,
    walls: list[str],
) -> None:
    """Load the candidate under the syscall filter and the guard, run its encode or decode."""
    role = str(job["role"])
    with open(CODEC_FILE, encoding="utf-8") as handle:
        source = handle.read()
    _preload(source)
    if job.get("device") == "cuda" and uses_module(source, "torch"):
        _prepare_cuda()
    if role == "encode":
        argument: object = _frames_namespace(job)
    else:
        with open(BITSTREAM_FILE, "rb") as handle:
            argument = handle.read()
    code = compile(source, CODEC_FILE, "exec")
    namespace = {"__name__": "codec", "__builtins__": _restricted_builtins(guard)}
    if job.get("syscall_filter"):
        syscalls.install_syscall_filter()
        walls.append("seccomp")
    report["isolation"] = list(walls)
    guard.allow_code_once(code)
    guard.install()
    # the clock starts now, read before any of the codec's code runs: module body and call
    # both count, and the keeper's own wake-up, however late, does not shorten the time
    os.write(ready_fd, READY + struct.pack("<d", time.monotonic()))
    os.close(ready_fd)
    function = _load(code, namespace, role)
    output = _call(function, role, argument, job, report)
    if role == "encode":
        _write_bitstream(output, job, report)
    else:
        _write_decoded(output, report)


def _load(code: types.CodeType, namespace: dict[str, Any], role: str) -> Any:
    """Run the candidate's module body (under the guard) in ``namespace``; its ``role``
    function (encode or decode)."""
    try:
        exec(code, namespace)  # the candidate's module body, under the guard
    except GuardViolation:
        raise
    except BaseException as exc:  # a Rust panic in a library is a BaseException (pyo3)
        raise CandidateFailure("load", f"{type(exc).__name__}: {exc}") from exc
    function = namespace.get(role)
    if not callable(function):
        raise CandidateFailure("load", f"the codec defines no {role} function")
    return function


def _call(
    function: Any, role: str, argument: object, job: Job, report: dict[str, object]
) -> object:
    """Call the candidate's encode (on the frames ``argument``, at the job's quality) or
    decode (on the bitstream ``argument``); its result. Reports the call's seconds."""
    started = time.perf_counter()
    try:
        if role == "encode":
            output = function(argument, int(job["quality"]))
        else:
            output = function(argument)
    except GuardViolation:
        raise
    except BaseException as exc:
        raise CandidateFailure(role, f"{type(exc).__name__}: {exc}") from exc
    report["call_seconds"] = time.perf_counter() - started
    return output


def _write_bitstream(output: object, job: Job, report: dict[str, object]) -> None:
    """Check what encode returned (bytes, at most ``max_bitstream_bytes``) and write it as
    the bitstream file; reports its size in bytes."""
    if not isinstance(output, bytes | bytearray | memoryview):
        raise CandidateFailure("encode", f"encode returned {type(output).__name__}, not bytes")
    data = bytes(output)
    if len(data) > int(job["max_bitstream_bytes"]):
        raise CandidateFailure(
            "encode", f"bitstream of {len(data)} bytes exceeds {job['max_bitstream_bytes']}"
        )
    _write_output(BITSTREAM_FILE, [data])
    report["bytes"] = len(data)


def _write_decoded(output: object, report: dict[str, object]) -> None:
    """Check what decode returned (planes, frame rate) and write its frames as I420;
    reports the frame rate, the frame count and the frame size."""
    y, u, v = _planes(output)
    report["fps"] = _frame_rate(output)
    chunks = (
        np.ascontiguousarray(plane[index]).tobytes()
        for index in range(y.shape[0])
        for plane in (y, u, v)
    )
    _write_output(DECODED_FILE, chunks)
    report["frames"], report["height"], report["width"] = (int(n) for n in y.shape)


def _fork_and_relay() -> None:
    """Fork; the parent waits for the child and exits as it did, the child returns."""
    pid = os.fork()
    if pid:
        isolation.exit_as(isolation.wait_for(pid))


def _fork_keeper(keeper_fd: int, *, in_new_pid_namespace: bool) -> int:
    """Fork; the parent becomes the keeper (never returns), the child gets the write end
    of the ready pipe and returns it. The keeper reads the ready signal (``READY`` and the
    system's monotonic clock when the trusted code sent it), waits for the child, writes
    ``{"call_seconds": ...}`` (that clock to the child's exit) to ``keeper_fd`` and exits
    as the child did."""
    ready_read, ready_write = os.pipe()
    keeper = os.getpid()
    pid = os.fork()
    if pid == 0:
        # the keeper is outside a new PID namespace: its pid reads as 0 from inside
        isolation.die_with_parent(0 if in_new_pid_namespace else keeper)
        os.close(ready_read)
        os.close(keeper_fd)  # the child, and the candidate after it, cannot reach it
        return ready_write
    os.close(ready_write)
    ready = b""
    while len(ready) < READY_BYTES and (chunk := os.read(ready_read, READY_BYTES)):
        ready += chunk  # EOF first: the child ended before the codec's code ran
    status = isolation.wait_for(pid)
    seconds = None
    if len(ready) == READY_BYTES and ready.startswith(READY):
        (started,) = struct.unpack("<d", ready[len(READY) :])
        seconds = max(0.0, time.monotonic() - started)
    os.write(keeper_fd, json.dumps({"call_seconds": seconds}).encode())
    isolation.exit_as(status)


def _wall_in(job: Job, job_dir: str, root: str, keeper_fd: int) -> tuple[str, list[str], int]:
    """The trusted start: namespaces, keeper, private root, user, limits. Returns in the
    worker process with its job folder, the layers in force so far and the ready pipe."""
    walls = ["parent-death-signal"]
    syscalls.load_binding()
    if root:
        walls += isolation.enter_namespaces()
    ready_fd = _fork_keeper(keeper_fd, in_new_pid_namespace=bool(root))
    parent = os.getppid()  # the keeper (0: outside this PID namespace), or the init below
    if root:  # this is the init of the new PID namespace
        isolation.enter_private_root(
            job_dir, root, tuple(job.get("read_only", ())), tuple(job.get("devices", ()))
        )
        isolation.set_hostname(SANDBOX_HOSTNAME)
        walls.append("pivot-root")
        _fork_and_relay()  # the init waits; the worker goes on
        parent = 1
        isolation.die_with_parent(parent)
        job_dir = "/job"
    else:
        os.chdir(job_dir)
    if isolation.drop_privileges(int(job["user"])):
        walls.append("unprivileged-user")
        if root:
            isolation.enter_user_namespace()
            walls.append("user-namespace")
    isolation.die_with_parent(parent)  # a change of user cleared the parent-death signal
    isolation.forbid_new_privileges()
    if not root:  # no private root: Landlock narrows the host's file system instead
        extra = tuple(job.get("read_only", ()))
        readable, writable = isolation.process_view(os.path.realpath(job_dir), extra)
        if isolation.restrict_paths(readable, writable):
            walls.append("landlock")
    isolation.apply_limits(**job["limits"])
    walls += ["rlimits", "audit-hook", "scrubbed-env"]
    return job_dir, walls, ready_fd


def main(argv: list[str]) -> int:
    """Run one job; the exit code is 0 when the report says ok."""
    job_dir, result_fd, keeper_fd, lab_pid = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    root = argv[5] if len(argv) > 5 else ""
    isolation.die_with_parent(lab_pid)
    report: dict[str, object] = {"status": "error", "stage": "setup"}
    guard: Guard | None = None
    try:
        with open(os.path.join(job_dir, JOB_FILE), encoding="utf-8") as handle:
            job = json.load(handle)
        job_dir, walls, ready_fd = _wall_in(job, job_dir, root, keeper_fd)
        report["isolation"] = walls
        guard = Guard(job_dir, python_read_roots())
        report["stage"] = str(job["role"])
        _run(job, guard, report, ready_fd, walls)
        if guard.refusals:
            raise GuardViolation(guard.refusals[0])
        report["status"] = "ok"
        report.pop("stage", None)
    except CandidateFailure as failure:
        report.update(stage=failure.stage, message=str(failure))
    except GuardViolation as refusal:
        report.update(status="refused", message=str(refusal))
    except MemoryError:
        report.update(message="MemoryError: the memory limit was reached")
    except BaseException as exc:  # report anything, never let the traceback be the answer
        report.update(message=f"{type(exc).__name__}: {exc}")
        report["detail"] = _where(exc)
    if guard is not None and guard.refusals and report["status"] != "refused":
        report.update(status="refused", message=guard.refusals[0])  # a refusal caught and hidden
    code = 0 if report["status"] == "ok" else 1
    try:
        data = json.dumps(report).encode()
        while data:
            data = data[os.write(result_fd, data) :]
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except Exception:
        code = 3
    os._exit(code)  # no interpreter teardown: nothing of the candidate's runs after this


if __name__ == "__main__":
    main(sys.argv)
