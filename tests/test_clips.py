"""Clips: loading real files through ffmpeg, the built-in clip, windows, hashes, bad input."""

from __future__ import annotations

from fractions import Fraction
from importlib import import_module
from pathlib import Path

import cv2
import numpy as np
import pytest

from aicodec.clips import (
    BUILTIN_FAMILY,
    BUILTIN_NAME,
    HELD_OUT_BUILTINS,
    Frames,
    load_clip,
    parse_fps,
    parse_size,
)
from aicodec.errors import ClipError
from aicodec.settings import Settings
from tests.conftest import media_path, run_ffmpeg_cli


def make_video(path: Path, *filters: str, pix_fmt: str = "yuv420p", frames: int = 6) -> Path:
    """Write a small lossless test video with ffmpeg (FFV1 keeps the pixels exact)."""
    vf = ["-vf", ",".join(filters)] if filters else []
    run_ffmpeg_cli(
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-frames:v",
        str(frames),
        *vf,
        "-pix_fmt",
        pix_fmt,
        "-c:v",
        "ffv1",
        "-y",
        str(path),
    )
    return path


def test_builtin_clip_meets_its_description() -> None:
    clip = load_clip(None, Settings())
    frames = clip.frames
    assert clip.name == BUILTIN_NAME
    assert (frames.width, frames.height) == (352, 288)
    assert frames.fps == 30 and frames.count >= 30
    y = frames.y.astype(np.int16)
    # there is motion everywhere: no two consecutive frames are equal
    assert all(np.abs(y[i + 1] - y[i]).mean() > 1.0 for i in range(frames.count - 1))
    # fine texture: strong high-frequency energy in the ground band at the bottom
    ground = y[0, -60:]
    assert np.abs(np.diff(ground, axis=1)).mean() > 8.0
    # chroma is not flat: the content is colour
    assert frames.u.std() > 3 and frames.v.std() > 3


def test_builtin_clip_is_deterministic() -> None:
    first = load_clip(None, Settings()).content_hash
    from aicodec.clips.builtin.default import frames as default_frames

    default_frames.cache_clear()
    assert load_clip(None, Settings()).content_hash == first


def test_synthetic_builtin_members_load_by_name_the_same_each_time() -> None:
    from aicodec.clips.builtin import SYNTHETIC, member_frames

    assert BUILTIN_FAMILY[0] == BUILTIN_NAME == "builtin:default"
    assert HELD_OUT_BUILTINS == ("builtin:still", "builtin:shake", "builtin:bikes")
    synthetic = tuple(f"builtin:{member}" for member in SYNTHETIC)
    assert synthetic == ("builtin:default", "builtin:still", "builtin:shake")
    assert BUILTIN_FAMILY[: len(synthetic)] == synthetic
    hashes = set()
    for name in synthetic:
        clip = load_clip(name, Settings())
        frames = clip.frames
        assert (clip.name, clip.source) == (name, name)
        assert frames.count == 30 and frames.fps == 30
        assert frames.width % 16 == 0 and frames.height % 16 == 0
        assert frames.width * frames.height <= 352 * 288
        # made again from scratch, the frames are the same
        import_module(f"aicodec.clips.builtin.{name.removeprefix('builtin:')}").frames.cache_clear()
        assert member_frames(name.removeprefix("builtin:")).content_hash() == clip.content_hash
        y = frames.y.astype(np.int16)
        assert all(np.abs(y[i + 1] - y[i]).mean() > 0.05 for i in range(frames.count - 1))
        assert frames.u.std() > 3 and frames.v.std() > 3  # colour
        hashes.add(clip.content_hash)
    assert len(hashes) == len(synthetic)
    assert (
        load_clip(None, Settings()).content_hash == load_clip(BUILTIN_NAME, Settings()).content_hash
    )
    assert (
        load_clip("builtin:shake", Settings()).frames.width,
        load_clip("builtin:shake", Settings()).frames.height,
    ) == (320, 240)


def test_builtin_still_is_a_fixed_camera_with_small_moving_areas() -> None:
    y = load_clip("builtin:still", Settings()).frames.y.astype(np.float32)
    for index in range(len(y) - 1):
        (dx, dy), _ = cv2.phaseCorrelate(y[index], y[index + 1])
        assert abs(dx) < 0.1 and abs(dy) < 0.1  # the camera does not move
    changed = [float((np.abs(y[i + 1] - y[i]) > 6).mean()) for i in range(len(y) - 1)]
    assert max(changed) < 0.03  # a small share of the picture moves between frames ...
    assert sum(share > 0.002 for share in changed) >= 20  # ... in most frames (coin, crema)
    assert abs(y[15].mean() - y[0].mean()) > 3  # and the light changes


def detail(luma: np.ndarray) -> float:
    """Mean absolute difference between neighbouring pixels, across and down (levels)."""
    luma = luma.astype(np.float32)
    return float(np.abs(np.diff(luma, axis=1)).mean() + np.abs(np.diff(luma, axis=0)).mean())


