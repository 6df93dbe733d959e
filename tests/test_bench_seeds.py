"""The seed benchmark's plumbing (benchmarks/bench_seeds.py), on 4 frames of the built-in clip."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_seeds.py"
QUICK = ["--clips", "builtin", "--frames", "4", "--encoders", "x264"]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the benchmark script as `make bench` does."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_scores_seeds_reuses_runs_and_names_a_failing_seed(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(ROOT / "baselines" / "seeds" / "intra_dct.py", seeds)
    shutil.copy(ROOT / "tests" / "codecs" / "crashes_at_quality_60.py", seeds)
    db = str(tmp_path / "bench.db")

    first = bench(*QUICK, "--seeds-dir", str(seeds), "--db", db, "--json")
    assert first.returncode == 1, first.stderr
    result = json.loads(first.stdout)
    assert result["machine"]["cores"] >= 1 and "--frames 4" in result["command"]
    assert [clip["frames"] for clip in result["clips"]] == [4]
    rows = {row["seed"]: row for row in result["results"]}
    intra, crash = rows["intra_dct"], rows["crashes_at_quality_60"]
    assert isinstance(intra["bd_rate_vs"]["x264-medium"], float) and intra["bd_rate_vs"]
    assert intra["encode_seconds"] > 0 and intra["decode_seconds"] > 0 and not intra["reused"]
    assert len(intra["points"]) == 4 and intra["error"] is None
    assert "quality 60" in crash["error"]
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("error: seed crashes_at_quality_60 failed on builtin:")

    # the same code, clip and qualities again: the stored run is reused; a missing media
    # folder skips its clips with the reason; the table goes to stdout
    media = str(tmp_path / "none")
    again = bench(
        *QUICK[2:],
        "--clips",
        "builtin,carphone",
        "--seeds-dir",
        str(seeds),
        "--seeds",
        "intra_dct",
        "--db",
        db,
        "--media",
        media,
    )
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines[0].startswith("command: python ") and " cores (" in lines[1]
    row = next(line for line in lines if line.startswith("│") and "intra_dct" in line)
    assert "stored" in row and f"{intra['bd_rate_vs']['x264-medium']:+.1f} %" in row
    assert "skipped carphone:" in again.stdout and "is absent" in again.stderr


def test_unknown_seed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = bench("--seeds", "nope", "--db", str(tmp_path / "bench.db"))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: unknown seed nope; known: ") and "intra_dct" in line
