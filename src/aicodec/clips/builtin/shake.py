"""builtin:shake, a held-out clip: heavy texture filmed by a shaking hand-held camera.

A wall of ``brick`` above a strip of ``grass`` and a ``gravel`` path, each tinted, fills
the view; the camera shakes as if held in a hand: a springy random walk in position
(a few pixels a frame) and a slight roll. The pushes come from a fixed seed through
SplitMix64 in plain integers (no library's random stream), so the clip is the same on
every machine: a test of motion search and of texture that costs many bits.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import cv2
import numpy as np

from aicodec.clips.builtin.render import i420_frames
from aicodec.clips.frames import Frames

WIDTH, HEIGHT, FPS, FRAME_COUNT = 320, 240, Fraction(30), 30
CANVAS_W, CANVAS_H = 416, 336  # room for the shake around the view
SEED = 20240611
KICK = np.array([2.5, 2.5, 0.35])  # largest random push per frame: x, y (pixels), roll (degrees)
SPRING, DAMPING = 0.2, 0.6  # pull back to the rest position; share of velocity kept per frame
BRICK_ROWS, GRASS_ROWS = 150, 70  # the wall's and the grass strip's height on the canvas
FEATHER = 12  # rows over which one texture fades into the next


def _uniform(seed: int, count: int) -> np.ndarray:
    """``count`` draws in -1..1 from SplitMix64 started at ``seed`` (float64)."""
    mask, state, draws = (1 << 64) - 1, seed, []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        mixed = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
        mixed = ((mixed ^ (mixed >> 27)) * 0x94D049BB133111EB) & mask
        draws.append((mixed ^ (mixed >> 31)) >> 11)  # 53 random bits
    return np.array(draws, np.float64) * 2.0**-52 - 1.0


def shake_path() -> np.ndarray:
    """Per frame, the camera's offset from rest: x, y (canvas pixels) and roll (degrees)."""
    pushes = _uniform(SEED, FRAME_COUNT * 3).reshape(FRAME_COUNT, 3) * KICK
    position, velocity = np.zeros(3), np.zeros(3)
    path = np.empty((FRAME_COUNT, 3))
    for index in range(FRAME_COUNT):
        velocity = DAMPING * velocity - SPRING * position + pushes[index]
        position = position + velocity
        path[index] = position
    return path


def _tinted(texture: np.ndarray, rows: int, tint: tuple[float, float, float]) -> np.ndarray:
    """A grey texture resized to the canvas width and ``rows`` high, coloured (float32 RGB)."""
    grey = cv2.resize(texture, (CANVAS_W, rows), interpolation=cv2.INTER_AREA)
    return grey.astype(np.float32)[..., None] * np.array(tint, np.float32)


def _canvas() -> np.ndarray:
    """The scene: brick wall, grass strip and gravel path, top to bottom (float32 RGB)."""
    from skimage import data

    gravel_rows = CANVAS_H - BRICK_ROWS - GRASS_ROWS
    bands = [
        _tinted(data.brick(), BRICK_ROWS + FEATHER, (1.0, 0.62, 0.5)),
        _tinted(data.grass(), GRASS_ROWS + FEATHER, (0.55, 0.85, 0.4)),
        _tinted(data.gravel(), gravel_rows, (0.95, 0.85, 0.7)),
    ]
    canvas = bands[0][: BRICK_ROWS + FEATHER].copy()
    fade = np.linspace(0.0, 1.0, FEATHER, dtype=np.float32)[:, None, None]
    for band in bands[1:]:
        canvas[-FEATHER:] = canvas[-FEATHER:] * (1 - fade) + band[:FEATHER] * fade
        canvas = np.concatenate([canvas, band[FEATHER:]])
    return canvas[:CANVAS_H]


def _camera(offset: np.ndarray) -> np.ndarray:
    """Affine map from output pixels to canvas pixels for one camera offset (x, y, roll)."""
    centre = (CANVAS_W / 2 + offset[0], CANVAS_H / 2 + offset[1])
    roll = np.deg2rad(offset[2])
    cos, sin = np.cos(roll), np.sin(roll)
    half_w, half_h = WIDTH / 2, HEIGHT / 2
    return np.array(
        [
            [cos, -sin, centre[0] - cos * half_w + sin * half_h],
            [sin, cos, centre[1] - sin * half_w - cos * half_h],
        ],
        np.float32,
    )


@lru_cache(maxsize=1)
def frames() -> Frames:
    """builtin:shake: 320x240, 30 frames at 30 fps, YUV 4:2:0 (BT.601 via OpenCV)."""
    canvas = _canvas()
    views = (
        cv2.warpAffine(
            canvas, _camera(offset), (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
        )
        for offset in shake_path()
    )
    return i420_frames(views, FPS)
