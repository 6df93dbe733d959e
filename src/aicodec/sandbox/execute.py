"""Running a candidate on a clip: per quality, one encode and two independent decodes."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from aicodec.clips import Clip, Frames
from aicodec.errors import SandboxError
from aicodec.sandbox.runner import (
    ChildReport,
    decode_in_sandbox,
    encode_in_sandbox,
    isolation_mode,
)
from aicodec.settings import Settings

DECODES = 2  # every bitstream is decoded this many times, each in a fresh process


@dataclass
class PointRun:
    """One quality level of a candidate on a clip: its bitstream, decoded frames, reports."""

    quality: int
    encode: ChildReport
    decodes: list[ChildReport] = field(default_factory=list)
    bitstream: bytes | None = None
    decoded: Frames | None = None
    deterministic: bool | None = None
    error: str | None = None
    decoded_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the point produced trustworthy decoded frames."""
        return self.error is None and self.decoded is not None

    @property
    def failed_stage(self) -> str | None:
        """The stage that failed (validate, encode, decode, determinism, output)."""
        if self.ok:
            return None
        return self.error.split(":", 1)[0] if self.error else "run"


@dataclass
class CandidateRun:
    """A candidate's run on one clip at several qualities, and the isolation in force."""

    clip: Clip
    qualities: list[int]
    points: list[PointRun]
    isolation: str
    layers: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every quality level encoded and decoded correctly."""
        return all(point.ok for point in self.points)

    def first_error(self) -> str | None:
        """The first failure as one line (quality, stage, what happened)."""
        for point in self.points:
            if not point.ok:
                return f"quality {point.quality}: {point.error}"
        return None


ProgressCallback = Callable[[str], None]


@contextmanager
def work_folder() -> Iterator[Path]:
    """A temporary folder for sandbox jobs: the unprivileged child may pass through it to
    its own job directory (mode 711) but not list it; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="aicodec-sandbox-") as folder:
        base = Path(folder)
        base.chmod(0o711)
        yield base


def _describe(frames: int, width: int, height: int) -> str:
    return f"{frames} frames of {width}x{height}"


def _decode_twice(
    source: str,
    bitstream: bytes,
    clip: Clip,
    base: Path,
    settings: Settings,
    point: PointRun,
    cancel: threading.Event,
) -> None:
    """Decode in two fresh children; check geometry and that both results are identical."""
    frames = clip.frames
    expected_bytes = frames.frame_bytes * frames.count
    hashes: list[str] = []
    decoded_path: Path | None = None
    for attempt in range(1, DECODES + 1):
        report, path = decode_in_sandbox(
            source, bitstream, base / f"q{point.quality}-decode-{attempt}", settings,
            max_bytes=expected_bytes, cancel=cancel,
        )  # fmt: skip
        point.decodes.append(report)
        if not report.ok or path is None:
            point.error = f"decode: {report.describe()}"
            return
        got = (report.values.get("frames"), report.values.get("width"), report.values.get("height"))
        if got != (frames.count, frames.width, frames.height):
            shown = _describe(*(int(value or 0) for value in got))
            want = _describe(frames.count, frames.width, frames.height)
            point.error = f"output: decode returned {shown}, the clip has {want}"
            return
        data = path.read_bytes()
        hashes.append(hashlib.sha256(data).hexdigest())
        decoded_path = path
    point.deterministic = len(set(hashes)) == 1
    if not point.deterministic:
        point.error = "determinism: two decodes of the same bitstream gave different frames"
        return
    assert decoded_path is not None
    point.decoded = Frames.from_i420(
        decoded_path.read_bytes(), frames.width, frames.height, frames.fps
    )
    point.decoded_sha256 = hashes[0]


def run_candidate(
    source: str,
    clip: Clip,
    qualities: Sequence[int],
    settings: Settings,
    *,
    keep_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> CandidateRun:
    """Encode ``clip`` at each quality in the sandbox, decode each bitstream twice apart.

    Qualities run at once, up to ``sandbox_jobs(settings)``, each in its own fresh children;
    the points come back in the order of ``qualities``.
    """
    mode = isolation_mode(settings)
    cancel = threading.Event()  # set when the run is interrupted: stops the running children
    with work_folder() as base:

        def run_point(quality: int) -> PointRun:
            if progress is not None:
                progress(f"quality {quality}: encoding")
            report, bitstream = encode_in_sandbox(
                source, clip.frames, quality, base / f"q{quality}-encode", settings, cancel=cancel
            )
            point = PointRun(quality, report, bitstream=bitstream)
            if bitstream is None:
                point.error = f"encode: {report.describe()}"
                return point
            if progress is not None:
                progress(f"quality {quality}: decoding twice")
            _decode_twice(source, bitstream, clip, base, settings, point, cancel)
            if keep_dir is not None:
                _keep(point, keep_dir)
            return point

        jobs = max(1, min(len(qualities), sandbox_jobs(settings)))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_point, quality) for quality in qualities]
            try:
                points = [future.result() for future in futures]
            except BaseException:  # Ctrl-C or a failure: stop every child still running
                cancel.set()
                for future in futures:
                    future.cancel()
                raise
    layers = next((point.encode.isolation for point in points if point.encode.isolation), ())
    return CandidateRun(clip, list(qualities), points, mode, layers)


def sandbox_jobs(settings: Settings) -> int:
    """How many qualities run at once: the setting, else one per CPU core (one on a GPU,
    whose memory the children would share)."""
    if settings.sandbox_jobs:
        return settings.sandbox_jobs
    return 1 if settings.device == "cuda" else len(os.sched_getaffinity(0))


def _keep(point: PointRun, keep_dir: Path) -> None:
    """Write ``q{quality}.bin`` (the bitstream) and ``q{quality}.y4m`` (decoded frames)."""
    keep_dir.mkdir(parents=True, exist_ok=True)
    if point.bitstream is not None:
        (keep_dir / f"q{point.quality}.bin").write_bytes(point.bitstream)
    if point.decoded is not None:
        point.decoded.write_y4m(keep_dir / f"q{point.quality}.y4m")


def decode_bitstream(
    source: str, bitstream: bytes, settings: Settings, *, fps: Fraction | None = None
) -> tuple[Frames, ChildReport]:
    """Decode one bitstream in the sandbox (as a reader checking a result would)."""
    with work_folder() as base:
        report, path = decode_in_sandbox(
            source, bitstream, base / "decode", settings, max_bytes=settings.max_clip_bytes
        )
        if not report.ok or path is None:
            raise SandboxError(f"decode: {report.describe()}")
        count, width, height = (int(report.values[key]) for key in ("frames", "width", "height"))
        returned = report.values.get("fps")
        rate = fps or (Fraction(*returned) if isinstance(returned, list) else None)
        if rate is None:
            raise SandboxError("the codec does not return a frame rate; give --fps")
        if width % 2 or height % 2:
            raise SandboxError(f"decode returned an odd size {width}x{height}")
        frames = Frames.from_i420(path.read_bytes(), width, height, rate)
    if frames.count != count:
        raise SandboxError(f"decode wrote {frames.count} frames but reported {count}")
    return frames, report
