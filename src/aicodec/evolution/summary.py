"""An evolve run's summary, read from the store: counts, failures, adoptions, the best codec."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from aicodec.adoption import bd_rate_between
from aicodec.clips import ClipSpec
from aicodec.errors import EvolutionError
from aicodec.evolution.config import EvolveConfig
from aicodec.evolution.cost import CostPerGain, cost_per_gain
from aicodec.settings import Settings
from aicodec.store import EvolutionRun, Store
from aicodec.store.queries.points import fitness
from aicodec.store.queries.runs import FINISHED, history, may_be_best, stored_clip_id


@dataclass
class EvolveSummary:
    """How a run ended: counts, failures by kind, adoptions, the best codec, cost, time."""

    run_id: int
    status: str
    stop_reason: str | None
    provider: str
    planned: int
    completed: int
    scored: int
    failures: dict[str, int]
    adoptions: list[dict[str, Any]]
    start_candidate: int
    start_bd_rate_vs_x264: float | None
    best_candidate: int | None
    best_bd_rate_vs_x264: float | None
    best_vs_start: float | None
    adopted_best: int | None
    adopted_vs_start: float | None
    cost_usd: float
    seconds: float
    iterations: list[dict[str, Any]]
    training_clips: list[dict[str, Any]] = field(default_factory=list)  # name, hash, id
    holdout_clips: list[dict[str, Any]] = field(default_factory=list)  # adoption is decided here
    # what each adopted gain cost since the adoption before it, and the run's cost per gain
    cost_per_gain: CostPerGain | None = None
    # the lab's time on the run, every session added (None: a run from before they were kept):
    # its set-up (clips, ladders, the starting codec's scores), and in all, set-up included;
    # ``seconds`` is the iterations' time
    setup_seconds: float | None = None
    total_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return asdict(self)


def _best_of_run(
    scored: list[dict[str, Any]], start_id: int, start_fitness: float | None
) -> tuple[int, float | None]:
    """The run's best codec (by the one rule: scored, no worse than its parent on PSNR-YUV)
    and its fitness (percent); the start when no iteration beat it."""
    eligible = [entry for entry in scored if may_be_best(entry)]
    best = min(eligible, key=lambda entry: (entry["bd_rate"], entry["candidate"]), default=None)
    if best is not None and (start_fitness is None or best["bd_rate"] < start_fitness):
        return best["candidate"], best["bd_rate"]
    return start_id, start_fitness


def _adoptions(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's adoptions: iteration, candidate, reason."""
    keys = ("iteration", "candidate", "reason")
    return [{key: entry[key] for key in keys} for entry in entries if entry["adopted"]]


def summarise(store: Store, settings: Settings, run_id: int) -> EvolveSummary:
    """A run's summary from the store."""
    with store.session() as session:
        run = session.get(EvolutionRun, run_id)
        if run is None:
            raise EvolutionError(f"no evolve run {run_id} in the store")
        config = EvolveConfig.from_json(run.config_json, settings)
        status, stop, start_id = run.status, run.stop_reason, run.start_parent_id
        provider = f"{run.provider} ({run.provider_reason})"
        setup_seconds, total_seconds = run.setup_seconds, run.total_seconds
    entries = history(store, run_id)
    finished = [entry for entry in entries if entry["status"] in FINISHED]
    scored = [entry for entry in finished if entry["status"] == "scored"]
    clips = config_clips(store, config)
    training_ids = [clip["id"] for clip in clips["training"] if clip["id"] is not None]
    start_fitness = fitness(store, start_id, training_ids, config.qualities)
    best_id, best_fitness = _best_of_run(scored, start_id, start_fitness)
    adoptions = _adoptions(entries)
    adopted = adoptions[-1]["candidate"] if adoptions else None
    settings = settings.model_copy(update={"adopt_threshold_percent": config.threshold})

    def versus_start(candidate: int | None) -> float | None:
        if candidate is None or candidate == start_id:
            return 0.0 if candidate == start_id else None
        value, _ = bd_rate_between(
            store, settings, candidate, start_id, training_ids, config.qualities
        )
        return value

    failed = [entry for entry in finished if entry["status"] == "failed"]
    adopted_vs_start = versus_start(adopted)
    costs = cost_per_gain(
        store,
        settings,
        run_id,
        start_id,
        adoptions,
        training_ids,
        config.qualities,
        adopted_vs_start,
    )
    return EvolveSummary(
        run_id=run_id,
        status=status,
        stop_reason=stop,
        provider=provider,
        planned=config.iterations,
        completed=len(finished),
        scored=len(scored),
        failures=dict(Counter(entry["failure_kind"] or "unknown" for entry in failed)),
        adoptions=adoptions,
        start_candidate=start_id,
        start_bd_rate_vs_x264=start_fitness,
        best_candidate=best_id,
        best_bd_rate_vs_x264=best_fitness,
        best_vs_start=versus_start(best_id),
        adopted_best=adopted,
        adopted_vs_start=adopted_vs_start,
        cost_usd=sum(entry["cost_usd"] or 0.0 for entry in entries),
        seconds=sum(sum(entry["stage_seconds"].values()) for entry in entries),
        iterations=entries,
        training_clips=clips["training"],
        holdout_clips=clips["holdout"],
        cost_per_gain=costs,
        setup_seconds=setup_seconds,
        total_seconds=total_seconds,
    )


def run_clips(store: Store, run_id: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """A run's (default: the last run's) training and holdout clips, each with its name (file
    or builtin:NAME), content hash and store id (None before the run stored it)."""
    with store.session() as session:
        if run_id is None:
            run_id = session.scalar(select(EvolutionRun.id).order_by(EvolutionRun.id.desc()))
        run = session.get(EvolutionRun, run_id) if run_id is not None else None
        if run is None:
            raise EvolutionError(
                f"no evolve run {run_id} in the store"
                if run_id
                else "the store holds no evolve run yet; start one with evolve"
            )
        config = EvolveConfig.from_json(run.config_json)
    return config_clips(store, config)


def config_clips(store: Store, config: EvolveConfig) -> dict[str, list[dict[str, Any]]]:
    """A run config's training and holdout clips: name, content hash, store id (or None)."""

    def described(spec: ClipSpec) -> dict[str, Any]:
        digest = spec.content_hash
        clip_id = stored_clip_id(store, digest) if digest else None
        return {"name": spec.name, "hash": digest, "id": clip_id}

    return {
        "training": [described(spec) for spec in config.videos],
        "holdout": [described(spec) for spec in config.holdout],
    }
