"""aicodec evolve offline, end to end: real sandbox, real store, real git; kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aicodec.candidates import code_hash
from aicodec.clips import ClipSpec, load_clip
from aicodec.errors import ClipError, EvolutionError
from aicodec.evolution import EvolveConfig, holdout_sources
from aicodec.ladder import load_ladder
from aicodec.settings import Settings
from tests.test_generate import aicodec_env
from tests.test_seeds import crop

REPO = Path(__file__).resolve().parents[1]
INTRA = REPO / "baselines" / "seeds" / "intra_dct.py"
QUALITIES = "90,30,70,50"  # any order: scores are keyed by the sorted qualities
SEED = "8"  # a mutation seed whose first child beats the seed by 0.55 % (PSNR-Y and YUV)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four frames of the built-in clip as a y4m file."""
    path = tmp_path_factory.mktemp("clip") / "source.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(path)
    return path


def evolve_args(source: Path, tmp: Path, iterations: int, *extra: str) -> list[str]:
    return [
        "evolve",
        "--iterations",
        str(iterations),
        "--video",
        str(source),
        "--qualities",
        QUALITIES,
        "--encoders",
        "x264",
        "--parent",
        str(INTRA),
        "--seed",
        SEED,
        "--threshold",
        "0.3",
        "--holdout",
        "none",
        "--db",
        str(tmp / "store.db"),
        "--git-repo",
        str(tmp / "codecs"),
        *extra,
    ]


def git(repo: Path, *args: str) -> list[str]:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return result.stdout.split("\n")[:-1]


