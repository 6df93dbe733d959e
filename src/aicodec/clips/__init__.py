"""Clips: video sources as 8-bit YUV 4:2:0 frames with a frame rate and a content hash."""

from aicodec.clips.frames import Frames
from aicodec.clips.loading import (
    BUILTIN_FAMILY,
    BUILTIN_NAME,
    HELD_OUT_BUILTINS,
    Clip,
    held_out_window,
    is_builtin,
    load_clip,
    parse_fps,
    parse_size,
)
from aicodec.clips.spec import ClipSpec

__all__ = [
    "BUILTIN_FAMILY",
    "BUILTIN_NAME",
    "HELD_OUT_BUILTINS",
    "Clip",
    "ClipSpec",
    "Frames",
    "held_out_window",
    "is_builtin",
    "load_clip",
    "parse_fps",
    "parse_size",
]
