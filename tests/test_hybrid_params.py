"""The hybrid seed's parameters in one place: the header is declared once (HEADER_FIELDS,
TOOL_BITS), every knob the code reads is a PARAMS entry with its range, and a parameter
changed within its range reaches the decoder through the header."""

from __future__ import annotations

import ast
import struct

import numpy as np
import pytest

from aicodec.clips import Frames, load_clip
from aicodec.settings import Settings
from aicodec.validation import validate_source
from tests.test_seeds import SEEDS, crop, load_hybrid

# the fields of the header that describe the clip rather than carry a parameter
CLIP_FIELDS = {"width", "height", "count", "fps_num", "fps_den", "base_qp", "tools"}
QUALITY = 50


SEED_MODULE = load_hybrid()
HEADER_PARAMS = [name for name, _, _ in SEED_MODULE.HEADER_FIELDS if name not in CLIP_FIELDS]
CARRIED = HEADER_PARAMS + list(SEED_MODULE.TOOL_BITS)
ENCODER_ONLY = [name for name in SEED_MODULE.PARAMS if name not in CARRIED]
SCALES = {name: scale for name, _, scale in SEED_MODULE.HEADER_FIELDS}


@pytest.fixture(scope="module")
def tiny() -> Frames:
    """Three 64x48 frames from the middle of the built-in clip (I, then inter pictures)."""
    return crop(load_clip(None, Settings(), count=3).frames, 64, 48, 144, 120)


@pytest.fixture(scope="module")
def default_stream(tiny: Frames) -> bytes:
    """The tiny clip coded with the seed's own PARAMS."""
    return load_hybrid().encode(tiny, QUALITY)


def other_value(key: str) -> object:
    """A value of a parameter within its range, other than the default (an end of the range,
    or the first other choice), representable in the header where the header carries it."""
    default, allowed = SEED_MODULE.PARAMS[key], SEED_MODULE.PARAM_RANGES[key]
    if isinstance(allowed, list):
        return next(choice for choice in allowed if choice != default)
    low, high = allowed
    return low if low != default else high


def field_span(name: str) -> tuple[int, int]:
    """Byte offsets of a header field (after the 4-byte magic)."""
    formats = [fmt for _, fmt, _ in SEED_MODULE.HEADER_FIELDS]
    index = [field for field, _, _ in SEED_MODULE.HEADER_FIELDS].index(name)
    start = struct.calcsize("<4s" + "".join(formats[:index]))
    return start, start + struct.calcsize("<" + formats[index])


