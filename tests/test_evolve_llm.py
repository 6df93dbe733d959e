"""evolve driven by the real anthropic client against a fake Messages API, then replayed."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from aicodec.candidates import code_hash
from aicodec.clips import load_clip
from aicodec.settings import Settings
from tests.fake_llm import FakeLLM, Reply, fake_llm_fixture
from tests.test_generate import aicodec_env

pytestmark = pytest.mark.slow

fake_llm = fake_llm_fixture()
SEED = Path(__file__).resolve().parents[1] / "baselines" / "seeds" / "intra_dct.py"
KEY = "sk-ant-test-EVOLVE-0123456789"
PARENT = SEED.read_text()
# coarser chroma quantisation: a real BD-rate gain on the built-in clip, larger for 2.5
FIRST = PARENT.replace('"chroma_factor": 1.2', '"chroma_factor": 1.5', 1)
THIRD = PARENT.replace('"chroma_factor": 1.2', '"chroma_factor": 2.5', 1)

PLAN_1 = """Here is my analysis.

ROOT CAUSE: chroma is quantised almost as finely as luma, yet PSNR-Y ignores it.
HYPOTHESIS: a coarser chroma quantiser saves bits at equal PSNR-Y.
PLAN: raise chroma_factor from 1.2 to 1.5; keep everything else.
EXPECTED BD-RATE: -2.5 %
CONFIDENCE: 0.6
"""
PLAN_3 = """ROOT CAUSE: chroma still takes a large share of the bits.
HYPOTHESIS: an even coarser chroma quantiser (chroma_factor 2.5) saves more bits.
PLAN: set chroma_factor to 2.5.
EXPECTED BD-RATE: −3.5 %
CONFIDENCE: 70 %
"""


def fenced(code: str) -> str:
    return f"I change the chroma quantiser.\n\n```python\n{code}```\n"


SCRIPT = (
    Reply(PLAN_1, input_tokens=3000, output_tokens=200),
    Reply(fenced(FIRST), input_tokens=9000, output_tokens=4000),
    Reply("no idea"),
    Reply("I would rather not change anything."),
    Reply(PLAN_3, input_tokens=3000, output_tokens=200),
    Reply(fenced(THIRD), input_tokens=9000, output_tokens=4000),
)


def evolve_args(video: Path, db: Path, repo: Path, holdout: str = "none") -> list[str]:
    return [
        "evolve",
        "--video",
        str(video),
        "--qualities",
        "30,50,70,90",
        "--encoders",
        "x264",
        "--iterations",
        "3",
        "--parent",
        str(SEED),
        "--git-repo",
        str(repo),
        "--holdout",
        holdout,
        "--db",
        str(db),
        "--json",
    ]


def env_for(server: FakeLLM, **extra: str) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": server.url,
        "AICODEC_LLM_MAX_RETRIES": "0",
        **extra,
    }


def history_of(db: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``history --json`` and ``history --plans --json`` of the store's last run."""
    short = aicodec_env("history", "--db", str(db), "--json")
    full = aicodec_env("history", "--plans", "--db", str(db), "--json")
    assert short.returncode == 0 and full.returncode == 0, short.stderr + full.stderr
    return json.loads(short.stdout), json.loads(full.stdout)


def candidate_hashes(db: Path, entries: list[dict[str, Any]]) -> list[str | None]:
    """The code hash of each iteration's candidate (None where there is none)."""
    with closing(sqlite3.connect(db)) as connection:
        found = dict(connection.execute("SELECT id, code_hash FROM candidates").fetchall())
    return [found[entry["candidate"]] if entry["candidate"] else None for entry in entries]


def git(repo: Path, *args: str) -> list[str]:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.splitlines()


def logged_calls(db: Path) -> list[dict[str, Any]]:
    """``logs -n 50 --json``: every logged model call, newest first."""
    logs = aicodec_env("logs", "--db", str(db), "-n", "50", "--json")
    assert logs.returncode == 0, logs.stderr
    return list(json.loads(logs.stdout)["calls"])


