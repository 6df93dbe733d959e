"""Turning a model's answer into candidate source: full files in fences and SEARCH/REPLACE."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicodec.candidates.edits import answer_kind, extract_candidate
from aicodec.errors import GenerationError
from aicodec.validation import validate_source

SEEDS = Path(__file__).resolve().parents[1] / "baselines" / "seeds"
PARENT = (SEEDS / "intra_dct.py").read_text(encoding="utf-8")
PARENT_LINES = PARENT.split("\n")

SMALL_CODEC = """import numpy as np


def encode(frames, quality):
    return b""


def decode(bitstream):
    chroma = np.zeros((1, 1, 1), np.uint8)
    return np.zeros((1, 2, 2), np.uint8), chroma, chroma
"""


def edit_block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def line_number(text: str) -> int:
    """1-based line of the parent that is exactly ``text``."""
    return PARENT_LINES.index(text) + 1


def message_of(answer: str, parent: str | None = PARENT) -> str:
    with pytest.raises(GenerationError) as info:
        extract_candidate(answer, parent)
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------ full files


def test_full_file_in_fences_with_prose_around_it() -> None:
    answer = f"Here is a smaller codec.\n\n```python\n{SMALL_CODEC}```\n\nIt codes nothing.\n"
    assert answer_kind(answer) == "file"
    assert extract_candidate(answer, PARENT) == SMALL_CODEC
    assert extract_candidate(answer, None) == SMALL_CODEC


def test_full_file_in_a_bare_fence_and_with_crlf_line_ends() -> None:
    answer = f"Try this:\r\n```\r\n{SMALL_CODEC.replace(chr(10), chr(13) + chr(10))}```\r\n"
    assert extract_candidate(answer, None) == SMALL_CODEC


def test_a_modified_seed_in_fences_is_taken_whole() -> None:
    child = PARENT.replace('"tilt": 0.4,', '"tilt": 0.7,')
    answer = f"I raised the tilt.\n```python\n{child}```\nDone."
    source = extract_candidate(answer, PARENT)
    assert source == child
    assert validate_source(source).valid


def test_several_blocks_the_one_defining_encode_and_decode_wins() -> None:
    helper = "def helper(x):\n" + "    y = x + 1\n" * 40 + "    return y\n"
    answer = (
        "First a helper:\n```python\n" + helper + "```\n"
        "A shell command:\n```bash\npip install numpy\n```\n"
        "And the file:\n```python\n" + SMALL_CODEC + "```\n"
    )
    assert len(helper) > len(SMALL_CODEC)
    assert extract_candidate(answer, PARENT) == SMALL_CODEC


def test_several_blocks_without_a_complete_one_the_longest_python_block_wins() -> None:
    short = "x = 1\n"
    longer = "def encode(frames, quality):\n    return b'x'\n"
    shell = "echo " + "a" * 200 + "\n"
    answer = f"```py\n{short}```\n```python\n{longer}```\n```sh\n{shell}```\n"
    assert extract_candidate(answer, None) == longer


def test_only_non_python_blocks_count_as_no_code() -> None:
    answer = "```bash\nls -l\n```\n```json\n{}\n```"
    assert answer_kind(answer) == "none"
    assert message_of(answer) == (
        "the answer contains no python code block and no SEARCH/REPLACE edits"
    )


def test_no_code_at_all() -> None:
    answer = "I think the quantiser should be coarser at high frequencies."
    assert answer_kind(answer) == "none"
    assert message_of(answer) == (
        "the answer contains no python code block and no SEARCH/REPLACE edits"
    )
    assert message_of(answer, None) == (
        "the answer contains no python code block and no SEARCH/REPLACE edits"
    )


def test_a_full_file_identical_to_the_parent_is_refused() -> None:
    answer = f"No change needed:\n```python\n{PARENT}```\n"
    assert message_of(answer) == "the edits leave the parent unchanged"
    # trailing whitespace alone is no change either
    padded = PARENT.replace('"tilt": 0.4,', '"tilt": 0.4,   ')
    assert message_of(f"```python\n{padded}\n\n```") == "the edits leave the parent unchanged"


# ------------------------------------------------------------------------- SEARCH/REPLACE


def test_single_edit_applied_to_the_parent() -> None:
    answer = "Raise the tilt:\n\n" + edit_block('    "tilt": 0.4,', '    "tilt": 0.9,')
    assert answer_kind(answer) == "edits"
    source = extract_candidate(answer, PARENT)
    assert source == PARENT.replace('    "tilt": 0.4,', '    "tilt": 0.9,')
    assert validate_source(source).valid
    assert validate_source(source).params["tilt"] == 0.9


def test_several_edits_inside_fences_are_applied_in_order() -> None:
    first = edit_block(
        'MAGIC = b"IDCT"\nVERSION = 1',
        'MAGIC = b"IDCT"\nVERSION = 2',
    )
    second = edit_block(
        "    return scale * 7.0 * 2.0 ** ((75.0 - quality) / 20.0)",
        "    # a gentler slope\n    return scale * 6.0 * 2.0 ** ((75.0 - quality) / 24.0)",
    )
    # the third block edits a line the first one wrote
    third = edit_block("VERSION = 2", "VERSION = 3")
    answer = f"Two changes.\n\n```python\n{first}```\n\nand\n\n```python\n{second}{third}```\n"
    source = extract_candidate(answer, PARENT)
    expected = PARENT.replace("VERSION = 1", "VERSION = 3").replace(
        "    return scale * 7.0 * 2.0 ** ((75.0 - quality) / 20.0)",
        "    # a gentler slope\n    return scale * 6.0 * 2.0 ** ((75.0 - quality) / 24.0)",
    )
    assert source == expected
    assert validate_source(source).valid


def test_an_edit_can_delete_lines() -> None:
    answer = edit_block("import math\nimport struct", "import struct")
    source = extract_candidate(answer, PARENT)
    assert source == PARENT.replace("import math\nimport struct", "import struct")


def test_trailing_whitespace_in_the_search_is_tolerated() -> None:
    search = '    "deadzone": 0.15,   \n    "entropy": "lzma",\t'
    answer = edit_block(search, '    "deadzone": 0.2,\n    "entropy": "lzma",')
    source = extract_candidate(answer, PARENT)
    assert source == PARENT.replace('"deadzone": 0.15,', '"deadzone": 0.2,')


def test_trailing_whitespace_in_the_parent_is_tolerated() -> None:
    parent = PARENT.replace("VERSION = 1\n", "VERSION = 1  \n")
    source = extract_candidate(edit_block("VERSION = 1", "VERSION = 5"), parent)
    assert source == PARENT.replace("VERSION = 1\n", "VERSION = 5\n")


def test_leading_whitespace_is_not_forgiven() -> None:
    # no fuzzy matching beyond trailing whitespace: a dropped indentation does not match
    message = message_of(edit_block('"tilt": 0.4,', '"tilt": 0.9,'))
    assert message.startswith("block 1: the SEARCH text is not in the parent")


def test_edits_without_a_parent() -> None:
    answer = edit_block("VERSION = 1", "VERSION = 2")
    assert message_of(answer, None) == (
        "the answer has SEARCH/REPLACE edits but there is no parent source to apply them to"
    )


def test_search_not_found_names_the_block_and_the_nearest_parent_line() -> None:
    good = edit_block("VERSION = 1", "VERSION = 2")
    bad = edit_block(
        "def quality_step(quality, scale, bias):\n    pass", "def quality_step(q, s):\n    pass"
    )
    message = message_of(good + bad)
    target = "def quality_step(quality, scale):"
    assert message.startswith("block 2: the SEARCH text is not in the parent as changed by block 1")
    assert "'def quality_step(quality, scale, bias):'" in message
    assert f"the closest is line {line_number(target)}: {target!r}" in message


def test_search_not_found_truncates_a_long_nearest_line() -> None:
    long_line = [line for line in PARENT_LINES if len(line) > 90][0]
    search = long_line.replace("LZMA2", "LZMA1")
    message = message_of(edit_block(search, "pass"))
    assert f"the closest is line {line_number(long_line)}: " in message
    assert "...'" in message
    assert len(message) < 300


def test_search_matching_more_than_once_names_the_block_and_the_count() -> None:
    twice = '    if coder == "lzma":'
    count = PARENT.split("\n").count(twice)
    assert count == 2
    answer = edit_block("VERSION = 1", "VERSION = 2") + edit_block(twice, '    if coder == "xz":')
    message = message_of(answer)
    assert message.startswith(
        f"block 2: the SEARCH text matches the parent as changed by block 1 {count} times"
    )
    assert "exactly once" in message


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "<<<<<<< SEARCH\nVERSION = 1\n>>>>>>> REPLACE\n",
            "block 1: malformed markers: '>>>>>>> REPLACE' before its '=======' divider",
        ),
        (
            edit_block("VERSION = 1", "VERSION = 2") + "<<<<<<< SEARCH\nVERSION = 2\n",
            "block 2: malformed markers: the answer ends before its '=======' divider",
        ),
        (
            "<<<<<<< SEARCH\nVERSION = 1\n=======\nVERSION = 2\n",
            "block 1: malformed markers: the answer ends before its '>>>>>>> REPLACE'",
        ),
        (
            "=======\nVERSION = 2\n>>>>>>> REPLACE\n",
            "block 1: malformed markers: '>>>>>>> REPLACE' without a '<<<<<<< SEARCH' before it",
        ),
        (
            "<<<<<<< SEARCH\nVERSION = 1\n<<<<<<< SEARCH\n",
            "block 1: malformed markers: a second '<<<<<<< SEARCH' before its '=======' divider",
        ),
        (
            "<<<<<<< SEARCH\nVERSION = 1\n=======\nVERSION = 2\n<<<<<<< SEARCH\n",
            "block 1: malformed markers: a new '<<<<<<< SEARCH' before its '>>>>>>> REPLACE'",
        ),
        (
            "<<<<<<< SEARCH\nVERSION = 1\n=======\nVERSION = 2\n=======\n>>>>>>> REPLACE\n",
            "block 1: malformed markers: a second '=======' divider",
        ),
    ],
)
def test_malformed_markers_name_the_block(answer: str, expected: str) -> None:
    assert answer_kind(answer) == "edits"
    assert message_of(answer).startswith(expected)


def test_an_empty_search_is_refused() -> None:
    message = message_of(edit_block("", "x = 1"))
    assert message.startswith("block 1: the SEARCH part is empty")


def test_edits_that_leave_the_parent_unchanged() -> None:
    answer = edit_block("VERSION = 1", "VERSION = 1")
    assert message_of(answer) == "the edits leave the parent unchanged"
    # a change undone by a later block is no change either
    undo = edit_block("VERSION = 1", "VERSION = 2") + edit_block("VERSION = 2", "VERSION = 1")
    assert message_of(undo) == "the edits leave the parent unchanged"


def test_edits_win_over_a_full_file_in_the_same_answer() -> None:
    answer = f"```python\n{SMALL_CODEC}```\n" + edit_block("VERSION = 1", "VERSION = 2")
    assert answer_kind(answer) == "edits"
    assert extract_candidate(answer, PARENT) == PARENT.replace("VERSION = 1", "VERSION = 2")


def test_a_markdown_underline_outside_blocks_is_ignored() -> None:
    answer = "Plan\n=======\n\n" + edit_block("VERSION = 1", "VERSION = 2")
    assert extract_candidate(answer, PARENT) == PARENT.replace("VERSION = 1", "VERSION = 2")


def test_an_edit_at_the_end_of_a_parent_without_a_final_newline() -> None:
    parent = "x = 1\ny = 2"
    assert extract_candidate(edit_block("y = 2", "y = 3\nz = 4"), parent) == "x = 1\ny = 3\nz = 4"
