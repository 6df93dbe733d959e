"""The evolve loop: plan, choose a parent, generate, score, decide adoption; resumable.

Every run is an ``evolution_runs`` row holding everything needed to resume it, and every
iteration an ``evolution_iterations`` row written at each stage. An iteration counts once
it reaches ``scored`` or ``failed``; one left ``running`` (kill -9, reboot) or
``interrupted`` (Ctrl-C) is done again by ``--resume``, from its stored candidate when it
had one (stored runs are reused, adoption is idempotent), else from the start. The library
never prints; progress goes to a callback (from two threads with ``parallel`` > 1, one at a
time).

With ``parallel`` K > 1 the next iterations are prepared (parent, plan, generate) by a worker
thread while this one scores and decides, in order. Iteration n is prepared only once
iteration n-K has finished, and it sees only iterations up to n-K (all finished before it
began), never those still in flight; so a run's rows do not depend on how fast its stages
are.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import select

from aicodec.adoption import adopt, bd_rate_between, check_codec_repo
from aicodec.clips import Clip
from aicodec.errors import (
    AdoptionError,
    AicodecError,
    EvolutionError,
    GenerationError,
    ProviderError,
    SandboxError,
    ValidationError,
)
from aicodec.evolution.config import ClipSpec, EvolveConfig
from aicodec.evolution.parents import Member, choose_parent
from aicodec.evolution.planner import LabFacts, PastIteration, Plan, parse_plan, rule_plan
from aicodec.evolution.summary import EvolveSummary, summarise
from aicodec.generation.generate import (
    generate_candidates,
    log_call,
    resolve_parent,
    scrub,
    select_provider,
)
from aicodec.generation.material import gather, past_iteration
from aicodec.generation.prompts import ParentCodec, PromptMaterial, plan_prompt
from aicodec.ladder import Ladder, load_ladder
from aicodec.ladder.runner import record_clip
from aicodec.pools.local import STOP_POLL_S
from aicodec.providers.base import Provider, refuse_unpriced_budget
from aicodec.sandbox.execute import CANCELLED
from aicodec.sandbox.runner import refuse_unisolated_model_code
from aicodec.scoring.candidate import ScoreOutcome, score_clips
from aicodec.settings import Settings
from aicodec.store import (
    CandidateRecord,
    EvolutionIteration,
    EvolutionRun,
    RunRecord,
    Store,
)
from aicodec.store.liveness import add_run, carrying_out, refuse_live_run
from aicodec.store.queries.points import X264, current_best, fitness, latest_ok_run
from aicodec.store.queries.runs import (
    FINISHED,
    history,
    iteration_rows,
    run_adoptions,
    unfinished_run,
)

STOP_WAIT_S = 2.0  # after Ctrl-C, how long the worker may take to end the stage it is in


@dataclass(frozen=True)
class EvolveEvent:
    """Progress of a run, for the CLI's display."""

    iteration: int
    total: int
    stage: str
    message: str
    best_bd_rate: float | None
    adoptions: int
    cost_usd: float
    row: dict[str, Any] | None = None  # a finished iteration's history entry


class EvolveInterrupted(Exception):
    """Raised (after the store is updated) when Ctrl-C stopped a run; says how to resume."""

    def __init__(self, run_id: int, number: int, stage: str) -> None:
        super().__init__(f"evolve run {run_id} interrupted in iteration {number} ({stage})")
        self.run_id, self.number, self.stage = run_id, number, stage


class EvolveCrashed(Exception):
    """Raised when an unexpected error (a bug, an environment failure the lab does not know)
    stopped a run: ``error`` is that error; the run was marked ``interrupted`` (where the
    store still answered) and ``--resume`` goes on from it."""

    def __init__(self, run_id: int, number: int, stage: str, error: BaseException) -> None:
        where = f"in iteration {number} ({stage})" if number else f"before its iterations ({stage})"
        super().__init__(f"evolve run {run_id} stopped {where} by {type(error).__name__}: {error}")
        self.run_id, self.number, self.stage, self.error = run_id, number, stage, error


def internal_reason(error: BaseException) -> str:
    """The stop reason stored with a run that an unexpected error stopped."""
    return scrub(f"internal error: {type(error).__name__}: {error}")[:500]


@dataclass
class _Clips:
    training: list[Clip]
    training_ids: list[int]
    holdout: list[Clip]
    holdout_ids: list[int]


