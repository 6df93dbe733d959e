"""builtin:default, the training clip: scikit-image photographs filmed by a moving camera.

A landscape photograph (``rocket``) with a band of fine texture (``gravel``) along the
ground is viewed through a camera that pans right and zooms in; a feathered oval cut
from another photograph (``chelsea``) moves on its own path across the view. The clip
is made the same way on every machine, so its content hash is stable for a given
scikit-image and OpenCV.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import cv2
import numpy as np

from aicodec.clips.builtin.render import i420_frames
from aicodec.clips.frames import Frames

WIDTH, HEIGHT, FPS, FRAME_COUNT = 352, 288, Fraction(30), 30
CANVAS_W, CANVAS_H = 704, 440
TEXTURE_ROWS = 120
SPRITE_W, SPRITE_H = 112, 96


def _canvas() -> np.ndarray:
    """The scene behind the camera: photograph with a textured ground band (float32 RGB)."""
    from skimage import data

    photo = cv2.resize(data.rocket(), (CANVAS_W, CANVAS_H), interpolation=cv2.INTER_AREA)
    canvas = photo.astype(np.float32)
    gravel = cv2.resize(data.gravel(), (CANVAS_W, TEXTURE_ROWS), interpolation=cv2.INTER_AREA)
    tint = np.array([0.95, 0.85, 0.7], np.float32)
    ground = gravel.astype(np.float32)[..., None] * tint
    fade = np.linspace(0.0, 1.0, 24, dtype=np.float32)[:, None, None]
    band = canvas[-TEXTURE_ROWS:]
    band[:24] = band[:24] * (1 - fade) + ground[:24] * fade
    band[24:] = ground[24:]
    return canvas


def _sprite() -> tuple[np.ndarray, np.ndarray]:
    """The moving object: a cat's face in a feathered oval (float32 RGB, alpha 0..1)."""
    from skimage import data

    face = data.chelsea()[30:270, 110:390]
    rgb = cv2.resize(face, (SPRITE_W, SPRITE_H), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha: np.ndarray = np.zeros((SPRITE_H, SPRITE_W), np.float32)
    centre = (SPRITE_W // 2, SPRITE_H // 2)
    cv2.ellipse(alpha, centre, (SPRITE_W // 2 - 6, SPRITE_H // 2 - 6), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 2.5)
    return rgb, alpha


def _camera(index: int) -> np.ndarray:
    """Affine map from output pixels to canvas pixels for frame ``index`` (pan and zoom)."""
    progress = index / max(FRAME_COUNT - 1, 1)
    scale = 1.3 - 0.3 * progress  # canvas pixels per output pixel: zooming in
    centre_x = 250.0 + 190.0 * progress
    centre_y = 250.0 - 30.0 * progress
    return np.array(
        [
            [scale, 0.0, centre_x - scale * WIDTH / 2],
            [0.0, scale, centre_y - scale * HEIGHT / 2],
        ],
        np.float32,
    )


def _place_sprite(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, index: int) -> None:
    """Blend the sprite into ``frame`` at its own position for frame ``index`` (in place)."""
    progress = index / max(FRAME_COUNT - 1, 1)
    x = 300.0 - 280.0 * progress
    y = 120.0 + 40.0 * np.sin(2 * np.pi * progress)
    shift = np.array([[1.0, 0.0, x - SPRITE_W / 2], [0.0, 1.0, y - SPRITE_H / 2]], np.float32)
    size = (WIDTH, HEIGHT)
    placed_rgb = cv2.warpAffine(rgb, shift, size, flags=cv2.INTER_LINEAR)
    placed_alpha = cv2.warpAffine(alpha, shift, size, flags=cv2.INTER_LINEAR)[..., None]
    frame *= 1.0 - placed_alpha
    frame += placed_rgb * placed_alpha


def _view(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, index: int) -> np.ndarray:
    """Frame ``index`` as float RGB: the camera's view of the canvas with the sprite on it."""
    view = cv2.warpAffine(
        canvas, _camera(index), (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    )
    _place_sprite(view, rgb, alpha, index)
    return view


@lru_cache(maxsize=1)
def frames() -> Frames:
    """The built-in clip: 352x288, 30 frames at 30 fps, YUV 4:2:0 (BT.601 via OpenCV)."""
    canvas = _canvas()
    rgb, alpha = _sprite()
    return i420_frames((_view(canvas, rgb, alpha, index) for index in range(FRAME_COUNT)), FPS)
