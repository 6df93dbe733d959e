"""The stages of an evolve iteration, in order: choose a parent, plan, generate, score, decide.

Each stage is a function of the run's context and the iteration so far, and returns the
iteration with what it learned and the row values to store (``Iteration.storing``), or
failed (``Iteration.failing``); the loop runs them in order, marks and times each, and
stores what they return. A new stage (a cheap first run, tuning trials) is one more
function in ``PREPARE_STAGES`` or ``COMPLETE_STAGES``.

The complete stages begin with a cheap first stage (``screen_stage``): a candidate
clearly worse than its parent on a few frames at two qualities stops before the full
evaluation. The prepare stages may run ahead in a worker thread (``parallel`` > 1); the complete
stages run in the loop's thread, one iteration at a time, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from aicodec.adoption import adopt_in_run, bd_rate_between
from aicodec.errors import GenerationError, ProviderError, SandboxError, ValidationError
from aicodec.evolution.context import RunContext
from aicodec.evolution.iteration import Iteration
from aicodec.evolution.parents import Member, choose_parent
from aicodec.evolution.planner import LabFacts, PastIteration, Plan, parse_plan, rule_plan
from aicodec.evolution.tuning import (
    IDEA_ORIGINS,
    RAN,
    TUNED,
    Tuning,
    due_tuning,
    new_structure,
    tuning_plan,
)
from aicodec.generation.generate import (
    GenerationOutcome,
    GenerationRequest,
    generate_candidates,
    log_call,
    scrub,
)
from aicodec.generation.material import gather, past_iteration
from aicodec.generation.prompts import ParentCodec, PromptMaterial, plan_prompt
from aicodec.providers.base import Provider
from aicodec.scoring.bdrate import RDPoint, rate_change_at_equal_psnr
from aicodec.store import EvolutionIteration
from aicodec.store.queries.points import latest_ok_run
from aicodec.store.queries.runs import FINISHED, failed_run_stage

Stage = Callable[[RunContext, Iteration], Iteration]

RECENT_SHOWN = 12  # finished iterations a plan and a prompt may show, newest first
PLAN_NOTE_LIMIT = 500  # characters of a failed model plan's error kept as its note


# --- parent ------------------------------------------------------------------------------------


def is_idea(run: RunContext, row: EvolutionIteration) -> bool:
    """Whether an iteration's codec is an idea: written by a model, of a new structure, and
    it ran in full (scored, or with an undefined BD-rate)."""
    if row.origin not in IDEA_ORIGINS or row.candidate_id is None or row.parent_id is None:
        return False
    if row.status != "scored" and row.failure_kind not in RAN:
        return False
    return new_structure(run.source(row.candidate_id)[0], run.source(row.parent_id)[0])


def tuning_for(run: RunContext, number: int) -> Tuning | None:
    """The tuning iteration ``number`` does, if any: on the ideas it may know, counting the
    tuning iterations before it (those in flight too, so none is assigned twice)."""
    if run.tuner is None or run.config.tune_trials <= 0:
        return None
    ideas = [row.candidate_id for row in run.rows(run.known(number)) if is_idea(run, row)]
    tuned = [
        (row.parent_id, row.failure_kind) for row in run.rows(number - 1) if row.origin == TUNED
    ]
    return due_tuning([idea for idea in ideas if idea is not None], tuned, run.config.tune_trials)


def parent_stage(run: RunContext, it: Iteration) -> Iteration:
    """Choose the parent: the idea a tuning iteration tunes, else by the island rule among
    the codecs the iteration may know."""
    tuning = tuning_for(run, it.number)
    if tuning is not None:
        return replace(it, parent_id=tuning.idea, tuning=tuning).storing(
            parent_id=tuning.idea, parent_rule=tuning.rule(), origin=TUNED
        )
    assert run.start_fitness is not None
    parent_id, why = choose_parent(
        run.config.rule,
        run.config.seed,
        Member(run.start_id, run.start_fitness),
        run.scored(run.known(it.number)),
        it.number,
    )
    return replace(it, parent_id=parent_id).storing(parent_id=parent_id, parent_rule=why)


# --- plan --------------------------------------------------------------------------------------


def recent_iterations(run: RunContext, number: int) -> list[PastIteration]:
    """The finished iterations known to iteration ``number``, newest first (a dozen at most)."""
    rows = sorted(run.rows(run.known(number)), key=lambda item: -item.number)
    with run.store.session() as session:
        finished = [past_iteration(session, row) for row in rows if row.status in FINISHED]
    return finished[:RECENT_SHOWN]


def lab_facts(
    run: RunContext, parent_id: int, number: int, recent: list[PastIteration]
) -> LabFacts:
    """What iteration ``number``'s planner is told: only iterations known to it."""
    scored = sorted(
        run.scored(run.known(number)), key=lambda item: (item[1].fitness, item[1].candidate_id)
    )
    best = [(member.candidate_id, member.fitness) for _, member in scored[:3]]
    if not best and run.start_fitness is not None:
        best = [(run.start_id, run.start_fitness)]
    points = []
    with run.store.session() as session:
        for clip_id in run.clips.training_ids:
            for quality in run.config.qualities:
                found = latest_ok_run(session, parent_id, clip_id, quality)
                if found is not None and found.kbps is not None:
                    points.append(
                        f"clip {clip_id} quality {quality}: {found.kbps:.1f} kbps, "
                        f"PSNR-Y {found.psnr_y:.2f} dB"
                    )
    return LabFacts(parent_id, run.fitness(parent_id), points, best, recent, run.config.threshold)


