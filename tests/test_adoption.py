"""Adoption: the policy over real sandbox runs, commits and tags in real git repositories."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import git
import pytest

from aicodec.adoption import POLICY, adopt, decide
from aicodec.candidates.records import record_candidate
from aicodec.clips import load_clip
from aicodec.clips.records import record_clip
from aicodec.errors import AdoptionError
from aicodec.scoring.candidate import run_and_measure
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.queries.points import current_best
from tests.test_cli import assert_one_line_error
from tests.test_seeds import crop

ROOT = Path(__file__).resolve().parents[1]
INTRA = ROOT / "baselines" / "seeds" / "intra_dct.py"
MOTION = ROOT / "baselines" / "seeds" / "motion_dct.py"
QUALITIES = "30,50,70,90"
LEVELS = [30, 50, 70, 90]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``aicodec ARGS`` in a fresh interpreter with extra environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "aicodec", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four frames of the built-in clip, a 176x144 window of them (the ladder's x265 and
    VVenC searches take a quarter of the time they take on the whole 352x288), as a y4m
    source."""
    path = tmp_path_factory.mktemp("source") / "source.y4m"
    crop(load_clip(None, Settings(), count=4).frames, 176, 144, 96, 80).write_y4m(path)
    return path


def seed_store(db: Path) -> tuple[int, int]:
    """A store holding the two seeds; the motion seed's parent is the intra seed."""
    store = Store(str(db))
    intra = record_candidate(store, INTRA.read_text(), "intra_dct.py", origin="seed")
    motion = record_candidate(
        store, MOTION.read_text(), "motion_dct.py", origin="seed", parent_id=intra
    )
    store.close()
    return intra, motion


def adopt_args(candidate: int, source: Path, db: Path, repo: Path, *extra: str) -> list[str]:
    return [
        "adopt",
        str(candidate),
        "--video",
        str(source),
        "--qualities",
        QUALITIES,
        "--db",
        str(db),
        "--git-repo",
        str(repo),
        "--json",
        *extra,
    ]


