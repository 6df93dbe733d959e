"""Hybrid reference codec: hierarchical B-frames, block motion, intra prediction, RDO, deblocking,
context-adaptive range coding.

Structure (the tools of H.264/HEVC-era codecs, written for numpy):

- **Pictures.** The first frame is intra (I). The rest are coded in groups of up to ``gop``
  frames: the last frame of each group is a P frame predicted from the previous group's last
  frame, and the frames between are B frames coded as a dyadic hierarchy (the middle frame
  first, predicted from both ends, then the middles of each half, ...). Each level of the
  hierarchy gets a coarser quantiser (``qp_layer_step``) because fewer frames depend on it.
  The group lengths (coded in the bitstream) come from a look at the clip: where prediction
  from far pictures degrades quickly the groups are halved, and for fast degrading motion
  (blur, occlusion) they are single P frames (``choose_groups``).
- **Picture QPs.** A lookahead on 1/4-resolution luma estimates, block by block, how much of
  each picture later pictures predict from (x264's macroblock-tree, per picture), and lowers
  the QP of the pictures much of the clip descends from (``propagation_offsets``, strength
  ``qp_propagation``; 0 switches it off). ``qp_i_offset`` and ``qp_layer_step`` add fixed
  offsets for I pictures and per hierarchy level on top.
- **Blocks.** A frame is cut into 32x32 coding-tree units, each split by a quadtree into
  coding units of 32, 16 or 8 luma samples. An inter unit takes its motion from a merge list
  (neighbours' motion and the co-located motion of the reference, scaled) or codes a vector
  difference against a median predictor, from the past (L0), the future (L1) or both (the
  average). Motion is quarter-pel (8-tap filters) for luma, eighth-pel (4-tap) for chroma.
  A 16x16 unit may be intra: one 16x16 prediction or four 8x8 ones, each DC, planar or one
  of up to 33 angles (HEVC's; ``intra_modes`` picks how many modes pictures choose from)
  from the reconstructed neighbours (processed as a wavefront); I frames also use 4x4 intra
  blocks where 8x8 ones help. A luma mode is coded as its rank in a list headed by the modes
  of the left and above blocks (``intra_mpm``; ``mode_ranks``).
- **Residual.** Integer-exact 2-D DCT of the unit's size (4 to 32) or, for an inter luma
  residual, of its four quarters where that costs less (a one-level residual quadtree);
  uniform quantiser ``2 ** ((QP - 4) / 6)`` with rate-distortion optimised levels (RDOQ,
  ``rdoq``: 1 chooses each level among the rounded one, one less and zero; 2 then also
  chooses each block's last coded diagonal, since every coefficient up to it is coded).
  Every choice (split, mode, merge candidate, vectors, levels) minimises distortion +
  lambda * bits, with bits estimated from the live probability tables of the entropy coder
  (``intra_rehearsal``: the first picture is decided again with the tables its first
  decision would have taught; off by default).
- **Loop filters.** An HEVC-style deblocking filter on the 8x8 grid, strength from the modes,
  vectors and coefficients on each side of an edge, thresholds from the QP; then an adaptive
  loop filter: 7x7 diamond Wiener filters the encoder designs per picture (least squares
  against the source), one for each activity class (``alf_classes``: the 4x4 blocks ranked by
  their local activity and cut into that many equal shares, which the decoder finds again in
  the same picture) unless neighbouring classes share one where that costs less
  (``alf_groups``), switched on or off per coding-tree unit.
- **Entropy coding.** One range coder (``constriction``) for the whole clip. Every syntax
  element is a symbol with an adaptive categorical model chosen by its context (block size,
  plane, frame layer, already coded neighbours such as lower-frequency coefficient
  magnitudes). Symbols are coded in batches (one call per frequency diagonal, per syntax
  element), and the models learn from every batch, so both sides stay vectorised; a large
  batch is cut into chunks growing fourfold from ``adapt_chunk`` symbols, so the models
  learn within it too (above all in the first pictures, coded before the models know much).

The encoder reconstructs exactly what the decoder will (integer arithmetic throughout the
reconstruction), so there is no drift. ``decode`` reads everything it needs (size, frame
count, structure, every tool switch) from the bitstream.
"""

import copy
import math
import struct

import constriction
import cv2
import numpy as np

PARAMS = {
    "gop": 8,
    "b_growth": 0.2,
    "p_growth": 0.27,
    "fast_motion": 4.0,
    "qp_shift": 0.0,
    "qp_i_offset": 0,
    "qp_layer_step": 0.65,
    "chroma_qp_offset": 0,
    "lambda_scale": 1.0,
    "lambda_layer_scale": 0.3,
    "search_range": 12,
    "subpel": 2,
    "merge_candidates": 5,
    "merge_tolerance": 1,
    "min_cu": 8,
    "rdoq": 2,
    "rdoq_decisions": 0,
    "intra_inter": 1,
    "intra_ratio": 1.5,
    "intra_shortlist": 3,
    "intra_partitions": 2,
    "intra_modes": 35,
    "intra_mpm": 1,
    "intra_rehearsal": 0,
    "inter_shortlist": 1,
    "deblock": 1,
    "alf": 1,
    "alf_classes": 8,
    "deblock_beta": 0,
    "deblock_tc": 0,
    "context_memory": 0.9,
    "adapt_limit": 60000,
    "adapt_chunk": 16,
    "qp_propagation": 2.0,
}
PARAM_RANGES = {
    "gop": [1, 2, 4, 8, 16],
    "b_growth": (-0.5, 1.5),
    "p_growth": (-0.5, 1.5),
    "fast_motion": (0.0, 32.0),
    "qp_shift": (-12.0, 12.0),
    "qp_i_offset": (-8, 4),
    "qp_layer_step": (0.0, 3.0),
    "chroma_qp_offset": (-6, 6),
    "lambda_scale": (0.25, 4.0),
    "lambda_layer_scale": (0.0, 0.5),
    "search_range": (2, 64),
    "subpel": [0, 1, 2],
    "merge_candidates": (1, 5),
    "merge_tolerance": (0, 8),
    "min_cu": [8, 16],
    "rdoq": [0, 1, 2],
    "rdoq_decisions": [0, 1],
    "intra_inter": [0, 1],
    "intra_ratio": (0.5, 4.0),
    "intra_shortlist": (1, 10),
    "intra_partitions": (0, 2),
    "intra_modes": [10, 18, 35],
    "intra_mpm": [0, 1],
    "intra_rehearsal": [0, 1],
    "inter_shortlist": (1, 3),
    "deblock": [0, 1],
    "alf": [0, 1],
    "alf_classes": (1, 16),
    "deblock_beta": (-6, 6),
    "deblock_tc": (-6, 6),
    "context_memory": (0.5, 1.0),
    "adapt_limit": (2000, 1000000),
    "adapt_chunk": [0, 8, 16, 64],
    "qp_propagation": (0.0, 4.0),
}

MAGIC = b"HYB1"
# The header after MAGIC, in order: (field, struct format, scale). A field named like a PARAMS
# key carries that parameter to the decoder: round(value * scale) where a scale is given, else
# the integer value. "tools" carries the on/off PARAMS of TOOL_BITS, one bit each. The other
# fields describe the clip. A parameter the decoder needs is one entry here or in TOOL_BITS
# (beside its PARAMS and PARAM_RANGES entries); the other PARAMS steer the encoder alone.
HEADER_FIELDS = (
    ("width", "H", None),
    ("height", "H", None),
    ("count", "H", None),  # frames
    ("fps_num", "I", None),
    ("fps_den", "I", None),
    ("gop", "B", None),
    ("base_qp", "B", None),  # from the quality and qp_shift
    ("qp_i_offset", "b", None),
    ("chroma_qp_offset", "b", None),
    ("qp_layer_step", "B", 16),
    ("merge_candidates", "B", None),
    ("min_cu", "B", None),
    ("intra_modes", "B", None),
    ("alf_classes", "B", None),
    ("tools", "B", None),
    ("deblock_beta", "b", None),
    ("deblock_tc", "b", None),
    ("context_memory", "H", 1000),
    ("adapt_limit", "I", None),
    ("adapt_chunk", "H", None),
)
# bit k of the "tools" field is PARAMS[TOOL_BITS[k]] (on where it is not 0)
TOOL_BITS = ("deblock", "alf", "qp_propagation", "intra_mpm")
HEADER = struct.Struct("<4s" + "".join(fmt for _, fmt, _ in HEADER_FIELDS))
CTU = 32
MARGIN = 80  # luma samples of edge extension around reference pictures
MAX_LEVEL = 1 << 15
MAX_ALF_CLASSES = 16  # filters a picture's adaptive loop filter may have (one per class)
MAX_QP_DROP = 12  # the most a picture's QP is lowered by propagation (its coded alphabet)

# =============================================================================================
# Transforms and quantisation
# =============================================================================================

TRANSFORM_BITS = 12  # fractional bits of the integer inverse-transform basis
SCALE_BITS = 6  # fractional bits of the dequantisation multiplier


