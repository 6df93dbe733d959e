"""A clip to load again: where it comes from and its frame window, as runs and sets keep it."""

from __future__ import annotations

from dataclasses import dataclass

from aicodec.clips.loading import BUILTIN_NAME, Clip, load_clip
from aicodec.errors import ClipError
from aicodec.settings import Settings


@dataclass(frozen=True)
class ClipSpec:
    """How to load one clip again: its source, frame window and options, and the content hash
    it must have when one is known (an evolve run's clips, for --resume)."""

    path: str | None
    start: int = 0
    frames: int | None = None
    size: str | None = None
    fps: str | None = None
    convert: bool = False
    content_hash: str | None = None

    @property
    def name(self) -> str:
        """The file or built-in clip (a spec stored without a path is builtin:default)."""
        return self.path or BUILTIN_NAME

    def load(self, settings: Settings) -> Clip:
        """The clip; ClipError when it is gone or its frames changed since the hash was taken."""
        clip = load_clip(
            self.name,
            settings,
            start=self.start,
            count=self.frames,
            size=self.size,
            fps=self.fps,
            convert=self.convert,
        )
        if self.content_hash and clip.content_hash != self.content_hash:
            raise ClipError(
                f"clip {self.name} changed since the run began (content hash "
                f"{clip.content_hash[:12]}, the run has {self.content_hash[:12]})"
            )
        return clip
