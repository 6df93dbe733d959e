"""The hybrid seed's output is pinned: its bitstream and decoded frames for a small clip, so a
change that alters what the codec writes or reconstructs is caught (stored figures and
BD-rates depend on it). A deliberate change of the format or of the encoder's decisions
records new digests.

Two pins: with the tools added since (picture QPs from temporal propagation, more intra
angles, most probable intra modes, models that learn within a batch, a rehearsal of the
first picture, loop-filter classes, RDOQ's choice of the last diagonal) set as before, the
output is the one recorded from the code before the encoder was sped up (issue 22), byte
for byte but for the header fields added since: the tools cost nothing where they are off.
With the seed's defaults, the output recorded when the last tools came in."""

from __future__ import annotations

import hashlib
import struct
from types import ModuleType

import numpy as np
import pytest

from aicodec.clips import load_clip
from aicodec.settings import Settings
from tests.test_seeds import load_hybrid

QUALITY = 50
FRAMES = 4  # builtin:default, 352x288: an I picture, a P picture and two B pictures
# (PARAMS overrides, header fields added since the pin was recorded, bitstream bytes without
# them, SHA-256 of the bitstream without them, SHA-256 of the decoded y, u, v planes
# concatenated)
PINS = {
    # recorded from hybrid.py at a4567f5 (before the speed work) with its default PARAMS
    "before the new tools": (
        {
            "qp_propagation": 0.0,
            "qp_layer_step": 1.3,
            "qp_i_offset": -2,
            "intra_modes": 10,
            "intra_mpm": 0,
            "adapt_chunk": 0,
            "intra_rehearsal": 0,
            "alf_classes": 1,
            "rdoq": 1,
        },
        {"intra_modes", "adapt_chunk", "alf_classes"},
        13390,
        "2aebe3c8f569bd2b62603a3d831e912baa4b6636df249216fb91c20b3d685e42",
        "5b7a3c0bbd2bedd1dcd1f7070bd823109f37740030e0c75bbaf97f84edc2b003",
    ),
    # recorded when RDOQ came to choose each block's last diagonal (rdoq 2), with the defaults
    "defaults": (
        {},
        set(),
        14810,
        "c7ebac9ad3390e3ebc24298391e3c193e23d42e92051cf23f331aeaa694072d9",
        "4549b199bfc1c671581f973f57c6bf668c31917d8a929ab47f7f3e7dbe6a3135",
    ),
}


def without_header_fields(seed: ModuleType, bitstream: bytes, names: set[str]) -> bytes:
    """The bitstream with the bytes of the named header fields cut out."""
    kept, offset = [bitstream[: len(seed.MAGIC)]], len(seed.MAGIC)
    for name, fmt, _ in seed.HEADER_FIELDS:
        size = struct.calcsize("<" + fmt)
        if name not in names:
            kept.append(bitstream[offset : offset + size])
        offset += size
    return b"".join(kept) + bitstream[offset:]


@pytest.mark.parametrize("pin", sorted(PINS))
def test_hybrid_output_is_unchanged(pin: str) -> None:
    overrides, added_fields, size, bitstream_sha256, decoded_sha256 = PINS[pin]
    frames = load_clip(None, Settings(), count=FRAMES).frames
    seed = load_hybrid()
    seed.PARAMS.update(overrides)
    bitstream = seed.encode(frames, QUALITY)
    pinned = without_header_fields(seed, bitstream, added_fields)
    assert len(pinned) == size
    assert hashlib.sha256(pinned).hexdigest() == bitstream_sha256
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
