"""Tests of the Bjontegaard delta module against the reference implementation and by properties."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from aicodec.errors import BDRateError
from aicodec.scoring.bdrate import (
    DEFAULT_METHOD,
    DEFAULT_MIN_OVERLAP,
    METHODS,
    BDResult,
    RDPoint,
    bd_compare,
    bd_psnr,
    bd_rate,
    load_curve,
    rate_change_at_equal_psnr,
)
from aicodec.settings import Settings

TOL = 1e-3  # percentage points for BD-rate, dB for BD-PSNR


def curve(kbps: Sequence[float], psnr: Sequence[float]) -> list[RDPoint]:
    """Points from parallel rate (kbit/s) and PSNR (dB) lists."""
    return [RDPoint(kbps=float(r), psnr=float(p)) for r, p in zip(kbps, psnr, strict=True)]


# Published example data of the bjontegaard package (anchor, test), rates in kbit/s, PSNR in dB.
EXAMPLE = (
    ([9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851]),
    ([9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987]),
)
HIGH_RATE = (
    ([82472.76, 26875.24, 9487.76, 4593.6], [43.825, 41.404, 40.037, 38.615]),
    ([99896.96, 33952.04, 9787.8, 4469.0], [44.731, 41.875, 40.121, 38.651]),
)
SIX_POINTS = (
    (
        [82472.76, 26875.24, 9487.76, 4593.6, 3600, 2900],
        [43.825, 41.404, 40.037, 38.615, 36.5, 35.1],
    ),
    (
        [99896.96, 33952.04, 9787.8, 4469.0, 4040, 3300],
        [44.731, 41.875, 40.121, 38.651, 37, 36.5],
    ),
)
CASES = {"example": EXAMPLE, "high_rate": HIGH_RATE, "six_points": SIX_POINTS}

# bjontegaard 1.3 with method="pchip" on EXAMPLE, computed once and written down here so that a
# change in either implementation is caught.
PINNED_PCHIP_BD_RATE = -4.4175  # percent
PINNED_PCHIP_BD_PSNR = 0.1197  # dB

ANCHOR = curve([1000, 2000, 4000, 8000], [32.0, 35.0, 38.0, 41.0])


@pytest.fixture(scope="module")
def bjontegaard() -> ModuleType:
    """The reference package; its pchip reproduces the JCT-VC/JVET Excel sheet."""
    return pytest.importorskip("bjontegaard")


def reference(
    bd: ModuleType,
    anchor: tuple[Sequence[float], Sequence[float]],
    test: tuple[Sequence[float], Sequence[float]],
    method: str,
) -> tuple[float, float]:
    """BD-rate (percent) and BD-PSNR (dB) from the bjontegaard package."""
    args = (anchor[0], anchor[1], test[0], test[1])
    options = {"method": method, "require_matching_points": False, "min_overlap": 0}
    return float(bd.bd_rate(*args, **options)), float(bd.bd_psnr(*args, **options))


# --- agreement with the reference ----------------------------------------------------------------
# The bjontegaard package's pchip reproduces the JCT-VC/JVET common-test-condition Excel sheet to
# 10 decimals (its authors' statement), so agreeing with it is agreeing with the reference sheet.


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_bjontegaard_on_published_data(
    bjontegaard: ModuleType, case: str, method: str
) -> None:
    anchor, test = CASES[case]
    want_rate, want_psnr = reference(bjontegaard, anchor, test, method)
    result = bd_compare(curve(*anchor), curve(*test), method=method, min_overlap=0.0)
    assert result.bd_rate_percent == pytest.approx(want_rate, abs=TOL)
    assert result.bd_psnr_db == pytest.approx(want_psnr, abs=TOL)
    assert result.method == method


def test_pinned_pchip_values_of_the_example() -> None:
    anchor, test = EXAMPLE
    result = bd_compare(curve(*anchor), curve(*test))
    assert result.bd_rate_percent == pytest.approx(PINNED_PCHIP_BD_RATE, abs=TOL)
    assert result.bd_psnr_db == pytest.approx(PINNED_PCHIP_BD_PSNR, abs=TOL)
    assert result.warnings == []


def test_pinned_values_are_what_the_package_gives(bjontegaard: ModuleType) -> None:
    want_rate, want_psnr = reference(bjontegaard, *EXAMPLE, "pchip")
    assert want_rate == pytest.approx(PINNED_PCHIP_BD_RATE, abs=TOL)
    assert want_psnr == pytest.approx(PINNED_PCHIP_BD_PSNR, abs=TOL)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the union of two domains covered by their intersection."""
    shared = min(a.max(), b.max()) - max(a.min(), b.min())
    return max(shared, 0.0) / (max(a.max(), b.max()) - min(a.min(), b.min()))


