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

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from aicodec.adoption import check_codec_repo
from aicodec.clips import ClipSpec
from aicodec.errors import (
    AdoptionError,
    AicodecError,
    EvolutionError,
    SandboxError,
    ValidationError,
)
from aicodec.evolution.config import EvolveConfig
from aicodec.evolution.context import RunClips, RunContext, load_run_clips
from aicodec.evolution.events import EvolveCrashed, EvolveEvent, EvolveInterrupted, internal_reason
from aicodec.evolution.feeder import Feeder
from aicodec.evolution.iteration import Iteration, IterationLog, failure_streak, now
from aicodec.evolution.stages import COMPLETE_STAGES, PREPARE_STAGES, Stage
from aicodec.evolution.summary import EvolveSummary, summarise
from aicodec.evolution.tuning import make_tuner
from aicodec.generation.generate import resolve_parent, scrub, select_provider
from aicodec.ladder import load_ladder
from aicodec.providers.base import Provider, refuse_unpriced_budget
from aicodec.sandbox.runner import refuse_unisolated_model_code
from aicodec.settings import Settings
from aicodec.store import EvolutionRun, Store
from aicodec.store.liveness import add_run, carrying_out, refuse_live_run
from aicodec.store.queries.points import current_best
from aicodec.store.queries.runs import FINISHED, history, run_adoptions, unfinished_run

STOP_WAIT_S = 2.0  # after Ctrl-C, how long the worker may take to end the stage it is in


@dataclass(frozen=True)
class _Stop:
    """The run stops before this iteration: its status and why."""

    status: str
    reason: str


class _Halted(Exception):
    """Raised in the worker at its next stage once the run was interrupted."""


def _set_run_status(
    store: Store, run_id: int, status: str, reason: str | None, *, finished: bool = True
) -> None:
    """Write a run's status and stop reason (and when it ended, unless it goes on)."""
    with store.session() as session:
        run = session.get(EvolutionRun, run_id)
        assert run is not None
        run.status, run.stop_reason = status, reason
        run.finished_at = now() if finished else None