@dataclass(frozen=True)
class _Ready:
    """An iteration prepared up to its candidate: what is left is to score it and decide."""

    number: int
    row_id: int
    candidate_id: int
    parent_id: int


@dataclass(frozen=True)
class _Stop:
    """The run stops before this iteration: its status and why."""

    status: str
    reason: str


class _Halted(Exception):
    """Raised in the worker at its next stage once the run was interrupted."""


class _Feeder:
    """A daemon thread preparing the submitted iterations in order, one at a time."""

    def __init__(self, prepare: Callable[[int], _Ready | _Stop | None]) -> None:
        self._todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[_Ready | _Stop | None, BaseException | None]] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(
            target=self._work, args=(prepare,), name="evolve-prepare", daemon=True
        )
        self._thread.start()

    def _work(self, prepare: Callable[[int], _Ready | _Stop | None]) -> None:
        while (number := self._todo.get()) is not None:
            try:
                result = prepare(number)
            except BaseException as exc:  # raised again in the driver's thread by take()
                self._done.put((None, exc))
                return
            self._done.put((result, None))
            if isinstance(result, _Stop):
                return

    def submit(self, number: int) -> None:
        """Prepare iteration ``number`` after those submitted before it."""
        self._todo.put(number)

    def take(self) -> _Ready | _Stop | None:
        """The next prepared iteration, in submission order (its error raised here)."""
        while True:  # woken now and then: a stop signal must reach this (main) thread
            try:
                result, error = self._done.get(timeout=STOP_POLL_S)
                break
            except queue.Empty:
                continue
        if error is not None:
            raise error
        return result

    def close(self, wait: float) -> None:
        """Prepare nothing more; wait up to ``wait`` seconds for the thread to end."""
        self._todo.put(None)
        self._thread.join(wait)


