"""Static validation of candidate sources: the hostile corpus, a clean codec, the details."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from aicodec.candidates.contract import MAX_SOURCE_BYTES
from aicodec.errors import ValidationError
from aicodec.validation import (
    RULES,
    ValidationReport,
    Violation,
    check_source,
    validate_file,
    validate_source,
)

HOSTILE_DIR = Path(__file__).resolve().parent / "hostile_static"
SEEDS_DIR = Path(__file__).resolve().parents[1] / "baselines" / "seeds"
HOSTILE_FILES = sorted(HOSTILE_DIR.glob("*.py"))
SEED_FILES = sorted(SEEDS_DIR.glob("*.py"))

CLEAN_CODEC = '''\
"""Raw planes behind a struct header, deflated with zlib."""

from __future__ import annotations

import struct
import zlib

import numpy as np

PARAMS = {"level": 6, "order": "yuv", "gain": 1.0}
PARAM_RANGES = {"level": (1, 9), "order": ["yuv", "yvu"], "gain": (0.5, 2.0)}
HEADER = struct.Struct("<4sIII")
MAGIC = b"RAW1"
LEVELS = np.arange(10)


def _planes(frames) -> tuple[np.ndarray, ...]:
    """The three planes in the order PARAMS asks for."""
    if PARAMS["order"] == "yuv":
        return frames.y, frames.u, frames.v
    return frames.y, frames.v, frames.u


def encode(frames, quality: int) -> bytes:
    """Header (magic, count, width, height), then the deflated planes."""
    level = int(LEVELS[max(1, min(9, quality // 11))])
    header = HEADER.pack(MAGIC, frames.count, frames.width, frames.height)
    body = b"".join(np.ascontiguousarray(plane).tobytes() for plane in _planes(frames))
    return header + zlib.compress(body, level)


def decode(bitstream: bytes):
    """Inflate and reshape the planes from the sizes in the header."""
    magic, count, width, height = HEADER.unpack_from(bitstream)
    if magic != MAGIC:
        raise ValueError("not a RAW1 bitstream")
    raw = np.frombuffer(zlib.decompress(bitstream[HEADER.size :]), dtype=np.uint8)
    luma = count * width * height
    chroma = count * (width // 2) * (height // 2)
    y = raw[:luma].reshape(count, height, width)
    first = raw[luma : luma + chroma].reshape(count, height // 2, width // 2)
    second = raw[luma + chroma :].reshape(count, height // 2, width // 2)
    if PARAMS["order"] == "yuv":
        return y, first, second
    return y, second, first
'''


def expected_of(path: Path) -> tuple[str, set[int]]:
    """The rule named in a hostile file's first line and the lines marked ``# HOSTILE``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# expect: "), f"{path.name} lacks its '# expect: RULE' line"
    rule = lines[0].removeprefix("# expect: ").strip()
    marked = {number for number, text in enumerate(lines, start=1) if "# HOSTILE" in text}
    return rule, marked or {0}


def rules_of(report: ValidationReport) -> set[str]:
    """The rule ids a report names."""
    return {violation.rule for violation in report.violations}


def with_codec(snippet: str) -> str:
    """The clean codec followed by extra module-level source."""
    return CLEAN_CODEC + "\n\n" + snippet


# ------------------------------------------------------------------------ hostile corpus


def test_hostile_corpus_is_there() -> None:
    assert len(HOSTILE_FILES) >= 28


