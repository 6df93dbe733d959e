"""Bjontegaard deltas between two rate-distortion curves: BD-rate (percent) and BD-PSNR (dB).

Rates are in kbit/s and PSNR in dB. BD-rate interpolates log10(rate) as a function of PSNR,
BD-PSNR interpolates PSNR as a function of log10(rate); each interpolant is integrated exactly
over the interval the two curves share and the difference (test minus anchor) is averaged.
The library never prints: anything worth a warning comes back as a string in the result.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

from aicodec.errors import BDRateError

FloatArray = NDArray[np.float64]

METHODS: tuple[str, ...] = ("pchip", "akima", "cubic")
DEFAULT_METHOD = "pchip"
DEFAULT_MIN_OVERLAP = 0.75
MIN_POINTS = 4


@dataclass(frozen=True)
class RDPoint:
    """One rate-distortion point: bitrate in kbit/s, PSNR in dB."""

    kbps: float
    psnr: float


@dataclass
class BDResult:
    """Test against anchor: BD-rate in percent, BD-PSNR in dB (None where undefined),
    overlaps as fractions 0..1."""

    bd_rate_percent: float | None
    bd_psnr_db: float | None
    method: str
    overlap_psnr: float
    overlap_rate: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """Return the result as plain values (percent, dB, fractions 0..1, warning strings)."""
        return asdict(self)


@dataclass(frozen=True)
class _Curve:
    """A validated curve sorted by rate: kbit/s, log10(kbit/s) and dB, all strictly increasing."""

    kbps: FloatArray
    log_rate: FloatArray
    psnr: FloatArray


@dataclass(frozen=True)
class _Overlap:
    """Shared interval [lo, hi] of two domains and its fraction (0..1) of their union."""

    lo: float
    hi: float
    fraction: float


# --- validation -------------------------------------------------------------------------------


def signed_percent(value: float | None) -> str:
    """A BD-rate for text: ``-1.59 %`` (two decimals, signed), or ``undefined`` for None."""
    return "undefined" if value is None else f"{value:+.2f} %"


def _check_options(method: str, min_overlap: float) -> None:
    """Reject an unknown interpolation method or a minimum overlap outside 0..1."""
    if method not in METHODS:
        raise BDRateError(f"unknown BD method {method!r}; use one of {', '.join(METHODS)}")
    if not 0.0 <= min_overlap <= 1.0:
        raise BDRateError(f"minimum BD overlap must lie between 0 and 1, got {min_overlap!r}")


def _fmt_point(kbps: float, psnr: float) -> str:
    """Format one point as '(kbit/s, dB)' for error messages."""
    return f"({kbps:.10g} kbit/s, {psnr:.10g} dB)"


def _as_float(value: object, what: str) -> float:
    """Convert a coordinate to float, or fail with a BDRateError naming it."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BDRateError(f"{what} is {value!r}, not a number") from None


def _prepare(points: Sequence[RDPoint], name: str) -> _Curve:
    """Validate one curve (count, finiteness, duplicates, monotonicity) and sort it by rate."""
    if len(points) < MIN_POINTS:
        raise BDRateError(
            f"{name} curve has {len(points)} point(s); BD needs at least {MIN_POINTS}"
        )
    pairs: list[tuple[float, float]] = []
    for index, point in enumerate(points, start=1):
        kbps = _as_float(point.kbps, f"{name} curve point {index} rate")
        psnr = _as_float(point.psnr, f"{name} curve point {index} PSNR")
        if not math.isfinite(kbps) or kbps <= 0.0:
            raise BDRateError(
                f"{name} curve point {index} has rate {kbps!r} kbit/s; "
                "rates must be finite and positive"
            )
        if not math.isfinite(psnr):
            raise BDRateError(
                f"{name} curve point {index} has PSNR {psnr!r} dB; PSNR must be finite"
            )
        pairs.append((kbps, psnr))
    pairs.sort()
    for (r0, p0), (r1, p1) in zip(pairs, pairs[1:], strict=False):
        if (r0, p0) == (r1, p1):
            raise BDRateError(f"{name} curve has the point {_fmt_point(r0, p0)} twice")
    for (r0, p0), (r1, p1) in zip(pairs, pairs[1:], strict=False):
        if not (r1 > r0 and p1 > p0):
            raise BDRateError(
                f"{name} curve is not monotone: {_fmt_point(r0, p0)} and {_fmt_point(r1, p1)} "
                "break it (rate must strictly increase with PSNR)"
            )
    kbps_arr = np.array([r for r, _ in pairs], dtype=np.float64)
    psnr_arr = np.array([p for _, p in pairs], dtype=np.float64)
    return _Curve(kbps=kbps_arr, log_rate=np.log10(kbps_arr), psnr=psnr_arr)