def plan_material(run: RunContext, parent_id: int, facts: LabFacts) -> PromptMaterial:
    """The planning prompt's material: the facts' summary, the parent on the training clips
    beside the ladder, the known iterations."""
    material = gather(
        run.store,
        run.settings,
        parent_id,
        clip_ids=run.clips.training_ids,
        recent=facts.recent,
        failures=False,
        ladder=run.ladder,
        qualities=run.config.qualities,
    )
    return replace(material, summary=tuple(facts.summary_lines()))


def uses_model_planner(run: RunContext) -> bool:
    """Whether the model plans (planner model, or auto with a provider that plans)."""
    if run.config.planner == "rules":
        return False
    return run.config.planner == "model" or run.provider.capabilities.plans


def model_plan(run: RunContext, parent_id: int, facts: LabFacts, number: int) -> tuple[Plan, float]:
    """The model's plan for iteration ``number`` and its cost (USD); the rules' plan, with a
    note, when the model's answer is unusable (an unreadable answer still cost its call)."""
    prompt = plan_prompt(run.settings, plan_material(run, parent_id, facts))
    cost = 0.0
    try:
        reply, _ = log_call(run.store, run.provider, prompt, run.batch, number)
        cost = reply.cost_usd
        return parse_plan(reply.text), cost
    except (ProviderError, GenerationError) as exc:
        plan = rule_plan(facts)
        plan.planner = "rules (model plan unavailable)"
        plan.note = scrub(str(exc))[:PLAN_NOTE_LIMIT]
        return plan, cost


def plan_stage(run: RunContext, it: Iteration) -> Iteration:
    """Plan the step from the parent: the model's plan or the rules'."""
    assert it.parent_id is not None
    if it.tuning is not None:
        plan = tuning_plan(it.tuning)
        return replace(it, plan=plan).storing(
            planner=plan.planner,
            plan_json=plan.to_json(),
            predicted_bd_rate=None,
            confidence=None,
            cost_usd=0.0,
        )
    recent = recent_iterations(run, it.number)
    facts = lab_facts(run, it.parent_id, it.number, recent)
    plan, cost = (
        model_plan(run, it.parent_id, facts, it.number)
        if uses_model_planner(run)
        else (
            rule_plan(facts),
            0.0,
        )
    )
    return replace(it, plan=plan, recent=tuple(recent), cost_usd=cost).storing(
        planner=plan.planner,
        plan_json=plan.to_json(),
        predicted_bd_rate=plan.predicted_bd_rate,
        confidence=plan.confidence,
        cost_usd=cost,
    )


# --- generate ----------------------------------------------------------------------------------


def improving_step(run: RunContext, parent_id: int, number: int) -> str | None:
    """The source of the parent's own parent when the step between them lowered the
    BD-rate (PSNR-Y and PSNR-YUV) in this run; a provider that repeats improving steps
    repeats it once."""
    for row in run.rows(run.known(number)):
        if (
            row.candidate_id == parent_id
            and row.status == "scored"
            and row.parent_id is not None
            and row.bd_rate_vs_parent is not None
            and row.bd_rate_vs_parent < 0
            and row.bd_rate_yuv_vs_parent is not None
            and row.bd_rate_yuv_vs_parent <= 0
        ):
            return run.source(row.parent_id)[0]
    return None


