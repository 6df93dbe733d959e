"""A small entropy-coded codec: quantised pixels, horizontal differences, constriction.

Every plane is quantised with one step, each row becomes its left-neighbour differences, and
the differences are range-coded with a QuantizedLaplace whose scale per symbol comes from
the row above (a context both sides know). One encode or decode call per row.
"""

import struct

import constriction
import numpy as np

PARAMS = {"base_scale": 0.7, "context_gain": 0.8}
PARAM_RANGES = {"base_scale": (0.2, 4.0), "context_gain": (0.0, 2.0)}
HEADER = struct.Struct("<4sIIIH")
MAGIC = b"CDP1"
SUPPORT = 512  # differences of quantised pixels stay within +-2*256/step
MODEL = constriction.stream.model.QuantizedLaplace(-SUPPORT, SUPPORT)


def _step(quality: int) -> int:
    """Quantiser step: 1 at quality 100, coarser below."""
    return 1 + (100 - quality) // 6


def _scales(above: np.ndarray) -> np.ndarray:
    """Per-symbol Laplace scale from the magnitude of the row above's differences."""
    return PARAMS["base_scale"] + PARAMS["context_gain"] * np.abs(above).astype(np.float64)


def _planes(count: int, height: int, width: int) -> list[tuple[int, int]]:
    """(rows, columns) of every plane in coding order: y, u, v of frame 0, then frame 1, ..."""
    return [(height, width), (height // 2, width // 2), (height // 2, width // 2)] * count


def encode(frames, quality: int) -> bytes:
    step = _step(quality)
    coder = constriction.stream.queue.RangeEncoder()
    for index in range(frames.count):
        for plane in (frames.y[index], frames.u[index], frames.v[index]):
            levels = np.rint((plane.astype(np.int32) - 128) / step).astype(np.int32)
            diffs = np.diff(levels, axis=1, prepend=0).astype(np.int32)
            above = np.zeros(plane.shape[1], dtype=np.int32)
            for row in diffs:
                coder.encode(row, MODEL, np.zeros(row.size), _scales(above))
                above = row
    header = HEADER.pack(MAGIC, frames.count, frames.height, frames.width, step)
    return header + coder.get_compressed().tobytes()


def decode(bitstream: bytes):
    magic, count, height, width, step = HEADER.unpack_from(bitstream)
    if magic != MAGIC:
        raise ValueError("not a CDP1 bitstream")
    words = np.frombuffer(bitstream[HEADER.size :], dtype=np.uint32)
    coder = constriction.stream.queue.RangeDecoder(words)
    planes = []
    for rows, columns in _planes(count, height, width):
        levels = np.empty((rows, columns), dtype=np.int32)
        above = np.zeros(columns, dtype=np.int32)
        for row in range(rows):
            diffs = coder.decode(MODEL, np.zeros(columns), _scales(above))
            levels[row] = np.cumsum(diffs)
            above = diffs
        planes.append(np.clip(levels * step + 128, 0, 255).astype(np.uint8))
    y = np.stack(planes[0::3])
    u = np.stack(planes[1::3])
    v = np.stack(planes[2::3])
    return y, u, v
