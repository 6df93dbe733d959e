"""The quality figures BD-rates are taken on: PSNR-Y, PSNR-YUV (6:1:1), SSIM-Y and VMAF.

A BD-rate compares the bits two codecs need for equal quality; which quality is the
metric's choice. PSNR-Y and PSNR-YUV are in dB as measured. SSIM-Y is taken in dB,
-10*log10(1 - SSIM), as AWCY and CompressAI plot it: on that scale equal steps are equal
ratios of the remaining error, so the interpolation is not squeezed against SSIM's ceiling
of 1. VMAF is used on its own 0..100 scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aicodec.errors import BDRateError
from aicodec.scoring.bdrate import RDPoint


class MeasuredPoint(Protocol):
    """A measured rate point: its rate and the lab's quality figures."""

    @property
    def kbps(self) -> float: ...
    @property
    def psnr_y(self) -> float: ...
    @property
    def psnr_yuv(self) -> float: ...
    @property
    def ssim_y(self) -> float: ...
    @property
    def vmaf(self) -> float | None: ...


def ssim_db(ssim: float) -> float:
    """SSIM on a dB scale: -10*log10(1 - SSIM) (inf for SSIM 1, a lossless picture)."""
    remaining = 1.0 - ssim
    return math.inf if remaining <= 0.0 else -10.0 * math.log10(remaining)


@dataclass(frozen=True)
class RateMetric:
    """A quality figure of a measured point that BD-rates are taken on."""

    name: str  # the point's field: psnr_y, psnr_yuv, ssim_y or vmaf
    label: str  # as printed: PSNR-Y, PSNR-YUV, SSIM-Y, VMAF
    unit: str  # of the value BD interpolates: dB, or "" for VMAF

    @property
    def on(self) -> str:
        """Words naming the metric after "BD-rate" (none for PSNR-Y, the lab's default)."""
        return "" if self.name == "psnr_y" else f" on {self.label}"

    def value(self, point: MeasuredPoint) -> float:
        """The figure BD interpolates for ``point`` (SSIM in dB); BDRateError when the point
        has none (VMAF not measured)."""
        raw = getattr(point, self.name)
        if raw is None:
            raise BDRateError(f"{self.label} was not measured (pass --vmaf)")
        return ssim_db(float(raw)) if self.name == "ssim_y" else float(raw)

    def curve(self, points: Sequence[MeasuredPoint]) -> list[RDPoint]:
        """The points as (kbit/s, figure) pairs for ``bd_compare``."""
        return [RDPoint(point.kbps, self.value(point)) for point in points]


PSNR_Y = RateMetric("psnr_y", "PSNR-Y", "dB")
PSNR_YUV = RateMetric("psnr_yuv", "PSNR-YUV", "dB")
SSIM_Y = RateMetric("ssim_y", "SSIM-Y", "dB")
VMAF = RateMetric("vmaf", "VMAF", "")
RATE_METRICS = (PSNR_Y, PSNR_YUV, SSIM_Y, VMAF)  # the order of every suite table


def rate_metrics(with_vmaf: bool) -> tuple[RateMetric, ...]:
    """The metrics a suite reports: all four with VMAF measured, else the first three."""
    return RATE_METRICS if with_vmaf else RATE_METRICS[:3]
