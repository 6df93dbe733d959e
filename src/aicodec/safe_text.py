"""Text from a candidate or a model made safe to show: control characters appear as escapes.

A codec's exception message or a model's response may hold ESC/OSC sequences (a clipboard
write, a line erase), carriage returns that overwrite a printed line, or bidi overrides that
hide text. Each is shown as a visible escape (``\\x1b``, ``\\r``, ``\\u202e``) wherever such
text reaches a terminal, a log line, a report or a served page.
"""

from __future__ import annotations

import re

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

_UNSAFE = [
    *range(0x00, 0x20),  # C0 controls, tab, newline and carriage return among them
    0x7F,  # DEL
    *range(0x80, 0xA0),  # C1 controls (CSI 0x9b, OSC 0x9d, NEL 0x85)
    0x2028,  # line separator
    0x2029,  # paragraph separator
    *range(0x202A, 0x202F),  # bidi embeddings and overrides
    *range(0x2066, 0x206A),  # bidi isolates
]


def _escape(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ESCAPES = {chr(code): _escape(code) for code in _UNSAFE}
_ALL = re.compile("[" + "".join(re.escape(char) for char in _ESCAPES) + "]")
_ALL_BUT_NEWLINE = re.compile("[" + "".join(re.escape(c) for c in _ESCAPES if c != "\n") + "]")


def _replace(found: re.Match[str]) -> str:
    return _ESCAPES[found.group()]


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """The text with every control, line-separator and bidi-override character escaped."""
    return (_ALL_BUT_NEWLINE if keep_newlines else _ALL).sub(_replace, text)
