"""Tests of printable: every character that can move, erase or hide text is shown escaped."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3
import threading
import unicodedata
import urllib.request
from pathlib import Path

import pytest
from markupsafe import escape

from aicodec.report.data import apply_edits
from aicodec.safe_text import printable
from aicodec.settings import Settings
from tests.test_cli import aicodec, assert_one_line_error
from tests.test_generate import aicodec_env
from tests.test_report import evolved, rows

__all__ = ["evolved"]  # the fixture: a store with one real evolve run

HOSTILE = "ok\n\rFAKE\x1b[2K\x1b]52;c;ZXZpbA==\x07\u2028\u202etxt.exe\x9b31m\x7f\tend"


def test_hostile_text_is_shown_escaped() -> None:
    assert printable(HOSTILE) == (
        "ok\\n\\rFAKE\\x1b[2K\\x1b]52;c;ZXZpbA==\\x07\\u2028\\u202etxt.exe\\x9b31m\\x7f\\tend"
    )


def test_keep_newlines_keeps_only_newlines() -> None:
    assert printable("a\nb\r\n\x1bc\td", keep_newlines=True) == "a\nb\\r\n\\x1bc\\td"


@pytest.mark.parametrize("keep_newlines", [False, True])
def test_no_unsafe_character_survives(keep_newlines: bool) -> None:
    every = "".join(chr(code) for code in range(0x3000))
    shown = printable(every, keep_newlines=keep_newlines)
    kept_controls = {ch for ch in shown if unicodedata.category(ch) == "Cc"}
    assert kept_controls == ({"\n"} if keep_newlines else set())
    for code in [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        assert chr(code) not in shown
        assert f"\\u{code:04x}" in shown


def test_ordinary_text_is_unchanged() -> None:
    text = 'encode failed: [bold]x[/] at C:\\tmp "é" ünïcödé 日本 🎥 <b>&amp;'
    assert printable(text) == text
    assert printable("") == ""


RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Any character a terminal or a page must not get raw (newline and tab aside)."""

MESSAGE = (
    "table missing\n\rscore ok, BD-rate -50.00 %\x1b[2K\x1b]52;c;ZXZpbA==\x07"
    "\u2028[bold]x[/bold]\u202eend"
)
SHOWN = (
    "table missing\\n\\rscore ok, BD-rate -50.00 %\\x1b[2K\\x1b]52;c;ZXZpbA==\\x07"
    "\\u2028[bold]x[/bold]\\u202eend"
)


def test_a_codecs_hostile_exception_is_one_escaped_line(tmp_path: Path) -> None:
    codec = tmp_path / "hostile.py"
    codec.write_text(
        '"""Its encoder raises with a message made to rewrite the terminal it lands on."""\n\n'
        "import numpy as np\n\n\n"
        "def encode(frames, quality: int) -> bytes:\n"
        f"    raise ValueError({MESSAGE!r})\n\n\n"
        "def decode(bitstream: bytes):\n"
        "    plane = np.zeros((1, 16, 16), np.uint8)\n"
        "    return plane, plane[:, :8, :8], plane[:, :8, :8]\n"
    )
    db = str(tmp_path / "store.db")
    for command in ("run", "score"):
        result = aicodec(command, str(codec), "--frames", "2", "--qualities", "40", "--db", db)
        assert_one_line_error(result, f"encode error: ValueError: {SHOWN}")
        assert not RAW.search(result.stdout + result.stderr), repr(result.stderr)
    stored = rows(Path(db), "SELECT DISTINCT error FROM candidate_runs")
    # the sandbox escapes a child's text as it arrives: the store holds it shown, never raw
    assert stored and all(SHOWN in (error or "") for (error,) in stored), stored
    assert not any(RAW.search(error or "") for (error,) in stored)


