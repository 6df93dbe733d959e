"""Turning a model's answer into the full source of a candidate.

A model answers in one of two forms:

* a complete file in a fenced code block (```` ```python ```` or a bare ```` ``` ````);
* SEARCH/REPLACE edits against the parent, possibly several, possibly inside fences::

      <<<<<<< SEARCH
      exact lines from the parent
      =======
      replacement lines
      >>>>>>> REPLACE

An answer holding any SEARCH or REPLACE marker is read as edits, whatever fences it also
has. Each SEARCH must match whole lines of the current text (the parent as changed by the
blocks before it) exactly once; when it matches nowhere, a second pass ignores trailing
whitespace at the end of each line. There is no fuzzier matching than that. Whatever goes
wrong becomes a :class:`GenerationError` with one precise line (an :class:`EditError` when
the edits cannot be applied); the parent is never returned as if it were a new candidate.
The library never prints.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from aicodec.errors import GenerationError

NO_CODE = "the answer contains no python code block and no SEARCH/REPLACE edits"
NO_PARENT = "the answer has SEARCH/REPLACE edits but there is no parent source to apply them to"
UNCHANGED = "the edits leave the parent unchanged"

SEARCH_MARKER = "<<<<<<< SEARCH"
DIVIDER_MARKER = "======="
REPLACE_MARKER = ">>>>>>> REPLACE"

# Fence info strings that mark a block as python (compared in lower case).
PYTHON_LANGUAGES: frozenset[str] = frozenset({"", "python", "python3", "py", "py3"})

_SEARCH_RE = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH[ \t]*$")
_DIVIDER_RE = re.compile(r"^[ \t]*={5,9}[ \t]*$")
_REPLACE_RE = re.compile(r"^[ \t]*>{5,9}[ \t]*REPLACE[ \t]*$")
_FENCE_OPEN_RE = re.compile(r"^( {0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$")
_FENCE_CLOSE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_DEF_ENCODE_RE = re.compile(r"^def[ \t]+encode[ \t]*\(", re.MULTILINE)
_DEF_DECODE_RE = re.compile(r"^def[ \t]+decode[ \t]*\(", re.MULTILINE)

_SHOWN_CHARS = 80  # longest excerpt of a line quoted in an error message
_SHOWN_HITS = 5  # most line numbers listed for a SEARCH that matches several places


class EditError(GenerationError):
    """SEARCH/REPLACE edits that cannot be applied (bad markers, a SEARCH that matches nowhere
    or more than once); the model gets a repair turn with the message."""


@dataclass(frozen=True)
class Edit:
    """One SEARCH/REPLACE block: its 1-based number in the answer and its lines (no ends)."""

    number: int
    search: tuple[str, ...]
    replace: tuple[str, ...]


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block of the answer: its language (lower case) and its text."""

    language: str
    text: str


# ---------------------------------------------------------------------------- public API


def answer_kind(answer: str) -> str:
    """What an answer holds, for logging: ``"edits"``, ``"file"`` or ``"none"``.

    ``"edits"`` when any line is a SEARCH or REPLACE marker, ``"file"`` when a non-empty
    python (or unlabelled) fenced block is present, ``"none"`` otherwise.
    """
    text = _normalise(answer)
    if any(_SEARCH_RE.match(line) or _REPLACE_RE.match(line) for line in text.split("\n")):
        return "edits"
    if any(b.language in PYTHON_LANGUAGES and b.text.strip() for b in code_blocks(text)):
        return "file"
    return "none"


def extract_candidate(answer: str, parent_source: str | None) -> str:
    """The full source of the candidate an answer describes; GenerationError when it cannot.

    Edits are applied in order to ``parent_source``. A full file comes from the fenced
    blocks by these rules: among the python blocks (info string ``python``, ``py`` or none)
    that define both ``encode`` and ``decode`` at the top level, the longest; when none
    defines both, the longest python block; ties go to the later block. The result never
    equals the parent (up to trailing whitespace): that is an error, not a candidate.
    """
    text = _normalise(answer)
    kind = answer_kind(text)
    if kind == "none":
        raise GenerationError(NO_CODE)
    source: str | None
    if kind == "edits":
        if parent_source is None:
            raise GenerationError(NO_PARENT)
        source = apply_edits(parent_source, parse_edits(text))
    else:
        source = pick_file(code_blocks(text))
        if source is None:  # pragma: no cover - answer_kind said there is a python block
            raise GenerationError(NO_CODE)
    if parent_source is not None and _same_code(source, parent_source):
        raise GenerationError(UNCHANGED)
    return source


