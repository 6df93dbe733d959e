"""The hybrid seed's RDOQ with the last coded diagonal chosen too (``rdoq`` 2): every
coefficient up to a block's last non-zero diagonal is coded, so a lone small level far out
can cost more than the error of leaving it out; the choice cuts such tails, changes nothing
else, and lowers the estimated rate-distortion cost of real residuals."""

from __future__ import annotations

import numpy as np

from aicodec.clips import load_clip
from aicodec.settings import Settings
from tests.test_seeds import load_hybrid

SEED_MODULE = load_hybrid()


def test_a_tail_is_cut_where_coding_it_costs_more_than_its_error() -> None:
    seed = SEED_MODULE
    n = 4
    levels = np.zeros((3, n, n), dtype=np.int32)
    levels[:, 0, 0] = 5
    levels[:, 2, 3] = 1  # diagonal 5
    extra = np.zeros((3, n, n), dtype=np.float32)
    extra[:, 1, 1] = 0.2  # the zeros on the diagonals between cost a little each
    extra[:, 2, 2] = 0.2
    extra[0, 2, 3] = 0.5  # coding the far level costs more than its error
    extra[1, 2, 3] = -2.0  # leaving it out costs more than coding it
    extra[2] = 0.0  # everything free: the tail stays
    last_costs = np.zeros(2 * n - 1, dtype=np.float32)
    assert list(seed.last_choice(extra, levels, last_costs, n)) == [0, 5, 0]
    # the last diagonal's own cost decides a tie the other way
    last_costs[5] = -1.0
    assert seed.last_choice(extra, levels, last_costs, n)[2] == 5
    # a diagonal without a non-zero level is never last, and an empty block keeps 0
    assert seed.last_choice(extra, np.zeros_like(levels), last_costs, n).tolist() == [0, 0, 0]


def test_choosing_the_last_diagonal_only_cuts_tails_and_lowers_the_estimated_cost() -> None:
    """The built-in clip's first luma picture in 8x8 blocks, predicted by the picture one
    step to the left (a residual with tails): RDOQ 2 keeps RDOQ 1's levels up to each block's
    new last diagonal, zero beyond it, and codes the blocks for less error + lambda * bits."""
    seed = SEED_MODULE
    picture = load_clip(None, Settings(), count=1).frames.y[0].astype(np.float32)
    n, qp = 8, 30
    residual = picture[:, 1:] - picture[:, :-1]
    height, width = (residual.shape[0] // n) * n, (residual.shape[1] // n) * n
    blocks = (
        residual[:height, :width]
        .reshape(height // n, n, width // n, n)
        .transpose(0, 2, 1, 3)
        .reshape(-1, n, n)
    )
    coefs = seed.forward_dct(blocks)
    step = seed.qp_scale(qp) / 64.0
    lam = seed.lambda_of(qp)
    models = seed.CoefficientModels(60000.0)
    group = seed.group_of(0, n, False)
    one = seed.quantise(coefs, step, lam, models, n, group, 1)
    two = seed.quantise(coefs, step, lam, models, n, group, 2)
    last = seed.last_diagonal(two)
    inside = seed.DIAG_INDEX[n][None] <= last[:, None, None]
    assert (two == np.where(inside, one, 0)).all()
    cut = (seed.last_diagonal(one) > last).sum()
    assert cut > 0.05 * len(blocks), cut  # a real share of the blocks lost a tail

    def cost(levels: np.ndarray) -> float:
        error = ((coefs - levels * step) ** 2).sum()
        return float(error + lam * seed.level_bits(models, n, group, levels).sum())

    assert cost(two) < cost(one)
    assert (
        seed.level_bits(models, n, group, two).sum() < seed.level_bits(models, n, group, one).sum()
    )
