"""Test sets: the clips a codec is judged on, in classes, as a small TOML file.

A set names its clips (files, frame windows, built-in clips), the class of each, and
optionally the qualities to score and the encoders to compare with. Sets shipped with the
lab live in ``baselines/sets/``; any other set is a file. Clip paths are relative to the
set's ``root`` (itself relative to the set file; ``$VARIABLES`` and ``~`` are expanded),
so one set file can point at a lab's JVET, AOM or UVG sequences wherever they are.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicodec.clips import Clip, ClipSpec
from aicodec.clips.loading import BUILTIN_PREFIX, is_builtin
from aicodec.errors import AicodecError, SuiteError
from aicodec.settings import Settings, data_dir

SET_SUFFIX = ".toml"
DEFAULT_CLASS = "all"
SET_KEYS = {"name", "description", "root", "qualities", "anchors", "clips"}
CLIP_KEYS = {"source", "name", "class", "start", "frames", "size", "fps", "convert"}


def shipped_sets_dir() -> Path:
    """The folder of the sets shipped with the lab."""
    return data_dir("baselines") / "sets"


def shipped_sets() -> list[str]:
    """Names of the sets shipped with the lab, sorted."""
    folder = shipped_sets_dir()
    return sorted(path.stem for path in folder.glob(f"*{SET_SUFFIX}")) if folder.is_dir() else []


@dataclass(frozen=True)
class SetClip:
    """One clip of a set: its name, its class, and where it comes from with its window."""

    name: str
    klass: str
    spec: ClipSpec  # the source (builtin:NAME or a resolved file path) and its window

    @property
    def source(self) -> str:
        """The file or built-in clip."""
        return self.spec.name

    def load(self, settings: Settings) -> Clip:
        """The clip's frames; the error names the set's clip when it cannot be loaded."""
        try:
            return self.spec.load(settings)
        except AicodecError as exc:
            raise type(exc)(f"clip {self.name} of the set: {exc}") from None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready clip entry."""
        return {
            "name": self.name,
            "source": self.source,
            "class": self.klass,
            "start": self.spec.start,
            "frames": self.spec.frames,
        }


@dataclass(frozen=True)
class TestSet:
    """A named set of clips in classes, with the qualities and encoders it asks for."""

    __test__ = False  # not a pytest class

    name: str
    path: Path
    description: str
    clips: tuple[SetClip, ...]
    qualities: tuple[int, ...] | None = None
    anchors: tuple[str, ...] | None = None

    @property
    def classes(self) -> list[str]:
        """The set's class names, in the order their first clip appears."""
        return list(dict.fromkeys(clip.klass for clip in self.clips))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready set."""
        return {
            "name": self.name,
            "path": str(self.path),
            "description": self.description,
            "classes": self.classes,
            "clips": [clip.to_dict() for clip in self.clips],
        }


def set_path(name_or_file: str) -> Path:
    """The file of a set given by name (one shipped with the lab) or as a path."""
    candidate = Path(name_or_file).expanduser()
    if candidate.suffix == SET_SUFFIX or os.sep in name_or_file or candidate.exists():
        if not candidate.is_file():
            raise SuiteError(f"set file {candidate} does not exist")
        return candidate
    shipped = shipped_sets_dir() / f"{name_or_file}{SET_SUFFIX}"
    if not shipped.is_file():
        known = ", ".join(shipped_sets()) or "none"
        raise SuiteError(
            f"no test set {name_or_file!r}: give a set file (.toml) or one of the shipped "
            f"sets ({known})"
        )
    return shipped


def load_set(name_or_file: str) -> TestSet:
    """Read and check a set (a shipped name or a TOML file); SuiteError names the first
    problem."""
    path = set_path(name_or_file)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"set file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"set file {path} cannot be read: {exc}") from None
    where = f"set file {path}"
    _unknown_keys(data, SET_KEYS, where)
    root = _root(data.get("root"), path)
    raw_clips = data.get("clips")
    if not isinstance(raw_clips, list) or not raw_clips:
        raise SuiteError(f"{where} lists no clips: add [[clips]] tables with a source")
    clips = tuple(_set_clip(entry, index, root, where) for index, entry in enumerate(raw_clips, 1))
    names = [clip.name for clip in clips]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SuiteError(f"{where} names clip {twice[0]!r} twice: give each clip its own name")
    return TestSet(
        name=str(data.get("name") or path.stem),
        path=path.resolve(),
        description=str(data.get("description", "")),
        clips=clips,
        qualities=_int_list(data.get("qualities"), "qualities", where),
        anchors=_str_list(data.get("anchors"), "anchors", where),
    )


def _unknown_keys(table: dict[str, Any], known: set[str], where: str) -> None:
    """SuiteError for a key the set format does not have (a typo would be ignored)."""
    unknown = sorted(set(table) - known)
    if unknown:
        raise SuiteError(
            f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(known))}"
        )


def _root(value: object, path: Path) -> Path:
    """The folder clip paths are relative to: ``root`` (relative to the set file), else the
    set file's folder."""
    if value is None:
        return path.parent
    if not isinstance(value, str) or not value:
        raise SuiteError(f"set file {path}: root must be a folder path")
    expanded = Path(os.path.expandvars(value)).expanduser()
    return expanded if expanded.is_absolute() else path.parent / expanded


def _set_clip(entry: object, index: int, root: Path, where: str) -> SetClip:
    """One [[clips]] table as a SetClip."""
    label = f"{where}, clip {index}"
    if not isinstance(entry, dict):
        raise SuiteError(f"{label} is not a table")
    _unknown_keys(entry, CLIP_KEYS, label)
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise SuiteError(f"{label} has no source (a file or builtin:NAME)")
    if is_builtin(source):
        resolved, default_name = source, source.removeprefix(BUILTIN_PREFIX)
    else:
        file = Path(os.path.expandvars(source)).expanduser()
        resolved = str(file if file.is_absolute() else (root / file).resolve())
        default_name = file.stem
    start, frames = entry.get("start", 0), entry.get("frames")
    if not isinstance(start, int) or start < 0:
        raise SuiteError(f"{label}: start must be a frame number, 0 or more")
    if frames is not None and (not isinstance(frames, int) or frames < 1):
        raise SuiteError(f"{label}: frames must be a count, 1 or more")
    texts = {key: entry.get(key) for key in ("name", "class", "size", "fps")}
    for key, value in texts.items():
        if value is not None and (not isinstance(value, str | int | float) or value == ""):
            raise SuiteError(f"{label}: {key} must be a text")
    convert = entry.get("convert", False)
    if not isinstance(convert, bool):
        raise SuiteError(f"{label}: convert must be true or false")
    spec = ClipSpec(
        resolved,
        start,
        frames,
        size=None if texts["size"] is None else str(texts["size"]),
        fps=None if texts["fps"] is None else str(texts["fps"]),
        convert=convert,
    )
    return SetClip(str(texts["name"] or default_name), str(texts["class"] or DEFAULT_CLASS), spec)


def _int_list(value: object, key: str, where: str) -> tuple[int, ...] | None:
    """An optional list of integers."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, int) for v in value):
        raise SuiteError(f"{where}: {key} must be a list of integers")
    return tuple(value)


def _str_list(value: object, key: str, where: str) -> tuple[str, ...] | None:
    """An optional list of texts."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SuiteError(f"{where}: {key} must be a list of encoder names")
    return tuple(value)