def in_flight(run: RunContext, number: int) -> list[int]:
    """The candidates of iterations not known to ``number`` (in flight while it is
    generated): their runs and scores stay out of its prompt."""
    return [
        row.candidate_id
        for row in run.rows()
        if row.number > run.known(number) and row.number != number and row.candidate_id is not None
    ]


def _draw(
    run: RunContext,
    it: Iteration,
    provider: Provider,
    repeat_from: str | None,
    hidden: list[int],
) -> GenerationOutcome:
    """One call for one new candidate, within what is left of the run's budget, with the
    ``hidden`` candidates' runs left out of its prompt."""
    assert it.parent_id is not None and it.plan is not None
    source, name = run.source(it.parent_id)
    remaining = None
    if run.config.max_cost is not None:
        remaining = max(0.0, run.config.max_cost - run.cost(it.number - 1) - it.cost_usd)
    request = GenerationRequest(
        count=1,
        repairs=run.config.repairs,
        max_cost=remaining,
        plan=it.plan.text(),
        batch_id=run.batch,
        clip_ids=run.clips.training_ids,
        repeat_from=repeat_from,
        hidden=hidden,
        qualities=run.config.qualities,
        recent=list(it.recent),
        iteration=it.number,
    )
    parent = ParentCodec(it.parent_id, name, source)
    reason = run.provider_reason if provider is run.provider else "tuning a new structure"
    return generate_candidates(
        run.store, run.settings, provider, reason, parent, request, run.progress
    )


def generate_stage(run: RunContext, it: Iteration) -> Iteration:
    """Generate the candidate (drawn again while the draws are duplicates, where the
    provider retries them); failed when none is new."""
    assert it.parent_id is not None
    provider = run.provider
    if it.tuning is not None:
        assert run.tuner is not None
        provider = run.tuner
    capabilities = provider.capabilities
    tries = run.config.duplicate_tries if capabilities.retries_duplicates else 1
    repeat_from = (
        improving_step(run, it.parent_id, it.number)
        if capabilities.repeats_improving_steps
        else None
    )
    hidden = in_flight(run, it.number)
    last = None
    for _ in range(tries):
        try:
            outcome = _draw(run, it, provider, repeat_from, hidden)
        except GenerationError as exc:
            if it.tuning is not None:
                idea = it.tuning.idea
                why = f"tuning of idea {idea} ends; the tuner cannot propose: {exc}"
                return it.failing("generation", why)
            return it.failing("generation", str(exc))
        spent = it.cost_usd + outcome.cost_usd
        it = replace(it, cost_usd=spent).storing(cost_usd=spent)
        run.record(it)  # what was spent is kept even if the lab stops in the next draw
        if outcome.stopped and not outcome.candidates:
            kind = "provider" if outcome.stopped.startswith("provider") else "budget"
            return it.failing(kind, outcome.stopped)
        last = outcome.candidates[-1]
        if last.status != "duplicate":
            break
    assert last is not None
    if last.status == "new":
        return replace(it, candidate_id=last.candidate_id).storing(
            candidate_id=last.candidate_id, origin=last.origin
        )
    kind = {"duplicate": "duplicate", "invalid": "invalid"}.get(last.status, "no-code")
    reason = last.reason or last.status
    if last.status == "duplicate":
        reason += "; nothing encoded"
    return it.failing(kind, reason, origin=last.origin)


def failed_run(run: RunContext, it: Iteration, error: ValidationError | SandboxError) -> Iteration:
    """The iteration failed because its candidate did not pass validation (kind ``invalid``)
    or its run failed (``sandbox-<stage>``, the stage of its last failed run)."""
    assert it.candidate_id is not None
    if isinstance(error, ValidationError):
        return it.failing("invalid", str(error))
    return it.failing(f"sandbox-{failed_run_stage(run.store, it.candidate_id)}", str(error))


# --- screen: the cheap first stage -------------------------------------------------------------


def screen_qualities(run: RunContext) -> list[int]:
    """The first stage's qualities: the run's lowest and highest."""
    return sorted({min(run.config.qualities), max(run.config.qualities)})