@pytest.mark.parametrize("path", HOSTILE_FILES, ids=lambda path: path.stem)
def test_hostile_file_is_rejected_at_its_hostile_line(path: Path) -> None:
    rule, marked = expected_of(path)
    assert rule in RULES
    report = validate_file(path)
    assert not report.valid
    found = {(violation.rule, violation.line) for violation in report.violations}
    assert any(line in marked for found_rule, line in found if found_rule == rule), found
    # the rest of each file is a clean codec: nothing else may be reported
    assert {line for _rule, line in found} <= marked, found
    with pytest.raises(ValidationError, match=r"^line \d+: \["):
        check_source(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", HOSTILE_FILES, ids=lambda path: path.stem)
def test_hostile_files_other_than_syntax_error_parse(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    if path.stem == "syntax_error":
        with pytest.raises(SyntaxError):
            compile(source, str(path), "exec", dont_inherit=True)
    else:
        compile(source, str(path), "exec", dont_inherit=True)


# ----------------------------------------------------------------------- clean sources


def test_clean_codec_passes_with_its_params() -> None:
    report = validate_source(CLEAN_CODEC)
    assert report.violations == []
    assert report.valid
    assert report.functions == ["_planes", "encode", "decode"]
    assert report.params == {"level": 6, "order": "yuv", "gain": 1.0}
    assert report.param_ranges == {"level": (1, 9), "order": ["yuv", "yvu"], "gain": (0.5, 2.0)}
    assert report.code_hash == hashlib.sha256(CLEAN_CODEC.encode("utf-8")).hexdigest()
    check_source(CLEAN_CODEC)


def test_a_source_is_checked_once_per_process_and_each_caller_gets_its_own_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aicodec.validation.validate as validate

    checked: list[str] = []
    real_check = validate._check_tree
    monkeypatch.setattr(
        validate,
        "_check_tree",
        lambda tree, digest: checked.append(digest) or real_check(tree, digest),
    )
    source = CLEAN_CODEC + "\n# checked once\n"
    first = validate_source(source)
    first.violations.append(Violation("size", 1, "changed by its caller"))
    second = validate_source(source)
    assert len(checked) == 1
    assert second.violations == [] and second.valid
    changed = validate_source(source + "# another text\n")
    assert len(checked) == 2 and changed.code_hash != second.code_hash


def test_clean_codec_actually_round_trips() -> None:
    namespace: dict[str, object] = {"__name__": "clean_codec"}
    exec(compile(CLEAN_CODEC, "clean_codec", "exec"), namespace)  # trusted test source

    class Frames:
        count, width, height = 2, 8, 6
        y = np_full((2, 6, 8), 10)
        u = np_full((2, 3, 4), 20)
        v = np_full((2, 3, 4), 30)

    bitstream = namespace["encode"](Frames, 60)  # type: ignore[operator]
    y, u, v = namespace["decode"](bitstream)  # type: ignore[operator]
    assert (y == 10).all() and (u == 20).all() and (v == 30).all()
    assert y.shape == (2, 6, 8) and u.shape == (2, 3, 4)


def np_full(shape: tuple[int, ...], value: int) -> np.ndarray:
    """A uint8 array filled with one value."""
    return np.full(shape, value, dtype=np.uint8)


@pytest.mark.skipif(not SEED_FILES, reason=f"no seed codecs in {SEEDS_DIR} yet")
@pytest.mark.parametrize("path", SEED_FILES, ids=lambda path: path.stem)
def test_seed_codecs_pass(path: Path) -> None:
    report = validate_file(path)
    assert report.violations == [], [str(violation) for violation in report.violations]


def test_allowed_idioms_pass() -> None:
    source = with_codec(
        "import math\n"
        "from collections import deque\n"
        "import numpy.linalg as la\n"
        "from numpy import frombuffer as fb\n\n\n"
        "class Tables:\n"
        '    """Quantiser tables."""\n\n'
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n"
        "        self.q = [math.floor(1.5 * i) for i in range(8)]\n\n\n"
        "def helper(x, table=LEVELS):\n"
        '    if hasattr(x, "shape"):\n'
        "        return la.norm(fb(bytes(4), dtype=np.uint8)) + len(deque(table))\n"
        '    return "{:04d}-{}".format(int(x), "ok")\n\n\n'
        "for _i in range(3):\n"
        "    LEVELS = LEVELS + 0\n"
        "    print(_i)\n\n"
        'if __name__ == "__main__":\n'
        "    helper(1)\n"
    )
    report = validate_source(source)
    assert report.violations == []


def test_constriction_idioms_pass() -> None:
    source = with_codec(
        "import constriction\n"
        "from constriction import stream\n\n\n"
        "def code(symbols, probs):\n"
        "    model = constriction.stream.model.Categorical(perfect=False)\n"
        "    laplace = stream.model.QuantizedLaplace(-255, 255)\n"
        "    coder = stream.queue.RangeEncoder()\n"
        "    coder.encode(symbols, model, probs)\n"
        "    coder.encode(symbols, laplace, probs[:, 0], probs[:, 1])\n"
        "    words = np.frombuffer(coder.get_compressed().tobytes(), dtype=np.uint32)\n"
        "    return constriction.stream.queue.RangeDecoder(words).decode(model, probs)\n"
    )
    assert validate_source(source).violations == []


def test_constriction_refusals_say_why() -> None:
    report = validate_source(with_codec("from constriction.stream.model import Categorical\n"))
    assert [v.message for v in report.violations] == [
        "constriction.stream.model is not a module: import constriction and use "
        "constriction.stream.model.NAME"
    ]
    report = validate_source(
        with_codec("import constriction\nS = constriction.stream.model.ScipyModel\n")
    )
    assert [v.rule for v in report.violations] == ["forbidden-attribute"]
    assert "scipy is not an allowed import" in report.violations[0].message


# ------------------------------------------------------------------------ aliases


@pytest.mark.parametrize(
    "snippet",
    [
        "import numpy as n\n\n\ndef leak(a):\n    n.load(a)\n",
        "from numpy import save as s\n\n\ndef leak(a):\n    s('x', a)\n",
        "import numpy\n\n\ndef leak(a):\n    numpy.savez('x', a)\n",
        "import numpy as n\nm = n\n\n\ndef leak(a):\n    m.load(a)\n",
        "import numpy as n\n\n\ndef leak(a, mod=n):\n    mod.fromfile(a)\n",
        "from numpy.lib import format as f\n",
        "import numpy.lib.format\n",
        "import numpy as n\n\n\ndef leak():\n    return n.lib.stride_tricks\n",
        "import cv2 as c\n\n\ndef leak():\n    return c.VideoCapture(0)\n",
        "import operator\n\n\ndef leak(x):\n    return operator.methodcaller('save')(x)\n",
        "from typing import get_type_hints\n",
        "import lzma\n\n\ndef leak():\n    return lzma.open('x')\n",
        "from constriction import stream as s\n\n\ndef leak():\n    return s.model.ScipyModel\n",
        "import constriction as c\n\n\ndef leak(f):\n    return c.stream.model.CustomModel(f)\n",
        "import constriction\nC = constriction.constriction\n",
    ],
)
def test_denied_module_attributes_are_caught_through_aliases(snippet: str) -> None:
    report = validate_source(with_codec(snippet))
    assert rules_of(report) == {"forbidden-attribute"}, report.violations


def test_import_line_and_use_line_are_both_reported() -> None:
    source = with_codec("from numpy import save as s\n\n\ndef leak(a):\n    s('x', a)\n")
    first = len(CLEAN_CODEC.splitlines()) + 3
    lines = {v.line for v in validate_source(source).violations}
    assert lines == {first, first + 4}


# ----------------------------------------------------------------- modules as values

# (snippet, {(rule, line in the snippet)}): a module reached through an expression the
# aliases cannot follow is refused where it becomes a value, with the rule and that line.
MODULE_VALUES = [
    ("def f():\n    return (np,)\n", {("module-value", 2)}),
    ("def f():\n    return [np][0].ma\n", {("module-value", 2)}),
    ("def f():\n    return {np}\n", {("module-value", 2)}),
    ("def f():\n    return {'m': np}\n", {("module-value", 2)}),
    ("def f():\n    return dict(m=np)\n", {("module-value", 2)}),
    ("def f(g):\n    return g(np)\n", {("module-value", 2)}),
    ("def f(x):\n    return x[np]\n", {("module-value", 2)}),
    ("def f():\n    return np\n", {("module-value", 2)}),
    ("def f():\n    yield np\n", {("module-value", 2)}),
    ("F = lambda: np\n", {("module-value", 1)}),
    ("F = lambda m=np: m\n", {("module-value", 1)}),
    ("def f():\n    for m in np, math:\n        m.e\n", {("module-value", 2)}),
    ("def f():\n    return [m.e for m in (math,)]\n", {("module-value", 2)}),
    ("def f():\n    with np as m:\n        return m.ma\n", {("module-value", 2)}),
    ("def f():\n    return [(m := np)]\n", {("module-value", 2)}),
    ("def f(c):\n    return (np if c else math).e\n", {("module-value", 2)}),
    ("def f():\n    m = np or 0\n    return m\n", {("module-value", 2)}),
    ("def f():\n    return f'{np}'\n", {("module-value", 2)}),
    ("def f(x):\n    x.m = np\n", {("module-value", 2)}),
    ("def f(x):\n    x['m'] = np\n", {("module-value", 2)}),
    ("def f():\n    a, *b = np, math\n", {("module-value", 2)}),
    ("class K:\n    m = np\n", {("module-value", 2)}),
    ("def f(x):\n    np.frombuffer = x\n", {("module-value", 2)}),
    ("def f():\n    del np.frombuffer\n", {("module-value", 2)}),
    ("def f(x):\n    match np:\n        case _:\n            return x\n", {("module-value", 2)}),
    ("def f():\n    return (np.fft,)\n", {("module-value", 2)}),
    ("from numpy import fft\n\n\ndef f():\n    return [fft]\n", {("module-value", 5)}),
    ("import numpy.linalg as la\n\n\ndef f(g):\n    return g(la)\n", {("module-value", 5)}),
    ("import constriction\nS = [constriction.stream]\n", {("module-value", 2)}),
    ("M = np\n\n\ndef f():\n    return M\n", {("module-value", 5)}),
]


@pytest.mark.parametrize(("snippet", "expected"), MODULE_VALUES)
def test_a_module_used_as_a_value_is_refused_at_its_line(
    snippet: str, expected: set[tuple[str, int]]
) -> None:
    first = len(with_codec("").splitlines())
    report = validate_source(with_codec("import math\n" + snippet))
    found = {(v.rule, v.line - first - 1) for v in report.violations}
    assert found == expected, [str(v) for v in report.violations]
    assert all("is the module" in v.message for v in report.violations)


def test_module_value_message_names_the_module_and_the_place() -> None:
    report = validate_source(with_codec("def f():\n    return (np.fft, 1)\n"))
    assert [v.message for v in report.violations] == [
        "np.fft is the module numpy.fft; a module may only be used as np.fft.name, bound to "
        "a plain name or tested, not put in a tuple"
    ]


def test_harmless_uses_of_modules_pass() -> None:
    source = with_codec(
        "import math\n"
        "import numpy.linalg\n"
        "import constriction\n"
        "from numpy import fft\n\n\n"
        "def f(x: np.ndarray, xp=np, *, m=math) -> float:\n"
        "    lib, other = np, math\n"
        "    spectrum = fft.rfft(x) + np.fft.rfft(x) + xp.zeros(3) + lib.ones(3)\n"
        "    model = constriction.stream.model\n"
        "    if np is not None and hasattr(np, 'float64') and not (m is None):\n"
        "        spectrum = spectrum * other.pi\n"
        "    if (walrus := np).ndim(x) and isinstance(x, np.ndarray):\n"
        "        spectrum = spectrum + walrus.ones(3)\n"
        "    scale = 1.0 if math else 2.0\n"
        "    return float(numpy.linalg.norm(spectrum)) * scale + len(str(model.Categorical))\n"
    )
    report = validate_source(source)
    assert report.violations == [], [str(v) for v in report.violations]


def test_modules_bound_to_plain_names_stay_followed() -> None:
    for snippet in (
        "import math\n\n\ndef f():\n    a, b = math, np\n    return b.lib\n",
        "def f(xp=np):\n    return xp.ma.core.re.compile\n",
        "def f():\n    return (m := np).lib\n",
    ):
        report = validate_source(with_codec(snippet))
        assert rules_of(report) == {"forbidden-attribute"}, [str(v) for v in report.violations]


# ------------------------------------------------- modules reached through attributes


@pytest.mark.parametrize(
    ("snippet", "rule", "message"),
    [
        (
            "import enum\nB = enum.bltns\n",
            "forbidden-attribute",
            "enum.bltns is the module builtins, not an allowed import",
        ),
        (
            "from enum import bltns\n",
            "forbidden-attribute",
            "enum.bltns is the module builtins, not an allowed import",
        ),
        (
            "import typing\nR = typing.stdlib_re\n",
            "forbidden-attribute",
            "typing.stdlib_re is the module re, not an allowed import",
        ),
        (
            "X = np.ma.core.textwrap\n",
            "forbidden-attribute",
            "numpy.ma.core.textwrap is the module textwrap, not an allowed import",
        ),
        (
            "X = np.ma.core.umath\n",
            "forbidden-attribute",
            "numpy.ma.core.umath is the module numpy._core.umath; numpy._core: private and "
            "dunder attributes of modules are not allowed",
        ),
        (
            "def f(m=np):\n    return m.ma.core.re.enum.bltns.exec\n",
            "forbidden-attribute",
            "numpy.ma.core.re is the module re, not an allowed import",
        ),
    ],
)
def test_a_module_reached_through_attributes_must_be_allowed(
    snippet: str, rule: str, message: str
) -> None:
    first = len(with_codec("").splitlines())
    report = validate_source(with_codec(snippet))
    assert (rule, message) in {(v.rule, v.message) for v in report.violations}, report.violations
    assert all(v.line > first for v in report.violations)


def test_a_refused_builtin_reached_through_attributes_is_named() -> None:
    report = validate_source(with_codec("import enum\n\n\ndef f():\n    return enum.bltns.eval\n"))
    assert ("forbidden-name", "enum.bltns.eval is the builtin eval, not allowed in a codec") in {
        (v.rule, v.message) for v in report.violations
    }


def test_allowed_submodules_reached_through_attributes_pass() -> None:
    source = with_codec(
        "import collections\n\n\n"
        "def f(x):\n"
        "    spectrum = np.fft.rfft(x) + np.linalg.norm(x) + np.random.default_rng(0).random()\n"
        "    return spectrum, np.ma.masked_array(x), collections.abc.Sequence\n"
    )
    assert validate_source(source).violations == []


# ------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("snippet", "rule"),
    [
        ("import os.path\n", "import"),
        ("from os import path\n", "import"),
        ("from .. import x\n", "import"),
        ("from numpy import *\n", "import"),
        ("def f():\n    import socket\n", "import"),
        ("def f():\n    return vars()\n", "forbidden-name"),
        ("def f(x, name):\n    return hasattr(x, name)\n", "forbidden-name"),
        ("def f():\n    return globals\n", "forbidden-name"),
        ("def f(x):\n    return x.__dict__\n", "dunder"),
        ("def f(x):\n    return x['__globals__']\n", "dunder"),
        ("def f():\n    return __file__\n", "dunder"),
        ("def f(e):\n    return e.__traceback__.tb_frame\n", "dunder"),
        ("def f(x):\n    return x.tofile\n", "forbidden-attribute"),
        ("def f(x):\n    return x.sys\n", "forbidden-attribute"),
        ("def f(s, x):\n    return s.format(x)\n", "forbidden-attribute"),
        ("def f(x):\n    return '{0[key]}'.format(x)\n", "forbidden-attribute"),
        ("def f(x):\n    return '{}'.format_map(x)\n", "forbidden-attribute"),
        ("import torch\n\n\ndef f(g):\n    return torch.compile(g)\n", "forbidden-attribute"),
        ("import numpy as n\nX = n._core\n", "forbidden-attribute"),
        ("from constriction.stream.model import Categorical\n", "import"),
        ("import constriction.stream.queue\n", "import"),
        ("F = eval\n", "dynamic-code"),
        ("print('imported')\n", "top-level-code"),
        ("if True:\n    while 1:\n        pass\n", "top-level-code"),
        ("class K:\n    print('body')\n", "top-level-code"),
        ("def encode(frames, quality):\n    return b''\n", "signature"),
        ("encode = None\n", "signature"),
        ("import zlib as decode\n", "signature"),
        ("def f():\n    global decode\n", "signature"),
        ("PARAMS = {'a': 1}\n", "params-literal"),
        ("def f():\n    PARAMS['level'] = 1\n", "params-literal"),
        ("def f():\n    PARAMS.update(level=1)\n", "params-literal"),
        ("PARAM_RANGES['level'] = (1, 8)\n", "params-literal"),
    ],
)
def test_rule(snippet: str, rule: str) -> None:
    report = validate_source(with_codec(snippet))
    assert rule in rules_of(report), report.violations
    assert all(v.line > len(CLEAN_CODEC.splitlines()) for v in report.violations)


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        ("async def encode(frames, quality):\n    return b''\n", "signature"),
        ("def encode(frames):\n    return b''\n", "signature"),
        ("def encode(frames, quality, extra):\n    return b''\n", "signature"),
        ("def encode(frames, quality, *, extra):\n    return b''\n", "signature"),
        ("def encode(*args):\n    return b''\n", "signature"),
        ("if True:\n    def encode(frames, quality):\n        return b''\n", "signature"),
        ("class encode:\n    pass\n", "signature"),
        ("X = 1\n", "missing-function"),
    ],
)
def test_encode_signature(header: str, rule: str) -> None:
    source = header + "\n\ndef decode(bitstream):\n    return bitstream\n"
    report = validate_source(source)
    assert rules_of(report) == {rule}, report.violations
    if rule == "missing-function":
        assert [v.line for v in report.violations] == [0]
    else:
        assert report.violations[0].line in (1, 2)


