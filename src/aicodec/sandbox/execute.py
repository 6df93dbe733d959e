"""Running a candidate on a clip: per quality, one encode and two independent decodes."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ALL_COMPLETED, Future
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from aicodec.clips import Clip, Frames
from aicodec.errors import SandboxError
from aicodec.pools.local import JobPool, make_pool, wait_for_jobs
from aicodec.sandbox.folders import folder_lost, work_folder
from aicodec.sandbox.probe import isolation_mode
from aicodec.sandbox.report import ChildReport
from aicodec.sandbox.runner import decode_in_sandbox, encode_in_sandbox, wall_limit
from aicodec.settings import Settings

DECODES = 2  # every bitstream is decoded this many times, each in a fresh process
CANCELLED = "cancelled"  # the stage of a point not run because another failed first


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

    @property
    def only_cancelled(self) -> bool:
        """Whether every failed point was cancelled: another run's failure stopped this one."""
        return all(point.failed_stage == CANCELLED for point in self.points if not point.ok)

    def first_error(self) -> str | None:
        """The failure that stopped the run as one line (quality, stage, what happened);
        points cancelled because of it come last."""
        failed = sorted((point for point in self.points if not point.ok), key=_cancelled_last)
        return f"quality {failed[0].quality}: {failed[0].error}" if failed else None


def _cancelled_last(point: PointRun) -> bool:
    return point.failed_stage == CANCELLED


ProgressCallback = Callable[[str], None]
# called with (clip index, point) as soon as a point's decodes check out
PointCallback = Callable[[int, PointRun], None]
# reference seconds of a codec the lab knows, per (clip content hash, quality, role)
ReferenceTimes = dict[tuple[str, int, str], float]


def _describe(frames: int, width: int, height: int) -> str:
    return f"{frames} frames of {width}x{height}"


@dataclass(frozen=True)
class SandboxJob:
    """One sandbox child to run: the encode of a clip at ``quality``, or a decode of
    ``bitstream`` giving at most ``max_bytes`` of frames; ``wall_s`` is its time limit."""

    role: str
    source: str
    settings: Settings
    wall_s: float
    quality: int = 0
    bitstream: bytes | None = None
    max_bytes: int = 0


def run_sandbox_job(
    job: SandboxJob, clip: Clip | None, cancel: threading.Event | None
) -> tuple[ChildReport, bytes | None]:
    """Run ``job`` in a fresh sandbox child in a work folder of its own on this machine
    (removed when it returns): the child's report and its output when it succeeded.

    This is the job a pool runs, here or on a cluster node; ``clip`` is the encode's input
    (None for a decode); setting ``cancel`` kills the child. A work folder that vanished
    or broke under the job (removed by another process, a full disk) makes a failed job
    that says so.
    """
    with work_folder() as base:
        started = time.perf_counter()
        try:
            if job.role == "encode":
                assert clip is not None
                report, data = encode_in_sandbox(
                    job.source,
                    clip.frames,
                    job.quality,
                    base / "job",
                    job.settings,
                    wall_s=job.wall_s,
                    cancel=cancel,
                )
            else:
                assert job.bitstream is not None
                report, data = decode_in_sandbox(
                    job.source,
                    job.bitstream,
                    base / "job",
                    job.settings,
                    max_bytes=job.max_bytes,
                    wall_s=job.wall_s,
                    cancel=cancel,
                )
            return report, data
        except OSError as exc:
            wall = time.perf_counter() - started
            return ChildReport(
                job.role, "error", job.role, folder_lost(base, exc), None, wall, None, ()
            ), None


@dataclass
class _PointState:
    """Book-keeping of one (clip, quality) while its jobs run."""

    clip_index: int
    point: PointRun
    decoded: list[bytes | None] = field(default_factory=list)


