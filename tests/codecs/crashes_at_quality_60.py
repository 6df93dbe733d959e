"""Statically valid, but its encoder raises at quality 60 (a codec bug, not an attack)."""

import struct
import zlib

import numpy as np


def encode(frames, quality: int) -> bytes:
    if quality == 60:
        raise ValueError("quantiser table missing for quality 60")
    header = struct.pack("<III", frames.count, frames.height, frames.width)
    planes = (frames.y, frames.u, frames.v)
    return header + zlib.compress(b"".join(np.ascontiguousarray(p).tobytes() for p in planes))


def decode(bitstream: bytes):
    count, height, width = struct.unpack("<III", bitstream[:12])
    raw = np.frombuffer(zlib.decompress(bitstream[12:]), np.uint8)
    luma, chroma = count * height * width, count * (height // 2) * (width // 2)
    y = raw[:luma].reshape(count, height, width)
    u = raw[luma : luma + chroma].reshape(count, height // 2, width // 2)
    v = raw[luma + chroma :].reshape(count, height // 2, width // 2)
    return y, u, v