def dct_basis(n):
    """Orthonormal DCT-II matrix of size n (rows are basis functions)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


BASIS = {n: dct_basis(n) for n in (4, 8, 16, 32)}
IBASIS = {n: np.rint(b * (1 << TRANSFORM_BITS)) for n, b in BASIS.items()}
BASIS32 = {n: b.astype(np.float32) for n, b in BASIS.items()}


def right_multiply(blocks, matrix):
    """blocks [B, n, n] @ matrix [n, n] as one matrix product (float64)."""
    n = matrix.shape[0]
    return (blocks.reshape(-1, n) @ matrix).reshape(blocks.shape)


def left_multiply(matrix, blocks):
    """matrix [n, n] @ blocks [B, n, n] (float64)."""
    swapped = np.ascontiguousarray(blocks.transpose(0, 2, 1))
    return right_multiply(swapped, matrix.T).transpose(0, 2, 1)


def forward_dct(blocks):
    """Orthonormal 2-D DCT of [B, n, n] blocks (float32: the encoder's estimate)."""
    basis = BASIS32[blocks.shape[-1]]
    return right_multiply(left_multiply(basis, blocks.astype(np.float32, copy=False)), basis.T)


def floor_shift(values, bits):
    """Exact floor((values + half) / 2**bits) of float64 arrays holding integers."""
    return np.floor((values + float(1 << (bits - 1))) * (1.0 / (1 << bits)))


def inverse_dct(levels, scale):
    """Integer-exact residual [B, n, n] (float64 integers) from levels and dequant multipliers.

    ``scale`` is ``round(step * 2**SCALE_BITS)``, one per block or one for all. Every product
    and sum is an integer below 2**53, so the float64 arithmetic is exact on any machine.
    """
    n = levels.shape[-1]
    basis = IBASIS[n]
    coefs = levels.astype(np.float64) * np.asarray(scale, dtype=np.float64).reshape(-1, 1, 1)
    half = floor_shift(left_multiply(basis.T, coefs), TRANSFORM_BITS)
    return floor_shift(right_multiply(half, basis), TRANSFORM_BITS + SCALE_BITS)


def qp_step(qp):
    """Quantiser step (orthonormal coefficient units) of a QP."""
    return 2.0 ** ((qp - 4) / 6.0)


def qp_scale(qp):
    """Integer dequantisation multiplier of a QP (the step with SCALE_BITS fractional bits)."""
    return int(round(qp_step(qp) * (1 << SCALE_BITS)))


def quality_qp(quality, shift):
    """Base QP of a quality 0..100: 46 at 0, 6 QP (a halved step) less per 20 points."""
    q = min(max(int(quality), 0), 100)
    qp = 46.0 - 0.3 * q if q <= 80 else 22.0 - 1.1 * (q - 80)
    return int(min(max(round(qp + shift), 0), 63))


def lambda_of(qp):
    """Lagrange multiplier (squared error per bit) of a QP."""
    return 0.57 * 2.0 ** ((qp - 12) / 3.0)


# =============================================================================================
# Entropy coding: adaptive categorical models and one range coder, the same calls both ways
# =============================================================================================


class Model:
    """Adaptive categorical distributions, one row of counts per context."""

    def __init__(self, contexts, symbols, prior=None, limit=60000.0):
        rows = np.ones((1, symbols)) if prior is None else np.asarray(prior, np.float64)
        rows = rows.reshape(-1, symbols)
        self.counts = np.array(np.broadcast_to(rows, (contexts, symbols)), dtype=np.float64)
        self.symbols = symbols
        self.limit = limit
        self._costs = None
        self._flat = None
        self.check_all()

    def check_all(self):
        """Note the rows over the limit (the next update halves them)."""
        self.pending = np.flatnonzero(self.counts.sum(axis=1) > self.limit)

    def update(self, ctx, values):
        """Count coded symbols; rows over the limit are halved."""
        k = self.symbols
        if self.counts.size <= 4096 or not self.counts.flags.c_contiguous:
            hits = np.bincount(ctx * k + values, minlength=self.counts.size)
            self.counts += hits.reshape(self.counts.shape)
            over = np.flatnonzero(self.counts.sum(axis=1) > self.limit)
        else:  # a large table: only the rows just counted and those over the limit when last
            # checked (``pending``) can be over it (each row summed as the whole table would)
            cells, hits = np.unique(ctx * k + values, return_counts=True)
            self.counts.reshape(-1)[cells] += hits
            rows = np.union1d(cells // k, self.pending)
            over = rows[self.counts[rows].sum(axis=1) > self.limit]
        if over.size:
            self.counts[over] *= 0.5
        self.pending = over
        self._costs = None
        self._flat = None

    def forget(self, memory):
        """Scale every count towards the prior (older frames weigh less)."""
        self.counts *= memory
        np.maximum(self.counts, 0.02, out=self.counts)
        self.check_all()
        self._costs = None
        self._flat = None

    def flat_costs(self):
        """``costs()`` as one flat float32 array (index context * symbols + symbol)."""
        if self._flat is None:
            self._flat = self.costs().reshape(-1).astype(np.float32)
        return self._flat

    def costs(self):
        """Bits of each symbol in each context [contexts, symbols] (the coder's own estimate)."""
        if self._costs is None:
            totals = self.counts.sum(axis=1, keepdims=True)
            self._costs = np.log2(totals) - np.log2(self.counts)
        return self._costs


def chunk_bounds(count, first):
    """Where a batch of ``count`` symbols is cut so its models learn within it: chunks of
    ``first`` symbols, then each four times the last (``first`` 0: one chunk)."""
    bounds, size = [0], first
    while 0 < size and bounds[-1] + size < count:
        bounds.append(bounds[-1] + size)
        size *= 4
    return bounds + [count]


class Coder:
    """A range coder that encodes given symbols or decodes them, with the same calls.

    Every method takes the values to code when encoding (``values``) and returns the values
    (decoded ones when decoding). Models learn from each batch after it is coded.
    """

    def __init__(self, data=None, chunk=0):
        self.decoding = data is not None
        if self.decoding:
            words = np.frombuffer(data, dtype=np.uint32)
            self.range = constriction.stream.queue.RangeDecoder(words)
        else:
            self.range = constriction.stream.queue.RangeEncoder()
        self.categorical = constriction.stream.model.Categorical(perfect=False)
        self.uniform = constriction.stream.model.Uniform()
        self.stats = None  # {label: bits} when measuring where the bits go (encoder)
        self.label = ""
        self.chunk = chunk  # a batch is coded in chunks from this size up (``chunk_bounds``)

    def account(self, before):
        """Add the bits written since ``before`` to the current label (when measuring)."""
        if self.stats is not None and not self.decoding:
            self.stats[self.label] = self.stats.get(self.label, 0) + self.range.num_bits() - before

    def data(self):
        """The compressed stream (encoder)."""
        return self.range.get_compressed().tobytes()

    def symbols(self, model, ctx, values=None):
        """Code symbols 0..K-1, each under its context's adaptive distribution."""
        ctx = np.asarray(ctx, dtype=np.int64).reshape(-1)
        if ctx.size == 0:
            return np.zeros(0, dtype=np.int64)
        if self.decoding:
            values = np.zeros(ctx.size, dtype=np.int64)
        else:
            values = np.asarray(values, dtype=np.int64).reshape(-1)
        bounds = chunk_bounds(ctx.size, self.chunk)
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            part = ctx[start:end]
            probs = model.counts[part]
            if self.decoding:
                values[start:end] = self.range.decode(self.categorical, probs)
            else:
                before = self.range.num_bits()
                self.range.encode(values[start:end].astype(np.int32), self.categorical, probs)
                self.account(before)
            model.update(part, values[start:end])
        return values

    def raw(self, sizes, values=None):
        """Code values uniformly in 0..size-1 (sizes of 1 code nothing)."""
        sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
        out = np.zeros(sizes.size, dtype=np.int64)
        used = sizes > 1
        if not used.any():
            return out
        if self.decoding:
            out[used] = self.range.decode(self.uniform, sizes[used].astype(np.int32))
        else:
            before = self.range.num_bits()
            out = np.asarray(values, dtype=np.int64).reshape(-1)
            self.range.encode(
                out[used].astype(np.int32), self.uniform, sizes[used].astype(np.int32)
            )
            self.account(before)
        return out

    def bits(self, count, values=None):
        """Code ``count`` equiprobable bits."""
        return self.raw(np.full(count, 2), values)

    def magnitudes(self, model, ctx, values=None, exact=0):
        """Code integers >= 0: values below ``exact`` as themselves, larger ones as an
        adaptive bucket of ``value - exact`` (0, 1, 2-3, 4-7, ...) and then its low bits."""
        ctx = np.asarray(ctx, dtype=np.int64).reshape(-1)
        symbols = None
        if not self.decoding:
            values = np.asarray(values, dtype=np.int64).reshape(-1)
            symbols = np.where(values < exact, values, exact + bucket_of(values - exact))
        symbols = self.symbols(model, ctx, symbols)
        buckets = np.maximum(symbols - exact, 0)
        base = exact + np.where(buckets >= 2, 1 << np.maximum(buckets - 1, 0), buckets)
        base = np.where(symbols < exact, symbols, base)
        sizes = np.where((symbols >= exact) & (buckets >= 2), 1 << np.maximum(buckets - 1, 0), 1)
        offsets = self.raw(sizes, None if self.decoding else values - base)
        return base + offsets

    def signed(self, model, ctx, values=None, exact=0):
        """Code signed integers: the magnitude as above, then a sign bit for non-zeros."""
        magnitude = self.magnitudes(model, ctx, None if values is None else np.abs(values), exact)
        nonzero = magnitude != 0
        signs = None if values is None else (np.asarray(values).reshape(-1)[nonzero] < 0)
        signs = self.bits(int(nonzero.sum()), signs)
        out = magnitude.copy()
        out[nonzero] = np.where(signs == 1, -magnitude[nonzero], magnitude[nonzero])
        return out


BUCKETS = 24  # buckets of ``Coder.magnitudes``: 0, 1, then [2**(b-1), 2**b) for b >= 2
MVD_EXACT = 16  # vector differences below this are coded as themselves


def bucket_of(values):
    """Magnitude bucket of integers >= 0: 0 -> 0, 1 -> 1, [2**(b-1), 2**b) -> b."""
    values = np.asarray(values, dtype=np.int64)
    out = np.zeros(values.shape, dtype=np.int64)
    positive = values > 0
    out[positive] = np.floor(np.log2(values[positive])).astype(np.int64) + 1
    return out


def magnitude_bits(values, costs, exact=0):
    """Estimated bits of integers >= 0 under one context's symbol costs (``magnitudes``)."""
    buckets = bucket_of(np.maximum(values - exact, 0))
    symbols = np.where(values < exact, values, exact + buckets)
    return costs[symbols] + np.where(values < exact, 0, np.maximum(buckets - 1, 0))


# =============================================================================================
# Intra prediction (HEVC-style planar, DC and angular modes from reconstructed neighbours)
# =============================================================================================

# (family, angle in 1/32 sample per row): "v" predicts from the row above, "h" from the left.
# A picture uses the first PARAMS["intra_modes"] of them (10, 18 or all 35: HEVC's angles).
LUMA_MODES = (
    ("planar", 0), ("dc", 0), ("v", 0), ("h", 0), ("v", 32), ("v", -32), ("v", -13), ("v", 13),
    ("h", -13), ("h", 13),
    ("v", -5), ("v", 5), ("h", -5), ("h", 5), ("v", -21), ("v", 21), ("h", -21), ("v", 26),
    ("v", -2), ("v", 2), ("v", -9), ("v", 9), ("v", -17), ("v", 17), ("v", -26), ("h", -2),
    ("h", 2), ("h", -9), ("h", 9), ("h", -17), ("h", 17), ("h", 21), ("h", -26), ("h", 26),
    ("h", 32),
)  # fmt: skip
CHROMA_MODES = (("planar", 0), ("dc", 0), ("v", 0), ("h", 0))


def neighbours(plane, ys, xs, n, top_ok, left_ok, right_ok):
    """Reference samples of n x n blocks at (ys, xs): above [B, 2n+1] and left [B, 2n+1].

    Index 0 of both is the corner; above continues with the 2n samples of the row above
    (the block's own width, then above-right), left with the n samples of the column to the
    left, then that column's last sample repeated (below-left is never used). Missing
    samples are replaced by the nearest available ones, or 128 when there are none.
    """
    h, w = plane.shape
    count = ys.size
    cols = np.minimum(np.maximum(xs[:, None] + np.arange(2 * n)[None, :], 0), w - 1)
    above = plane[np.maximum(ys - 1, 0)[:, None], cols].astype(np.int32)
    rows = np.minimum(np.maximum(ys[:, None] + np.arange(n)[None, :], 0), h - 1)
    left = plane[rows, np.maximum(xs - 1, 0)[:, None]].astype(np.int32)
    corner = plane[np.maximum(ys - 1, 0), np.maximum(xs - 1, 0)].astype(np.int32)
    right_ok = right_ok & top_ok
    if not right_ok.all():
        above[:, n:] = np.where(right_ok[:, None], above[:, n:], above[:, n - 1 : n])
    if not (top_ok.all() and left_ok.all()):
        fill = np.full(count, 128, dtype=np.int32)
        left = np.where(left_ok[:, None], left, np.where(top_ok, above[:, 0], fill)[:, None])
        above = np.where(top_ok[:, None], above, np.where(left_ok, left[:, 0], fill)[:, None])
        corner = np.where(top_ok & left_ok, corner, np.where(top_ok, above[:, 0], left[:, 0]))
    a = np.concatenate([corner[:, None], above], axis=1)
    l_ = np.concatenate([corner[:, None], left, np.repeat(left[:, -1:], n, axis=1)], axis=1)
    return a, l_


def angular_taps(n, family, angle):
    """Where HEVC angular prediction of an n x n block reads: for each sample, the two reference
    samples it blends, as indices [n, n] into the above samples followed by the left ones
    (``neighbours``), and the weight of the second in 1/32 [n, n] (int32).

    "v" modes project the row above (negative angles extend it with projected left samples),
    "h" modes the left column, transposed."""
    length = 2 * n + 1
    ext = np.zeros(3 * n + 2, dtype=np.int32)  # the extended main reference, as indices
    ext[n : 3 * n + 1] = np.arange(length)
    ext[3 * n + 1] = 2 * n
    if angle < 0:
        inverse = int(round(8192 / angle))
        lowest = (n * angle) >> 5
        for x in range(lowest, 0):
            ext[n + x] = length + min((x * inverse + 128) >> 8, 2 * n)
    y = np.arange(1, n + 1)
    whole = (y * angle) >> 5
    frac = np.repeat(((y * angle) & 31)[:, None], n, axis=1).astype(np.int32)
    index = n + np.arange(n)[None, :] + whole[:, None] + 1
    first, second = ext[index], ext[index + 1]
    if family == "h":  # main = left, side = above: swap the halves, transpose the block
        first = (first.T + length) % (2 * length)
        second = (second.T + length) % (2 * length)
        frac = np.ascontiguousarray(frac.T)
    return first, second, frac


ANGULAR_TAPS = {
    (n, family, angle): angular_taps(n, family, angle)
    for n in (4, 8, 16)
    for family, angle in LUMA_MODES
    if family in ("v", "h")
}


def intra_predict(above, left, n, mode, modes):
    """Prediction [B, n, n] (int32) of one mode for blocks with these reference samples."""
    family, angle = modes[mode]
    shift = int(math.log2(n)) + 1
    if family == "dc":
        total = above[:, 1 : n + 1].sum(axis=1) + left[:, 1 : n + 1].sum(axis=1)
        return np.broadcast_to(((total + n) >> shift)[:, None, None], (above.shape[0], n, n))
    if family == "planar":
        x = np.arange(n)[None, None, :]
        y = np.arange(n)[None, :, None]
        top = above[:, 1 : n + 1][:, None, :]
        lft = left[:, 1 : n + 1][:, :, None]
        right = above[:, n + 1][:, None, None]
        bottom = left[:, n + 1][:, None, None]
        total = (n - 1 - x) * lft + (x + 1) * right + (n - 1 - y) * top + (y + 1) * bottom
        return (total + n) >> shift
    first, second, frac = ANGULAR_TAPS[(n, family, angle)]
    samples = np.concatenate([above, left], axis=1)
    return ((32 - frac) * samples[:, first] + frac * samples[:, second] + 16) >> 5


def intra_plan(n, modes):
    """The angular modes of a mode table and their taps stacked ([A, n, n] each), made once."""
    key = (n, modes)
    if key not in INTRA_PLANS:
        angular = [m for m, (family, _) in enumerate(modes) if family in ("v", "h")]
        taps = [ANGULAR_TAPS[(n, *modes[m])] for m in angular]
        INTRA_PLANS[key] = (
            np.array(angular, dtype=np.int64),
            *(np.stack([t[part] for t in taps]) if taps else None for part in range(3)),
        )
    return INTRA_PLANS[key]


INTRA_PLANS = {}


def intra_predict_all(above, left, n, modes):
    """Predictions [M, B, n, n] (int32) of every mode of a mode table for the blocks."""
    out = np.empty((len(modes), above.shape[0], n, n), dtype=np.int32)
    angular, first, second, frac = intra_plan(n, modes)
    if angular.size:
        samples = np.concatenate([above, left], axis=1)
        blend = (32 - frac) * samples[:, first] + frac * samples[:, second] + 16
        out[angular] = (blend >> 5).transpose(1, 0, 2, 3)
    for mode, (family, _) in enumerate(modes):
        if family in ("dc", "planar"):
            out[mode] = intra_predict(above, left, n, mode, modes)
    return out


def intra_predict_modes(above, left, n, modes_of_blocks, modes):
    """Prediction [B, n, n] with each block's own mode."""
    out = np.empty((above.shape[0], n, n), dtype=np.int32)
    for mode in np.unique(modes_of_blocks):
        pick = modes_of_blocks == mode
        out[pick] = intra_predict(above[pick], left[pick], n, int(mode), modes)
    return out


# Most probable modes (``intra_mpm``): a block's luma mode is coded as its rank in a list that
# starts with the modes of its left and above neighbours, then the others in table order. The
# ranks' model does not depend on the neighbours, so all ranks of a picture are coded in one
# batch; the decoder turns them back into modes in waves, neighbours first.
MODE_CELL = 4  # luma samples per cell of a picture's map of intra luma modes (-1: not intra)


def paint_modes(mode_map, ys, xs, n, modes):
    """Write the modes of n x n luma blocks at (ys, xs) into a mode map."""
    cy, cx, cells = ys // MODE_CELL, xs // MODE_CELL, n // MODE_CELL
    for dy in range(cells):
        for dx in range(cells):
            mode_map[cy + dy, cx + dx] = modes


def paint_blocks(mode_map, ys, xs, sizes, modes):
    """``paint_modes`` for blocks of several sizes (``sizes`` [B])."""
    for n in np.unique(sizes):
        pick = sizes == n
        paint_modes(mode_map, ys[pick], xs[pick], int(n), modes[pick])


def neighbour_modes(mode_map, ys, xs):
    """Luma modes of the cells left of and above blocks at (ys, xs) (-1: none)."""
    cy, cx = ys // MODE_CELL, xs // MODE_CELL
    left = np.where(cx > 0, mode_map[cy, np.maximum(cx - 1, 0)], -1)
    above = np.where(cy > 0, mode_map[np.maximum(cy - 1, 0), cx], -1)
    return left, above


def listed_modes(left, above):
    """Which neighbour modes head the rank list: (left listed, above listed), [B] bools."""
    return left >= 0, (above >= 0) & (above != left)


def mode_ranks(left, above, count):
    """Rank [B, count] of every mode for blocks with these neighbour modes."""
    on_left, on_above = (flag[:, None] for flag in listed_modes(left, above))
    m = np.arange(count)[None, :]
    lm, am = left[:, None], above[:, None]
    rank = on_left.astype(np.int64) + on_above + m - (on_left & (lm < m)) - (on_above & (am < m))
    rank = np.where(on_above & (m == am), on_left, rank)
    return np.where(on_left & (m == lm), 0, rank)


def modes_of_ranks(ranks, left, above):
    """The modes [B] that blocks with these neighbour modes coded as ``ranks`` (inverse of
    ``mode_ranks``)."""
    on_left, on_above = listed_modes(left, above)
    listed = on_left.astype(np.int64) + on_above
    head = np.where((ranks == 0) & on_left, left, above)
    none = np.iinfo(np.int64).max
    low = np.where(on_left, left, np.where(on_above, above, none))
    high = np.where(on_left & on_above, above, none)
    low, high = np.minimum(low, high), np.maximum(low, high)
    mode = ranks - listed
    mode = mode + (mode >= low)
    mode = mode + (mode >= high)
    return np.where(ranks < listed, head, mode)


# =============================================================================================
# Residual coefficients: contexts, coding in frequency diagonals, bit estimates, RDOQ
# =============================================================================================

SIZES = (4, 8, 16, 32)
ESCAPE = 15  # magnitude symbols 0..14; 15 means 15 + a coded remainder
FREQ_CLASSES = 7
NEIGHBOUR_CLASSES = 11
GROUP_CONTEXTS = FREQ_CLASSES * NEIGHBOUR_CLASSES * 4  # x (on the last diagonal) x (first row/col)
GROUPS = 2 * len(SIZES) * 2  # plane class (luma, chroma) x transform size x (inter, intra)
# neighbour activity 2*(up + left) + up-left + 2 up + 2 left -> class
NEIGHBOUR_CLASS = np.array(
    [0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5] + [6] * 7 + [7] * 10 + [8] * 15 + [9] * 25 + [10],
    np.int64,
)
DIAG_CLASS = np.array([0, 1, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5] + [6] * 51, np.int64)


def group_of(plane_class, n, intra):
    """Index of a coefficient group (its own contexts and statistics)."""
    return (plane_class * len(SIZES) + SIZES.index(n)) * 2 + int(intra)


def diagonal_positions(n):
    """For each anti-diagonal d of an n x n block: its (rows, cols)."""
    out = []
    for d in range(2 * n - 1):
        rows = np.arange(max(0, d - n + 1), min(d, n - 1) + 1)
        out.append((rows, d - rows))
    return out


DIAGONALS = {n: diagonal_positions(n) for n in SIZES}
DIAG_INDEX = {n: np.add.outer(np.arange(n), np.arange(n)) for n in SIZES}
FREQ_OF = {n: DIAG_CLASS[DIAG_INDEX[n]] for n in SIZES}
EDGE_OF = {n: (np.arange(n)[:, None] == 0) | (np.arange(n)[None, :] == 0) for n in SIZES}


def magnitude_prior():
    """Initial counts of magnitude symbols for each neighbour class (geometric shapes)."""
    rows = []
    for theta in (0.12, 0.3, 0.42, 0.52, 0.6, 0.68, 0.76, 0.82, 0.86, 0.9, 0.93):
        p = theta ** np.arange(ESCAPE + 1)
        p[ESCAPE] = theta**ESCAPE / (1.0 - theta)
        rows.append(24.0 * p / p.sum())
    per_group = np.tile(np.repeat(np.array(rows), 4, axis=0), (FREQ_CLASSES, 1))
    return np.tile(per_group, (GROUPS, 1))


def context_index(group, freq, neighbour, on_last, on_edge):
    """Magnitude context of coefficients: group, frequency class, neighbourhood, position."""
    return (
        group * GROUP_CONTEXTS
        + ((freq * NEIGHBOUR_CLASSES + neighbour) * 2 + on_last) * 2
        + on_edge
    )


class CoefficientModels:
    """The adaptive models of residual coding."""

    def __init__(self, limit):
        self.magnitude = Model(GROUPS * GROUP_CONTEXTS, ESCAPE + 1, magnitude_prior(), limit)
        self.last = {n: Model(GROUPS, 2 * n - 1, None, limit) for n in SIZES}
        self.escape = Model(2, BUCKETS, 0.5 ** np.arange(BUCKETS) * 8 + 0.01, limit)
        self.cbf = Model(64, 2, np.array([1.0, 1.0]), limit)

    def models(self):
        """Every model (for forgetting between pictures)."""
        return [self.magnitude, self.escape, self.cbf, *self.last.values()]


def magnitude_rows(mag, n, group, last):
    """Where each coefficient's magnitude costs start in ``Model.flat_costs`` of the magnitude
    model: context * (ESCAPE + 1) [B, n, n] (int32). The context is the coefficient's group,
    position (frequency class, first row/column), whether it lies on the last diagonal, and
    the class of 2*(up + left) + up-left + 2-up + 2-left of the capped magnitudes ``mag``."""
    padded = np.zeros((mag.shape[0], n + 2, n + 2), dtype=np.int16)
    padded[:, 2:, 2:] = mag
    activity = padded[:, 1:-1, 2:] + padded[:, 2:, 1:-1]
    activity += activity
    activity += padded[:, 1:-1, 1:-1]
    activity += padded[:, :-2, 2:]
    activity += padded[:, 2:, :-2]
    rows = NEIGHBOUR_ROWS.take(activity)
    rows += (group * GROUP_CONTEXTS + POSITION_CONTEXT[n]) * (ESCAPE + 1)
    rows += (DIAG_INDEX[n] == last[:, None, None]) * np.int32(2 * (ESCAPE + 1))
    return rows


# context offsets: the position part (frequency class, first row/column) and the neighbourhood
# (its activity, up to 2 * (15 + 15) + 3 * 15, capped by the classes' table)
POSITION_CONTEXT = {
    n: (FREQ_OF[n] * NEIGHBOUR_CLASSES * 4 + EDGE_OF[n]).astype(np.int32) for n in SIZES
}
NEIGHBOUR_ROWS = (
    NEIGHBOUR_CLASS[np.minimum(np.arange(5 * ESCAPE + 31), NEIGHBOUR_CLASS.size - 1)]
    * (4 * (ESCAPE + 1))
).astype(np.int32)
DIAG_AFTER = {n: (DIAG_INDEX[n] + 1).astype(np.int16) for n in SIZES}
# an n x n block's coefficients in the order of their anti-diagonals, and where each starts
DIAG_ORDER = {n: np.argsort(DIAG_INDEX[n].reshape(-1), kind="stable") for n in SIZES}
DIAG_STARTS = {
    n: np.searchsorted(DIAG_INDEX[n].reshape(-1)[DIAG_ORDER[n]], np.arange(2 * n - 1))
    for n in SIZES
}


def last_diagonal(levels):
    """Highest anti-diagonal with a non-zero level, per block (-1 for all-zero blocks)."""
    count, n = levels.shape[0], levels.shape[-1]
    after = ((levels != 0) * DIAG_AFTER[n]).reshape(count, -1).max(axis=1)
    return after.astype(np.int64) - 1


def code_levels(coder, models, n, group, count, levels=None):
    """Code the levels of ``count`` blocks of one group that each have a non-zero level.

    Order: the last non-zero diagonal of each block; then, diagonal by diagonal from DC,
    the capped magnitudes of every block still open (contexts from the lower diagonals);
    then escape remainders; then the signs of all non-zero levels.
    """
    if count == 0:
        return np.zeros((0, n, n), dtype=np.int64)
    last = None if levels is None else last_diagonal(levels)
    last = coder.symbols(models.last[n], np.full(count, group), last)
    mag = np.zeros((count, n + 2, n + 2), dtype=np.int64)
    full = None if levels is None else np.abs(levels)
    capped = None if levels is None else np.minimum(full, ESCAPE)
    for d, (rows, cols) in enumerate(DIAGONALS[n][: int(last.max()) + 1]):
        active = np.nonzero(last >= d)[0]
        r = rows[None, :] + 2
        c = cols[None, :] + 2
        a = active[:, None]
        activity = (
            2 * (mag[a, r - 1, c] + mag[a, r, c - 1]) + mag[a, r - 1, c - 1]
            + mag[a, r - 2, c] + mag[a, r, c - 2]
        )  # fmt: skip
        on_last = (last[active] == d)[:, None]
        on_edge = ((rows == 0) | (cols == 0))[None, :]
        ctx = context_index(
            group,
            DIAG_CLASS[d],
            NEIGHBOUR_CLASS[np.minimum(activity, NEIGHBOUR_CLASS.size - 1)],
            on_last,
            on_edge,
        )
        values = None if levels is None else capped[a, rows[None, :], cols[None, :]]
        values = coder.symbols(models.magnitude, ctx, values)
        mag[a, r, c] = values.reshape(ctx.shape)
    mag = mag[:, 2:, 2:]
    escaped = mag == ESCAPE
    rest = None if levels is None else full[escaped] - ESCAPE
    rest = coder.magnitudes(models.escape, np.full(int(escaped.sum()), group // 8 % 2), rest)
    mag[escaped] += rest
    nonzero = mag != 0
    signs = None if levels is None else (levels[nonzero] < 0).astype(np.int64)
    signs = coder.bits(int(nonzero.sum()), signs)
    mag[nonzero] = np.where(signs == 1, -mag[nonzero], mag[nonzero])
    return mag


def level_bits(models, n, group, levels):
    """Estimated bits of coding each block's levels [B] (0 for all-zero blocks; no cbf)."""
    count = levels.shape[0]
    out = np.zeros(count, dtype=np.float32)
    coded = np.flatnonzero(levels.reshape(count, -1).any(axis=1))
    if coded.size:
        out[coded] = coded_level_bits(models, n, group, levels[coded])
    return out


def coded_level_bits(models, n, group, levels):
    """``level_bits`` of blocks that each have a non-zero level (float32 [B])."""
    full = np.abs(levels)
    mag = np.minimum(full, ESCAPE)
    last = last_diagonal(levels)
    rows = magnitude_rows(mag, n, group, last)
    costs = models.magnitude.flat_costs()
    bits = costs.take(rows + mag) * (DIAG_INDEX[n][None] <= last[:, None, None])
    total = bits.reshape(levels.shape[0], -1).sum(axis=1)
    total += (full != 0).reshape(levels.shape[0], -1).sum(axis=1)
    escaped = full >= ESCAPE
    if escaped.any():
        extra = np.where(
            escaped, magnitude_bits(full - ESCAPE, models.escape.costs()[group // 8 % 2]), 0
        )
        total += extra.reshape(levels.shape[0], -1).sum(axis=1)
    total += models.last[n].costs()[group][last]
    return total


def quantise(coefs, step, lam, models, n, group, rdoq):
    """Levels [B, n, n] for DCT coefficients: rounding, then per-coefficient RDO (RDOQ).

    Each coefficient keeps the level among round(|c|/step), one less, and zero that
    minimises squared error + lam * estimated bits, with contexts from the rounded levels;
    with ``rdoq`` 2, each block's last coded diagonal is chosen the same way after that.
    """
    magnitude = np.abs(coefs) * np.float32(1.0 / step)
    if not rdoq:
        rounding = np.float32(1.0 / 3.0 if group % 2 else 1.0 / 6.0)  # intra, inter dead zones
        levels = np.minimum(magnitude + rounding, MAX_LEVEL - 1).astype(np.int32)
    else:
        levels = np.minimum(magnitude + np.float32(0.5), MAX_LEVEL - 1).astype(np.int32)
        # blocks rounding to all zeros stay so (a level only ever gets smaller)
        coded = np.flatnonzero(levels.reshape(levels.shape[0], -1).any(axis=1))
        if coded.size:
            chosen = rdoq_levels(
                magnitude[coded], levels[coded], step, lam, models, n, group, rdoq >= 2
            )
            levels[coded] = chosen
    return levels * (1 - 2 * (coefs < 0).view(np.int8))  # the coefficients' signs


def rdoq_levels(magnitude, nearest, step, lam, models, n, group, last_rdo):
    """RDOQ of blocks: the magnitude of each coefficient's level (int32) among ``nearest``
    (rounded |c| / step), one less and zero. Coefficients rounding to zero stay zero. With
    ``last_rdo``, each block's last coded diagonal is then chosen too (``last_choice``)."""
    rows = magnitude_rows(np.minimum(nearest, ESCAPE), n, group, last_diagonal(nearest))
    costs = models.magnitude.flat_costs()
    scaled_lam = np.float32(lam / (step * step))  # errors below are in units of the step
    out = np.zeros(nearest.shape, dtype=np.int32)
    where = np.flatnonzero(nearest)
    row = rows.reshape(-1)[where]
    near, magnitude = nearest.reshape(-1)[where], magnitude.reshape(-1)[where]
    best_cost = (magnitude - near) ** 2 + scaled_lam * (
        costs.take(row + np.minimum(near, ESCAPE)) + (near > 0)
    )
    lower = near - 1
    lower_cost = (magnitude - lower) ** 2 + scaled_lam * (
        costs.take(row + np.minimum(lower, ESCAPE)) + (lower > 0)
    )
    take = lower_cost < best_cost
    best = np.where(take, lower, near)
    best_cost = np.where(take, lower_cost, best_cost)
    zero_cost = magnitude**2 + scaled_lam * costs.take(row)
    out.reshape(-1)[where] = np.where(zero_cost < best_cost, 0, best)
    if not last_rdo:
        return out
    # what coding each coefficient as chosen costs more than cutting it off behind the last
    # diagonal (its error alone): a zero's symbol, or the chosen cost less the error of zero
    extra = scaled_lam * costs.take(rows)
    extra.reshape(-1)[where] = np.minimum(best_cost, zero_cost) - magnitude**2
    last_costs = models.last[n].costs()[group].astype(np.float32)
    last = last_choice(extra, out, scaled_lam * last_costs, n)
    return out * (DIAG_INDEX[n] <= last[:, None, None])


def last_choice(extra, levels, last_costs, n):
    """The last coded diagonal of each block [B] that minimises the cost (squared error in
    steps + scaled lambda * bits) of coding every diagonal up to it: ``extra`` [B, n, n] is
    what coding each coefficient costs more than cutting it off, ``last_costs`` [2n - 1] the
    scaled cost of each last diagonal. Only diagonals with a non-zero level can be last; a
    block without any keeps 0."""
    count, order, starts = levels.shape[0], DIAG_ORDER[n], DIAG_STARTS[n]
    per_diagonal = np.add.reduceat(extra.reshape(count, -1)[:, order], starts, axis=1)
    total = np.cumsum(per_diagonal, axis=1) + last_costs[None, :]
    nonzero = (levels != 0).reshape(count, -1)[:, order]
    candidates = np.logical_or.reduceat(nonzero, starts, axis=1)
    return np.argmin(np.where(candidates, total, np.inf), axis=1)


# =============================================================================================
# Reference pictures and motion-compensated prediction
# =============================================================================================

# HEVC interpolation filters: luma quarter-pel (8 taps), chroma eighth-pel (4 taps), sum 64
LUMA_TAPS = (
    (0, 0, 0, 64, 0, 0, 0, 0), (-1, 4, -10, 58, 17, -5, 1, 0), (-1, 4, -11, 40, 40, -11, 4, -1),
    (0, 1, -5, 17, 58, -10, 4, -1),
)  # fmt: skip
CHROMA_TAPS = (
    (0, 64, 0, 0), (-2, 58, 10, -2), (-4, 54, 16, -2), (-6, 46, 28, -4), (-4, 36, 36, -4),
    (-4, 28, 46, -6), (-2, 16, 54, -4), (-2, 10, 58, -2),
)  # fmt: skip
UNIT = np.array([1.0], dtype=np.float32)
CHROMA_TAP_ARRAY = np.array(CHROMA_TAPS, dtype=np.int32)


def _filter(plane, taps, axis):
    """Integer filter sums of a float32 plane along an axis (exact: all values < 2**24)."""
    kernel = np.array(taps, dtype=np.float32)
    centre = len(taps) // 2 - 1  # taps cover samples x-3..x+4 (luma), x-1..x+2 (chroma)
    kx, ky, anchor = (kernel, UNIT, (centre, 0)) if axis == 1 else (UNIT, kernel, (0, centre))
    return cv2.sepFilter2D(
        plane, cv2.CV_32F, kx, ky, anchor=anchor, borderType=cv2.BORDER_REPLICATE
    )


class Picture:
    """A reconstructed picture: its planes, edge-extended copies and interpolated phases."""

    def __init__(self, planes, poc, layer):
        self.planes = planes  # y, u, v uint8 of the padded size
        self.poc = poc
        self.layer = layer
        self.margins = (MARGIN, MARGIN // 2, MARGIN // 2)
        self.extended = [
            np.pad(p, m, mode="edge").astype(np.float32)
            for p, m in zip(planes, self.margins, strict=True)
        ]
        self.cache = {}
        self.fetched = [0, 0, 0]  # chroma samples fetched block by block, per plane
        self.motion = None  # (field, poc of the L0 reference, poc of the L1 reference)

    def luma_phases(self):
        """All 16 quarter-sample phases of the luma plane, stacked [16, H, W] (int16, 1/64
        sample units; fy * 4 + fx): the 8-tap filter across, then down (floored)."""
        if "luma" not in self.cache:
            source = self.extended[0]
            across = [None] + [_filter(source, LUMA_TAPS[fx], 1) for fx in range(1, 4)]
            phases = []
            for fy in range(4):
                for fx in range(4):
                    if fx == 0 and fy == 0:
                        out = source * 64.0
                    elif fy == 0:
                        out = across[fx]
                    elif fx == 0:
                        out = _filter(source, LUMA_TAPS[fy], 0)
                    else:
                        out = np.floor(_filter(across[fx], LUMA_TAPS[fy], 0) / 64.0)
                    phases.append(np.clip(out, -32768, 32767).astype(np.int16))
            self.cache["luma"] = np.stack(phases)
        return self.cache["luma"]

    def chroma_across(self, plane, samples):
        """A chroma plane filtered across at each eighth-sample phase, stacked [8, H, W]
        (int16, exact): element [fx, y, x] weighs samples x - 1 .. x + 2 of row y. Made once
        the picture has served two planes' worth of ``samples`` of the plane block by block
        (the encoder's many fetches; the decoder's few are cheaper without); None before."""
        if plane not in self.cache:
            self.fetched[plane] += samples
            if self.fetched[plane] <= 2 * self.extended[plane].size:
                return None
            source = self.extended[plane]
            self.cache[plane] = np.stack(
                [_filter(source, CHROMA_TAPS[fx], 1).astype(np.int16) for fx in range(8)]
            )
        return self.cache[plane]

    def drop_phases(self):
        """Free the interpolated phases (when no later picture refers to this one)."""
        self.cache = {}


def fetch(picture, plane, ys, xs, n, mvy, mvx, dtype=np.int32):
    """Motion-compensated blocks [B, n, n] (int32, or ``dtype`` for luma; 1/64 units) of one
    plane.

    ``ys``/``xs`` are block corners in that plane; vectors are in quarter luma samples, which
    is eighth-sample precision in the chroma planes. Fetches are clamped to the extension.
    """
    bits = 2 if plane == 0 else 3
    margin = picture.margins[plane]
    height, width = picture.extended[plane].shape
    top = np.minimum(np.maximum(ys + margin + (mvy >> bits), 0), height - n)
    left = np.minimum(np.maximum(xs + margin + (mvx >> bits), 0), width - n)
    if plane == 0:
        phase = (mvy & 3) * 4 + (mvx & 3)
        return block_view(picture.luma_phases(), n)[phase, top, left].astype(dtype)
    # chroma: the 4-tap filters on each block's own window of n + 3 x n + 3 samples (kept
    # inside the extension), across (from the filtered planes), then down (exact integers)
    top = np.minimum(np.maximum(top - 1, 0), height - n - 3)
    left = np.minimum(np.maximum(left - 1, 0), width - n - 3)
    rows = picture.chroma_across(plane, ys.size * n * n)
    if rows is None:  # each block's window filtered across here (float32: exact integers)
        window = windows(picture.extended[plane], top, left, n + 3)
        taps = CHROMA_TAP_ARRAY[mvx & 7].astype(np.float32)[:, :, None, None]
        across = sum(taps[:, k] * window[:, :, k : k + n] for k in range(4)).astype(np.int32)
    else:
        across = block_view(rows, n + 3, n)[mvx & 7, top, left + 1]
    taps = CHROMA_TAP_ARRAY[mvy & 7][:, :, None, None]
    down = taps[:, 0] * across[:, 0:n]
    for k in range(1, 4):
        down += taps[:, k] * across[:, k : k + n]
    return down >> 6


def predict_inter(refs, ys, xs, n, motions, planes=(0, 1, 2)):
    """Predictions (y [B,n,n], u, v [B,n/2,n/2]) of blocks with motions [B, 5] (int32): the
    1/64-unit fetch of the list used, rounded, or the rounded mean of both (direction 3)."""
    direction = motions[:, 0]
    count = ys.size
    lists = [(lst, np.flatnonzero(direction & (lst + 1))) for lst in (0, 1) if refs[lst]]
    both = np.flatnonzero(direction == 3)
    out = []
    for plane in planes:
        size = n if plane == 0 else n // 2
        py, px = (ys, xs) if plane == 0 else (ys // 2, xs // 2)
        total = None  # the sum of the fetches of the lists each block uses
        for lst, which in lists:
            if which.size == 0:
                continue
            mv = motions[which, 1 + 2 * lst : 3 + 2 * lst]
            fetched = fetch(refs[lst], plane, py[which], px[which], size, mv[:, 0], mv[:, 1])
            if total is None and which.size == count:
                total = fetched
                continue
            if total is None:
                total = np.zeros((count, size, size), dtype=np.int32)
            total[which] += fetched
        if total is None:
            total = np.zeros((count, size, size), dtype=np.int32)
        mean = (total[both] + 64) >> 7 if both.size else None
        total += 32
        total >>= 6
        if both.size:
            total[both] = mean
        out.append(np.clip(total, 0, 255, out=total))
    return out


# =============================================================================================
# Motion fields, merge candidates and vector predictors
# =============================================================================================
#
# Motion is stored per 8x8 luma cell as a tuple (direction, L0 dy, L0 dx, L1 dy, L1 dx) in
# quarter samples; direction 1 = L0, 2 = L1, 3 = both. Cells of intra units, and cells not
# yet coded, hold None. Units are visited in z-order by the encoder and the decoder alike, so
# both see the same neighbours.

MERGE, INTER_L0, INTER_L1, INTER_BI, INTRA = range(5)
MV_LIMIT = 1 << 13


def median3(a, b, c):
    """Median of three integers."""
    return max(min(a, b), min(max(a, b), c))


def scale_vector(value, target, source):
    """A vector component scaled by the ratio of two temporal distances."""
    if source == 0:
        return value
    return max(-MV_LIMIT, min(MV_LIMIT, int(round(value * target / source))))


class MotionField:
    """The motion of one picture under construction, with its predictors."""

    def __init__(self, rows, cols, poc, ref_pocs, collocated, bidirectional, merge_size):
        self.rows, self.cols = rows, cols
        self.cells = [None] * (rows * cols)
        self.poc = poc
        self.ref_pocs = ref_pocs
        self.collocated = collocated
        self.bidirectional = bidirectional
        self.merge_size = merge_size

    def at(self, cy, cx):
        """Motion of a cell, None outside the picture or where there is none."""
        if 0 <= cy < self.rows and 0 <= cx < self.cols:
            return self.cells[cy * self.cols + cx]
        return None

    def fill(self, cy, cx, cs, motion):
        """Give a unit's cells their motion."""
        for row in range(cy, min(cy + cs, self.rows)):
            base = row * self.cols
            for col in range(cx, min(cx + cs, self.cols)):
                self.cells[base + col] = motion

    def spatial(self, cy, cx, cs):
        """Left (bottom), above (right), above-right, below-left and above-left motions."""
        return (
            self.at(cy + cs - 1, cx - 1), self.at(cy - 1, cx + cs - 1), self.at(cy - 1, cx + cs),
            self.at(cy + cs, cx - 1), self.at(cy - 1, cx - 1),
        )  # fmt: skip

    def temporal(self, cy, cx, cs):
        """The collocated picture's motion at the unit's centre, scaled to this picture."""
        if self.collocated is None or self.collocated.motion is None:
            return None
        field, col_pocs = self.collocated.motion
        row = min(cy + cs // 2, field.rows - 1)
        col = min(cx + cs // 2, field.cols - 1)
        motion = field.cells[row * field.cols + col]
        if motion is None:
            return None
        lst = 0 if motion[0] & 1 else 1
        mvy, mvx = motion[1 + 2 * lst], motion[2 + 2 * lst]
        distance = self.collocated.poc - col_pocs[lst]
        out = [3 if self.bidirectional else 1, 0, 0, 0, 0]
        for target in range(2 if self.bidirectional else 1):
            gap = self.poc - self.ref_pocs[target]
            out[1 + 2 * target] = scale_vector(mvy, gap, distance)
            out[2 + 2 * target] = scale_vector(mvx, gap, distance)
        return tuple(out)

    def merge_list(self, cy, cx, cs):
        """Merge candidates: spatial neighbours, the temporal candidate, then zero motion."""
        size = self.merge_size
        out = []
        for motion in self.spatial(cy, cx, cs):
            if motion is not None and motion not in out and len(out) < max(size - 1, 1):
                out.append(motion)
        if len(out) < size:
            motion = self.temporal(cy, cx, cs)
            if motion is not None and motion not in out:
                out.append(motion)
        zeros = (
            ((3, 0, 0, 0, 0), (1, 0, 0, 0, 0), (2, 0, 0, 0, 0))
            if self.bidirectional
            else ((1, 0, 0, 0, 0),)
        )
        for motion in zeros:
            if len(out) < size and motion not in out:
                out.append(motion)
        while len(out) < size:
            out.append(out[-1])
        return out[:size]

    def predictor(self, lst, cy, cx, cs):
        """Vector predictor of one list: median of left, above and above-right vectors (a
        neighbour with only the other list lends its vector scaled by the distances)."""
        found = []
        other = 1 - lst
        for motion in self.spatial(cy, cx, cs)[:3]:
            if motion is not None and motion[0] & (lst + 1):
                found.append((motion[1 + 2 * lst], motion[2 + 2 * lst]))
            elif motion is not None and self.bidirectional and motion[0] & (other + 1):
                target, source = self.poc - self.ref_pocs[lst], self.poc - self.ref_pocs[other]
                found.append(
                    (
                        scale_vector(motion[1 + 2 * other], target, source),
                        scale_vector(motion[2 + 2 * other], target, source),
                    )
                )
            else:
                found.append(None)
        present = [v for v in found if v is not None]
        if not present:
            motion = self.temporal(cy, cx, cs)
            if motion is not None and motion[0] & (lst + 1):
                return motion[1 + 2 * lst], motion[2 + 2 * lst]
            return 0, 0
        if len(present) == 1:
            return present[0]
        a, b, c = (v if v is not None else (0, 0) for v in found)
        return median3(a[0], b[0], c[0]), median3(a[1], b[1], c[1])


def coding_units(split32, split16):
    """Coding units (y, x, size) in z-order from the two split maps."""
    units = []
    rows, cols = split32.shape
    for ty in range(rows):
        for tx in range(cols):
            y0, x0 = ty * CTU, tx * CTU
            if not split32[ty, tx]:
                units.append((y0, x0, 32))
                continue
            for sy, sx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                y1, x1 = y0 + 16 * sy, x0 + 16 * sx
                if not split16[y1 // 16, x1 // 16]:
                    units.append((y1, x1, 16))
                    continue
                for qy, qx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                    units.append((y1 + 8 * qy, x1 + 8 * qx, 8))
    return units


def nearest_candidate(motion, candidates, tolerance):
    """Index of the candidate with the motion's direction and the closest vectors, if close."""
    best, best_distance = None, tolerance + 1
    for index, other in enumerate(candidates):
        if other[0] != motion[0]:
            continue
        distance = max(abs(a - b) for a, b in zip(motion[1:], other[1:], strict=True))
        if distance < best_distance:
            best, best_distance = index, distance
    return best


def resolve_motion(
    field, units, modes, merge_index, mvd, motions, encoding, planned=None, tolerance=0
):
    """Walk the units in z-order and settle their motion, the same way on both sides.

    Decoding: ``modes``, ``merge_index`` and ``mvd`` [N, 4] are read, ``motions`` [N, 5] is
    written. Encoding: ``motions`` is read, and each inter unit becomes MERGE when its motion
    is in its merge list (or, for units the encoder ``planned`` to merge, when a candidate
    is within ``tolerance`` quarter samples of it, which then becomes its motion), else a
    vector difference against the predictors; ``modes``, ``merge_index``, ``mvd`` and
    ``motions`` are written. Intra units leave their cells empty.
    """
    mode_list = modes.tolist()
    motion_list = motions.tolist()
    index_list = merge_index.tolist()
    mvd_list = mvd.tolist()
    for k, (y, x, size) in enumerate(units):
        mode = mode_list[k]
        if mode == INTRA:
            continue
        cy, cx, cs = y >> 3, x >> 3, size >> 3
        candidates = field.merge_list(cy, cx, cs)
        if encoding:
            motion = tuple(motion_list[k])
            near = None
            if motion not in candidates and planned is not None and planned[k]:
                near = nearest_candidate(motion, candidates, tolerance)
                if near is not None:
                    motion = candidates[near]
                    motion_list[k] = list(motion)
            if motion in candidates:
                mode_list[k] = MERGE
                index_list[k] = candidates.index(motion)
            else:
                mode_list[k] = motion[0]
                delta = [0, 0, 0, 0]
                for lst in (0, 1):
                    if motion[0] & (lst + 1):
                        py, px = field.predictor(lst, cy, cx, cs)
                        delta[2 * lst] = motion[1 + 2 * lst] - py
                        delta[2 * lst + 1] = motion[2 + 2 * lst] - px
                mvd_list[k] = delta
        elif mode == MERGE:
            motion = candidates[index_list[k]]
        else:
            out = [mode, 0, 0, 0, 0]
            delta = mvd_list[k]
            for lst in (0, 1):
                if mode & (lst + 1):
                    py, px = field.predictor(lst, cy, cx, cs)
                    out[1 + 2 * lst] = max(-MV_LIMIT, min(MV_LIMIT, py + delta[2 * lst]))
                    out[2 + 2 * lst] = max(-MV_LIMIT, min(MV_LIMIT, px + delta[2 * lst + 1]))
            motion = tuple(out)
            motion_list[k] = list(motion)
        field.fill(cy, cx, cs, motion)
        if not encoding:
            motion_list[k] = list(motion)
    if encoding:
        modes[:] = mode_list
        merge_index[:] = index_list
        mvd[:] = np.array(mvd_list, dtype=np.int64).reshape(mvd.shape)
    motions[:] = np.array(motion_list, dtype=np.int64).reshape(motions.shape)


# =============================================================================================
# Coded pictures: their syntax, and the order of their transform blocks
# =============================================================================================

SIZE_CLASS = {8: 0, 16: 1, 32: 2}
LAYER_CLASSES = 4  # I, P, B of the upper hierarchy, B of the lower levels


class FrameCode:
    """Everything coded for one picture: units, modes, motion, intra modes, cbfs, levels."""

    def __init__(self, kind, poc, layer, qp, units):
        count = len(units)
        self.kind, self.poc, self.layer, self.qp = kind, poc, layer, qp
        self.units = units
        self.modes = np.zeros(count, dtype=np.int64)
        self.merge_index = np.zeros(count, dtype=np.int64)
        self.mvd = np.zeros((count, 4), dtype=np.int64)
        self.motions = np.zeros((count, 5), dtype=np.int64)
        self.rootcbf = np.zeros(count, dtype=np.int64)
        self.cbf = np.zeros((count, 3), dtype=np.int64)  # inter: y, u, v; intra: -, u, v
        self.tu_split = np.zeros(count, dtype=np.int64)  # inter: luma in four half-size blocks
        self.sub_cbf = np.zeros((count, 4), dtype=np.int64)  # their coded flags
        self.intra_split = np.zeros(count, dtype=np.int64)  # luma in 1 (16x16), 4 or 16 blocks
        self.luma_modes = np.zeros((count, 16), dtype=np.int64)
        self.chroma_mode = np.zeros(count, dtype=np.int64)
        self.intra_cbf = np.zeros((count, 16), dtype=np.int64)
        self.levels = {}  # (unit, plane, sub-block) -> levels [n, n] (encoder)
        self.context = None  # the collocated picture's TemporalContext
        self.group_levels = {}  # group -> levels [count, n, n] in transform-block order

    @property
    def layer_class(self):
        """Context class of the picture: 0 = I, 1 = P, 2 = upper B, 3 = lower B."""
        if self.kind == "I":
            return 0
        if self.kind == "P":
            return 1
        return 2 if self.layer <= 2 else 3

    def transform_blocks(self):
        """Per coefficient group: (unit, plane, y, x) of each coded block, in coding order."""
        out = {}
        for k, (y, x, size) in enumerate(self.units):
            if self.modes[k] == INTRA:
                b = 16 >> self.intra_split[k]
                for sub in range((16 // b) ** 2):
                    if self.intra_cbf[k, sub]:
                        sy, sx = sub_position(sub, b)
                        out.setdefault(group_of(0, b, True), []).append((k, 0, sub, y + sy, x + sx))
                for plane in (1, 2):
                    if self.cbf[k, plane]:
                        out.setdefault(group_of(1, 8, True), []).append(
                            (k, plane, 0, y // 2, x // 2)
                        )
                continue
            if not self.rootcbf[k]:
                continue
            if self.cbf[k, 0] and self.tu_split[k]:
                half = size // 2
                for sub in range(4):
                    if self.sub_cbf[k, sub]:
                        sy, sx = y + half * (sub >> 1), x + half * (sub & 1)
                        out.setdefault(group_of(0, half, False), []).append((k, 0, sub, sy, sx))
            elif self.cbf[k, 0]:
                out.setdefault(group_of(0, size, False), []).append((k, 0, 0, y, x))
            for plane in (1, 2):
                if self.cbf[k, plane]:
                    out.setdefault(group_of(1, size // 2, False), []).append(
                        (k, plane, 0, y // 2, x // 2)
                    )
        return {group: out[group] for group in sorted(out)}

    def collect_levels(self):
        """Group the encoder's levels by coefficient group, in coding order."""
        self.group_levels = {
            group: np.stack([self.levels[(k, plane, sub)] for k, plane, sub, _, _ in blocks])
            for group, blocks in self.transform_blocks().items()
        }


class SyntaxModels:
    """Adaptive models of every syntax element except the coefficients."""

    def __init__(self, header):
        limit, intra_modes = header["adapt_limit"], header["intra_modes"]
        if not 4 <= intra_modes <= len(LUMA_MODES):
            raise ValueError(f"intra_modes must be 4..{len(LUMA_MODES)}, not {intra_modes}")
        if not 1 <= header["alf_classes"] <= MAX_ALF_CLASSES:
            raise ValueError(
                f"alf_classes must be 1..{MAX_ALF_CLASSES}, not {header['alf_classes']}"
            )
        self.luma_modes = LUMA_MODES[:intra_modes]  # the luma intra modes pictures choose from
        self.intra_mpm = bool(header["intra_mpm"])  # luma modes coded as ranks (``mode_ranks``)
        self.split32 = Model(LAYER_CLASSES * 4, 2, None, limit)
        self.split16 = Model(LAYER_CLASSES * 4, 2, None, limit)
        self.mode = Model(LAYER_CLASSES * 3 * 4, 5, np.array([4.0, 1.0, 1.0, 1.0, 0.3]), limit)
        self.merge = Model(3, 5, None, limit)
        self.mvd = Model(
            2 * 3, MVD_EXACT + BUCKETS, 0.8 ** np.arange(MVD_EXACT + BUCKETS) * 8 + 0.01, limit
        )
        self.intra_split = Model(2, 3, None, limit)
        # coded as ranks, the first are likely (the neighbours' modes, then planar, DC, ...)
        rank_prior = 0.7 ** np.arange(intra_modes) * 16 + 0.3 if self.intra_mpm else None
        self.luma_mode = Model(3, intra_modes, rank_prior, limit)
        self.chroma_mode = Model(1, len(CHROMA_MODES), None, limit)
        self.rootcbf = Model(2 * 3 * LAYER_CLASSES, 2, None, limit)
        self.cbf = Model(3 * LAYER_CLASSES, 7, None, limit)
        self.tu_split = Model(3, 2, None, limit)
        self.alf = Model(LAYER_CLASSES, 2, None, limit)
        self.alf_coef = Model(
            len(ALF_TAPS),
            MVD_EXACT + BUCKETS,
            0.8 ** np.arange(MVD_EXACT + BUCKETS) * 8 + 0.01,
            limit,
        )
        self.alf_unit = Model(LAYER_CLASSES, 2, None, limit)
        self.alf_merge = Model(1, 2, None, limit)  # a class shares the filter of the one before
        self.alf_previous = np.zeros(
            (LAYER_CLASSES, header["alf_classes"], len(ALF_TAPS)), dtype=np.int64
        )
        self.sub_cbf = Model(3, 15, None, limit)
        self.intra_cbf = Model(3, 2, None, limit)
        self.intra_chroma_cbf = Model(1, 4, None, limit)
        self.coefficients = CoefficientModels(limit)

    def all(self):
        """Every model (for forgetting between pictures)."""
        own = [
            self.split32, self.split16, self.mode, self.merge, self.mvd, self.intra_split,
            self.luma_mode, self.chroma_mode, self.rootcbf, self.cbf, self.tu_split, self.sub_cbf,
            self.intra_cbf, self.intra_chroma_cbf, self.alf, self.alf_coef, self.alf_unit,
            self.alf_merge,
        ]  # fmt: skip
        return own + self.coefficients.models()

    def forget(self, memory):
        """Let older pictures weigh less in every model."""
        for model in self.all():
            model.forget(memory)


def code_splits(coder, models, layer_class, split32, split16, min_cu, context):
    """Code (or decode, in place) the quadtree split maps of an inter picture.

    ``context`` is the collocated picture's ``TemporalContext`` (None when there is none).
    """
    coder.label = "splits"
    values = None if coder.decoding else split32.reshape(-1)
    ctx = layer_class * 4 + temporal_depth(context, split32.shape, 32)
    split32[:] = coder.symbols(models.split32, ctx.reshape(-1), values).reshape(split32.shape)
    if min_cu == 8:
        inside = np.repeat(np.repeat(split32, 2, axis=0), 2, axis=1).astype(bool)
        values = None if coder.decoding else split16[inside]
        ctx = layer_class * 4 + temporal_depth(context, split16.shape, 16)
        split16[inside] = coder.symbols(models.split16, ctx[inside], values)


class TemporalContext:
    """What a later picture's contexts use of a coded one: per 8x8 cell, the depth of its
    unit (0: 32, 1: 16, 2: 8) and its kind (1: intra, 2: skipped, 3: inter with residual)."""

    def __init__(self, frame, rows, cols):
        self.depth = np.zeros((rows, cols), dtype=np.int64)
        self.kind = np.zeros((rows, cols), dtype=np.int64)
        for k, (y, x, n) in enumerate(frame.units):
            area = (slice(y >> 3, (y + n) >> 3), slice(x >> 3, (x + n) >> 3))
            self.depth[area] = {32: 0, 16: 1, 8: 2}[n]
            if frame.modes[k] == INTRA:
                self.kind[area] = 1
            else:
                self.kind[area] = 3 if frame.rootcbf[k] else 2


def temporal_depth(context, shape, n):
    """Context class per n x n block: the deepest collocated unit inside it, 3 without one."""
    if context is None:
        return np.full(shape, 3, dtype=np.int64)
    f = n // 8
    return context.depth.reshape(shape[0], f, shape[1], f).max(axis=(1, 3))


def temporal_kind(context, units, which):
    """Context class per unit: the collocated kind at its centre, 0 without one."""
    if context is None:
        return np.zeros(len(which), dtype=np.int64)
    return np.array(
        [
            context.kind[
                (units[k][0] + units[k][2] // 2) >> 3, (units[k][1] + units[k][2] // 2) >> 3
            ]
            for k in which
        ],
        dtype=np.int64,
    )


def size_classes(units, which):
    """Size class (0: 8, 1: 16, 2: 32) of the units at indices ``which``."""
    return np.array([units[k][2] for k in which], dtype=np.int64) >> 4


def luma_blocks(frame, rows, subs):
    """Luma position (ys, xs) and size of intra blocks: unit ``rows``, block number ``subs``."""
    b = 16 >> frame.intra_split[rows]
    at = np.array([frame.units[k][:2] for k in rows], dtype=np.int64).reshape(-1, 2)
    sy, sx = sub_position(subs, b)
    return at[:, 0] + sy, at[:, 1] + sx, b


def mode_map_of(frame):
    """An empty map of a picture's intra luma modes (``MODE_CELL``), -1 everywhere."""
    rows = max(y + n for y, _, n in frame.units) // MODE_CELL
    cols = max(x + n for _, x, n in frame.units) // MODE_CELL
    return np.full((rows, cols), -1, dtype=np.int64)


def luma_mode_ranks(frame, rows, subs, count):
    """Encoding: the ranks (``mode_ranks``) of the decided luma modes of intra blocks."""
    ys, xs, b = luma_blocks(frame, rows, subs)
    modes = frame.luma_modes[rows, subs]
    mode_map = mode_map_of(frame)
    paint_blocks(mode_map, ys, xs, b, modes)
    ranks = mode_ranks(*neighbour_modes(mode_map, ys, xs), count)
    return ranks[np.arange(rows.size), modes]


def resolve_luma_modes(frame, rows, subs):
    """Decoding: turn the coded ranks in ``frame.luma_modes`` into modes, in waves: the
    units' (``intra_waves``), then the blocks' inside them, so neighbours come first."""
    ys, xs, b = luma_blocks(frame, rows, subs)
    intra = np.unique(rows)
    at = np.array([frame.units[k][:2] for k in intra], dtype=np.int64).reshape(-1, 2)
    unit_wave = np.zeros(len(frame.units), dtype=np.int64)
    unit_wave[intra] = intra_waves(at[:, 0], at[:, 1])
    key = unit_wave[rows] * 16 + SUB_WAVE_OF[frame.intra_split[rows], subs]
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1))
    mode_map = mode_map_of(frame)
    for pick in np.split(order, starts[1:]):
        modes = modes_of_ranks(
            frame.luma_modes[rows[pick], subs[pick]], *neighbour_modes(mode_map, ys[pick], xs[pick])
        )
        frame.luma_modes[rows[pick], subs[pick]] = modes
        paint_blocks(mode_map, ys[pick], xs[pick], b[pick], modes)


def code_units(coder, models, frame, field=None):
    """Code (or decode) a picture's unit syntax in stages, from modes down to the levels.

    When decoding, the vectors of inter units are settled by ``resolve_motion`` on
    ``field`` as soon as the modes, merge indices and vector differences are known.
    """
    decoding = coder.decoding
    units = frame.units
    lc = frame.layer_class
    everyone = np.arange(len(units))

    def code(model, ctx, array, index, label):
        coder.label = f"{frame.kind}:{label}"
        values = None if decoding else array[index]
        array[index] = coder.symbols(model, ctx, values)

    if frame.kind != "I":
        size_class = size_classes(units, everyone)
        col = temporal_kind(frame.context, units, everyone)
        code(models.mode, (lc * 3 + size_class) * 4 + col, frame.modes, everyone, "mode")
        merged = np.nonzero(frame.modes == MERGE)[0]
        code(models.merge, size_class[merged], frame.merge_index, merged, "merge")
        inter = np.nonzero((frame.modes >= INTER_L0) & (frame.modes <= INTER_BI))[0]
        uses = (frame.modes[inter, None] & np.array([1, 1, 2, 2])[None, :]) != 0
        rows, cols = np.nonzero(uses)
        which = inter[rows]
        ctx = (cols % 2) * 3 + size_class[which]
        values = None if decoding else frame.mvd[which, cols]
        coder.label = f"{frame.kind}:mvd"
        frame.mvd[which, cols] = coder.signed(models.mvd, ctx, values, MVD_EXACT)
        if decoding:
            resolve_motion(
                field, units, frame.modes, frame.merge_index, frame.mvd, frame.motions, False
            )
    intra = np.nonzero(frame.modes == INTRA)[0]
    code(
        models.intra_split,
        np.full(intra.size, int(frame.kind != "I")),
        frame.intra_split,
        intra,
        "intra",
    )
    rows = np.repeat(intra, 4 ** frame.intra_split[intra])
    subs = (
        np.concatenate([np.arange(4 ** frame.intra_split[k]) for k in intra]).astype(np.int64)
        if intra.size
        else intra
    )
    values = None
    if not decoding:
        values = frame.luma_modes[rows, subs]
        if models.intra_mpm and rows.size:
            values = luma_mode_ranks(frame, rows, subs, len(models.luma_modes))
    symbols = coder.symbols(models.luma_mode, frame.intra_split[rows], values)
    if decoding:
        frame.luma_modes[rows, subs] = symbols
        if models.intra_mpm and rows.size:
            resolve_luma_modes(frame, rows, subs)
    code(models.chroma_mode, np.zeros(intra.size, np.int64), frame.chroma_mode, intra, "intra")
    if frame.kind != "I":
        inter = np.nonzero(frame.modes != INTRA)[0]
        ctx = ((frame.modes[inter] == MERGE) * 3 + size_classes(units, inter)) * LAYER_CLASSES + lc
        code(models.rootcbf, ctx, frame.rootcbf, inter, "cbf")
        coded = inter[frame.rootcbf[inter] == 1]
        joint = None if decoding else frame.cbf[coded] @ np.array([1, 2, 4]) - 1
        ctx = size_classes(units, coded) * LAYER_CLASSES + lc
        joint = coder.symbols(models.cbf, ctx, joint) + 1
        frame.cbf[coded] = (joint[:, None] >> np.arange(3)[None, :]) & 1
        luma = coded[frame.cbf[coded, 0] == 1]
        code(models.tu_split, size_classes(units, luma), frame.tu_split, luma, "cbf")
        split = luma[frame.tu_split[luma] == 1]
        joint = None if decoding else frame.sub_cbf[split] @ np.array([1, 2, 4, 8]) - 1
        joint = coder.symbols(models.sub_cbf, size_classes(units, split), joint) + 1
        frame.sub_cbf[split] = (joint[:, None] >> np.arange(4)[None, :]) & 1
    values = None if decoding else frame.intra_cbf[rows, subs]
    frame.intra_cbf[rows, subs] = coder.symbols(models.intra_cbf, frame.intra_split[rows], values)
    joint = None if decoding else frame.cbf[intra, 1] + 2 * frame.cbf[intra, 2]
    joint = coder.symbols(models.intra_chroma_cbf, np.zeros(intra.size, np.int64), joint)
    frame.cbf[intra, 1] = joint & 1
    frame.cbf[intra, 2] = joint >> 1
    if not decoding:
        frame.collect_levels()
    for group, blocks in frame.transform_blocks().items():
        coder.label = (
            f"{frame.kind}:{'luma' if group < 8 else 'chroma'}{'-intra' if group % 2 else ''}"
        )
        levels = frame.group_levels.get(group) if not decoding else None
        n = group_size(group)
        frame.group_levels[group] = code_levels(
            coder, models.coefficients, n, group, len(blocks), levels
        )


# =============================================================================================
# Reconstruction (shared by the encoder and the decoder)
# =============================================================================================


def block_index(ys, xs, n):
    """Row and column index arrays [B, n, n] of n x n blocks at (ys, xs)."""
    offsets = np.arange(n)
    return (ys[:, None, None] + offsets[None, :, None]), (
        xs[:, None, None] + offsets[None, None, :]
    )


def group_size(group):
    """Transform size of a coefficient group."""
    return SIZES[(group // 2) % len(SIZES)]


def residual_planes(frame, shapes, scales):
    """Decoded residual of every coded transform block, as planes (int32)."""
    planes = [np.zeros(shape, dtype=np.int32) for shape in shapes]
    for group, blocks in frame.transform_blocks().items():
        n = group_size(group)
        residual = inverse_dct(frame.group_levels[group], scales[group // 8]).astype(np.int32)
        info = np.array([(plane, y, x) for _, plane, _, y, x in blocks], dtype=np.int64)
        for plane in range(3):
            pick = info[:, 0] == plane
            if pick.any():
                rows, cols = block_index(info[pick, 1], info[pick, 2], n)
                planes[plane][rows, cols] = residual[pick]
    return planes


def inter_units(frame):
    """The inter units by size: {n: (unit indices, ys, xs)} (coding order within a size)."""
    by_size = {}
    for k, (_, _, n) in enumerate(frame.units):
        if frame.modes[k] != INTRA:
            by_size.setdefault(n, []).append(k)
    out = {}
    for n, ks in by_size.items():
        ys = np.array([frame.units[k][0] for k in ks])
        xs = np.array([frame.units[k][1] for k in ks])
        out[n] = (np.array(ks), ys, xs)
    return out


def reconstruct_inter(frame, refs, residual, recon, known=None):
    """Motion-compensated prediction plus residual for every inter unit (``known``: the
    predictions by unit size, when the encoder has them)."""
    for n, (ks, ys, xs) in inter_units(frame).items():
        if known is None:
            predictions = predict_inter(refs, ys, xs, n, frame.motions[ks])
        else:
            predictions = known[n]
        for plane, prediction in enumerate(predictions):
            size = n if plane == 0 else n // 2
            py, px = (ys, xs) if plane == 0 else (ys // 2, xs // 2)
            rows, cols = block_index(py, px, size)
            recon[plane][rows, cols] = np.clip(prediction + residual[plane][rows, cols], 0, 255)


def sub_position(index, b):
    """Offset (y, x) in a 16x16 unit of its b x b block number ``index`` (z-order)."""
    sx = (index & 1) | ((index >> 1) & 2)
    sy = ((index >> 1) & 1) | ((index >> 2) & 2)
    return sy * b, sx * b


def intra_flags(ys, xs, width, b=16, index=0):
    """Availability (above, left, above-right) of block ``index`` (size b) of 16x16 units."""
    k = 16 // b
    sy, sx = (v // b for v in sub_position(index, b))
    unit_top = ys > 0
    yes = np.ones(ys.shape, dtype=bool)
    top = yes if sy > 0 else unit_top
    left = yes if sx > 0 else xs > 0
    if sy == 0:
        right = unit_top if sx < k - 1 else unit_top & (xs + 16 < width)
    elif sx == k - 1:
        right = np.zeros(ys.shape, dtype=bool)
    else:
        done = z_index(sy - 1, sx + 1) < index
        right = yes if done else np.zeros(ys.shape, dtype=bool)
    return top, left, right


def sub_waves(k):
    """The z-order blocks of a k x k grid in waves: a block joins the wave after those of the
    neighbours its prediction uses (left, above, above-left and an earlier above-right)."""
    position = {z_index(sy, sx): (sy, sx) for sy in range(k) for sx in range(k)}
    wave = {}
    for index in range(k * k):
        sy, sx = position[index]
        needs = [(sy, sx - 1), (sy - 1, sx), (sy - 1, sx - 1)]
        if sy > 0 and sx < k - 1 and z_index(sy - 1, sx + 1) < index:
            needs.append((sy - 1, sx + 1))
        inside = [z_index(y, x) for y, x in needs if y >= 0 and x >= 0]
        wave[index] = 1 + max((wave[other] for other in inside), default=-1)
    return [[i for i in range(k * k) if wave[i] == w] for w in range(max(wave.values()) + 1)]


def z_index(sy, sx):
    """z-order number of the block at (sy, sx) (in block units, up to 4x4)."""
    return (sx & 1) | ((sy & 1) << 1) | ((sx & 2) << 1) | ((sy & 2) << 2)


SUB_WAVES = [sub_waves(1 << split) for split in range(3)]  # per luma split of a 16x16 unit
SUB_WAVE_OF = np.array(  # [split, block number]: the wave (``SUB_WAVES``) of the block
    [[next((w for w, wave in enumerate(waves) if sub in wave), 0) for sub in range(16)]
     for waves in SUB_WAVES]
)  # fmt: skip


def intra_waves(ys, xs):
    """The wave of each intra unit at (ys, xs): one after the latest wave among the intra
    units at its left, above-left, above and above-right, the only samples it predicts from
    that are not reconstructed before the intra pass (inter units are). In an intra picture
    this is the wavefront x / 16 + 2 y / 16; among inter units the waves are fewer."""
    wave = {}
    for i in np.lexsort((xs, ys)):  # raster order: those four come first
        y, x = int(ys[i]), int(xs[i])
        needs = ((y, x - 16), (y - 16, x - 16), (y - 16, x), (y - 16, x + 16))
        wave[(y, x)] = 1 + max((wave[at] for at in needs if at in wave), default=-1)
    return np.array([wave[(int(y), int(x))] for y, x in zip(ys, xs, strict=True)])


def intra_pass(frame, recon, residual, chooser=None):
    """Intra units in waves (``intra_waves``: the neighbours they predict from come first).

    Decoding, each block is predicted with its coded mode and its residual added. Encoding,
    ``chooser`` decides the modes and levels of each wave's units and reconstructs them.
    """
    intra = np.nonzero(frame.modes == INTRA)[0]
    if intra.size == 0:
        return
    ys = np.array([frame.units[k][0] for k in intra])
    xs = np.array([frame.units[k][1] for k in intra])
    width = recon[0].shape[1]
    front = intra_waves(ys, xs)
    for step in np.unique(front):
        pick = front == step
        ks, by, bx = intra[pick], ys[pick], xs[pick]
        if chooser is not None:
            chooser(frame, ks, by, bx, recon)
            continue
        for split in range(3):
            pick = frame.intra_split[ks] == split
            if not pick.any():
                continue
            b = 16 >> split
            for sub in range(4**split):
                oy, ox = sub_position(sub, b)
                flags = intra_flags(by[pick], bx[pick], width, b, sub)
                modes = frame.luma_modes[ks[pick], sub]
                _predict_add(
                    recon[0], residual[0], by[pick] + oy, bx[pick] + ox, b, modes, flags, LUMA_MODES
                )
        flags = intra_flags(by, bx, width)
        for plane in (1, 2):
            _predict_add(
                recon[plane],
                residual[plane],
                by // 2,
                bx // 2,
                8,
                frame.chroma_mode[ks],
                flags,
                CHROMA_MODES,
            )


def _predict_add(plane, residual, ys, xs, n, modes, flags, mode_table):
    """Intra prediction of blocks plus their residual, written into the plane."""
    above, left = neighbours(plane, ys, xs, n, *flags)
    prediction = intra_predict_modes(above, left, n, modes, mode_table)
    rows, cols = block_index(ys, xs, n)
    plane[rows, cols] = np.clip(prediction + residual[rows, cols], 0, 255)


# =============================================================================================
# In-loop deblocking (HEVC-style) on the 8x8 grid
# =============================================================================================

BETA_TABLE = np.array([0] * 16 + list(range(6, 19)) + list(range(20, 65, 2)), dtype=np.int64)
TC_TABLE = np.array(
    [0] * 18
    + [1] * 9
    + [2] * 4
    + [3] * 4
    + [4] * 3
    + [5, 5, 6, 6, 7, 8, 9, 10, 11, 13, 14, 16, 18, 20, 22, 24],
    dtype=np.int64,
)


def cell_maps(frame, rows, cols):
    """Per 8x8 cell: transform-block id, intra flag, coded-luma flag and motion [rows, cols, 5]."""
    block = np.zeros((rows, cols), dtype=np.int64)
    intra = np.zeros((rows, cols), dtype=bool)
    coded = np.zeros((rows, cols), dtype=bool)
    motion = np.zeros((rows, cols, 5), dtype=np.int64)
    for k, (y, x, n) in enumerate(frame.units):
        cy, cx, cs = y >> 3, x >> 3, n >> 3
        area = (slice(cy, cy + cs), slice(cx, cx + cs))
        block[area] = 4 * k
        if frame.modes[k] == INTRA:
            intra[area] = True
            if frame.intra_split[k]:
                per_cell = 4 ** (frame.intra_split[k] - 1)  # transform blocks in each 8x8 cell
                for sub in range(4):
                    cell = (cy + (sub >> 1), cx + (sub & 1))
                    block[cell] = 4 * k + sub
                    coded[cell] = bool(
                        frame.intra_cbf[k, sub * per_cell : (sub + 1) * per_cell].any()
                    )
            else:
                coded[area] = bool(frame.intra_cbf[k, 0])
        else:
            coded[area] = bool(frame.rootcbf[k] and frame.cbf[k, 0])
            motion[area] = frame.motions[k]
            if frame.tu_split[k] and n >= 16:
                half = cs // 2
                for sub in range(4):
                    part = (slice(cy + half * (sub >> 1), cy + half * (sub >> 1) + half),
                            slice(cx + half * (sub & 1), cx + half * (sub & 1) + half))  # fmt: skip
                    block[part] = 4 * k + sub
                    coded[part] = bool(frame.sub_cbf[k, sub])
    return block, intra, coded, motion


def edge_strength(block, intra, coded, motion, axis):
    """Boundary strength (0, 1, 2) of the edges between neighbouring cells along an axis."""

    def pair(a):
        return (a[:, :-1], a[:, 1:]) if axis == 1 else (a[:-1], a[1:])

    b0, b1 = pair(block)
    i0, i1 = pair(intra)
    c0, c1 = pair(coded)
    m0, m1 = pair(motion)
    edge = b0 != b1
    moved = (m0[..., 0] != m1[..., 0]) | (np.abs(m0[..., 1:] - m1[..., 1:]).max(axis=-1) >= 4)
    strength = np.where(i0 | i1, 2, np.where(c0 | c1 | moved, 1, 0))
    return np.where(edge, strength, 0)


def filter_luma_edges(plane, strength, qp, beta_offset, tc_offset):
    """Filter the vertical edges of a luma plane (int32, changed in place) with strengths per
    [cell row, edge column]; every 4-line segment decides on its own, as in HEVC."""
    rows, edges = np.nonzero(strength)
    if rows.size == 0:
        return
    bs = strength[rows, edges]
    beta = BETA_TABLE[np.clip(qp + beta_offset, 0, 51)]
    tc = TC_TABLE[np.clip(qp + 2 * (bs - 1) + tc_offset, 0, 53)]
    keep = tc > 0
    rows, edges, tc = rows[keep], edges[keep], tc[keep]
    # segments of 4 lines: two per 8x8 cell
    ys = (np.repeat(rows * 8, 2) + np.tile([0, 4], rows.size))[:, None] + np.arange(4)[None, :]
    xs = np.repeat((edges + 1) * 8, 2)
    tc = np.repeat(tc, 2)[:, None]
    cols = xs[:, None] + np.arange(-4, 4)[None, :]
    s = plane[ys[:, :, None], cols[:, None, :]]  # [E, 4 lines, 8 samples]: p3 p2 p1 p0 q0 q1 q2 q3
    p3, p2, p1, p0, q0, q1, q2, q3 = (s[:, :, i] for i in range(8))
    dp = np.abs(p2 - 2 * p1 + p0)
    dq = np.abs(q2 - 2 * q1 + q0)
    d = dp[:, 0] + dq[:, 0] + dp[:, 3] + dq[:, 3]
    on = (d < beta)[:, None]
    strong_line = (
        (2 * (dp + dq) < (beta >> 2))
        & (np.abs(p3 - p0) + np.abs(q0 - q3) < (beta >> 3))
        & (np.abs(p0 - q0) < ((5 * tc + 1) >> 1))
    )
    strong = (strong_line[:, 0] & strong_line[:, 3])[:, None]
    t2 = 2 * tc
    sp0 = np.clip((p2 + 2 * p1 + 2 * p0 + 2 * q0 + q1 + 4) >> 3, p0 - t2, p0 + t2)
    sp1 = np.clip((p2 + p1 + p0 + q0 + 2) >> 2, p1 - t2, p1 + t2)
    sp2 = np.clip((2 * p3 + 3 * p2 + p1 + p0 + q0 + 4) >> 3, p2 - t2, p2 + t2)
    sq0 = np.clip((p1 + 2 * p0 + 2 * q0 + 2 * q1 + q2 + 4) >> 3, q0 - t2, q0 + t2)
    sq1 = np.clip((p0 + q0 + q1 + q2 + 2) >> 2, q1 - t2, q1 + t2)
    sq2 = np.clip((p0 + q0 + q1 + 3 * q2 + 2 * q3 + 4) >> 3, q2 - t2, q2 + t2)
    delta = (9 * (q0 - p0) - 3 * (q1 - p1) + 8) >> 4
    normal = np.abs(delta) < tc * 10
    delta = np.clip(delta, -tc, tc)
    side_p = ((dp[:, 0] + dp[:, 3]) < ((beta + (beta >> 1)) >> 3))[:, None]
    side_q = ((dq[:, 0] + dq[:, 3]) < ((beta + (beta >> 1)) >> 3))[:, None]
    half = tc >> 1
    np1 = np.where(side_p, p1 + np.clip((((p2 + p0 + 1) >> 1) - p1 + delta) >> 1, -half, half), p1)
    nq1 = np.where(side_q, q1 + np.clip((((q2 + q0 + 1) >> 1) - q1 - delta) >> 1, -half, half), q1)
    np0, nq0 = p0 + delta, q0 - delta
    weak = on & ~strong & normal
    strong = on & strong
    out = [
        p3,
        np.where(strong, sp2, p2),
        np.where(strong, sp1, np.where(weak, np1, p1)),
        np.where(strong, sp0, np.where(weak, np0, p0)),
        np.where(strong, sq0, np.where(weak, nq0, q0)),
        np.where(strong, sq1, np.where(weak, nq1, q1)),
        np.where(strong, sq2, q2),
        q3,
    ]
    plane[ys[:, :, None], cols[:, None, :]] = np.clip(np.stack(out, axis=2), 0, 255)


def filter_chroma_edges(plane, strength, qp, tc_offset):
    """Filter the vertical edges (every 8 samples) of a chroma plane where the strength is 2."""
    rows, edges = np.nonzero(strength == 2)
    if rows.size == 0:
        return
    tc = int(TC_TABLE[np.clip(qp + 2 + tc_offset, 0, 53)])
    if tc == 0:
        return
    ys = (rows * 8)[:, None] + np.arange(8)[None, :]
    cols = ((edges + 1) * 8)[:, None] + np.arange(-2, 2)[None, :]
    s = plane[ys[:, :, None], cols[:, None, :]]
    p1, p0, q0, q1 = (s[:, :, i] for i in range(4))
    delta = np.clip((((q0 - p0) << 2) + p1 - q1 + 4) >> 3, -tc, tc)
    s[:, :, 1] = np.clip(p0 + delta, 0, 255)
    s[:, :, 2] = np.clip(q0 - delta, 0, 255)
    plane[ys[:, :, None], cols[:, None, :]] = s


def deblock(recon, frame, qp, chroma_qp, beta_offset, tc_offset):
    """Deblock a reconstructed picture in place: vertical edges, then horizontal ones."""
    rows, cols = recon[0].shape[0] // 8, recon[0].shape[1] // 8
    block, intra, coded, motion = cell_maps(frame, rows, cols)
    for axis in (1, 0):
        strength = edge_strength(block, intra, coded, motion, axis)
        luma = recon[0].astype(np.int32)
        if axis == 0:
            luma, strength = luma.T.copy(), strength.T
        filter_luma_edges(luma, strength, qp, beta_offset, tc_offset)
        recon[0][:] = luma if axis == 1 else luma.T
        # chroma edges lie on the 16-sample luma grid: every other cell edge
        chroma_strength = strength[0::2, 1::2] if strength.shape[1] > 1 else strength[0::2, :0]
        chroma_strength = np.maximum(
            chroma_strength, strength[1::2, 1::2][: chroma_strength.shape[0]]
        )
        for plane in (1, 2):
            values = recon[plane].astype(np.int32)
            if axis == 0:
                values = values.T.copy()
            filter_chroma_edges(values, chroma_strength, chroma_qp, tc_offset)
            recon[plane][:] = values if axis == 1 else values.T


# =============================================================================================
# Adaptive loop filter: Wiener filters per picture and activity class, switched per unit
# =============================================================================================

# offsets of the symmetric tap pairs of a 7x7 diamond; the centre weight is implied
ALF_TAPS = (
    (0, 1),
    (1, 0),
    (1, 1),
    (1, -1),
    (0, 2),
    (2, 0),
    (1, 2),
    (2, 1),
    (2, -1),
    (1, -2),
    (0, 3),
    (3, 0),
)
ALF_SHIFT = 7  # coefficients are in 1/128
ALF_LIMIT = 64


def alf_kernel(coefs):
    """The 7x7 integer kernel (sum 128) of a set of pair coefficients."""
    kernel = np.zeros((7, 7), dtype=np.float32)
    for (dy, dx), c in zip(ALF_TAPS, coefs, strict=True):
        kernel[3 + dy, 3 + dx] += c
        kernel[3 - dy, 3 - dx] += c
    kernel[3, 3] = (1 << ALF_SHIFT) - 2 * int(np.sum(coefs))
    return kernel


def alf_filter(plane, coefs):
    """The plane filtered by the kernel of ``coefs`` (exact integers, edges replicated)."""
    total = cv2.filter2D(
        plane.astype(np.float32), cv2.CV_32F, alf_kernel(coefs), borderType=cv2.BORDER_REPLICATE
    )
    return np.clip(np.floor((total + (1 << (ALF_SHIFT - 1))) / (1 << ALF_SHIFT)), 0, 255).astype(
        np.uint8
    )


ALF_BLOCK = 4  # luma samples per side of the blocks the filter classes are chosen for


def alf_class_map(plane, count):
    """Filter class [H, W] of every sample: its 4x4 block's rank by local activity (the sum of
    absolute horizontal and vertical second differences) cut into ``count`` equal shares."""
    height, width = plane.shape
    if count <= 1:
        return np.zeros((height, width), dtype=np.int64)
    rec = np.pad(plane.astype(np.int64), 1, mode="edge")
    centre = rec[1:-1, 1:-1]
    lap = np.abs(2 * centre - rec[:-2, 1:-1] - rec[2:, 1:-1]) + np.abs(
        2 * centre - rec[1:-1, :-2] - rec[1:-1, 2:]
    )
    b = ALF_BLOCK
    activity = lap.reshape(height // b, b, width // b, b).sum(axis=(1, 3))
    ranked = np.sort(activity.reshape(-1))
    bounds = ranked[(np.arange(1, count) * ranked.size) // count]
    classes = np.searchsorted(bounds, activity, side="right")
    return np.repeat(np.repeat(classes, b, axis=0), b, axis=1)


def alf_filter_classes(plane, coefs, classes):
    """The plane filtered with each sample's class's coefficients (``coefs`` [K, taps]; classes
    that share a filter are filtered once)."""
    filters, which = np.unique(coefs, axis=0, return_inverse=True)
    if len(filters) == 1:
        return alf_filter(plane, filters[0])
    out = np.empty(plane.shape, dtype=np.uint8)
    sample_filter = which.reshape(-1)[classes]
    for f, row in enumerate(filters):
        pick = sample_filter == f
        out[pick] = alf_filter(plane, row)[pick]
    return out


def alf_apply(plane, coefs, enabled, classes, filtered=None):
    """Replace the enabled 32x32 units of a plane (in place) by their filtered samples
    (``filtered``: the plane already filtered with ``coefs``, when the encoder has it)."""
    if filtered is None:
        filtered = alf_filter_classes(plane, coefs, classes)
    mask = np.repeat(np.repeat(enabled.astype(bool), CTU, axis=0), CTU, axis=1)
    plane[mask] = filtered[mask]


def alf_solution(normal, right):
    """The least-squares filter (float, in units of 1) of summed normal equations, slightly
    regularised so that classes without samples give a zero filter."""
    return np.linalg.solve(normal + np.eye(len(right)) * 1e-3, right)


def alf_groups(normals, rights, lam):
    """Runs of neighbouring classes that share a filter: a start flag [K] per class (the first
    is always a start), chosen for the least predicted squared error + lam * bits. A run's
    least-squares filter lowers the error by ``solution . right`` of its summed equations."""
    count, taps = rights.shape
    best = np.zeros(count + 1)  # best[j]: the cost of classes 0..j-1 cut into runs
    cut = np.zeros(count + 1, dtype=np.int64)
    for j in range(1, count + 1):
        options = []
        for i in range(j):
            right = rights[i:j].sum(axis=0)
            solution = alf_solution(normals[i:j].sum(axis=0), right)
            options.append(best[i] - float(solution @ right) + lam * taps * 4)
        cut[j] = int(np.argmin(options))
        best[j] = options[cut[j]] + lam
    starts = np.zeros(count, dtype=bool)
    j = count
    while j > 0:
        starts[cut[j]] = True
        j = cut[j]
    return starts


def alf_design(source, plane, valid, lam, classes, count):
    """Coefficients [count, taps] (one row per class), per-unit switches, the classes that
    start a new filter and the plane filtered with them, lowering squared error + lam * bits;
    or None."""
    height, width = plane.shape
    rec = plane.astype(np.float32)
    padded = np.pad(rec, 3, mode="edge")
    features = np.stack([
        padded[3 + dy : 3 + dy + height, 3 + dx : 3 + dx + width]
        + padded[3 - dy : 3 - dy + height, 3 - dx : 3 - dx + width] - 2 * rec
        for dy, dx in ALF_TAPS
    ]).reshape(len(ALF_TAPS), -1)  # fmt: skip
    target = (source - plane).astype(np.float32).reshape(-1)
    weight = (
        np.ones(target.size, dtype=np.float32)
        if valid is None
        else valid.reshape(-1).astype(np.float32)
    )
    rows, cols = height // CTU, width // CTU
    enabled = np.ones((rows, cols), dtype=bool)
    flat_classes = classes.reshape(-1)
    taps = len(ALF_TAPS)

    def unit_errors(filtered):
        """Squared error per coding-tree unit (float64; sums of whole numbers, exact)."""
        diff = source - filtered.astype(np.int32)
        squared = diff * diff if valid is None else diff * diff * valid
        return squared.reshape(rows, CTU, cols, CTU).sum(axis=(1, 3)).astype(np.float64)

    order, ends = None, np.array([0, target.size])
    if count > 1:  # the samples class by class
        order = np.argsort(flat_classes, kind="stable")
        features, target, weight = features[:, order], target[order], weight[order]
        ends = np.searchsorted(flat_classes[order], np.arange(count + 1))
    before = unit_errors(plane)
    for _ in range(2):
        use = np.repeat(np.repeat(enabled, CTU, axis=0), CTU, axis=1).reshape(-1)
        use = weight * (use if order is None else use[order])
        normals = np.zeros((count, taps, taps))
        rights = np.zeros((count, taps))
        for k in range(count):
            part = features[:, ends[k] : ends[k + 1]]
            weighted = (
                part if valid is None and enabled.all() else part * use[ends[k] : ends[k + 1]]
            )
            normals[k] = weighted @ part.T
            rights[k] = weighted @ target[ends[k] : ends[k + 1]]
        if not np.isfinite(normals).all() or np.abs(normals).sum() == 0:
            return None
        starts = alf_groups(normals, rights, lam) if count > 1 else np.ones(1, dtype=bool)
        group = np.cumsum(starts) - 1
        coefs = np.zeros((count, taps), dtype=np.int64)
        for g in range(int(group[-1]) + 1):
            mine = group == g
            solution = alf_solution(normals[mine].sum(axis=0), rights[mine].sum(axis=0))
            coefs[mine] = np.clip(np.rint(solution * (1 << ALF_SHIFT)), -ALF_LIMIT, ALF_LIMIT)
        filtered = alf_filter_classes(plane, coefs, classes)
        after = unit_errors(filtered)
        enabled = before - after > lam * 1.0
        if not enabled.any():
            return None
    gain = float((before - after)[enabled].sum())
    cost = lam * (int(starts.sum()) * taps * 4 + count - 1 + enabled.size * 0.5)
    return (coefs, enabled, starts, filtered) if gain > cost else None


def code_alf(coder, models, layer_class, shape, design=None):
    """Code (or decode) a picture's loop-filter switch, which classes share a filter, the
    filters' coefficients and the unit switches."""
    coder.label = "alf"
    rows, cols = shape[0] // CTU, shape[1] // CTU
    on = coder.symbols(
        models.alf, [layer_class], None if coder.decoding else [int(design is not None)]
    )
    if not on[0]:
        return None
    previous = models.alf_previous[layer_class]  # coefficients are coded as changes [K, taps]
    count, taps = previous.shape
    starts = np.ones(count, dtype=bool)
    merged = None if coder.decoding else (~design[2][1:]).astype(np.int64)
    starts[1:] = coder.symbols(models.alf_merge, np.zeros(count - 1), merged) == 0
    firsts = np.flatnonzero(starts)  # each filter predicted from its first class's last one
    delta = None if coder.decoding else (design[0][firsts] - previous[firsts]).reshape(-1)
    contexts = np.tile(np.arange(taps), firsts.size)
    filters = previous[firsts] + coder.signed(models.alf_coef, contexts, delta, MVD_EXACT).reshape(
        firsts.size, taps
    )
    coefs = filters[np.cumsum(starts) - 1]
    models.alf_previous[layer_class] = coefs
    enabled = None if coder.decoding else design[1].reshape(-1).astype(np.int64)
    enabled = coder.symbols(models.alf_unit, np.full(rows * cols, layer_class), enabled)
    return coefs, enabled.reshape(rows, cols)


# =============================================================================================
# Encoder: intra decisions
# =============================================================================================


def block_sse(a, b):
    """Sum of squared differences per block [B] of [B, n, n] arrays."""
    diff = (a - b).astype(np.float64)
    return (diff * diff).reshape(diff.shape[0], -1).sum(axis=1)


def rehearsed_models(stream, source, models, params, qp, chroma_qp, chunk):
    """A copy of ``models`` that has coded one decision of the first (intra) picture: its
    costs are the estimates to decide that picture again with (``intra_rehearsal``), where
    the models themselves know only their priors. The real coding still starts from those."""
    estimates = copy.deepcopy(models)
    trial = intra_frame(stream, 0, 0, qp)
    size = (stream.height, stream.width)
    encoder = PictureEncoder(source, trial, estimates, params, chroma_qp, size)
    recon = [np.zeros(shape, np.uint8) for shape in stream.shapes()]
    intra_pass(trial, recon, None, encoder.choose_intra)
    code_units(Coder(chunk=chunk), estimates, trial)
    return estimates


class PictureEncoder:
    """What the encoder's decisions for one picture need: source, QPs, lambda, models."""

    def __init__(self, source, frame, models, params, chroma_qp, size):
        self.source = source  # padded planes, int32
        self.valid = None  # per plane: inside the picture (the padding needs no residual)
        height, width = size
        self.inside = [(height // f, width // f) for f in (1, 2, 2)]  # the picture, per plane
        if (height, width) != source[0].shape:
            self.valid = [
                (np.arange(plane.shape[0])[:, None] < height // f)
                & (np.arange(plane.shape[1])[None, :] < width // f)
                for plane, f in zip(source, (1, 2, 2), strict=True)
            ]
        self.frame = frame
        self.models = models
        self.params = params
        self.mode_map = np.full(  # the luma modes decided so far (``paint_modes``)
            (source[0].shape[0] // MODE_CELL, source[0].shape[1] // MODE_CELL), -1, np.int64
        )
        self.steps = (qp_scale(frame.qp) / 64.0, qp_scale(chroma_qp) / 64.0)
        self.scales = (qp_scale(frame.qp), qp_scale(chroma_qp))
        layer_factor = 1.0 + params["lambda_layer_scale"] * frame.layer
        self.lam = lambda_of(frame.qp) * params["lambda_scale"] * layer_factor
        self.rdoq = params["rdoq"]

    def source_blocks(self, plane, ys, xs, n, pred):
        """The source's n x n blocks at (ys, xs) of a plane, padding replaced by ``pred``."""
        src = block_view(self.source[plane], n)[ys, xs]
        if self.valid is None:
            return src
        height, width = self.inside[plane]
        edge = np.flatnonzero((ys + n > height) | (xs + n > width))  # blocks reaching past it
        if edge.size:
            valid = block_view(self.valid[plane], n)[ys[edge], xs[edge]]
            src[edge] = np.where(valid, src[edge], pred[edge])
        return src

    def residual_choice(self, src, pred, n, group, plane_class):
        """Quantise the residual of blocks: levels, bits of the levels, reconstruction, SSE."""
        coefs = forward_dct(src - pred)
        step = self.steps[plane_class]
        levels = quantise(coefs, step, self.lam, self.models.coefficients, n, group, self.rdoq)
        bits = level_bits(self.models.coefficients, n, group, levels)
        recon = np.clip(pred + inverse_dct(levels, self.scales[plane_class]), 0, 255)
        return levels, bits, recon, block_sse(src, recon)

    def intra_blocks(self, plane, ys, xs, n, flags, modes, mode_costs, group, cbf_costs):
        """Best intra mode of each block by rate-distortion cost, and what it produces.
        ``mode_costs``: bits of each mode [M], or of each mode for each block [M, B]."""
        src = block_view(self.source[plane], n)[ys, xs]
        above, left = neighbours(self.recon[plane], ys, xs, n, *flags)
        predictions = intra_predict_all(above, left, n, modes)
        count, shortlist = ys.size, min(int(self.params["intra_shortlist"]), len(modes))
        mode_costs = np.asarray(mode_costs)[: len(modes)]
        mode_costs = np.broadcast_to(mode_costs.reshape(len(modes), -1), (len(modes), count))
        rough = satd((src[None] - predictions).reshape(-1, n, n)).reshape(len(modes), count)
        rough = rough + math.sqrt(self.lam) * mode_costs
        ranked = np.argsort(rough, axis=0, kind="stable")[:shortlist]
        everyone = np.arange(count)
        # the shortlisted modes of every block measured together: [rank * count + block]
        pred = predictions[ranked, everyone[None, :]].reshape(-1, n, n)
        clean = self.source_blocks(plane, repeat(ys, shortlist), repeat(xs, shortlist), n, pred)
        levels, bits, recon, sse = self.residual_choice(clean, pred, n, group, min(plane, 1))
        coded = np.abs(levels).reshape(levels.shape[0], -1).max(axis=1) > 0
        mode = ranked.reshape(-1)
        tiled = np.tile(everyone, shortlist)
        bits = bits + np.where(coded, cbf_costs[1], cbf_costs[0]) + mode_costs[mode, tiled]
        cost = (sse + self.lam * bits).reshape(shortlist, count)
        # the first of the cheapest ranks (a later rank replaces an earlier one only if cheaper)
        pick = np.argmin(cost, axis=0) * count + everyone
        return [cost.reshape(-1)[pick], mode[pick], levels[pick], recon[pick], coded[pick]]

    def choose_intra(self, frame, ks, ys, xs, recon):
        """Decide the luma partition (16x16, 8x8 or 4x4 blocks), the modes and levels of a
        wavefront's units, then their chroma. 4x4 blocks are tried only where 8x8 blocks
        beat the whole 16x16 block."""
        self.recon = recon
        width = recon[0].shape[1]
        rows, cols = block_index(ys, xs, 16)
        costs = np.full((3, ys.size), np.inf)
        results = [None] * 3
        everyone = np.arange(ys.size)
        for split in range(1 + int(self.params["intra_partitions"])):
            who = everyone if split < 2 else np.nonzero(costs[1] < costs[0])[0]
            if who.size == 0:
                continue
            costs[split, who], parts = self.intra_partition(frame, ys[who], xs[who], split, width)
            results[split] = (who, parts, recon[0][rows[who], cols[who]].copy())
        best = np.argmin(costs, axis=0)
        for split in range(3):
            if results[split] is None:
                continue
            who, parts, pixels = results[split]
            chosen = best[who] == split
            recon[0][rows[who[chosen]], cols[who[chosen]]] = pixels[chosen]
            b, mine = 16 >> split, who[chosen]
            for sub, part in enumerate(parts):
                oy, ox = sub_position(sub, b)
                paint_modes(self.mode_map, ys[mine] + oy, xs[mine] + ox, b, part[1][chosen])
            for j in np.nonzero(chosen)[0]:
                k = ks[who[j]]
                frame.intra_split[k] = split
                for sub, part in enumerate(parts):
                    frame.luma_modes[k, sub] = part[1][j]
                    frame.intra_cbf[k, sub] = part[4][j]
                    if part[4][j]:
                        frame.levels[(k, 0, sub)] = part[2][j]
        self.choose_chroma(frame, ks, ys // 2, xs // 2, intra_flags(ys, xs, width))

    def intra_partition(self, frame, ys, xs, split, width):
        """RD cost of coding 16x16 units' luma as 4**split blocks (each written into the
        reconstruction as it is decided), and each block's (cost, mode, levels, recon, cbf).
        The blocks of a unit are decided in waves (``SUB_WAVES``): each wave's blocks need
        only samples of the earlier waves, so they are measured together."""
        models = self.models
        split_costs = models.intra_split.costs()[0 if frame.kind == "I" else 1]
        b, count = 16 >> split, ys.size
        parts = [None] * 4**split
        for wave in SUB_WAVES[split]:
            offsets = np.repeat([sub_position(sub, b) for sub in wave], count, axis=0)
            flags = zip(*(intra_flags(ys, xs, width, b, sub) for sub in wave), strict=True)
            by = repeat(ys, len(wave)) + offsets[:, 0]
            bx = repeat(xs, len(wave)) + offsets[:, 1]
            mode_costs = models.luma_mode.costs()[split]
            if models.intra_mpm:
                ranks = mode_ranks(*neighbour_modes(self.mode_map, by, bx), len(models.luma_modes))
                mode_costs = mode_costs[ranks].T
            part = self.intra_blocks(
                0,
                by,
                bx,
                b,
                [np.concatenate(flag) for flag in flags],
                models.luma_modes,
                mode_costs,
                group_of(0, b, True),
                models.intra_cbf.costs()[split],
            )
            self.recon[0][block_index(by, bx, b)] = part[3]
            paint_modes(self.mode_map, by, bx, b, part[1])
            for i, sub in enumerate(wave):
                parts[sub] = [value[i * count : (i + 1) * count] for value in part]
        cost = self.lam * split_costs[split] + np.zeros(count)
        for part in parts:  # in the blocks' order
            cost += part[0]
        return cost, parts

    def choose_chroma(self, frame, ks, ys, xs, flags):
        """Chroma mode (shared by U and V) and levels of intra units."""
        group = group_of(1, 8, True)
        mode_costs = self.models.chroma_mode.costs()[0]
        count, modes = ys.size, len(CHROMA_MODES)
        # every mode of both planes measured in one batch: [plane, mode, block]
        preds, srcs = [], []
        for plane in (1, 2):
            above, left = neighbours(self.recon[plane], ys, xs, 8, *flags)
            preds.append(intra_predict_all(above, left, 8, CHROMA_MODES).reshape(-1, 8, 8))
            tiled = (repeat(ys, modes), repeat(xs, modes))
            srcs.append(self.source_blocks(plane, *tiled, 8, preds[-1]))
        levels, bits, recon, sse = self.residual_choice(
            np.concatenate(srcs), np.concatenate(preds), 8, group, 1
        )
        cost = (sse + self.lam * bits).reshape(2, modes, count)
        best = np.argmin(cost[0] + cost[1] + self.lam * mode_costs[:modes, None], axis=0)
        chosen = np.arange(count) + best * count  # in each plane's [mode, block] rows
        for plane_index, plane in enumerate((1, 2)):
            rows = chosen + plane_index * modes * count
            self.recon[plane][block_index(ys, xs, 8)] = recon[rows]
            for i, k in enumerate(ks):
                coded = bool(np.any(levels[rows[i]]))
                frame.cbf[k, plane] = int(coded)
                if coded:
                    frame.levels[(k, plane, 0)] = levels[rows[i]]
        frame.chroma_mode[ks] = best


# =============================================================================================
# Encoder: motion search
# =============================================================================================


def downsample(plane):
    """Half-size plane: the mean of each 2x2 block (float32)."""
    h, w = plane.shape
    p = plane[: h - h % 2, : w - w % 2].astype(np.float32)
    return (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]) * 0.25


def grid(height, width, n):
    """Top-left corners (ys, xs) of the n x n blocks of a plane, raster order, and the shape."""
    rows, cols = height // n, width // n
    ys, xs = np.meshgrid(np.arange(rows) * n, np.arange(cols) * n, indexing="ij")
    return ys.reshape(-1), xs.reshape(-1), (rows, cols)


def vector_bits(dy, dx):
    """Rough bits of a vector difference (quarter samples), as the entropy coder spends them:
    2 log2(|dy| + 1) + 2 log2(|dx| + 1) + 2 (from a table of the same values when it can)."""
    dy, dx = np.abs(dy), np.abs(dx)
    if max(dy.max(initial=0), dx.max(initial=0)) < LOG_BITS.size:
        return LOG_BITS[dy] + LOG_BITS[dx] + 2.0
    return 2.0 * np.log2(dy + 1.0) + 2.0 * np.log2(dx + 1.0) + 2.0


LOG_BITS = 2.0 * np.log2(np.arange(1 << 14) + 1.0)  # vector_bits' terms of small components


def repeat(values, times):
    """A 1-D array repeated end to end ``times`` times (np.tile, without its overhead)."""
    return np.concatenate((values,) * times)


def block_view(planes, n, m=None):
    """Every n x m (default n x n) window of a contiguous plane (or stack of planes) as a
    view [..., rows - n + 1, cols - m + 1, n, m] (not to be written): indexing gathers blocks."""
    m = n if m is None else m
    *lead, height, width = planes.shape
    *lead_strides, row, col = planes.strides
    shape = (*lead, height - n + 1, width - m + 1, n, m)
    return np.ndarray(shape, planes.dtype, planes, 0, (*lead_strides, row, col, row, col))


def windows(plane, top, left, n):
    """The n x n windows of a plane at (top, left) (any shape, clamped inside) [..., n, n]."""
    height, width = plane.shape
    top = np.minimum(np.maximum(top, 0), height - n)
    left = np.minimum(np.maximum(left, 0), width - n)
    return block_view(plane, n)[top, left]


def group_sums(values, sub):
    """Sums [..., n/sub, n/sub] of the sub x sub groups of [..., n, n] float32 values, as two
    products with 0/1 matrices (exact for sums of small integers)."""
    n = values.shape[-1]
    k = n // sub
    ones_cols = np.repeat(np.eye(k, dtype=np.float32), sub, axis=0)  # [n, k]
    ones_rows = np.tile(np.eye(k, dtype=np.float32), (sub, 1))  # [sub * k, k]
    cols = values.reshape(-1, n) @ ones_cols
    return (cols.reshape(-1, sub * k) @ ones_rows).reshape(*values.shape[:-2], k, k)


CROSS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int64)


def square(radius):
    """Offsets (dy, dx) of a (2r+1)^2 square, centre first."""
    offsets = [(0, 0)] + [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if dy or dx
    ]
    return np.array(offsets, dtype=np.int64)


def hadamard(n):
    """Orthonormal n x n Hadamard matrix (n a power of two)."""
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h / math.sqrt(n)


HADAMARD8 = hadamard(8).astype(np.float32)
HADAMARD4 = hadamard(4).astype(np.float32)


def satd(residual):
    """Sum of absolute 8x8 (4x4 for 4x4 blocks) Hadamard coefficients per block [B, n, n]."""
    count, n, _ = residual.shape
    t = min(n, 8)
    k = n // t
    tiles = (
        residual.astype(np.float32, copy=False)
        .reshape(count, k, t, k, t)
        .transpose(0, 1, 3, 2, 4)
        .reshape(-1, t, t)
    )
    matrix = HADAMARD8 if t == 8 else HADAMARD4
    coefs = matrix @ tiles @ matrix
    return np.abs(coefs).reshape(count, -1).sum(axis=1)


def pick(cand, sad, lam, anchor, unit):
    """The candidate of least SAD + lam * vector bits against an anchor [B, 2], of candidate
    vectors given as their rows [B, K] and columns [B, K] (``cand``) with SADs [B, K]."""
    rows, cols = cand
    bits = vector_bits((rows - anchor[:, :1]) * unit, (cols - anchor[:, 1:]) * unit)
    cost = sad + lam * bits
    best = np.argmin(cost, axis=1)
    everyone = np.arange(rows.shape[0])
    return np.stack([rows[everyone, best], cols[everyone, best]], axis=1), cost[everyone, best]


def grid_predictor(vectors, shape):
    """Median of the left, above and above-right vectors of each block of a grid [B, 2]."""
    field = vectors.reshape(shape[0], shape[1], 2)
    padded = np.empty((shape[0] + 1, shape[1] + 2, 2), dtype=field.dtype)  # edges repeated
    padded[1:, 1:-1] = field
    padded[0, 1:-1] = field[0]
    padded[:, 0] = padded[:, 1]
    padded[:, -1] = padded[:, -2]
    left = padded[1:, :-2]
    above = padded[:-1, 1:-1]
    right = padded[:-1, 2:]
    out = np.maximum(np.minimum(left, above), np.minimum(np.maximum(left, above), right))
    return out.reshape(-1, 2)


def neighbourhood(field, radius=1):
    """[rows, cols, K, 2]: the vectors of each cell and its neighbours (edge-clamped)."""
    rows, cols, _ = field.shape
    out = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            ry = np.clip(np.arange(rows) + dy, 0, rows - 1)
            rx = np.clip(np.arange(cols) + dx, 0, cols - 1)
            out.append(field[ry][:, rx])
    return np.stack(out, axis=2)


class MotionSearch:
    """Hierarchical block motion search of one source picture against one reference."""

    def __init__(self, source_y, reference, lam, search_range, subpel):
        self.src64 = source_y.astype(np.float32) * 64  # in 1/64 units, as fetched predictions
        self.src_int = source_y.astype(np.int16)
        self.ref = reference
        self.lam = lam
        self.range = search_range
        self.subpel = subpel
        self.height, self.width = source_y.shape

    def run(self):
        """Best vectors (quarter samples) and costs per block size: {n: (mv [B, 2], cost [B])}.

        A pyramid of four levels. Each 32x32 block gets a list of candidate vectors (a few
        centres and the square around them) shared by all its sub-blocks, so one set of
        sub-block SADs gives the SADs of every block size for the same vectors: a full
        search at 1/8 resolution, then +-2 samples around the vectors of the block and its
        neighbours at 1/4, +-1 around each sub-block's own vector at 1/2 and at full size.
        """
        src = [self.src_int]  # samples 0..255 as int16: their differences fit
        ref = [self.ref.extended[0].astype(np.int16)]
        for _ in range(3):
            src.append(np.rint(downsample(src[-1])).astype(np.int16))
            ref.append(np.rint(downsample(ref[-1])).astype(np.int16))
        rows32, cols32 = self.height // 32, self.width // 32
        count32 = rows32 * cols32
        zero = np.zeros((count32, 1, 2), dtype=np.int64)
        # 1/8: full search
        radius = max(1, -(-self.range // 8))
        cand, sads = self.shared_sads(src[3], ref[3], MARGIN // 8, 4, zero, radius, 4)
        mv3 = self.choose(cand, sads[32], 8, (rows32, cols32), zero[:, 0])
        # 1/4: 16x16 and 32x32 around the 3x3 neighbourhood's vectors
        centres = np.concatenate(
            [neighbourhood(mv3.reshape(rows32, cols32, 2)).reshape(count32, -1, 2) * 2, zero],
            axis=1,
        )
        cand, sads = self.shared_sads(src[2], ref[2], MARGIN // 4, 8, centres, 2, 4)
        mv2 = {
            n: self.choose(cand, sads[n], 4, shape, self.spread(mv3 * 2, n))
            for n, shape in self.shapes((16, 32)).items()
        }
        # 1/2: 8x8, 16x16, 32x32 around the children's and the block's own vectors
        centres = np.concatenate([self.children(mv2[16], 16) * 2, mv2[32][:, None] * 2], axis=1)
        cand, sads = self.shared_sads(src[1], ref[1], MARGIN // 2, 16, centres, 1, 4)
        mv1 = {
            8: self.choose(
                cand,
                sads[8],
                2,
                (self.height // 8, self.width // 8),
                self.spread(mv2[16] * 2, 8, 16),
            )
        }
        mv1.update(
            {
                n: self.choose(cand, sads[n], 2, shape, mv2[n] * 2)
                for n, shape in self.shapes((16, 32)).items()
            }
        )
        # full resolution
        centres = np.concatenate(
            [self.children(mv1[16], 16) * 2, mv1[32][:, None] * 2, zero], axis=1
        )
        cand, sads = self.shared_sads(src[0], ref[0], MARGIN, 32, centres, 1, 8)
        result = {}
        for n, shape in self.shapes((8, 16, 32)).items():
            vectors = self.choose(cand, sads[n], 1, shape, mv1[n] * 2)
            ys, xs, _ = grid(self.height, self.width, n)
            if n < 32:
                result[n] = self.refine(n, vectors * 4, (ys, xs), shape)
            else:  # the best of its own vector and its children's refined ones
                options = np.concatenate(
                    [vectors[:, None] * 4, self.children(result[16][0], 16)], axis=1
                )
                result[n] = self.best_vector(
                    n, (ys, xs), options, grid_predictor(vectors * 4, shape)
                )
        return result

    def best_vector(self, n, positions, options, anchor):
        """The best of candidate vectors [B, C, 2] (quarter samples) by SATD and vector bits."""
        ys, xs = positions
        src = block_view(self.src64, n)[ys, xs]
        costs, rates = [], []
        for c in range(options.shape[1]):
            cand = options[:, c]
            rates.append(
                self.lam * vector_bits(cand[:, 0] - anchor[:, 0], cand[:, 1] - anchor[:, 1])
            )
            costs.append(self.satd(n, ys, xs, cand, src) / 64.0 + rates[-1])
        costs, rates = np.stack(costs), np.stack(rates)
        best = np.argmin(costs, axis=0)
        everyone = np.arange(ys.size)
        return (
            options[everyone, best],
            costs[best, everyone],
            costs[best, everyone] - rates[best, everyone],
        )

    def spread(self, vectors, n, source=32):
        """Vectors of a grid of ``source`` blocks repeated onto the grid of n x n blocks."""
        factor = source // n
        grid_ = vectors.reshape(self.height // source, self.width // source, 2)
        return grid_.repeat(factor, axis=0).repeat(factor, axis=1).reshape(-1, 2)

    def shapes(self, sizes):
        """Grid shapes (rows, cols) of block sizes."""
        return {n: (self.height // n, self.width // n) for n in sizes}

    def children(self, vectors, n):
        """The vectors of the four n x n blocks inside each 32x32 block [B32, 4, 2] (n = 16)."""
        rows32, cols32 = self.height // 32, self.width // 32
        return vectors.reshape(rows32, 2, cols32, 2, 2).transpose(0, 2, 1, 3, 4).reshape(-1, 4, 2)

    def choose(self, cand, sads, scale, shape, anchor):
        """Vectors (in units of this level) for a block size, preferring smooth fields.

        ``cand`` [B32, K, 2] are the shared candidates and ``sads`` [rows, cols, K] the
        SADs of one block size; vector bits are measured at full resolution (``scale``).
        """
        rows, cols = shape
        per32 = (rows * cols) // cand.shape[0]
        factor = int(round(per32**0.5))
        owner = (np.arange(rows)[:, None] // factor) * (cols // factor) + np.arange(cols)[
            None, :
        ] // factor
        owner = owner.reshape(-1)
        block_cand = (cand[:, :, 0][owner], cand[:, :, 1][owner])
        flat = sads.reshape(rows * cols, -1).astype(np.float64)
        lam = self.lam / (scale * scale)
        start = anchor if anchor is not None else np.zeros((rows * cols, 2), dtype=np.int64)
        vectors, _ = pick(block_cand, flat, lam, start, 4 * scale)
        vectors, _ = pick(block_cand, flat, lam, grid_predictor(vectors, shape), 4 * scale)
        return vectors

    def shared_sads(self, src, ref, margin, block, centres, radius, sub):
        """SADs of candidate vectors shared within 32x32 blocks (``block`` at this level).

        Returns the candidates [B32, K, 2] (centres plus the square of ``radius``) and, per
        block size at full resolution (sub-blocks ``sub`` and their sums), the SADs
        [rows, cols, K]. Each centre's window is fetched once with a border.
        """
        height, width = src.shape
        ys, xs, (rows, cols) = grid(height, width, block)
        r, c = block_index(ys, xs, block)
        source = src[r, c]
        size = block + 2 * radius
        offsets = square(radius)
        shift_y, shift_x = offsets[:, 0] + radius, offsets[:, 1] + radius
        k_sub = block // sub
        out = np.zeros((ys.size, k_sub, k_sub, centres.shape[1], len(offsets)), dtype=np.int32)
        for k in range(centres.shape[1]):
            # a centre equal to an earlier one of the same block reuses that one's SADs
            same = (centres[:, : k + 1] == centres[:, k : k + 1]).all(axis=2)
            first = same.argmax(axis=1)
            new = np.nonzero(first == k)[0]
            old = np.nonzero(first != k)[0]
            out[old, :, :, k] = out[old, :, :, first[old]]
            if new.size == 0:
                continue
            top = ys[new] + margin + centres[new, k, 0] - radius
            left = xs[new] + margin + centres[new, k, 1] - radius
            if len(offsets) <= 9:  # few offsets of large blocks: each from a slice of the windows
                window = windows(ref, top, left, size)
                for o, (y, x) in enumerate(zip(shift_y, shift_x, strict=True)):
                    diff = np.abs(window[:, y : y + block, x : x + block] - source[new])
                    out[new, :, :, k, o] = group_sums(diff.astype(np.float32), sub)
                continue
            # many offsets: all at once, in chunks of bounded size
            chunk = max(1, (1 << 21) // (len(offsets) * block * block))
            for part in range(0, new.size, chunk):
                which = new[part : part + chunk]
                window = windows(ref, top[part : part + chunk], left[part : part + chunk], size)
                moved = block_view(window, block)[:, shift_y, shift_x]
                diff = np.abs(moved - source[which][:, None]).astype(np.float32)
                out[which, :, :, k] = group_sums(diff, sub).transpose(0, 2, 3, 1)
        sads = out.reshape(rows, cols, k_sub, k_sub, -1).transpose(0, 2, 1, 3, 4)
        sads = sads.reshape(rows * k_sub, cols * k_sub, -1)
        cand = (centres[:, :, None, :] + offsets[None, None, :, :]).reshape(centres.shape[0], -1, 2)
        full = sub * (32 // block)  # the sub-block size at full resolution
        result = {full: sads}
        while full < 32:
            h, w, kk = sads.shape
            sads = sads.reshape(h // 2, 2, w // 2, 2, kk).sum(axis=(1, 3))
            full *= 2
            result[full] = sads
        return cand, result

    def satd(self, n, ys, xs, vectors, src):
        """SATD [B] of the luma predictions at ``vectors`` (quarter samples) against the
        source blocks ``src`` (float32 in 1/64 units: the difference is exact)."""
        pred = fetch(self.ref, 0, ys, xs, n, vectors[:, 0], vectors[:, 1], np.float32)
        pred -= src
        return satd(pred)

    def refine(self, n, mv, positions, shape):
        """Half- then quarter-sample refinement of vectors (quarter-sample units)."""
        ys, xs = positions
        src = block_view(self.src64, n)[ys, xs]
        best = mv.copy()
        anchor = grid_predictor(mv, shape)
        best_cost = None
        steps = (2, 1)[: self.subpel]
        for step in (0, *steps):
            offsets = (
                (square(1)[1:] if step == 1 else CROSS) * step
                if step
                else np.zeros((1, 2), dtype=np.int64)
            )
            centre = best.copy()
            for dy, dx in offsets:
                cand = centre + np.array([dy, dx])
                rate = self.lam * vector_bits(cand[:, 0] - anchor[:, 0], cand[:, 1] - anchor[:, 1])
                cost = self.satd(n, ys, xs, cand, src) / 64.0 + rate
                if best_cost is None:
                    best_cost, best_rate = cost, rate
                    continue
                better = cost < best_cost
                best = np.where(better[:, None], cand, best)
                best_cost = np.where(better, cost, best_cost)
                best_rate = np.where(better, rate, best_rate)
        return best, best_cost, best_cost - best_rate


# =============================================================================================
# Encoder: inter decisions (modes, merge, quadtree) by rate-distortion cost
# =============================================================================================


def cell_lookup(dirs, mvs, cy, cx):
    """Motions [B, 5] of cells (missing: direction 0) from field arrays."""
    rows, cols = dirs.shape
    inside = (cy >= 0) & (cy < rows) & (cx >= 0) & (cx < cols)
    ry, rx = np.minimum(np.maximum(cy, 0), rows - 1), np.minimum(np.maximum(cx, 0), cols - 1)
    out = np.zeros((cy.size, 5), dtype=np.int64)
    out[:, 0] = np.where(inside, dirs[ry, rx], 0)
    out[:, 1:] = np.where(inside[:, None], mvs[ry, rx], 0)
    return out


def median_predictor(neigh, lst, ratio=None):
    """Vector predictors [B, 2] of one list from neighbour motions [B, 3, 5] (median rule);
    with ``ratio`` (target / source distance) a neighbour's other list lends a scaled vector."""
    has = (neigh[:, :, 0] & (lst + 1)) != 0
    vec = np.where(has[:, :, None], neigh[:, :, 1 + 2 * lst : 3 + 2 * lst], 0)
    if ratio is not None:
        other = 1 - lst
        lend = ~has & ((neigh[:, :, 0] & (other + 1)) != 0)
        scaled = np.rint(neigh[:, :, 1 + 2 * other : 3 + 2 * other] * ratio).astype(np.int64)
        vec = np.where(lend[:, :, None], scaled, vec)
        has = has | lend
    count = has.sum(axis=1)
    single = vec.sum(axis=1)  # the only present vector when count == 1
    a, b, c = vec[:, 0], vec[:, 1], vec[:, 2]
    med = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))  # median of three
    return np.where((count == 1)[:, None], single, med)


def take_rows(nested, index):
    """Nested tuples/lists of arrays with the rows ``index`` of each array."""
    if isinstance(nested, tuple | list):
        return type(nested)(take_rows(a, index) for a in nested)
    return nested[index]


def concat_rows(parts):
    """Nested tuples/lists of arrays, each the concatenation of the parts' arrays."""
    if isinstance(parts[0], tuple | list):
        return type(parts[0])(concat_rows(group) for group in zip(*parts, strict=True))
    return np.concatenate(parts)


def splice(old, new, index):
    """Copy of nested tuples/lists of arrays ``old`` with rows ``index`` taken from ``new``."""
    if isinstance(old, tuple | list):
        return type(old)(splice(a, b, index) for a, b in zip(old, new, strict=True))
    out = old.copy()
    out[index] = new
    return out


class InterEncoder(PictureEncoder):
    """Decisions of a P or B picture: motion search, candidates, RD costs and the quadtree."""

    def __init__(self, source, frame, models, params, chroma_qp, size, refs, collocated, ref_pocs):
        super().__init__(source, frame, models, params, chroma_qp, size)
        self.refs = refs
        self.collocated = collocated
        self.ref_pocs = ref_pocs
        self.bi = frame.kind == "B"
        self.lam_sad = math.sqrt(self.lam)
        self.temporal = {}  # block size -> temporal merge candidates of the grid

    def analyse(self, min_cu, merge_size, make_field):
        """Fill the frame's units, modes, motions, cbfs and inter levels; return the splits.

        Merge candidates and vector predictors depend on the neighbours' final motion, so
        the decision runs twice: first against a field estimated from the motion search,
        then against the field that the first decision actually produces.
        """
        height, width = self.source[0].shape
        search_range, subpel = int(self.params["search_range"]), int(self.params["subpel"])
        searches = [
            None
            if ref is None
            else MotionSearch(
                self.source[0],
                ref,
                self.lam_sad,
                min(search_range * abs(self.frame.poc - ref.poc), 128),
                subpel,
            ).run()
            for ref in self.refs
        ]
        self.sizes = (32, 16, 8) if min_cu == 8 else (32, 16)
        self.searched, self.known = {}, {}
        for n in self.sizes:
            ys, xs, _ = grid(height, width, n)
            found = {}
            mv0, cost0, _ = searches[0][n]
            found["L0"] = (self.motions(1, mv0, None), cost0)
            if self.bi:
                mv1, cost1, _ = searches[1][n]
                found["L1"] = (self.motions(2, None, mv1), cost1)
                both = self.motions(3, mv0, mv1)
                found["BI"] = (
                    both,
                    self.satd(ys, xs, n, both)
                    + cost0
                    + cost1
                    - searches[0][n][2]
                    - searches[1][n][2],
                )
            # the cheapest few by SATD and vector bits go on to the full RD comparison
            motions = np.stack([m for m, _ in found.values()])
            rough = np.stack([c for _, c in found.values()])
            order = np.argsort(rough, axis=0, kind="stable")[: int(self.params["inter_shortlist"])]
            everyone = np.arange(ys.size)
            shortlist = [motions[order[rank], everyone] for rank in range(order.shape[0])]
            preds = predict_inter(self.refs, ys, xs, n, shortlist[0])
            measured = [self.plane_rd(ys, xs, n, shortlist[0], preds=preds)]
            measured += [self.plane_rd(ys, xs, n, m) for m in shortlist[1:]]
            rd = [self.unit_rd(planes, n, False, 0.0) for planes in measured]
            self.searched[n] = (ys, xs, shortlist, rd)
            self.known[n] = [(shortlist[0], measured[0])]  # for candidates with the same motion
            if n == 16:
                best16, preds16 = shortlist[0], preds
                self.inter_rough16 = rough[order[0], everyone]
        ys16, xs16 = self.searched[16][0], self.searched[16][1]
        self.rough = self.rough_reconstruction(ys16, xs16, preds16)
        cells = best16.reshape(height // 16, width // 16, 5).repeat(2, axis=0).repeat(2, axis=1)
        dirs, mvs = cells[:, :, 0].copy(), cells[:, :, 1:].copy()
        self.intra_costs = None
        self.merge_sads, self.merge_results = {}, {}
        frame = self.frame
        tolerance = int(self.params["merge_tolerance"])
        for final in (False, True):
            split32, split16 = self.decide(dirs, mvs, merge_size, min_cu, height, width, final)
            field = make_field(frame)
            resolve_motion(
                field,
                frame.units,
                frame.modes,
                frame.merge_index,
                frame.mvd,
                frame.motions,
                True,
                frame.planned_merge,
                tolerance,
            )
            dirs, mvs = field_arrays(field)
        self.code_residuals()
        return split32, split16, field

    def code_residuals(self):
        """Levels, cbfs and rootcbf of every inter unit for its final motion."""
        frame = self.frame
        frame.levels = {}
        self.predictions = {}  # unit size -> the inter units' predictions (for reconstruct_inter)
        for n, (ks, ys, xs) in inter_units(frame).items():
            preds = predict_inter(self.refs, ys, xs, n, frame.motions[ks])
            self.predictions[n] = preds
            _, root, cbf, levels = self.inter_rd(
                ys, xs, n, frame.motions[ks], 0.0, frame.modes[ks] == MERGE, True, preds
            )
            whole, split, subs, sub_cbf = levels[0]
            frame.rootcbf[ks] = root
            frame.cbf[ks] = cbf
            frame.tu_split[ks] = split * cbf[:, 0]
            frame.sub_cbf[ks] = sub_cbf * frame.tu_split[ks][:, None]
            for i, k in enumerate(ks):
                k = int(k)
                if cbf[i, 0] and split[i]:
                    for sub in range(4):
                        if sub_cbf[i, sub]:
                            frame.levels[(k, 0, sub)] = subs[i, sub]
                elif cbf[i, 0]:
                    frame.levels[(k, 0, 0)] = whole[i]
                for plane in (1, 2):
                    if cbf[i, plane]:
                        frame.levels[(k, plane, 0)] = levels[plane][i]

    def decide(self, dirs, mvs, merge_size, min_cu, height, width, final):
        """One RD decision of every block size against a motion field; fills the frame."""
        lc = self.frame.layer_class
        mode_costs = self.models.mode.costs()
        results = {}
        lam = self.lam
        for n in self.sizes:
            ys, xs, motions_list, rd = self.searched[n]
            size_class = SIZE_CLASS[n]
            col = np.zeros(ys.size, dtype=np.int64)
            if self.frame.context is not None:
                col = self.frame.context.kind[(ys + n // 2) >> 3, (xs + n // 2) >> 3]
            costs = mode_costs[(lc * 3 + size_class) * 4 + col].T  # [mode, block]
            cy, cx, cs = ys >> 3, xs >> 3, n >> 3
            neigh = np.stack([
                cell_lookup(dirs, mvs, cy + cs - 1, cx - 1),
                cell_lookup(dirs, mvs, cy - 1, cx + cs - 1),
                cell_lookup(dirs, mvs, cy - 1, cx + cs),
            ], axis=1)  # fmt: skip
            options, totals = [], []
            for motions, evaluated in zip(motions_list, rd, strict=True):
                bits = costs[motions[:, 0], np.arange(ys.size)]
                for lst in (0, 1):
                    uses = (motions[:, 0] & (lst + 1)) != 0
                    delta = motions[:, 1 + 2 * lst : 3 + 2 * lst] - median_predictor(
                        neigh, lst, self.lend_ratio(lst)
                    )
                    bits = bits + np.where(uses, self.mvd_bits(delta, size_class), 0.0)
                options.append((motions, evaluated))
                totals.append(evaluated[0] + lam * bits)
            if final:  # the best direction with the predictors themselves: no difference to code
                guessed = motions_list[0].copy()
                bits = costs[guessed[:, 0], np.arange(ys.size)]
                for lst in (0, 1):
                    uses = (guessed[:, 0] & (lst + 1)) != 0
                    guessed[:, 1 + 2 * lst : 3 + 2 * lst] = np.where(
                        uses[:, None], median_predictor(neigh, lst, self.lend_ratio(lst)), 0
                    )
                    bits = bits + np.where(
                        uses, self.mvd_bits(np.zeros((ys.size, 2), np.int64), size_class), 0.0
                    )
                evaluated = self.cached_rd("guess", ys, xs, n, guessed, False)
                self.known[n].append((guessed, self.merge_results[("guess", n)][1]))
                options.append((guessed, evaluated))
                totals.append(evaluated[0] + self.lam * bits)
            merge_motions, merge_bits, luma = self.best_merge(ys, xs, n, dirs, mvs, merge_size)
            evaluated = self.cached_rd("merge", ys, xs, n, merge_motions, True, luma)
            options.append((merge_motions, evaluated))
            totals.append(evaluated[0] + lam * (merge_bits + costs[MERGE]))
            total = np.stack(totals)
            choice = np.argmin(total, axis=0)
            best = total[choice, np.arange(ys.size)]
            if n == 16 and self.params["intra_inter"]:
                if self.intra_costs is None:
                    self.intra_costs = self.intra_estimate(ys, xs)
                intra_cost = self.intra_costs + self.lam * costs[INTRA]
                choice = np.where(intra_cost < best, len(options), choice)
                best = np.minimum(best, intra_cost)
            results[n] = (best, choice, options)
        split32, split16 = self.quadtree(results, height, width, min_cu, lam)
        self.assemble(results, split32, split16, width)
        return split32, split16

    def lend_ratio(self, lst):
        """Distance ratio that scales the other list's vector into list ``lst`` (B only)."""
        if not self.bi:
            return None
        return (self.frame.poc - self.ref_pocs[lst]) / (self.frame.poc - self.ref_pocs[1 - lst])

    def motions(self, direction, mv0, mv1):
        """Motion rows [B, 5] from vectors of the lists used."""
        count = (mv0 if mv0 is not None else mv1).shape[0]
        out = np.zeros((count, 5), dtype=np.int64)
        out[:, 0] = direction
        if mv0 is not None:
            out[:, 1:3] = mv0
        if mv1 is not None:
            out[:, 3:5] = mv1
        return out

    def sad(self, ys, xs, n, pred):
        """Luma SAD [B] of motion-compensated predictions [B, n, n]."""
        diff = np.abs(pred - block_view(self.source[0], n)[ys, xs])
        return diff.reshape(ys.size, -1).sum(axis=1).astype(np.float64)

    def satd(self, ys, xs, n, motions):
        """Luma SATD [B] of motion-compensated predictions."""
        pred = predict_inter(self.refs, ys, xs, n, motions, planes=(0,))[0]
        rows, cols = block_index(ys, xs, n)
        return satd(pred - self.source[0][rows, cols])

    def mvd_bits(self, delta, size_class):
        """Estimated bits of vector differences [B, 2] with the live vector model."""
        costs = self.models.mvd.costs()
        bits = np.zeros(delta.shape[0])
        for component in (0, 1):
            magnitude = np.abs(delta[:, component])
            bits += magnitude_bits(magnitude, costs[component * 3 + size_class], MVD_EXACT) + (
                magnitude > 0
            )
        return bits

    def temporal_candidates(self, n):
        """Scaled collocated motion at the centre of each n x n block of the grid [B, 5]
        (direction 0: none), made once per size."""
        if n not in self.temporal:
            self.temporal[n] = self.scaled_collocated(*grid(*self.source[0].shape, n)[:2], n)
        return self.temporal[n]

    def scaled_collocated(self, ys, xs, n):
        """Scaled collocated motion at each block's centre [B, 5] (direction 0: none)."""
        out = np.zeros((ys.size, 5), dtype=np.int64)
        col = self.collocated
        if col is None or col.motion is None:
            return out
        col_pocs = col.motion[1]
        dirs, mvs = col.motion_arrays
        cy = np.minimum((ys + n // 2) >> 3, dirs.shape[0] - 1)
        cx = np.minimum((xs + n // 2) >> 3, dirs.shape[1] - 1)
        d = dirs[cy, cx]
        lst = np.where(d & 1, 0, 1)
        mv = np.where((lst == 0)[:, None], mvs[cy, cx, 0:2], mvs[cy, cx, 2:4])
        distance = col.poc - np.array(col_pocs, dtype=np.float64)[lst]
        distance = np.where(distance == 0, 1.0, distance)
        out[:, 0] = np.where(d > 0, 3 if self.bi else 1, 0)
        for target in range(2 if self.bi else 1):
            gap = self.frame.poc - self.ref_pocs[target]
            scaled = np.round(mv * (gap / distance)[:, None]).astype(np.int64)
            out[:, 1 + 2 * target : 3 + 2 * target] = np.where((d > 0)[:, None], scaled, 0)
        return out

    def best_merge(self, ys, xs, n, dirs, mvs, size):
        """The best merge candidate of each block by SAD, from the approximate field."""
        cy, cx, cs = ys >> 3, xs >> 3, n >> 3
        listed = np.stack([
            cell_lookup(dirs, mvs, cy + cs - 1, cx - 1),
            cell_lookup(dirs, mvs, cy - 1, cx + cs - 1),
            cell_lookup(dirs, mvs, cy - 1, cx + cs), cell_lookup(dirs, mvs, cy - 1, cx - 1),
            self.temporal_candidates(n),
        ], axis=1)  # fmt: skip
        available = listed[:, :, 0] > 0
        order = np.argsort(~available, axis=1, kind="stable")[:, :size]
        chosen = np.take_along_axis(listed, order[:, :, None], axis=1)
        zero = np.array([3 if self.bi else 1, 0, 0, 0, 0])
        chosen = np.where((chosen[:, :, 0] > 0)[:, :, None], chosen, zero)
        index_costs = self.models.merge.costs()[SIZE_CLASS[n]]
        previous = self.merge_sads.get(n)
        if previous is None:
            sads = np.zeros((size, ys.size))
            preds = np.zeros((size, ys.size, n, n), dtype=np.int32)
            wanted = np.ones((ys.size, size), dtype=bool)
        else:  # only candidates that changed since the last decision are measured again
            _, sads, preds = previous  # updated in place (nothing else holds them)
            wanted = (chosen != previous[0]).any(axis=2)
        # a candidate equal to an earlier one of its block has the same SAD and prediction
        first = np.tile(np.arange(size), (ys.size, 1))
        for slot in range(size - 1, 0, -1):
            for earlier in range(slot - 1, -1, -1):  # ends at the first equal candidate
                same = (chosen[:, slot] == chosen[:, earlier]).all(axis=1)
                first[same, slot] = earlier
        repeated = first < np.arange(size)[None, :]
        blocks, slots = np.nonzero(wanted & ~repeated)
        if blocks.size:
            motions = chosen[blocks, slots]
            pred = predict_inter(self.refs, ys[blocks], xs[blocks], n, motions, planes=(0,))[0]
            preds[slots, blocks] = pred
            sads[slots, blocks] = self.sad(ys[blocks], xs[blocks], n, pred)
        blocks, slots = np.nonzero(wanted & repeated)
        if blocks.size:
            sads[slots, blocks] = sads[first[blocks, slots], blocks]
            preds[slots, blocks] = preds[first[blocks, slots], blocks]
        self.merge_sads[n] = (chosen, sads, preds)
        pick = np.argmin(sads + self.lam_sad * index_costs[:size, None], axis=0)
        everyone = np.arange(ys.size)
        return chosen[everyone, pick], index_costs[pick], preds[pick, everyone]

    def cached_rd(self, kind, ys, xs, n, motions, merged, luma=None):
        """RD of each block's candidate of a kind, measured again only where it changed, and
        only where no measured candidate of the block (``known``) has the same motion. With
        ``luma``, the candidates' luma predictions [B, n, n]."""
        count = ys.size
        previous = self.merge_results.get((kind, n))
        if previous is None:
            changed, planes = np.arange(count), None
        else:
            old_motions, planes = previous
            changed = np.nonzero((motions != old_motions).any(axis=1))[0]
        if changed.size:
            # a 32x32 transform alone takes another path of the matrix product than in a batch
            # (not always the same float32 result): measurements move only between batches
            alone = n == 32 and changed.size == 1
            found = np.zeros(changed.size, dtype=bool)
            parts = []  # (places in ``changed``, their measurements)
            if not alone or count == 1:
                for known_motions, known in self.known[n]:
                    same = (motions[changed] == known_motions[changed]).all(axis=1) & ~found
                    if same.any():
                        parts.append((np.flatnonzero(same), take_rows(known, changed[same])))
                        found |= same
            rest = np.flatnonzero(~found)
            if rest.size:
                pad = n == 32 and rest.size == 1 and not alone  # measured in a batch of two
                which = changed[np.repeat(rest, 2) if pad else rest]
                part = self.plane_rd(
                    ys[which],
                    xs[which],
                    n,
                    motions[which],
                    luma=None if luma is None else luma[which],
                )
                parts.append((rest, take_rows(part, np.arange(1)) if pad else part))
            new = parts[0][1]
            if len(parts) > 1:  # the parts' rows put back in the order of ``changed``
                order = np.argsort(np.concatenate([places for places, _ in parts]))
                new = take_rows(concat_rows([part for _, part in parts]), order)
            planes = new if planes is None else splice(planes, new, changed)
        self.merge_results[(kind, n)] = (motions, planes)
        return self.unit_rd(planes, n, merged, 0.0)

    def inter_rd(self, ys, xs, n, motions, side_bits, merged, final=False, preds=None):
        """RD cost [B] of inter candidates, with their rootcbf, cbfs [B, 3] and levels."""
        planes = self.plane_rd(ys, xs, n, motions, final, preds=preds)
        return self.unit_rd(planes, n, merged, side_bits)

    def plane_rd(self, ys, xs, n, motions, final=False, luma=None, preds=None):
        """The residual of inter candidates, plane by plane (``luma``: their luma predictions
        when known; ``preds``: all three): per plane the distortion [B] and bits [B] as
        chosen (coded or not), the distortion when not coded [B], whether it is coded [B]
        and the levels."""
        if preds is None and luma is None:
            preds = predict_inter(self.refs, ys, xs, n, motions)
        elif preds is None:
            preds = [luma, *predict_inter(self.refs, ys, xs, n, motions, planes=(1, 2))]
        size_class = SIZE_CLASS[n]
        coded_d, skip_d, bits, coded, all_levels = [], [], [], [], []
        rdoq = self.rdoq if final or self.params["rdoq_decisions"] else 0
        for plane in range(3):
            size = n if plane == 0 else n // 2
            py, px = (ys, xs) if plane == 0 else (ys // 2, xs // 2)
            src = self.source_blocks(plane, py, px, size, preds[plane])
            residual = np.subtract(src, preds[plane], dtype=np.float32)  # exact: small integers
            coefs = forward_dct(residual)
            group = group_of(min(plane, 1), size, False)
            step = self.steps[min(plane, 1)]
            levels = quantise(coefs, step, self.lam, self.models.coefficients, size, group, rdoq)
            level_cost, d_coded = self.coded_costs(coefs, levels, step, size, group)
            d_skip = (coefs**2).reshape(ys.size, -1).sum(axis=1)
            use = (d_coded + self.lam * level_cost < d_skip) & (level_cost > 0)
            chosen_d, chosen_bits = np.where(use, d_coded, d_skip), np.where(use, level_cost, 0.0)
            if plane == 0:
                split = self.split_luma(
                    residual, size, step, rdoq, size_class, use | (d_skip > self.lam * 4)
                )
                whole_cost = chosen_d + self.lam * (chosen_bits + split[4][0] * use)
                take = split[0] & (split[1] + self.lam * split[2] < whole_cost)
                chosen_d = np.where(take, split[1], chosen_d)
                chosen_bits = np.where(take, split[2], chosen_bits + split[4][0] * use)
                use = use | take
                levels = (levels, take.astype(np.int64), split[3], split[5])
            coded_d.append(chosen_d)
            skip_d.append(d_skip)
            bits.append(chosen_bits)
            coded.append(use)
            all_levels.append(levels)
        return coded_d, skip_d, bits, coded, all_levels

    def unit_rd(self, planes, n, merged, side_bits):
        """RD cost [B] of inter candidates from their ``plane_rd``, with the rootcbf [B],
        cbfs [B, 3] and levels."""
        coded_d, skip_d, bits, coded, all_levels = planes
        lc = self.frame.layer_class
        size_class = SIZE_CLASS[n]
        count = coded_d[0].size
        cbf = np.stack(coded, axis=1).astype(np.int64)
        joint = cbf @ np.array([1, 2, 4])
        merged = np.asarray(merged, dtype=np.int64) * np.ones(count, dtype=np.int64)
        root_costs = self.models.rootcbf.costs()[(merged * 3 + size_class) * LAYER_CLASSES + lc].T
        cbf_costs = self.models.cbf.costs()[size_class * LAYER_CLASSES + lc]
        extra = root_costs[1] + cbf_costs[np.maximum(joint - 1, 0)]
        coded_cost = sum(coded_d) + self.lam * (sum(bits) + extra + side_bits)
        skip_cost = sum(skip_d) + self.lam * (root_costs[0] + side_bits)
        root = (joint > 0) & (coded_cost < skip_cost)
        cost = np.where(root, coded_cost, skip_cost)
        cbf = np.where(root[:, None], cbf, 0)
        return cost, root.astype(np.int64), cbf, all_levels

    def coded_costs(self, coefs, levels, step, n, group):
        """Estimated bits [B] of the blocks' levels and the squared error [B] of coding them:
        inf for all-zero blocks, which are never coded (only the others are measured)."""
        count = levels.shape[0]
        bits = np.zeros(count, dtype=np.float32)
        error = np.full(count, np.inf)
        coded = np.flatnonzero(levels.reshape(count, -1).any(axis=1))
        if coded.size:
            levels, coefs = levels[coded], coefs[coded]
            bits[coded] = coded_level_bits(self.models.coefficients, n, group, levels)
            error[coded] = ((coefs - levels * step) ** 2).reshape(coded.size, -1).sum(axis=1)
        return bits, error

    def split_luma(self, residual, n, step, rdoq, size_class, wanted):
        """Luma residual [B, n, n] coded as four n/2 blocks: usable, SSE, bits, levels [B, 4,
        n/2, n/2], split-flag costs, coded flags [B, 4] (bits include the flags). Only the
        ``wanted`` blocks are tried; the others come back unusable."""
        count, half = residual.shape[0], n // 2
        split_costs = self.models.tu_split.costs()[size_class]
        out = (
            np.zeros(count, bool),
            np.zeros(count),
            np.zeros(count),
            np.zeros((count, 4, half, half), np.int64),
            split_costs,
            np.zeros((count, 4), np.int64),
        )
        who = np.nonzero(wanted)[0]
        if who.size == 0:
            return out
        if who.size < count:
            part = self.split_luma(
                residual[who], n, step, rdoq, size_class, np.ones(who.size, bool)
            )
            for index, (target, value) in enumerate(zip(out, part, strict=True)):
                if index != 4:  # the split-flag costs are shared, not per block
                    target[who] = value
            return out
        subs = (
            residual.reshape(count, 2, half, 2, half)
            .transpose(0, 1, 3, 2, 4)
            .reshape(-1, half, half)
        )
        coefs = forward_dct(subs)
        group = group_of(0, half, False)
        levels = quantise(coefs, step, self.lam, self.models.coefficients, half, group, rdoq)
        level_cost, d_coded = self.coded_costs(coefs, levels, step, half, group)
        d_skip = (coefs**2).reshape(count * 4, -1).sum(axis=1)
        use = (d_coded + self.lam * level_cost < d_skip) & (level_cost > 0)
        sse = np.where(use, d_coded, d_skip).reshape(count, 4).sum(axis=1)
        flags = use.reshape(count, 4).astype(np.int64)
        joint = flags @ np.array([1, 2, 4, 8])
        split_costs = self.models.tu_split.costs()[size_class]
        sub_costs = self.models.sub_cbf.costs()[size_class]
        bits = np.where(use, level_cost, 0.0).reshape(count, 4).sum(axis=1)
        bits = bits + sub_costs[np.maximum(joint - 1, 0)] + split_costs[1]
        return joint > 0, sse, bits, levels.reshape(count, 4, half, half), split_costs, flags

    def rough_reconstruction(self, ys, xs, predictions):
        """Planes predicted from the cheapest motion of each 16x16 block (intra estimates),
        from its predictions (y, u, v)."""
        out = [np.zeros(plane.shape, dtype=np.int32) for plane in self.source]
        for plane, prediction in enumerate(predictions):
            size = 16 if plane == 0 else 8
            py, px = (ys, xs) if plane == 0 else (ys // 2, xs // 2)
            rows, cols = block_index(py, px, size)
            out[plane][rows, cols] = prediction
        return out

    def intra_estimate(self, ys, xs):
        """Approximate RD cost of coding 16x16 blocks intra (neighbours: inter predictions).

        Blocks whose DC prediction is far worse (by SATD) than their best inter prediction
        are not considered (infinite cost).
        """
        flags = intra_flags(ys, xs, self.source[0].shape[1])
        above, left = neighbours(self.rough[0], ys, xs, 16, *flags)
        rows, cols = block_index(ys, xs, 16)
        dc = satd(self.source[0][rows, cols] - intra_predict(above, left, 16, 1, LUMA_MODES))
        out = np.full(ys.size, np.inf)
        keep = np.nonzero(dc < self.params["intra_ratio"] * self.inter_rough16)[0]
        if keep.size:
            out[keep] = self.intra_estimate_rd(ys[keep], xs[keep])
        return out

    def intra_estimate_rd(self, ys, xs):
        """The intra estimate of blocks: best of four luma modes and planar chroma by RD."""
        flags = intra_flags(ys, xs, self.source[0].shape[1])
        self.recon = self.rough
        no_costs = np.zeros(len(LUMA_MODES))
        luma = self.intra_blocks(
            0, ys, xs, 16, flags, LUMA_MODES[:4], no_costs, group_of(0, 16, True), np.zeros(2)
        )[0]
        chroma = np.zeros(ys.size)
        for plane in (1, 2):
            chroma += self.intra_blocks(
                plane,
                ys // 2,
                xs // 2,
                8,
                flags,
                CHROMA_MODES[:1],
                no_costs,
                group_of(1, 8, True),
                np.zeros(2),
            )[0]
        luma_costs = self.models.luma_mode.costs()[0]
        return luma + chroma + self.lam * (float(np.min(luma_costs)) + 2.0)

    def quadtree(self, results, height, width, min_cu, lam):
        """Split maps minimising the summed costs (bottom-up); split flags weigh ``lam``."""
        lc = self.frame.layer_class
        context = self.frame.context
        split_costs32 = self.models.split32.costs()[
            lc * 4 + temporal_depth(context, (height // 32, width // 32), 32)
        ]
        split_costs16 = self.models.split16.costs()[
            lc * 4 + temporal_depth(context, (height // 16, width // 16), 16)
        ]
        rows16, cols16 = height // 16, width // 16
        cost16 = results[16][0].reshape(rows16, cols16)
        split16 = np.zeros((rows16, cols16), dtype=np.int64)
        if min_cu == 8:
            children = (
                results[8][0].reshape(rows16, 2, cols16, 2).sum(axis=(1, 3))
                + lam * split_costs16[..., 1]
            )
            whole = cost16 + lam * split_costs16[..., 0]
            split16 = (children < whole).astype(np.int64)
            cost16 = np.minimum(children, whole)
        rows32, cols32 = height // 32, width // 32
        children = (
            cost16.reshape(rows32, 2, cols32, 2).sum(axis=(1, 3)) + lam * split_costs32[..., 1]
        )
        whole = results[32][0].reshape(rows32, cols32) + lam * split_costs32[..., 0]
        split32 = (children < whole).astype(np.int64)
        return split32, split16

    def assemble(self, results, split32, split16, width):
        """Write the chosen units, modes and motions into the frame (residuals come later)."""
        frame = self.frame
        units = coding_units(split32, split16)
        context = frame.context
        frame.__init__(frame.kind, frame.poc, frame.layer, frame.qp, units)
        frame.context = context
        frame.planned_merge = np.zeros(len(units), dtype=bool)
        for k, (y, x, n) in enumerate(units):
            _, choice, options = results[n]
            b = (y // n) * (width // n) + x // n
            c = int(choice[b])
            if c == len(options):
                frame.modes[k] = INTRA
                continue
            motions = options[c][0]
            frame.planned_merge[k] = c == len(options) - 1
            frame.motions[k] = motions[b]
            frame.modes[k] = motions[b, 0]


# =============================================================================================
# Picture structure, bitstream and the codec's two functions
# =============================================================================================


def coding_order(count, groups):
    """(poc, kind, layer, L0 poc, L1 poc) of every picture in coding order.

    ``groups`` are the lengths of the groups of pictures after the first (intra) picture:
    each ends with a P picture and has B pictures in a dyadic hierarchy before it.
    """
    order = [(0, "I", 0, None, None)]

    def middles(low, high, layer):
        if high - low < 2:
            return
        mid = (low + high) // 2
        order.append((mid, "B", layer, low, high))
        middles(low, mid, layer + 1)
        middles(mid, high, layer + 1)

    start = 0
    for length in groups:
        anchor = min(start + length, count - 1)
        order.append((anchor, "P", 1, start, None))
        middles(start, anchor, 2)
        start = anchor
    return order


def code_groups(coder, count, gop, groups=None):
    """Code (or decode) the group lengths, each 1..gop, until they cover every picture."""
    coder.label = "groups"
    out, covered = [], 0
    while covered < count - 1:
        value = None if groups is None else [groups[len(out)] - 1]
        length = int(coder.raw([gop], value)[0]) + 1
        out.append(length)
        covered += length
    return out


def coarse_plane(plane):
    """A luma plane at 1/8 resolution (float32) for the picture-structure analysis."""
    out = plane.astype(np.float32)
    for _ in range(3):
        out = downsample(out)
    return out


def block_search(cur, ref, radius, n=4):
    """Full search per n x n block of ``cur`` within a radius of ``ref`` (analysis planes),
    by SAD plus half a sample of cost per sample of vector length: the least cost
    (float32 [rows, cols]) and its vector (int64 [rows, cols, 2]; the first of least cost
    in the order dy, then dx)."""
    height, width = cur.shape
    rows, cols = height // n, width // n
    cur = cur[: rows * n, : cols * n]
    padded = np.pad(ref[: rows * n, : cols * n], radius, mode="edge")
    shifts = square_offsets(radius)
    moved = block_view(padded, rows * n, cols * n)  # [2r+1, 2r+1, H, W]: every shift
    sads = []
    chunk = max(1, (1 << 20) // cur.size)
    for start in range(0, len(shifts), chunk):
        dy, dx = shifts[start : start + chunk].T
        diff = np.abs(cur - moved[dy + radius, dx + radius])
        sad = diff.reshape(dy.size, rows, n, cols, n).sum(axis=(2, 4))
        sads.append(sad + (0.5 * (np.abs(dy) + np.abs(dx))).astype(np.float32)[:, None, None])
    sads = np.concatenate(sads)
    best = np.argmin(sads, axis=0)
    return np.take_along_axis(sads, best[None], axis=0)[0], shifts[best]


def coarse_vectors(cur, ref, radius):
    """Best integer vector (pixels of the 1/8-resolution planes) per 4x4 block of ``cur``
    within a radius (``block_search``): int64 [rows, cols, 2]."""
    return block_search(cur, ref, radius)[1]


def square_offsets(radius):
    """Offsets (dy, dx) of a (2r+1)^2 square in raster order [K, 2]."""
    span = np.arange(-radius, radius + 1)
    return np.stack(np.meshgrid(span, span, indexing="ij"), axis=-1).reshape(-1, 2)


def sampled_error(cur, ref, vectors, spacing=64, n=16, radius=2):
    """Motion-compensated SAD of a sparse set of n x n luma blocks (one every ``spacing``
    pixels): each starts from its coarse vector (x8) and is refined +-radius at full
    resolution (float, sum over the sampled blocks)."""
    height, width = cur.shape
    ys, xs = np.meshgrid(
        np.arange(0, height - n + 1, spacing), np.arange(0, width - n + 1, spacing), indexing="ij"
    )
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    rows, cols = vectors.shape[:2]
    start = vectors[np.minimum(ys // 32, rows - 1), np.minimum(xs // 32, cols - 1)] * 8
    reach = int(np.abs(start).max(initial=0)) + radius
    padded = np.pad(ref, reach, mode="edge")
    offsets = np.arange(n)
    blocks = cur[ys[:, None, None] + offsets[:, None], xs[:, None, None] + offsets]
    # every shift at once (sums of whole numbers: exact in any order)
    dy, dx = square_offsets(radius).T
    top = (ys + start[:, 0] + reach)[None, :] + dy[:, None]
    left = (xs + start[:, 1] + reach)[None, :] + dx[:, None]
    candidates = block_view(padded, n)[top, left]
    errors = np.abs(blocks - candidates).sum(axis=(2, 3))
    return float(errors.min(axis=0).astype(np.float64).sum())


def choose_groups(luma, gop, b_growth, p_growth, fast_motion):
    """Group lengths from a quick look at the clip: ``gop``, ``gop // 2`` or 1 within each
    span of ``gop`` pictures (the last group of a span is cut to fit).

    For each span, the mean prediction error at distance 4 is compared with that at
    distance 1: it grows like 4**a. Where a is above ``b_growth`` far references predict
    less well and the span uses groups of half the length; where, in addition, the motion
    is fast (mean vector at least ``fast_motion`` pixels a picture) and a is above
    ``p_growth`` (blur, occlusion: bi-prediction does not help), it uses P pictures only.
    The figures of a span are medians over it and its neighbours.
    """
    count = len(luma)
    small, full, cache = {}, {}, {}

    def measure(cur, ref):
        """(sampled prediction error, mean coarse vector length in pixels) of cur from ref."""
        if (cur, ref) not in cache:
            for index in (cur, ref):
                if index not in full:
                    full[index] = luma[index].astype(np.float32)
                    small[index] = coarse_plane(luma[index])
            vectors = coarse_vectors(small[cur], small[ref], min(2 * abs(cur - ref) + 1, 12))
            error = sampled_error(full[cur], full[ref], vectors) + 1.0
            cache[(cur, ref)] = (
                error,
                8.0 * float(np.hypot(vectors[..., 0], vectors[..., 1]).mean()),
            )
        return cache[(cur, ref)]

    starts = list(range(0, count - 1, gop))
    figures = []
    for start in starts:
        span = min(gop, count - 1 - start)
        if span < 4:
            figures.append(None)
            continue
        near = [measure(start + k + 1, start + k) for k in range(span)]
        far = np.mean([measure(start + k + 4, start + k)[0] for k in range(0, span - 3, 4)])
        growth = float(np.log(far / np.mean([e for e, _ in near])) / np.log(4))
        figures.append((growth, float(np.mean([m for _, m in near]))))
    groups = []
    for index, start in enumerate(starts):
        span = min(gop, count - 1 - start)
        window = [f for f in figures[max(0, index - 1) : index + 2] if f is not None]
        length = gop
        if window:
            growth, motion = np.median(window, axis=0)
            if growth > b_growth:
                length = max(1, gop // 2)
            if growth > p_growth and motion >= fast_motion:
                length = 1
        groups += [min(length, span - covered) for covered in range(0, span, length)]
    return groups


def intra_costs(plane, n=4):
    """Rough intra cost per n x n block: the least SAD of a DC, horizontal or vertical
    prediction from the block's outer neighbours (float64 [rows, cols])."""
    height, width = plane.shape
    rows, cols = height // n, width // n
    padded = np.pad(plane[: rows * n, : cols * n], ((1, 0), (1, 0)), mode="edge")
    blocks = padded[1:, 1:].reshape(rows, n, cols, n).transpose(0, 2, 1, 3)
    above = padded[0:-1:n][:rows, 1:].reshape(rows, cols, 1, n)
    left = padded[1:, 0:-1:n][:, :cols].reshape(rows, n, cols).transpose(0, 2, 1)[..., None]
    dc = (above.mean(axis=(2, 3)) + left.mean(axis=(2, 3)))[..., None, None] * 0.5
    costs = [np.abs(blocks - pred).sum(axis=(2, 3)) for pred in (dc, above, left)]
    return np.minimum.reduce(costs) + 4.0


def spread(amount, vectors, n=4):
    """Add each block's ``amount`` to the blocks its n x n reference area overlaps (by area),
    the area displaced by ``vectors`` (samples): float64 [rows, cols]."""
    rows, cols = amount.shape
    out = np.zeros((rows + 1, cols + 1))
    ys = np.arange(rows)[:, None] * n + vectors[..., 0]
    xs = np.arange(cols)[None, :] * n + vectors[..., 1]
    ys = np.clip(ys, 0, (rows - 1) * n)
    xs = np.clip(xs, 0, (cols - 1) * n)
    by, bx = ys // n, xs // n
    fy, fx = (ys - by * n) / n, (xs - bx * n) / n
    for wy, oy in ((1 - fy, 0), (fy, 1)):
        for wx, ox in ((1 - fx, 0), (fx, 1)):
            np.add.at(out, (by + oy, bx + ox), amount * wy * wx)
    return out[:rows, :cols]


def propagation_gains(luma, order):
    """How much of each 16x16 luma block later pictures predict from: log2(1 + received /
    intra) per block, {poc: float64 [rows, cols]}.

    The lookahead works on 1/4-resolution luma in 4x4 blocks. For each picture in reverse
    coding order it estimates each block's intra cost and its best inter cost from its
    references (L0, L1 or their average), and passes the share of the information it takes
    from them (1 - inter/intra) of its own cost plus what it passes on, down to the blocks of
    its references it predicts from (the macroblock-tree of x264).
    """
    small = {}
    for poc, *_ in order:
        small[poc] = downsample(downsample(luma[poc]))
    intra = {poc: intra_costs(plane) for poc, plane in small.items()}
    received = {poc: np.zeros_like(cost) for poc, cost in intra.items()}
    for poc, kind, _, ref0, ref1 in reversed(order):
        if kind == "I":
            continue
        refs = [ref for ref in (ref0, ref1) if ref is not None]
        found = [
            block_search(small[poc], small[ref], min(2 * abs(poc - ref) + 2, 12)) for ref in refs
        ]
        costs = [cost.astype(np.float64) for cost, _ in found]
        if len(found) == 2:
            (_, v0), (_, v1) = found
            rows, cols = costs[0].shape
            average = 0.5 * (
                motion_blocks(small[ref0], v0, rows, cols)
                + motion_blocks(small[ref1], v1, rows, cols)
            )
            blocks = small[poc][: rows * 4, : cols * 4].reshape(rows, 4, cols, 4)
            costs.append(np.abs(blocks.transpose(0, 2, 1, 3) - average).sum(axis=(2, 3)))
        inter = np.minimum.reduce(costs)
        share = np.clip(1.0 - inter / intra[poc], 0.0, 1.0)
        amount = (intra[poc] + received[poc]) * share
        # a tie goes to the average of both references (the last choice first)
        choice = len(costs) - 1 - np.argmin(np.stack(costs[::-1]), axis=0)
        for k, (ref, (_, vectors)) in enumerate(zip(refs, found, strict=True)):
            weight = (choice == k) + 0.5 * (choice == 2)
            received[ref] += spread(amount * weight, vectors)
    return {poc: np.log2(1.0 + received[poc] / cost) for poc, cost in intra.items()}


def picture_offset(gain, strength):
    """QP offset of a picture from its blocks' propagation gains: -strength * their mean,
    rounded, within -MAX_QP_DROP..0 (pictures much of the clip is predicted from get finer
    steps)."""
    return int(min(max(-round(strength * float(np.mean(gain))), -MAX_QP_DROP), 0))


def propagation_offsets(luma, order, strength):
    """QP offset of each picture (by poc) from how much later pictures predict from it."""
    gains = propagation_gains(luma, order)
    return {poc: picture_offset(gain, strength) for poc, gain in gains.items()}


def motion_blocks(plane, vectors, rows, cols, n=4):
    """The n x n blocks of ``plane`` displaced by ``vectors`` [rows, cols, n, n] (clamped)."""
    ys = np.arange(rows)[:, None] * n + vectors[..., 0]
    xs = np.arange(cols)[None, :] * n + vectors[..., 1]
    return windows(np.ascontiguousarray(plane), ys, xs, n)


def code_qp_offsets(coder, order, offsets=None):
    """Code (or decode) the QP offset of each picture in coding order (-MAX_QP_DROP..0):
    {poc: offset}."""
    coder.label = "qp offsets"
    values = None if offsets is None else [-offsets[poc] for poc, *_ in order]
    coded = coder.raw(np.full(len(order), MAX_QP_DROP + 1), values)
    return {poc: -int(value) for (poc, *_), value in zip(order, coded, strict=True)}


def picture_qp(base, kind, layer, qp_i_offset, layer_step):
    """QP of a picture: the base, an offset for I pictures, a step per hierarchy level."""
    if kind == "I":
        return int(min(max(base + qp_i_offset, 0), 63))
    return int(min(max(base + round(layer_step * layer), 0), 63))


def pad_plane(plane, height, width):
    """Edge-extend a plane to a size (int32)."""
    h, w = plane.shape
    return np.pad(plane, ((0, height - h), (0, width - w)), mode="edge").astype(np.int32)


class Stream:
    """Bitstream-level settings, written in the header and read back by the decoder.

    ``fields`` holds the values of HEADER_FIELDS by name; ``params`` is the decoder's copy of
    the PARAMS they carry (TOOL_BITS taken out of "tools").
    """

    def __init__(self, fields):
        self.fields = fields
        self.width, self.height, self.count = fields["width"], fields["height"], fields["count"]
        self.fps_num, self.fps_den = fields["fps_num"], fields["fps_den"]
        self.base_qp = fields["base_qp"]
        self.params = {name: fields[name] for name, _, _ in HEADER_FIELDS if name in PARAMS}
        for bit, name in enumerate(TOOL_BITS):
            self.params[name] = (fields["tools"] >> bit) & 1
        self.padded_width = -(-self.width // CTU) * CTU
        self.padded_height = -(-self.height // CTU) * CTU

    @classmethod
    def of_clip(cls, frames, quality, params):
        """The settings of a clip coded at a quality with ``params`` (before the header)."""
        count, height, width = frames.y.shape
        fields = {"width": width, "height": height, "count": count, "tools": 0}
        fields["fps_num"], fields["fps_den"] = frames.fps.numerator, frames.fps.denominator
        fields["base_qp"] = quality_qp(quality, params["qp_shift"])
        for bit, name in enumerate(TOOL_BITS):
            fields["tools"] |= int(bool(params[name])) << bit
        for name, _, _ in HEADER_FIELDS:
            if name in params:
                fields[name] = params[name]
        return cls(fields)

    def pack(self):
        """The header bytes."""
        values = []
        for name, _, scale in HEADER_FIELDS:
            value = self.fields[name]
            values.append(int(value) if scale is None else int(round(float(value) * scale)))
        return HEADER.pack(MAGIC, *values)

    @classmethod
    def unpack(cls, data):
        """Settings from the header bytes."""
        if len(data) < HEADER.size:
            raise ValueError("bitstream shorter than its header")
        magic, *values = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise ValueError("not a hybrid bitstream")
        fields = {}
        for (name, _, scale), value in zip(HEADER_FIELDS, values, strict=True):
            fields[name] = value if scale is None else value / scale
        return cls(fields)

    def qps(self, kind, layer, offset=0):
        """Luma and chroma QP of a picture (``offset``: its coded QP offset)."""
        p = self.params
        qp = picture_qp(self.base_qp, kind, layer, p["qp_i_offset"], p["qp_layer_step"])
        qp = int(min(max(qp + offset, 0), 63))
        return qp, int(min(max(qp + p["chroma_qp_offset"], 0), 63))

    def shapes(self):
        """Padded plane shapes (y, u, v)."""
        h, w = self.padded_height, self.padded_width
        return (h, w), (h // 2, w // 2), (h // 2, w // 2)


def intra_frame(stream, poc, layer, qp):
    """The code of an intra picture before its decisions: every unit intra."""
    frame = FrameCode("I", poc, layer, qp, intra_units(stream))
    frame.modes[:] = INTRA
    return frame


def intra_units(stream):
    """The 16x16 units of an intra picture, in z-order of their coding-tree units."""
    split32 = np.ones((stream.padded_height // CTU, stream.padded_width // CTU), dtype=np.int64)
    split16 = np.zeros((stream.padded_height // 16, stream.padded_width // 16), dtype=np.int64)
    return coding_units(split32, split16)


def last_uses(order):
    """Coding index after which each picture is no longer referenced."""
    last = {}
    for index, (poc, _, _, ref0, ref1) in enumerate(order):
        last[poc] = max(last.get(poc, index), index)
        for ref in (ref0, ref1):
            if ref is not None:
                last[ref] = index
    return last


def finish_picture(recon, frame, field, ref_pocs):
    """The reference picture of a coded frame, with its motion for temporal prediction."""
    picture = Picture(recon, frame.poc, frame.layer)
    picture.temporal = TemporalContext(frame, recon[0].shape[0] // 8, recon[0].shape[1] // 8)
    if field is not None:
        picture.motion = (field, ref_pocs)
        picture.motion_arrays = field_arrays(field)
    return picture


def new_field(stream, frame, refs, ref_pocs):
    """An empty motion field for an inter picture."""
    collocated = refs[1] if frame.kind == "B" else refs[0]
    merge_size = stream.params["merge_candidates"]
    return MotionField(stream.padded_height // 8, stream.padded_width // 8, frame.poc, ref_pocs,
                       collocated, frame.kind == "B", merge_size)  # fmt: skip


def field_arrays(field):
    """Direction [rows, cols] and vectors [rows, cols, 4] of a motion field's cells."""
    dirs = np.array([c[0] if c else 0 for c in field.cells], dtype=np.int64)
    mvs = np.array([c[1:] if c else (0, 0, 0, 0) for c in field.cells], dtype=np.int64)
    return dirs.reshape(field.rows, field.cols), mvs.reshape(field.rows, field.cols, 4)


def output_planes(count, height, width):
    """Empty decoded planes of a clip."""
    chroma = (count, height // 2, width // 2)
    return [
        np.zeros((count, height, width), np.uint8),
        np.zeros(chroma, np.uint8),
        np.zeros(chroma, np.uint8),
    ]


def _encode(frames, quality, stats=None):
    """Encode a clip; returns the bitstream and the reconstruction the decoder will produce."""
    p = PARAMS
    count, height, width = frames.y.shape
    stream = Stream.of_clip(frames, quality, p)
    stream = Stream.unpack(stream.pack())  # the decoder's view of every setting
    header = stream.params  # the PARAMS as the decoder reads them from the header
    coder = Coder(chunk=header["adapt_chunk"])
    coder.stats = stats
    models = SyntaxModels(header)
    shapes = stream.shapes()
    pictures = {}
    out = output_planes(count, height, width)
    groups = choose_groups(
        frames.y, header["gop"], float(p["b_growth"]), float(p["p_growth"]), float(p["fast_motion"])
    )
    code_groups(coder, count, header["gop"], groups)
    order = coding_order(count, groups)
    offsets = {}
    if header["qp_propagation"]:
        offsets = propagation_offsets(frames.y, order, float(p["qp_propagation"]))
        code_qp_offsets(coder, order, offsets)
    last = last_uses(order)
    for index, (poc, kind, layer, ref0, ref1) in enumerate(order):
        qp, chroma_qp = stream.qps(kind, layer, offsets.get(poc, 0))
        source = [
            pad_plane(plane[poc], *shape)
            for plane, shape in zip((frames.y, frames.u, frames.v), shapes, strict=True)
        ]
        recon = [np.zeros(shape, np.uint8) for shape in shapes]
        field = None
        ref_pocs = (ref0, ref1 if ref1 is not None else ref0)
        if kind == "I":
            frame = intra_frame(stream, poc, layer, qp)
            estimates = models
            if index == 0 and p["intra_rehearsal"]:
                estimates = rehearsed_models(stream, source, models, p, qp, chroma_qp, coder.chunk)
            encoder = PictureEncoder(source, frame, estimates, p, chroma_qp, (height, width))
        else:
            refs = [pictures[ref0], pictures[ref1] if ref1 is not None else None]
            frame = FrameCode(kind, poc, layer, qp, [])
            frame.context = (refs[1] if kind == "B" else refs[0]).temporal
            encoder = InterEncoder(
                source,
                frame,
                models,
                p,
                chroma_qp,
                (height, width),
                refs,
                refs[1] if kind == "B" else refs[0],
                ref_pocs,
            )
            split32, split16, field = encoder.analyse(
                header["min_cu"],
                header["merge_candidates"],
                lambda f, refs=refs, ref_pocs=ref_pocs: new_field(stream, f, refs, ref_pocs),
            )
            frame.collect_levels()
            residual = residual_planes(frame, shapes, encoder.scales)
            reconstruct_inter(frame, refs, residual, recon, encoder.predictions)
            code_splits(
                coder, models, frame.layer_class, split32, split16, header["min_cu"], frame.context
            )
        intra_pass(frame, recon, None, encoder.choose_intra)
        if header["deblock"]:
            deblock(recon, frame, qp, chroma_qp, header["deblock_beta"], header["deblock_tc"])
        classes = alf_class_map(recon[0], header["alf_classes"]) if header["alf"] else None
        design = (
            alf_design(
                source[0],
                recon[0],
                None if encoder.valid is None else encoder.valid[0],
                encoder.lam,
                classes,
                header["alf_classes"],
            )
            if header["alf"]
            else None
        )
        if design is not None:
            alf_apply(recon[0], design[0], design[1], classes, design[3])
        code_units(coder, models, frame)
        if header["alf"]:
            code_alf(coder, models, frame.layer_class, shapes[0], design)
        if stats is not None:
            for k, (_, _, n) in enumerate(frame.units):
                skipped = "s" if frame.modes[k] != INTRA and not frame.rootcbf[k] else ""
                key = f"#{kind}{n}:{'MLBBI'[frame.modes[k]] + skipped}"
                stats[key] = stats.get(key, 0) + 8
            if kind != "I":
                lost = int((frame.planned_merge & (frame.modes != MERGE)).sum())
                stats["#lost merges"] = stats.get("#lost merges", 0) + 8 * lost
                stats["#planned merges"] = stats.get("#planned merges", 0) + 8 * int(
                    frame.planned_merge.sum()
                )
        pictures[poc] = finish_picture(recon, frame, field, ref_pocs)
        for plane, target in zip(recon, out, strict=True):
            target[poc] = plane[: target.shape[1], : target.shape[2]]
        for ref in {ref0, ref1} - {None}:
            if last[ref] <= index:
                pictures[ref].drop_phases()
        models.forget(header["context_memory"])
    return stream.pack() + coder.data(), out


def encode(frames, quality):
    """Encode a clip at a quality 0..100 into bytes."""
    return _encode(frames, quality)[0]


def decode(bitstream):
    """Decode bytes from ``encode`` into (y, u, v, fps)."""
    stream = Stream.unpack(bitstream)
    header = stream.params
    payload = bitstream[HEADER.size :]
    payload += b"\0" * (-len(payload) % 4)
    coder = Coder(payload, header["adapt_chunk"])
    models = SyntaxModels(header)
    shapes = stream.shapes()
    pictures = {}
    out = output_planes(stream.count, stream.height, stream.width)
    order = coding_order(stream.count, code_groups(coder, stream.count, header["gop"]))
    offsets = code_qp_offsets(coder, order) if header["qp_propagation"] else {}
    last = last_uses(order)
    for index, (poc, kind, layer, ref0, ref1) in enumerate(order):
        qp, chroma_qp = stream.qps(kind, layer, offsets.get(poc, 0))
        scales = (qp_scale(qp), qp_scale(chroma_qp))
        recon = [np.zeros(shape, np.uint8) for shape in shapes]
        field = None
        ref_pocs = (ref0, ref1 if ref1 is not None else ref0)
        if kind == "I":
            frame = intra_frame(stream, poc, layer, qp)
            code_units(coder, models, frame)
            residual = residual_planes(frame, shapes, scales)
        else:
            refs = [pictures[ref0], pictures[ref1] if ref1 is not None else None]
            split32 = np.zeros((stream.padded_height // CTU, stream.padded_width // CTU), np.int64)
            split16 = np.zeros((stream.padded_height // 16, stream.padded_width // 16), np.int64)
            layer_class = FrameCode(kind, poc, layer, qp, []).layer_class
            collocated = refs[1] if kind == "B" else refs[0]
            code_splits(
                coder, models, layer_class, split32, split16, header["min_cu"], collocated.temporal
            )
            frame = FrameCode(kind, poc, layer, qp, coding_units(split32, split16))
            frame.context = collocated.temporal
            field = new_field(stream, frame, refs, ref_pocs)
            code_units(coder, models, frame, field)
            residual = residual_planes(frame, shapes, scales)
            reconstruct_inter(frame, refs, residual, recon)
        intra_pass(frame, recon, residual)
        if header["deblock"]:
            deblock(recon, frame, qp, chroma_qp, header["deblock_beta"], header["deblock_tc"])
        design = code_alf(coder, models, frame.layer_class, shapes[0]) if header["alf"] else None
        if design is not None:
            alf_apply(recon[0], *design, alf_class_map(recon[0], header["alf_classes"]))
        pictures[poc] = finish_picture(recon, frame, field, ref_pocs)
        for plane, target in zip(recon, out, strict=True):
            target[poc] = plane[: target.shape[1], : target.shape[2]]
        for ref in {ref0, ref1} - {None}:
            if last[ref] <= index:
                pictures[ref].drop_phases()
        models.forget(header["context_memory"])
    return out[0], out[1], out[2], (stream.fps_num, stream.fps_den)
