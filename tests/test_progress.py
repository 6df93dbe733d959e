"""Progress on stderr: plain lines where stderr is not a terminal, the evolve bar at 80
columns (the iteration and stage first, the set-up named), the run's set-up time in its
summary, and ``history`` readable at 80 columns."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from aicodec.cli.evolve import _EvolveDisplay
from aicodec.cli.progress import PlainLines, progress_bar
from aicodec.clips import load_clip
from aicodec.evolution.events import EvolveEvent
from aicodec.settings import Settings

REPO = Path(__file__).resolve().parents[1]
INTRA = REPO / "baselines" / "seeds" / "intra_dct.py"
LINE = re.compile(r"^aicodec: (\d+):(\d\d):(\d\d) (.*)$")
# what makes Rich take a pipe for a terminal, and the interval itself: each test sets its own
UNSET = ("FORCE_COLOR", "TTY_COMPATIBLE", "AICODEC_PROGRESS_INTERVAL_S", "AICODEC_PROVIDER")
UNSET += ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")


def lab(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``aicodec ARGS`` with stdout and stderr to pipes (not terminals) and ``env``."""
    base = {key: value for key, value in os.environ.items() if key not in UNSET}
    return subprocess.run(
        [sys.executable, "-m", "aicodec", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=600,
        check=False,
    )


def progress_lines(stderr: str) -> list[tuple[int, str]]:
    """The plain progress lines of a command's stderr: (elapsed seconds, what it said)."""
    found = []
    for line in stderr.splitlines():
        match = LINE.match(line)
        if match:
            hours, minutes, seconds, said = match.groups()
            found.append((int(hours) * 3600 + int(minutes) * 60 + int(seconds), said))
    return found


def score_args(db: Path) -> list[str]:
    return [
        "score",
        str(INTRA),
        "--frames",
        "4",
        "--qualities",
        "30,50,70,90",
        "--encoders",
        "x264",
        "--db",
        str(db),
    ]


def test_score_off_a_terminal_writes_plain_progress_lines(tmp_path: Path) -> None:
    result = lab(*score_args(tmp_path / "a.db"), AICODEC_PROGRESS_INTERVAL_S="0.5")
    assert result.returncode == 0, result.stderr
    assert "score of intra_dct.py on builtin:default" in result.stdout  # the table, as ever
    assert "aicodec:" not in result.stdout
    lines = progress_lines(result.stderr)
    assert len(lines) >= 2, result.stderr
    assert all(said.startswith("scoring intra_dct.py on builtin:default") for _, said in lines)
    assert any(re.search(r": quality \d+: (encoding|decoding)$", said) for _, said in lines)
    # only when something changed, in order of time
    assert all(before[1] != after[1] for before, after in zip(lines, lines[1:], strict=False))
    assert [seconds for seconds, _ in lines] == sorted(seconds for seconds, _ in lines)

    # 0: none at all, the output the same
    quiet = lab(*score_args(tmp_path / "b.db"), AICODEC_PROGRESS_INTERVAL_S="0")
    assert quiet.returncode == 0, quiet.stderr
    assert progress_lines(quiet.stderr) == [] and "aicodec:" not in quiet.stderr
    assert "score of intra_dct.py on builtin:default" in quiet.stdout


def test_plain_lines_wait_an_interval_and_say_only_what_is_new() -> None:
    now = [100.0]
    console = Console(file=StringIO(), width=80)
    lines = PlainLines(console, "scoring x.py on builtin:default", 10.0, clock=lambda: now[0])
    lines.update("quality 30: encoding")
    now[0] = 109.9
    assert not lines.write_if_due()  # never in the first interval: a quick error stays alone
    now[0] = 110.0
    assert lines.write_if_due()
    lines.update("quality 30: decoding")
    now[0] = 115.0
    assert not lines.write_if_due()  # at most one line an interval
    now[0] = 120.0
    assert lines.write_if_due()
    now[0] = 140.0
    assert not lines.write_if_due()  # nothing new
    lines.update("quality 50: \x1b[2Kencoding")
    assert lines.write_if_due()
    assert console.file.getvalue().splitlines() == [  # type: ignore[attr-defined]
        "aicodec: 0:00:10 scoring x.py on builtin:default: quality 30: encoding",
        "aicodec: 0:00:20 scoring x.py on builtin:default: quality 30: decoding",
        "aicodec: 0:00:40 scoring x.py on builtin:default: quality 50: \\x1b[2Kencoding",
    ]


def bar_at(width: int, *events: EvolveEvent) -> str:
    """The evolve bar as a terminal of ``width`` columns shows it after ``events``."""
    terminal = Console(width=width, file=StringIO(), force_terminal=True, color_system=None)
    with progress_bar(
        Settings(), "evolve", total=20, count=False, transient=False, console=terminal
    ) as bar:
        display = _EvolveDisplay(bar)
        for event in events:
            display(event)
        shown = Console(width=width, file=StringIO(), color_system=None)
        shown.print(bar.progress.make_tasks_table(bar.progress.tasks))
        return shown.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_the_evolve_bar_names_the_stage_first_at_80_columns() -> None:
    ladder = "ladder x265-medium crf 28 on builtin:default"
    setup = bar_at(80, EvolveEvent(0, 20, "setup", ladder, None, 0, 0.0))
    assert setup.splitlines()[0].startswith(f"set-up: {ladder} ")
    scoring = EvolveEvent(3, 20, "score", "builtin:default quality 40: encoding", -4.7, 1, 0.01)
    (line,) = bar_at(80, scoring).splitlines()
    assert line.startswith("#3/20 score: builtin:default quality 40: encoding ")
    assert len(line) <= 80 and "0:00:0" in line  # the elapsed time still shows
    # wide: every figure; narrow: the stage still first, the rest cut
    assert "best vs x264 -4.70 % | adopted 1 | $0.010" in bar_at(120, scoring)
    (narrow,) = bar_at(40, scoring).splitlines()
    assert narrow.startswith("#3/20 score:") and len(narrow) <= 40
    # a stage's first event says only its name: once
    started = bar_at(80, EvolveEvent(3, 20, "generate", "generate", -4.7, 1, 0.01))
    assert started.startswith("#3/20 generate ")


@pytest.fixture(scope="module")
def evolved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:  # type: ignore[type-arg]
    """A store with a finished one-iteration evolve run on four frames of the built-in clip,
    its --json summary and its stderr (not a terminal)."""
    folder = tmp_path_factory.mktemp("evolved")
    load_clip(None, Settings(), count=4).frames.write_y4m(folder / "source.y4m")
    result = lab(
        "evolve",
        "--iterations",
        "1",
        "--video",
        str(folder / "source.y4m"),
        "--holdout",
        "none",
        "--qualities",
        "30,50,70,90",
        "--encoders",
        "x264",
        "--parent",
        str(INTRA),
        "--seed",
        "8",
        "--db",
        str(folder / "store.db"),
        "--git-repo",
        str(folder / "codecs"),
        "--json",
        AICODEC_PROGRESS_INTERVAL_S="0.5",
    )
    assert result.returncode == 0, result.stderr
    return folder / "store.db", json.loads(result.stdout), result.stderr


@pytest.mark.slow
def test_the_summary_counts_the_set_up_time(evolved: tuple[Path, dict, str]) -> None:  # type: ignore[type-arg]
    _, summary, stderr = evolved
    setup, iterations, total = (
        summary["setup_seconds"],
        summary["seconds"],
        summary["total_seconds"],
    )
    assert setup > 0 and iterations > 0
    assert total >= setup + iterations - 0.01  # stage times are kept to the millisecond
    # off a terminal the set-up and the iteration said what they did
    said = [text for _, text in progress_lines(stderr)]
    assert any(text.startswith("evolve: set-up: ") for text in said), stderr
    assert any(text.startswith("evolve: #1/1 ") for text in said), stderr
    assert re.search(r"^#1 parent \d+: ", stderr, re.MULTILINE)  # the iteration's line


@pytest.mark.slow
def test_history_fits_80_columns_without_cutting_a_header_word(
    evolved: tuple[Path, dict, str],  # type: ignore[type-arg]
) -> None:
    db, _, _ = evolved
    for plans in ([], ["--plans"]):
        result = lab("history", *plans, "--db", str(db), COLUMNS="80")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, result.stdout
        # each table's header: the lines above its rule, every word whole
        rules = [index for index, line in enumerate(lines) if line.strip().startswith("─")]
        assert len(rules) == 1 + len(plans)
        words = {"#", "parent", "codec", "origin", "status", "BD-rate", "vs", "reason"}
        if plans:
            words |= {"planner", "predicted", "confidence", "seconds", "hypothesis"}
        headers = set()
        for rule in rules:
            above = rule
            while above > 0 and lines[above - 1].strip():
                above -= 1
            headers |= {word for line in lines[above:rule] for word in line.split()}
        assert headers == words, result.stdout
        assert "adopted:" in result.stdout  # the reason, wrapped between words
