"""The rule that assigns tuning iterations to ideas (model-written new structures)."""

from __future__ import annotations

from pathlib import Path

from aicodec.evolution.tuning import Tuning, due_tuning, new_structure, tuning_plan

SEED = (Path(__file__).resolve().parents[1] / "baselines" / "seeds" / "intra_dct.py").read_text()


def test_the_oldest_idea_is_tuned_until_its_trials_are_assigned() -> None:
    assert due_tuning([7, 9], [], 2) == Tuning(7, 1, 2)
    assert due_tuning([7, 9], [(7, None)], 2) == Tuning(7, 2, 2)
    # one in flight (no outcome yet) counts: it is never assigned twice
    assert due_tuning([7, 9], [(7, None), (7, "screen")], 2) == Tuning(9, 1, 2)
    assert due_tuning([7, 9], [(7, None), (7, None), (9, None), (9, None)], 2) is None
    assert due_tuning([7], [], 0) is None and due_tuning([], [], 3) is None
    # other rows' parents (not tuning this idea) do not count
    assert due_tuning([7], [(5, None), (5, None)], 2) == Tuning(7, 1, 2)


def test_a_tuner_that_cannot_propose_ends_the_ideas_tuning() -> None:
    assert due_tuning([7, 9], [(7, "generation")], 3) == Tuning(9, 1, 3)
    assert due_tuning([7], [(7, "generation")], 3) is None


def test_a_new_structure_is_code_changed_outside_params() -> None:
    params_only = SEED.replace('"tilt": 0.4', '"tilt": 0.9', 1)
    code = SEED.replace("return scale * 7.0 * 2.0", "return scale * 6.0 * 2.0", 1)
    assert params_only != SEED and code != SEED
    assert not new_structure(params_only, SEED)
    assert new_structure(code, SEED)
    no_params = "def encode(frames, quality):\n    return b''\n"
    assert new_structure(no_params, SEED)  # its tuning ends at once, with the reason


def test_a_tuning_plan_names_the_idea_and_predicts_nothing() -> None:
    plan = tuning_plan(Tuning(7, 2, 3))
    assert plan.planner == "rules" and plan.predicted_bd_rate is None
    assert "tune idea 7: trial 2 of 3" in plan.steps
    assert Tuning(7, 2, 3).rule() == "tune idea 7: trial 2 of 3"


def test_tune_trials_come_from_the_settings_and_a_stored_run_keeps_its_own() -> None:
    import json

    from aicodec.evolution.command import EvolveOptions, new_config
    from aicodec.evolution.config import EvolveConfig
    from aicodec.settings import Settings

    settings = Settings(evolve_tune_trials=5)
    assert Settings().evolve_tune_trials == 3
    assert new_config(settings, EvolveOptions(iterations=2)).tune_trials == 5
    config = new_config(settings, EvolveOptions(iterations=2, tune_trials=0))
    assert EvolveConfig.from_json(config.to_json(), settings).tune_trials == 0
    older = json.loads(config.to_json())
    del older["tune_trials"]  # stored before tuning iterations: it goes on without them
    assert EvolveConfig.from_json(json.dumps(older), settings).tune_trials == 0
