"""builtin:still, a held-out clip: a fixed camera on a detailed photograph, small motions.

The camera looks down on a cup of coffee on a wooden table (``coffee``) and never moves.
The crema in the cup turns slowly, a coin cut from ``coins`` rolls in from the right
along the bottom of the picture, and the light dims a little and comes back, as when a
cloud passes. Most of the picture stays the same from frame to frame: a test of how a
codec spends bits on static detail and small moving areas.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import cv2
import numpy as np

from aicodec.clips.builtin.render import i420_frames
from aicodec.clips.frames import Frames

WIDTH, HEIGHT, FPS, FRAME_COUNT = 352, 288, Fraction(30), 30
CREMA_CENTRE, CREMA_AXES = (168.0, 103.0), (48.0, 34.0)  # the cup's surface (output pixels)
CREMA_TURN_DEG = 40.0  # how far the crema turns at its centre over the clip (degrees)
COIN_SIZE = 30  # diameter of the rolling coin (output pixels)
COIN_START, COIN_END = (372.0, 258.0), (160.0, 268.0)  # its centre, in from the right edge
DIMMING = 0.08  # deepest fall of the light, mid-clip (fraction of full brightness)


def _photo() -> np.ndarray:
    """The table and cup, cropped to the clip's shape (float32 RGB)."""
    from skimage import data

    photo = data.coffee()
    crop = round(photo.shape[0] * WIDTH / HEIGHT)
    left = (photo.shape[1] - crop) // 2
    fitted = cv2.resize(photo[:, left : left + crop], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return fitted.astype(np.float32)


def _coin() -> tuple[np.ndarray, np.ndarray]:
    """A bronze coin in a feathered disc (float32 RGB, alpha 0..1)."""
    from skimage import data

    grey = data.coins()[28:80, 18:72].astype(np.float32)  # the top-left coin
    grey = cv2.resize(grey, (COIN_SIZE, COIN_SIZE), interpolation=cv2.INTER_AREA)
    rgb = grey[..., None] * np.array([1.15, 0.9, 0.6], np.float32)
    alpha = np.zeros((COIN_SIZE, COIN_SIZE), np.float32)
    half = COIN_SIZE // 2
    cv2.circle(alpha, (half, half), half - 2, 1.0, -1)
    return rgb, cv2.GaussianBlur(alpha, (0, 0), 1.0)


def _crema_maps(progress: float) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates that turn the cup's surface by its angle at ``progress`` (0..1)."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    dx, dy = cols - CREMA_CENTRE[0], rows - CREMA_CENTRE[1]
    radius = np.hypot(dx / CREMA_AXES[0], dy / CREMA_AXES[1])  # 1 on the rim of the surface
    weight = np.clip(1.0 - radius, 0.0, 1.0) ** 2  # turns most at the centre, not at the rim
    angle = np.deg2rad(CREMA_TURN_DEG * progress) * weight
    cos, sin = np.cos(angle), np.sin(angle)
    map_x = CREMA_CENTRE[0] + cos * dx - sin * dy
    map_y = CREMA_CENTRE[1] + sin * dx + cos * dy
    return map_x.astype(np.float32), map_y.astype(np.float32)


def _place_coin(view: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, progress: float) -> None:
    """Blend the coin into ``view`` where it has rolled to at ``progress`` (in place)."""
    x = COIN_START[0] + (COIN_END[0] - COIN_START[0]) * progress
    y = COIN_START[1] + (COIN_END[1] - COIN_START[1]) * progress
    travel = float(np.hypot(COIN_END[0] - COIN_START[0], COIN_END[1] - COIN_START[1]))
    turn = 360.0 * travel / (np.pi * COIN_SIZE) * progress  # rolls, not slides (degrees)
    half = COIN_SIZE / 2
    move: np.ndarray = cv2.getRotationMatrix2D((half, half), turn, 1.0)
    move[:, 2] += (x - half, y - half)
    size = (WIDTH, HEIGHT)
    placed_rgb = cv2.warpAffine(rgb, move, size, flags=cv2.INTER_LINEAR)
    placed_alpha = cv2.warpAffine(alpha, move, size, flags=cv2.INTER_LINEAR)[..., None]
    view *= 1.0 - placed_alpha
    view += placed_rgb * placed_alpha


def _view(photo: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, index: int) -> np.ndarray:
    """Frame ``index`` as float RGB."""
    progress = index / (FRAME_COUNT - 1)
    map_x, map_y = _crema_maps(progress)
    view: np.ndarray = cv2.remap(
        photo, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )
    _place_coin(view, rgb, alpha, progress)
    view *= np.float32(1.0 - DIMMING * np.sin(np.pi * progress))
    return view


@lru_cache(maxsize=1)
def frames() -> Frames:
    """builtin:still: 352x288, 30 frames at 30 fps, YUV 4:2:0 (BT.601 via OpenCV)."""
    photo = _photo()
    rgb, alpha = _coin()
    return i420_frames((_view(photo, rgb, alpha, index) for index in range(FRAME_COUNT)), FPS)
