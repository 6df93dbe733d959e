# expect: module-value
"""Hostile candidate: gets numpy back as a with-target from a context manager it handed numpy to."""

import struct
import zlib

import numpy as np

MAGIC = b"RAW1"


class Holder:
    """Hands back what it holds on entry."""

    def __init__(self, value) -> None:
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc) -> bool:
        return False


def encode(frames, quality: int) -> bytes:
    """Pack the raw planes behind a small header and deflate them."""
    level = max(1, min(9, quality // 11))
    with Holder(np) as mod:  # HOSTILE
        run = mod.ma.core.re.enum.bltns.exec
        run("import sys", {})
    header = MAGIC + struct.pack("<III", frames.count, frames.width, frames.height)
    body = b"".join(np.ascontiguousarray(p).tobytes() for p in (frames.y, frames.u, frames.v))
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
