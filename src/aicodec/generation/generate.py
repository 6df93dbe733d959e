"""Generating candidates: choose a provider, prompt it with the lab's history, keep valid code."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aicodec.candidates import code_hash, read_candidate
from aicodec.candidates.contract import DEFAULT_QUALITIES
from aicodec.candidates.edits import EditError, extract_candidate
from aicodec.candidates.records import record_candidate
from aicodec.errors import GenerationError, ProviderError
from aicodec.generation.prompts import ParentCodec, generate_prompt, repair_prompt
from aicodec.providers.base import (
    ModelReply,
    Prompt,
    Provider,
    ProviderCallError,
    TrialScope,
    price_table,
    refuse_unpriced_budget,
)
from aicodec.providers.replay import prompt_hash
from aicodec.settings import Settings, data_dir
from aicodec.store import GenerationRecord, ModelCall, Store
from aicodec.store.queries.candidates import (
    candidate_with_code,
    find_candidate,
    generation_rounds,
)
from aicodec.store.queries.points import (
    best_candidate,
    current_best,
    normal_qualities,
    scored_clips,
)
from aicodec.validation import validate_source

if TYPE_CHECKING:
    from aicodec.evolution.planner import PastIteration

SECRET_VARIABLES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_AUTH_TOKEN")
DEFAULT_SEED = "hybrid.py"  # the starting codec when nothing is adopted or scored
SCOPE_CLIPS = 8  # clips of the parent's latest scores a local provider learns on, at most
OFFLINE_SEARCHES = {"mutation": "mutation search", "tuner": "parameter tuner (Optuna)"}


def scrub(text: str) -> str:
    """``text`` with any API key of the environment replaced by ***."""
    for variable in SECRET_VARIABLES:
        secret = os.environ.get(variable, "")
        if len(secret) >= 8:
            text = text.replace(secret, "***")
    return text


def select_provider(
    settings: Settings, name: str | None, *, seed: int, store: Store
) -> tuple[Provider, str]:
    """The provider to use and why: --provider, else anthropic with a key, else the
    settings' ``offline_provider`` (the tuner unless it says mutation).

    The price table (with ``settings.prices_file`` merged over it) is read here, so a bad
    prices file is refused before anything else happens.
    """
    prices = price_table(settings.prices_file)
    provider: Provider
    chosen = name or settings.provider
    if chosen:
        reason = f"--provider {chosen}"
    elif os.environ.get("ANTHROPIC_API_KEY"):
        chosen, reason = "anthropic", "ANTHROPIC_API_KEY is set"
    else:
        chosen = settings.offline_provider
        reason = f"no ANTHROPIC_API_KEY: offline {OFFLINE_SEARCHES[chosen]}"
    if chosen == "anthropic":
        from aicodec.providers.anthropic_provider import AnthropicProvider

        provider = AnthropicProvider(
            settings.model,
            api_key=os.environ.get("ANTHROPIC_API_KEY"),
            base_url=os.environ.get("ANTHROPIC_BASE_URL"),
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            prices=prices,
        )
    elif chosen == "openai":
        from aicodec.providers.openai_provider import OpenAIProvider

        if not settings.openai_base_url or not settings.openai_model:
            raise ProviderError(
                "the openai provider needs AICODEC_OPENAI_BASE_URL and AICODEC_OPENAI_MODEL "
                "(e.g. http://127.0.0.1:8000/v1 and the served model's name)"
            )
        provider = OpenAIProvider(
            settings.openai_model,
            base_url=settings.openai_base_url,
            api_key=os.environ.get("OPENAI_API_KEY"),
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            prices=prices,
        )
    elif chosen == "mutation":
        from aicodec.providers.mutation import MutationProvider

        provider = MutationProvider(seed=seed, scale=settings.mutation_scale)
    elif chosen == "tuner":
        from aicodec.providers.tuner import TunerProvider

        provider = TunerProvider(
            store,
            seed=seed,
            sampler=settings.tuner_sampler,
            startup_trials=settings.tuner_startup_trials,
        )
    elif chosen == "replay":
        from aicodec.providers.replay import ReplayProvider

        provider = ReplayProvider(Store(settings.replay_db) if settings.replay_db else store)
    else:
        raise ProviderError(
            f"unknown provider {chosen!r}; use anthropic, openai, mutation, tuner, replay"
        )
    return provider, reason


def seed_path(name: str = DEFAULT_SEED) -> Path:
    """A seed codec shipped with the lab."""
    return data_dir("baselines") / "seeds" / name


def resolve_parent(
    store: Store,
    parent: str | None,
    qualities: Sequence[int] = DEFAULT_QUALITIES,
    clip_ids: Collection[int] | None = None,
) -> ParentCodec:
    """The parent codec: a candidate id, a file, or (default) the adopted current best, else
    the best scored candidate at ``qualities`` (on ``clip_ids`` when given), else the hybrid
    seed (``DEFAULT_SEED``)."""
    if parent is not None and parent.isdigit():
        record = find_candidate(store, int(parent))
        if record is None:
            raise GenerationError(f"no candidate with id {parent} in the store")
        return ParentCodec(record.id, record.name, record.source)
    if parent is None:
        best = current_best(store) or best_candidate(store, qualities, clip_ids)
        if best is not None:
            return resolve_parent(store, str(best))
        path = seed_path()
    else:
        path = Path(parent)
    source = read_candidate(path)
    report = validate_source(source)
    if not report.valid:
        raise GenerationError(f"the parent {path} is not a valid codec: {report.violations[0]}")
    origin = "seed" if path.resolve().parent.name == "seeds" else "manual"
    return ParentCodec(record_candidate(store, source, path.name, origin), path.name, source)


@dataclass
class GeneratedCandidate:
    """The outcome of one generation attempt."""

    candidate_id: int | None
    valid: bool
    code_hash: str | None
    parent: int | None
    origin: str
    status: str  # new, duplicate, invalid, failed
    reason: str | None = None
    repairs: int = 0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready outcome: id, valid, code_hash, parent, origin, status, reason, repairs."""
        return {
            "id": self.candidate_id,
            "valid": self.valid,
            "code_hash": self.code_hash,
            "parent": self.parent,
            "origin": self.origin,
            "status": self.status,
            "reason": self.reason,
            "repairs": self.repairs,
        }