def test_extra_parameters_with_defaults_pass() -> None:
    source = (
        "def encode(frames, quality, /, block=8, *rest, scale=1.0, **options):\n"
        "    return b''\n\n\n"
        "def decode(bitstream, strict=True):\n"
        "    return bitstream\n"
    )
    assert validate_source(source).violations == []


def test_syntax_error_line() -> None:
    report = validate_source("def encode(frames, quality):\n    return (\n\n\nx = ]\n")
    assert [v.rule for v in report.violations] == ["syntax"]
    assert report.violations[0].line >= 2
    assert report.functions == [] and report.params is None


def test_null_byte_is_a_syntax_violation() -> None:
    report = validate_source("x = 1\0\n")
    assert [v.rule for v in report.violations] == ["syntax"]


# ----------------------------------------------------------------------- PARAMS


def test_params_ranges_parsed() -> None:
    source = with_codec("")
    report = validate_source(source)
    assert report.params == {"level": 6, "order": "yuv", "gain": 1.0}
    assert report.param_ranges is not None and report.param_ranges["order"] == ["yuv", "yvu"]
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["params"]["level"] == 6 and payload["param_ranges"]["level"] == [1, 9]


def _params_source(params: str, ranges: str | None) -> str:
    """A minimal codec with the given PARAMS (and PARAM_RANGES when not None)."""
    text = f"PARAMS = {params}\n"
    if ranges is not None:
        text += f"PARAM_RANGES = {ranges}\n"
    return text + (
        "\n\ndef encode(frames, quality):\n    return b''\n\n\n"
        "def decode(bitstream):\n    return bitstream\n"
    )