@pytest.mark.slow
def test_seeds_are_adopted_by_the_policy_or_by_force(source: Path, tmp_path: Path) -> None:
    db, repo_path = tmp_path / "store.db", tmp_path / "codecs"
    intra, motion = seed_store(db)

    # first adoption, no ancestor: against x264 from the intra seed's score; far worse
    refused = cli(*adopt_args(intra, source, db, repo_path))
    assert refused.returncode == 1, refused.stderr
    data = json.loads(refused.stdout)
    assert data["adopted"] is False and data["forced"] is False
    assert data["compared_with"] == "x264-medium" and "x264-medium" in data["reason"]
    assert data["bd_rate_vs_best"] > 20 and data["commit"] is None and data["policy"] == POLICY
    assert not repo_path.exists()  # nothing committed, no repository made

    # the motion seed's nearest scored ancestor is the intra seed (nothing adopted yet)
    settings = Settings(db=f"sqlite:///{db}")
    store = Store(settings.db)
    clip = load_clip(source, settings)
    run_and_measure(MOTION.read_text(), "motion_dct.py", clip, store, settings, LEVELS)
    clip_id = record_clip(store, clip)
    # (decode-time limit lifted here: the motion decoder is slower, and a busy machine
    # could push it past 4x; the limit itself is checked just below)
    roomy = Settings(db=settings.db, adopt_max_decode_slowdown=100)
    against_parent = decide(store, roomy, motion, [clip_id], LEVELS)
    assert against_parent.compared_with == intra and against_parent.adopted
    assert against_parent.bd_rate_vs_best is not None and against_parent.bd_rate_vs_best < -10
    slow = decide(
        store, Settings(db=settings.db, adopt_max_decode_slowdown=0.01), motion, [clip_id], LEVELS
    )
    assert not slow.adopted and "decode time" in slow.reason
    strict = decide(
        store, Settings(db=settings.db, adopt_threshold_percent=1000), motion, [clip_id], LEVELS
    )
    assert not strict.adopted and "not below -1000 %" in strict.reason
    assert current_best(store) is None
    store.close()

    # forced: v1, with the policy's reason kept
    forced = cli(*adopt_args(intra, source, db, repo_path, "--force"))
    assert forced.returncode == 0, forced.stderr
    data = json.loads(forced.stdout)
    assert data["adopted"] is True and data["forced"] is True and data["tag"] == "v1"
    assert "forced" in data["reason"] and "x264-medium" in data["reason"]
    repo = git.Repo(repo_path)
    assert [tag.name for tag in repo.tags] == ["v1"]
    assert repo.head.commit.hexsha == data["commit"]
    assert repo.head.commit.message.startswith(f"adopt candidate {intra}: BD-rate +")

    # the motion seed beats the current best (the intra seed) by far; decode times on four
    # frames are noisy, so the decode limit is relaxed here (decide() checks it above)
    adopted = cli(
        *adopt_args(motion, source, db, repo_path), env={"AICODEC_ADOPT_MAX_DECODE_SLOWDOWN": "20"}
    )
    assert adopted.returncode == 0, adopted.stderr
    data = json.loads(adopted.stdout)
    assert data["adopted"] is True and data["forced"] is False and data["tag"] == "v2"
    assert data["compared_with"] == intra and data["bd_rate_vs_best"] < -10
    log = subprocess.run(
        ["git", "-C", str(repo_path), "log", "--format=%H%n%B%n--end--"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commits = [block.strip() for block in log.split("--end--") if block.strip()]
    assert len(commits) == 2
    sha, message = commits[0].split("\n", 1)
    assert sha == data["commit"]
    bd = data["bd_rate_vs_best"]
    headline = message.splitlines()[0]
    assert headline == f"adopt candidate {motion}: BD-rate {bd:+.2f} % vs previous best"
    assert f"vs previous best (candidate {intra}): {bd:+.2f} %" in message
    for name in ("x264-medium", "x265-medium", "vvenc-medium"):
        assert re.search(rf"vs {name}: [+-]\d+\.\d\d %", message), name
    for point in data["per_clip"][str(clip_id)]["points"]:
        expected = f"q{point['quality']}: {point['kbps']:.2f} kbps, PSNR-Y {point['psnr_y']:.2f} dB"
        assert expected in message
    tags = subprocess.run(
        ["git", "-C", str(repo_path), "tag"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert tags == ["v1", "v2"]
    assert (repo_path / "codec.py").read_text() == MOTION.read_text()
    meta = json.loads((repo_path / "codec.json").read_text())
    assert meta["candidate"] == motion and meta["parent"] == intra and meta["origin"] == "seed"
    assert meta["code_hash"] == hashlib.sha256(MOTION.read_bytes()).hexdigest()
    assert meta["clips"] == [clip_id] and meta["qualities"] == LEVELS

    # adopting it again does nothing
    again = cli(*adopt_args(motion, source, db, repo_path))
    assert again.returncode == 0, again.stderr
    repeat = json.loads(again.stdout)
    assert "already adopted" in repeat["reason"]
    assert (repeat["commit"], repeat["tag"]) == (data["commit"], "v2")
    assert len(list(git.Repo(repo_path).iter_commits())) == 2

    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT candidate_id, adopted, forced, tag, compared_with FROM adoptions ORDER BY id"
        ).fetchall()
    assert rows == [
        (intra, 0, 0, None, "x264-medium"),
        (intra, 1, 1, "v1", "x264-medium"),
        (motion, 1, 0, "v2", str(intra)),
    ]
    store = Store(str(db))
    assert current_best(store) == motion
    store.close()


def dirty_repo(path: Path) -> git.Repo:
    """A git repository with one commit and an uncommitted change to its file."""
    repo = git.Repo.init(path)
    (path / "codec.py").write_text("# first\n")
    repo.index.add(["codec.py"])
    actor = git.Actor("test", "test@localhost")
    repo.index.commit("first", author=actor, committer=actor)
    (path / "codec.py").write_text("# changed\n")
    return repo


def test_a_repository_with_uncommitted_changes_is_refused(source: Path, tmp_path: Path) -> None:
    db, path = tmp_path / "store.db", tmp_path / "dirty"
    intra, _ = seed_store(db)
    repo = dirty_repo(path)
    result = cli(*adopt_args(intra, source, db, path, "--force"))
    assert_one_line_error(result, "uncommitted changes (codec.py)")
    settings = Settings(db=f"sqlite:///{db}")
    store = Store(settings.db)
    clip_id = record_clip(store, load_clip(source, settings))
    with pytest.raises(AdoptionError, match="uncommitted changes") as caught:
        adopt(store, settings, intra, [clip_id], LEVELS, force=True, repo_path=path)
    assert "\n" not in str(caught.value)
    store.close()
    assert len(list(repo.iter_commits())) == 1 and not repo.tags
    assert (path / "codec.py").read_text() == "# changed\n"


@pytest.mark.slow
def test_a_folder_that_is_not_a_repository_is_refused(source: Path, tmp_path: Path) -> None:
    db, folder = tmp_path / "store.db", tmp_path / "notes"
    intra, _ = seed_store(db)
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")
    result = cli(*adopt_args(intra, source, db, folder, "--force"))
    assert_one_line_error(result, "exists and is not a git repository")
    assert not (folder / ".git").exists() and (folder / "notes.txt").read_text() == "keep me\n"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_one_line_error(cli(*adopt_args(intra, source, db, afile)), "is a file")
    assert_one_line_error(cli(*adopt_args(99, source, db, folder)), "no candidate 99")


@pytest.mark.slow
def test_the_first_adoption_is_against_the_seed_and_a_lost_record_commits_nothing_twice(
    source: Path, tmp_path: Path
) -> None:
    db, repo_path = tmp_path / "store.db", tmp_path / "codecs"
    settings = Settings(db=f"sqlite:///{db}", adopt_max_decode_slowdown=100)
    store = Store(settings.db)
    clip = load_clip(source, settings)
    clip_id = record_clip(store, clip)
    seed = run_and_measure(INTRA.read_text(), "intra_dct.py", clip, store, settings, LEVELS)
    # a child that is slightly better than the seed, and a grandchild from it
    child_source = INTRA.read_text().replace('"quant_scale": 1.0', '"quant_scale": 0.404', 1)
    child = record_candidate(store, child_source, "child.py", "mutation", seed.candidate_id)
    run_and_measure(child_source, "child.py", clip, store, settings, LEVELS)
    grandchild_source = MOTION.read_text()
    grandchild = record_candidate(store, grandchild_source, "g.py", "mutation", child)
    run_and_measure(grandchild_source, "g.py", clip, store, settings, LEVELS)
    decision = decide(store, settings, grandchild, [clip_id], LEVELS)
    assert decision.compared_with == seed.candidate_id  # the seed, not the nearer child
    assert "vs its seed (candidate" in decision.reason and decision.adopted

    first = adopt(store, settings, grandchild, [clip_id], LEVELS, repo_path=repo_path)
    assert first.adopted and first.tag == "v1"
    # killed after the commit, before the decision was stored: the record is missing
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM adoptions")
    again = adopt(store, settings, grandchild, [clip_id], LEVELS, repo_path=repo_path)
    store.close()
    assert (again.commit, again.tag) == (first.commit, "v1")
    repo = git.Repo(repo_path)
    assert len(list(repo.iter_commits())) == 1 and [tag.name for tag in repo.tags] == ["v1"]