def parse_edits(answer: str) -> list[Edit]:
    """The SEARCH/REPLACE blocks of an answer, in order; GenerationError on bad markers.

    Text outside the blocks (prose, fences, file names) is ignored, and so is a ``=======``
    line outside a block (a markdown underline). Each block needs its SEARCH marker, one
    divider and its REPLACE marker, in that order, and a SEARCH part that is not blank.
    """
    parser = _EditParser()
    for line_number, line in enumerate(_normalise(answer).split("\n"), start=1):
        parser.read(line, f"(answer line {line_number})")
    return parser.finish()


def apply_edits(parent_source: str, edits: list[Edit]) -> str:
    """The parent with every edit applied in order (each to the result of those before)."""
    text = parent_source
    for edit in edits:
        text = _apply(text, edit)
    return text


def code_blocks(answer: str) -> list[CodeBlock]:
    """Every fenced block of an answer, in order (an unclosed last fence runs to the end)."""
    lines = _normalise(answer).split("\n")
    blocks: list[CodeBlock] = []
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN_RE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence, language = len(opening.group(1)), opening.group(2), opening.group(3)
        body: list[str] = []
        index += 1
        while index < len(lines):
            closing = _FENCE_CLOSE_RE.match(lines[index])
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                break
            body.append(_dedent(lines[index], indent))
            index += 1
        index += 1  # past the closing fence
        blocks.append(CodeBlock(language.lower(), "\n".join(body)))
    return blocks


def pick_file(blocks: list[CodeBlock]) -> str | None:
    """The full source among fenced blocks (rules in :func:`extract_candidate`), or None."""
    python = [block for block in blocks if block.language in PYTHON_LANGUAGES]
    python = [block for block in python if block.text.strip()]
    if not python:
        return None
    complete = [block for block in python if _defines_codec(block.text)]
    pool = complete or python
    chosen = max(reversed(pool), key=lambda block: len(block.text))  # ties: the later one
    return chosen.text.rstrip() + "\n"


# ------------------------------------------------------------------------------ helpers


class _EditParser:
    """Reads an answer line by line: outside a block, in its SEARCH part or in its REPLACE
    part (``state``); EditError at the first marker out of place."""

    def __init__(self) -> None:
        self.edits: list[Edit] = []
        self.state = "outside"
        self.number = 0  # of the block being read, or of the last one read
        self.search: list[str] = []
        self.replace: list[str] = []

    def read(self, line: str, where: str) -> None:
        """Take the next ``line`` of the answer (``where``: its place, for messages)."""
        is_search, is_replace = bool(_SEARCH_RE.match(line)), bool(_REPLACE_RE.match(line))
        if self.state == "outside":
            self._outside(is_search, is_replace, where)
        elif self.state == "search":
            self._in_search(line, is_search, is_replace, where)
        else:
            self._in_replace(line, is_search, is_replace, where)

    def _outside(self, is_search: bool, is_replace: bool, where: str) -> None:
        if is_search:
            self.number += 1
            self.search, self.replace, self.state = [], [], "search"
        elif is_replace:
            raise EditError(
                f"block {self.number + 1}: malformed markers: '{REPLACE_MARKER}' without a "
                f"'{SEARCH_MARKER}' before it {where}"
            )

    def _in_search(self, line: str, is_search: bool, is_replace: bool, where: str) -> None:
        if is_search:
            raise EditError(
                f"block {self.number}: malformed markers: a second '{SEARCH_MARKER}' before "
                f"its '{DIVIDER_MARKER}' divider {where}"
            )
        if is_replace:
            raise EditError(
                f"block {self.number}: malformed markers: '{REPLACE_MARKER}' before its "
                f"'{DIVIDER_MARKER}' divider {where}"
            )
        if _DIVIDER_RE.match(line):
            self.state = "replace"
        else:
            self.search.append(line)

    def _in_replace(self, line: str, is_search: bool, is_replace: bool, where: str) -> None:
        if is_search:
            raise EditError(
                f"block {self.number}: malformed markers: a new '{SEARCH_MARKER}' before its "
                f"'{REPLACE_MARKER}' {where}"
            )
        if _DIVIDER_RE.match(line):
            raise EditError(
                f"block {self.number}: malformed markers: a second '{DIVIDER_MARKER}' divider "
                f"{where}"
            )
        if not is_replace:
            self.replace.append(line)
            return
        if not any(item.strip() for item in self.search):
            raise EditError(
                f"block {self.number}: the SEARCH part is empty; it must quote the parent "
                "lines to replace"
            )
        self.edits.append(Edit(self.number, tuple(self.search), tuple(self.replace)))
        self.state = "outside"

    def finish(self) -> list[Edit]:
        """The blocks read; EditError when the answer ended inside one."""
        if self.state == "search":
            raise EditError(
                f"block {self.number}: malformed markers: the answer ends before its "
                f"'{DIVIDER_MARKER}' divider"
            )
        if self.state == "replace":
            raise EditError(
                f"block {self.number}: malformed markers: the answer ends before its "
                f"'{REPLACE_MARKER}'"
            )
        return self.edits