@pytest.mark.parametrize(
    ("params", "ranges", "rule", "line"),
    [
        ("{'a': 3}", "{'a': (1, 2)}", "params-range", 1),
        ("{'a': 1.5}", "{'a': (1, 2)}", "params-range", 1),  # ints only between int ends
        ("{'a': 'x'}", "{'a': ['y', 'z']}", "params-range", 1),
        ("{'a': True}", "{'a': [1, 2]}", "params-range", 1),
        ("{'a': 1}", None, "params-range", 1),
        ("{'a': 1}", "{'a': (1, 2), 'b': (0, 1)}", "params-range", 2),
        ("{'a': 1}", "{'a': (2, 1)}", "params-range", 2),
        ("{'a': 1}", "{'a': (0, 1, 2)}", "params-range", 2),
        ("{'a': 1}", "{'a': []}", "params-range", 2),
        ("{'a': 1}", "{'a': 'text'}", "params-range", 2),
        ("dict(a=1)", "{'a': (0, 2)}", "params-literal", 1),
        ("[1, 2]", None, "params-literal", 1),
        ("{1: 1}", None, "params-literal", 1),
        ("{'a': {1, 2}}", "{'a': [1]}", "params-literal", 1),
        ("{'a': 1e999}", "{'a': (0, 1)}", "params-literal", 1),
        ("{'a': 1, 'a': 2}", "{'a': (0, 2)}", "params-literal", 1),
    ],
)
def test_params_problems(params: str, ranges: str | None, rule: str, line: int) -> None:
    report = validate_source(_params_source(params, ranges))
    assert [(v.rule, v.line) for v in report.violations] == [(rule, line)], report.violations


