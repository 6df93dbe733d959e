# expect: missing-function
"""Hostile candidate: has no decode at all."""

import struct
import zlib

import numpy as np

MAGIC = b"RAW1"


def encode(frames, quality: int) -> bytes:
    """Pack the raw planes behind a small header and deflate them."""
    level = max(1, min(9, quality // 11))
    header = MAGIC + struct.pack("<III", frames.count, frames.width, frames.height)
    body = b"".join(np.ascontiguousarray(p).tobytes() for p in (frames.y, frames.u, frames.v))
    return header + zlib.compress(body, level)
