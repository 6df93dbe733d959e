"""evolve --parallel: the next iterations are generated while one is scored, and the rows stay
the same however fast each stage runs. Real CLI runs (mutation provider, or the real
anthropic client against the fake Messages API), real sandbox, real SQLite, real git."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aicodec.clips import load_clip
from aicodec.evolution.parents import IslandRule, Member, choose_parent
from aicodec.settings import Settings
from tests.fake_llm import Reply, Sleep, fake_llm_fixture
from tests.test_cli import assert_one_line_error
from tests.test_evolve_bad_states import (
    INTRA,
    QUALITIES,
    REMOVED_ENV,
    Lab,
    Proc,
    crash,
    freeze_sandbox,
    interrupt_and_survivors,
    start_cli,
    stderr_of,
    wait_for,
)
from tests.test_evolve_llm import PARENT, env_for, fenced
from tests.test_generate import aicodec_env
from tests.test_seeds import crop

fake_llm = fake_llm_fixture()
SEED = "3"
ISLANDS = {"AICODEC_EVOLVE_ISLANDS": "1"}  # one island: each parent depends on all known rows
FINISHED = ("scored", "failed")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path("/proc/self/stat").exists(), reason="needs /proc to follow the CLI's processes"
    ),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 128x96, 4-frame clip and a store in which the intra seed is scored on it (x264)."""
    folder = tmp_path_factory.mktemp("parallel")
    clip, db = folder / "tiny.y4m", folder / "template.db"
    crop(load_clip(None, Settings(), count=4).frames, 128, 96, 112, 96).write_y4m(clip)
    scored = aicodec_env(
        "score",
        str(INTRA),
        "--video",
        str(clip),
        "--qualities",
        QUALITIES,
        "--encoders",
        "x264",
        "--db",
        str(db),
        "--json",
    )
    assert scored.returncode == 0, scored.stderr
    return clip, db


def new_lab(template: tuple[Path, Path], folder: Path) -> Lab:
    """A lab in ``folder`` with its own copy of the template store and clip."""
    clip, db = template
    folder.mkdir(parents=True, exist_ok=True)
    lab = Lab(folder, folder / "tiny.y4m", folder / "store.db", folder / "codecs")
    shutil.copyfile(clip, lab.clip)
    with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(lab.db)) as target:
        source.backup(target)
    return lab


def parallel_args(lab: Lab, iterations: int, *extra: str) -> list[str]:
    return [*lab.evolve(iterations, "--parallel", "2", "--seed", SEED), *extra]


def outcome(lab: Lab) -> list[tuple[Any, ...]]:
    """Each iteration as (number, parent code hash, candidate code hash, status, failure kind,
    adopted, BD-rate vs x264): what must not depend on timing."""
    return lab.query(
        "SELECT i.number, p.code_hash, c.code_hash, i.status, i.failure_kind, i.adopted, "
        "i.bd_rate_vs_x264 FROM evolution_iterations i JOIN candidates p ON p.id = i.parent_id "
        "LEFT JOIN candidates c ON c.id = i.candidate_id ORDER BY i.number"
    )


