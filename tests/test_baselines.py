"""The standard-encoder ladder on real encoders: matched curves, honest bytes, the cache."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from aicodec.clips import Clip, load_clip
from aicodec.errors import FFmpegError
from aicodec.ffmpeg import run_ffmpeg
from aicodec.ladder import load_ladder, run_ladder, run_ladders
from aicodec.ladder.encoding import encode_and_decode, frames_from_raw, raw_input
from aicodec.scoring.metrics import compare
from aicodec.settings import Settings
from aicodec.store import BaselineEncode, RatePointChoice, Store
from tests.conftest import run_ffmpeg_cli


@pytest.fixture(scope="module")
def tiny_clip() -> Clip:
    """Four frames of the built-in clip: enough for every encoder, quick for the slow ones."""
    return load_clip(None, Settings(), count=4)


@pytest.fixture
def store(settings: Settings):
    opened = Store(settings.db)
    yield opened
    opened.close()


@pytest.mark.slow
def test_every_encoder_round_trips_deterministically(tiny_clip: Clip) -> None:
    ladder = load_ladder(Settings().ladder_file)
    for spec in ladder.encoders.values():
        rate = (spec.rate_min + spec.rate_max) // 2
        first = encode_and_decode(spec, tiny_clip.frames, rate, ladder.threads, 600)
        second = encode_and_decode(spec, tiny_clip.frames, rate, ladder.threads, 600)
        assert first.bitstream == second.bitstream, f"{spec.name} is not deterministic"
        assert first.decoded.count == tiny_clip.frames.count
        quality = compare(tiny_clip.frames, first.decoded, settings=Settings())
        assert 20.0 < quality.psnr_y < 60.0, f"{spec.name}: PSNR-Y {quality.psnr_y}"


def test_bytes_and_psnr_match_independent_tools(tiny_clip: Clip, tmp_path: Path) -> None:
    spec = load_ladder(Settings().ladder_file).encoders["x265-medium"]
    encoded = encode_and_decode(spec, tiny_clip.frames, 30, 2, 600)
    stream = tmp_path / "stream.hevc"
    stream.write_bytes(encoded.bitstream)
    source = tmp_path / "source.y4m"
    tiny_clip.frames.write_y4m(source)
    # ffmpeg itself decodes the stream and measures it against the source
    log = run_ffmpeg_cli("-i", str(stream), "-i", str(source), "-lavfi", "psnr", "-f", "null", "-")
    psnr_y = float(re.search(r"PSNR y:([0-9.]+)", log.stderr).group(1))
    quality = compare(tiny_clip.frames, encoded.decoded, settings=Settings())
    assert abs(quality.psnr_y - psnr_y) < 0.01
    # no container: the file is a bare Annex B stream starting with a start code
    assert encoded.bitstream[:4] in (b"\x00\x00\x00\x01", b"\x00\x00\x01\x40")
    # the encoder banner SEI is gone
    assert b"x265 (build" not in encoded.bitstream


def test_ten_bit_input_round_trips_exactly(tiny_clip: Clip) -> None:
    raw = raw_input(tiny_clip.frames, "yuv420p10le")
    assert len(raw) == 2 * tiny_clip.frames.frame_bytes * tiny_clip.frames.count
    back = frames_from_raw(raw, "yuv420p10le", tiny_clip.frames)
    assert back.content_hash() == tiny_clip.frames.content_hash()


def test_curves_match_the_anchor_and_a_second_run_encodes_nothing(
    tiny_clip: Clip, store: Store, settings: Settings
) -> None:
    ladder = load_ladder(settings.ladder_file)
    events = []
    first = run_ladder(
        tiny_clip, store, settings, ladder, encoders=["x265", "mjpeg"], progress=events.append
    )
    assert list(first.encoders) == ["x264-medium", "x265-medium", "mjpeg-ffmpeg"]
    anchor = [point.psnr_y for point in first.encoders["x264-medium"].points]
    assert len(anchor) == 4
    for name in ("x265-medium", "mjpeg-ffmpeg"):
        curve = first.encoders[name]
        assert len({point.rate_value for point in curve.points}) == 4
        matched = sorted(point.psnr_y for point in curve.points)
        # every point within a quantiser step of its target
        assert max(abs(a - b) for a, b in zip(sorted(anchor), matched, strict=True)) < 1.5
        assert curve.bd_rate_vs["x264-medium"] is not None
    assert first.encoders["mjpeg-ffmpeg"].bd_rate_vs["x264-medium"] > 50  # a weak reference
    assert first.fresh_encodes >= 12 and first.cached_encodes == 0
    assert events[-1].finished and events[-1].encoder == "mjpeg-ffmpeg"

    second = run_ladder(tiny_clip, store, settings, ladder, encoders=["x265", "mjpeg"])
    assert second.fresh_encodes == 0
    assert second.cached_encodes == 12
    for name, curve in first.encoders.items():
        assert second.encoders[name].points == curve.points
        assert second.encoders[name].bd_rate_vs == curve.bd_rate_vs

    with store.session() as session:
        stored = session.query(BaselineEncode).count()
        choices = session.query(RatePointChoice).count()
    assert stored == first.fresh_encodes and choices == 2


def test_changed_settings_are_a_different_cache_entry(
    tiny_clip: Clip, store: Store, settings: Settings
) -> None:
    ladder = load_ladder(settings.ladder_file)
    run_ladder(tiny_clip, store, settings, ladder, encoders=["x264"])
    other_threads = dataclasses.replace(ladder, threads=1)
    again = run_ladder(tiny_clip, store, settings, other_threads, encoders=["x264"])
    assert again.fresh_encodes == 4


def test_an_encoder_that_cannot_reach_the_range_is_warned_about(
    tiny_clip: Clip, store: Store, settings: Settings
) -> None:
    ladder = load_ladder(settings.ladder_file)
    crippled = dataclasses.replace(ladder.encoders["mjpeg-ffmpeg"], rate_min=25, rate_max=31)
    narrow = dataclasses.replace(ladder, encoders={**ladder.encoders, "mjpeg-ffmpeg": crippled})
    result = run_ladder(tiny_clip, store, settings, narrow, encoders=["mjpeg"])
    curve = result.encoders["mjpeg-ffmpeg"]
    assert len(curve.points) == 4
    assert any("under 75%" in warning for warning in curve.warnings)


def test_vmaf_is_added_to_cached_points(tiny_clip: Clip, store: Store, settings: Settings) -> None:
    ladder = load_ladder(settings.ladder_file)
    plain = run_ladder(tiny_clip, store, settings, ladder, encoders=["x264"])
    assert all(point.vmaf is None for point in plain.encoders["x264-medium"].points)
    scored = run_ladder(tiny_clip, store, settings, ladder, encoders=["x264"], with_vmaf=True)
    points = scored.encoders["x264-medium"].points
    assert scored.fresh_encodes == 4
    assert all(0.0 <= point.vmaf <= 100.0 for point in points)
    assert np.all(np.diff([point.vmaf for point in points]) >= -1.0)  # better with more bits
    cached = run_ladder(tiny_clip, store, settings, ladder, encoders=["x264"], with_vmaf=True)
    assert cached.fresh_encodes == 0
    assert [p.vmaf for p in cached.encoders["x264-medium"].points] == [p.vmaf for p in points]


def test_decode_times_are_kept_and_a_point_stored_without_one_is_encoded_again(
    tiny_clip: Clip, store: Store, settings: Settings
) -> None:
    ladder = load_ladder(settings.ladder_file)
    first = run_ladder(tiny_clip, store, settings, ladder, encoders=["x264"])
    assert all(point.decode_seconds > 0 for point in first.encoders["x264-medium"].points)
    with store.session() as session:
        rows = session.scalars(select(BaselineEncode)).all()
        assert rows and all(row.decode_seconds and row.decode_seconds > 0 for row in rows)
        rows[0].decode_seconds = None  # as a point stored before decode times were kept
    again = run_ladder(tiny_clip, store, settings, ladder, encoders=["x264"])
    assert again.fresh_encodes == 1 and again.cached_encodes == 3
    assert all(point.decode_seconds > 0 for point in again.encoders["x264-medium"].points)


def test_ladders_of_several_clips_share_one_pool_and_equal_single_runs(
    tiny_clip: Clip, store: Store, settings: Settings
) -> None:
    ladder = load_ladder(settings.ladder_file)
    other = load_clip("builtin:still", settings, count=4)
    events: list[tuple[str, str]] = []
    both = run_ladders(
        [tiny_clip, other],
        store,
        settings,
        ladder,
        encoders=["x264", "mjpeg"],
        progress=lambda clip, event: events.append((clip.name, event.encoder)),
    )
    assert [result.clip.name for result in both] == [tiny_clip.name, other.name]
    assert {name for name, _ in events} == {tiny_clip.name, other.name}
    for result, clip in zip(both, [tiny_clip, other], strict=True):
        alone = run_ladder(clip, store, settings, ladder, encoders=["x264", "mjpeg"])
        assert alone.fresh_encodes == 0  # everything came from the shared run
        for name, curve in alone.encoders.items():
            assert [p.kbps for p in curve.points] == [p.kbps for p in result.encoders[name].points]
            assert curve.bd_rate_vs == result.encoders[name].bd_rate_vs


@pytest.mark.slow
def test_ffmpeg_gets_all_of_a_large_input_however_slowly_it_reads() -> None:
    frames = np.random.default_rng(3).integers(0, 256, (16, 1080, 1280), dtype=np.uint8)
    # a slow encoder: ffmpeg stops reading its input until the encoder catches up
    args = [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        "1280x720",
        "-i",
        "pipe:0",
        "-c:v",
        "libx264",
        "-preset",
        "fast",
        "-rc-lookahead",
        "0",
        "-threads",
        "1",
        "-f",
        "h264",
        "pipe:1",
    ]
    result = run_ffmpeg(args, input_bytes=frames.tobytes(), timeout_s=120)
    decoded = run_ffmpeg(
        ["-f", "h264", "-i", "pipe:0", "-f", "rawvideo", "pipe:1"], input_bytes=result.stdout
    )
    assert len(decoded.stdout) == frames.nbytes  # every frame went in and came out


def test_a_cancelled_ffmpeg_is_killed_at_once() -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(FFmpegError, match="stopped"):
        run_ffmpeg(
            [
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=30",
                "-t",
                "3600",
                "-f",
                "null",
                "-",
            ],
            cancel=stop,
        )
    assert time.monotonic() - started < 5
