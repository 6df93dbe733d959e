"""The standard-encoder ladder: x264, x265, SVT-AV1, libaom, VVenC, MPEG-2 and MJPEG."""

from aicodec.ladder.runner import (
    EncoderCurve,
    LadderProgress,
    LadderResult,
    RatePoint,
    run_ladder,
    run_ladders,
)
from aicodec.ladder.spec import EncoderSpec, Ladder, load_ladder

__all__ = [
    "EncoderCurve",
    "EncoderSpec",
    "Ladder",
    "LadderProgress",
    "LadderResult",
    "RatePoint",
    "load_ladder",
    "run_ladder",
    "run_ladders",
]
