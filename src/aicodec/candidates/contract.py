"""The codec contract, defined once: what a candidate module must provide and may use.

A candidate is one Python source file defining::

    def encode(frames, quality: int) -> bytes
    def decode(bitstream: bytes) -> tuple[ndarray, ndarray, ndarray]

``frames`` is an :class:`aicodec.clips.Frames` (``y[T, H, W]``, ``u`` and ``v`` of
``[T, H/2, W/2]``, all uint8, plus ``fps``, ``count``, ``width``, ``height``).
``decode`` returns ``(y, u, v)`` uint8 arrays of the source's shapes (or any object
with ``y``, ``u`` and ``v`` attributes). ``prompts/contract.md.j2`` is the same contract in
prose for models and people, its lists rendered from these tables and the validator's
(:mod:`aicodec.validation.contract_rules`); ``aicodec contract`` prints it.
"""

from __future__ import annotations

QUALITY_MIN = 0
QUALITY_MAX = 100
DEFAULT_QUALITIES = (20, 40, 60, 80)

# name -> positional parameter names (first ones; extra parameters need defaults)
REQUIRED_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "encode": ("frames", "quality"),
    "decode": ("bitstream",),
}

# Tunables: PARAMS = {name: value}; PARAM_RANGES = {name: (low, high)} or {name: [choices]}
PARAMS_NAME = "PARAMS"
PARAM_RANGES_NAME = "PARAM_RANGES"

# Modules a candidate may import (a dotted import is allowed when its first part is here).
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "numpy",
        "math",
        "cmath",
        "struct",
        "zlib",
        "lzma",
        "bz2",
        "heapq",
        "itertools",
        "functools",
        "operator",
        "collections",
        "bisect",
        "array",
        "fractions",
        "typing",
        "dataclasses",
        "enum",
        "statistics",
        "copy",
        "numbers",
        "decimal",
        "abc",
        "constriction",
        "cv2",
        "torch",
    }
)

# Largest candidate source accepted (bytes).
MAX_SOURCE_BYTES = 200_000