def screen_figure(run: RunContext, candidate_id: int, parent_id: int) -> float | None:
    """On the first frames of the training clips at the screen qualities: the mean rate
    the candidate needs more than its parent at equal PSNR-Y (percent); None when the
    parent cannot be measured there (the first stage then stops nothing). Raises the
    candidate's ValidationError or SandboxError."""
    qualities = screen_qualities(run)
    try:
        theirs = run.measure(parent_id, run.clips.screen, qualities)
    except (SandboxError, ValidationError):
        return None
    mine = run.measure(candidate_id, run.clips.screen, qualities)
    figures = [
        rate_change_at_equal_psnr(
            [RDPoint(point.kbps, point.psnr_y) for point in parent.points],
            [RDPoint(point.kbps, point.psnr_y) for point in child.points],
        )
        for parent, child in zip(theirs, mine, strict=True)
    ]
    return sum(figures) / len(figures)


def screen_stage(run: RunContext, it: Iteration) -> Iteration:
    """The cheap first stage: a candidate clearly worse than its parent on the first frames
    of the training clips at two qualities stops here, before the full evaluation."""
    assert it.candidate_id is not None and it.parent_id is not None
    if not run.clips.screen:
        return it
    try:
        figure = screen_figure(run, it.candidate_id, it.parent_id)
    except (ValidationError, SandboxError) as exc:
        return failed_run(run, it, exc)
    limit = run.config.screen_stop_percent
    if figure is None or figure <= limit:
        return it
    frames = run.config.screen_frames
    levels = ",".join(map(str, screen_qualities(run)))
    return it.failing(
        "screen",
        f"stopped at the first stage: on the first {frames} frames at qualities {levels} it "
        f"needs {figure:+.2f} % bits against its parent at equal PSNR-Y (limit +{limit:g} %)",
    )


# --- score -------------------------------------------------------------------------------------


def score_stage(run: RunContext, it: Iteration) -> Iteration:
    """Score on the training clips; BD-rates vs the parent (PSNR-Y, PSNR-YUV) and x264."""
    assert it.candidate_id is not None and it.parent_id is not None
    try:
        outcomes = run.score(it.candidate_id, run.clips.training, it.parent_id)
    except (ValidationError, SandboxError) as exc:
        return failed_run(run, it, exc)
    versus_parent = [
        bd_rate_between(
            run.store,
            run.settings,
            it.candidate_id,
            it.parent_id,
            run.clips.training_ids,
            run.config.qualities,
            metric,
        )
        for metric in ("psnr_y", "psnr_yuv")
    ]
    (vs_parent, problem), (vs_parent_yuv, _) = versus_parent
    x264 = [outcome.bd_rate_vs.get(run.ladder.anchor) for outcome in outcomes]
    known = [value for value in x264 if value is not None]
    vs_x264 = sum(known) / len(known) if len(known) == len(x264) else None
    seconds = [point.decode_seconds for outcome in outcomes for point in outcome.points]
    values = {
        "bd_rate_vs_parent": vs_parent,
        "bd_rate_yuv_vs_parent": vs_parent_yuv,
        "bd_rate_vs_x264": vs_x264,
        "decode_seconds": sum(seconds) / len(seconds),
    }
    if vs_parent is None or vs_x264 is None:
        why = problem if vs_parent is None else "BD-rate vs x264 undefined"
        return it.failing("bd-undefined", f"scored, but {why}", **values)
    return replace(it, outcomes=tuple(outcomes)).storing(**values)


# --- decide ------------------------------------------------------------------------------------


def decide_stage(run: RunContext, it: Iteration) -> Iteration:
    """Apply the adoption policy (on the holdout clips when there are any)."""
    candidate_id = it.candidate_id
    assert candidate_id is not None
    verdict = adopt_in_run(
        run.store,
        run.settings,
        candidate_id,
        training_ids=run.clips.training_ids,
        holdout_ids=run.clips.holdout_ids,
        start_id=run.start_id,
        qualities=run.config.qualities,
        repo_path=Path(run.config.git_repo),
        score_holdout=lambda: run.score(candidate_id, run.clips.holdout, run.start_id),
    )
    return it.storing(adopted=verdict.adopted, adoption_id=verdict.record_id, reason=verdict.reason)


# the stages up to the candidate (may run ahead), then those that score it and decide
PREPARE_STAGES: tuple[tuple[str, Stage], ...] = (
    ("parent", parent_stage),
    ("plan", plan_stage),
    ("generate", generate_stage),
)
COMPLETE_STAGES: tuple[tuple[str, Stage], ...] = (
    ("screen", screen_stage),
    ("score", score_stage),
    ("adopt", decide_stage),
)
