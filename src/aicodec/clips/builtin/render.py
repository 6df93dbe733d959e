"""Turn rendered RGB views into the lab's frames: BT.601 I420 through OpenCV, read-only."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import cv2
import numpy as np

from aicodec.clips.frames import Frames


def _i420_planes(view: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U and V of one float RGB view (0..255, even size), rounded to 8 bits."""
    height, width = view.shape[:2]
    pixels = np.clip(np.rint(view), 0, 255).astype(np.uint8)
    i420 = cv2.cvtColor(pixels, cv2.COLOR_RGB2YUV_I420)
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    return i420[:height], chroma[0], chroma[1]


def i420_frames(views: Iterable[np.ndarray], fps: Fraction) -> Frames:
    """Read-only frames from float RGB views (0..255, all one even size), one per frame."""
    y, u, v = (np.stack(plane) for plane in zip(*map(_i420_planes, views), strict=True))
    for plane in (y, u, v):
        plane.flags.writeable = False
    return Frames(y, u, v, fps)
