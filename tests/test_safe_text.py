"""Tests of printable: every character that can move, erase or hide text is shown escaped."""

from __future__ import annotations

import unicodedata

import pytest

from aicodec.safe_text import printable

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
