"""Cost per gain: the per-percent arithmetic, and a run's spend read from the real store
(iterations' stage seconds, the call log's tokens and dollars per iteration), for a run that
adopted nothing and for calls logged before the store kept their iteration. The figures of
real evolve runs that adopt are checked in test_evolve_llm.py and test_report.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aicodec.evolution.cost import (
    PerPercent,
    Spent,
    cost_of_gain,
    per_percent,
    spent_between,
    spent_in_all,
)
from aicodec.evolution.summary import summarise
from aicodec.settings import Settings
from aicodec.store import CandidateRecord, EvolutionIteration, EvolutionRun, ModelCall, Store
from aicodec.store.queries.costs import run_spend, sandbox_seconds
from tests.test_generate import aicodec_env
from tests.test_store import query, store_at_revision

# seconds per stage of three iterations: plan and generate are not sandbox stages
STAGES = [
    {"parent": 0.5, "plan": 1.0, "generate": 2.0, "screen": 6.0, "score": 30.0, "adopt": 0.5},
    {"parent": 0.5, "plan": 1.0, "generate": 4.0},  # failed before anything ran
    {"plan": 2.0, "generate": 1.0, "score": 54.0, "adopt": 12.0},
]
# (iteration, input, output, cache read, cache write, dollars) of the run's model calls
CALLS = [
    (1, 3000, 200, 0, 0, 0.012),
    (1, 9000, 4000, 500, 0, 0.087),
    (2, 2500, 0, 0, 0, 0.0),  # a failed call costs its input
    (3, 3100, 210, 1000, 300, 0.015),
]


def test_a_cost_per_percent_needs_a_gain_below_zero() -> None:
    assert per_percent(6.0, -1.5) == pytest.approx(4.0)
    assert per_percent(3, -0.25) == pytest.approx(12.0)
    assert per_percent(0.0, -2.0) == 0.0
    for gain in (0.0, 0.7, None):  # no gain, a loss, a gain that could not be measured
        assert per_percent(6.0, gain) is None
    assert per_percent(None, -1.0) is None  # an unknown cost stays unknown


def test_every_figure_of_a_spend_is_divided_by_the_same_gain() -> None:
    spent = Spent(iterations=4, sandbox_minutes=3.0, tokens=20_000, cost_usd=0.5)
    assert cost_of_gain(spent, -2.0) == PerPercent(2.0, 1.5, 10_000.0, 0.25)
    assert cost_of_gain(spent, 0.3) is None and cost_of_gain(spent, None) is None
    unknown = Spent(iterations=2, sandbox_minutes=1.0, tokens=None, cost_usd=None)
    assert cost_of_gain(unknown, -0.5) == PerPercent(4.0, 2.0, None, None)


def test_sandbox_seconds_are_the_stages_that_run_codecs() -> None:
    assert sandbox_seconds(STAGES[0]) == pytest.approx(36.5)
    assert sandbox_seconds(STAGES[1]) == 0.0
    assert sandbox_seconds({}) == 0.0


def write_run(store: Store, calls: list[tuple[int | None, int, int, int, int, float]]) -> int:
    """A finished run of three iterations (STAGES) that adopted nothing, with these model
    calls in its batch, and one call of another batch."""
    config = {"iterations": 3, "videos": [], "threshold": 1.0}
    batch = os.urandom(8).hex()
    with store.session() as session:
        session.add(CandidateRecord(code_hash="c" * 64, source="", name="c", origin="seed"))
        session.flush()
        run = EvolutionRun(
            batch=batch,
            status="finished",
            iterations_planned=3,
            provider="anthropic",
            provider_reason="test",
            seed=0,
            start_parent_id=1,
            config_json=json.dumps(config),
        )
        session.add(run)
        session.flush()
        for number, seconds in enumerate(STAGES, start=1):
            session.add(
                EvolutionIteration(
                    run_id=run.id,
                    number=number,
                    status="failed",
                    stage="end",
                    failure_kind="no-code",
                    parent_id=1,
                    stage_seconds_json=json.dumps(seconds),
                )
            )
        for other, (number, tokens_in, tokens_out, read, write, usd) in [
            *((False, call) for call in calls),
            (True, (1, 7777, 7777, 0, 0, 9.0)),
        ]:
            session.add(
                ModelCall(
                    batch="another" if other else batch,
                    provider="anthropic",
                    model="m",
                    purpose="generate",
                    prompt_hash="p",
                    system_prompt="",
                    messages_json="[]",
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cache_read_tokens=read,
                    cache_write_tokens=write,
                    cost_usd=usd,
                    iteration=number,
                )
            )
        return run.id


def test_a_run_that_adopted_nothing_shows_what_it_cost_in_all(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(str(db))
    run_id = write_run(store, CALLS)
    spend = run_spend(store, run_id)
    assert [item.number for item in spend.iterations] == [1, 2, 3]
    assert [item.tokens for item in spend.iterations] == [16_700, 2500, 4610]
    assert [item.cost_usd for item in spend.iterations] == pytest.approx([0.099, 0.0, 0.015])
    assert spend.unattributed_calls == 0
    # the spans are the store's rows: tokens from the call log, seconds from the stages
    first_two = spent_between(spend, 1, 2)
    assert (first_two.iterations, first_two.tokens) == (2, 16_700 + 2500)
    assert first_two.sandbox_minutes == pytest.approx(36.5 / 60)
    summary = summarise(store, Settings(), run_id)
    store.close()
    cost = summary.cost_per_gain
    assert cost is not None and cost.adoptions == []
    run = cost.run
    assert (run.candidate, run.gain_percent, run.per_percent) == (None, None, None)
    assert run.versus == summary.start_candidate == 1
    assert (run.first_iteration, run.last_iteration) == (1, 3)
    in_all = query(
        f"sqlite:///{db}",
        "SELECT SUM(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens), "
        "SUM(cost_usd) FROM model_calls WHERE batch != 'another'",
    )[0]
    assert (run.spent.tokens, run.spent.cost_usd) == (in_all[0], pytest.approx(in_all[1]))
    assert run.spent.iterations == 3
    assert run.spent.sandbox_minutes == pytest.approx((36.5 + 0.0 + 66.0) / 60)
    assert summary.to_dict()["cost_per_gain"]["adoptions"] == []

    # history says so, with what the run cost in all; the report in a sentence
    shown = aicodec_env("history", "--db", str(db), env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    said = shown.stdout.splitlines()
    said = said[said.index("cost per gain: none, the run adopted nothing; in all it cost") :]
    assert said[1:] == ["  3 iterations, 1.71 sandbox min, 23,810 tokens, 0.1140 USD"]
    assert "per 1 %" not in shown.stdout  # no figure per percent
    report = tmp_path / "report.html"
    built = aicodec_env("report", "--db", str(db), "-o", str(report))
    assert built.returncode == 0, built.stderr
    html = report.read_text()
    assert (
        "The run adopted nothing, so there is no gain to divide by. It cost 3 iterations, "
        "1.71 sandbox minutes, 23,810 model tokens and US$ 0.1140." in html
    )
    assert '<table class="cost-per-gain">' not in html


def test_calls_logged_before_the_store_kept_their_iteration_leave_the_spans_unknown(
    tmp_path: Path,
) -> None:
    url = store_at_revision(f"sqlite:///{tmp_path / 'old.db'}", "0007")
    query(
        url,
        "INSERT INTO model_calls (batch, provider, model, purpose, prompt_hash, "
        "system_prompt, messages_json, input_tokens, output_tokens, cache_read_tokens, "
        "cache_write_tokens, cost_usd, latency_s, retries, created_at) VALUES ('old', "
        "'anthropic', 'm', 'plan', 'p', '', '[]', 100, 20, 0, 0, 0.5, 1.0, 0, "
        "'2026-01-01 00:00:00')",
    )
    store = Store(url)  # migrated: the old call names no iteration
    run_id = write_run(store, [(1, 10, 5, 0, 0, 0.25)])
    query(
        url, "UPDATE model_calls SET batch = (SELECT batch FROM evolution_runs) WHERE batch = 'old'"
    )
    spend = run_spend(store, run_id)
    store.close()
    assert spend.unattributed_calls == 1
    span = spent_between(spend, 1, 3)
    assert (span.iterations, span.tokens, span.cost_usd) == (3, None, None)
    whole = spent_in_all(spend)
    assert (whole.tokens, whole.cost_usd) == (135, pytest.approx(0.75))
