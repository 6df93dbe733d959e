"""How a sandbox child ended: the ChildReport the lab builds from what it measured itself
(exit status, wall-clock and keeper-timed seconds, how it was stopped) and the child's own
JSON report, every text of which has its control characters escaped."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field, replace
from typing import Any

from aicodec.safe_text import printable
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


@dataclass(frozen=True)
class Measured:
    """What the parent measured of a child: exit code, seconds, how it was stopped."""

    exit_code: int | None
    wall_seconds: float
    call_seconds: float | None  # from the ready signal to the exit, timed by the keeper
    ending: str | None  # timeout, flood, or None when the child ended by itself


def exit_meaning(code: int | None) -> str:
    """What a child's exit status says when it left no report."""
    if code is not None and code < 0:
        return SIGNAL_MEANINGS.get(-code, f"killed by signal {-code}")
    if code is not None and code > SIGNALLED:
        return SIGNAL_MEANINGS.get(code - SIGNALLED, f"killed by signal {code - SIGNALLED}")
    return f"exited with status {code} without a report"


def build_report(
    role: str,
    measured: Measured,
    raw: bytes,
    output: tuple[str, str],
    settings: Settings,
    limit_s: float,
) -> ChildReport:
    """Turn a finished child's exit status, the parent's timings, the child's JSON report
    (``raw``) and what it printed (``output``: stdout, stderr) into a ChildReport; every
    text from the child has its control characters escaped."""
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
        message=exit_meaning(measured.exit_code),
        exit_code=measured.exit_code,
        wall_seconds=measured.wall_seconds,
        call_seconds=None,
        isolation=tuple(printable(str(layer)) for layer in data.get("isolation", ()) or ()),
        stdout=printable(output[0], keep_newlines=True),
        stderr=printable(output[1], keep_newlines=True),
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
        status, data["message"] = "error", f"reported ok but {exit_meaning(measured.exit_code)}"
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