def subjects(lab: Lab) -> list[str]:
    """The codec repository's commit subjects, newest first (none before an adoption)."""
    if not (lab.repo / ".git").exists():
        return []
    done = subprocess.run(
        ["git", "-C", str(lab.repo), "log", "--format=%s"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def run_offline(lab: Lab, iterations: int) -> dict[str, Any]:
    result = aicodec_env(*parallel_args(lab, iterations), "--json", env=ISLANDS)
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["status"] == "finished" and summary["completed"] == iterations
    return summary


@pytest.fixture(scope="module")
def reference(
    template: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Lab, dict[str, Any]]:
    """An uninterrupted --parallel 2 run of 4 iterations and its summary."""
    lab = new_lab(template, tmp_path_factory.mktemp("reference"))
    return lab, run_offline(lab, 4)


def test_parallel_runs_are_deterministic_and_learn_only_from_finished_iterations(
    template: tuple[Path, Path], reference: tuple[Lab, dict[str, Any]], tmp_path: Path
) -> None:
    first, summary = reference
    second = new_lab(template, tmp_path / "again")
    run_offline(second, 4)
    rows = outcome(first)
    assert [row[0] for row in rows] == [1, 2, 3, 4]
    assert outcome(second) == rows  # parents, candidates, outcomes: the same
    assert subjects(second) == subjects(first)  # adoptions committed in the same order
    assert json.loads(first.query("SELECT config_json FROM evolution_runs")[0][0])["parallel"] == 2

    # every parent is the rule's draw from the iterations up to n-2 only
    stored = first.query(
        "SELECT number, parent_id, candidate_id, status, bd_rate_vs_x264, bd_rate_yuv_vs_parent, "
        "started_at, finished_at FROM evolution_iterations ORDER BY number"
    )
    settings = Settings()
    rule = IslandRule(
        1, settings.evolve_explore, settings.evolve_top, settings.evolve_migrate_every
    )
    start = Member(summary["start_candidate"], summary["start_bd_rate_vs_x264"])
    for number, parent, *_ in stored:
        known = [
            (n, Member(c, bd))
            for n, _, c, status, bd, yuv, _, _ in stored
            if n <= number - 2 and status == "scored" and yuv is not None and yuv <= 0
        ]
        assert choose_parent(rule, int(SEED), start, known, number)[0] == parent
    assert stored[0][1] == stored[1][1] == summary["start_candidate"]  # nothing known yet
    # at most two in flight: iteration n began only after iteration n-2 had finished
    for earlier, later in zip(stored, stored[2:], strict=False):
        assert when(later[6]) >= when(earlier[7])


def test_generation_of_the_next_iteration_overlaps_scoring(  # type: ignore[no-untyped-def]
    fake_llm, template: tuple[Path, Path], tmp_path: Path
) -> None:
    codes = [
        PARENT.replace('"chroma_factor": 1.2', f'"chroma_factor": {factor}', 1)
        for factor in (1.5, 2.0)
    ]
    plan = (
        "HYPOTHESIS: coarser chroma saves bits.\nPLAN: raise chroma_factor.\n"
        "EXPECTED BD-RATE: -1 %\nCONFIDENCE: 0.5\n"
    )
    # iteration 1 gets no code (it fails at once); then a slow model: code answers take 1.5 s
    server = fake_llm(
        Reply(plan),
        Reply("I would rather not change anything."),
        *[step for code in codes for step in (Reply(plan), Sleep(1.5, Reply(fenced(code))))],
    )
    lab = new_lab(template, tmp_path / "llm")
    result = aicodec_env(*parallel_args(lab, 3), "--json", env=env_for(server))
    assert result.returncode == 0, result.stderr
    assert server.remaining == 0 and not server.errors
    sent = [request.body["messages"][0]["content"] for request in server.requests]
    assert [text.startswith("# Planning") for text in sent] == [True, False] * 3
    rows = lab.query(
        "SELECT number, status, failure_kind, started_at, finished_at, "
        "stage_seconds_json FROM evolution_iterations ORDER BY number"
    )
    assert [row[:3] for row in rows] == [
        (1, "failed", "no-code"),
        (2, "scored", None),
        (3, "scored", None),
    ]

    # iteration 3 was planned (and its code asked for) while iteration 2 was being scored
    calls = [when(at) for (at,) in lab.query("SELECT created_at FROM model_calls ORDER BY id")]
    seconds = [json.loads(row[5]) for row in rows]
    scored_2 = when(rows[1][4]).timestamp() - seconds[1].get("adopt", 0.0)
    assert calls[4].timestamp() < scored_2
    assert when(rows[2][3]) < when(rows[1][4])  # iteration 3 began before 2 finished
    # so the run took less than its stages one after another
    wall = (when(rows[2][4]) - when(rows[0][3])).total_seconds()
    assert wall < sum(sum(stage.values()) for stage in seconds)

    # each planner saw only iterations up to n-2, whatever had finished: iteration 1 failed
    # before iteration 2 was planned, yet 2's planner was not told; 3's was, and not of 2
    assert "- iteration 1:" not in sent[2]
    assert "- iteration 1: parent" in sent[4] and "failed (no-code)" in sent[4]
    assert "- iteration 2:" not in sent[4]


def test_ctrl_c_with_two_in_flight_then_resume_gives_the_uninterrupted_rows(
    template: tuple[Path, Path],
    reference: tuple[Lab, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = new_lab(template, tmp_path / "interrupted")
    for name, value in ISLANDS.items():
        monkeypatch.setenv(name, value)  # start_cli passes this process's environment on
    process = start_cli(lab, *parallel_args(lab, 4))
    sandbox: dict[int, Proc] = {}

    def two_in_flight_and_frozen() -> bool:
        """Iteration 2 scores with a sandbox child stopped (it cannot finish by itself) and
        iteration 3 already has its candidate."""
        rows = lab.query(
            "SELECT number, stage, status, candidate_id FROM evolution_iterations "
            "WHERE number IN (2, 3) ORDER BY number"
        )
        if len(rows) != 2 or rows[0][1:3] != ("score", "running") or rows[1][3] is None:
            return False
        return freeze_sandbox(process, sandbox)

    left = interrupt_and_survivors(
        lab,
        process,
        "iteration 2 scoring with iteration 3 ready",
        two_in_flight_and_frozen,
        sandbox,
    )
    assert sandbox and left == []
    err = stderr_of(lab)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert "evolve run 1 interrupted in iteration 2 (score)" in err
    assert lab.query("SELECT status FROM evolution_runs") == [("interrupted",)]
    left_rows = lab.query(
        "SELECT number, status, candidate_id IS NOT NULL FROM evolution_iterations ORDER BY number"
    )
    assert left_rows[0][1] in FINISHED
    assert left_rows[1:] == [(2, "interrupted", 1), (3, "interrupted", 1)]  # both in flight

    resumed = lab.resume("--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "finished"
    first, _ = reference
    assert outcome(lab) == outcome(first)
    assert subjects(lab) == subjects(first)


def test_ctrl_c_while_a_slow_model_call_is_in_flight_ends_at_once(  # type: ignore[no-untyped-def]
    fake_llm, template: tuple[Path, Path], tmp_path: Path
) -> None:
    server = fake_llm(Sleep(300, Reply("too late")))  # the worker waits on the model
    lab = new_lab(template, tmp_path / "slow")
    env = {key: value for key, value in os.environ.items() if key not in REMOVED_ENV}
    with open(lab.folder / "evolve.out", "w") as out, open(lab.folder / "evolve.err", "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "aicodec", *parallel_args(lab, 3)],
            stdout=out,
            stderr=err,
            text=True,
            env={**env, **env_for(server)},
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def planning() -> bool:
        """The plan request of iteration 1 is at the server, which holds it."""
        rows = lab.query("SELECT stage, status FROM evolution_iterations")
        return len(server.requests) == 1 and rows == [("plan", "running")]

    try:
        wait_for(lab, process, "iteration 1 asking the model for its plan", planning)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)  # far less than the 300 s the model would take
    finally:
        if process.poll() is None:
            crash(process)
    err_text = stderr_of(lab)
    assert process.returncode == 130 and "Traceback" not in err_text, err_text
    assert "evolve run 1 interrupted in iteration 1 (plan)" in err_text
    assert lab.query("SELECT number, status, stage FROM evolution_iterations") == [
        (1, "interrupted", "plan")
    ]  # iteration 2 waits for iteration 1's generation: it never started
    assert lab.query("SELECT status FROM evolution_runs") == [("interrupted",)]
    assert len(server.requests) == 1


def test_parallel_below_one_is_refused_in_one_line(tmp_path: Path) -> None:
    db, repo = str(tmp_path / "store.db"), str(tmp_path / "codecs")
    refused = aicodec_env("evolve", "--parallel", "0", "--db", db, "--git-repo", repo)
    assert_one_line_error(refused, "--parallel must be 1 or more, not 0")
    by_env = aicodec_env(
        "evolve", "--db", db, "--git-repo", repo, env={"AICODEC_EVOLVE_PARALLEL": "0"}
    )
    assert_one_line_error(by_env, "setting evolve_parallel")
    resume = aicodec_env("evolve", "--resume", "--parallel", "2", "--db", db)
    assert_one_line_error(resume, "drop --parallel")
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT count(*) FROM evolution_runs").fetchall() == [(0,)]