def test_params_good_variants() -> None:
    source = _params_source(
        "{'a': 2, 'b': 0.5, 'c': 'dct', 'd': 3, 'e': [1, 2]}",
        "{'a': (1, 4), 'b': (0.0, 1.0), 'c': ['dct', 'haar'], 'd': (0.0, 8.0), 'e': [[1, 2], [3]]}",
    )
    report = validate_source(source)
    assert report.violations == []
    assert report.params == {"a": 2, "b": 0.5, "c": "dct", "d": 3, "e": [1, 2]}


def test_params_assigned_twice() -> None:
    source = _params_source("{'a': 1}", "{'a': (0, 2)}") + "\nPARAMS = {'a': 2}\n"
    report = validate_source(source)
    assert [v.rule for v in report.violations] == ["params-literal"]
    assert report.violations[0].line == source.splitlines().index("PARAMS = {'a': 2}") + 1


def test_no_params_is_fine() -> None:
    report = validate_source(_params_source("{}", "{}"))
    assert report.valid and report.params == {} and report.param_ranges == {}
    report = validate_source("def encode(frames, quality):\n    pass\n\n\ndef decode(b=1):\n")
    assert report.params is None and report.param_ranges is None


# ------------------------------------------------------------------- size, files, hash


def test_oversize_source_is_a_size_violation() -> None:
    source = "x = 1\n" + "#" * MAX_SOURCE_BYTES + "\n"
    report = validate_source(source)
    assert [(v.rule, v.line) for v in report.violations] == [("size", 0)]
    assert report.code_hash == hashlib.sha256(source.encode()).hexdigest()