class Evolution:
    """One evolve run being carried out (started or resumed): it runs each iteration
    through the stages (``PREPARE_STAGES``, then ``COMPLETE_STAGES``) and stores each
    stage's result through the run's ``IterationLog``."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        config: EvolveConfig,
        run_id: int,
        on_event: Callable[[EvolveEvent], None] | None,
        *,
        clips: RunClips | None = None,
        provider: tuple[Provider, str] | None = None,
    ) -> None:
        """``clips`` and ``provider`` (with its reason) are made here unless given."""
        settings = settings.model_copy(update={"adopt_threshold_percent": config.threshold})
        ladder = load_ladder(settings.ladder_file)
        ladder.select(config.encoders)
        clips = clips or load_run_clips(store, settings, config)
        with store.session() as session:
            row = session.get(EvolutionRun, run_id)
            assert row is not None
            batch, start_id, provider_name = row.batch, row.start_parent_id, row.provider
        chosen, reason = provider or select_provider(
            settings, provider_name, seed=config.seed, store=store
        )
        self.run = RunContext(
            store, settings, config, run_id, batch, ladder, clips, chosen, reason, start_id
        )
        if config.tune_trials > 0 and chosen.capabilities.writes_code_by_model:
            self.run.tuner = make_tuner(settings, store, config.seed)
        self.run.progress = self._emit
        self.log = IterationLog(store, run_id)
        self.run.record = self.log.save
        self.on_event = on_event
        self._local = threading.local()  # each thread works on one iteration at a time
        self._events = threading.Lock()  # on_event is called by one thread at a time
        self._closed = False  # set once the run's loop ended: a late worker emits nothing
        self._stop = threading.Event()  # set on Ctrl-C: the worker starts no further stage

    @property
    def provider(self) -> Provider:
        """The run's model (or offline search)."""
        return self.run.provider

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

    # --- progress ---------------------------------------------------------------------------

    def _emit(self, message: str, row: dict[str, Any] | None = None) -> None:
        if self.on_event is None:
            return
        run = self.run
        known = [member.fitness for _, member in run.scored()]
        if run.start_fitness is not None:
            known.append(run.start_fitness)
        event = EvolveEvent(
            self.number,
            run.config.iterations,
            self.stage,
            message,
            min(known) if known else None,
            len(run_adoptions(run.store, run.run_id)),
            run.cost(),
            row,
        )
        with self._events:
            if not self._closed:
                self.on_event(event)

    # --- the run ----------------------------------------------------------------------------

    def score_start(self) -> None:
        """The run's set-up: score the starting codec (and the adopted best) on every clip,
        once, with the ladder on each clip."""
        run = self.run
        check_codec_repo(Path(run.config.git_repo))
        all_clips = run.clips.training + run.clips.holdout
        for candidate_id in dict.fromkeys([run.start_id, current_best(run.store)]):
            if candidate_id is None:
                continue
            role = "" if candidate_id == run.start_id else "adopted best: "

            def said(message: str, role: str = role) -> None:
                self._emit(f"{role}{message}")

            try:
                run.score(candidate_id, all_clips, progress=said)
            except (SandboxError, ValidationError) as exc:
                raise EvolutionError(
                    f"the starting codec (candidate {candidate_id}) fails: {exc}"
                ) from None
        run.start_fitness = run.fitness(run.start_id)
        if run.start_fitness is None:
            raise EvolutionError(
                f"the starting codec (candidate {run.start_id}) has no BD-rate vs x264 on the "
                "training clips (its RD curve does not overlap x264's); start from another"
            )

    def carry_out(self, *, new: bool = False, began: float | None = None) -> EvolveSummary:
        """Carry out the remaining iterations; the run's summary.

        A new run that cannot start (its starting codec fails, the repository is unusable)
        is marked failed rather than left to be resumed; a resumed one keeps its status.
        ``began`` (``time.monotonic()``; default: now) is when this session's work on the
        run began: the run's set-up time and total time add what this session took.
        """
        began = time.monotonic() if began is None else began
        setup_done = False
        try:
            try:
                self.score_start()
            except AicodecError as exc:
                if new:
                    self._set_status("failed", f"could not start: {scrub(str(exc))[:500]}")
                raise
            except Exception as exc:  # unexpected: the run stays resumable, the points kept
                self.stage = "scoring the starting codec"
                self._crashed(None, exc)
            self._add_time(setup=time.monotonic() - began)
            setup_done = True
            self._set_status("running", None, finished=False)
            status, stop = self._pipeline()
        except BaseException:
            with suppress(Exception):  # the store may be what failed: the error comes first
                spent = time.monotonic() - began
                self._add_time(setup=None if setup_done else spent, total=spent)
            raise
        self._add_time(total=time.monotonic() - began)
        self._set_status(status, stop)
        return summarise(self.run.store, self.run.settings, self.run.run_id)

    def _add_time(self, *, setup: float | None = None, total: float | None = None) -> None:
        """Add this session's set-up time and total time to the run's (seconds)."""
        with self.run.store.session() as session:
            row = session.get(EvolutionRun, self.run.run_id)
            assert row is not None
            if setup is not None:
                row.setup_seconds = (row.setup_seconds or 0.0) + setup
            if total is not None:
                row.total_seconds = (row.total_seconds or 0.0) + total

    def _set_status(self, status: str, reason: str | None, *, finished: bool = True) -> None:
        _set_run_status(self.run.store, self.run.run_id, status, reason, finished=finished)

    def _pipeline(self) -> tuple[str, str | None]:
        """Carry out the remaining iterations; the run's status and stop reason.

        With ``parallel`` K > 1 a worker thread prepares the iterations (parent, plan,
        generate) in order while this thread scores them and decides their adoption in
        order; iteration n is submitted once n-K has finished, so at most K are in flight.
        When a budget or the failure streak stops the run, the iterations already started
        finish and no new one starts. Ctrl-C marks every iteration in flight ``interrupted``.
        """
        total, ahead = self.run.config.iterations, self.run.config.parallel
        feeder = Feeder(self._prepare, _stops_run) if ahead > 1 else None
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
            raise EvolveInterrupted(self.run.run_id, number, self._stage_of(number)) from None
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
        config = self.run.config
        cost = self.run.cost(number - 1)
        if config.max_cost is not None and cost >= config.max_cost:
            return f"max-cost {config.max_cost:g} USD reached ({cost:.4f} USD spent)"
        minutes = self.run.minutes(number - 1)
        if config.max_minutes is not None and minutes >= config.max_minutes:
            return f"max-minutes {config.max_minutes:g} reached ({minutes:.1f} minutes spent)"
        return None

    def _failing(self, number: int) -> str | None:
        """Why the run stops before ``number``: the known iterations end in failures only."""
        streak = failure_streak(self.run.rows(self.run.known(number)))
        if len(streak) < self.run.config.max_failures_in_row:
            return None
        kinds = Counter(row.failure_kind or "unknown" for row in streak)
        listed = ", ".join(f"{kind} x{count}" for kind, count in kinds.most_common())
        return (
            f"{len(streak)} iterations in a row produced no scored codec ({listed}); the last: "
            f"{streak[0].reason}"
        )

    def _prepare(self, number: int) -> Iteration | _Stop | None:
        """Iteration ``number`` through the prepare stages, from where it was left: None
        when nothing is left to do (finished before, or failed here), or why the run stops."""
        self.number = number
        row = {row.number: row for row in self.run.rows(number)}.get(number)
        if row is not None and row.status in FINISHED:
            return None
        budget = self._budget_spent(number)
        if budget:
            return _Stop("stopped", budget)
        failing = self._failing(number)
        if failing:
            return _Stop("failed", failing)
        iteration = self.log.open(number, row)
        if iteration.prepared:
            return iteration
        try:
            return self._through(iteration, PREPARE_STAGES)
        except _Halted:
            return None

    def _complete(self, iteration: Iteration) -> None:
        """A prepared iteration through the complete stages (score, decide)."""
        self.number = iteration.number
        done = self._through(iteration, COMPLETE_STAGES)
        if done is not None:
            self._finish(done, "scored")

    def _through(
        self, iteration: Iteration, stages: tuple[tuple[str, Stage], ...]
    ) -> Iteration | None:
        """Run the stages in order, each marked, timed and stored; None once one failed
        (the iteration is then finished as failed)."""
        for name, stage in stages:
            if self._stop.is_set():
                raise _Halted
            self.stage = name
            with self.log.stage(iteration.row_id, name):
                self._emit(name)
                iteration = stage(self.run, iteration)
                self.log.save(iteration)
            if iteration.failure is not None:
                self._finish(iteration, "failed")
                return None
        return iteration

    def _finish(self, iteration: Iteration, status: str) -> None:
        self.log.finish(iteration, status)
        entry = next(
            item
            for item in history(self.run.store, self.run.run_id)
            if item["iteration"] == iteration.number
        )
        self.stage = "end"
        self._emit(status, entry)

    def _crashed(self, feeder: Feeder | None, error: Exception) -> NoReturn:
        """After an unexpected error: mark the run ``interrupted`` with the error as its stop
        reason (as far as the store still answers), then raise EvolveCrashed."""
        number = self.number
        stage = self.stage
        try:
            stage = self._stage_of(number) if number else stage
            self._halt(feeder, internal_reason(error))
        except Exception:  # the store itself may be what failed
            pass
        raise EvolveCrashed(self.run.run_id, number, stage, error) from error

    def _halt(self, feeder: Feeder | None, reason: str | None = None) -> None:
        """Stop the worker (it ends the stage it is in, waited for briefly), then mark the
        iterations in flight and the run ``interrupted`` (with ``reason`` as its stop
        reason when given)."""
        self._stop.set()
        if feeder is not None:
            feeder.close(STOP_WAIT_S)
        self.log.interrupt(reason)

    def _stage_of(self, number: int) -> str:
        """The stored stage of iteration ``number`` (this thread's when it has no row)."""
        row = {row.number: row for row in self.run.rows(number)}.get(number)
        return row.stage if row is not None else self.stage


