# expect: signature
"""Hostile candidate: names encode's parameters its own way."""

import struct
import zlib

import numpy as np

MAGIC = b"RAW1"


def encode(data, q) -> bytes:  # HOSTILE
    """Pack the raw planes behind a small header and deflate them."""
    level = max(1, min(9, q // 11))
    header = MAGIC + struct.pack("<III", data.count, data.width, data.height)
    body = b"".join(np.ascontiguousarray(p).tobytes() for p in (data.y, data.u, data.v))
    return header + zlib.compress(body, level)


def decode(bitstream: bytes):
    """Inflate the planes and cut them to the shapes in the header."""
    count, width, height = struct.unpack("<III", bitstream[4:16])
    raw = np.frombuffer(zlib.decompress(bitstream[16:]), dtype=np.uint8)
    luma = count * width * height
    chroma = count * (width // 2) * (height // 2)
    y = raw[:luma].reshape(count, height, width)
    u = raw[luma : luma + chroma].reshape(count, height // 2, width // 2)
    v = raw[luma + chroma :].reshape(count, height // 2, width // 2)
    return y, u, v
