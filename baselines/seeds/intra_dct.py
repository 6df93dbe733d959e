"""Intra-only block-DCT codec (a JPEG-like baseline; every frame is coded on its own).

Each plane (Y, U, V) is padded by edge replication to a multiple of the block size, level
shifted by -128 and cut into NxN blocks that go through an orthonormal 2-D DCT-II. The
coefficients are divided by a frequency-weighted quantisation matrix (a uniform step from
``quality`` that grows with frequency by ``tilt``; chroma is coarser by ``chroma_factor``)
and rounded with a dead zone. Per block the coefficients are read in zig-zag order and the
position after the last non-zero one (the end of block) is stored; the DC is coded as the
difference from the previous block's DC. All coefficients of the clip are then laid out
frequency-major (every block's first coefficient, then every block's second, ... up to its
end of block), mapped to unsigned bytes (large values escape to a 16-bit side stream) and
compressed with zlib or lzma. The decoder undoes each step and crops the padding.
"""

import lzma
import math
import struct
import zlib

import numpy as np

PARAMS = {
    "block": 8,
    "quant_scale": 1.0,
    "tilt": 0.4,
    "chroma_factor": 1.2,
    "deadzone": 0.15,
    "entropy": "lzma",
}
PARAM_RANGES = {
    "block": [4, 8, 16],
    "quant_scale": (0.25, 4.0),
    "tilt": (0.0, 3.0),
    "chroma_factor": (0.5, 3.0),
    "deadzone": (0.0, 0.45),
    "entropy": ["zlib", "lzma"],
}

MAGIC = b"IDCT"
VERSION = 1
# magic, version, block, entropy coder, width, height, frames, step, tilt, chroma factor
HEADER = struct.Struct("<4sBBBHHHfff")
CODERS = ["zlib", "lzma"]
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 1 << 22, "lc": 3, "pb": 0}]
LIMIT = 32000  # largest quantised magnitude; keeps escapes within 16 bits


# --- transform --------------------------------------------------------------------------------


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