def _stops_run(prepared: object) -> bool:
    """Whether the feeder prepares nothing after this: the run stops before it."""
    return isinstance(prepared, _Stop)


# --- starting, resuming, reading -----------------------------------------------------------


def start_evolution(
    store: Store,
    settings: Settings,
    config: EvolveConfig,
    on_event: Callable[[EvolveEvent], None] | None = None,
) -> EvolveSummary:
    """Begin a new run and carry it out."""
    began = time.monotonic()  # the clips' loading is part of the set-up
    if config.iterations < 1:
        raise EvolutionError("--iterations must be 1 or more")
    if config.parallel < 1:
        raise EvolutionError(f"--parallel must be 1 or more, not {config.parallel}")
    if config.tune_trials < 0:
        raise EvolutionError(f"--tune-trials must be 0 or more, not {config.tune_trials}")
    if len(config.qualities) < 4:
        raise EvolutionError("--qualities needs at least 4 values: BD-rate needs 4 rate points")
    if config.planner not in ("auto", "model", "rules"):
        raise EvolutionError(f"planner {config.planner!r} is not auto, model or rules")
    refuse_live_run(store, settings.evolve_live_timeout_s, settings.host)
    check_codec_repo(Path(config.git_repo))
    load_ladder(settings.ladder_file).select(config.encoders)
    clips = load_run_clips(store, settings, config)
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
        return evolution.carry_out(new=True, began=began)


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
    began = time.monotonic()
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
        return evolution.carry_out(began=began)