class _Schedule:
    """Runs every (clip, quality) point of one candidate on a pool: encode, then its two
    decodes at once; the first failure cancels everything still to do."""

    def __init__(
        self,
        source: str,
        clips: Sequence[Clip],
        settings: Settings,
        references: ReferenceTimes,
        progress: ProgressCallback | None,
        pool: JobPool,
        on_point: PointCallback | None = None,
    ) -> None:
        self.source, self.clips, self.settings = source, clips, settings
        self.references, self.progress, self.pool = references, progress, pool
        self.on_point = on_point
        self.cancel = pool.cancel  # the pool is this candidate's alone: its cancel is ours
        self.failure: str | None = None
        self.pending: dict[Future[tuple[ChildReport, bytes | None]], tuple[_PointState, str]] = {}

    def _limit(self, clip: Clip, quality: int, role: str) -> float:
        frames = clip.frames
        reference = self.references.get((clip.content_hash, quality, role))
        return wall_limit(self.settings, reference, frames.count, frames.width, frames.height)

    def _say(self, clip: Clip, quality: int, text: str) -> None:
        if self.progress is not None:
            prefix = f"{clip.name} " if len(self.clips) > 1 else ""
            self.progress(f"{prefix}quality {quality}: {text}")

    def _submit(self, state: _PointState, role: str) -> None:
        """Send one job of the point to the pool (the bitstream goes with a decode)."""
        if self.cancel.is_set():
            return
        clip, point = self.clips[state.clip_index], state.point
        self._say(clip, point.quality, "encoding" if role == "encode" else "decoding")
        wall_s = self._limit(clip, point.quality, role)
        if role == "encode":
            job = SandboxJob("encode", self.source, self.settings, wall_s, quality=point.quality)
            future = self.pool.submit(run_sandbox_job, job, clip, self.cancel)
        else:
            frames = clip.frames
            job = SandboxJob(
                "decode",
                self.source,
                self.settings,
                wall_s,
                bitstream=point.bitstream,
                max_bytes=frames.frame_bytes * frames.count,
            )
            future = self.pool.submit(run_sandbox_job, job, None, self.cancel)
        self.pending[future] = (state, role)

    def run(self, states: list[_PointState]) -> None:
        """Submit the encodes, then each point's decodes as its encode ends; wait for all."""
        try:
            for state in states:
                self._submit(state, "encode")
            while self.pending:
                done, _ = wait_for_jobs(self.pending)
                for future in done:
                    state, role = self.pending.pop(future)
                    self._finished(state, role, future)
        except BaseException:  # Ctrl-C or a failure: stop every child, wait until all ended
            self._cancel()
            wait_for_jobs(self.pending, ALL_COMPLETED)
            raise

    def _cancel(self) -> None:
        """Kill the running children (they watch the event) and drop what has not started."""
        self.cancel.set()
        for future in self.pending:
            future.cancel()

    def _finished(
        self,
        state: _PointState,
        role: str,
        future: Future[tuple[ChildReport, bytes | None]],
    ) -> None:
        point = state.point
        if future.cancelled():
            return
        try:
            report, data = future.result()
        except SandboxError as exc:
            if not self.cancel.is_set():  # the lab could not start the child
                self._fail(state, f"{role}: {exc}")
            return  # else: stopped because another job failed first
        if role == "encode":
            point.encode = report
            if data is None:
                self._fail(state, f"encode: {report.describe()}")
                return
            point.bitstream = data
            for _ in range(DECODES):
                self._submit(state, "decode")
            return
        point.decodes.append(report)
        state.decoded.append(data)
        if point.error is not None:
            return  # its other decode failed first: that failure is the point's
        if data is None:
            self._fail(state, f"decode: {report.describe()}")
            return
        if len(state.decoded) == DECODES:
            self._check_decodes(state)

    def _check_decodes(self, state: _PointState) -> None:
        """Both decodes ended: geometry, determinism, then the decoded frames."""
        point, frames = state.point, self.clips[state.clip_index].frames
        for report in point.decodes:
            got = tuple(report.values.get(key) for key in ("frames", "width", "height"))
            if got != (frames.count, frames.width, frames.height):
                shown = _describe(*(int(value or 0) for value in got))
                want = _describe(frames.count, frames.width, frames.height)
                self._fail(state, f"output: decode returned {shown}, the clip has {want}")
                return
        hashes = [hashlib.sha256(data or b"").hexdigest() for data in state.decoded]
        point.deterministic = len(set(hashes)) == 1
        if not point.deterministic:
            self._fail(state, "determinism: two decodes of one bitstream gave different frames")
            return
        point.decoded = Frames.from_i420(
            state.decoded[0] or b"", frames.width, frames.height, frames.fps
        )
        point.decoded_sha256 = hashes[0]
        state.decoded = []
        if self.on_point is not None:
            self.on_point(state.clip_index, point)

    def _fail(self, state: _PointState, error: str) -> None:
        """Record the point's failure; the first failure cancels every other job."""
        state.point.error = error
        if self.failure is None:
            clip = self.clips[state.clip_index]
            self.failure = f"{clip.name} quality {state.point.quality}"
            self._cancel()