def test_oversize_file_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.py"
    path.write_bytes(b"\xff" * (MAX_SOURCE_BYTES + 1))  # not even UTF-8: size wins
    report = validate_file(path)
    assert [v.rule for v in report.violations] == ["size"]
    assert report.code_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_source_at_the_limit_is_checked() -> None:
    body = "def encode(frames, quality):\n    pass\n\n\ndef decode(bitstream):\n    pass\n"
    source = body + "#" * (MAX_SOURCE_BYTES - len(body) - 1) + "\n"
    assert len(source.encode()) == MAX_SOURCE_BYTES
    assert validate_source(source).valid


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        validate_file(tmp_path / "absent.py")


def test_folder_and_non_utf8_raise(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a file"):
        validate_file(tmp_path)
    path = tmp_path / "latin1.py"
    path.write_bytes(b"x = '\xe9'\n")
    with pytest.raises(ValidationError, match="not UTF-8"):
        validate_file(path)


def test_file_and_source_agree(tmp_path: Path) -> None:
    path = tmp_path / "codec.py"
    path.write_text(CLEAN_CODEC, encoding="utf-8")
    assert validate_file(path) == validate_source(CLEAN_CODEC)


def test_code_hash_is_stable_and_changes_with_one_byte() -> None:
    first = validate_source(CLEAN_CODEC).code_hash
    assert first == validate_source(CLEAN_CODEC).code_hash
    assert len(first) == 64 and int(first, 16) >= 0
    assert validate_source(CLEAN_CODEC + " ").code_hash != first
    assert validate_source(CLEAN_CODEC.replace("level", "levex", 1)).code_hash != first


# --------------------------------------------------------------------- API shape


def test_check_source_message_is_one_line() -> None:
    with pytest.raises(ValidationError) as caught:
        check_source(with_codec("import os\n"))
    line = len(CLEAN_CODEC.splitlines()) + 3
    assert str(caught.value) == f"line {line}: [import] module os is not an allowed import"
    assert "\n" not in str(caught.value)


def test_report_to_dict_is_json() -> None:
    report = validate_source(with_codec("import os\n"))
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["valid"] is False
    assert payload["violations"][0]["rule"] == "import"
    keys = {"valid", "violations", "code_hash", "functions", "params", "param_ranges"}
    assert set(payload) == keys
    assert Violation("import", 3, "x") == Violation("import", 3, "x")


def test_deep_nesting_does_not_crash() -> None:
    report = validate_source("x = " + "(" * 5000 + ")" * 5000 + "\n")
    assert not report.valid and report.violations[0].rule == "syntax"
    chain = "x = 1" + " + 1" * 20000 + "\n"
    report = validate_source(chain)
    assert "missing-function" in rules_of(report) or "syntax" in rules_of(report)


def test_validation_is_fast() -> None:
    source = CLEAN_CODEC + "\n".join(f"T{i} = np.arange({i})" for i in range(3000)) + "\n"
    start = time.process_time()  # CPU time: other jobs on a busy machine do not count
    report = validate_source(source)
    assert report.valid
    assert time.process_time() - start < 2.0
