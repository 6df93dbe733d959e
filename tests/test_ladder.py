"""The ladder data file and the rate-point search that matches curves to the anchor's range."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from aicodec.errors import BaselineError
from aicodec.ladder.search import choose_rates, next_guess
from aicodec.ladder.spec import load_ladder
from aicodec.settings import Settings


def test_shipped_ladder_has_every_encoder_the_lab_promises() -> None:
    ladder = load_ladder(Settings().ladder_file)
    libraries = {spec.args[spec.args.index("-c:v") + 1] for spec in ladder.encoders.values()}
    assert libraries == {
        "libx264",
        "libx265",
        "libsvtav1",
        "libaom-av1",
        "libvvenc",
        "mpeg2video",
        "mjpeg",
    }
    assert ladder.anchor == "x264-medium"
    assert len(ladder.anchor_rates) >= 4
    x264 = ladder.encoders["x264-medium"]
    assert "-tune" in x264.args and "psnr" in x264.args and "medium" in x264.args


def test_encoder_names_are_selected_by_full_or_short_name() -> None:
    ladder = load_ladder(Settings().ladder_file)
    names = [spec.name for spec in ladder.select(["vvenc", "x265-medium"])]
    assert names == ["x264-medium", "vvenc-medium", "x265-medium"]  # anchor always first
    with pytest.raises(BaselineError, match="unknown encoder 'hm'; the ladder has x264-medium"):
        ladder.select(["hm"])


def test_settings_hash_changes_with_anything_that_changes_the_output() -> None:
    spec = load_ladder(Settings().ladder_file).encoders["x264-medium"]
    assert spec.settings_hash(2) == spec.settings_hash(2)
    assert spec.settings_hash(2) != spec.settings_hash(4)


def test_encode_command_reads_raw_frames_and_strips_banner_sei() -> None:
    spec = load_ladder(Settings().ladder_file).encoders["x264-medium"]
    args = spec.encode_args(27, 2, 352, 288, Fraction(30000, 1001))
    assert args[args.index("-crf") + 1] == "27"
    assert args[args.index("-framerate") + 1] == "30000/1001"
    assert "filter_units=remove_types=6" in args
    assert args[-3:] == ["-f", "h264", "pipe:1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("anchor = 'x'", "defines no"),
        ("[encoders.a]\nformat='h264'", "lacks rate_option"),
        (
            "anchor='a'\nanchor_rates=[1,2,3]\n[encoders.a]\nformat='h264'\nrate_option='crf'\n"
            "rate_min=0\nrate_max=51\ndb_per_step=0.5\nargs=['-crf','{rate}']",
            "at least 4 distinct",
        ),
        (
            "anchor='b'\n[encoders.a]\nformat='h264'\nrate_option='crf'\nrate_min=0\n"
            "rate_max=51\ndb_per_step=0.5\nargs=['-crf','{rate}']",
            "anchor 'b' is not one",
        ),
        (
            "[encoders.a]\nformat='h264'\nrate_option='crf'\nrate_min=0\nrate_max=51\n"
            "db_per_step=0.5\nargs=['-crf','27']",
            "must contain",
        ),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_bad_ladder_files_are_named_precisely(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ladder.toml"
    path.write_text(text)
    with pytest.raises(BaselineError, match=message):
        load_ladder(path)


def test_missing_ladder_file() -> None:
    with pytest.raises(BaselineError, match="does not exist"):
        load_ladder(Path("/no/such/ladder.toml"))


def model_encoder(slope: float, offset: float, calls: list[int]):
    """A synthetic encoder whose PSNR-Y falls linearly-ish with its quantiser (dB)."""

    def evaluate(rate: int) -> float:
        calls.append(rate)
        return offset - slope * rate - 0.004 * rate * rate

    return evaluate


@pytest.mark.parametrize(("slope", "offset"), [(0.45, 52.0), (0.25, 48.0), (0.9, 60.0)])
def test_search_hits_each_target_within_tolerance(slope: float, offset: float) -> None:
    calls: list[int] = []
    evaluate = model_encoder(slope, offset, calls)
    targets = [44.1, 41.3, 38.2, 35.0]
    rates = choose_rates(
        evaluate,
        targets,
        lo=0,
        hi=63,
        start=31,
        db_per_step=0.45,
        tolerance_db=0.3,
        max_encodes_per_target=6,
    )
    assert len(rates) == len(set(rates)) == 4
    achieved = sorted((evaluate(rate) for rate in rates), reverse=True)
    for target, value in zip(sorted(targets, reverse=True), achieved, strict=True):
        # the nearest integer quantiser is at most half a step away from the target
        step = slope + 0.008 * 63
        assert abs(value - target) <= max(0.3, step / 2)
    assert len(set(calls)) == len(calls) - 4  # never evaluates a value twice during search
    assert len(calls) - 4 <= 4 * 6 + 1


def test_search_keeps_distinct_points_when_the_encoder_saturates() -> None:
    calls: list[int] = []

    def weak(rate: int) -> float:  # cannot exceed 36 dB however fine the quantiser
        calls.append(rate)
        return min(36.0, 40.0 - 0.8 * rate)

    rates = choose_rates(
        weak,
        [44.0, 41.0, 38.0, 35.0],
        lo=2,
        hi=31,
        start=16,
        db_per_step=0.8,
        tolerance_db=0.3,
        max_encodes_per_target=5,
    )
    assert len(rates) == len(set(rates)) == 4
    assert min(rates) >= 2


def test_next_guess_interpolates_inside_a_bracket() -> None:
    assert next_guess({20: 40.0, 30: 35.0}, 37.5, 0, 51, 0.5) == 25
    assert next_guess({24: 38.0, 25: 37.0}, 37.5, 0, 51, 0.5) is None
    assert next_guess({30: 35.0}, 40.0, 0, 51, 0.5) == 20
    assert next_guess({0: 50.0}, 55.0, 0, 51, 0.5) is None  # cannot go below the range