@pytest.fixture(scope="module")
def hostile_run(evolved: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of a real evolve run whose model text (plans, reasons, the stop reason) and
    candidates (names, code) hold the hostile message."""
    db = tmp_path_factory.mktemp("hostile") / "store.db"
    shutil.copy(evolved, db)
    plan = json.dumps({"root_cause": MESSAGE, "hypothesis": MESSAGE, "steps": MESSAGE})
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE evolution_iterations SET reason = ?, plan_json = ?", (MESSAGE, plan)
        )
        connection.execute("UPDATE evolution_runs SET stop_reason = ?", (MESSAGE,))
        connection.execute(  # a line of its own in each: a child's comes as an edit
            "UPDATE candidates SET name = name || ?, source = source || ? || id || ?",
            (MESSAGE, f"\n# {MESSAGE}", "\n\tpass\n"),
        )
    return db


@pytest.mark.slow
def test_report_shows_hostile_text_escaped(hostile_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = aicodec_env("report", "--db", str(hostile_run), "-o", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert not RAW.search(html), RAW.search(html)
    page_form = str(escape(printable(MESSAGE, keep_newlines=True)))
    assert html.count(page_form) >= 3  # the plan, the reason, the stop reason
    script = re.search(r'<script type="application/json" id="code-data">(.*?)</script>', html, re.S)
    assert script is not None
    data = json.loads(script[1])

    def code(key: str) -> str:  # as the page's script builds it
        entry = data[key]
        if "lines" in entry:
            return "\n".join(entry["lines"])
        return apply_edits(code(str(entry["parent"])), entry["edits"])

    lines = [line for key in data for line in code(key).split("\n")]
    assert len(data) > 1 and not any(RAW.search(line) for line in lines)  # put in the page
    shown = "\\rscore ok, BD-rate -50.00 %\\x1b[2K\\x1b]52;c;ZXZpbA==\\x07\\u2028"
    assert sum(line.startswith(shown) for line in lines) == len(data)
    assert "\tpass" in lines  # code keeps its tabs


@pytest.mark.slow
def test_history_shows_hostile_text_escaped_and_json_keeps_it(hostile_run: Path) -> None:
    table = aicodec_env("history", "--plans", "--db", str(hostile_run), env={"COLUMNS": "2000"})
    assert table.returncode == 0, table.stderr
    assert not RAW.search(table.stdout + table.stderr), repr(table.stdout)
    iterations = rows(hostile_run, "SELECT COUNT(*) FROM evolution_iterations")[0][0]
    assert table.stdout.count(SHOWN) == 2 * iterations  # each one's reason and hypothesis
    data = json.loads(aicodec_env("history", "--plans", "--json", "--db", str(hostile_run)).stdout)
    assert {entry["reason"] for entry in data} == {MESSAGE}


@pytest.mark.slow
def test_served_pages_and_log_show_hostile_text_escaped(hostile_run: Path) -> None:
    from aicodec.report import PageServer
    from aicodec.store import Store

    store = Store(str(hostile_run), read_only=True)
    logged: list[str] = []
    server = PageServer(store, Settings(), 0, log=logged.append)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pages = []
        for path in ("runs/1", "runs/1/report.html", "candidates/2"):
            with urllib.request.urlopen(server.url + path, timeout=30) as response:
                pages.append(response.read().decode())
        with socket.create_connection(("127.0.0.1", server.server_address[1])) as client:
            client.sendall(b"GET /x\x1b]52;c;ZXZpbA==\x07\xe2\x80\xa8 HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        pages.append(answer.decode("utf-8").split("\r\n\r\n", 1)[1])
    finally:
        server.shutdown()
        server.server_close()
        store.close()
    for page in pages:
        assert not RAW.search(page), RAW.search(page)
    assert all("\\x1b[2K\\x1b]52;c;ZXZpbA==\\x07" in page for page in pages[:3])
    assert "no page at /x\\x1b]52;c;ZXZpbA==\\x07" in pages[3]
    assert logged and not any(RAW.search(line) for line in logged)
    assert any("/x\\x1b]52;c;ZXZpbA==\\x07" in line for line in logged)
