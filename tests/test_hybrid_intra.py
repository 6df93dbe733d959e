"""The hybrid seed's intra tools: the ranks of intra modes (most probable modes first) are a
permutation the decoder inverts, a batch's chunks cover it exactly; learning within a batch,
the 35 modes make an intra picture smaller, and a rehearsal of the first picture makes it
cheaper at equal quality."""

from __future__ import annotations

import numpy as np
import pytest

from aicodec.clips import load_clip
from aicodec.scoring.bdrate import RDPoint, rate_change_at_equal_psnr
from aicodec.settings import Settings
from tests.test_seeds import load_hybrid

SEED_MODULE = load_hybrid()


def test_ranks_put_the_neighbour_modes_first_and_invert() -> None:
    seed = SEED_MODULE
    count = len(seed.LUMA_MODES)
    rng = np.random.default_rng(7)
    left = np.concatenate([rng.integers(-1, count, 500), [-1, 3, -1, 5]])
    above = np.concatenate([rng.integers(-1, count, 500), [-1, -1, 4, 5]])
    ranks = seed.mode_ranks(left, above, count)
    assert (np.sort(ranks, axis=1) == np.arange(count)).all()  # a permutation per block
    has_left = left >= 0
    assert (ranks[has_left, left[has_left]] == 0).all()
    distinct = (above >= 0) & (above != left)
    assert (ranks[distinct, above[distinct]] == has_left[distinct]).all()
    # without neighbours the rank is the mode itself (the order of the table)
    assert (ranks[-4] == np.arange(count)).all()
    for mode in range(count):
        assert (seed.modes_of_ranks(ranks[:, mode], left, above) == mode).all()


@pytest.mark.parametrize(
    ("count", "first", "bounds"),
    [
        (10, 0, [0, 10]),
        (10, 16, [0, 10]),
        (16, 16, [0, 16]),
        (17, 16, [0, 16, 17]),
        (500, 16, [0, 16, 80, 336, 500]),
    ],
)
def test_a_batch_is_cut_in_chunks_that_grow_fourfold(
    count: int, first: int, bounds: list[int]
) -> None:
    assert SEED_MODULE.chunk_bounds(count, first) == bounds


def intra_picture_size(quality: int = 50, **params: int) -> tuple[int, float]:
    """Bytes and PSNR-Y (dB) of the first picture of the built-in clip at a quality."""
    seed = load_hybrid()
    seed.PARAMS.update(params)
    frames = load_clip(None, Settings(), count=1).frames
    bitstream = seed.encode(frames, quality)
    decoded = seed.decode(bitstream)[0][0].astype(np.float64)
    mse = float(np.mean((decoded - frames.y[0]) ** 2))
    return len(bitstream), 10 * np.log10(255.0**2 / mse)


def test_models_that_learn_within_a_batch_code_an_intra_picture_in_fewer_bits() -> None:
    """The first picture is coded by models that have seen nothing: learning within each
    batch saves bits there, with the same decisions (the same reconstruction)."""
    one_batch = intra_picture_size(adapt_chunk=0)
    chunked = intra_picture_size(adapt_chunk=16)
    assert chunked[1] == one_batch[1]
    assert chunked[0] < 0.98 * one_batch[0]


def test_all_35_intra_modes_give_a_smaller_intra_picture_than_10_and_no_worse() -> None:
    few = intra_picture_size(intra_modes=10)
    many = intra_picture_size(intra_modes=35)
    assert many[0] < 0.99 * few[0] and many[1] > few[1] - 0.01  # dB


def test_deciding_the_first_picture_again_with_rehearsed_costs_pays() -> None:
    """Decided with the models' priors, the first picture costs more; decided again with
    the costs of a rehearsal (``intra_rehearsal``), it needs fewer bits at equal PSNR-Y (a
    line through qualities 30 and 70: at some the rehearsal saves bits, at others it buys
    quality)."""
    points = {
        rehearsal: [RDPoint(*intra_picture_size(q, intra_rehearsal=rehearsal)) for q in (30, 70)]
        for rehearsal in (0, 1)
    }
    assert rate_change_at_equal_psnr(points[0], points[1]) < -0.5  # percent