def _load_clips(store: Store, settings: Settings, config: EvolveConfig) -> _Clips:
    training = [spec.load(settings) for spec in config.videos]
    holdout = [spec.load(settings) for spec in config.holdout]
    shared = {clip.content_hash for clip in training} & {clip.content_hash for clip in holdout}
    if shared:
        raise EvolutionError("a --holdout clip is also a --video clip; holdout clips must differ")
    return _Clips(
        training,
        [record_clip(store, clip) for clip in training],
        holdout,
        [record_clip(store, clip) for clip in holdout],
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _set_run_status(
    store: Store, run_id: int, status: str, reason: str | None, *, finished: bool = True
) -> None:
    """Write a run's status and stop reason (and when it ended, unless it goes on)."""
    with store.session() as session:
        run = session.get(EvolutionRun, run_id)
        assert run is not None
        run.status, run.stop_reason = status, reason
        run.finished_at = _now() if finished else None


class Evolution:
    """One evolve run being carried out (started or resumed)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        config: EvolveConfig,
        run_id: int,
        on_event: Callable[[EvolveEvent], None] | None,
        *,
        clips: _Clips | None = None,
        provider: tuple[Provider, str] | None = None,
    ) -> None:
        """``clips`` and ``provider`` (with its reason) are made here unless given."""
        self.store, self.config, self.run_id, self.on_event = store, config, run_id, on_event
        self.settings = settings.model_copy(update={"adopt_threshold_percent": config.threshold})
        self.ladder: Ladder = load_ladder(settings.ladder_file)
        self.ladder.select(config.encoders)
        self.clips = clips or _load_clips(store, self.settings, config)
        with store.session() as session:
            run = session.get(EvolutionRun, run_id)
            assert run is not None
            self.batch, self.start_id = run.batch, run.start_parent_id
            provider_name = run.provider
        self.provider, self.provider_reason = provider or select_provider(
            self.settings, provider_name, seed=config.seed, store=store
        )
        self.start_fitness: float | None = None  # known once prepare() has scored the start
        self._local = threading.local()  # each thread works on one iteration at a time
        self._events = threading.Lock()  # on_event is called by one thread at a time
        self._closed = False  # set once the run's loop ended: a late worker emits nothing
        self._stop = threading.Event()  # set on Ctrl-C: the worker starts no further stage

    @property
    def number(self) -> int:
        """The iteration this thread works on (0 before the first)."""
        return int(getattr(self._local, "number", 0))

    @number.setter
    def number(self, value: int) -> None:
        self._local.number = value

    @property
    def stage(self) -> str:
        """The stage this thread is in."""
        return str(getattr(self._local, "stage", "setup"))

    @stage.setter
    def stage(self, value: str) -> None:
        self._local.stage = value

    # --- progress and row updates -----------------------------------------------------------

    def _emit(self, message: str, row: dict[str, Any] | None = None) -> None:
        if self.on_event is None:
            return
        known = [member.fitness for _, member in self._scored()]
        if self.start_fitness is not None:
            known.append(self.start_fitness)
        event = EvolveEvent(
            self.number,
            self.config.iterations,
            self.stage,
            message,
            min(known) if known else None,
            len(self._adoptions()),
            self._cost(),
            row,
        )
        with self._events:
            if not self._closed:
                self.on_event(event)

    def _update(self, row_id: int, **values: Any) -> None:
        with self.store.session() as session:
            row = session.get(EvolutionIteration, row_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)

    @contextmanager
    def _stage(self, row_id: int, stage: str) -> Iterator[None]:
        """Mark the row's stage and add the time spent in it to its stage seconds."""
        if self._stop.is_set():
            raise _Halted
        self.stage = stage
        self._update(row_id, stage=stage)
        self._emit(stage)
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - started
            with self.store.session() as session:
                row = session.get(EvolutionIteration, row_id)
                assert row is not None
                seconds = json.loads(row.stage_seconds_json or "{}")
                seconds[stage] = round(seconds.get(stage, 0.0) + spent, 3)
                row.stage_seconds_json = json.dumps(seconds)

    # --- reading the store ------------------------------------------------------------------

    def _rows(self, upto: int | None = None) -> list[EvolutionIteration]:
        """The run's iterations (numbered ``upto`` or lower when given), by number."""
        return iteration_rows(self.store, self.run_id, upto)

    def _known(self, number: int) -> int:
        """The last iteration iteration ``number`` may learn from: all up to it finished
        before ``number`` began, whatever the timing (``parallel`` before it)."""
        return number - self.config.parallel

    def _scored(self, upto: int | None = None) -> list[tuple[int, Member]]:
        """The run's codecs that may be parents: scored, and not worse than their parent on
        PSNR-YUV (a luma gain paid for with chroma does not join an island)."""
        return [
            (row.number, Member(row.candidate_id, row.bd_rate_vs_x264))
            for row in self._rows(upto)
            if row.status == "scored"
            and row.candidate_id is not None
            and row.bd_rate_vs_x264 is not None
            and row.bd_rate_yuv_vs_parent is not None
            and row.bd_rate_yuv_vs_parent <= 0
        ]

    def _fitness(self, candidate_id: int) -> float | None:
        """Mean BD-rate vs x264 of a candidate over the training clips (percent)."""
        return fitness(self.store, candidate_id, self.clips.training_ids, self.config.qualities)

    def _adoptions(self) -> list[dict[str, Any]]:
        return run_adoptions(self.store, self.run_id)

    def _cost(self, upto: int | None = None) -> float:
        return sum(row.cost_usd or 0.0 for row in self._rows(upto))

    def _minutes(self, upto: int | None = None) -> float:
        total = 0.0
        for row in self._rows(upto):
            total += sum(json.loads(row.stage_seconds_json or "{}").values())
        return total / 60.0

    # --- the run ----------------------------------------------------------------------------

    def _score(
        self, source: str, name: str, clips: list[Clip], reference_id: int | None = None
    ) -> list[ScoreOutcome]:
        """Score on ``clips`` (one pool); children get limits relative to ``reference_id``'s
        stored times."""
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
            progress=lambda text: self._emit(text),
        )

    def prepare(self) -> None:
        """Score the starting codec (and the adopted best) on every clip, once."""
        check_codec_repo(Path(self.config.git_repo))
        all_clips = self.clips.training + self.clips.holdout
        for candidate_id in dict.fromkeys([self.start_id, current_best(self.store)]):
            if candidate_id is None:
                continue
            source, name = self._source(candidate_id)
            try:
                self._score(source, name, all_clips)
            except (SandboxError, ValidationError) as exc:
                raise EvolutionError(
                    f"the starting codec (candidate {candidate_id}) fails: {exc}"
                ) from None
        self.start_fitness = self._fitness(self.start_id)
        if self.start_fitness is None:
            raise EvolutionError(
                f"the starting codec (candidate {self.start_id}) has no BD-rate vs x264 on the "
                "training clips (its RD curve does not overlap x264's); start from another"
            )

    def _source(self, candidate_id: int) -> tuple[str, str]:
        with self.store.session() as session:
            record = session.get(CandidateRecord, candidate_id)
            assert record is not None
            return record.source, record.name

    def run(self, *, new: bool = False) -> EvolveSummary:
        """Carry out the remaining iterations; the run's summary.

        A new run that cannot start (its starting codec fails, the repository is unusable)
        is marked failed rather than left to be resumed; a resumed one keeps its status.
        """
        try:
            self.prepare()
        except AicodecError as exc:
            if new:
                self._set_status("failed", f"could not start: {scrub(str(exc))[:500]}")
            raise
        except Exception as exc:  # unexpected: the run stays resumable, the points kept
            self.stage = "scoring the starting codec"
            self._crashed(None, exc)
        self._set_status("running", None, finished=False)
        status, stop = self._pipeline()
        self._set_status(status, stop)
        return summarise(self.store, self.settings, self.run_id)

    def _set_status(self, status: str, reason: str | None, *, finished: bool = True) -> None:
        _set_run_status(self.store, self.run_id, status, reason, finished=finished)

    def _pipeline(self) -> tuple[str, str | None]:
        """Carry out the remaining iterations; the run's status and stop reason.

        With ``parallel`` K > 1 a worker thread prepares the iterations (parent, plan,
        generate) in order while this thread scores them and decides their adoption in
        order; iteration n is submitted once n-K has finished, so at most K are in flight.
        When a budget or the failure streak stops the run, the iterations already started
        finish and no new one starts. Ctrl-C marks every iteration in flight ``interrupted``.
        """
        total, ahead = self.config.iterations, self.config.parallel
        feeder = _Feeder(self._prepare) if ahead > 1 else None
        number = 0
        try:
            if feeder is not None:
                for first in range(1, min(ahead, total) + 1):
                    feeder.submit(first)
            for number in range(1, total + 1):
                self.number = number
                ready = feeder.take() if feeder is not None else self._prepare(number)
                if isinstance(ready, _Stop):
                    return ready.status, ready.reason
                if ready is not None:
                    self._complete(ready)
                if feeder is not None and number + ahead <= total:
                    feeder.submit(number + ahead)
            return "finished", None
        except KeyboardInterrupt:
            self._halt(feeder)
            raise EvolveInterrupted(self.run_id, number, self._stage_of(number)) from None
        except AdoptionError:
            self._halt(feeder)
            raise
        except AicodecError:
            raise
        except Exception as exc:
            self._crashed(feeder, exc)
        finally:
            self._stop.set()
            if feeder is not None:
                feeder.close(STOP_WAIT_S)
            with self._events:
                self._closed = True

    def _budget_spent(self, number: int) -> str | None:
        """Which budget the iterations before ``number`` have spent, if any (their model
        calls are all made: iterations are prepared in order)."""
        config = self.config
        cost = self._cost(number - 1)
        if config.max_cost is not None and cost >= config.max_cost:
            return f"max-cost {config.max_cost:g} USD reached ({cost:.4f} USD spent)"
        minutes = self._minutes(number - 1)
        if config.max_minutes is not None and minutes >= config.max_minutes:
            return f"max-minutes {config.max_minutes:g} reached ({minutes:.1f} minutes spent)"
        return None

    def _failing(self, number: int) -> str | None:
        """Why the run stops before ``number``: the known iterations end in failures only."""
        streak: list[EvolutionIteration] = []
        for row in reversed(self._rows(self._known(number))):
            if row.status != "failed":
                break
            streak.append(row)
        if len(streak) < self.config.max_failures_in_row:
            return None
        kinds = Counter(row.failure_kind or "unknown" for row in streak)
        listed = ", ".join(f"{kind} x{count}" for kind, count in kinds.most_common())
        return (
            f"{len(streak)} iterations in a row produced no scored codec ({listed}); the last: "
            f"{streak[0].reason}"
        )

    def _prepare(self, number: int) -> _Ready | _Stop | None:
        """Iteration ``number`` up to its candidate, from where it was left: None when
        nothing is left to do (finished before, or failed here), or why the run stops."""
        self.number = number
        row = {row.number: row for row in self._rows(number)}.get(number)
        if row is not None and row.status in FINISHED:
            return None
        budget = self._budget_spent(number)
        if budget:
            return _Stop("stopped", budget)
        failing = self._failing(number)
        if failing:
            return _Stop("failed", failing)
        if row is None:
            with self.store.session() as session:
                created = EvolutionIteration(
                    run_id=self.run_id,
                    number=number,
                    status="running",
                    stage="parent",
                    adopted=False,
                    cost_usd=0.0,
                    stage_seconds_json="{}",
                )
                session.add(created)
                session.flush()
                row_id = created.id
            candidate_id = parent_id = None
        else:
            row_id, candidate_id, parent_id = row.id, row.candidate_id, row.parent_id
            self._update(row_id, status="running")
        if candidate_id is None or parent_id is None:
            try:
                parent_id = self._choose(row_id, number)
                recent = self._recent(number)
                plan = self._plan(row_id, number, parent_id, recent)
                candidate_id = self._generate(row_id, number, parent_id, plan, recent)
            except _Halted:
                return None
            if candidate_id is None:
                return None
        return _Ready(number, row_id, candidate_id, parent_id)

    def _complete(self, ready: _Ready) -> None:
        """Score a prepared iteration and decide its adoption."""
        self.number = ready.number
        if self._measure(ready.row_id, ready.candidate_id, ready.parent_id):
            self._decide(ready.row_id, ready.candidate_id)
            self._finish(ready.row_id, "scored")

    def _crashed(self, feeder: _Feeder | None, error: Exception) -> NoReturn:
        """After an unexpected error: mark the run ``interrupted`` with the error as its stop
        reason (as far as the store still answers), then raise EvolveCrashed."""
        number = self.number
        stage = self.stage
        try:
            stage = self._stage_of(number) if number else stage
            self._halt(feeder, internal_reason(error))
        except Exception:  # the store itself may be what failed
            pass
        raise EvolveCrashed(self.run_id, number, stage, error) from error

    def _halt(self, feeder: _Feeder | None, reason: str | None = None) -> None:
        """Stop the worker (it ends the stage it is in, waited for briefly), then mark the
        iterations in flight and the run ``interrupted`` (with ``reason`` as its stop
        reason when given)."""
        self._stop.set()
        if feeder is not None:
            feeder.close(STOP_WAIT_S)
        with self.store.session() as session:
            for row in session.scalars(
                select(EvolutionIteration).where(
                    EvolutionIteration.run_id == self.run_id,
                    EvolutionIteration.status == "running",
                )
            ):
                row.status = "interrupted"
            run = session.get(EvolutionRun, self.run_id)
            assert run is not None
            run.status = "interrupted"
            if reason is not None:
                run.stop_reason = reason

    def _stage_of(self, number: int) -> str:
        """The stored stage of iteration ``number`` (this thread's when it has no row)."""
        row = {row.number: row for row in self._rows(number)}.get(number)
        return row.stage if row is not None else self.stage

    def _finish(self, row_id: int, status: str, **values: Any) -> None:
        self._update(row_id, status=status, stage="end", finished_at=_now(), **values)
        entry = next(
            item for item in history(self.store, self.run_id) if item["iteration"] == self.number
        )
        self.stage = "end"
        self._emit(status, entry)

    def _fail(self, row_id: int, kind: str, reason: str, **values: Any) -> None:
        self._finish(row_id, "failed", failure_kind=kind, reason=scrub(reason)[:4000], **values)

    # --- the stages -------------------------------------------------------------------------

    def _choose(self, row_id: int, number: int) -> int:
        with self._stage(row_id, "parent"):
            assert self.start_fitness is not None
            parent_id, why = choose_parent(
                self.config.rule,
                self.config.seed,
                Member(self.start_id, self.start_fitness),
                self._scored(self._known(number)),
                number,
            )
            self._update(row_id, parent_id=parent_id, parent_rule=why)
        return parent_id

    def _recent(self, number: int) -> list[PastIteration]:
        """The finished iterations known to iteration ``number``, newest first (at most 12)."""
        with self.store.session() as session:
            rows = sorted(self._rows(self._known(number)), key=lambda item: -item.number)
            return [past_iteration(session, row) for row in rows if row.status in FINISHED][:12]

    def _facts(self, parent_id: int, number: int, recent: list[PastIteration]) -> LabFacts:
        """What iteration ``number``'s planner is told: only iterations known to it
        (``recent``: its known finished iterations, newest first)."""
        known = self._known(number)
        scored = sorted(
            self._scored(known), key=lambda item: (item[1].fitness, item[1].candidate_id)
        )
        best = [(member.candidate_id, member.fitness) for _, member in scored[:3]]
        if not best and self.start_fitness is not None:
            best = [(self.start_id, self.start_fitness)]
        with self.store.session() as session:
            points = []
            for clip_id in self.clips.training_ids:
                for quality in self.config.qualities:
                    run = latest_ok_run(session, parent_id, clip_id, quality)
                    if run is not None and run.kbps is not None:
                        points.append(
                            f"clip {clip_id} quality {quality}: {run.kbps:.1f} kbps, "
                            f"PSNR-Y {run.psnr_y:.2f} dB"
                        )
        return LabFacts(
            parent_id, self._fitness(parent_id), points, best, recent, self.config.threshold
        )

    def _plan_material(self, parent_id: int, facts: LabFacts) -> PromptMaterial:
        """The planning prompt's material: the facts' summary, the parent on the training
        clips beside the ladder, the known iterations."""
        material = gather(
            self.store,
            self.settings,
            parent_id,
            clip_ids=self.clips.training_ids,
            recent=facts.recent,
            failures=False,
            ladder=self.ladder,
            qualities=self.config.qualities,
        )
        return replace(material, summary=tuple(facts.summary_lines()))

    def _use_model_planner(self) -> bool:
        planner = self.config.planner
        if planner == "rules":
            return False
        if planner == "model":
            return True
        return self.provider.capabilities.plans

    def _plan(self, row_id: int, number: int, parent_id: int, recent: list[PastIteration]) -> Plan:
        with self._stage(row_id, "plan"):
            facts = self._facts(parent_id, number, recent)
            cost = 0.0
            if self._use_model_planner():
                prompt = plan_prompt(self.settings, self._plan_material(parent_id, facts))
                try:
                    reply, _ = log_call(self.store, self.provider, prompt, self.batch)
                    cost = reply.cost_usd
                    plan = parse_plan(reply.text)
                except (ProviderError, GenerationError) as exc:
                    plan = rule_plan(facts)
                    plan.planner = "rules (model plan unavailable)"
                    plan.note = scrub(str(exc))[:500]
            else:
                plan = rule_plan(facts)
            self._update(
                row_id,
                planner=plan.planner,
                plan_json=plan.to_json(),
                predicted_bd_rate=plan.predicted_bd_rate,
                confidence=plan.confidence,
                cost_usd=cost,
            )
        return plan

    def _generate(
        self, row_id: int, number: int, parent_id: int, plan: Plan, recent: list[PastIteration]
    ) -> int | None:
        """The new candidate's id, or None after recording why there is none."""
        with self._stage(row_id, "generate"):
            source, name = self._source(parent_id)
            parent = ParentCodec(parent_id, name, source)
            capabilities = self.provider.capabilities
            tries = self.config.duplicate_tries if capabilities.retries_duplicates else 1
            repeat_from = (
                self._improving_step(parent_id, number)
                if capabilities.repeats_improving_steps
                else None
            )
            hidden = self._in_flight(number)
            spent = self._row_cost(row_id)
            last = None
            for _ in range(tries):
                remaining = None
                if self.config.max_cost is not None:
                    remaining = max(0.0, self.config.max_cost - self._cost(number))
                try:
                    outcome = generate_candidates(
                        self.store,
                        self.settings,
                        self.provider,
                        self.provider_reason,
                        parent,
                        count=1,
                        repairs=self.config.repairs,
                        max_cost=remaining,
                        plan=plan.text(),
                        batch_id=self.batch,
                        clip_ids=self.clips.training_ids,
                        repeat_from=repeat_from,
                        hidden=hidden,
                        qualities=self.config.qualities,
                        recent=recent,
                        progress=lambda text: self._emit(text),
                    )
                except GenerationError as exc:
                    self._fail(row_id, "generation", str(exc))
                    return None
                spent += outcome.cost_usd
                self._update(row_id, cost_usd=spent)
                if outcome.stopped and not outcome.candidates:
                    kind = "provider" if outcome.stopped.startswith("provider") else "budget"
                    self._fail(row_id, kind, outcome.stopped)
                    return None
                last = outcome.candidates[-1]
                if last.status != "duplicate":
                    break
            assert last is not None
            if last.status == "new":
                self._update(row_id, candidate_id=last.candidate_id, origin=last.origin)
                return last.candidate_id
            kind = {"duplicate": "duplicate", "invalid": "invalid"}.get(last.status, "no-code")
            reason = last.reason or last.status
            if last.status == "duplicate":
                reason += "; nothing encoded"
            self._fail(row_id, kind, reason, origin=last.origin)
            return None

    def _improving_step(self, parent_id: int, number: int) -> str | None:
        """The source of the parent's own parent when the step between them lowered the
        BD-rate (PSNR-Y and PSNR-YUV) in this run; a provider that repeats improving steps
        repeats it once."""
        for row in self._rows(self._known(number)):
            if (
                row.candidate_id == parent_id
                and row.status == "scored"
                and row.parent_id is not None
                and row.bd_rate_vs_parent is not None
                and row.bd_rate_vs_parent < 0
                and row.bd_rate_yuv_vs_parent is not None
                and row.bd_rate_yuv_vs_parent <= 0
            ):
                return self._source(row.parent_id)[0]
        return None

    def _in_flight(self, number: int) -> list[int]:
        """The candidates of iterations not known to ``number`` (in flight while it is
        generated): their runs and scores stay out of its prompt."""
        return [
            row.candidate_id
            for row in self._rows()
            if row.number > self._known(number)
            and row.number != number
            and row.candidate_id is not None
        ]

    def _row_cost(self, row_id: int) -> float:
        with self.store.session() as session:
            row = session.get(EvolutionIteration, row_id)
            return float(row.cost_usd or 0.0) if row is not None else 0.0

    def _measure(self, row_id: int, candidate_id: int, parent_id: int) -> bool:
        """Score on the training clips; BD-rate vs parent and x264. False after a failure."""
        with self._stage(row_id, "score"):
            source, name = self._source(candidate_id)
            try:
                outcomes = self._score(source, name, self.clips.training, parent_id)
            except ValidationError as exc:
                self._fail(row_id, "invalid", str(exc))
                return False
            except SandboxError as exc:
                self._fail(row_id, f"sandbox-{self._failed_stage(candidate_id)}", str(exc))
                return False
            vs_parent, problem = bd_rate_between(
                self.store,
                self.settings,
                candidate_id,
                parent_id,
                self.clips.training_ids,
                self.config.qualities,
            )
            vs_parent_yuv, _ = bd_rate_between(
                self.store,
                self.settings,
                candidate_id,
                parent_id,
                self.clips.training_ids,
                self.config.qualities,
                "psnr_yuv",
            )
            x264 = [outcome.bd_rate_vs.get(X264) for outcome in outcomes]
            known = [v for v in x264 if v is not None]
            vs_x264 = sum(known) / len(known) if len(known) == len(x264) else None
            seconds = [point.decode_seconds for outcome in outcomes for point in outcome.points]
            values = dict(
                bd_rate_vs_parent=vs_parent,
                bd_rate_yuv_vs_parent=vs_parent_yuv,
                bd_rate_vs_x264=vs_x264,
                decode_seconds=sum(seconds) / len(seconds),
            )
            if vs_parent is None or vs_x264 is None:
                why = problem if vs_parent is None else "BD-rate vs x264 undefined"
                self._fail(row_id, "bd-undefined", f"scored, but {why}", **values)
                return False
            self._update(row_id, **values)
        return True

    def _failed_stage(self, candidate_id: int) -> str:
        with self.store.session() as session:
            stage = session.scalar(
                select(RunRecord.stage)
                .where(
                    RunRecord.candidate_id == candidate_id,
                    RunRecord.status == "failed",
                    RunRecord.stage != CANCELLED,
                )
                .order_by(RunRecord.id.desc())
            )
        return stage or "run"

    def _decide(self, row_id: int, candidate_id: int) -> None:
        """Apply the adoption policy (on the holdout clips when there are any)."""
        with self._stage(row_id, "adopt"):
            evaluation = self.clips.training_ids
            if self.clips.holdout:
                reference = current_best(self.store) or self.start_id
                gain, problem = bd_rate_between(
                    self.store,
                    self.settings,
                    candidate_id,
                    reference,
                    self.clips.training_ids,
                    self.config.qualities,
                )
                if gain is None or gain >= -self.config.threshold:
                    figure = problem if gain is None else f"{gain:+.2f} %"
                    self._update(
                        row_id,
                        adopted=False,
                        reason=f"not adopted: BD-rate vs candidate {reference} on the training "
                        f"clips is {figure}, not below -{self.config.threshold:g} %; holdout "
                        "clips not run",
                    )
                    return
                source, name = self._source(candidate_id)
                try:
                    self._score(source, name, self.clips.holdout, self.start_id)
                except (SandboxError, ValidationError) as exc:
                    self._update(
                        row_id, adopted=False, reason=f"not adopted: fails on a holdout clip: {exc}"
                    )
                    return
                evaluation = self.clips.holdout_ids
            decision = adopt(
                self.store,
                self.settings,
                candidate_id,
                evaluation,
                self.config.qualities,
                repo_path=Path(self.config.git_repo),
            )
            self._update(
                row_id,
                adopted=decision.adopted,
                adoption_id=decision.record_id,
                reason=decision.reason,
            )


