"""Processes on this machine, read from Linux /proc: alive or not, their trees, stopping them."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and ")"


def is_running(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    fields = stat_fields(pid) if pid > 0 else None
    return fields is not None and fields[0] not in ("Z", "X")


def start_time(pid: int) -> datetime | None:
    """When process ``pid`` started (UTC, to the clock tick); None where unreadable."""
    fields = stat_fields(pid)
    if fields is None:
        return None
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(line for line in handle if line.startswith("btime"))
    except (OSError, StopIteration):
        return None
    seconds = int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(seconds, UTC)


def descendants(pid: int) -> list[int]:
    """The pids of every process below ``pid`` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        fields = stat_fields(int(entry)) if entry.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def stop_process_tree(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` and every descendant of ``pid`` (also those
    that left the group or ignore signals), found before any is killed."""
    victims = [pid, *descendants(pid)]
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
