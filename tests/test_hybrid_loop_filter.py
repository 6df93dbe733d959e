"""The hybrid seed's adaptive loop filter with classes (``alf_classes``): 4x4 blocks are
ranked by local activity into equal shares, each share gets its own Wiener filter unless
it pays to share its neighbour's, the filters lower the error more than one filter for the
whole picture, and the decoder reads the number of classes from the header and reproduces
the encoder's pictures."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from aicodec.clips import load_clip
from aicodec.settings import Settings
from tests.test_seeds import crop, load_hybrid

SEED_MODULE = load_hybrid()


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """The built-in clip's first luma picture (352x288, a multiple of the 32x32 units)."""
    return load_clip(None, Settings(), count=1).frames.y[0].astype(np.int32)


def test_blocks_are_ranked_by_activity_into_equal_shares(picture: np.ndarray) -> None:
    seed = SEED_MODULE
    flat_and_busy = np.full((64, 64), 100, dtype=np.int32)
    flat_and_busy[:, 32:] = np.random.default_rng(0).integers(0, 256, (64, 32))
    two = seed.alf_class_map(flat_and_busy, 2)
    assert (two[:, :32] == 0).all() and (two[:, 32:] == 1).all()
    assert (seed.alf_class_map(flat_and_busy, 1) == 0).all()
    four = seed.alf_class_map(picture, 4)
    assert four.shape == picture.shape
    shares = np.bincount(four[::4, ::4].reshape(-1), minlength=4) / four[::4, ::4].size
    assert np.allclose(shares, 0.25, atol=0.02), shares
    # a class is a property of a whole 4x4 block
    assert (four.reshape(72, 4, 88, 4) == four[::4, ::4][:, None, :, None]).all()


def test_a_filter_per_class_lowers_the_error_more_than_one(picture: np.ndarray) -> None:
    """The built-in clip's first picture coded without the loop filter: a filter designed
    for it lowers its squared error, and the default eight classes (each with its filter or
    its neighbour's) lower it more than one filter. (Not every class count does on every
    picture: coefficients in 1/128 can undo a busy class's least-squares gain.)"""
    seed = load_hybrid()
    seed.PARAMS["alf"] = 0
    first = load_clip(None, Settings(), count=1).frames
    coded = seed.decode(seed.encode(first, 50))[0][0]
    before = float(((coded.astype(np.int64) - picture) ** 2).sum())
    errors = {}
    for count in (1, 8):
        classes = seed.alf_class_map(coded, count)
        coefs, enabled, starts, designed = seed.alf_design(
            picture, coded, None, 10.0, classes, count
        )
        assert coefs.shape == (count, len(seed.ALF_TAPS)) and enabled.any()
        # the plane the design hands back is the one the decoder's filtering makes
        assert np.array_equal(designed, seed.alf_filter_classes(coded, coefs, classes))
        # a class that does not start a filter shares the one of the class before it
        assert starts[0] and all(
            (coefs[k] == coefs[k - 1]).all() for k in range(1, count) if not starts[k]
        )
        filtered, reused = coded.copy(), coded.copy()
        seed.alf_apply(filtered, coefs, enabled, classes)
        seed.alf_apply(reused, coefs, enabled, classes, designed)
        assert np.array_equal(filtered, reused)
        errors[count] = float(((filtered.astype(np.int64) - picture) ** 2).sum())
    assert errors[1] < 0.99 * before
    assert errors[8] < 0.997 * errors[1], errors


def test_neighbouring_classes_share_a_filter_where_a_filter_of_their_own_does_not_pay() -> None:
    """Four classes whose least-squares equations ask for two different filters (the first
    two alike, the last two alike): runs of alike classes share one filter when filters cost
    bits, every class gets its own when they cost nothing."""
    seed = SEED_MODULE
    taps = len(seed.ALF_TAPS)
    rng = np.random.default_rng(1)
    normals, rights = [], []
    for wanted in (0.1, 0.1, -0.1, -0.1):
        samples = rng.normal(size=(taps, 4000))
        normals.append(samples @ samples.T)
        rights.append(samples @ (samples.T @ np.full(taps, wanted) + rng.normal(size=4000)))
    normals, rights = np.array(normals), np.array(rights)
    assert seed.alf_groups(normals, rights, 5.0).tolist() == [True, False, True, False]
    assert seed.alf_groups(normals, rights, 0.0).all()
    assert seed.alf_groups(normals, rights, 1e9).tolist() == [True, False, False, False]


def test_the_decoder_follows_the_number_of_classes_in_the_header() -> None:
    # three 96x64 frames of the built-in clip: an I picture, then inter pictures
    clip = crop(load_clip(None, Settings(), count=3).frames, 96, 64, 128, 112)
    encoder = load_hybrid()
    encoder.PARAMS["alf_classes"] = encoder.PARAM_RANGES["alf_classes"][1]
    assert encoder.PARAMS["alf_classes"] != load_hybrid().PARAMS["alf_classes"]
    bitstream, reconstruction = encoder._encode(clip, 70)
    decoded = load_hybrid().decode(bitstream)  # its own PARAMS say otherwise
    for mine, theirs in zip(reconstruction, decoded[:3], strict=True):
        assert np.array_equal(np.asarray(mine), theirs)
    # a header with a number of classes out of range is refused by name
    names = [name for name, _, _ in encoder.HEADER_FIELDS]
    offset = struct.calcsize(
        "<4s" + "".join(fmt for _, fmt, _ in encoder.HEADER_FIELDS[: names.index("alf_classes")])
    )
    for bad in (0, encoder.MAX_ALF_CLASSES + 1):
        broken = bitstream[:offset] + bytes([bad]) + bitstream[offset + 1 :]
        with pytest.raises(ValueError, match="alf_classes"):
            load_hybrid().decode(broken)