# --- core -------------------------------------------------------------------------------------


def _overlap(x_anchor: FloatArray, x_test: FloatArray) -> _Overlap:
    """Intersection of two sorted domains and its share (0..1) of their union."""
    lo = max(float(x_anchor[0]), float(x_test[0]))
    hi = min(float(x_anchor[-1]), float(x_test[-1]))
    union = max(float(x_anchor[-1]), float(x_test[-1])) - min(float(x_anchor[0]), float(x_test[0]))
    return _Overlap(lo=lo, hi=hi, fraction=max(hi - lo, 0.0) / union)


def _integrate(x: FloatArray, y: FloatArray, method: str, lo: float, hi: float) -> float:
    """Exact integral over [lo, hi] of the method's interpolant of y(x), in units of y times x."""
    if method == "pchip":
        return float(PchipInterpolator(x, y).integrate(lo, hi))
    if method == "akima":
        return float(Akima1DInterpolator(x, y).integrate(lo, hi))
    antiderivative = np.polyint(np.polyfit(x, y, 3))
    return float(np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo))


def _average_gap(
    x_anchor: FloatArray,
    y_anchor: FloatArray,
    x_test: FloatArray,
    y_test: FloatArray,
    method: str,
    shared: _Overlap,
) -> float:
    """Mean of test minus anchor interpolants over the shared interval, in units of y."""
    area_test = _integrate(x_test, y_test, method, shared.lo, shared.hi)
    area_anchor = _integrate(x_anchor, y_anchor, method, shared.lo, shared.hi)
    return (area_test - area_anchor) / (shared.hi - shared.lo)


def _psnr_range(curve: _Curve) -> str:
    """PSNR range of a curve as text, in dB."""
    return f"{curve.psnr[0]:.10g} to {curve.psnr[-1]:.10g} dB"


def _rate_range(curve: _Curve) -> str:
    """Rate range of a curve as text, in kbit/s."""
    return f"{curve.kbps[0]:.10g} to {curve.kbps[-1]:.10g} kbit/s"


def _low_overlap_warning(
    domain: str, fraction: float, min_overlap: float, anchor_range: str, test_range: str
) -> str:
    """Warning text for a shared interval below the minimum (percent of the union)."""
    return (
        f"{domain} overlap of the curves is {fraction * 100:.1f}%, below the "
        f"{min_overlap * 100:g}% minimum (anchor {anchor_range}, test {test_range}); "
        "the delta describes only the shared part"
    )


def _rate_delta(
    anchor: _Curve, test: _Curve, method: str, min_overlap: float
) -> tuple[float, float, list[str]]:
    """BD-rate in percent, the PSNR-domain overlap (0..1) and any warning."""
    shared = _overlap(anchor.psnr, test.psnr)
    if shared.fraction <= 0.0:
        raise BDRateError(
            f"curves do not overlap in PSNR (anchor {_psnr_range(anchor)}, "
            f"test {_psnr_range(test)}); BD-rate is undefined"
        )
    notes: list[str] = []
    if shared.fraction < min_overlap:
        notes.append(
            _low_overlap_warning(
                "PSNR", shared.fraction, min_overlap, _psnr_range(anchor), _psnr_range(test)
            )
        )
    gap = _average_gap(anchor.psnr, anchor.log_rate, test.psnr, test.log_rate, method, shared)
    return (10.0**gap - 1.0) * 100.0, shared.fraction, notes


