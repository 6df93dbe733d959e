"""Motion-compensated block-DCT codec: I and P frames, quarter-pel motion, intra/inter blocks.

The first frame (and every ``intra_period``-th frame when that is set) is intra: each plane
is level shifted by -128, cut into NxN blocks and coded with an orthonormal 2-D DCT, a
frequency-weighted quantiser and a dead zone. Every other frame is predicted from the
previous *reconstructed* frame, one vector per 16x16 luma macroblock: a full search on 2x2
subsampled frames around the previous frame's median vector (SAD over all offsets at once),
then an integer refinement that also tries each block's previous vector and zero, then
half-pel and quarter-pel refinements on 6-tap interpolated planes. Each choice minimises
SAD + lambda * |vector - predicted vector| (median of left, above, above-right). Chroma uses
the same vector at eighth-pel precision (bilinear). A macroblock whose texture is cheaper
than its motion residual is coded intra instead. The residual is transformed and quantised
like an intra block with its own matrix and a wider dead zone; inter blocks left with a few
+-1 levels are dropped. Reconstruction is integer-exact and the encoder runs it exactly as
the decoder does, so the two never drift. The streams (frame types and block modes, vector
differences, end-of-block positions, coefficients laid out frequency-major, 16-bit escapes)
are compressed with zlib or lzma.
"""

import lzma
import math
import struct
import zlib

import numpy as np

PARAMS = {
    "block": 8,
    "search": 8,
    "subpel": 2,
    "quant_scale": 1.0,
    "tilt": 0.4,
    "inter_tilt": 0.4,
    "chroma_factor": 1.2,
    "deadzone": 0.15,
    "inter_deadzone": 0.3,
    "mv_lambda": 4.0,
    "intra_bias": 512,
    "decimate": 3,
    "intra_period": 0,
    "entropy": "lzma",
}
PARAM_RANGES = {
    "block": [4, 8],
    "search": (1, 24),
    "subpel": [0, 1, 2],
    "quant_scale": (0.25, 4.0),
    "tilt": (0.0, 3.0),
    "inter_tilt": (0.0, 3.0),
    "chroma_factor": (0.5, 3.0),
    "deadzone": (0.0, 0.45),
    "inter_deadzone": (0.0, 0.49),
    "mv_lambda": (0.0, 32.0),
    "intra_bias": (0, 4096),
    "decimate": (0, 8),
    "intra_period": (0, 120),
    "entropy": ["zlib", "lzma"],
}

MAGIC = b"MDCT"
VERSION = 1
MB = 16  # luma macroblock size (chroma 8)
# magic, version, block, coder, width, height, frames, step, tilt, inter tilt, chroma factor
HEADER = struct.Struct("<4sBBBHHHffff")
CODERS = ["zlib", "lzma"]
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 22, "lc": 3, "pb": 0}]
LIMIT = 32000  # largest quantised magnitude; keeps escapes within 16 bits
FIX = 12  # fractional bits of the integer inverse transform


# --- transform and quantisation ---------------------------------------------------------------


