"""The offline tuner (Optuna): its study is rebuilt from a real store, so a resumed or second
run proposes what the uninterrupted one did; seeds, the search space, clear errors, evolve."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from aicodec.candidates import code_hash
from aicodec.candidates.records import record_candidate
from aicodec.clips import load_clip
from aicodec.clips.records import record_clip
from aicodec.errors import ConfigError, GenerationError
from aicodec.generation.generate import select_provider
from aicodec.providers.base import TrialScope
from aicodec.providers.mutation import NO_TUNABLES, MutationProvider
from aicodec.providers.tuner import (
    TunerProvider,
    search_space,
    structure_hash,
)
from aicodec.settings import Settings
from aicodec.store import EvolutionIteration, EvolutionRun, ScoreRecord, Store
from aicodec.store.queries.points import anchor_name, fitness
from tests.test_evolve import INTRA, evolve_args, rows
from tests.test_generate import aicodec_env
from tests.test_mutation import params_of
from tests.test_seeds import crop

QUALITIES = (20, 40, 60, 80)


def objective(source: str) -> float:
    """A made-up BD-rate of an intra_dct codec, smooth in its PARAMS (lowest near
    quant_scale 2, tilt 1, deadzone 0.2, block 8)."""
    params = params_of(source)
    return round(
        10 * (float(params["quant_scale"]) - 2) ** 2  # type: ignore[arg-type]
        + 3 * (float(params["tilt"]) - 1) ** 2  # type: ignore[arg-type]
        + 20 * (float(params["deadzone"]) - 0.2) ** 2  # type: ignore[arg-type]
        + (0.0 if params["block"] == 8 else 1.5)
        - 5,
        6,
    )


def write_score(store: Store, candidate: int, clip: int, value: float) -> None:
    """A stored score of the candidate on the clip: its BD-rate against the anchor."""
    with store.session() as session:
        session.add(
            ScoreRecord(
                candidate_id=candidate,
                clip_id=clip,
                qualities=",".join(map(str, QUALITIES)),
                bd_rate_json=json.dumps({anchor_name(): value, "x265-medium": value + 10}),
            )
        )


def write_failed_iteration(store: Store, candidate: int, number: int) -> None:
    """An evolve iteration that ran the candidate and failed at the first stage."""
    with store.session() as session:
        run = session.query(EvolutionRun).first()
        if run is None:
            run = EvolutionRun(
                batch="b" * 32,
                status="running",
                iterations_planned=20,
                provider="tuner",
                provider_reason="test",
                seed=0,
                start_parent_id=1,
                config_json="{}",
            )
            session.add(run)
            session.flush()
        session.add(
            EvolutionIteration(
                run_id=run.id,
                number=number,
                status="failed",
                stage="end",
                candidate_id=candidate,
                failure_kind="screen",
                reason="stopped at the first stage",
            )
        )


def snapshot(db: Path, to: Path) -> Path:
    """A copy of a SQLite store as it is now (SQLite's backup, WAL included)."""
    with sqlite3.connect(db) as source, sqlite3.connect(to) as target:
        source.backup(target)
    return to


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Store, Path, int, int]:
    """A real store with a clip and the intra seed scored on it: store, file, clip, seed id."""
    db = tmp_path / "store.db"
    store = Store(str(db))
    clip = record_clip(store, load_clip(None, Settings(), count=2))
    parent = INTRA.read_text(encoding="utf-8")
    seed_id = record_candidate(store, parent, "intra_dct.py", "seed")
    write_score(store, seed_id, clip, objective(parent))
    return store, db, clip, seed_id