# --- starting, resuming, reading -----------------------------------------------------------


def start_evolution(
    store: Store,
    settings: Settings,
    config: EvolveConfig,
    on_event: Callable[[EvolveEvent], None] | None = None,
) -> EvolveSummary:
    """Begin a new run and carry it out."""
    if config.iterations < 1:
        raise EvolutionError("--iterations must be 1 or more")
    if config.parallel < 1:
        raise EvolutionError(f"--parallel must be 1 or more, not {config.parallel}")
    if len(config.qualities) < 4:
        raise EvolutionError("--qualities needs at least 4 values: BD-rate needs 4 rate points")
    if config.planner not in ("auto", "model", "rules"):
        raise EvolutionError(f"planner {config.planner!r} is not auto, model or rules")
    refuse_live_run(store, settings.evolve_live_timeout_s, settings.host)
    check_codec_repo(Path(config.git_repo))
    load_ladder(settings.ladder_file).select(config.encoders)
    clips = _load_clips(store, settings, config)
    config.videos = [
        ClipSpec(**{**asdict(spec), "content_hash": clip.content_hash})
        for spec, clip in zip(config.videos, clips.training, strict=True)
    ]
    config.holdout = [
        ClipSpec(**{**asdict(spec), "content_hash": clip.content_hash})
        for spec, clip in zip(config.holdout, clips.holdout, strict=True)
    ]
    provider, reason = select_provider(settings, config.provider, seed=config.seed, store=store)
    refuse_unpriced_budget(provider, config.max_cost)
    if provider.capabilities.writes_code_by_model:
        refuse_unisolated_model_code(settings)
    start = resolve_parent(store, config.parent, config.qualities, clips.training_ids)
    assert start.id is not None
    run = EvolutionRun(
        batch=uuid.uuid4().hex,
        status="running",
        iterations_planned=config.iterations,
        provider=provider.name,
        provider_reason=reason,
        seed=config.seed,
        start_parent_id=start.id,
        config_json=config.to_json(),
    )
    run_id = add_run(store, run, settings.evolve_live_timeout_s, settings.host)  # or refused
    try:
        evolution = Evolution(
            store, settings, config, run_id, on_event, clips=clips, provider=(provider, reason)
        )
    except AicodecError as exc:
        _set_run_status(store, run_id, "failed", f"could not start: {scrub(str(exc))[:500]}")
        raise
    except Exception as exc:  # unexpected: left resumable
        with suppress(Exception):
            _set_run_status(store, run_id, "interrupted", internal_reason(exc), finished=False)
        raise EvolveCrashed(run_id, 0, "setup", exc) from exc
    with _carried_out(store, settings, run_id):
        return evolution.run(new=True)


