"""The hybrid seed's output is pinned: its bitstream and decoded frames for a small clip, so a
change that alters what the codec writes or reconstructs is caught (stored figures and
BD-rates depend on it). A deliberate change of the format or of the encoder's decisions
records new digests.

Two pins: with the picture QPs from temporal propagation switched off and the fixed QP
offsets of before, the output is the one recorded from the code before the encoder was sped
up (issue 22), byte for byte: the tool costs nothing where it is off. With the seed's
defaults, the output recorded when that tool came in."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from aicodec.clips import load_clip
from aicodec.settings import Settings

SEED = Path(__file__).resolve().parents[1] / "baselines" / "seeds" / "hybrid.py"
QUALITY = 50
FRAMES = 4  # builtin:default, 352x288: an I picture, a P picture and two B pictures
# (PARAMS overrides, bitstream bytes, SHA-256 of the bitstream, SHA-256 of the decoded y, u, v
# planes concatenated)
PINS = {
    # recorded from hybrid.py at a4567f5 (before the speed work) with its default PARAMS
    "without propagation": (
        {"qp_propagation": 0.0, "qp_layer_step": 1.3, "qp_i_offset": -2},
        13390,
        "2aebe3c8f569bd2b62603a3d831e912baa4b6636df249216fb91c20b3d685e42",
        "5b7a3c0bbd2bedd1dcd1f7070bd823109f37740030e0c75bbaf97f84edc2b003",
    ),
    # recorded when the picture QPs from temporal propagation came in, with the defaults
    "defaults": (
        {},
        16026,
        "7d60123adc32cd6c2a25b260a3cb054a857242213d26b8fc6a8c2e1e82eb0c50",
        "ab9fc19f5af7e7eb4785251136af425613d8bd10aa93835db19d1426708ef8d3",
    ),
}


def load_hybrid() -> ModuleType:
    """The seed as a fresh module (its own PARAMS)."""
    spec = importlib.util.spec_from_file_location("hybrid_bitexact_seed", SEED)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("pin", sorted(PINS))
def test_hybrid_output_is_unchanged(pin: str) -> None:
    overrides, size, bitstream_sha256, decoded_sha256 = PINS[pin]
    frames = load_clip(None, Settings(), count=FRAMES).frames
    seed = load_hybrid()
    seed.PARAMS.update(overrides)
    bitstream = seed.encode(frames, QUALITY)
    assert len(bitstream) == size
    assert hashlib.sha256(bitstream).hexdigest() == bitstream_sha256
    decoded = seed.decode(bitstream)
    planes = b"".join(np.ascontiguousarray(plane).tobytes() for plane in decoded[:3])
    assert hashlib.sha256(planes).hexdigest() == decoded_sha256


def test_pictures_that_later_ones_predict_from_get_finer_quantisers() -> None:
    """On a still scene every picture predicts from its references almost perfectly: the
    intra picture, which all others descend from, gets the largest QP reduction, and the B
    pictures of the top layer, which nothing references, none. With strength 0, none."""
    seed = load_hybrid()
    still = load_clip(None, Settings(), count=1).frames.y[0]
    luma = np.repeat(still[None], 9, axis=0)
    order = seed.coding_order(9, [8])
    offsets = seed.propagation_offsets(luma, order, 2.0)
    layers = {poc: layer for poc, _, layer, _, _ in order}
    top = [offsets[poc] for poc, layer in layers.items() if layer == max(layers.values())]
    assert top == [0, 0, 0, 0]
    assert offsets[0] == min(offsets.values()) <= -5  # 2 * log2(1 + 8 descendants), rounded
    assert offsets[0] < offsets[8] < 0  # the P picture: referenced, by fewer pictures
    assert all(-12 <= value <= 0 for value in offsets.values())
    assert set(seed.propagation_offsets(luma, order, 0.0).values()) == {0}
