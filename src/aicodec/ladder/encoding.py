"""Running one standard encoder at one rate value and decoding its stream with ffmpeg."""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aicodec.clips import Frames
from aicodec.errors import BaselineError, FFmpegError
from aicodec.ffmpeg import run_ffmpeg
from aicodec.ladder.spec import EncoderSpec


@dataclass(frozen=True)
class Encoded:
    """A bitstream, the frames ffmpeg decodes from it, and the encoder's and decoder's wall
    times (seconds, each an ffmpeg process from start to exit)."""

    bitstream: bytes
    decoded: Frames
    encode_seconds: float
    decode_seconds: float


TEN_BIT = "yuv420p10le"


def raw_input(frames: Frames, pix_fmt: str) -> bytes:
    """The frames as the encoder's raw input: I420 bytes, or 10-bit samples shifted left by 2."""
    if pix_fmt != TEN_BIT:
        return frames.i420_bytes()
    count = frames.count
    planes = [plane.reshape(count, -1) for plane in (frames.y, frames.u, frames.v)]
    return (np.concatenate(planes, axis=1).astype("<u2") << 2).tobytes()


def frames_from_raw(data: bytes, pix_fmt: str, like: Frames) -> Frames:
    """Decoded raw output as 8-bit frames; 10-bit samples are rounded back, (v + 2) >> 2."""
    if pix_fmt == TEN_BIT:
        samples = np.frombuffer(data, dtype="<u2").astype(np.int32)
        data = np.clip((samples + 2) >> 2, 0, 255).astype(np.uint8).tobytes()
    return Frames.from_i420(data, like.width, like.height, like.fps)


def encode_and_decode(
    spec: EncoderSpec,
    frames: Frames,
    rate: int,
    threads: int,
    timeout_s: float,
    cancel: threading.Event | None = None,
) -> Encoded:
    """Encode ``frames`` at ``rate`` with ``spec``, decode the stream, check the frame count."""
    args = spec.encode_args(rate, threads, frames.width, frames.height, frames.fps)
    started = time.perf_counter()
    try:
        result = run_ffmpeg(
            args, input_bytes=raw_input(frames, spec.pix_fmt), timeout_s=timeout_s, cancel=cancel
        )
    except FFmpegError as exc:
        raise BaselineError(f"{spec.name} at {spec.rate_option} {rate}: {exc}") from None
    seconds = time.perf_counter() - started
    bitstream = result.stdout
    if not bitstream:
        raise BaselineError(f"{spec.name} at {spec.rate_option} {rate} wrote no bitstream")
    with tempfile.TemporaryDirectory(prefix="aicodec-baseline-") as folder:
        path = Path(folder) / f"stream.{spec.format}"
        path.write_bytes(bitstream)
        try:
            decode = spec.decode_args(path, frames.fps)
            decode_started = time.perf_counter()
            raw = run_ffmpeg(decode, timeout_s=timeout_s, cancel=cancel).stdout
            decode_seconds = time.perf_counter() - decode_started
        except FFmpegError as exc:
            raise BaselineError(f"{spec.name} stream does not decode: {exc}") from None
    decoded = frames_from_raw(raw, spec.pix_fmt, frames)
    if decoded.count != frames.count:
        raise BaselineError(
            f"{spec.name} at {spec.rate_option} {rate}: decoded {decoded.count} frames, "
            f"the clip has {frames.count}"
        )
    return Encoded(bitstream, decoded, seconds, decode_seconds)
