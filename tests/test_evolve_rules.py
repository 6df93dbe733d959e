"""The evolve loop's pure parts: the island parent rule and the planners."""

from __future__ import annotations

import pytest

from aicodec.errors import GenerationError
from aicodec.evolution.parents import IslandRule, Member, choose_parent, island_members
from aicodec.evolution.planner import LabFacts, PastIteration, parse_plan, rule_plan

RULE = IslandRule(islands=2, explore=0.0, top=3, migrate_every=4)
START = Member(1, 50.0)


def test_each_island_climbs_from_its_own_best() -> None:
    scored = [(1, Member(2, 40.0)), (2, Member(3, 60.0)), (3, Member(4, 45.0))]
    # iteration 4 works on island 1, which holds the start and candidate 3 (iteration 2)
    assert [m.candidate_id for m in island_members(RULE, START, scored, 4)] == [1, 3]
    # iteration 5 works on island 0: the start, candidates 2 and 4
    assert [m.candidate_id for m in island_members(RULE, START, scored, 5)] == [2, 4, 1]
    assert choose_parent(RULE, 0, START, scored, 5)[0] == 2
    assert choose_parent(RULE, 0, START, scored, 4)[0] == 1
    # only earlier iterations count
    assert [m.candidate_id for m in island_members(RULE, START, scored, 2)] == [1]


def test_the_best_migrates_to_every_island() -> None:
    scored = [
        (1, Member(2, 30.0)),
        (2, Member(3, 60.0)),
        (3, Member(4, 45.0)),
        (4, Member(5, 70.0)),
    ]
    # after iteration 4 (a migration point) the run's best, candidate 2, joins island 1
    members = island_members(RULE, START, scored, 6)
    assert members[0].candidate_id == 2
    assert choose_parent(RULE, 0, START, scored, 6)[0] == 2
    # before the migration, island 1's best was the start
    assert island_members(RULE, START, scored, 4)[0].candidate_id == 1


def test_exploration_draws_from_the_next_best_and_is_reproducible() -> None:
    rule = IslandRule(islands=1, explore=1.0, top=3, migrate_every=100)
    scored = [(1, Member(2, 40.0)), (2, Member(3, 45.0)), (3, Member(4, 48.0))]
    picks = {choose_parent(rule, seed, START, scored, 4)[0] for seed in range(40)}
    assert picks == {3, 4}  # never the best, never beyond the top 3
    first = [choose_parent(rule, 7, START, scored, n) for n in range(4, 12)]
    again = [choose_parent(rule, 7, START, scored, n) for n in range(4, 12)]
    assert first == again
    assert all(why.startswith("explore:") for _, why in first)
    greedy = IslandRule(islands=1, explore=0.0, top=3, migrate_every=100)
    assert {choose_parent(greedy, s, START, scored, 4)[0] for s in range(40)} == {2}
    assert "1 island(s)" in greedy.describe() and "probability 0" in greedy.describe()


PLAN = """Some thinking first.

**ROOT CAUSE:** the motion search is too narrow for the pan.
HYPOTHESIS: widening it finds better vectors.
PLAN:
1. raise search to 16
2. keep subpel at 2
EXPECTED BD-RATE: −3.5 % against the current best
CONFIDENCE: 60%
"""


def test_a_model_plan_is_read_section_by_section() -> None:
    plan = parse_plan(PLAN)
    assert plan.planner == "model"
    assert plan.root_cause == "the motion search is too narrow for the pan."
    assert plan.hypothesis.startswith("widening it")
    assert "raise search to 16" in plan.steps and "keep subpel" in plan.steps
    assert plan.predicted_bd_rate == -3.5
    assert plan.confidence == pytest.approx(0.6)
    assert "EXPECTED BD-RATE: -3.50 %" in plan.text()
    assert parse_plan(PLAN.replace("CONFIDENCE: 60%", "CONFIDENCE: 0.8")).confidence == 0.8
    assert parse_plan(PLAN.replace("CONFIDENCE: 60%", "")).confidence is None


@pytest.mark.parametrize("answer", ["no idea", "ROOT CAUSE: x\nPLAN: y", ""])
def test_an_unreadable_plan_is_an_error(answer: str) -> None:
    with pytest.raises(GenerationError, match="the plan has no"):
        parse_plan(answer)


def past(
    number: int,
    bd: float | None,
    change: str | None = None,
    status: str = "scored",
    kind: str | None = None,
) -> PastIteration:
    return PastIteration(
        number, 1, number + 1, status, kind, "why" if kind else None, change, -1.0, bd
    )


def test_the_rule_planner_predicts_from_recent_outcomes() -> None:
    facts = LabFacts(1, 50.0, ["clip 1 quality 30: 100.0 kbps, PSNR-Y 30.00 dB"], [(1, 50.0)])
    first = rule_plan(facts)
    assert first.planner == "rules" and first.predicted_bd_rate == -1.0
    assert "default settings" in first.root_cause and "100.0 kbps" in first.root_cause
    facts.recent = [
        past(3, -4.0, "tilt 0.4 -> 0.9"),
        past(2, 2.0, "deadzone 0.15 -> 0.3"),
        past(1, -2.0, "tilt 0.4 -> 0.7, search 8 -> 4"),
    ]
    plan = rule_plan(facts)
    assert plan.predicted_bd_rate == pytest.approx(-4.0 / 3)
    assert plan.confidence == pytest.approx(2 / 3)
    assert "tilt moved BD-rate most: mean -3.00 %" in plan.root_cause
    facts.recent = [
        past(5, None, status="failed", kind="sandbox-encode"),
        past(4, None, status="failed", kind="invalid"),
        *facts.recent,
    ]
    failing = rule_plan(facts)
    assert "the last 2 iterations scored nothing" in failing.root_cause
    assert "(sandbox-encode): why" in failing.root_cause
    assert facts.summary_lines()[0].startswith("Parent: candidate 1, mean BD-rate vs x264 +50.00 %")
    assert facts.recent[1].line(1.0).endswith("; predicted -1.00 %; failed (invalid): why")
    assert facts.recent[2].line(1.0) == (
        "- iteration 3: parent 1 -> candidate 4; change: tilt 0.4 -> 0.9; predicted -1.00 %, "
        "measured -4.00 % vs parent: beat the -1 % threshold"
    )
    assert (
        facts.recent[3]
        .line(2.5)
        .endswith("measured +2.00 % vs parent: did not beat the -2.5 % threshold")
    )


def test_a_codec_stopped_at_the_first_stage_ends_a_streak_of_failures() -> None:
    """Failures in a row stop a run only when no codec was measured: a broken provider or
    sandbox. A codec the first stage stopped ran and was judged worse; the lab works."""
    from aicodec.evolution.iteration import failure_streak
    from aicodec.store import EvolutionIteration

    def row(status: str, kind: str | None = None) -> EvolutionIteration:
        return EvolutionIteration(status=status, failure_kind=kind)

    crashes = [row("scored"), row("failed", "sandbox-encode"), row("failed", "invalid")]
    assert [r.failure_kind for r in failure_streak(crashes)] == ["invalid", "sandbox-encode"]
    screened = [row("failed", "invalid"), row("failed", "screen"), row("failed", "no-code")]
    assert [r.failure_kind for r in failure_streak(screened)] == ["no-code"]
    assert failure_streak([row("failed", "screen")] * 6) == []