def _carried_out(store: Store, settings: Settings, run_id: int) -> AbstractContextManager[None]:
    """Hold the run for this process (heartbeats) while it is carried out."""
    return carrying_out(
        store,
        run_id,
        heartbeat_s=settings.evolve_heartbeat_s,
        timeout_s=settings.evolve_live_timeout_s,
        host=settings.host,
    )


def resume_evolution(
    store: Store,
    settings: Settings,
    on_event: Callable[[EvolveEvent], None] | None = None,
    *,
    max_cost: float | None = None,
    max_minutes: float | None = None,
) -> EvolveSummary:
    """Carry the last unfinished run on to its planned iteration count (refused while a run
    is live; a dead one is taken over)."""
    refuse_live_run(store, settings.evolve_live_timeout_s, settings.host)
    run_id = unfinished_run(store)
    with store.session() as session:
        run = session.get(EvolutionRun, run_id)
        assert run is not None
        config = EvolveConfig.from_json(run.config_json, settings)
    if max_cost is not None:
        config.max_cost = max_cost
    if max_minutes is not None:
        config.max_minutes = max_minutes
    try:
        evolution = Evolution(store, settings, config, run_id, on_event)
    except AicodecError:
        raise
    except Exception as exc:  # unexpected: the run is left as it was, resumable
        raise EvolveCrashed(run_id, 0, "setup", exc) from exc
    refuse_unpriced_budget(evolution.provider, config.max_cost)
    if evolution.provider.capabilities.writes_code_by_model:
        refuse_unisolated_model_code(settings)
    with _carried_out(store, settings, run_id):
        return evolution.run()
