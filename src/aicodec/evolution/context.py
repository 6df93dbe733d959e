"""What an evolve run's stages work with: its store, settings, config, ladder, clips,
provider and start codec, and the reads of its own iterations they need."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from aicodec.clips import Clip
from aicodec.clips.records import record_clip
from aicodec.errors import EvolutionError
from aicodec.evolution.config import EvolveConfig
from aicodec.evolution.iteration import Iteration
from aicodec.evolution.parents import Member
from aicodec.ladder import Ladder
from aicodec.providers.base import Provider
from aicodec.scoring.candidate import RunOutcome, ScoreOutcome, measure_candidate, score_clips
from aicodec.settings import Settings
from aicodec.store import CandidateRecord, EvolutionIteration, Store
from aicodec.store.queries.points import fitness, keeps_chroma
from aicodec.store.queries.runs import iteration_rows


@dataclass(frozen=True)
class RunClips:
    """A run's training clips (shown to the model) and holdout clips, with their store ids,
    and the first frames of the training clips the cheap first stage runs on."""

    training: list[Clip]
    training_ids: list[int]
    holdout: list[Clip]
    holdout_ids: list[int]
    screen: list[Clip]


def screen_clips(config: EvolveConfig, training: list[Clip]) -> list[Clip]:
    """The training clips cut to their first ``config.screen_frames`` frames; none when the
    first stage is off or would run a clip whole."""
    count = config.screen_frames
    if count <= 0 or any(clip.frames.count <= count for clip in training):
        return []
    return [clip.first(count) for clip in training]


def load_run_clips(store: Store, settings: Settings, config: EvolveConfig) -> RunClips:
    """Load and store a run's clips; EvolutionError when a holdout clip is a training clip."""
    training = [spec.load(settings) for spec in config.videos]
    holdout = [spec.load(settings) for spec in config.holdout]
    shared = {clip.content_hash for clip in training} & {clip.content_hash for clip in holdout}
    if shared:
        raise EvolutionError("a --holdout clip is also a --video clip; holdout clips must differ")
    return RunClips(
        training,
        [record_clip(store, clip) for clip in training],
        holdout,
        [record_clip(store, clip) for clip in holdout],
        screen_clips(config, training),
    )


def _ignore(_: object) -> None:
    return None


@dataclass
class RunContext:
    """One run's fixed facts, and the reads and calls its stages share."""

    store: Store
    settings: Settings
    config: EvolveConfig
    run_id: int
    batch: str  # the run's model-call batch
    ladder: Ladder
    clips: RunClips
    provider: Provider
    provider_reason: str
    start_id: int
    start_fitness: float | None = None  # known once the start codec is scored
    tuner: Provider | None = None  # proposes the PARAMS of tuning iterations (tune_trials > 0)
    progress: Callable[[str], None] = _ignore  # a line for the display
    record: Callable[[Iteration], None] = _ignore  # store an iteration's values mid-stage

    def rows(self, upto: int | None = None) -> list[EvolutionIteration]:
        """The run's iterations (numbered ``upto`` or lower when given), by number."""
        return iteration_rows(self.store, self.run_id, upto)

    def known(self, number: int) -> int:
        """The last iteration iteration ``number`` may learn from: all up to it finished
        before ``number`` began, whatever the timing (``parallel`` before it)."""
        return number - self.config.parallel

    def scored(self, upto: int | None = None) -> list[tuple[int, Member]]:
        """The run's codecs that may be parents: scored, and not worse than their parent on
        PSNR-YUV (a luma gain paid for with chroma does not join an island)."""
        return [
            (row.number, Member(row.candidate_id, row.bd_rate_vs_x264))
            for row in self.rows(upto)
            if row.status == "scored"
            and row.candidate_id is not None
            and row.bd_rate_vs_x264 is not None
            and keeps_chroma(row.bd_rate_yuv_vs_parent)
        ]

    def fitness(self, candidate_id: int) -> float | None:
        """Mean BD-rate vs x264 of a candidate over the training clips (percent)."""
        return fitness(self.store, candidate_id, self.clips.training_ids, self.config.qualities)

    def cost(self, upto: int | None = None) -> float:
        """What the run's iterations (up to ``upto``) spent on model calls (USD)."""
        return sum(row.cost_usd or 0.0 for row in self.rows(upto))

    def minutes(self, upto: int | None = None) -> float:
        """The time the run's iterations (up to ``upto``) worked (minutes)."""
        total = 0.0
        for row in self.rows(upto):
            total += sum(json.loads(row.stage_seconds_json or "{}").values())
        return total / 60.0

    def source(self, candidate_id: int) -> tuple[str, str]:
        """A stored candidate's source and name."""
        with self.store.session() as session:
            record = session.get(CandidateRecord, candidate_id)
            assert record is not None
            return record.source, record.name

    def measure(
        self, candidate_id: int, clips: list[Clip], qualities: list[int]
    ) -> list[RunOutcome]:
        """Run a stored candidate on ``clips`` at ``qualities`` and measure its points (no
        ladder, no BD-rate; stored points are reused)."""
        source, name = self.source(candidate_id)
        return measure_candidate(
            source, name, clips, self.store, self.settings, qualities, progress=self.progress
        )

    def score(
        self,
        candidate_id: int,
        clips: list[Clip],
        reference_id: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[ScoreOutcome]:
        """Score a stored candidate on ``clips`` (one pool); children get time limits from
        ``reference_id``'s stored times; ``progress`` replaces the run's own callback."""
        source, name = self.source(candidate_id)
        return score_clips(
            source,
            name,
            clips,
            self.store,
            self.settings,
            self.ladder,
            self.config.qualities,
            encoders=self.config.encoders,
            reference_id=reference_id,
            progress=progress or self.progress,
        )