def _normalise(text: str) -> str:
    """Answer text with Windows line ends made plain."""
    return text.replace("\r\n", "\n")


def _dedent(line: str, indent: int) -> str:
    """Remove up to ``indent`` leading spaces (the indentation of the opening fence)."""
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


def _defines_codec(text: str) -> bool:
    """Whether a block defines both encode and decode at the top level."""
    return bool(_DEF_ENCODE_RE.search(text) and _DEF_DECODE_RE.search(text))


def _split_lines(text: str) -> list[str]:
    """Lines of a text with their ``\\n`` ends (only ``\\n`` splits, unlike splitlines)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _bare(line: str) -> str:
    """A line without its line end."""
    return line.rstrip("\n").removesuffix("\r")


def _same_code(a: str, b: str) -> bool:
    """Whether two sources are equal up to trailing whitespace on lines and at the end."""
    return _trimmed(a) == _trimmed(b)


def _trimmed(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _hits(lines: list[str], wanted: list[str]) -> list[int]:
    """Start indices where ``wanted`` equals a run of consecutive lines."""
    size = len(wanted)
    first = wanted[0]
    return [
        start
        for start in range(len(lines) - size + 1)
        if lines[start] == first and lines[start : start + size] == wanted
    ]


def _apply(text: str, edit: Edit) -> str:
    """One edit applied to a text; GenerationError when its SEARCH is not there exactly once."""
    lines = _split_lines(text)
    bare = [_bare(line) for line in lines]
    search = list(edit.search)
    hits = _hits(bare, search)
    if not hits:
        hits = _hits([line.rstrip() for line in bare], [line.rstrip() for line in search])
    if not hits:
        raise EditError(_not_found(edit, bare))
    if len(hits) > 1:
        shown = ", ".join(str(start + 1) for start in hits[:_SHOWN_HITS])
        more = ", ..." if len(hits) > _SHOWN_HITS else ""
        raise EditError(
            f"block {edit.number}: the SEARCH text matches {_target(edit)} {len(hits)} times "
            f"(at lines {shown}{more}); it must match exactly once, so quote more lines"
        )
    start, end = hits[0], hits[0] + len(search)
    ending = "\r\n" if lines[start].endswith("\r\n") else "\n"
    replacement = [line + ending for line in edit.replace]
    if replacement and not lines[end - 1].endswith("\n"):
        replacement[-1] = edit.replace[-1]  # the match ran to the end of a text without one
    return "".join(lines[:start] + replacement + lines[end:])


def _target(edit: Edit) -> str:
    """The text a block is applied to, in words."""
    if edit.number == 1:
        return "the parent"
    if edit.number == 2:
        return "the parent as changed by block 1"
    return f"the parent as changed by blocks 1-{edit.number - 1}"


def _shown(line: str) -> str:
    """A line quoted for an error message, truncated."""
    text = line.strip()
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return repr(text)


def _not_found(edit: Edit, bare: list[str]) -> str:
    """The error for a SEARCH that matches nowhere, naming the closest line of the text."""
    probe = next(line.strip() for line in edit.search if line.strip())
    head = (
        f"block {edit.number}: the SEARCH text is not in {_target(edit)} "
        f"(its first line {_shown(probe)})"
    )
    best_index, best_ratio = -1, -1.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(probe)
    for index, line in enumerate(bare):
        matcher.set_seq1(line.strip())
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best_index, best_ratio = index, ratio
    if best_index < 0 or best_ratio == 0.0:
        return f"{head}; no line of it is close"
    return f"{head}; the closest is line {best_index + 1}: {_shown(bare[best_index])}"