def _random_pairs(count: int, seed: int = 20240611) -> list[tuple[np.ndarray, ...]]:
    """Monotone anchor/test curve pairs with at least 60 % overlap in both domains."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[np.ndarray, ...]] = []
    while len(pairs) < count:
        n_anchor, n_test = (int(n) for n in rng.integers(4, 9, size=2))
        log_start, psnr_start = rng.uniform(2.0, 3.5), rng.uniform(26.0, 34.0)
        lr_a = log_start + np.cumsum(rng.uniform(0.1, 0.35, n_anchor))
        ps_a = psnr_start + np.cumsum(rng.uniform(0.8, 3.0, n_anchor))
        lr_t = log_start + rng.uniform(-0.15, 0.15) + np.cumsum(rng.uniform(0.1, 0.35, n_test))
        ps_t = psnr_start + rng.uniform(-1.0, 1.0) + np.cumsum(rng.uniform(0.8, 3.0, n_test))
        if min(_overlap(ps_a, ps_t), _overlap(lr_a, lr_t)) >= 0.6:
            pairs.append((10**lr_a, ps_a, 10**lr_t, ps_t))
    return pairs


RANDOM_PAIRS = _random_pairs(300)


@pytest.mark.parametrize("method", METHODS)
def test_matches_bjontegaard_on_random_curves(bjontegaard: ModuleType, method: str) -> None:
    for rate_a, psnr_a, rate_t, psnr_t in RANDOM_PAIRS:
        want_rate, want_psnr = reference(bjontegaard, (rate_a, psnr_a), (rate_t, psnr_t), method)
        result = bd_compare(
            curve(rate_a, psnr_a), curve(rate_t, psnr_t), method=method, min_overlap=0.0
        )
        assert result.bd_rate_percent == pytest.approx(want_rate, abs=TOL)
        assert result.bd_psnr_db == pytest.approx(want_psnr, abs=TOL)
        assert result.overlap_psnr == pytest.approx(_overlap(psnr_a, psnr_t), abs=1e-12)
        assert result.overlap_rate == pytest.approx(
            _overlap(np.log10(rate_a), np.log10(rate_t)), abs=1e-12
        )


# --- properties ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method: str) -> None:
    anchor, _ = SIX_POINTS
    result = bd_compare(curve(*anchor), curve(*anchor), method=method)
    assert result.bd_rate_percent == pytest.approx(0.0, abs=1e-9)
    assert result.bd_psnr_db == pytest.approx(0.0, abs=1e-9)
    assert result.overlap_psnr == 1.0
    assert result.overlap_rate == 1.0
    assert result.warnings == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_ten_percent_fewer_bits_is_minus_ten_percent(case: str, method: str) -> None:
    rates, psnrs = CASES[case][0]
    anchor = curve(rates, psnrs)
    test = curve([0.9 * r for r in rates], psnrs)
    assert bd_rate(anchor, test, method=method) == pytest.approx(-10.0, abs=1e-9)
    assert bd_compare(anchor, test, method=method).overlap_psnr == 1.0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_swapping_anchor_and_test_inverts_the_rate_ratio(case: str, method: str) -> None:
    anchor, test = (curve(*side) for side in CASES[case])
    forward = bd_compare(anchor, test, method=method, min_overlap=0.0)
    backward = bd_compare(test, anchor, method=method, min_overlap=0.0)
    r = forward.bd_rate_percent / 100.0
    assert backward.bd_rate_percent / 100.0 == pytest.approx(1.0 / (1.0 + r) - 1.0, abs=1e-12)
    assert backward.bd_psnr_db == pytest.approx(-forward.bd_psnr_db, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_point_order_does_not_matter(method: str) -> None:
    anchor, test = (curve(*side) for side in SIX_POINTS)
    shuffled_anchor, shuffled_test = list(anchor), list(test)
    random.Random(7).shuffle(shuffled_anchor)
    random.Random(8).shuffle(shuffled_test)
    assert bd_compare(shuffled_anchor, shuffled_test, method=method) == bd_compare(
        anchor, test, method=method
    )


def test_conveniences_agree_with_compare() -> None:
    anchor, test = (curve(*side) for side in HIGH_RATE)
    result = bd_compare(anchor, test, method="akima")
    assert bd_rate(anchor, test, method="akima") == result.bd_rate_percent
    assert bd_psnr(anchor, test, method="akima") == result.bd_psnr_db


def test_better_test_curve_has_negative_rate_and_positive_psnr() -> None:
    test = [RDPoint(kbps=p.kbps * 0.8, psnr=p.psnr) for p in ANCHOR]
    result = bd_compare(ANCHOR, test)
    assert result.bd_rate_percent < 0
    assert result.bd_psnr_db > 0


def test_result_to_dict() -> None:
    result = bd_compare(*(curve(*side) for side in EXAMPLE))
    data = result.to_dict()
    assert set(data) == {
        "bd_rate_percent",
        "bd_psnr_db",
        "method",
        "overlap_psnr",
        "overlap_rate",
        "warnings",
    }
    assert data["bd_rate_percent"] == result.bd_rate_percent
    assert data["method"] == "pchip"
    assert data["warnings"] == []
    json.dumps(data)
    assert isinstance(result, BDResult)


def test_defaults_follow_the_settings() -> None:
    assert Settings.model_fields["bd_method"].default == DEFAULT_METHOD
    assert Settings.model_fields["bd_min_overlap"].default == DEFAULT_MIN_OVERLAP


# --- overlap warning -----------------------------------------------------------------------------


def test_low_overlap_gives_a_warning() -> None:
    test = curve([1500, 3000, 6000, 12000], [37.0, 40.0, 43.0, 46.0])
    result = bd_compare(ANCHOR, test)
    assert result.overlap_psnr == pytest.approx(4.0 / 14.0)
    psnr_notes = [w for w in result.warnings if w.startswith("PSNR overlap")]
    assert len(psnr_notes) == 1
    assert "28.6%" in psnr_notes[0]
    assert "75% minimum" in psnr_notes[0]
    assert "32 to 41 dB" in psnr_notes[0] and "37 to 46 dB" in psnr_notes[0]
    assert math.isfinite(result.bd_rate_percent)


def test_low_overlap_warning_follows_min_overlap() -> None:
    test = curve([1500, 3000, 6000, 12000], [37.0, 40.0, 43.0, 46.0])
    # PSNR overlap 4/14 = 28.6 %, log-rate overlap about 67 %
    assert bd_compare(ANCHOR, test, min_overlap=0.0).warnings == []
    assert bd_compare(ANCHOR, test, min_overlap=0.25).warnings == []
    only_psnr = bd_compare(ANCHOR, test, min_overlap=0.5).warnings
    assert len(only_psnr) == 1 and only_psnr[0].startswith("PSNR overlap")
    both = bd_compare(ANCHOR, test, min_overlap=0.9).warnings
    assert [w.split()[0] for w in both] == ["PSNR", "log-rate"]
    assert "1000 to 8000 kbit/s" in both[1] and "1500 to 12000 kbit/s" in both[1]


def test_good_overlap_gives_no_warning() -> None:
    assert bd_compare(*(curve(*side) for side in EXAMPLE)).warnings == []


# --- errors --------------------------------------------------------------------------------------


def test_too_few_points_names_the_curve_and_count() -> None:
    with pytest.raises(BDRateError, match=r"anchor curve has 3 point\(s\); BD needs at least 4"):
        bd_compare(ANCHOR[:3], ANCHOR)
    with pytest.raises(BDRateError, match=r"test curve has 2 point\(s\)"):
        bd_compare(ANCHOR, ANCHOR[:2])


def test_non_monotone_curve_names_the_two_points() -> None:
    bent = curve([1000, 2000, 4000, 8000], [32.0, 36.0, 35.0, 41.0])
    with pytest.raises(BDRateError, match="test curve is not monotone") as info:
        bd_compare(ANCHOR, bent)
    assert "(2000 kbit/s, 36 dB)" in str(info.value)
    assert "(4000 kbit/s, 35 dB)" in str(info.value)


def test_equal_rates_are_not_monotone() -> None:
    flat = curve([1000, 2000, 2000, 8000], [32.0, 35.0, 36.0, 41.0])
    with pytest.raises(BDRateError, match="anchor curve is not monotone"):
        bd_compare(flat, ANCHOR)


def test_duplicate_point() -> None:
    doubled = [*ANCHOR, ANCHOR[1]]
    with pytest.raises(
        BDRateError, match=r"anchor curve has the point \(2000 kbit/s, 35 dB\) twice"
    ):
        bd_compare(doubled, ANCHOR)


@pytest.mark.parametrize("bad", [0.0, -5.0, math.nan, math.inf])
def test_bad_rate(bad: float) -> None:
    broken = [RDPoint(kbps=bad, psnr=30.0), *ANCHOR[1:]]
    with pytest.raises(BDRateError, match="point 1 has rate .* finite and positive"):
        bd_compare(broken, ANCHOR)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_psnr(bad: float) -> None:
    broken = [*ANCHOR[:3], RDPoint(kbps=9000.0, psnr=bad)]
    with pytest.raises(BDRateError, match="test curve point 4 has PSNR .* must be finite"):
        bd_compare(ANCHOR, broken)


def test_no_psnr_overlap_names_both_ranges() -> None:
    far = curve([1000, 2000, 4000, 8000], [42.0, 44.0, 46.0, 48.0])
    result = bd_compare(ANCHOR, far)  # same rates: BD-PSNR is still defined
    assert result.bd_rate_percent is None and result.bd_psnr_db is not None
    assert result.overlap_psnr == 0.0
    assert any("do not overlap in PSNR" in note for note in result.warnings)
    with pytest.raises(BDRateError, match="do not overlap in PSNR") as info:
        bd_rate(ANCHOR, far)
    assert "anchor 32 to 41 dB" in str(info.value)
    assert "test 42 to 48 dB" in str(info.value)


def test_same_quality_range_at_far_higher_rates_keeps_bd_rate() -> None:
    # a weak codec: the same PSNR range as the anchor, every rate above the anchor's
    weak = curve([9000, 18000, 36000, 72000], [32.0, 35.0, 38.0, 41.0])
    result = bd_compare(ANCHOR, weak)
    assert result.bd_psnr_db is None
    assert result.bd_rate_percent == pytest.approx(bd_rate(ANCHOR, weak))
    assert result.bd_rate_percent > 500
    assert any("do not overlap in rate" in note for note in result.warnings)


def test_curves_sharing_neither_range_are_an_error() -> None:
    far = curve([10000, 20000, 40000, 80000], [42.0, 44.0, 46.0, 48.0])
    with pytest.raises(BDRateError, match="do not overlap in PSNR .* BD is undefined"):
        bd_compare(ANCHOR, far)


def test_no_rate_overlap_for_bd_psnr_names_both_ranges() -> None:
    far = curve([10000, 20000, 40000, 80000], [32.0, 35.0, 38.0, 41.0])
    with pytest.raises(BDRateError, match="do not overlap in rate") as info:
        bd_psnr(ANCHOR, far)
    assert "anchor 1000 to 8000 kbit/s" in str(info.value)
    assert "test 10000 to 80000 kbit/s" in str(info.value)


def test_unknown_method() -> None:
    with pytest.raises(BDRateError, match="unknown BD method 'linear'"):
        bd_compare(ANCHOR, ANCHOR, method="linear")
    with pytest.raises(BDRateError, match="unknown BD method"):
        bd_rate(ANCHOR, ANCHOR, method="spline")


def test_min_overlap_out_of_range() -> None:
    with pytest.raises(BDRateError, match="between 0 and 1"):
        bd_compare(ANCHOR, ANCHOR, min_overlap=1.5)


# --- load_curve ----------------------------------------------------------------------------------

EXPECTED = [RDPoint(1000.0, 32.0), RDPoint(2000.0, 35.5), RDPoint(4000.0, 38.0)]


def test_load_csv_with_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "anchor.csv"
    path.write_text("qp,kbps,psnr,ssim\n37,1000,32,0.9\n32,2000,35.5,0.95\n27,4000,38,0.97\n")
    assert load_curve(path) == EXPECTED


def test_load_csv_reordered_columns_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "anchor.csv"
    path.write_text(" psnr , note, kbps \n32, a ,1000\n\n35.5,b, 2000\n38 ,c,4000\n")
    assert load_curve(path) == EXPECTED


def test_load_json_pairs(tmp_path: Path) -> None:
    path = tmp_path / "test.json"
    path.write_text(json.dumps([[1000, 32], [2000, 35.5], [4000, 38.0]]))
    assert load_curve(path) == EXPECTED


def test_load_json_objects(tmp_path: Path) -> None:
    path = tmp_path / "test.json"
    items = [{"kbps": 1000, "psnr": 32, "qp": 37}, {"psnr": 35.5, "kbps": 2000}]
    items.append({"kbps": 4000.0, "psnr": 38.0})
    path.write_text(json.dumps(items))
    assert load_curve(path) == EXPECTED


def test_loaded_curves_feed_bd_compare(tmp_path: Path) -> None:
    anchor, test = EXAMPLE
    anchor_path = tmp_path / "anchor.csv"
    anchor_path.write_text(
        "kbps,psnr\n" + "".join(f"{r},{p}\n" for r, p in zip(*anchor, strict=True))
    )
    test_path = tmp_path / "test.json"
    test_path.write_text(json.dumps([list(pair) for pair in zip(*test, strict=True)]))
    result = bd_compare(load_curve(anchor_path), load_curve(test_path))
    assert result.bd_rate_percent == pytest.approx(PINNED_PCHIP_BD_RATE, abs=TOL)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BDRateError, match="does not exist"):
        load_curve(tmp_path / "nope.csv")


@pytest.mark.parametrize("name", ["empty.csv", "empty.json"])
def test_load_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("  \n\n")
    with pytest.raises(BDRateError, match="is empty"):
        load_curve(path)


def test_load_csv_without_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    path.write_text("rate,quality\n1000,32\n")
    with pytest.raises(
        BDRateError, match="needs columns 'kbps' and 'psnr'; found 'rate', 'quality'"
    ):
        load_curve(path)


def test_load_csv_non_numeric_cell(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    path.write_text("kbps,psnr\n1000,32\n2000,n/a\n")
    with pytest.raises(BDRateError, match=r"data row 2 \(line 3\) has psnr 'n/a', not a number"):
        load_curve(path)


def test_load_csv_header_only(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    path.write_text("kbps,psnr\n")
    with pytest.raises(BDRateError, match="no data rows"):
        load_curve(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"kbps": [1000], "psnr": [32]}', "holds a JSON dict"),
        ("[[1000, 32], [2000]]", "item 2 is \\[2000\\]"),
        ('[["1000", 32]]', "item 1 is"),
        ('[{"kbps": 1000}]', "item 1 is"),
        ("[]", "empty list"),
        ("[[1000, 32],", "not valid JSON"),
    ],
)
def test_load_bad_json(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "curve.json"
    path.write_text(content)
    with pytest.raises(BDRateError, match=message):
        load_curve(path)


def test_the_first_stage_figure_is_the_bd_rate_of_straight_curves_from_two_points() -> None:
    anchor = [RDPoint(100.0 * math.exp(0.2 * step), 30.0 + step) for step in (0, 2, 4, 6)]
    test = [
        RDPoint(0.9 * 100.0 * math.exp(0.2 * (step + 0.5)), 30.5 + step) for step in (0, 2, 4, 6)
    ]
    full = bd_rate(anchor, test)
    assert full == pytest.approx(-10.0, abs=1e-9)  # straight in (PSNR, log rate): 0.9x
    assert rate_change_at_equal_psnr(anchor, test) == pytest.approx(full, abs=1e-9)
    two = rate_change_at_equal_psnr([anchor[0], anchor[-1]], [test[1], test[2]])
    assert two == pytest.approx(-10.0, abs=1e-9)
    worse = [RDPoint(point.kbps * 1.25, point.psnr) for point in anchor[:2]]
    assert rate_change_at_equal_psnr(anchor[:2], worse) == pytest.approx(25.0)
    with pytest.raises(BDRateError, match="anchor has 1 point"):
        rate_change_at_equal_psnr(anchor[:1], test)
    with pytest.raises(BDRateError, match="share one PSNR"):
        rate_change_at_equal_psnr([RDPoint(1.0, 30.0), RDPoint(2.0, 30.0)], test)
    with pytest.raises(BDRateError, match="not finite"):
        rate_change_at_equal_psnr(anchor, [RDPoint(1.0, math.inf), RDPoint(2.0, 31.0)])