def logged_purposes(calls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(provider, purpose) of every logged model call, oldest first."""
    return [(call["provider"], call["purpose"]) for call in calls][::-1]


SANDBOX_STAGES = ("screen", "score", "adopt")


def check_cost_per_gain(
    db: Path, calls: list[dict[str, Any]], summary: dict[str, Any], first: dict[str, Any]
) -> None:
    """The run adopted iteration 1's codec: the summary's cost per gain is that iteration's
    rows in the store (its ``calls`` in the log, its sandbox stages' seconds), divided by its
    gain against the start, its parent; the run's is every call and iteration; history shows
    it."""
    cost = summary["cost_per_gain"]
    (adopted,) = cost["adoptions"]
    start = summary["start_candidate"]
    assert (adopted["iteration"], adopted["candidate"], adopted["versus"]) == (
        1,
        first["candidate"],
        start,
    )
    assert first["parent"] == start
    assert adopted["gain_percent"] == pytest.approx(first["bd_rate_vs_parent"])
    assert adopted["gain_percent"] < 0
    assert sorted(call["iteration"] for call in calls) == [1, 1, 2, 2, 3, 3]

    def tokens(call: dict[str, Any]) -> int:
        names = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        return sum(call[name] for name in names)

    spent = adopted["spent"]
    assert spent["iterations"] == 1
    assert spent["tokens"] == 3000 + 200 + 9000 + 4000  # the script's plan and code replies
    assert spent["tokens"] == sum(tokens(call) for call in calls if call["iteration"] == 1)
    mine = sum(call["cost_usd"] for call in calls if call["iteration"] == 1)
    assert spent["cost_usd"] == pytest.approx(mine) and mine > 0
    seconds = sum(first["stage_seconds"].get(stage, 0.0) for stage in SANDBOX_STAGES)
    assert spent["sandbox_minutes"] == pytest.approx(seconds / 60) and seconds > 0
    gain = -adopted["gain_percent"]
    assert adopted["per_percent"] == pytest.approx({key: spent[key] / gain for key in spent})
    run = cost["run"]
    assert (run["iteration"], run["candidate"], run["versus"]) == (None, first["candidate"], start)
    assert run["gain_percent"] == summary["adopted_vs_start"] == pytest.approx(-gain)
    assert run["spent"]["iterations"] == 3
    assert run["spent"]["tokens"] == sum(tokens(call) for call in calls)
    assert run["spent"]["cost_usd"] == pytest.approx(summary["cost_usd"])
    assert run["per_percent"] == pytest.approx({key: run["spent"][key] / gain for key in spent})
    # history's table: one row per adoption and one for the run, within 80 columns
    shown = aicodec_env("history", "--db", str(db), env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    table = shown.stdout[shown.stdout.index("cost per gain") :].splitlines()
    assert all(len(line) <= 80 for line in table)
    rows = [line.split("│")[1:-1] for line in table if line.startswith("│")]
    assert [cells[0].strip() for cells in rows] == [
        f"#1: {first['candidate']} vs {start}",
        "per 1 %",
        f"run: {first['candidate']} vs {start}",
        "per 1 %",
    ]
    assert [cell.strip() for cell in rows[0][1:]] == [
        f"{adopted['gain_percent']:.2f}",
        "1",
        f"{spent['sandbox_minutes']:.2f}",
        "16,200",
        f"{spent['cost_usd']:.4f}",
    ]


def test_evolve_with_claude_then_replay(fake_llm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert '"chroma_factor": 1.2' in PARENT and FIRST != PARENT and THIRD != PARENT
    video = tmp_path / "source.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(video)
    db, repo = tmp_path / "store.db", tmp_path / "codecs"
    server = fake_llm(*SCRIPT)

    result = aicodec_env(*evolve_args(video, db, repo), env=env_for(server))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished" and summary["completed"] == 3
    assert summary["failures"] == {"no-code": 1} and summary["cost_usd"] > 0
    assert KEY not in result.stdout + result.stderr

    # what the fake server received: plan, generate per iteration, in order
    assert server.remaining == 0 and not server.errors
    sent = [request.body["messages"][0]["content"] for request in server.requests]
    assert len(sent) == 6
    assert [text.startswith("# Planning") for text in sent] == [True, False] * 3
    assert all(request.path == "/v1/messages" for request in server.requests)
    carried = [
        {request.headers.get("x-api-key"), request.headers.get("authorization")}
        for request in server.requests
    ]
    assert all(KEY in found or f"Bearer {KEY}" in found for found in carried)
    assert "HYPOTHESIS: a coarser chroma quantiser saves bits" in sent[1]  # plan 1 shown
    assert "failed (no-code)" in sent[4]  # the planner of iteration 3 sees the failure
    # both prompts show the parent beside the ladder, its times, and what was tried
    for text in sent:
        assert "The ladder on this clip (kbps at PSNR-Y dB):\n  x264-medium: " in text
        assert "Per-frame PSNR-Y (dB):\n  q30: frame 0 " in text and "(child limit " in text
    for text in sent[2:4]:
        assert (
            "- iteration 1: parent " in text
            and "hypothesis: a coarser chroma quantiser" in text
            and " vs parent: beat the -1 % threshold" in text
        )
    assert "- iteration 2: parent " in sent[5] and "failed (no-code)" in sent[5]
    assert PARENT.splitlines()[0] in sent[1]
    calls = logged_calls(db)  # one logs command for this check and the cost check below
    assert logged_purposes(calls) == [
        ("anthropic", purpose) for purpose in ("plan", "generate") * 3
    ]

    # the history: three iterations, the model planned 1 and 3, rules planned 2
    short, full = history_of(db)
    assert [entry["iteration"] for entry in short] == [1, 2, 3]
    keys = {"iteration", "parent", "origin", "status", "bd_rate", "adopted", "reason"}
    assert all(set(entry) == keys for entry in short)
    first, second, third = full
    assert first["planner"] == "model" and third["planner"] == "model"
    assert (first["predicted_bd_rate"], first["confidence"]) == (-2.5, 0.6)
    assert (third["predicted_bd_rate"], third["confidence"]) == (-3.5, 0.7)
    assert first["hypothesis"] == "a coarser chroma quantiser saves bits at equal PSNR-Y."
    assert second["planner"].startswith("rules") and second["planner"] != "rules"
    assert second["status"] == "failed" and second["failure_kind"] == "no-code"
    assert second["candidate"] is None and second["adopted"] is False
    assert "no python code block" in second["reason"]
    for entry in (first, third):
        assert entry["status"] == "scored" and entry["failure_kind"] is None
        assert entry["bd_rate"] is not None and entry["bd_rate_vs_parent"] is not None
    assert first["adopted"] is True, first["reason"]
    assert first["bd_rate_vs_parent"] < -1.0
    hashes = candidate_hashes(db, full)
    assert hashes == [code_hash(FIRST), None, code_hash(THIRD)]

    # the first variant is adopted (v1); the third beats it on PSNR-Y only by starving
    # chroma, so the policy's PSNR-YUV check refuses it
    assert third["adopted"] is False
    assert third["bd_rate_vs_parent"] < -1.0 and third["bd_rate_yuv_vs_parent"] > 0
    assert "the luma gain is paid for with chroma" in third["reason"]
    adoptions = [(item["iteration"], item["candidate"]) for item in summary["adoptions"]]
    assert adoptions == [(1, first["candidate"])]
    subjects = git(repo, "log", "--format=%s")
    assert len(subjects) == 1
    assert subjects[0].startswith(f"adopt candidate {first['candidate']}:")
    assert git(repo, "tag") == ["v1"]
    assert (repo / "codec.py").read_text() == FIRST
    check_cost_per_gain(db, calls, summary, first)

    # the key never reaches the store
    for path in tmp_path.glob("*.db*"):
        assert KEY.encode() not in path.read_bytes()

    # replay: the recorded answers give the same candidates and decisions, with no request
    fresh_db, fresh_repo = tmp_path / "replay.db", tmp_path / "replay-codecs"
    silent = fake_llm()
    replay = aicodec_env(
        *evolve_args(video, fresh_db, fresh_repo),
        "--provider",
        "replay",
        env=env_for(silent, AICODEC_REPLAY_DB=str(db)),
    )
    assert replay.returncode == 0, replay.stderr
    assert silent.requests == [] and len(server.requests) == 6
    again = json.loads(replay.stdout)
    assert again["completed"] == 3 and again["failures"] == summary["failures"]
    _, replayed = history_of(fresh_db)
    assert candidate_hashes(fresh_db, replayed) == hashes
    decision = (
        "iteration",
        "status",
        "adopted",
        "failure_kind",
        "bd_rate",
        "bd_rate_vs_parent",
        "planner",
        "predicted_bd_rate",
        "confidence",
        "origin",
    )
    assert [[entry[k] for k in decision] for entry in replayed] == [
        [entry[k] for k in decision] for entry in full
    ]
    assert replayed[1]["reason"] == second["reason"]  # the same failure, word for word
    assert logged_purposes(logged_calls(fresh_db)) == [
        ("replay", purpose) for purpose in ("plan", "generate") * 3
    ]
    assert git(fresh_repo, "tag") == git(repo, "tag")
    replayed_cost = again["cost_per_gain"]["adoptions"][0]["spent"]
    assert replayed_cost["tokens"] == summary["cost_per_gain"]["adoptions"][0]["spent"]["tokens"]
    assert git(fresh_repo, "log", "--format=%s") == subjects
    assert KEY.encode() not in fresh_db.read_bytes()


def test_holdout_clips_decide_adoption_and_never_reach_the_model(  # type: ignore[no-untyped-def]
    fake_llm, tmp_path: Path
) -> None:
    training, holdout = tmp_path / "training.y4m", tmp_path / "holdout.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(training)
    load_clip(None, Settings(), start=10, count=4).frames.write_y4m(holdout)
    second = FIRST.replace('"tilt": 0.4', '"tilt": 0.45', 1)
    server = fake_llm(Reply(PLAN_1), Reply(fenced(FIRST)), Reply(PLAN_1), Reply(fenced(second)))
    db, repo = tmp_path / "store.db", tmp_path / "codecs"
    args = evolve_args(training, db, repo, str(holdout))
    args[args.index("3")] = "2"  # two iterations
    result = aicodec_env(*args, env=env_for(server))
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 4
    with closing(sqlite3.connect(db)) as connection:
        clips = dict(connection.execute("SELECT name, id FROM clips").fetchall())
        decisions = connection.execute("SELECT candidate_id, clips FROM adoptions").fetchall()
        holdout_scores = connection.execute(
            "SELECT count(*) FROM candidate_scores WHERE clip_id = ?", (clips["holdout.y4m"],)
        ).fetchone()[0]
    # iteration 1 beat the seed on the training clip, so it ran on the holdout clip, and
    # the policy decided on the holdout clip alone
    _, full = history_of(db)
    assert full[0]["bd_rate_vs_parent"] < -1.0
    assert decisions and all(json.loads(ids) == [clips["holdout.y4m"]] for _, ids in decisions)
    assert holdout_scores >= 2  # the seed and the candidate
    for entry in full:
        assert "holdout clips not run" in entry["reason"] or entry["reason"].startswith(
            ("adopted:", "not adopted: mean BD-rate")
        )
    # the model saw the training clip's figures, never the holdout clip's
    prompts = [json.dumps(request.body) for request in server.requests]
    assert all("holdout" not in prompt for prompt in prompts)
    assert all(f"clip {clips['holdout.y4m']} " not in prompt for prompt in prompts)
    assert any("training.y4m: BD-rate" in prompt for prompt in prompts)


def test_model_code_needs_kernel_isolation_or_an_opt_in(fake_llm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    video = tmp_path / "source.y4m"
    load_clip(None, Settings(), count=2).frames.write_y4m(video)
    db, repo = tmp_path / "store.db", tmp_path / "codecs"
    args = [*evolve_args(video, db, repo)[:-1], "--iterations", "1", "--encoders", "x264"]
    server = fake_llm(*SCRIPT[:2])
    process = env_for(server, AICODEC_SANDBOX_ISOLATION="process")

    refused = aicodec_env(*args, env=process)
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert "\n" not in line and "--allow-process-sandbox" in line and "kernel isolation" in line
    assert server.requests == []  # refused before a single model call, and nothing started
    assert not db.exists() or sqlite3.connect(db).execute(
        "SELECT count(*) FROM evolution_runs"
    ).fetchone() == (0,)

    allowed = aicodec_env(*args, "--allow-process-sandbox", "--json", env=process)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["completed"] == 1
    modes = {
        row[0].split(":")[0]
        for row in sqlite3.connect(db).execute("SELECT isolation FROM candidate_runs")
    }
    assert modes == {"process"}  # the run says which isolation it had

    # parameter mutations of the lab's own seeds need no opt-in
    offline = aicodec_env(
        *args, "--provider", "mutation", env={"AICODEC_SANDBOX_ISOLATION": "process"}
    )
    assert offline.returncode == 0, offline.stderr