@pytest.mark.slow  # a dozen Optuna studies, the GP ones fitted with torch
@pytest.mark.parametrize(("sampler", "steps"), [("tpe", 8), ("gp", 4)])
def test_a_study_rebuilt_from_a_real_store_proposes_what_the_uninterrupted_run_did(
    seeded: tuple[Store, Path, int, int], tmp_path: Path, sampler: str, steps: int
) -> None:
    store, db, clip, seed_id = seeded
    parent = INTRA.read_text(encoding="utf-8")
    scope = TrialScope((clip,), QUALITIES)
    # the uninterrupted run: one provider, each child evaluated and stored before the next
    running = TunerProvider(store, seed=5, sampler=sampler)
    proposed: list[str] = []
    snapshots: list[Path] = []
    for step in range(steps):
        snapshots.append(snapshot(db, tmp_path / f"step{step}.db"))
        [child] = running.propose(parent, scope=scope)
        proposed.append(child)
        candidate = record_candidate(store, child, f"c{step}.py", "mutation", seed_id)
        if step == 2:
            write_failed_iteration(store, candidate, step)  # a trial with the worst value
        else:
            write_score(store, candidate, clip, objective(child))
    # every child changes only PARAMS, within range, and differs from all before it
    assert len({code_hash(child) for child in proposed}) == steps
    assert {structure_hash(child) for child in proposed} == {structure_hash(parent)}
    # each step's study rebuilt from the store as it was: a fresh provider, a fresh store
    for step, path in enumerate(snapshots):
        rebuilt = TunerProvider(Store(str(path)), seed=5, sampler=sampler)
        assert rebuilt.propose(parent, scope=scope) == [proposed[step]], step
    # the trials are the stored evaluations: scored ones at their fitness on the scope's
    # clip and qualities, the failed one pruned (below every scored one for TPE)
    study = TunerProvider(store, seed=5, sampler=sampler).study(parent, scope)
    trials = study.study.trials
    scored = [objective(parent)] + [objective(c) for i, c in enumerate(proposed) if i != 2]
    assert [trial.value for trial in trials if trial.state == TrialState.COMPLETE] == scored
    pruned = [trial.params for trial in trials if trial.state == TrialState.PRUNED]
    assert pruned == [params_of(proposed[2])]
    assert study.trials == steps + 1 and len(study.seen) == steps + 1
    assert fitness(store, seed_id, [clip], QUALITIES) == objective(parent)


@pytest.mark.slow  # a few Optuna studies
def test_the_same_seed_gives_the_same_children_and_another_seed_others(
    seeded: tuple[Store, Path, int, int],
) -> None:
    store, _, clip, _ = seeded
    parent = INTRA.read_text(encoding="utf-8")
    scope = TrialScope((clip,), QUALITIES)
    first = TunerProvider(store, seed=3).propose(parent, 3, scope=scope)
    assert TunerProvider(store, seed=3).propose(parent, 3, scope=scope) == first
    assert TunerProvider(store, seed=4).propose(parent, 3, scope=scope) != first
    assert len(set(first)) == 3 and parent not in first
    # another candidate of the same structure as the parent: the same study, same children
    sibling = MutationProvider(seed=1).propose(parent)[0]
    record_candidate(store, sibling, "sibling.py", "mutation")
    after = TunerProvider(store, seed=3).propose(parent, 1, scope=scope)
    assert TunerProvider(store, seed=3).propose(sibling, 1, scope=scope) == after
    assert after[0] not in (parent, sibling)


def test_param_ranges_of_each_kind_map_to_the_right_distribution() -> None:
    params: dict[str, object] = {
        "block": 8,
        "entropy": "lzma",
        "steps": 3,
        "scale": 1.0,
        "mixed": 2,
        "fixed": 5,
        "free": 1.5,
        "lonely": "a",
        "odd": 4,
        "flag": True,
    }
    ranges: dict[str, object] = {
        "block": [4, 8, 16],
        "entropy": ["zlib", "lzma"],
        "steps": (1, 10),
        "scale": (0.25, 4.0),
        "mixed": (0, 4.5),
        "fixed": (5, 5),
        "lonely": ["a"],
        "odd": (1, 2, 3),
        "flag": [False, True],
    }
    space = search_space(params, ranges)
    assert list(space) == ["block", "entropy", "steps", "scale", "mixed", "flag"]
    assert space["block"] == CategoricalDistribution([4, 8, 16])
    assert space["entropy"] == CategoricalDistribution(["zlib", "lzma"])
    assert space["steps"] == IntDistribution(1, 10)
    assert space["scale"] == FloatDistribution(0.25, 4.0)
    assert space["mixed"] == FloatDistribution(0.0, 4.5)
    assert space["flag"] == CategoricalDistribution([False, True])