def params_read(tree: ast.Module) -> tuple[set[str], list[int]]:
    """The PARAMS keys the code reads (``p["k"]``, ``params["k"]``, ``header["k"]``,
    ``x.params["k"]``) and the lines where a params dict is read with ``.get``."""

    def is_params(node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in ("p", "params", "header", "PARAMS")
        return isinstance(node, ast.Attribute) and node.attr == "params"

    keys, gets = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_params(node.value):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                keys.add(node.slice.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and is_params(node.func.value)
        ):
            gets.append(node.lineno)
    return keys, gets


def test_the_header_layout_is_declared_once_and_unchanged() -> None:
    seed = SEED_MODULE
    names = [name for name, _, _ in seed.HEADER_FIELDS]
    assert len(names) == len(set(names))
    # the byte layout: magic, 20 fields, 38 bytes (17 fields, 34 bytes before intra_modes,
    # adapt_chunk and alf_classes came in)
    assert seed.HEADER.format == "<4sHHHIIBBbbBBBBBBbbHIH"
    assert seed.HEADER.size == 38
    assert set(names) - set(seed.PARAMS) == CLIP_FIELDS
    for name, fmt, scale in seed.HEADER_FIELDS:
        assert len(struct.unpack("<" + fmt, bytes(struct.calcsize("<" + fmt)))) == 1, name
        assert scale is None or (isinstance(scale, int) and scale > 1), (name, scale)
    # on/off tools are bits of the "tools" byte, not fields of their own: a switch (0 or 1),
    # or an encoder-side strength whose bit says whether it is on (its range starts at 0)
    assert 1 <= len(seed.TOOL_BITS) <= 8
    assert not set(seed.TOOL_BITS) & set(names)
    for name in seed.TOOL_BITS:
        span = seed.PARAM_RANGES[name]
        assert span == [0, 1] or (isinstance(span, tuple) and span[0] == 0), (name, span)


def test_every_knob_the_code_reads_is_a_param_with_a_range() -> None:
    source = (SEEDS / "hybrid.py").read_text(encoding="utf-8")
    report = validate_source(source)
    assert report.valid, report.violations
    seed = SEED_MODULE
    assert report.params == seed.PARAMS and report.param_ranges == seed.PARAM_RANGES
    assert set(seed.PARAMS) == set(seed.PARAM_RANGES)
    # what the header carries is a parameter with a range
    assert set(CARRIED) <= set(seed.PARAMS)
    assert "intra_ratio" in seed.PARAMS and "intra_ratio" in ENCODER_ONLY
    keys, gets = params_read(ast.parse(source))
    assert keys - set(seed.PARAMS) == set(), "the code reads knobs that are not in PARAMS"
    assert gets == [], f"params read with a default (a knob the search never sees): {gets}"
    # and every parameter is used: carried to the decoder or read by the encoder
    assert set(seed.PARAMS) - set(CARRIED) - keys == set(), "PARAMS nobody reads"


@pytest.mark.parametrize("key", CARRIED)
def test_a_changed_param_reaches_the_decoder_through_the_header(
    key: str, tiny: Frames, default_stream: bytes
) -> None:
    """Encode with one carried parameter moved within its range: the header holds the new
    value in that field alone, and a decoder whose own PARAMS are the defaults reads it and
    reproduces the encoder's reconstruction exactly."""
    value = other_value(key)
    encoder = load_hybrid()
    encoder.PARAMS[key] = value
    bitstream, reconstruction = encoder._encode(tiny, QUALITY)
    decoder = load_hybrid()
    assert decoder.PARAMS[key] != value
    read = decoder.Stream.unpack(bitstream)
    scale = SCALES.get(key)
    expected = value if scale is None else round(value * scale) / scale
    assert read.params[key] == expected
    assert read.params == {**decoder.Stream.unpack(default_stream).params, key: expected}
    field = key if key in HEADER_PARAMS else "tools"
    start, end = field_span(field)
    size = decoder.HEADER.size
    changed = [i for i in range(size) if bitstream[i] != default_stream[i]]
    assert changed and all(start <= i < end for i in changed), (field, changed)
    decoded = decoder.decode(bitstream)
    assert decoded[3] == (tiny.fps.numerator, tiny.fps.denominator)
    planes = zip(reconstruction, decoded[:3], (tiny.y, tiny.u, tiny.v), strict=True)
    for mine, theirs, source in planes:
        assert theirs.shape == source.shape
        assert np.array_equal(np.asarray(mine), theirs)


def test_the_clip_fields_and_the_base_qp_are_read_back(tiny: Frames) -> None:
    seed = load_hybrid()
    seed.PARAMS["qp_shift"] = -4.0
    read = seed.Stream.unpack(seed.encode(tiny, QUALITY))
    count, height, width = tiny.y.shape
    assert (read.width, read.height, read.count) == (width, height, count)
    assert (read.fps_num, read.fps_den) == (tiny.fps.numerator, tiny.fps.denominator)
    assert read.base_qp == seed.quality_qp(QUALITY, -4.0) == seed.quality_qp(QUALITY, 0.0) - 4


@pytest.mark.parametrize("key", ENCODER_ONLY)
def test_encoder_only_params_leave_the_header_alone(key: str, tiny: Frames) -> None:
    seed = load_hybrid()
    before = seed.Stream.of_clip(tiny, QUALITY, seed.PARAMS).pack()
    seed.PARAMS[key] = other_value(key)
    after = seed.Stream.of_clip(tiny, QUALITY, seed.PARAMS).pack()
    if key == "qp_shift":  # the encoder's choice of base QP, which the header holds
        start, end = field_span("base_qp")
        assert before[:start] == after[:start] and before[end:] == after[end:]
        assert before != after
    else:
        assert before == after