def test_builtin_shake_is_texture_under_a_shaking_camera() -> None:
    y = load_clip("builtin:shake", Settings()).frames.y.astype(np.float32)
    shifts = [np.hypot(*cv2.phaseCorrelate(y[i], y[i + 1])[0]) for i in range(len(y) - 1)]
    assert sum(shift > 1.0 for shift in shifts) >= 20  # the whole picture moves, most frames
    assert max(shifts) < 12
    # heavy texture: more detail (mean luma gradient) than in either other family member
    others = [
        load_clip(name, Settings()).frames.y[0] for name in ("builtin:default", "builtin:still")
    ]
    assert all(detail(y[0]) > 1.1 * detail(other) for other in others)


def test_unknown_builtin_name_lists_the_family() -> None:
    with pytest.raises(ClipError) as info:
        load_clip("builtin:nope", Settings())
    assert str(info.value) == (
        "builtin:nope: no such built-in clip; there are builtin:default, builtin:still, "
        "builtin:shake, builtin:carphone, builtin:bikes, builtin:bunny"
    )


def test_builtin_window_and_fps_override() -> None:
    whole = load_clip(None, Settings()).frames
    clip = load_clip(None, Settings(), start=5, count=10, fps="25")
    assert clip.frames.count == 10 and clip.start == 5
    assert np.array_equal(clip.frames.y, whole.y[5:15])
    assert clip.frames.fps == Fraction(25)
    assert clip.content_hash != load_clip(None, Settings(), start=5, count=10).content_hash


def test_y4m_round_trip_through_ffmpeg_keeps_every_pixel(tmp_path: Path) -> None:
    original = load_clip(None, Settings(), count=5)
    path = tmp_path / "clip.y4m"
    original.frames.write_y4m(path)
    again = load_clip(path, Settings())
    assert again.content_hash == original.content_hash
    assert again.frames.fps == 30


def test_real_clip_matches_ffmpeg_raw_decode(tmp_path: Path) -> None:
    source = media_path("carphone_qcif.mp4")
    raw = tmp_path / "ref.yuv"
    run_ffmpeg_cli(
        "-v", "error", "-i", str(source), "-f", "rawvideo", "-pix_fmt", "yuv420p", str(raw)
    )
    expected = Frames.from_i420(raw.read_bytes(), 176, 144, Fraction(30000, 1001))
    clip = load_clip(source, Settings(), start=10, count=20)
    assert clip.frames.fps == Fraction(30000, 1001)
    assert np.array_equal(clip.frames.y, expected.y[10:30])
    assert np.array_equal(clip.frames.v, expected.v[10:30])


@pytest.mark.parametrize(
    ("name", "start", "count", "size"),
    [
        ("foreman_cif25.264", 170, 12, (352, 288)),
        ("tears_of_steel_battle_800x332.webm", 605, 8, (800, 332)),
    ],
)
def test_raw_streams_and_webm_load_windows(name: str, start: int, count: int, size) -> None:
    clip = load_clip(media_path(name), Settings(), start=start, count=count)
    assert (clip.frames.width, clip.frames.height) == size
    assert clip.frames.count == count


def test_raw_yuv_needs_size_and_fps_and_loads_exactly(tmp_path: Path) -> None:
    frames = load_clip(None, Settings(), count=3).frames
    raw = tmp_path / "clip.yuv"
    raw.write_bytes(frames.i420_bytes())
    with pytest.raises(ClipError, match="give --size WxH and --fps"):
        load_clip(raw, Settings())
    clip = load_clip(raw, Settings(), size="352x288", fps="30000/1001")
    assert np.array_equal(clip.frames.u, frames.u)
    assert clip.frames.fps == Fraction(30000, 1001)
    with pytest.raises(ClipError, match="not a whole number of 320x288"):
        load_clip(raw, Settings(), size="320x288", fps="30")


def test_hash_identifies_content_not_file(tmp_path: Path) -> None:
    frames = load_clip(None, Settings(), count=3).frames
    a, b = tmp_path / "a.y4m", tmp_path / "b.y4m"
    frames.write_y4m(a)
    frames.write_y4m(b)
    assert load_clip(a, Settings()).content_hash == load_clip(b, Settings()).content_hash
    changed = frames.y.copy()
    changed[0, 0, 0] ^= 1
    other = Frames(changed, frames.u, frames.v, frames.fps)
    assert other.content_hash() != frames.content_hash()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.mp4", "no such file"),
        (lambda p: p, "not a file"),
        (lambda p: _write(p / "empty.mp4", b""), "the file is empty"),
        (lambda p: _write(p / "text.mp4", b"hello, not a video\n" * 20), "not a video ffmpeg"),
        (lambda p: make_video(p / "ten.mkv", pix_fmt="yuv420p10le"), "10-bit 4:2:0"),
        (lambda p: make_video(p / "full.mkv", pix_fmt="yuv444p"), "8-bit 4:4:4"),
        (lambda p: make_video(p / "gray.mkv", pix_fmt="gray"), "grayscale"),
        (lambda p: make_video(p / "rgb.mkv", pix_fmt="rgb24"), "not YUV"),
        (lambda p: make_video(p / "odd.mkv", "scale=63:47"), "63x47: YUV 4:2:0 needs an even"),
        (lambda p: make_video(p / "tiny.mkv", "scale=8:8"), "within 16..8192"),
    ],
)
def test_bad_sources_give_one_clear_line(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ClipError, match=message) as info:
        load_clip(path, Settings())
    assert "\n" not in str(info.value)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    run_ffmpeg_cli("-v", "error", "-f", "lavfi", "-i", "sine", "-t", "0.2", str(wav))
    with pytest.raises(ClipError, match="no video stream"):
        load_clip(wav, Settings())