def test_children_are_in_range_and_never_repeat_a_stored_candidate(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store.db"))
    parent = (
        'PARAMS = {"mode": "a", "n": 1, "label": "kept"}\n'
        'PARAM_RANGES = {"mode": ["a", "b"], "n": (1, 2)}\n'
        "def encode(frames, quality):\n    return b''\n"
    )
    record_candidate(store, parent, "p.py", "manual")
    provider = TunerProvider(store, seed=0)
    seen = {parent}
    for _ in range(3):  # the space holds four PARAMS: the parent's and three others
        [child] = provider.propose(parent)
        assert child not in seen and params_of(child)["label"] == "kept"
        assert params_of(child)["mode"] in ("a", "b") and params_of(child)["n"] in (1, 2)
        seen.add(child)
        record_candidate(store, child, f"{len(seen)}.py", "mutation")
    with pytest.raises(GenerationError, match="no PARAMS within PARAM_RANGES"):
        provider.propose(parent)


def test_a_parent_without_params_gives_the_mutation_providers_error(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store.db"))
    source = "def encode(frames, quality):\n    return b''\n"
    with pytest.raises(GenerationError) as tuner:
        TunerProvider(store).propose(source)
    with pytest.raises(GenerationError) as mutation:
        MutationProvider().propose(source)
    assert str(tuner.value) == str(mutation.value) == NO_TUNABLES
    with pytest.raises(ConfigError):
        TunerProvider(store, sampler="cmaes")
    with pytest.raises(ConfigError):
        TunerProvider(store, startup_trials=-1)


def test_the_structure_hash_leaves_out_only_the_params_literal() -> None:
    parent = INTRA.read_text(encoding="utf-8")
    child = MutationProvider(seed=2).propose(parent)[0]
    assert child != parent and structure_hash(child) == structure_hash(parent)
    assert structure_hash(parent.replace("LIMIT = 32000", "LIMIT = 32001")) != structure_hash(
        parent
    )


def test_the_offline_default_is_the_random_walk_and_the_tuner_uses_tpe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("AICODEC_OFFLINE_PROVIDER")  # conftest pins mutation for other tests
    store = Store(str(tmp_path / "store.db"))
    chosen, why = select_provider(Settings(), None, seed=1, store=store)
    assert chosen.name == "mutation" and why == "no ANTHROPIC_API_KEY: offline mutation search"
    monkeypatch.setenv("AICODEC_OFFLINE_PROVIDER", "tuner")
    chosen, why = select_provider(Settings(), None, seed=1, store=store)
    assert isinstance(chosen, TunerProvider) and chosen.sampler == "tpe"
    assert chosen.startup_trials == 1
    assert why == "no ANTHROPIC_API_KEY: offline parameter tuner (Optuna)"
    # --provider mutation gives the random walk, whatever the default
    chosen, why = select_provider(Settings(), "mutation", seed=1, store=store)
    assert chosen.name == "mutation" and why == "--provider mutation"
    tuner, _ = select_provider(Settings(tuner_sampler="gp"), "tuner", seed=1, store=store)
    assert isinstance(tuner, TunerProvider) and tuner.sampler == "gp"


@pytest.mark.slow  # three real evolve runs
def test_evolve_with_the_tuner_and_a_second_run_continue_the_same_study(
    tmp_path: Path,
) -> None:
    # a 128x96 window of four frames: the test is about the study, not the codec's figures
    clip = tmp_path / "source.y4m"
    crop(load_clip(None, Settings(), count=4).frames, 128, 96, 112, 96).write_y4m(clip)
    whole, split = tmp_path / "whole", tmp_path / "split"
    whole.mkdir(), split.mkdir()
    tuner = ("--provider", "tuner", "--json")
    result = aicodec_env(*evolve_args(clip, whole, 3), *tuner)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["provider"].startswith("tuner") and summary["completed"] == 3
    assert {entry["status"] for entry in summary["iterations"]} == {"scored"}
    # the same budget in two runs on one store: the second run's study holds the first's
    for count in (1, 2):
        result = aicodec_env(*evolve_args(clip, split, count), *tuner)
        assert result.returncode == 0, result.stderr
    sql = "SELECT code_hash FROM candidates WHERE origin = 'mutation' ORDER BY id"
    assert rows(split / "store.db", sql) == rows(whole / "store.db", sql)
    assert len(rows(whole / "store.db", sql)) == 3
    generated = rows(whole / "store.db", "SELECT DISTINCT provider FROM generations")
    assert generated == [("tuner",)]