def dct_matrix(n):
    """Orthonormal DCT-II matrix (rows are basis functions)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def zigzag(n):
    """Indices of an NxN block (row-major) in zig-zag order."""
    row, col = np.divmod(np.arange(n * n), n)
    diagonal = row + col
    along = np.where(diagonal % 2 == 1, row, col)
    return np.lexsort((along, diagonal))


def quant_matrix(n, step, tilt, factor):
    """Quantiser steps of an NxN block, growing linearly with frequency (row-major)."""
    row, col = np.divmod(np.arange(n * n), n)
    slope = (row + col) / (2.0 * (n - 1))
    return (step * factor * (1.0 + tilt * slope)).reshape(n, n)


def quality_step(quality, scale):
    """Uniform quantiser step for a quality 0..100 (halves every 20 quality points)."""
    return scale * 7.0 * 2.0 ** ((75.0 - quality) / 20.0)


def to_blocks(plane, n):
    """[H, W] plane (multiples of n) to [H/n*W/n, n, n] blocks in raster order."""
    h, w = plane.shape
    return plane.reshape(h // n, n, w // n, n).swapaxes(1, 2).reshape(-1, n, n)


def from_blocks(blocks, h, w):
    """Inverse of ``to_blocks``."""
    n = blocks.shape[-1]
    return blocks.reshape(h // n, w // n, n, n).swapaxes(1, 2).reshape(h, w)


def block_flags(mb_intra, h, w, n, mb):
    """Per transform block (raster order): whether its macroblock is intra."""
    rows = np.arange(h // n) * n // mb
    cols = np.arange(w // n) * n // mb
    return mb_intra[rows[:, None], cols[None, :]].reshape(-1)


class Quantiser:
    """Quantisation matrices and transform shared by the encoder and the decoder."""

    def __init__(self, n, step, tilt, inter_tilt, chroma_factor):
        self.n = n
        self.basis = dct_matrix(n)
        self.ibasis = np.rint(self.basis * (1 << FIX)).astype(np.int64)
        self.order = zigzag(n)
        self.intra = [quant_matrix(n, step, tilt, f) for f in (1.0, chroma_factor)]
        self.inter = [quant_matrix(n, step, inter_tilt, f) for f in (1.0, chroma_factor)]

    def steps(self, flags, chroma):
        """[B, n, n] quantiser steps for blocks flagged intra (True) or inter."""
        index = 1 if chroma else 0
        return np.where(flags[:, None, None], self.intra[index], self.inter[index])

    def forward(self, residual, flags, chroma, rounding_intra, rounding_inter):
        """Residual plane -> [B, n*n] integer levels in zig-zag order."""
        n = self.n
        coefs = self.basis @ to_blocks(residual.astype(np.float64), n) @ self.basis.T
        rounding = np.where(flags, rounding_intra, rounding_inter)[:, None, None]
        levels = np.sign(coefs) * np.floor(np.abs(coefs) / self.steps(flags, chroma) + rounding)
        levels = np.clip(levels, -LIMIT, LIMIT).astype(np.int32)
        return levels.reshape(-1, n * n)[:, self.order]

    def inverse(self, levels_zz, flags, chroma, prediction):
        """Levels in zig-zag order plus the integer prediction plane -> reconstructed uint8 plane.

        Integer arithmetic only (dequantised coefficients with 4 fractional bits, a DCT basis
        with FIX fractional bits), so the encoder's reconstruction loop and any decoder agree
        bit for bit on every machine.
        """
        n = self.n
        levels = np.zeros_like(levels_zz)
        levels[:, self.order] = levels_zz
        coefs = np.rint(levels.reshape(-1, n, n) * self.steps(flags, chroma) * 16.0)
        pixels = self.ibasis.T @ coefs.astype(np.int64) @ self.ibasis
        shift = 2 * FIX + 4
        residual = from_blocks((pixels + (1 << (shift - 1))) >> shift, *prediction.shape)
        return np.clip(residual + prediction, 0, 255).astype(np.uint8)


# --- motion compensation ----------------------------------------------------------------------
#
# Vectors are in quarter-pel luma units, (dy, dx) per 16x16 macroblock: the prediction of the
# macroblock at (y, x) is the reference at (y + dy/4, x + dx/4). Luma half-pel samples use the
# 6-tap filter (1, -5, 20, 20, -5, 1) / 32, quarter-pel samples the rounded average of the
# nearest integer and half-pel samples. Chroma takes the same vector at eighth-pel precision
# with bilinear weights.


def extend(plane, border):
    """Pad a plane on every side by edge replication (int32)."""
    return np.pad(plane, border, mode="edge").astype(np.int32)


def sixtap(x, axis):
    """Half-sample values between x[i] and x[i+1] along an axis, unnormalised (taps sum 32)."""
    size = x.shape[axis]
    pads = [(0, 0), (0, 0)]
    pads[axis] = (2, 3)
    padded = np.pad(x, pads, mode="edge")
    total = 0
    for k, tap in enumerate((1, -5, 20, 20, -5, 1)):
        part = padded[k : k + size] if axis == 0 else padded[:, k : k + size]
        total = total + tap * part
    return total


def shifted(plane, dy, dx):
    """``plane`` moved up by dy and left by dx samples (0 or 1), edge replicated."""
    h, w = plane.shape
    return np.pad(plane, ((0, dy), (0, dx)), mode="edge")[dy : dy + h, dx : dx + w]


def subpel_planes(ref):
    """[16, H, W] planes of ``ref`` at every quarter-pel phase (index 4 * qy + qx)."""
    horizontal = sixtap(ref, 1)
    half = {
        (0, 0): ref,
        (0, 1): np.clip((horizontal + 16) >> 5, 0, 255),
        (1, 0): np.clip((sixtap(ref, 0) + 16) >> 5, 0, 255),
        (1, 1): np.clip((sixtap(horizontal, 0) + 512) >> 10, 0, 255),
    }
    # the half-pel grid around each integer sample, 0..2 half steps down and right
    grid = {}
    for ry in range(3):
        for rx in range(3):
            grid[ry, rx] = shifted(half[ry % 2, rx % 2], ry // 2, rx // 2)
    planes = []
    for qy in range(4):
        rows = [qy // 2] if qy % 2 == 0 else [qy // 2, qy // 2 + 1]
        for qx in range(4):
            cols = [qx // 2] if qx % 2 == 0 else [qx // 2, qx // 2 + 1]
            terms = [grid[ry, rx] for ry in rows for rx in cols]
            planes.append((sum(terms) + len(terms) // 2) // len(terms))
    return np.stack(planes)


def mb_grid(h, w, size):
    """Top-left corners (rows, cols) of the size x size macroblocks of an HxW plane, raster."""
    ys, xs = np.meshgrid(np.arange(0, h, size), np.arange(0, w, size), indexing="ij")
    return ys.reshape(-1), xs.reshape(-1)


def predict_luma(planes, border, mvs, h, w):
    """Luma macroblocks [M, 16, 16] from the quarter-pel planes of the extended reference."""
    _, eh, ew = planes.shape
    ys, xs = mb_grid(h, w, MB)
    phase = (mvs[:, 0] & 3) * 4 + (mvs[:, 1] & 3)
    top = border + ys + (mvs[:, 0] >> 2)
    left = border + xs + (mvs[:, 1] >> 2)
    start = (phase * eh + top) * ew + left
    pattern = np.arange(MB)[:, None] * ew + np.arange(MB)[None, :]
    return np.take(planes.reshape(-1), start[:, None, None] + pattern[None])


def predict_chroma(ref_ext, border, mvs, h, w):
    """Chroma prediction [H, W]: the luma quarter-pel vector is eighth-pel here (bilinear)."""
    size = MB // 2
    ew = ref_ext.shape[1]
    ys, xs = mb_grid(h, w, size)
    start = (border + ys + (mvs[:, 0] >> 3)) * ew + border + xs + (mvs[:, 1] >> 3)
    index = start[:, None, None] + (np.arange(size)[:, None] * ew + np.arange(size)[None, :])
    flat = ref_ext.reshape(-1)
    fy = (mvs[:, 0] & 7)[:, None, None]
    fx = (mvs[:, 1] & 7)[:, None, None]
    top = (8 - fx) * np.take(flat, index) + fx * np.take(flat, index + 1)
    bottom = (8 - fx) * np.take(flat, index + ew) + fx * np.take(flat, index + ew + 1)
    return from_blocks(((8 - fy) * top + fy * bottom + 32) >> 6, h, w)


def block_sums(values, size):
    """Sum of a [H, W] array over each size x size block -> [H/size, W/size]."""
    h, w = values.shape
    return values.reshape(h // size, size, w // size, size).sum(axis=(1, 3))


def vector_border(mvs):
    """Luma and chroma borders that keep every reference fetch of these vectors inside."""
    reach = int(np.abs(mvs).max()) if mvs.size else 0
    return reach // 4 + 6, reach // 8 + 3


def predictions(layout, refs, mvs, mb_intra):
    """Prediction planes for Y, U, V: motion compensated, 128 in intra macroblocks."""
    border, cborder = vector_border(mvs)
    planes = subpel_planes(extend(refs[0], border))
    out = [from_blocks(predict_luma(planes, border, mvs, layout.h, layout.w), layout.h, layout.w)]
    for ref in refs[1:]:
        out.append(predict_chroma(extend(ref, cborder), cborder, mvs, layout.ch, layout.cw))
    intra_y = np.kron(mb_intra, np.ones((MB, MB), dtype=bool))
    intra_c = np.kron(mb_intra, np.ones((MB // 2, MB // 2), dtype=bool))
    return [np.where(m, 128, p) for p, m in zip(out, (intra_y, intra_c, intra_c), strict=True)]


def predictor(vectors, row, col):
    """Vector predictor of macroblock (row, col) from its decoded neighbours [rows, cols, 2]:
    the component-wise median of left, above and above-right (above-left at the right edge);
    the left neighbour on the first row."""
    if row == 0:
        return vectors[0, col - 1] if col > 0 else vectors[0, 0] * 0
    above = vectors[row - 1, col]
    left = vectors[row, col - 1] if col > 0 else above
    corner = vectors[row - 1, col + 1] if col + 1 < vectors.shape[1] else vectors[row - 1, col - 1]
    return np.maximum(np.minimum(left, above), np.minimum(np.maximum(left, above), corner))


def decode_vectors(deltas, intra, shape):
    """Vectors [M, 2] from the coded differences (intra macroblocks take their predictor)."""
    rows, cols = shape
    vectors = np.zeros((rows, cols, 2), dtype=np.int64)
    used = 0
    for m in range(rows * cols):
        row, col = divmod(m, cols)
        pred = predictor(vectors, row, col)
        if intra[m]:
            vectors[row, col] = pred
        else:
            vectors[row, col] = pred + deltas[used]
            used += 1
    return vectors.reshape(-1, 2), used


# --- motion estimation (encoder only) ---------------------------------------------------------


def select(sads, candidates, lam, shape, intra_cost=None):
    """Pick per macroblock (raster order) the candidate of least SAD + lam * |vector - predictor|.

    ``sads`` is [K, M] and ``candidates`` [K, M, 2]. With ``intra_cost`` ([M]) a macroblock
    goes intra when that is below its best SAD; an intra macroblock takes its predictor as its
    vector, as ``decode_vectors`` does. Returns vectors [M, 2], intra flags [M] and the vector
    differences to code [inter M, 2].
    """
    rows, cols = shape
    vectors = np.zeros((rows, cols, 2), dtype=np.int64)
    intra = np.zeros(rows * cols, dtype=bool)
    deltas = []
    for m in range(rows * cols):
        row, col = divmod(m, cols)
        pred = predictor(vectors, row, col)
        cand = candidates[:, m]
        cost = sads[:, m] + lam * np.abs(cand - pred).sum(axis=1)
        k = int(np.argmin(cost))
        if intra_cost is not None and intra_cost[m] < sads[k, m]:
            intra[m] = True
            vectors[row, col] = pred
        else:
            vectors[row, col] = cand[k]
            deltas.append(cand[k] - pred)
    return vectors.reshape(-1, 2), intra, np.array(deltas, dtype=np.int64).reshape(-1, 2)


def candidate_sads(cur_blocks, planes, border, candidates, h, w):
    """SAD [K, M] of every macroblock against each of its K candidate vectors [K, M, 2]."""
    return np.stack(
        [np.abs(cur_blocks - predict_luma(planes, border, c, h, w)).sum(axis=(1, 2))
         for c in candidates]
    )  # fmt: skip


def coarse_search(cur, ref_ext, border, search, centre):
    """Full search on 2x2-subsampled frames within +-search pixels of ``centre``; the best
    vector per macroblock in full-resolution pixels [M, 2]."""
    h, w = cur.shape
    small = cur.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3))
    eh, ew = ref_ext.shape
    ref_small = ref_ext.reshape(eh // 2, 2, ew // 2, 2).sum(axis=(1, 3))
    b = border // 2
    reach = (search + 1) // 2
    cy, cx = int(centre[0]) // 2, int(centre[1]) // 2
    offsets = [(dy, dx) for dy in range(cy - reach, cy + reach + 1)
               for dx in range(cx - reach, cx + reach + 1)]  # fmt: skip
    sads = []
    for dy, dx in offsets:
        moved = ref_small[b + dy : b + dy + h // 2, b + dx : b + dx + w // 2]
        cost = block_sums(np.abs(small - moved), MB // 2).reshape(-1)
        sads.append(4 * cost + abs(dy - cy) + abs(dx - cx))  # ties go to the centre
    best = np.argmin(np.stack(sads), axis=0)
    return 2 * np.array(offsets, dtype=np.int64)[best]


def motion_search(cur, ref, previous, subpel, search, lam, intra_cost, shape):
    """Quarter-pel vectors and intra flags per macroblock, and the vector differences to code.

    ``previous`` holds the last P frame's vectors [M, 2] (zeros at first): their median centres
    the coarse search and each macroblock also tries its own previous vector and zero.
    """
    h, w = cur.shape
    centre = np.round(np.median(previous, axis=0) / 4).astype(np.int64)
    reach = int(np.abs(centre).max()) + search + 2
    border = reach + 6 + reach % 2  # even, so the 2x2-subsampled reference lines up
    ref_ext = extend(ref, border)
    planes = subpel_planes(ref_ext)
    cur_blocks = to_blocks(cur, MB)
    coarse = coarse_search(cur, ref_ext, border, search, centre)
    steps = [np.array([dy, dx]) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    candidates = [coarse + s for s in steps]
    candidates.append(np.round(previous / 4).astype(np.int64))
    candidates.append(np.zeros_like(coarse))
    candidates = 4 * np.clip(np.stack(candidates), -reach, reach)
    refinements = (2, 1)[: int(subpel)]
    sads = candidate_sads(cur_blocks, planes, border, candidates, h, w)
    last = not refinements
    mvs, intra, deltas = select(sads, candidates, lam, shape, intra_cost if last else None)
    for size in refinements:
        candidates = np.stack([mvs + size * s for s in steps])
        sads = candidate_sads(cur_blocks, planes, border, candidates, h, w)
        last = size == refinements[-1]
        mvs, intra, deltas = select(sads, candidates, lam, shape, intra_cost if last else None)
    return mvs, intra, deltas


# --- coefficient packing and entropy coding ---------------------------------------------------


def to_bytes(values):
    """Signed integers -> (uint8 codes, uint16 escapes): 0, -1, 1, -2, ... map to 0, 1, 2, 3,
    ...; codes of 255 and more are stored as 255 plus an escape of the excess."""
    mapped = np.where(values >= 0, 2 * values, -2 * values - 1)
    return np.minimum(mapped, 255).astype(np.uint8), (mapped[mapped >= 255] - 255).astype("<u2")


def from_bytes(small, big):
    """Inverse of ``to_bytes`` (uint8 codes and exactly their escapes)."""
    mapped = small.astype(np.int64)
    mapped[mapped == 255] = big.astype(np.int64) + 255
    return np.where(mapped % 2 == 0, mapped // 2, -(mapped + 1) // 2)


def pack_coefficients(levels):
    """[B, N*N] zig-zag levels -> (end-of-block array, uint8 codes, uint16 escapes)."""
    size = levels.shape[1]
    nonzero = levels != 0
    last = size - np.argmax(nonzero[:, ::-1], axis=1)
    eob = np.where(nonzero.any(axis=1), last, 0)
    inside = np.arange(size)[:, None] < eob[None, :]
    # frequency-major: every block's first coefficient, then every block's second, ...
    small, big = to_bytes(levels.T[inside])
    return eob, small, big


def unpack_coefficients(eob, values, size):
    """Inverse of ``pack_coefficients`` (values already decoded): [B, N*N] levels."""
    inside = np.arange(size)[:, None] < eob[None, :]
    levels_t = np.zeros((size, eob.shape[0]), dtype=np.int32)
    levels_t[inside] = values
    return np.ascontiguousarray(levels_t.T)


def take_values(small, big, count, positions):
    """The next ``count`` values of a (codes, escapes) pair of streams; advances ``positions``."""
    codes = small[positions[0] : positions[0] + count]
    escapes = int(np.count_nonzero(codes == 255))
    values = from_bytes(codes, big[positions[1] : positions[1] + escapes])
    positions[0] += count
    positions[1] += escapes
    return values


def compress(data, coder):
    if coder == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    return zlib.compress(data, 9)


def decompress(data, coder):
    if coder == "lzma":
        return lzma.decompress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    return zlib.decompress(data)


def join_streams(streams, coder):
    out = []
    for stream in streams:
        packed = compress(stream, coder)
        out.append(struct.pack("<I", len(packed)))
        out.append(packed)
    return b"".join(out)


def split_streams(data, count, coder):
    streams = []
    pos = 0
    for _ in range(count):
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 4
        streams.append(decompress(data[pos : pos + length], coder))
        pos += length
    return streams


def dc_delta(levels, flags, forward):
    """Code intra blocks' DC as the difference from the previous intra block's DC (in place)."""
    dc = levels[flags, 0]
    levels[flags, 0] = np.diff(dc, prepend=0) if forward else np.cumsum(dc)


# --- codec ------------------------------------------------------------------------------------


class Layout:
    """Padded plane sizes, macroblock grid and transform blocks per plane of a clip."""

    def __init__(self, width, height, n):
        self.h = height + (-height % MB)
        self.w = width + (-width % MB)
        self.ch, self.cw = self.h // 2, self.w // 2
        self.mb_shape = (self.h // MB, self.w // MB)
        self.mbs = self.mb_shape[0] * self.mb_shape[1]
        self.sizes = [(self.h, self.w), (self.ch, self.cw), (self.ch, self.cw)]
        self.blocks = [(a // n) * (b // n) for a, b in self.sizes]


def block_means(plane):
    """Each pixel replaced by the mean of its macroblock (rounded down)."""
    means = block_sums(plane, MB) // (MB * MB)
    return np.repeat(np.repeat(means, MB, axis=0), MB, axis=1)


def encode(frames, quality):
    p = PARAMS
    n = int(p["block"])
    coder = p["entropy"]
    period = int(p["intra_period"])
    t, height, width = frames.y.shape
    header = HEADER.pack(
        MAGIC, VERSION, n, CODERS.index(coder), width, height, t,
        quality_step(float(quality), float(p["quant_scale"])),
        p["tilt"], p["inter_tilt"], p["chroma_factor"],
    )  # fmt: skip
    # quantise with the exact float32 values the decoder will read back
    step, tilt, inter_tilt, factor = HEADER.unpack(header)[7:]
    quant = Quantiser(n, step, tilt, inter_tilt, factor)
    layout = Layout(width, height, n)
    round_intra = 0.5 - float(p["deadzone"])
    round_inter = 0.5 - float(p["inter_deadzone"])
    lam = float(p["mv_lambda"]) * step / 16.0
    bias = float(p["intra_bias"])
    decimate = int(p["decimate"])

    sources = []
    for plane, (ph, pw) in zip((frames.y, frames.u, frames.v), layout.sizes, strict=True):
        src = np.asarray(plane)
        pads = ((0, 0), (0, ph - src.shape[1]), (0, pw - src.shape[2]))
        sources.append(np.pad(src, pads, mode="edge"))
    modes, mv_deltas, levels_all = bytearray(), [], [[], [], []]
    refs = None
    previous = np.zeros((layout.mbs, 2), dtype=np.int64)
    for index in range(t):
        cur = [s[index].astype(np.int32) for s in sources]
        if refs is None or (period > 0 and index % period == 0):
            modes.append(0)
            mb_intra = np.ones(layout.mb_shape, dtype=bool)
            preds = [np.full(size, 128) for size in layout.sizes]
        else:
            modes.append(1)
            activity = block_sums(np.abs(cur[0] - block_means(cur[0])), MB).reshape(-1)
            mvs, intra, deltas = motion_search(
                cur[0], refs[0], previous, int(p["subpel"]), int(p["search"]), lam,
                activity + bias, layout.mb_shape,
            )  # fmt: skip
            previous = mvs
            mb_intra = intra.reshape(layout.mb_shape)
            modes += intra.astype(np.uint8).tobytes()
            mv_deltas.append(deltas.reshape(-1))
            preds = predictions(layout, refs, mvs, mb_intra)
        recon = []
        for plane in range(3):
            h, w = layout.sizes[plane]
            flags = block_flags(mb_intra, h, w, n, MB if plane == 0 else MB // 2)
            residual = cur[plane] - preds[plane]
            levels = quant.forward(residual, flags, plane > 0, round_intra, round_inter)
            if decimate:
                # drop inter blocks holding only a few +-1 levels: cheap in error, dear in bits
                sparse = (np.abs(levels).max(axis=1) <= 1) & (
                    np.count_nonzero(levels, axis=1) <= decimate
                )
                levels[sparse & ~flags] = 0
            recon.append(quant.inverse(levels, flags, plane > 0, preds[plane]))
            dc_delta(levels, flags, forward=True)
            levels_all[plane].append(levels)
        refs = recon
    eobs, smalls, bigs = [], [], []
    for plane in range(3):
        eob, small, big = pack_coefficients(np.concatenate(levels_all[plane]))
        eobs.append(eob.astype(np.uint8))
        smalls.append(small)
        bigs.append(big)
    mv_small, mv_big = to_bytes(np.concatenate([np.zeros(0, np.int64), *mv_deltas]))
    streams = [bytes(modes), mv_small, mv_big, np.concatenate(eobs), np.concatenate(smalls),
               np.concatenate(bigs)]  # fmt: skip
    streams = [s if isinstance(s, bytes) else s.tobytes() for s in streams]
    return header + join_streams(streams, coder)


def decode(bitstream):
    fields = HEADER.unpack_from(bitstream, 0)
    magic, version, n, coder_id, width, height, t = fields[:7]
    step, tilt, inter_tilt, factor = fields[7:]
    if magic != MAGIC or version != VERSION:
        raise ValueError("not a motion_dct bitstream")
    coder = CODERS[coder_id]
    streams = split_streams(bitstream[HEADER.size :], 6, coder)
    quant = Quantiser(n, step, tilt, inter_tilt, factor)
    layout = Layout(width, height, n)
    modes = np.frombuffer(streams[0], dtype=np.uint8)
    mv_small = np.frombuffer(streams[1], dtype=np.uint8)
    mv_deltas = from_bytes(mv_small, np.frombuffer(streams[2], dtype="<u2")).reshape(-1, 2)
    eob_all = np.frombuffer(streams[3], dtype=np.uint8).astype(np.int64)
    small_all = np.frombuffer(streams[4], dtype=np.uint8)
    big_all = np.frombuffer(streams[5], dtype="<u2")

    # split the coefficient streams into planes (each plane's blocks of every frame)
    levels_all = []
    eob_pos = 0
    positions = [0, 0]
    for plane in range(3):
        count = t * layout.blocks[plane]
        eob = eob_all[eob_pos : eob_pos + count]
        eob_pos += count
        values = take_values(small_all, big_all, int(eob.sum()), positions)
        levels = unpack_coefficients(eob, values, n * n)
        levels_all.append(levels.reshape(t, layout.blocks[plane], n * n))

    out = [np.empty((t, height, width), np.uint8)]
    out += [np.empty((t, height // 2, width // 2), np.uint8) for _ in range(2)]
    refs = None
    mode_pos = mv_pos = 0
    for index in range(t):
        kind = modes[mode_pos]
        mode_pos += 1
        if kind == 0:
            mb_intra = np.ones(layout.mb_shape, dtype=bool)
            preds = [np.full(size, 128) for size in layout.sizes]
        else:
            intra = modes[mode_pos : mode_pos + layout.mbs].astype(bool)
            mode_pos += layout.mbs
            mb_intra = intra.reshape(layout.mb_shape)
            mvs, used = decode_vectors(mv_deltas[mv_pos:], intra, layout.mb_shape)
            mv_pos += used
            preds = predictions(layout, refs, mvs, mb_intra)
        recon = []
        for plane in range(3):
            h, w = layout.sizes[plane]
            flags = block_flags(mb_intra, h, w, n, MB if plane == 0 else MB // 2)
            levels = levels_all[plane][index]
            dc_delta(levels, flags, forward=False)
            recon.append(quant.inverse(levels, flags, plane > 0, preds[plane]))
        refs = recon
        out[0][index] = recon[0][:height, :width]
        out[1][index] = recon[1][: height // 2, : width // 2]
        out[2][index] = recon[2][: height // 2, : width // 2]
    return out[0], out[1], out[2]
