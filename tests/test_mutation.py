"""The offline mutation provider: valid, in-range, deterministic children that differ in PARAMS."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from aicodec.errors import ConfigError, GenerationError
from aicodec.providers.mutation import MutationProvider, describe
from aicodec.validation import validate_source

SEEDS = Path(__file__).resolve().parents[1] / "baselines" / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.py"))
SEED_IDS = [path.stem for path in SEED_FILES]


def params_span(source: str) -> tuple[int, int]:
    """Character offsets of the PARAMS dict literal (the parent's one is plain ASCII)."""
    tree = ast.parse(source)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) == "PARAMS":
            value = stmt.value
            lines = source.splitlines(keepends=True)
            start = sum(len(line) for line in lines[: value.lineno - 1]) + value.col_offset
            assert value.end_lineno is not None and value.end_col_offset is not None
            end = sum(len(line) for line in lines[: value.end_lineno - 1]) + value.end_col_offset
            return start, end
    raise AssertionError("no PARAMS")


def params_of(source: str) -> dict[str, object]:
    """The PARAMS literal of a source, read with ast (quicker than the full validation)."""
    start, end = params_span(source)
    value = ast.literal_eval(source[start:end])
    assert isinstance(value, dict)
    return value


def within(value: object, rng: object) -> bool:
    if isinstance(rng, list):
        return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in rng)
    assert isinstance(rng, tuple)
    low, high = rng
    if isinstance(low, int) and isinstance(high, int):
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return isinstance(value, int | float) and low <= value <= high


def test_every_seed_is_there() -> None:
    assert SEED_IDS == ["hybrid", "intra_dct", "motion_dct"]


@pytest.mark.slow  # one of the slowest of the fast lane
@pytest.mark.parametrize("path", SEED_FILES, ids=SEED_IDS)
def test_children_are_valid_in_range_and_differ_only_in_params(path: Path) -> None:
    parent = path.read_text(encoding="utf-8")
    report = validate_source(parent)
    assert report.valid and report.params and report.param_ranges
    start, end = params_span(parent)
    children = MutationProvider(seed=7).propose(parent, count=6)
    assert len(children) == 6
    for child in children:
        assert child != parent
        child_report = validate_source(child)
        assert child_report.valid, child_report.violations
        params = child_report.params
        assert params is not None
        assert child_report.param_ranges == report.param_ranges
        assert list(params) == list(report.params)
        changed = [key for key in params if params[key] != report.params[key]]
        assert 1 <= len(changed) <= 3
        for key, value in params.items():
            assert within(value, report.param_ranges[key]), (key, value)
        # only the PARAMS literal changed: the text before and after it is the parent's
        child_start, child_end = params_span(child)
        assert child_start == start
        assert child[:start] == parent[:start]
        assert child[child_end:] == parent[end:]
        # one key per line, in the parent's order
        literal = child[child_start:child_end].split("\n")
        assert literal[0] == "{" and literal[-1] == "}"
        assert [line.split(":")[0].strip().strip('"') for line in literal[1:-1]] == list(params)


@pytest.mark.parametrize("path", SEED_FILES, ids=SEED_IDS)
def test_int_ranges_give_ints_and_choices_switch(path: Path) -> None:
    parent = path.read_text(encoding="utf-8")
    report = validate_source(parent)
    assert report.params is not None and report.param_ranges is not None
    # enough children that each parameter moves: with 1.5 changes a child over K parameters,
    # a given one stays put through 8K children with odds of about e^-12
    count = 8 * len(report.params)
    children = MutationProvider(seed=3, scale=0.5).propose(parent, count=count)
    assert len(children) == count
    start, _ = params_span(parent)  # children change only the literal, one key a line
    moved: set[str] = set()
    for child in children:
        params = ast.literal_eval(child[start : child.index("\n}", start) + 2])
        for key, rng in report.param_ranges.items():
            value = params[key]
            if isinstance(rng, tuple) and all(isinstance(end, int) for end in rng):
                assert type(value) is int, (key, value)
            elif isinstance(rng, tuple):
                assert type(value) is float, (key, value)
            else:
                assert value in rng
            if value != report.params[key]:
                moved.add(key)
    # every parameter of the seeds gets changed at least once
    assert moved == set(report.params)


@pytest.mark.parametrize("path", SEED_FILES, ids=SEED_IDS)
def test_same_seed_repeats_and_another_seed_differs(path: Path) -> None:
    parent = path.read_text(encoding="utf-8")
    first = MutationProvider(seed=11).propose(parent, count=4)
    assert MutationProvider(seed=11).propose(parent, count=4) == first
    assert MutationProvider(seed=12).propose(parent, count=4) != first
    # a fresh stream for the same parent on request
    assert MutationProvider(seed=11).propose(parent, count=4, attempt=1) != first


def test_different_parents_get_different_streams() -> None:
    parent = (SEEDS / "intra_dct.py").read_text(encoding="utf-8")
    other = parent.replace("Intra-only block-DCT codec", "Intra-only block DCT codec")
    provider = MutationProvider(seed=5)
    assert [describe(parent, c) for c in provider.propose(parent, 3)] != [
        describe(other, c) for c in provider.propose(other, 3)
    ]


@pytest.mark.parametrize("path", SEED_FILES, ids=SEED_IDS)
def test_count_five_gives_five_distinct_children(path: Path) -> None:
    parent = path.read_text(encoding="utf-8")
    children = MutationProvider(seed=0).propose(parent, count=5)
    assert len(children) == 5
    assert len(set(children)) == 5
    assert parent not in children