def run_candidate_on_clips(
    source: str,
    clips: Sequence[Clip],
    qualities: Sequence[int],
    settings: Settings,
    *,
    references: ReferenceTimes | None = None,
    keep_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    per_clip: Sequence[Sequence[int]] | None = None,
    on_point: PointCallback | None = None,
) -> list[CandidateRun]:
    """Encode every clip at each quality in the sandbox and decode each bitstream twice
    apart, all on one pool of ``job_count(settings)`` workers; a run per clip.

    ``per_clip`` gives each clip its own qualities instead (those left to run).
    ``on_point`` is called (in this thread) with each point that decoded correctly, as
    soon as it did, so a caller can keep it even if the run is cut short.
    The first failure (refusal, crash, timeout, wrong output) cancels the remaining jobs:
    their points carry a ``cancelled`` error. A job's wall-clock limit comes from
    ``references`` (seconds of a known codec, per clip hash, quality and role), else from
    the clip's size, through ``wall_limit``. Results do not depend on the number of
    workers.
    """
    here = isolation_mode(settings) if settings.executor == "local" else None
    wanted = [list(qualities)] * len(clips) if per_clip is None else [list(q) for q in per_clip]
    states = [
        _PointState(index, PointRun(quality, _not_run("encode")))
        for index in range(len(clips))
        for quality in wanted[index]
    ]
    with make_pool(settings, len(states) * DECODES) as pool:
        schedule = _Schedule(source, clips, settings, references or {}, progress, pool, on_point)
        schedule.run(states)
    runs = []
    for index, clip in enumerate(clips):
        points = [state.point for state in states if state.clip_index == index]
        for point in points:
            if not point.ok and point.error is None:
                point.error = f"{CANCELLED}: {schedule.failure} failed first"
            if keep_dir is not None and point.ok:
                _keep(point, keep_dir)
        found = (point.encode.isolation for point in points if point.encode.isolation)
        layers = next(found, ())
        runs.append(CandidateRun(clip, wanted[index], points, _mode_of(layers, here), layers))
    return runs


def point_isolation(point: PointRun, settings: Settings) -> str:
    """The isolation a point ran under, as a run's is stored: ``mode: layer, ...``."""
    layers = point.encode.isolation
    here = isolation_mode(settings) if settings.executor == "local" else None
    return f"{_mode_of(layers, here)}: {', '.join(layers)}"


def run_candidate(
    source: str,
    clip: Clip,
    qualities: Sequence[int],
    settings: Settings,
    *,
    references: ReferenceTimes | None = None,
    keep_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> CandidateRun:
    """``run_candidate_on_clips`` for one clip: its points in the order of ``qualities``."""
    return run_candidate_on_clips(
        source,
        [clip],
        qualities,
        settings,
        references=references,
        keep_dir=keep_dir,
        progress=progress,
    )[0]


def _mode_of(layers: tuple[str, ...], here: str | None) -> str:
    """The isolation mode a child's reported layers show (it may have run on another node);
    without layers, ``here`` (this machine's mode, None on a cluster) or "unreported"."""
    if layers:
        return "namespaces" if "mount-namespace" in layers else "process"
    return here or "unreported"


def _not_run(role: str) -> ChildReport:
    """The report of a job that never started (cancelled before its turn)."""
    return ChildReport(role, "cancelled", role, "not run", None, 0.0, None, ())


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
        try:
            report, data = decode_in_sandbox(
                source, bitstream, base / "decode", settings, max_bytes=settings.max_clip_bytes
            )
        except OSError as exc:
            raise SandboxError(f"decode: {folder_lost(base, exc)}") from None
    if not report.ok or data is None:
        raise SandboxError(f"decode: {report.describe()}")
    count, width, height = (int(report.values[key]) for key in ("frames", "width", "height"))
    returned = report.values.get("fps")
    rate = fps or (Fraction(*returned) if isinstance(returned, list) else None)
    if rate is None:
        raise SandboxError("the codec does not return a frame rate; give --fps")
    if width % 2 or height % 2:
        raise SandboxError(f"decode returned an odd size {width}x{height}")
    frames = Frames.from_i420(data, width, height, rate)
    if frames.count != count:
        raise SandboxError(f"decode wrote {frames.count} frames but reported {count}")
    return frames, report
