"""The SSIM kernel: Wang et al. (2004) SSIM of a luma strip, fused and compiled with numba.

One pass over the input rows: each row is centred on 128 (so float32 keeps the variances
exact to ~1e-7), its four local statistics (x, y, x*x + y*y, x*y) are filtered by the
11-tap Gaussian horizontally into an 11-row ring, and as soon as 11 rows are there the
vertical taps and the SSIM formula produce one output row. Nothing frame-sized is written,
so the work stays in the CPU's caches. The squared luma error is summed exactly (integers)
on the way, for PSNR-Y.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numba
import numpy as np

WINDOW = 11
RADIUS = (WINDOW - 1) // 2
SIGMA = 1.5
PEAK = 255.0
C1 = (0.01 * PEAK) ** 2
C2 = (0.03 * PEAK) ** 2
CENTRE = 128.0


def gaussian_taps() -> np.ndarray:
    """The normalised 11-tap Gaussian (sigma 1.5) as float32, computed in float64."""
    offsets = np.arange(WINDOW, dtype=np.float64) - RADIUS
    weights = np.exp(-(offsets**2) / (2.0 * SIGMA**2))
    return (weights / weights.sum()).astype(np.float32)


TAPS = gaussian_taps()


def numba_cache_dir() -> str | None:
    """A folder this user can write for numba's compiled kernels: NUMBA_CACHE_DIR if set,
    else ``$XDG_CACHE_HOME/aicodec/numba`` (``~/.cache`` by default), else one under the
    temporary folder; None when none is writable (the kernels are then not cached). Never
    the package's own folder, which another user of the installation cannot write."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    home_cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    candidates = [Path(home_cache) / "aicodec" / "numba"]
    candidates.append(Path(tempfile.gettempdir()) / f"aicodec-numba-{os.getuid()}")
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except (OSError, RuntimeError):  # RuntimeError: no home folder to expand
            continue
        if os.access(folder, os.W_OK | os.X_OK) and folder.stat().st_uid == os.getuid():
            return str(folder)
    return None


CACHE_DIR = numba_cache_dir()
if CACHE_DIR is not None:
    # read as each cached kernel below is declared (numba's stub does not list it)
    numba.config.CACHE_DIR = CACHE_DIR  # type: ignore[attr-defined]
CACHED = CACHE_DIR is not None
# the serial kernels: no GIL, fast math, cached on disk, numpy's error model
_jit = numba.njit(nogil=True, fastmath=True, cache=CACHED, error_model="numpy")


@_jit
def _centre_row(xr, yr, a, b, q, p):
    """Centred samples and their products for one row; returns the row's squared error."""
    centre = np.float32(CENTRE)
    sse: int | np.integer = 0  # numba: int64
    for c in range(xr.shape[0]):
        xi = np.int32(xr[c])
        yi = np.int32(yr[c])
        diff = xi - yi
        sse += diff * diff
        av = np.float32(xi) - centre
        bv = np.float32(yi) - centre
        a[c] = av
        b[c] = bv
        q[c] = av * av + bv * bv
        p[c] = av * bv
    return sse


@_jit
def _horizontal(src, dst, g):
    """dst[c] = sum of g[j] * src[c + j], j = 0..10 (symmetric taps paired)."""
    g0, g1, g2, g3, g4, g5 = g[0], g[1], g[2], g[3], g[4], g[5]
    for c in range(dst.shape[0]):
        dst[c] = (
            g0 * (src[c] + src[c + 10])
            + g1 * (src[c + 1] + src[c + 9])
            + g2 * (src[c + 2] + src[c + 8])
            + g3 * (src[c + 3] + src[c + 7])
            + g4 * (src[c + 4] + src[c + 6])
            + g5 * src[c + 5]
        )


