"""The decoder writes its own output file and its own "ok" report (a call of 1e-9 s, and
{EXTRA_FRAMES} frames more than it wrote) into the result pipe, then ends the process
before the lab's code can report; its module body sleeps first, so the real time from its
first line to its exit is over 0.6 s."""

import struct
import time

import numpy as np

time.sleep(0.6)


def _sys():
    seen, stack = [], [().__class__.__base__]
    while stack:
        for sub in type.__subclasses__(stack.pop()):
            if sub.__name__ == "_wrap_close":
                return sub.__init__.__globals__["sys"]
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    raise LookupError("no route to sys")


def encode(frames, quality):
    return struct.pack("<III", frames.count, frames.height, frames.width)


def decode(bitstream):
    count, height, width = struct.unpack("<III", bitstream)
    sys = _sys()
    sys.modules["aicodec.sandbox.guard"].Guard._check = lambda self, event, args: None
    os = sys.modules["os"]
    frame = height * width + 2 * (height // 2) * (width // 2)
    output = os.open("decoded.i420", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(output, np.full(count * frame, 128, np.uint8).tobytes())
    os.close(output)
    report = {"status": "ok", "call_seconds": 1e-9, "frames": count + {EXTRA_FRAMES},
              "height": height, "width": width, "fps": [30, 1]}
    os.write(int(sys.argv[2]), sys.modules["json"].dumps(report).encode())
    os._exit(0)
