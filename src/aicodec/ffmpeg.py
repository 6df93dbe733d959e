"""The bundled ffmpeg binary (from the imageio-ffmpeg wheel): locate, identify, run."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from functools import lru_cache

from aicodec.errors import FFmpegError

CANCEL_POLL_S = 0.2  # how often a running ffmpeg checks whether it was cancelled (s)


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped inside the imageio-ffmpeg wheel."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # the wheel raises RuntimeError when its binary is gone
        raise FFmpegError(f"the bundled ffmpeg binary is unavailable: {exc}") from exc


@lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """The version string of the bundled ffmpeg build (it pins every encoder library)."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"ffmpeg version (\S+)", result.stdout)
    if result.returncode != 0 or not match:
        raise FFmpegError("the bundled ffmpeg binary does not run")
    return match.group(1)


def last_error_line(stderr: bytes | str) -> str:
    """The most informative line of ffmpeg's stderr (the last non-empty one)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def run_ffmpeg(
    args: list[str],
    *,
    input_bytes: bytes | None = None,
    timeout_s: float = 3600.0,
    cancel: threading.Event | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run the bundled ffmpeg with ``args``; raise FFmpegError on failure or timeout, and at
    once (killing ffmpeg) when ``cancel`` is set from another thread."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", *args]
    stdin = subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL
    outputs: list[bytes] = []
    with subprocess.Popen(
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        # one communicate() feeds the input and drains the outputs; this thread watches
        talk = threading.Thread(
            target=lambda: outputs.extend(process.communicate(input_bytes)), daemon=True
        )
        talk.start()
        deadline = time.monotonic() + timeout_s
        try:
            while talk.is_alive():
                talk.join(CANCEL_POLL_S)
                stopped = cancel is not None and cancel.is_set()
                if talk.is_alive() and (stopped or time.monotonic() >= deadline):
                    process.kill()
                    talk.join()
                    if stopped:
                        raise FFmpegError("ffmpeg was stopped: the run was interrupted")
                    raise FFmpegError(f"ffmpeg took longer than {timeout_s:.0f} s")
        except BaseException:  # Ctrl-C in this thread: ffmpeg must not outlive it
            process.kill()
            raise
    stdout, stderr = outputs if len(outputs) == 2 else (b"", b"")
    if process.returncode != 0:
        raise FFmpegError(f"ffmpeg failed: {last_error_line(stderr)}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