@dataclass
class GenerationOutcome:
    """A generate batch: the provider, each candidate's outcome, tokens and cost."""

    provider: str
    model: str
    provider_reason: str
    batch: str
    parent: ParentCodec
    candidates: list[GeneratedCandidate] = field(default_factory=list)
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    stopped: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready batch; ``candidates`` as promised by ``aicodec generate --json``."""
        return {
            "provider": self.provider,
            "model": self.model,
            "why": self.provider_reason,
            "batch": self.batch,
            "parent": self.parent.id,
            "candidates": [candidate.to_dict() for candidate in self.candidates],
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "stopped": self.stopped,
        }


def log_call(
    store: Store, provider: Provider, prompt: Prompt, batch: str, iteration: int | None = None
) -> tuple[ModelReply, int]:
    """Ask the provider; the call is stored (prompt, answer or error, tokens, cost; the evolve
    ``iteration`` it is made for, where one is given) either way.

    Returns the reply and the call's id; ProviderError after logging a failed call.
    """
    row = ModelCall(
        batch=batch,
        iteration=iteration,
        provider=provider.name,
        model=provider.model,
        purpose=prompt.purpose,
        prompt_hash=prompt_hash(prompt),
        system_prompt=scrub(prompt.system),
        messages_json=scrub(json.dumps(prompt.messages)),
        input_tokens=0,
        output_tokens=0,
        cache_read_tokens=0,
        cache_write_tokens=0,
        cost_usd=0.0,
        latency_s=0.0,
        retries=0,
    )
    try:
        reply = provider.complete(prompt)
    except ProviderError as exc:
        if isinstance(exc, ProviderCallError):
            row.retries, row.latency_s = exc.failure.retries, exc.failure.latency_s
        row.error = scrub(str(exc))
        _save_call(store, row)
        raise
    row.model = reply.model
    row.response_text = scrub(reply.text)
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "latency_s",
        "retries",
    ):
        setattr(row, name, getattr(reply, name))
    return reply, _save_call(store, row)


def _save_call(store: Store, row: ModelCall) -> int:
    with store.session() as session:
        session.add(row)
        session.flush()
        return row.id


class _Batch:
    """One generate invocation: logs every call, tracks the budgets, records outcomes."""

    def __init__(
        self,
        store: Store,
        provider: Provider,
        outcome: GenerationOutcome,
        iteration: int | None = None,
    ) -> None:
        self.store, self.provider, self.outcome = store, provider, outcome
        self.iteration = iteration  # the evolve iteration its calls are logged under

    def call(self, prompt: Prompt) -> tuple[ModelReply, int]:
        """One logged model call; the outcome's tokens and cost grow with it."""
        reply, call_id = log_call(
            self.store, self.provider, prompt, self.outcome.batch, self.iteration
        )
        outcome = self.outcome
        outcome.calls += 1
        outcome.input_tokens += reply.input_tokens + reply.cache_read_tokens
        outcome.output_tokens += reply.output_tokens
        outcome.cost_usd += reply.cost_usd
        return reply, call_id

    def record(self, result: GeneratedCandidate, call_id: int | None = None) -> None:
        """Store the attempt and add it to the outcome."""
        self.outcome.candidates.append(result)
        with self.store.session() as session:
            session.add(
                GenerationRecord(
                    batch=self.outcome.batch,
                    provider=self.provider.name,
                    model=self.provider.model,
                    parent_id=result.parent,
                    candidate_id=result.candidate_id,
                    model_call_id=call_id,
                    status=result.status,
                    reason=result.reason,
                    repairs=result.repairs,
                )
            )

    def keep(
        self, source: str, origin: str, repairs: int, call_id: int | None, reason: str | None = None
    ) -> None:
        """Validate a generated source and store it, or record why it was not kept."""
        parent = self.outcome.parent
        report = validate_source(source)
        digest = code_hash(source)
        if not report.valid:
            reason = f"validate: {report.violations[0]}"
            self.record(
                GeneratedCandidate(
                    None, False, digest, parent.id, origin, "invalid", reason, repairs
                ),
                call_id,
            )
            return
        existing = candidate_with_code(self.store, digest)
        if existing is not None:
            self.record(
                GeneratedCandidate(
                    existing,
                    True,
                    digest,
                    parent.id,
                    origin,
                    "duplicate",
                    f"same code as candidate {existing}",
                    repairs,
                ),
                call_id,
            )
            return
        name = f"{origin}-{digest[:12]}.py"
        new_id = record_candidate(self.store, source, name, origin, parent.id)
        self.record(
            GeneratedCandidate(new_id, True, digest, parent.id, origin, "new", reason, repairs),
            call_id,
        )

    def over_budget(self, max_cost: float | None, max_tokens: int | None) -> str | None:
        """Which budget is spent, if any."""
        outcome = self.outcome
        if max_cost is not None and outcome.cost_usd >= max_cost:
            return f"max-cost {max_cost} USD reached ({outcome.cost_usd:.4f} USD spent)"
        total = outcome.input_tokens + outcome.output_tokens
        if max_tokens is not None and total >= max_tokens:
            return f"max-tokens {max_tokens} reached ({total} tokens used)"
        return None


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate and what the model is shown.

    ``count`` candidates, each with up to ``repairs`` repair calls, within ``max_cost``
    (USD) and ``max_tokens``; ``plan`` is the step to take; ``batch_id`` groups the calls (an
    evolve run passes its own); ``clip_ids`` limits the scores shown to those clips;
    ``repeat_from`` (the parent's parent, after a step that helped) lets a provider that
    repeats improving steps repeat it first; the runs and scores of the ``hidden``
    candidates (still being scored) are not shown; ``qualities`` (a run's) are those the
    scores shown and the best codec are at; ``recent`` is an evolve run's known
    iterations, newest first (else the store's newest evolve run is shown); ``iteration``
    is the evolve iteration the calls are logged under.
    """

    count: int
    repairs: int
    max_cost: float | None = None
    max_tokens: int | None = None
    plan: str | None = None
    batch_id: str | None = None
    clip_ids: Collection[int] | None = None
    repeat_from: str | None = None
    hidden: Collection[int] = ()
    qualities: Sequence[int] | None = None
    recent: Sequence[PastIteration] | None = None
    iteration: int | None = None


def generate_candidates(
    store: Store,
    settings: Settings,
    provider: Provider,
    provider_reason: str,
    parent: ParentCodec,
    request: GenerationRequest,
    progress: Callable[[str], None] | None = None,
) -> GenerationOutcome:
    """Make up to ``request.count`` candidates from ``parent`` with ``provider``; store each
    attempt. ConfigError, before any call, when ``max_cost`` cannot be kept (an unpriced
    model)."""
    count, max_cost = request.count, request.max_cost
    if count < 1:
        raise GenerationError("--n must be 1 or more")
    refuse_unpriced_budget(provider, max_cost)
    outcome = GenerationOutcome(
        provider.name,
        provider.model,
        provider_reason,
        request.batch_id or uuid.uuid4().hex,
        parent,
    )
    batch = _Batch(store, provider, outcome, request.iteration)
    if provider.capabilities.proposes_locally:
        _propose_locally(
            batch, parent, count, request.repeat_from, _trial_scope(store, request, parent.id)
        )
        return outcome
    from aicodec.generation.material import gather

    material = gather(
        store,
        settings,
        parent.id,
        clip_ids=request.clip_ids,
        hidden=request.hidden,
        recent=request.recent,
        qualities=request.qualities,
    )
    for index in range(count):
        outcome.stopped = batch.over_budget(max_cost, request.max_tokens)
        if outcome.stopped:
            break
        if progress is not None:
            progress(f"candidate {index + 1}/{count}: asking {provider.name}")
        prompt = generate_prompt(settings, parent, material, plan=request.plan)
        try:
            _one_candidate(batch, settings, prompt, parent, request.repairs)
        except ProviderError as exc:
            outcome.stopped = f"provider failed: {scrub(str(exc))}"
            break
    return outcome


def _trial_scope(store: Store, request: GenerationRequest, parent_id: int | None) -> TrialScope:
    """The stored evaluations a local provider may learn from: the fitness on the request's
    clips (else the parent's latest scored clips) at its qualities (else the default ones),
    never of the hidden candidates."""
    qualities = tuple(normal_qualities(request.qualities or DEFAULT_QUALITIES))
    clip_ids = request.clip_ids
    if clip_ids is None:
        clip_ids = []
        if parent_id is not None:
            with store.session() as session:
                clip_ids = list(scored_clips(session, parent_id, None, qualities, SCOPE_CLIPS))
    return TrialScope(tuple(clip_ids), qualities, frozenset(request.hidden))


def _propose_locally(
    batch: _Batch, parent: ParentCodec, count: int, repeat_from: str | None, scope: TrialScope
) -> None:
    """Candidates from a provider that proposes them itself (the mutation search, the tuner):
    no prompt, no call; the step it repeats only where it repeats improving steps; what it
    may read of the store's evaluations in ``scope``."""
    from aicodec.providers.mutation import describe

    provider = batch.provider
    capabilities = provider.capabilities
    rounds = generation_rounds(batch.store, parent.id, provider.name)
    if not capabilities.repeats_improving_steps:
        repeat_from = None
    children = provider.propose(
        parent.source, count, attempt=rounds, repeat_from=repeat_from, scope=scope
    )
    for source in children:
        batch.keep(source, capabilities.origin, 0, None, reason=describe(parent.source, source))


def _one_candidate(
    batch: _Batch, settings: Settings, prompt: Prompt, parent: ParentCodec, repairs: int
) -> None:
    """Ask for one candidate, repairing edits that do not apply and validation errors up to
    ``repairs`` times in all (each repair is one more call with the exact error)."""
    origin = batch.provider.capabilities.origin
    for attempt in range(repairs + 1):
        reply, call_id = batch.call(prompt)
        try:
            source = extract_candidate(reply.text, parent.source)
        except EditError as exc:
            if attempt == repairs:
                batch.record(
                    GeneratedCandidate(
                        None, False, None, parent.id, origin, "failed", str(exc), attempt
                    ),
                    call_id,
                )
                return
            prompt = repair_prompt(settings, prompt, reply.text, str(exc), failed_edits=True)
            continue
        except GenerationError as exc:
            batch.record(
                GeneratedCandidate(
                    None, False, None, parent.id, origin, "failed", str(exc), attempt
                ),
                call_id,
            )
            return
        report = validate_source(source)
        if report.valid or attempt == repairs:
            batch.keep(source, origin, attempt, call_id)
            return
        prompt = repair_prompt(settings, prompt, reply.text, str(report.violations[0]))
