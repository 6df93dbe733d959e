"""Running the ladder on a clip: cached encodes, matched rate points, RD curves and BD-rates."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, select

from aicodec.clips import Clip
from aicodec.clips.records import record_clip
from aicodec.errors import BaselineError, BDRateError
from aicodec.ffmpeg import ffmpeg_version
from aicodec.ladder.encoding import encode_and_decode
from aicodec.ladder.search import choose_rates
from aicodec.ladder.spec import EncoderSpec, Ladder
from aicodec.pools.local import JobPool, job_result, make_pool
from aicodec.scoring.bdrate import RDPoint, bd_compare
from aicodec.scoring.metrics import MEASURED_FIELDS, EncodedQuality, measure_encoding
from aicodec.settings import Settings
from aicodec.store import BaselineEncode, RatePointChoice, Store


@dataclass(frozen=True)
class RatePoint(EncodedQuality):
    """One encode of a clip by a standard encoder at one rate value; ``decode_seconds`` is
    ffmpeg's wall time to decode its stream (None for a point stored before the lab kept it)."""

    rate_value: int
    decode_seconds: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready point; VMAF only when measured."""
        return {
            "rate_value": self.rate_value,
            **self.measured(),
            "decode_seconds": self.decode_seconds,
        }


@dataclass
class EncoderCurve:
    """An encoder's RD points on one clip and its BD-rate against the anchor."""

    name: str
    description: str
    rate_option: str
    points: list[RatePoint]
    bd_rate_vs: dict[str, float | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def rd_points(self) -> list[RDPoint]:
        """The curve as (kbit/s, PSNR-Y dB) points."""
        return [RDPoint(point.kbps, point.psnr_y) for point in self.points]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready curve."""
        return {
            "description": self.description,
            "rate_option": self.rate_option,
            "points": [point.to_dict() for point in self.points],
            "bd_rate_vs": self.bd_rate_vs,
            "warnings": self.warnings,
        }


@dataclass
class LadderResult:
    """The whole ladder on one clip."""

    clip: Clip
    anchor: str
    encoder_version: str
    encoders: dict[str, EncoderCurve]
    fresh_encodes: int = 0
    cached_encodes: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready result: ``{"clip", "anchor", "encoders": {NAME: curve}, ...}``."""
        return {
            "clip": self.clip.describe(),
            "anchor": self.anchor,
            "ffmpeg_version": self.encoder_version,
            "encoders": {name: curve.to_dict() for name, curve in self.encoders.items()},
            "fresh_encodes": self.fresh_encodes,
            "cached_encodes": self.cached_encodes,
            "bitrate_counts": "bytes of the raw elementary stream (no container), "
            "encoder-banner SEI removed",
        }


@dataclass(frozen=True)
class LadderProgress:
    """What the ladder is doing now, for a progress display."""

    encoder: str
    encoder_index: int
    encoder_total: int
    rate_option: str
    rate_value: int | None
    cached: bool
    finished: bool = False


ProgressCallback = Callable[[LadderProgress], None]


def encode_rate_point(
    spec: EncoderSpec,
    clip: Clip,
    rate: int,
    threads: int,
    settings: Settings,
    with_vmaf: bool,
    cancel: threading.Event | None,
) -> tuple[RatePoint, str]:
    """Encode ``clip`` with ``spec`` at ``rate``, decode and measure it: the point and the
    ffmpeg version that made it. This is the ladder's job a pool runs (here or on a
    cluster node); it never touches the store. Setting ``cancel`` kills ffmpeg."""
    frames = clip.frames
    encoded = encode_and_decode(spec, frames, rate, threads, settings.ffmpeg_timeout_s, cancel)
    measured = measure_encoding(
        frames,
        encoded.decoded,
        len(encoded.bitstream),
        encoded.encode_seconds,
        settings=settings,
        with_vmaf=with_vmaf,
    )
    point = RatePoint(rate_value=rate, decode_seconds=encoded.decode_seconds, **measured)  # type: ignore[arg-type]
    return point, ffmpeg_version()


class _EncoderRun:
    """Encodes one encoder's points on one clip, through the store's cache: the encodes run
    on the pool, the store is read and written here in the driver."""

    def __init__(
        self,
        spec: EncoderSpec,
        clip: Clip,
        clip_id: int,
        store: Store,
        settings: Settings,
        ladder: Ladder,
        report: Callable[[int | None, bool], None],
        pool: JobPool,
    ) -> None:
        self.spec, self.clip, self.clip_id, self.store = spec, clip, clip_id, store
        self.settings, self.ladder, self.report = settings, ladder, report
        self.version = ffmpeg_version()
        self.settings_hash = spec.settings_hash(ladder.threads)
        self.encoded_now: set[int] = set()
        self.cached = 0
        self.lock = threading.Lock()  # the anchor's points are encoded at once
        self.pool = pool  # its cancel is set when the work is dropped: ffmpeg is killed

    def _key(self) -> tuple[ColumnElement[bool], ...]:
        return (
            BaselineEncode.clip_id == self.clip_id,
            BaselineEncode.encoder == self.spec.name,
            BaselineEncode.encoder_version == self.version,
            BaselineEncode.settings_hash == self.settings_hash,
        )

    def point(self, rate: int, with_vmaf: bool = False) -> RatePoint:
        """The measured point at ``rate``: from the store, else encoded now and stored."""
        with self.store.session() as session:
            row = session.scalar(
                select(BaselineEncode).where(*self._key(), BaselineEncode.rate_value == rate)
            )
            # a point stored before the lab measured its decode time is encoded again
            measured = row is not None and row.decode_seconds is not None
            if row is not None and measured and (row.vmaf is not None or not with_vmaf):
                if rate not in self.encoded_now:
                    with self.lock:
                        self.cached += 1
                    self.report(rate, True)
                return _point_from_row(row)
        self.report(rate, False)
        job = self.pool.submit(
            encode_rate_point,
            self.spec,
            self.clip,
            rate,
            self.ladder.threads,
            self.settings,
            with_vmaf,
            self.pool.cancel,
        )
        point, version = job.result()
        if version != self.version:  # stored under the driver's version: it must be the same
            raise BaselineError(
                f"a worker's ffmpeg is {version!r}, this machine's {self.version!r}: install "
                "the same aicodec on every worker"
            )
        with self.lock:
            self.encoded_now.add(rate)
        self._save(point)
        return point

    def _save(self, point: RatePoint) -> None:
        """Store the point: a new row, or the stored one updated (adding VMAF); a row another
        process stored meanwhile is updated, not duplicated."""

        def new_row() -> BaselineEncode:
            row = BaselineEncode(
                clip_id=self.clip_id,
                encoder=self.spec.name,
                encoder_version=self.version,
                settings_hash=self.settings_hash,
                settings_json=json.dumps(self.spec.identity(self.ladder.threads)),
                rate_option=self.spec.rate_option,
            )
            _fill(row, point)
            return row

        lookup = select(BaselineEncode).where(
            *self._key(), BaselineEncode.rate_value == point.rate_value
        )
        row_id = self.store.add_once(lookup, new_row)
        with self.store.session() as session:
            row = session.get(BaselineEncode, row_id)
            assert row is not None
            _fill(row, point)

    def rates_for(self, targets: list[float]) -> list[int]:
        """Rate values matching ``targets`` (PSNR-Y dB): the cached choice, else searched."""
        key = hashlib.sha256(json.dumps([round(t, 4) for t in targets]).encode()).hexdigest()
        where = (
            RatePointChoice.clip_id == self.clip_id,
            RatePointChoice.encoder == self.spec.name,
            RatePointChoice.encoder_version == self.version,
            RatePointChoice.settings_hash == self.settings_hash,
            RatePointChoice.targets_key == key,
        )
        with self.store.session() as session:
            found = session.scalar(select(RatePointChoice).where(*where))
            if found is not None:
                return [int(rate) for rate in json.loads(found.rate_values_json)]
        spec = self.spec
        rates = choose_rates(
            lambda rate: self.point(rate).psnr_y,
            targets,
            lo=spec.rate_min,
            hi=spec.rate_max,
            start=(spec.rate_min + spec.rate_max) // 2,
            db_per_step=spec.db_per_step,
            tolerance_db=self.ladder.target_tolerance_db,
            max_encodes_per_target=self.ladder.max_search_encodes,
        )
        choice_id = self.store.add_once(
            select(RatePointChoice).where(*where),
            lambda: RatePointChoice(
                clip_id=self.clip_id,
                encoder=spec.name,
                encoder_version=self.version,
                settings_hash=self.settings_hash,
                targets_key=key,
                rate_values_json=json.dumps(rates),
            ),
        )
        with self.store.session() as session:  # another process's choice, if it came first
            stored = session.get(RatePointChoice, choice_id)
            assert stored is not None
            return [int(rate) for rate in json.loads(stored.rate_values_json)]


def _fill(row: BaselineEncode, point: RatePoint) -> None:
    """Copy a measured point's rate value and figures into its stored row."""
    for name in ("rate_value", "decode_seconds", *MEASURED_FIELDS):
        setattr(row, name, getattr(point, name))


def _point_from_row(row: BaselineEncode) -> RatePoint:
    """A RatePoint from its stored row."""
    fields = {name: getattr(row, name) for name in MEASURED_FIELDS}
    return RatePoint(rate_value=row.rate_value, decode_seconds=row.decode_seconds, **fields)


def run_ladder(
    clip: Clip,
    store: Store,
    settings: Settings,
    ladder: Ladder,
    *,
    encoders: list[str] | None = None,
    with_vmaf: bool = False,
    progress: ProgressCallback | None = None,
    pool: JobPool | None = None,
) -> LadderResult:
    """Encode ``clip`` with the chosen encoders (the anchor always), matched to the anchor's
    PSNR-Y range, and compute each encoder's BD-rate against the anchor.

    Encodes run on ``pool``, else on a pool of ``job_count(settings)`` workers made here:
    the anchor's rate points at once, then every other encoder's search at once (each
    search is sequential, driven by a thread here that sends its encodes to the pool).
    Stored encodes are reused; only this process writes the store; results do not depend
    on the number of workers.
    """
    if pool is None:
        with make_pool(settings) as own_pool:
            return _run_ladder(
                clip, store, settings, ladder, encoders, with_vmaf, progress, own_pool
            )
    return _run_ladder(clip, store, settings, ladder, encoders, with_vmaf, progress, pool)


def run_ladders(
    clips: Sequence[Clip],
    store: Store,
    settings: Settings,
    ladder: Ladder,
    *,
    encoders: list[str] | None = None,
    with_vmaf: bool = False,
    progress: Callable[[Clip, LadderProgress], None] | None = None,
) -> list[LadderResult]:
    """``run_ladder`` on every clip at once, all on one pool of ``job_count(settings)``
    workers (a suite's clips keep every worker busy to the end); the results in clip order.
    ``progress`` gets each event with the clip it is about."""

    def one(clip: Clip, pool: JobPool) -> LadderResult:
        def report(event: LadderProgress) -> None:
            if progress is not None:
                progress(clip, event)

        return _run_ladder(clip, store, settings, ladder, encoders, with_vmaf, report, pool)

    with make_pool(settings) as pool, _drivers(pool, len(clips)) as drivers:
        futures = [drivers.submit(one, clip, pool) for clip in clips]
        return [job_result(future) for future in futures]


def _run_ladder(
    clip: Clip,
    store: Store,
    settings: Settings,
    ladder: Ladder,
    encoders: list[str] | None,
    with_vmaf: bool,
    progress: ProgressCallback | None,
    pool: JobPool,
) -> LadderResult:
    """``run_ladder`` on a given pool."""
    specs = ladder.select(encoders)
    curves = _LadderCurves(clip, store, settings, ladder, specs, progress)
    anchor_spec = next(spec for spec in specs if spec.name == ladder.anchor)
    rates = sorted(ladder.anchor_rates)
    with _drivers(pool, len(rates) + len(specs)) as drivers:
        anchor = curves.start(anchor_spec, pool)
        futures = [drivers.submit(anchor.point, rate, with_vmaf) for rate in rates]
        anchor_points = [job_result(future) for future in futures]
        curves.finish(anchor, anchor_points)
        targets = [point.psnr_y for point in sorted(anchor_points, key=lambda p: p.kbps)]
        others = [curves.start(spec, pool) for spec in specs if spec is not anchor_spec]
        searches = [drivers.submit(_searched, run, targets, with_vmaf) for run in others]
        for run, future in zip(others, searches, strict=True):
            curves.finish(run, job_result(future))
    result = curves.result
    result.encoders = {spec.name: result.encoders[spec.name] for spec in specs}
    _add_bd_rates(result, settings)
    return result


class _LadderCurves:
    """The ladder's encoders on one clip: starts each one's run (its progress reported in
    the order of ``specs``) and files its finished curve in ``result``."""

    def __init__(
        self,
        clip: Clip,
        store: Store,
        settings: Settings,
        ladder: Ladder,
        specs: list[EncoderSpec],
        progress: ProgressCallback | None,
    ) -> None:
        self.clip, self.store, self.settings, self.ladder = clip, store, settings, ladder
        self.specs, self.progress = specs, progress
        self.clip_id = record_clip(store, clip)
        self.result = LadderResult(clip, ladder.anchor, ffmpeg_version(), {})
        self.order = {spec.name: index for index, spec in enumerate(specs)}
        self.lock = threading.Lock()

    def start(self, spec: EncoderSpec, pool: JobPool) -> _EncoderRun:
        """The run of ``spec``'s encodes on ``pool``, reporting each encode it starts."""
        index, total, progress = self.order[spec.name], len(self.specs), self.progress

        def report(rate: int | None, cached: bool) -> None:
            if progress is not None:
                with self.lock:
                    progress(
                        LadderProgress(spec.name, index, total, spec.rate_option, rate, cached)
                    )

        store, settings, ladder = self.store, self.settings, self.ladder
        return _EncoderRun(spec, self.clip, self.clip_id, store, settings, ladder, report, pool)

    def finish(self, run: _EncoderRun, points: list[RatePoint]) -> None:
        """File ``run``'s curve (its ``points`` by rate) and counts; report it finished."""
        spec = run.spec
        self.result.encoders[spec.name] = EncoderCurve(
            spec.name, spec.description, spec.rate_option, sorted(points, key=lambda p: p.kbps)
        )
        self.result.fresh_encodes += len(run.encoded_now)
        self.result.cached_encodes += run.cached
        if self.progress is not None:
            index, total = self.order[spec.name], len(self.specs)
            finished = LadderProgress(
                spec.name, index, total, spec.rate_option, None, False, finished=True
            )
            self.progress(finished)


def _searched(run: _EncoderRun, targets: list[float], with_vmaf: bool) -> list[RatePoint]:
    """``run``'s points at the rates its search chooses to match the PSNR-Y ``targets``."""
    return [run.point(rate, with_vmaf) for rate in run.rates_for(targets)]


@contextmanager
def _drivers(pool: JobPool, count: int) -> Iterator[ThreadPoolExecutor]:
    """Threads of this process that drive the ladder's searches (each waits on the pool's
    encodes); on an error the pool's jobs are stopped before the threads are waited for."""
    threads = ThreadPoolExecutor(max_workers=max(1, count), thread_name_prefix="aicodec-ladder")
    try:
        yield threads
    except BaseException:
        pool.cancel.set()
        raise
    finally:
        threads.shutdown(wait=True, cancel_futures=True)


def _add_bd_rates(result: LadderResult, settings: Settings) -> None:
    """Fill each curve's BD-rate against the anchor (None with a warning when undefined)."""
    anchor = result.encoders[result.anchor]
    for curve in result.encoders.values():
        if curve is anchor:
            curve.bd_rate_vs[anchor.name] = 0.0
            continue
        try:
            bd = bd_compare(
                anchor.rd_points(),
                curve.rd_points(),
                method=settings.bd_method,
                min_overlap=settings.bd_min_overlap,
            )
        except BDRateError as exc:
            curve.bd_rate_vs[anchor.name] = None
            curve.warnings.append(f"BD-rate vs {anchor.name} undefined: {exc}")
            continue
        curve.bd_rate_vs[anchor.name] = bd.bd_rate_percent
        if bd.overlap_psnr < settings.bd_min_overlap:
            curve.warnings.append(
                f"its PSNR-Y range overlaps {bd.overlap_psnr:.0%} of the combined range with "
                f"{anchor.name} (under {settings.bd_min_overlap:.0%}): the BD-rate covers only "
                "the shared part"
            )
