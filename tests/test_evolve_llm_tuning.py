"""evolve with a model-written structure tuned by the tuner: the real anthropic client against
a fake Messages API (split from test_evolve_llm.py, so the two files share the test workers)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from aicodec.candidates import code_hash
from aicodec.clips import load_clip
from aicodec.settings import Settings
from tests.fake_llm import Reply, fake_llm_fixture
from tests.test_evolve_llm import (
    FIRST,
    PARENT,
    PLAN_1,
    candidate_hashes,
    env_for,
    evolve_args,
    fenced,
    history_of,
)
from tests.test_generate import aicodec_env

pytestmark = pytest.mark.slow

fake_llm = fake_llm_fixture()


# a new structure: a finer quantiser step written into the code, outside PARAMS
IDEA = PARENT.replace("return scale * 7.0 * 2.0", "return scale * 6.0 * 2.0", 1)
PLAN_IDEA = """ROOT CAUSE: the quantiser step is too coarse at every quality.
HYPOTHESIS: a finer base step (6 instead of 7) gives a better trade-off.
PLAN: change the constant in quality_step; keep PARAMS.
EXPECTED BD-RATE: -1 %
CONFIDENCE: 0.3
"""


def test_tune_trials_tune_a_model_written_structure(  # type: ignore[no-untyped-def]
    fake_llm, tmp_path: Path
) -> None:
    from aicodec.providers.tuner import structure_hash

    assert IDEA != PARENT and structure_hash(IDEA) != structure_hash(PARENT)
    video = tmp_path / "source.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(video)
    db, repo = tmp_path / "store.db", tmp_path / "codecs"
    server = fake_llm(Reply(PLAN_IDEA), Reply(fenced(IDEA)))  # iteration 1 only
    result = aicodec_env(*evolve_args(video, db, repo), "--tune-trials", "2", env=env_for(server))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished" and summary["completed"] == 3

    # the model was asked for iteration 1 only (plan, code); the tuning made no call
    assert len(server.requests) == 2 and server.remaining == 0 and not server.errors
    calls = json.loads(aicodec_env("logs", "--db", str(db), "--json").stdout)["calls"]
    assert sorted((call["iteration"], call["purpose"]) for call in calls) == [
        (1, "generate"),
        (1, "plan"),
    ]

    short, full = history_of(db)
    idea, *tuned = full
    assert idea["origin"] == "llm" and idea["candidate"] is not None and idea["idea"] is None
    assert candidate_hashes(db, [idea]) == [code_hash(IDEA)]
    assert idea["status"] == "scored", idea
    for trial, entry in enumerate(tuned, start=1):
        assert entry["parent"] == entry["idea"] == idea["candidate"]
        assert entry["origin"] == "tuned" and entry["candidate"] is not None
        assert entry["parent_rule"] == f"tune idea {idea['candidate']}: trial {trial} of 2"
        assert entry["planner"] == "rules" and entry["cost_usd"] == 0.0
        assert entry["predicted_bd_rate"] is None
        assert entry["failure_kind"] not in ("generation", "invalid", "duplicate"), entry
    assert [(e["parent"], e["origin"]) for e in short[1:]] == [(idea["candidate"], "tuned")] * 2

    # the tuned codecs are the idea's structure with other PARAMS, stored as tuned
    with closing(sqlite3.connect(db)) as connection:
        rows = {
            row[0]: row[1:]
            for row in connection.execute("SELECT id, source, origin, parent_id FROM candidates")
        }
    sources = [rows[entry["candidate"]][0] for entry in full]
    assert {structure_hash(source) for source in sources} == {structure_hash(IDEA)}
    assert len(set(sources)) == 3
    for entry in tuned:
        assert rows[entry["candidate"]][1:] == ("tuned", idea["candidate"])

    # the report's iterations table names the idea beside each tuned codec's origin
    page = tmp_path / "report.html"
    made = aicodec_env("report", "--db", str(db), "-o", str(page))
    assert made.returncode == 0, made.stderr
    link = (
        f'<td>tuned (idea <a href="#candidate-{idea["candidate"]}">#{idea["candidate"]}</a>)</td>'
    )
    assert page.read_text().count(link) == 2


def test_tuning_an_idea_without_params_ends_and_the_loop_goes_on(  # type: ignore[no-untyped-def]
    fake_llm, tmp_path: Path
) -> None:
    # no PARAMS/PARAM_RANGES literals: nothing the tuner can propose
    untunable = IDEA.replace("PARAMS", "SETTINGS").replace("PARAM_RANGES = {", "RANGES = {", 1)
    assert "PARAMS" not in untunable and "PARAM_RANGES" not in untunable
    video = tmp_path / "source.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(video)
    db, repo = tmp_path / "store.db", tmp_path / "codecs"
    server = fake_llm(
        Reply(PLAN_IDEA), Reply(fenced(untunable)), Reply(PLAN_IDEA), Reply("no code today")
    )
    result = aicodec_env(*evolve_args(video, db, repo), "--tune-trials", "2", env=env_for(server))
    assert result.returncode == 0, result.stderr
    assert server.remaining == 0 and not server.errors and len(server.requests) == 4
    _, (idea, tuned, third) = history_of(db)
    assert idea["status"] == "scored" and idea["origin"] == "llm"
    # one tuning iteration, failed with the reason; the idea is tuned no further
    assert (tuned["parent"], tuned["origin"], tuned["idea"]) == (
        idea["candidate"],
        "tuned",
        idea["candidate"],
    )
    assert tuned["status"] == "failed" and tuned["failure_kind"] == "generation"
    assert tuned["candidate"] is None
    assert tuned["reason"].startswith(
        f"tuning of idea {idea['candidate']} ends; the tuner cannot propose: "
    )
    assert "PARAM_RANGES" in tuned["reason"]
    # iteration 3 asks the model again
    assert third["origin"] != "tuned" and third["failure_kind"] == "no-code"
    assert third["parent_rule"] is not None and not third["parent_rule"].startswith("tune idea")


def test_tuning_under_parallel_assigns_each_trial_once(  # type: ignore[no-untyped-def]
    fake_llm, tmp_path: Path
) -> None:
    video = tmp_path / "source.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(video)
    db, repo = tmp_path / "store.db", tmp_path / "codecs"
    # iteration 2 is prepared before the idea (iteration 1) is known: the model writes it
    server = fake_llm(Reply(PLAN_IDEA), Reply(fenced(IDEA)), Reply(PLAN_1), Reply(fenced(FIRST)))
    args = evolve_args(video, db, repo)
    args[args.index("3")] = "4"
    result = aicodec_env(*args, "--tune-trials", "2", "--parallel", "2", env=env_for(server))
    assert result.returncode == 0, result.stderr
    assert server.remaining == 0 and not server.errors and len(server.requests) == 4
    _, full = history_of(db)
    idea = full[0]["candidate"]
    assert [entry["origin"] for entry in full] == ["llm", "llm", "tuned", "tuned"]
    assert [entry["parent_rule"] for entry in full[2:]] == [
        f"tune idea {idea}: trial 1 of 2",
        f"tune idea {idea}: trial 2 of 2",
    ]
    assert len({entry["candidate"] for entry in full}) == 4