@_jit
def _vertical_ssim(mx, my, mq, mp, base, g, out):
    """Sum of one SSIM output row from the 11 ring rows starting at ``base``."""
    g0, g1, g2, g3, g4, g5 = g[0], g[1], g[2], g[3], g[4], g[5]
    n = WINDOW
    i0, i1, i2, i3 = base % n, (base + 1) % n, (base + 2) % n, (base + 3) % n
    i4, i5, i6, i7 = (base + 4) % n, (base + 5) % n, (base + 6) % n, (base + 7) % n
    i8, i9, i10 = (base + 8) % n, (base + 9) % n, (base + 10) % n
    centre, two = np.float32(CENTRE), np.float32(2.0)
    c1, c2 = np.float32(C1), np.float32(C2)
    for c in range(out.shape[0]):
        ma = (
            g0 * (mx[i0, c] + mx[i10, c])
            + g1 * (mx[i1, c] + mx[i9, c])
            + g2 * (mx[i2, c] + mx[i8, c])
            + g3 * (mx[i3, c] + mx[i7, c])
            + g4 * (mx[i4, c] + mx[i6, c])
            + g5 * mx[i5, c]
        )
        mb = (
            g0 * (my[i0, c] + my[i10, c])
            + g1 * (my[i1, c] + my[i9, c])
            + g2 * (my[i2, c] + my[i8, c])
            + g3 * (my[i3, c] + my[i7, c])
            + g4 * (my[i4, c] + my[i6, c])
            + g5 * my[i5, c]
        )
        eq = (
            g0 * (mq[i0, c] + mq[i10, c])
            + g1 * (mq[i1, c] + mq[i9, c])
            + g2 * (mq[i2, c] + mq[i8, c])
            + g3 * (mq[i3, c] + mq[i7, c])
            + g4 * (mq[i4, c] + mq[i6, c])
            + g5 * mq[i5, c]
        )
        ep = (
            g0 * (mp[i0, c] + mp[i10, c])
            + g1 * (mp[i1, c] + mp[i9, c])
            + g2 * (mp[i2, c] + mp[i8, c])
            + g3 * (mp[i3, c] + mp[i7, c])
            + g4 * (mp[i4, c] + mp[i6, c])
            + g5 * mp[i5, c]
        )
        ux = ma + centre
        uy = mb + centre
        num = (two * ux * uy + c1) * (two * (ep - ma * mb) + c2)
        den = (ux * ux + uy * uy + c1) * (eq - ma * ma - mb * mb + c2)
        out[c] = num / den
    row = np.float32(0.0)
    for c in range(out.shape[0]):
        row += out[c]
    return row


@_jit
def strip_ssim_sse(x, y, first, last, sse_first, sse_last):
    """SSIM-map sum over output rows [first, last) and squared error over [sse_first, sse_last).

    ``x`` and ``y`` are uint8 [H, W] planes; output row r is the window centred on input row
    r, so 5 <= first < last <= H - 5; the map's columns are 5..W-6 (scikit-image's crop).
    """
    width = x.shape[1]
    inner = width - 2 * RADIUS
    rings = np.empty((4, WINDOW, inner), np.float32)
    rows = np.empty((4, width), np.float32)
    out = np.empty(inner, np.float32)
    g = TAPS
    total = 0.0
    sse = 0
    for r in range(first - RADIUS, last + RADIUS):
        row_sse = _centre_row(x[r], y[r], rows[0], rows[1], rows[2], rows[3])
        if sse_first <= r < sse_last:
            sse += row_sse
        slot = r % WINDOW
        for k in range(4):
            _horizontal(rows[k], rings[k, slot], g)
        if r >= first + RADIUS:
            base = (r - 2 * RADIUS) % WINDOW
            total += _vertical_ssim(rings[0], rings[1], rings[2], rings[3], base, g, out)
    return total, sse


@numba.njit(parallel=True, nogil=True, cache=CACHED)
def frames_ssim_sse(x, y, strips):
    """Per-frame SSIM-map sums and luma squared errors of uint8 [T, H, W] planes.

    ``strips`` is an int64 [S, 2] array of output row ranges tiling rows 5..H-5; every
    (frame, strip) pair is one parallel work item, so even a single frame uses all threads.
    """
    count, height = x.shape[0], x.shape[1]
    items = count * strips.shape[0]
    sums = np.zeros(items)
    sses = np.zeros(items, np.int64)
    for item in numba.prange(items):
        frame = item // strips.shape[0]
        first, last = strips[item % strips.shape[0], 0], strips[item % strips.shape[0], 1]
        sse_first = 0 if first == RADIUS else first
        sse_last = height if last == height - RADIUS else last
        total, sse = strip_ssim_sse(x[frame], y[frame], first, last, sse_first, sse_last)
        sums[item] = total
        sses[item] = sse
    return sums.reshape(count, -1).sum(axis=1), sses.reshape(count, -1).sum(axis=1)