def rows(db: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


@pytest.mark.slow
def test_offline_evolve_adopts_into_git_and_keeps_a_history(source: Path, tmp_path: Path) -> None:
    result = aicodec_env(*evolve_args(source, tmp_path, 4), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished" and summary["completed"] == 4
    assert "\n#4 parent " in result.stderr  # the progress display's line per iteration
    # --holdout none: no holdout clip, adoption decided on the training clip
    assert summary["holdout_clips"] == []
    assert [clip["name"] for clip in summary["training_clips"]] == [str(source)]
    history = json.loads(
        aicodec_env("history", "--db", str(tmp_path / "store.db"), "--json").stdout
    )
    assert [entry["iteration"] for entry in history] == [1, 2, 3, 4]
    assert all(
        set(entry) == {"iteration", "parent", "origin", "status", "bd_rate", "adopted", "reason"}
        for entry in history
    )
    assert {entry["origin"] for entry in history} == {"mutation"}
    adopted = [entry for entry in history if entry["adopted"]]
    assert adopted, "this seed's mutations include an adoption; the policy refused them all"
    assert all(entry["reason"].startswith("adopted: mean BD-rate") for entry in adopted)
    assert all(
        entry["reason"].startswith("not adopted")
        for entry in history
        if entry["status"] == "scored" and not entry["adopted"]
    )
    # one commit and one tag per adoption, newest first, with the figures in the message
    repo = tmp_path / "codecs"
    subjects = git(repo, "log", "--format=%s")
    assert len(subjects) == len(adopted) == len(summary["adoptions"])
    assert sorted(git(repo, "tag")) == [f"v{n}" for n in range(1, len(adopted) + 1)]
    details = json.loads(
        aicodec_env("history", "--plans", "--db", str(tmp_path / "store.db"), "--json").stdout
    )
    newest = [entry for entry in details if entry["adopted"]][-1]
    assert subjects[0].startswith(f"adopt candidate {newest['candidate']}: BD-rate")
    meta = json.loads((repo / "codec.json").read_text())
    assert meta["candidate"] == newest["candidate"]
    body = "\n".join(git(repo, "log", "-1", "--format=%B"))
    assert "vs x264-medium" in body and "q30:" in body and "kbps, PSNR-Y" in body
    # the first adoption is measured against the seed the run started from
    first = [entry for entry in details if entry["adopted"]][0]
    assert f"vs its seed (candidate {summary['start_candidate']}" in first["reason"]
    # every plan and its prediction sit beside the measured outcome
    for entry in details:
        assert entry["planner"] == "rules" and entry["predicted_bd_rate"] is not None
        assert 0 <= entry["confidence"] <= 1
        if entry["status"] == "scored":
            assert entry["bd_rate_vs_parent"] is not None and entry["bd_rate"] is not None
    # the summary's best is the lowest BD-rate vs x264 of the run, and beats the start
    scored = [entry["bd_rate"] for entry in details if entry["status"] == "scored"]
    assert summary["best_bd_rate_vs_x264"] == pytest.approx(min(scored))
    assert summary["best_vs_start"] < 0
    # a table for people, too
    table = aicodec_env("history", "--db", str(tmp_path / "store.db"))
    assert table.returncode == 0 and "evolve history" in table.stdout


def wait_for(db: Path, sql: str, process: subprocess.Popen[bytes], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "evolve ended before the moment to kill it"
        try:
            if db.exists() and rows(db, sql):
                return
        except sqlite3.OperationalError:
            pass  # the schema is being created
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {sql}")


@pytest.mark.slow
def test_kill_9_mid_iteration_then_resume_loses_and_repeats_nothing(
    source: Path, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")}
    process = subprocess.Popen(
        [sys.executable, "-m", "aicodec", *evolve_args(source, tmp_path, 4)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for(
            db,
            "select 1 from evolution_iterations where number = 3 and stage = 'score' "
            "and status = 'running'",
            process,
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = rows(
        db, "select number, status, candidate_id from evolution_iterations order by number"
    )
    assert [(n, s) for n, s, _ in before] == [(1, "scored"), (2, "scored"), (3, "running")]
    assert rows(db, "select status from evolution_runs") == [("running",)]

    result = aicodec_env("evolve", "--resume", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished" and summary["completed"] == 4
    after = rows(
        db, "select number, status, candidate_id from evolution_iterations order by number"
    )
    assert [n for n, _, _ in after] == [1, 2, 3, 4]
    assert all(status in ("scored", "failed") for _, status, _ in after)
    # completed iterations untouched; the killed one went on with its stored candidate
    assert after[:3] == [(n, status if n < 3 else after[2][1], c) for n, status, c in before]
    candidates = [c for _, _, c in after if c is not None]
    assert len(candidates) == len(set(candidates))
    # no candidate besides the start codec and the iterations' own: nothing half-made counted
    stored = {c for (c,) in rows(db, "select id from candidates")}
    assert stored == set(candidates) | {summary["start_candidate"]}
    # no adoption committed twice: one commit and one tag per adopted iteration
    adopted = rows(db, "select count(*) from evolution_iterations where adopted")[0][0]
    commits = git(tmp_path / "codecs", "log", "--format=%H") if adopted else []
    assert len(commits) == adopted == len(set(commits))
    assert rows(db, "select count(*) from adoptions where adopted")[0][0] == adopted
    again = aicodec_env("evolve", "--resume", "--db", str(db))
    assert again.returncode == 2
    assert "no unfinished evolve run" in again.stderr


@pytest.mark.slow
def test_without_a_parent_evolve_starts_from_the_hybrid_seed(tmp_path: Path) -> None:
    frames = load_clip(None, Settings(), count=4).frames
    clip = tmp_path / "tiny.y4m"  # 128x96 from the middle of the built-in clip, 4 frames
    crop(frames, 128, 96, 112, 96).write_y4m(clip)
    db = tmp_path / "store.db"
    result = aicodec_env(
        "evolve",
        "--iterations",
        "1",
        "--video",
        str(clip),
        "--qualities",
        QUALITIES,
        "--encoders",
        "x264",
        "--holdout",
        "none",
        "--db",
        str(db),
        "--git-repo",
        str(tmp_path / "codecs"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    start = summary["start_candidate"]
    hybrid = (REPO / "baselines" / "seeds" / "hybrid.py").read_text(encoding="utf-8")
    assert rows(
        db, f"select name, origin, parent_id, code_hash from candidates where id = {start}"
    )[0] == ("hybrid.py", "seed", None, code_hash(hybrid))
    assert rows(db, "select start_parent_id from evolution_runs") == [(start,)]
    assert summary["start_bd_rate_vs_x264"] is not None  # the start was scored on the clip
    # the iteration worked on the hybrid seed: its child descends from it
    history = json.loads(aicodec_env("history", "--db", str(db), "--json").stdout)
    assert [(entry["iteration"], entry["parent"]) for entry in history] == [(1, start)]
    child = summary["iterations"][0]["candidate"]
    assert rows(db, f"select parent_id from candidates where id = {child}") == [(start,)]


@pytest.mark.slow
def test_evolve_decides_adoption_on_the_held_out_builtin_clips_by_default(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    common = [
        "--frames",
        "4",
        "--qualities",
        QUALITIES,
        "--encoders",
        "x264",
        "--parent",
        str(INTRA),
        "--seed",
        SEED,
        "--threshold",
        "0.3",
        "--db",
        str(db),
        "--git-repo",
        str(tmp_path / "codecs"),
        "--json",
    ]
    result = aicodec_env("evolve", "--iterations", "3", *common)  # no --video, no --holdout
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [clip["name"] for clip in summary["training_clips"]] == ["builtin:default"]
    holdout = summary["holdout_clips"]
    assert [clip["name"] for clip in holdout] == ["builtin:still", "builtin:shake", "builtin:bikes"]
    for clip in holdout:  # the run's window (--frames 4) applies to natural video too
        assert clip["hash"] == load_clip(clip["name"], Settings(), count=4).content_hash
    holdout_ids = sorted(clip["id"] for clip in holdout)
    # the starting codec was scored on the holdout clips too
    start = summary["start_candidate"]
    scored_on = rows(
        db,
        f"select distinct clip_id from candidate_runs where candidate_id = "
        f"{start} and status = 'ok' order by clip_id",
    )
    assert set(holdout_ids) <= {clip_id for (clip_id,) in scored_on}
    # this seed's first child passes the training gate, so holdout clips decided something
    decisions = rows(db, "select clips from adoptions")
    assert decisions, "no candidate passed the training gate: the holdout clips went unused"
    assert all(sorted(json.loads(clips)) == holdout_ids for (clips,) in decisions)
    # a candidate not adopted was stopped by the training gate, failed on a holdout clip, or
    # was refused by the policy on the holdout clips (an adoption decision recorded above)
    decided = {candidate for (candidate,) in rows(db, "select candidate_id from adoptions")}
    for entry in summary["iterations"]:
        if entry["status"] == "scored" and not entry["adopted"]:
            assert (
                (
                    "on the training clips" in entry["reason"]
                    and "holdout clips not run" in entry["reason"]
                )
                or "holdout clip" in entry["reason"]
                or (entry["candidate"] in decided)
            )
    details = json.loads(aicodec_env("history", "--plans", "--db", str(db), "--json").stdout)
    assert details and all(entry["clips"]["holdout"] == holdout for entry in details)


def test_default_holdout_is_the_held_out_builtin_clips_that_are_not_training_clips() -> None:
    held_out = ["builtin:still", "builtin:shake", "builtin:bikes"]  # bikes: natural video
    assert holdout_sources(["builtin:default"], None) == held_out
    assert holdout_sources(["clip.y4m"], []) == held_out
    assert holdout_sources(["builtin:still"], None) == ["builtin:shake", "builtin:bikes"]
    assert holdout_sources(["builtin:shake", "builtin:bikes", "builtin:still"], None) == []
    assert "builtin:carphone" not in held_out  # the judge re-measures on Carphone
    assert holdout_sources(["builtin:default"], ["none"]) == []
    assert holdout_sources(["builtin:default"], ["c.y4m", "builtin:still"]) == [
        "c.y4m",
        "builtin:still",
    ]
    with pytest.raises(EvolutionError, match="give it alone"):
        holdout_sources(["builtin:default"], ["none", "c.y4m"])


def test_a_run_config_takes_every_default_from_the_settings_and_the_ladder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AICODEC_EVOLVE_ISLANDS", "4")
    monkeypatch.setenv("AICODEC_GENERATE_REPAIRS", "0")
    monkeypatch.setenv("AICODEC_CODEC_REPO", str(tmp_path / "repo"))
    config = EvolveConfig.from_settings(Settings(), iterations=3, videos=[], parallel=None)
    assert (config.islands, config.repairs, config.parallel) == (4, 0, 1)
    assert config.git_repo == str(tmp_path / "repo")
    assert config.encoders == list(load_ladder(Settings().ladder_file).compared)
    assert config.encoders == ["x264", "x265", "vvenc"]
    monkeypatch.setenv("AICODEC_EVOLVE_ENCODERS", "x264, svt")
    assert EvolveConfig.from_settings(Settings(), iterations=1, videos=[]).encoders == [
        "x264",
        "svt",
    ]
    given = EvolveConfig.from_settings(Settings(), iterations=1, videos=[], islands=7, seed=5)
    assert (given.islands, given.seed) == (7, 5)
    stored = json.loads(given.to_json())
    del stored["repairs"], stored["parallel"]  # a run stored before these existed
    again = EvolveConfig.from_json(json.dumps(stored), Settings())
    assert (again.islands, again.repairs, again.parallel) == (7, 0, 1)


def test_a_stored_clip_without_a_path_resumes_as_builtin_default() -> None:
    old = {"iterations": 1, "videos": [{"path": None, "start": 0, "frames": 4}]}  # as stored
    spec = EvolveConfig.from_json(json.dumps(old)).videos[0]
    assert spec.name == "builtin:default"
    expected = load_clip("builtin:default", Settings(), count=4).content_hash
    assert spec.load(Settings()).content_hash == expected
    changed = ClipSpec(None, 1, 4, content_hash=expected)
    with pytest.raises(ClipError, match="builtin:default changed since the run began"):
        changed.load(Settings())


@pytest.mark.slow
def test_a_candidate_clearly_worse_at_the_first_stage_stops_there_with_its_reason(
    tmp_path: Path,
) -> None:
    db = tmp_path / "store.db"
    args = ["evolve", "--iterations", "2", "--frames", "12", "--qualities", QUALITIES]
    args += ["--encoders", "x264", "--parent", str(INTRA), "--seed", SEED]
    args += ["--db", str(db), "--git-repo", str(tmp_path / "codecs"), "--json"]
    strict = {"AICODEC_EVOLVE_SCREEN_FRAMES": "4", "AICODEC_EVOLVE_SCREEN_STOP_PERCENT": "-90"}
    result = aicodec_env(*args, env=strict)  # every candidate is "clearly worse" than -90 %
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["failures"] == {"screen": 2} and summary["scored"] == 0
    stopped = {entry["candidate"] for entry in summary["iterations"]}
    for entry in summary["iterations"]:
        reason = entry["reason"]
        assert reason.startswith("stopped at the first stage: on the first 4 frames at ")
        assert "qualities 30,90 it needs " in reason and reason.endswith("(limit +-90 %)")
        assert entry["bd_rate"] is None and "score" not in entry["stage_seconds"]
    runs = rows(
        db,
        "SELECT r.candidate_id, c.name, c.frame_count, r.quality FROM candidate_runs r "
        "JOIN clips c ON c.id = r.clip_id",
    )
    theirs = {(name, frames, quality) for who, name, frames, quality in runs if who in stopped}
    training = summary["training_clips"][0]["name"]
    assert theirs == {(training, 4, 30), (training, 4, 90)}  # no full run, no holdout clip
    held_out = {clip["name"] for clip in summary["holdout_clips"]}
    assert held_out == {"builtin:still", "builtin:shake", "builtin:bikes"}