def test_conversion_is_opt_in_and_recorded(tmp_path: Path) -> None:
    path = make_video(tmp_path / "ten.mkv", pix_fmt="yuv420p10le")
    clip = load_clip(path, Settings(), convert=True)
    assert clip.converted and clip.frames.count == 6
    assert clip.describe()["converted"] is True


def test_windows_past_the_end_say_how_long_the_video_is(tmp_path: Path) -> None:
    path = make_video(tmp_path / "six.mkv")
    with pytest.raises(ClipError, match="frames 4..7 is past the end: the video has 6 frames"):
        load_clip(path, Settings(), start=4, count=4)
    with pytest.raises(ClipError, match="start frame 9 is past the end: the video has 6 frames"):
        load_clip(path, Settings(), start=9)
    with pytest.raises(ClipError, match="past the end: builtin:default has 30 frames"):
        load_clip(None, Settings(), start=25, count=10)
    with pytest.raises(ClipError, match="--frames must be 1 or more"):
        load_clip(path, Settings(), count=0)


def test_memory_limit_refuses_huge_clips(tmp_path: Path) -> None:
    path = make_video(tmp_path / "six.mkv")
    limited = Settings(max_clip_bytes=64 * 48 * 3 // 2 * 4)
    with pytest.raises(ClipError, match="in-memory limit"):
        load_clip(path, limited)
    assert load_clip(path, limited, count=4).frames.count == 4


def test_absurd_raw_size_is_refused_before_reading(tmp_path: Path) -> None:
    raw = _write(tmp_path / "x.yuv", b"\0" * 1024)
    with pytest.raises(ClipError, match="within 16..8192"):
        load_clip(raw, Settings(), size="100000x100000", fps="30")


@pytest.mark.parametrize("text", ["352", "axb", "352x"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ClipError, match="WIDTHxHEIGHT"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("30", Fraction(30)), ("29.97", Fraction(2997, 100)), ("30000/1001", Fraction(30000, 1001))],
)
def test_parse_fps(text: str, value: Fraction) -> None:
    assert parse_fps(text) == value


@pytest.mark.parametrize("text", ["abc", "0", "-5", "1/0", "5000"])
def test_parse_fps_rejects_garbage(text: str) -> None:
    with pytest.raises(ClipError, match="frame rate"):
        parse_fps(text)


def test_frames_type_checks_its_planes() -> None:
    y = np.zeros((2, 4, 6), np.uint8)
    with pytest.raises(ClipError, match="chroma planes"):
        Frames(y, np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3), np.uint8), Fraction(30))
    with pytest.raises(ClipError, match="uint8"):
        Frames(y.astype(np.float32), y[:, :2, :3], y[:, :2, :3], Fraction(30))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _cut_mp4(tmp_path: Path, name: str, *flags: str) -> Path:
    """A 100-frame H.264 MP4 (keyframe every 10) cut to its first 30 % of bytes."""
    whole = tmp_path / f"{name}.mp4"
    source = ["-f", "lavfi", "-i", "testsrc=size=176x144:rate=25", "-frames:v", "100"]
    h264 = ["-g", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    run_ffmpeg_cli("-v", "error", *source, *h264, *flags, str(whole))
    cut = tmp_path / f"{name}-cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 10])
    return cut


def test_a_truncated_mp4_is_refused_as_truncated_and_a_window_inside_it_loads(
    tmp_path: Path,
) -> None:
    index_first = _cut_mp4(tmp_path, "front", "-movflags", "+faststart")
    with pytest.raises(ClipError) as whole:
        load_clip(str(index_first), Settings())
    message = str(whole.value)
    assert message.startswith(f"{index_first}: the file is truncated: ffmpeg reads ")
    read = int(message.split("ffmpeg reads ")[1].split(" ")[0])
    assert 0 < read < 100 and "\n" not in message
    inside = load_clip(str(index_first), Settings(), count=read)
    assert inside.frames.count == read
    with pytest.raises(ClipError, match="the file is truncated"):
        load_clip(str(index_first), Settings(), count=read + 1)
    index_last = _cut_mp4(tmp_path, "end")
    with pytest.raises(ClipError, match=r"truncated or unfinished: its MP4 index \(the moov atom"):
        load_clip(str(index_last), Settings())
