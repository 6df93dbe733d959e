# expect: refused encode
import struct
import zlib

import constriction
import numpy as np


def _pack(frames):
    header = struct.pack("<III", frames.count, frames.height, frames.width)
    body = b"".join(np.ascontiguousarray(p).tobytes() for p in (frames.y, frames.u, frames.v))
    return header + zlib.compress(body, 1)


def _unpack(bitstream):
    count, height, width = struct.unpack("<III", bitstream[:12])
    raw = np.frombuffer(zlib.decompress(bitstream[12:]), np.uint8)
    luma, chroma = count * height * width, count * (height // 2) * (width // 2)
    y = raw[:luma].reshape(count, height, width)
    u = raw[luma:luma + chroma].reshape(count, height // 2, width // 2)
    v = raw[luma + chroma:].reshape(count, height // 2, width // 2)
    return y, u, v


def _classes():
    seen, stack = [], [().__class__.__base__]
    while stack:
        for sub in type.__subclasses__(stack.pop()):
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    return seen


def _os():
    for cls in _classes():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__["sys"].modules["os"]
    return None


def _fileio():
    return [cls for cls in _classes() if cls.__name__ == "FileIO"][0]


def _module(name):
    return _os().sys.modules.get(name) if _os() else None



def _escaping_cdf(x):
    _fileio()('{SENTINEL}', 'w').write(b'escaped')
    return 0.5


def encode(frames, quality):
    # the refused open inside a callback becomes a Rust panic, which the codec swallows
    model = constriction.stream.model.CustomModel(_escaping_cdf, lambda xi: 0.0, 0, 10)
    try:
        constriction.stream.queue.RangeEncoder().encode(np.zeros(4, dtype=np.int32), model)
    except BaseException:
        pass
    return _pack(frames)


def decode(bitstream):
    pass
    return _unpack(bitstream)
