"""Shared fixtures: the real media folder beside the repository, ffmpeg, small clips, stores."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aicodec.clips import Clip, load_clip
from aicodec.ffmpeg import ffmpeg_exe
from aicodec.settings import Settings

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def media_path(name: str) -> Path:
    """A clip from ../shared/media, or skip the test with the reason when it is absent."""
    path = MEDIA / name
    if not path.is_file():
        pytest.skip(f"real clip {name} is not in {MEDIA} (the shared media folder is absent)")
    return path


def run_ffmpeg_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the bundled ffmpeg directly, as an independent reference tool (stderr captured)."""
    return subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", *args],
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the store in a temporary folder."""
    return Settings(db=f"sqlite:///{tmp_path / 'experiments.db'}")


@pytest.fixture(scope="session")
def small_clip() -> Clip:
    """The first 8 frames of the built-in clip (352x288)."""
    return load_clip(None, Settings(), count=8)


@pytest.fixture(scope="session")
def carphone() -> Path:
    """The 176x144 Carphone clip from ../shared/media."""
    return media_path("carphone_qcif.mp4")