def to_blocks(planes, n):
    """[T, H, W] planes (H, W multiples of n) to [T*H/n*W/n, n, n] blocks, raster order."""
    t, h, w = planes.shape
    return planes.reshape(t, h // n, n, w // n, n).swapaxes(2, 3).reshape(-1, n, n)


def from_blocks(blocks, t, h, w):
    """Inverse of ``to_blocks``."""
    n = blocks.shape[-1]
    return blocks.reshape(t, h // n, w // n, n, n).swapaxes(2, 3).reshape(t, h, w)


def pad_planes(planes, n):
    """Pad [T, H, W] planes on the bottom and right by edge replication to multiples of n."""
    t, h, w = planes.shape
    return np.pad(planes, ((0, 0), (0, -h % n), (0, -w % n)), mode="edge")


# --- coefficient packing ----------------------------------------------------------------------


def pack_coefficients(levels):
    """[B, N*N] zig-zag levels -> (end-of-block array, byte stream, escape stream)."""
    count, size = levels.shape
    nonzero = levels != 0
    last = size - np.argmax(nonzero[:, ::-1], axis=1)
    eob = np.where(nonzero.any(axis=1), last, 0)
    inside = np.arange(size)[:, None] < eob[None, :]
    values = levels.T[inside]  # frequency-major: all first coefficients, then all second, ...
    mapped = np.where(values >= 0, 2 * values, -2 * values - 1)
    escape = mapped >= 255
    small = np.minimum(mapped, 255).astype(np.uint8)
    big = (mapped[escape] - 255).astype("<u2")
    return eob, small.tobytes(), big.tobytes()


def unpack_coefficients(eob, small, big, size):
    """Inverse of ``pack_coefficients`` (uint8 and uint16 arrays): [B, N*N] levels."""
    mapped = small.astype(np.int32)
    mapped[mapped == 255] = big.astype(np.int32) + 255
    values = np.where(mapped % 2 == 0, mapped // 2, -(mapped + 1) // 2)
    inside = np.arange(size)[:, None] < eob[None, :]
    levels_t = np.zeros((size, eob.shape[0]), dtype=np.int32)
    levels_t[inside] = values
    return np.ascontiguousarray(levels_t.T)


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


# --- codec ------------------------------------------------------------------------------------


def plane_setup(n, t, h, w):
    """Padded sizes and blocks per frame for a [T, H, W] plane."""
    ph, pw = h + (-h % n), w + (-w % n)
    return ph, pw, (ph // n) * (pw // n)


def encode(frames, quality):
    p = PARAMS
    n = int(p["block"])
    coder = p["entropy"]
    t, h, w = frames.y.shape
    step = quality_step(float(quality), float(p["quant_scale"]))
    header = HEADER.pack(
        MAGIC, VERSION, n, CODERS.index(coder), w, h, t, step, p["tilt"], p["chroma_factor"]
    )
    # quantise with the exact float32 values the decoder will read back
    _, _, _, _, _, _, _, step, tilt, factor = HEADER.unpack(header)
    basis = dct_matrix(n)
    order = zigzag(n)
    rounding = 0.5 - float(p["deadzone"])
    eobs, smalls, bigs = [], [], []
    for index, plane in enumerate((frames.y, frames.u, frames.v)):
        padded = pad_planes(np.asarray(plane), n)
        _, ph, pw = padded.shape
        blocks = to_blocks(padded.astype(np.float64) - 128.0, n)
        coefs = basis @ blocks @ basis.T
        qm = quant_matrix(n, step, tilt, 1.0 if index == 0 else factor)
        scaled = np.abs(coefs) / qm
        levels = np.sign(coefs) * np.floor(scaled + rounding)
        levels = np.clip(levels, -LIMIT, LIMIT).astype(np.int32).reshape(-1, n * n)[:, order]
        per_frame = levels.reshape(t, -1, n * n)
        dc = per_frame[:, :, 0]
        per_frame[:, :, 0] = np.diff(dc, axis=1, prepend=0)
        eob, small, big = pack_coefficients(levels)
        eobs.append(eob)
        smalls.append(small)
        bigs.append(big)
    eob_bytes = np.concatenate(eobs).astype(np.uint8 if n < 16 else "<u2").tobytes()
    return header + join_streams([eob_bytes, b"".join(smalls), b"".join(bigs)], coder)


def decode(bitstream):
    magic, version, n, coder_id, w, h, t, step, tilt, factor = HEADER.unpack_from(bitstream, 0)
    if magic != MAGIC or version != VERSION:
        raise ValueError("not an intra_dct bitstream")
    coder = CODERS[coder_id]
    eob_raw, small, big = split_streams(bitstream[HEADER.size :], 3, coder)
    eob_all = np.frombuffer(eob_raw, dtype=np.uint8 if n < 16 else "<u2").astype(np.int64)
    small_all = np.frombuffer(small, dtype=np.uint8)
    big_all = np.frombuffer(big, dtype="<u2")
    basis = dct_matrix(n)
    order = zigzag(n)
    size = n * n
    out = []
    eob_pos = small_pos = big_pos = 0
    for index, (ph_src, pw_src) in enumerate(((h, w), (h // 2, w // 2), (h // 2, w // 2))):
        ph, pw, per = plane_setup(n, t, ph_src, pw_src)
        eob = eob_all[eob_pos : eob_pos + t * per]
        eob_pos += t * per
        used = int(eob.sum())
        values = small_all[small_pos : small_pos + used]
        small_pos += used
        escapes = int(np.count_nonzero(values == 255))
        levels_zz = unpack_coefficients(eob, values, big_all[big_pos : big_pos + escapes], size)
        big_pos += escapes
        per_frame = levels_zz.reshape(t, per, size)
        per_frame[:, :, 0] = np.cumsum(per_frame[:, :, 0], axis=1)
        levels = np.zeros_like(levels_zz)
        levels[:, order] = levels_zz
        qm = quant_matrix(n, step, tilt, 1.0 if index == 0 else factor)
        coefs = levels.reshape(-1, n, n) * qm
        pixels = basis.T @ coefs @ basis + 128.0
        plane = from_blocks(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), t, ph, pw)
        out.append(np.ascontiguousarray(plane[:, :ph_src, :pw_src]))
    return out[0], out[1], out[2]