def _psnr_delta(
    anchor: _Curve, test: _Curve, method: str, min_overlap: float
) -> tuple[float, float, list[str]]:
    """BD-PSNR in dB, the log-rate-domain overlap (0..1) and any warning."""
    shared = _overlap(anchor.log_rate, test.log_rate)
    if shared.fraction <= 0.0:
        raise BDRateError(
            f"curves do not overlap in rate (anchor {_rate_range(anchor)}, "
            f"test {_rate_range(test)}); BD-PSNR is undefined"
        )
    notes: list[str] = []
    if shared.fraction < min_overlap:
        notes.append(
            _low_overlap_warning(
                "log-rate", shared.fraction, min_overlap, _rate_range(anchor), _rate_range(test)
            )
        )
    gap = _average_gap(anchor.log_rate, anchor.psnr, test.log_rate, test.psnr, method, shared)
    return gap, shared.fraction, notes


# --- public API -------------------------------------------------------------------------------


def bd_compare(
    anchor: Sequence[RDPoint],
    test: Sequence[RDPoint],
    *,
    method: str = DEFAULT_METHOD,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> BDResult:
    """BD-rate (percent; negative: test needs fewer bits) and BD-PSNR (dB) of test vs anchor.

    A delta whose domain the curves do not share (PSNR for BD-rate, rate for BD-PSNR) is
    None with a warning; when neither is defined, BDRateError.
    """
    _check_options(method, min_overlap)
    anchor_curve = _prepare(anchor, "anchor")
    test_curve = _prepare(test, "test")
    deltas: list[tuple[float | None, float, list[str]]] = []
    failures: list[str] = []
    for delta in (_rate_delta, _psnr_delta):
        try:
            deltas.append(delta(anchor_curve, test_curve, method, min_overlap))
        except BDRateError as exc:
            failures.append(str(exc))
            deltas.append((None, 0.0, [str(exc)]))
    if len(failures) == 2:
        raise BDRateError(failures[0].replace("BD-rate is undefined", "BD is undefined"))
    (rate, overlap_psnr, rate_notes), (psnr, overlap_rate, psnr_notes) = deltas
    return BDResult(
        bd_rate_percent=rate,
        bd_psnr_db=psnr,
        method=method,
        overlap_psnr=overlap_psnr,
        overlap_rate=overlap_rate,
        warnings=rate_notes + psnr_notes,
    )


def bd_rate(
    anchor: Sequence[RDPoint], test: Sequence[RDPoint], *, method: str = DEFAULT_METHOD
) -> float:
    """BD-rate of test against anchor in percent (negative: test needs fewer bits)."""
    _check_options(method, 0.0)
    rate, _, _ = _rate_delta(_prepare(anchor, "anchor"), _prepare(test, "test"), method, 0.0)
    return rate


def bd_psnr(
    anchor: Sequence[RDPoint], test: Sequence[RDPoint], *, method: str = DEFAULT_METHOD
) -> float:
    """BD-PSNR of test against anchor in dB (positive: test has higher quality)."""
    _check_options(method, 0.0)
    psnr, _, _ = _psnr_delta(_prepare(anchor, "anchor"), _prepare(test, "test"), method, 0.0)
    return psnr


# --- reading curves ---------------------------------------------------------------------------


def _is_json(path: Path, text: str) -> bool:
    """Whether a curve file is JSON: by suffix, else by its first non-blank character."""
    suffix = path.suffix.lower()
    if suffix in (".json", ".csv"):
        return suffix == ".json"
    return text.lstrip()[:1] in ("[", "{")


def _json_number(value: object) -> float | None:
    """A JSON number as float, or None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _json_point(item: object) -> RDPoint | None:
    """One JSON item ([kbps, psnr] or {"kbps": .., "psnr": ..}) as a point, or None."""
    if isinstance(item, list) and len(item) == 2:
        kbps, psnr = _json_number(item[0]), _json_number(item[1])
    elif isinstance(item, dict) and "kbps" in item and "psnr" in item:
        kbps, psnr = _json_number(item["kbps"]), _json_number(item["psnr"])
    else:
        return None
    if kbps is None or psnr is None:
        return None
    return RDPoint(kbps=kbps, psnr=psnr)


def _parse_json(path: Path, text: str) -> list[RDPoint]:
    """Points of a JSON list of [kbps, psnr] pairs or of {"kbps", "psnr"} objects."""
    expected = "a list of [kbps, psnr] pairs or of objects with 'kbps' and 'psnr' keys"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BDRateError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise BDRateError(f"{path} holds a JSON {type(data).__name__}; expected {expected}")
    if not data:
        raise BDRateError(f"{path} holds an empty list; expected {expected}")
    points: list[RDPoint] = []
    for index, item in enumerate(data, start=1):
        point = _json_point(item)
        if point is None:
            shown = repr(item)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise BDRateError(f"{path}: item {index} is {shown}; expected {expected}")
        points.append(point)
    return points


def _parse_csv(path: Path, text: str) -> list[RDPoint]:
    """Points of a CSV whose header names 'kbps' and 'psnr' columns (others ignored)."""
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append((reader.line_num, row))
    if not rows:
        raise BDRateError(f"RD curve file {path} is empty")
    names = [cell.strip().lower() for cell in rows[0][1]]
    if "kbps" not in names or "psnr" not in names:
        found = ", ".join(repr(cell.strip()) for cell in rows[0][1])
        raise BDRateError(f"{path}: CSV header needs columns 'kbps' and 'psnr'; found {found}")
    columns = {"kbps": names.index("kbps"), "psnr": names.index("psnr")}
    if len(rows) == 1:
        raise BDRateError(f"{path}: CSV has a header but no data rows")
    points: list[RDPoint] = []
    for data_row, (line, row) in enumerate(rows[1:], start=1):
        values: dict[str, float] = {}
        for name, column in columns.items():
            cell = row[column].strip() if column < len(row) else ""
            try:
                values[name] = float(cell)
            except ValueError:
                raise BDRateError(
                    f"{path}: data row {data_row} (line {line}) has {name} {cell!r}, not a number"
                ) from None
        points.append(RDPoint(kbps=values["kbps"], psnr=values["psnr"]))
    return points


def load_curve(path: Path) -> list[RDPoint]:
    """Read an RD curve (kbit/s, dB) from a CSV with kbps/psnr columns or a JSON list."""
    path = Path(path)
    if not path.exists():
        raise BDRateError(f"RD curve file {path} does not exist")
    if not path.is_file():
        raise BDRateError(f"RD curve path {path} is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BDRateError(f"cannot read RD curve file {path}: {exc}") from None
    if not text.strip():
        raise BDRateError(f"RD curve file {path} is empty")
    if _is_json(path, text):
        return _parse_json(path, text)
    return _parse_csv(path, text)


def rate_change_at_equal_psnr(anchor: Sequence[RDPoint], test: Sequence[RDPoint]) -> float:
    """The rate test needs at the anchor's quality, in percent more (negative: fewer bits),
    from as few as two points each: the anchor's log-rate is fitted as a straight line in
    PSNR (least squares) and each test point is held against the line at its own PSNR; the
    figure is the geometric mean of the ratios. For curves straight in (PSNR, log-rate) it
    equals the BD-rate; it is the cheap first stage's figure, not a BD-rate."""
    anchor_curve, test_curve = _line_points(anchor, "anchor"), _line_points(test, "test")
    psnr, log_rate = anchor_curve[:, 1], np.log(anchor_curve[:, 0])
    if np.ptp(psnr) <= 0:
        raise BDRateError("anchor points share one PSNR: no line through them")
    slope, intercept = np.polyfit(psnr, log_rate, 1)
    expected = intercept + slope * test_curve[:, 1]
    gap = float(np.mean(np.log(test_curve[:, 0]) - expected))
    return (math.exp(gap) - 1.0) * 100.0


def _line_points(points: Sequence[RDPoint], name: str) -> FloatArray:
    """(kbit/s, PSNR dB) rows of at least two finite points with a positive rate."""
    rows = [(_as_float(p.kbps, f"{name} rate"), _as_float(p.psnr, f"{name} PSNR")) for p in points]
    if len(rows) < 2:
        raise BDRateError(f"{name} has {len(rows)} point(s); the line needs at least 2")
    if not all(math.isfinite(value) for row in rows for value in row):
        raise BDRateError(f"{name} has a point that is not finite")
    if any(kbps <= 0 for kbps, _ in rows):
        raise BDRateError(f"{name} has a point with no positive rate")
    return np.array(rows, dtype=float)