def test_count_zero_gives_nothing() -> None:
    parent = (SEEDS / "intra_dct.py").read_text(encoding="utf-8")
    assert MutationProvider().propose(parent, count=0) == []


def test_a_parent_without_params_is_refused() -> None:
    source = "def encode(frames, quality):\n    return b''\n\n\ndef decode(bitstream):\n    pass\n"
    with pytest.raises(GenerationError, match="^the parent has no PARAMS/PARAM_RANGES to mutate$"):
        MutationProvider().propose(source)
    only_params = 'PARAMS = {"a": 1}\n' + source
    with pytest.raises(GenerationError, match="no PARAMS/PARAM_RANGES to mutate"):
        MutationProvider().propose(only_params)


def test_ranges_that_leave_nothing_to_change_are_refused() -> None:
    source = (
        'PARAMS = {"mode": "dct", "step": 4, "gain": 1.5}\n'
        'PARAM_RANGES = {"mode": ["dct"], "step": (4, 4), "gain": (1.5, 1.5)}\n'
    )
    with pytest.raises(GenerationError, match="leave no parameter that can change"):
        MutationProvider().propose(source, count=2)


def test_a_small_space_gives_fewer_children_never_duplicates() -> None:
    source = (
        "import math\n\n"
        'PARAMS = {"mode": "dct", "fixed": 2}  # tunables\n'
        'PARAM_RANGES = {"mode": ["dct", "haar", "wht"], "fixed": [2]}\n'
    )
    children = MutationProvider(seed=1).propose(source, count=5)
    assert sorted(describe(source, child) for child in children) == [
        'mode "dct" -> "haar"',
        'mode "dct" -> "wht"',
    ]
    for child in children:
        assert child.startswith("import math\n\nPARAMS = {\n")
        assert child.endswith(
            '}  # tunables\nPARAM_RANGES = {"mode": ["dct", "haar", "wht"], "fixed": [2]}\n'
        )


def test_non_ascii_text_before_params_is_kept() -> None:
    source = (
        '"""Codec — niño."""\nNAME = "é"; PARAMS = {"q": 0.5}\nPARAM_RANGES = {"q": (0.0, 1.0)}\n'
    )
    (child,) = MutationProvider(seed=2).propose(source)
    assert child.startswith('"""Codec — niño."""\nNAME = "é"; PARAMS = {\n    "q": ')
    assert child.endswith('}\nPARAM_RANGES = {"q": (0.0, 1.0)}\n')
    value = ast.literal_eval(child.split("PARAMS = ")[1].split("\nPARAM_RANGES")[0])
    assert value["q"] != 0.5 and 0.0 <= value["q"] <= 1.0


def test_describe_names_the_changed_keys() -> None:
    parent = (SEEDS / "motion_dct.py").read_text(encoding="utf-8")
    report = validate_source(parent)
    assert report.params is not None
    for child in MutationProvider(seed=9).propose(parent, count=5):
        params = params_of(child)
        changed = [key for key in report.params if params[key] != report.params[key]]
        text = describe(parent, child)
        parts = text.split(", ")
        assert [part.split(" ")[0] for part in parts] == changed
        for key, part in zip(changed, parts, strict=True):
            assert " -> " in part and part.startswith(f"{key} ")


def test_describe_formats_values() -> None:
    parent = 'PARAMS = {"block": 8, "quant_scale": 1.0, "entropy": "lzma"}\n'
    child = 'PARAMS = {"block": 16, "quant_scale": 1.31, "entropy": "lzma"}\n'
    assert describe(parent, child) == "block 8 -> 16, quant_scale 1.0 -> 1.31"
    assert describe(parent, parent) == "no parameter changed"
    assert describe(parent, "x = 1\n") == "the child has no PARAMS literal"


def test_scale_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        MutationProvider(scale=0.0)
    with pytest.raises(ConfigError):
        MutationProvider(scale=float("nan"))


def test_provider_identity() -> None:
    provider = MutationProvider(seed=4, scale=0.1)
    assert provider.name == "mutation"
    assert provider.model == "params-mutation-v1"
    assert provider.seed == 4 and provider.scale == 0.1


def test_a_step_that_helped_is_repeated_first() -> None:
    ranges = 'PARAM_RANGES = {"q": (0.25, 4.0), "n": (1, 10), "e": ["zlib", "lzma"]}\n'
    earlier = 'PARAMS = {"q": 1.0, "n": 3, "e": "lzma"}\n' + ranges
    parent = 'PARAMS = {"q": 1.25, "n": 5, "e": "zlib"}\n' + ranges
    children = MutationProvider(seed=2).propose(parent, 3, repeat_from=earlier)
    assert describe(parent, children[0]) == "q 1.25 -> 1.5, n 5 -> 7"
    assert len(set(children)) == 3 and parent not in children
    # clipped into the range; only on the first attempt; a step of nothing repeats nothing
    near_top = parent.replace('"n": 5', '"n": 9')
    first = MutationProvider(seed=2).propose(near_top, 1, repeat_from=earlier)[0]
    assert describe(near_top, first) == "q 1.25 -> 1.5, n 9 -> 10"
    later = MutationProvider(seed=2).propose(parent, 1, attempt=1, repeat_from=earlier)[0]
    assert later == MutationProvider(seed=2).propose(parent, 1, attempt=1)[0]
    same = MutationProvider(seed=2).propose(parent, 1, repeat_from=parent)
    assert same == MutationProvider(seed=2).propose(parent, 1)
