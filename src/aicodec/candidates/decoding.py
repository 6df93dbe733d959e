"""Decoding one bitstream file with one codec, in the sandbox, to a y4m file."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from aicodec.errors import ClipError
from aicodec.settings import Settings


@dataclass(frozen=True)
class DecodedFile:
    """A decoded bitstream as written: the y4m file, its frames and the decode's figures."""

    output: Path
    frames: int
    width: int
    height: int
    fps: float
    bytes: int
    decode_seconds: float | None
    isolation: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures, as ``aicodec decode --json`` prints them."""
        return {
            "output": str(self.output),
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "bytes": self.bytes,
            "decode_seconds": self.decode_seconds,
            "isolation": list(self.isolation),
        }


def decode_to_file(
    source: str, bitstream: Path, output: Path, settings: Settings, *, fps: Fraction | None = None
) -> DecodedFile:
    """Check the codec ``source`` statically, decode ``bitstream`` with it in the sandbox and
    write the frames to ``output`` (y4m); ``fps`` where the codec returns no frame rate."""
    from aicodec.sandbox.execute import decode_bitstream
    from aicodec.scoring.candidate import validate_or_raise

    validate_or_raise(source)
    try:
        data = bitstream.read_bytes()
    except OSError as exc:
        raise ClipError(f"{bitstream}: cannot read the bitstream ({exc.strerror})") from None
    frames, report = decode_bitstream(source, data, settings, fps=fps)
    frames.write_y4m(output)
    return DecodedFile(
        output,
        frames.count,
        frames.width,
        frames.height,
        float(frames.fps),
        len(data),
        report.call_seconds,
        tuple(report.isolation),
    )
