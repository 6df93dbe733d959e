"""The standard-encoder ladder: its data file, validated, and the ffmpeg command of each encoder."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from aicodec.errors import BaselineError


@dataclass(frozen=True)
class EncoderSpec:
    """One encoder of the ladder: its ffmpeg arguments and the range of its rate option."""

    name: str
    description: str
    format: str
    rate_option: str
    rate_min: int
    rate_max: int
    db_per_step: float
    args: tuple[str, ...]
    strip_nal_types: str = ""
    pix_fmt: str = "yuv420p"
    demuxer: str = ""

    def identity(self, threads: int) -> dict[str, object]:
        """Everything that determines this encoder's output besides the ffmpeg build."""
        return {
            "name": self.name,
            "format": self.format,
            "args": list(self.args),
            "strip_nal_types": self.strip_nal_types,
            "pix_fmt": self.pix_fmt,
            "demuxer": self.demuxer,
            "threads": threads,
        }

    def settings_hash(self, threads: int) -> str:
        """SHA-256 of :meth:`identity` (hex), part of the cache key of every encode."""
        blob = json.dumps(self.identity(threads), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def encode_args(
        self, rate: int, threads: int, width: int, height: int, fps: Fraction
    ) -> list[str]:
        """ffmpeg arguments reading raw frames on stdin and writing the stream to stdout."""
        values = {"rate": str(rate), "threads": str(threads)}
        encoder = [arg.format(**values) for arg in self.args]
        strip = ["-bsf:v", f"filter_units=remove_types={self.strip_nal_types}"]
        return [
            "-f",
            "rawvideo",
            "-pix_fmt",
            self.pix_fmt,
            "-video_size",
            f"{width}x{height}",
            "-framerate",
            f"{fps.numerator}/{fps.denominator}",
            "-i",
            "pipe:0",
            *encoder,
            *(strip if self.strip_nal_types else []),
            "-f",
            self.format,
            "pipe:1",
        ]

    def decode_args(self, bitstream_path: Path, fps: Fraction) -> list[str]:
        """ffmpeg arguments decoding the stream to raw frames on stdout, in the input layout.

        Asking for the input's own pixel format means ffmpeg converts nothing: every decoder
        of the ladder outputs that format natively.
        """
        return [
            "-f",
            self.demuxer or self.format,
            "-framerate",
            f"{fps.numerator}/{fps.denominator}",
            "-i",
            str(bitstream_path),
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            self.pix_fmt,
            "pipe:1",
        ]


@dataclass(frozen=True)
class Ladder:
    """All encoders of the ladder plus the anchor and the rate-point search settings."""

    encoders: dict[str, EncoderSpec]
    anchor: str
    compared: tuple[str, ...]  # the encoders evolved and adopted codecs are scored against
    anchor_rates: tuple[int, ...]
    threads: int
    target_tolerance_db: float
    max_search_encodes: int

    def select(self, names: list[str] | None) -> list[EncoderSpec]:
        """The encoders named (full name or the part before '-'), anchor first; all if None."""
        if not names:
            chosen = list(self.encoders)
        else:
            chosen = []
            for wanted in names:
                matches = [name for name in self.encoders if wanted in (name, name.split("-")[0])]
                if not matches:
                    known = ", ".join(self.encoders)
                    raise BaselineError(f"unknown encoder {wanted!r}; the ladder has {known}")
                chosen += [name for name in matches if name not in chosen]
        ordered = [self.anchor] + [name for name in chosen if name != self.anchor]
        return [self.encoders[name] for name in ordered]

    def compared_names(self) -> list[str]:
        """The full names of the encoders candidates are compared with, anchor first."""
        return [spec.name for spec in self.select(list(self.compared))]


REQUIRED = ("format", "rate_option", "rate_min", "rate_max", "db_per_step", "args")


@lru_cache(maxsize=4)
def ladder_anchor(path: Path) -> str:
    """The anchor a ladder file names (read once per path)."""
    return load_ladder(path).anchor


def load_ladder(path: Path) -> Ladder:
    """Read and check the ladder TOML file; BaselineError names the first problem."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BaselineError(f"ladder file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(f"ladder file {path} is not valid TOML: {exc}") from None
    raw_encoders = data.get("encoders")
    if not isinstance(raw_encoders, dict) or not raw_encoders:
        raise BaselineError(f"ladder file {path} defines no [encoders.NAME] tables")
    encoders = {name: _encoder(name, fields, path) for name, fields in raw_encoders.items()}
    anchor = data.get("anchor")
    if not isinstance(anchor, str) or anchor not in encoders:
        raise BaselineError(f"ladder file {path}: anchor {anchor!r} is not one of its encoders")
    rates = tuple(int(rate) for rate in data.get("anchor_rates", ()))
    if len(set(rates)) < 4:
        raise BaselineError(f"ladder file {path}: anchor_rates needs at least 4 distinct values")
    compared = tuple(str(name) for name in data.get("compare_with", [anchor]))
    return Ladder(
        encoders=encoders,
        anchor=anchor,
        compared=compared,
        anchor_rates=rates,
        threads=int(data.get("threads", 2)),
        target_tolerance_db=float(data.get("target_tolerance_db", 0.3)),
        max_search_encodes=int(data.get("max_search_encodes", 5)),
    )


def _encoder(name: str, fields: dict[str, Any], path: Path) -> EncoderSpec:
    """Build one EncoderSpec from its TOML table (values as TOML parsed them)."""
    missing = [key for key in REQUIRED if key not in fields]
    if missing:
        raise BaselineError(f"ladder file {path}: encoder {name} lacks {', '.join(missing)}")
    args = fields["args"]
    if not isinstance(args, list) or not any("{rate}" in str(arg) for arg in args):
        raise BaselineError(f"ladder file {path}: encoder {name} args must contain {{rate}}")
    return EncoderSpec(
        name=name,
        description=str(fields.get("description", name)),
        format=str(fields["format"]),
        rate_option=str(fields["rate_option"]),
        rate_min=int(fields["rate_min"]),
        rate_max=int(fields["rate_max"]),
        db_per_step=float(fields["db_per_step"]),
        args=tuple(str(arg) for arg in args),
        strip_nal_types=str(fields.get("strip_nal_types", "")),
        pix_fmt=str(fields.get("pix_fmt", "yuv420p")),
        demuxer=str(fields.get("demuxer", "")),
    )
