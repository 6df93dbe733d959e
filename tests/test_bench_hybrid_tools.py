"""The hybrid tool A/B benchmark's plumbing (benchmarks/bench_hybrid_tools.py): what it refuses,
and one real A/B on two frames of the built-in clip."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_hybrid_tools.py"


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the benchmark script as `make bench` does."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "no_such_knob=1"], "not a PARAMS name: no_such_knob"),
        (["--set", "deblock=1", "--base", "deblock=1"], "give the same variant"),
        (["--set", "qp_propagation"], "expected name=value"),
        (["--set", "deblock=0", "--clips", "nowhere"], "unknown clip 'nowhere'"),
    ],
)
def test_refuses_what_it_cannot_compare(args: list[str], message: str) -> None:
    result = bench(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_codes_both_variants_and_measures_the_difference() -> None:
    result = bench(
        "--set", "qp_propagation=0", "--clips", "builtin", "--frames", "2", "--workers", "1",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["test"] == {"qp_propagation": 0} and summary["base"] == {}
    (row,) = summary["clips"]
    assert row["clip"] == "builtin"
    base, test = row["base_points"], row["test_points"]
    assert len(base) == len(test) == len(summary["qualities"])
    # the picture QPs differ, so the rates do; each curve rises with the quality
    assert [p["kbps"] for p in base] != [p["kbps"] for p in test]
    for points in (base, test):
        assert [p["kbps"] for p in points] == sorted(p["kbps"] for p in points)
    assert math.isfinite(row["bd_rate_percent"])
    assert summary["mean_bd_rate_percent"] == row["bd_rate_percent"]
