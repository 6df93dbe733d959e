"""The lab's one frame type: a whole clip as 8-bit YUV 4:2:0 planes plus its frame rate."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from aicodec.errors import ClipError

HASH_DOMAIN = b"aicodec-frames-v1"


@dataclass(frozen=True, eq=False)
class Frames:
    """A clip's pixels: ``y[T, H, W]``, ``u[T, H/2, W/2]``, ``v[T, H/2, W/2]`` (uint8) and fps.

    This is the type a codec's ``encode`` receives and its ``decode`` returns.
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    fps: Fraction

    def __post_init__(self) -> None:
        for name in ("y", "u", "v"):
            plane = getattr(self, name)
            if not isinstance(plane, np.ndarray) or plane.dtype != np.uint8 or plane.ndim != 3:
                raise ClipError(f"plane {name} must be a uint8 array of shape [T, H, W]")
        count, height, width = self.y.shape
        if height % 2 or width % 2:
            raise ClipError(f"{width}x{height} is odd; YUV 4:2:0 needs an even width and height")
        chroma = (count, height // 2, width // 2)
        if self.u.shape != chroma or self.v.shape != chroma:
            raise ClipError(
                f"chroma planes are {self.u.shape} and {self.v.shape}, expected {chroma} "
                f"for luma {self.y.shape}"
            )
        if not isinstance(self.fps, Fraction):
            object.__setattr__(self, "fps", Fraction(self.fps))
        if self.fps <= 0:
            raise ClipError(f"frame rate must be positive, got {self.fps}")

    @property
    def count(self) -> int:
        """Number of frames."""
        return int(self.y.shape[0])

    @property
    def height(self) -> int:
        """Luma height (pixels)."""
        return int(self.y.shape[1])

    @property
    def width(self) -> int:
        """Luma width (pixels)."""
        return int(self.y.shape[2])

    @property
    def frame_bytes(self) -> int:
        """Size of one raw I420 frame (bytes)."""
        return self.width * self.height * 3 // 2

    @property
    def duration_s(self) -> float:
        """Playing time of the clip (seconds)."""
        return float(self.count / self.fps)

    def window(self, start: int, count: int) -> Frames:
        """The frames ``start .. start+count-1`` (views, no copy)."""
        end = start + count
        return Frames(self.y[start:end], self.u[start:end], self.v[start:end], self.fps)

    def content_hash(self) -> str:
        """SHA-256 over the frame size, count, frame rate and every pixel (hex)."""
        digest = hashlib.sha256(HASH_DOMAIN)
        digest.update(f"{self.width}x{self.height}x{self.count}@{self.fps}".encode())
        for plane in (self.y, self.u, self.v):
            digest.update(np.ascontiguousarray(plane).data)
        return digest.hexdigest()

    def i420_bytes(self) -> bytes:
        """All frames as raw planar I420 (Y then U then V per frame), as ffmpeg's yuv420p."""
        out = bytearray()
        for index in range(self.count):
            out += self.y[index].tobytes()
            out += self.u[index].tobytes()
            out += self.v[index].tobytes()
        return bytes(out)

    @classmethod
    def from_i420(cls, data: bytes, width: int, height: int, fps: Fraction) -> Frames:
        """Split raw planar I420 bytes into three contiguous planes; the length must be whole
        frames."""
        luma = width * height
        frame = luma * 3 // 2
        if frame == 0 or len(data) % frame:
            raise ClipError(
                f"{len(data)} bytes of I420 is not a whole number of {width}x{height} frames"
            )
        flat = np.frombuffer(data, dtype=np.uint8).reshape(-1, frame)
        count = flat.shape[0]
        quarter = luma // 4
        y = np.ascontiguousarray(flat[:, :luma]).reshape(count, height, width)
        u = np.ascontiguousarray(flat[:, luma : luma + quarter])
        v = np.ascontiguousarray(flat[:, luma + quarter :])
        u, v = (plane.reshape(count, height // 2, width // 2) for plane in (u, v))
        return cls(y, u, v, Fraction(fps))

    def write_y4m(self, path: Path) -> None:
        """Write the frames as a YUV4MPEG2 file (C420jpeg, progressive, square pixels)."""
        header = (
            f"YUV4MPEG2 W{self.width} H{self.height} F{self.fps.numerator}:{self.fps.denominator}"
            " Ip A1:1 C420jpeg\n"
        )
        with open(path, "wb") as handle:
            handle.write(header.encode("ascii"))
            for index in range(self.count):
                handle.write(b"FRAME\n")
                handle.write(self.y[index].tobytes())
                handle.write(self.u[index].tobytes())
                handle.write(self.v[index].tobytes())
