"""The built-in clip family: short clips made on the fly from pictures inside scikit-image.

``default`` is the training clip of an evolve run without ``--video``; the others are its
held-out clips (adoption is decided on them). Each member is a module here with a cached
``frames()``; importing this package loads neither OpenCV nor scikit-image.
"""

from __future__ import annotations

from importlib import import_module

from aicodec.clips.frames import Frames

FAMILY = ("default", "still", "shake")  # the one list of built-in clips; default comes first


def member_frames(member: str) -> Frames:
    """The frames of family member ``member`` (one of FAMILY), made once per process."""
    if member not in FAMILY:
        raise ValueError(f"{member!r} is not a built-in clip")
    frames: Frames = import_module(f"aicodec.clips.builtin.{member}").frames()
    return frames
