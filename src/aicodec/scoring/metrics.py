"""Quality metrics of the lab: PSNR per plane and YUV-weighted, SSIM on luma, and VMAF.

PSNR follows ffmpeg's ``psnr`` filter and CompressAI: a sequence's PSNR for a plane is the PSNR of
the mean of its per-frame mean squared errors. SSIM is Wang et al. (2004) as scikit-image computes
it with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255``: an 11x11
Gaussian window, K1=0.01, K2=0.03, and the mean of the SSIM map without its 5-pixel border. VMAF
comes from the bundled ffmpeg's libvmaf filter.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numba
import numpy as np

from aicodec.clips.frames import Frames
from aicodec.errors import FFmpegError, MetricError
from aicodec.ffmpeg import ffmpeg_exe, last_error_line
from aicodec.scoring.ssim_kernel import PEAK, RADIUS, WINDOW, frames_ssim_sse
from aicodec.settings import Settings

SSIM_WINDOW = WINDOW
SSIM_BORDER = RADIUS
# Pixels of one SSIM work item when a clip has fewer frames than workers.
STRIP_PIXELS = 1 << 18
VMAF_LOG = "vmaf.json"


@dataclass(frozen=True)
class FrameQuality:
    """Quality of one distorted frame against its reference (PSNR in dB, SSIM and VMAF unitless)."""

    index: int
    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_yuv: float
    ssim_y: float
    vmaf: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-safe values (an infinite PSNR becomes None); ``vmaf`` only when computed."""
        out: dict[str, object] = {
            "index": self.index,
            "psnr_y": finite_or_none(self.psnr_y),
            "psnr_u": finite_or_none(self.psnr_u),
            "psnr_v": finite_or_none(self.psnr_v),
            "psnr_yuv": finite_or_none(self.psnr_yuv),
            "ssim_y": finite_or_none(self.ssim_y),
        }
        if self.vmaf is not None:
            out["vmaf"] = finite_or_none(self.vmaf)
        return out


@dataclass(frozen=True)
class QualityReport:
    """Sequence quality of a distorted clip (PSNR in dB, SSIM 0..1, VMAF 0..100) and per frame."""

    frames: int
    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_yuv: float
    ssim_y: float
    vmaf: float | None
    weights: tuple[int, int, int]
    per_frame: list[FrameQuality]

    def to_dict(self) -> dict[str, object]:
        """JSON-safe summary (inf becomes None); the ``vmaf`` key appears only when computed."""
        out: dict[str, object] = {
            "psnr_y": finite_or_none(self.psnr_y),
            "psnr_u": finite_or_none(self.psnr_u),
            "psnr_v": finite_or_none(self.psnr_v),
            "psnr_yuv": finite_or_none(self.psnr_yuv),
            "ssim_y": finite_or_none(self.ssim_y),
            "frames": self.frames,
        }
        if self.vmaf is not None:
            out["vmaf"] = finite_or_none(self.vmaf)
        out["psnr_yuv_weights"] = list(self.weights)
        out["per_frame"] = [frame.to_dict() for frame in self.per_frame]
        return out


def finite_or_none(value: float | None) -> float | None:
    """The value as a plain float, or None when missing, infinite or NaN (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (the infinite PSNR of identical frames) as None."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


MEASURED_FIELDS = (
    "bytes",
    "kbps",
    "psnr_y",
    "psnr_u",
    "psnr_v",
    "psnr_yuv",
    "ssim_y",
    "vmaf",
    "frames",
    "encode_seconds",
)


@dataclass(frozen=True)
class EncodedQuality:
    """An encoded clip: bytes, kbit/s, PSNR (dB), SSIM-Y, VMAF, frames and encode seconds;
    ``frame_psnr_y`` is each frame's PSNR-Y in dB (inf for a lossless frame; empty when
    not known, as for points stored before the lab kept it)."""

    bytes: int
    kbps: float
    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_yuv: float
    ssim_y: float
    vmaf: float | None
    frames: int
    encode_seconds: float
    frame_psnr_y: tuple[float, ...] = field(default=(), kw_only=True, compare=False, repr=False)

    @property
    def encode_fps(self) -> float:
        """Encoding speed (frames per second)."""
        return self.frames / self.encode_seconds if self.encode_seconds > 0 else math.inf

    def measured(self) -> dict[str, object]:
        """The measured fields, JSON-ready (VMAF only when measured), with encode_fps."""
        data = {name: getattr(self, name) for name in MEASURED_FIELDS}
        if self.vmaf is None:
            del data["vmaf"]
        data["encode_fps"] = self.encode_fps
        return data


def measure_encoding(
    reference: Frames,
    decoded: Frames,
    size_bytes: int,
    encode_seconds: float,
    *,
    settings: Settings,
    with_vmaf: bool = False,
) -> dict[str, object]:
    """The fields of an EncodedQuality for ``decoded`` frames coded in ``size_bytes``, with
    the per-frame PSNR-Y (dB) whose mean squared errors average to the clip's PSNR-Y."""
    quality = compare(reference, decoded, settings=settings)
    score = None
    if with_vmaf:
        score, _ = vmaf(
            reference, decoded, model=settings.vmaf_model, threads=settings.vmaf_threads
        )
    return {
        "bytes": size_bytes,
        "kbps": bitrate_kbps(size_bytes, reference.count, float(reference.fps)),
        "psnr_y": quality.psnr_y,
        "psnr_u": quality.psnr_u,
        "psnr_v": quality.psnr_v,
        "psnr_yuv": quality.psnr_yuv,
        "ssim_y": quality.ssim_y,
        "vmaf": score,
        "frames": reference.count,
        "encode_seconds": encode_seconds,
        "frame_psnr_y": tuple(frame.psnr_y for frame in quality.per_frame),
    }


def bitrate_kbps(size_bytes: int, frames: int, fps: float) -> float:
    """Bitrate of ``size_bytes`` spread over ``frames`` at ``fps``: 8 * bytes / seconds (kbit/s)."""
    return 8.0 * size_bytes / (frames / fps) / 1000.0


def psnr_from_mse(mse: float, peak: float = PEAK) -> float:
    """PSNR in dB of a mean squared error (``math.inf`` when the error is zero)."""
    if mse < 0:
        raise MetricError(f"a mean squared error cannot be negative, got {mse}")
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def frame_mse(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean squared error of two uint8 planes of one frame (squared code values)."""
    if reference.shape != distorted.shape:
        raise MetricError(f"plane sizes differ: {reference.shape} and {distorted.shape}")
    if reference.size == 0:
        raise MetricError("cannot measure an empty plane")
    return float(cv2.norm(reference, distorted, cv2.NORM_L2SQR)) / reference.size


def plane_mse(reference: np.ndarray, distorted: np.ndarray) -> np.ndarray:
    """Per-frame mean squared errors of two uint8 [T, H, W] planes (squared code values)."""
    if reference.shape != distorted.shape:
        raise MetricError(f"plane sizes differ: {reference.shape} and {distorted.shape}")
    return np.array(
        [frame_mse(reference[t], distorted[t]) for t in range(reference.shape[0])],
        dtype=np.float64,
    )


def sequence_psnr(mses: Sequence[float] | np.ndarray) -> float:
    """PSNR in dB of a sequence: the PSNR of the mean of its per-frame MSEs (ffmpeg's average)."""
    values = np.asarray(mses, dtype=np.float64)
    if values.size == 0:
        raise MetricError("cannot take the PSNR of zero frames")
    return psnr_from_mse(float(values.mean()))


def per_frame_psnr(mses: Sequence[float] | np.ndarray) -> list[float]:
    """PSNR in dB of each frame from its MSE (inf for a lossless frame)."""
    return [psnr_from_mse(float(value)) for value in np.asarray(mses, dtype=np.float64)]


def psnr_yuv(
    psnr_y: float, psnr_u: float, psnr_v: float, weights: tuple[int, int, int] = (6, 1, 1)
) -> float:
    """Weighted PSNR-YUV in dB, (wY*Y + wU*U + wV*V) / (wY+wU+wV); inf when any plane is inf."""
    w_y, w_u, w_v = weights
    total = w_y + w_u + w_v
    if min(weights) < 0 or total <= 0:
        raise MetricError(f"PSNR-YUV weights must be non-negative with a positive sum: {weights}")
    if math.inf in (psnr_y, psnr_u, psnr_v):
        return math.inf
    return (w_y * psnr_y + w_u * psnr_u + w_v * psnr_v) / total


def _strips(height: int, width: int, frames: int, workers: int) -> np.ndarray:
    """SSIM output row ranges [first, last) tiling rows 5..height-5: one per frame when there
    are enough frames to keep every worker busy, else strips of about STRIP_PIXELS pixels."""
    inner = height - 2 * SSIM_BORDER
    if frames >= workers:
        return np.array([[SSIM_BORDER, height - SSIM_BORDER]], dtype=np.int64)
    rows = max(32, STRIP_PIXELS // max(width, 1))
    count = max(1, math.ceil(inner / rows))
    step = math.ceil(inner / count)
    starts = range(SSIM_BORDER, height - SSIM_BORDER, step)
    return np.array(
        [[first, min(first + step, height - SSIM_BORDER)] for first in starts], dtype=np.int64
    )


def _check_ssim_size(height: int, width: int) -> None:
    """Raise MetricError when a plane is smaller than the SSIM window."""
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise MetricError(
            f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, "
            f"got {width}x{height}"
        )


def _worker_count(threads: int) -> int:
    """Worker threads for ``threads`` (0 means one per CPU core)."""
    return threads if threads > 0 else (os.cpu_count() or 1)


def _per_frame(
    reference: Sequence[np.ndarray], distorted: Sequence[np.ndarray], threads: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame SSIM of the first plane ([T]) and per-frame MSE of every plane ([T, planes]).

    Planes are uint8 [T, H, W] arrays, luma first. The compiled kernel runs frames (or frame
    strips, when there are fewer frames than threads) in parallel on ``threads`` threads, and
    its exact integer sum of squared luma errors gives the luma MSE.
    """
    ref_y, dist_y = np.ascontiguousarray(reference[0]), np.ascontiguousarray(distorted[0])
    count, height, width = ref_y.shape
    _check_ssim_size(height, width)
    # numba.config sets NUMBA_NUM_THREADS at run time; its type stub does not declare it
    workers = min(_worker_count(threads), numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(workers)
    sums, sse = frames_ssim_sse(ref_y, dist_y, _strips(height, width, count, workers))
    mse = np.zeros((count, len(reference)), dtype=np.float64)
    mse[:, 0] = sse / (height * width)
    for plane in range(1, len(reference)):
        mse[:, plane] = plane_mse(reference[plane], distorted[plane])
    return sums / ((height - 2 * SSIM_BORDER) * (width - 2 * SSIM_BORDER)), mse


def frame_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIM (0..1; Wang et al. 2004, 11x11 Gaussian, sigma 1.5) of two uint8 [H, W] planes."""
    if reference.shape != distorted.shape or reference.ndim != 2:
        raise MetricError(f"plane sizes differ: {reference.shape} and {distorted.shape}")
    return float(ssim_per_frame(reference[None], distorted[None], threads=1)[0])


def ssim_per_frame(reference: np.ndarray, distorted: np.ndarray, *, threads: int = 0) -> np.ndarray:
    """Per-frame SSIM (0..1) of two uint8 [T, H, W] luma planes on ``threads`` workers (0: all)."""
    if reference.shape != distorted.shape or reference.ndim != 3:
        raise MetricError(f"plane sizes differ: {reference.shape} and {distorted.shape}")
    for plane in (reference, distorted):
        if plane.dtype != np.uint8:
            raise MetricError(f"SSIM needs uint8 planes, got {plane.dtype}")
    if reference.shape[0] == 0:
        raise MetricError("cannot take the SSIM of zero frames")
    ssim, _mse = _per_frame([reference], [distorted], threads)
    return ssim


def _check_comparable(reference: Frames, distorted: Frames) -> None:
    """Raise MetricError (one line, naming both) unless the clips have equal size and count."""
    ref_size = f"{reference.width}x{reference.height}"
    dist_size = f"{distorted.width}x{distorted.height}"
    if ref_size != dist_size:
        raise MetricError(f"frame sizes differ: reference is {ref_size}, distorted is {dist_size}")
    if reference.count != distorted.count:
        raise MetricError(
            f"frame counts differ: reference has {reference.count}, distorted has {distorted.count}"
        )
    if reference.count == 0:
        raise MetricError("cannot compare clips with zero frames")


def _write_raw(frames: Frames, path: Path) -> None:
    """Write the frames as raw planar yuv420p (I420), one frame after another."""
    with open(path, "wb") as handle:
        for index in range(frames.count):
            for plane in (frames.y, frames.u, frames.v):
                handle.write(np.ascontiguousarray(plane[index]).data)


def vmaf(
    reference: Frames,
    distorted: Frames,
    *,
    model: str,
    threads: int,
    timeout_s: float = 3600.0,
) -> tuple[float, list[float]]:
    """VMAF (0..100) of ``distorted`` against ``reference`` by libvmaf: pooled mean, per frame."""
    _check_comparable(reference, distorted)
    if not model or any(char in model for char in ":,;[]='\\ "):
        raise MetricError(f"not a libvmaf model version: {model!r}")
    size = f"{reference.width}x{reference.height}"
    fps = f"{reference.fps.numerator}/{reference.fps.denominator}"
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", size, "-framerate", fps]
    graph = (
        f"[0:v][1:v]libvmaf=model=version={model}:n_threads={max(1, threads)}"
        f":log_fmt=json:log_path={VMAF_LOG}"
    )
    with tempfile.TemporaryDirectory(prefix="aicodec-vmaf-") as folder:
        _write_raw(distorted, Path(folder) / "distorted.yuv")
        _write_raw(reference, Path(folder) / "reference.yuv")
        inputs = [*raw, "-i", "distorted.yuv", *raw, "-i", "reference.yuv"]
        command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", *inputs]
        command += ["-lavfi", graph, "-f", "null", "-"]
        try:
            # Relative paths (cwd is the temporary folder) keep the filter graph free of escapes.
            result = subprocess.run(
                command, cwd=folder, capture_output=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise FFmpegError(f"ffmpeg's libvmaf took longer than {timeout_s:.0f} s") from exc
        if result.returncode != 0:
            raise FFmpegError(f"ffmpeg's libvmaf failed: {last_error_line(result.stderr)}")
        try:
            log = json.loads((Path(folder) / VMAF_LOG).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FFmpegError(f"libvmaf wrote no readable JSON log: {exc}") from exc
    try:
        per_frame = [float(frame["metrics"]["vmaf"]) for frame in log["frames"]]
        pooled = float(log["pooled_metrics"]["vmaf"]["mean"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FFmpegError(f"libvmaf's JSON log lacks the vmaf scores: {exc!r}") from exc
    if len(per_frame) != reference.count:
        raise FFmpegError(f"libvmaf scored {len(per_frame)} frames, expected {reference.count}")
    return pooled, per_frame


def compare(
    reference: Frames, distorted: Frames, *, settings: Settings, with_vmaf: bool = False
) -> QualityReport:
    """PSNR (dB), PSNR-YUV (dB), SSIM-Y (0..1) and optionally VMAF of ``distorted`` vs reference."""
    _check_comparable(reference, distorted)
    w_y, w_u, w_v = settings.psnr_yuv_weights
    weights = (int(w_y), int(w_u), int(w_v))
    ssim, mse = _per_frame(
        [reference.y, reference.u, reference.v],
        [distorted.y, distorted.u, distorted.v],
        settings.metric_threads,
    )
    vmaf_mean: float | None = None
    vmaf_frames: list[float | None] = [None] * reference.count
    if with_vmaf:
        vmaf_mean, scores = vmaf(
            reference,
            distorted,
            model=settings.vmaf_model,
            threads=settings.vmaf_threads,
            timeout_s=settings.ffmpeg_timeout_s,
        )
        vmaf_frames = list(scores)
    plane_psnrs = [per_frame_psnr(mse[:, plane]) for plane in range(3)]
    per_frame = []
    for index in range(reference.count):
        py, pu, pv = (psnrs[index] for psnrs in plane_psnrs)
        per_frame.append(
            FrameQuality(
                index=index,
                psnr_y=py,
                psnr_u=pu,
                psnr_v=pv,
                psnr_yuv=psnr_yuv(py, pu, pv, weights),
                ssim_y=float(ssim[index]),
                vmaf=vmaf_frames[index],
            )
        )
    seq_y, seq_u, seq_v = (sequence_psnr(mse[:, plane]) for plane in range(3))
    return QualityReport(
        frames=reference.count,
        psnr_y=seq_y,
        psnr_u=seq_u,
        psnr_v=seq_v,
        psnr_yuv=psnr_yuv(seq_y, seq_u, seq_v, weights),
        ssim_y=float(ssim.mean()),
        vmaf=vmaf_mean,
        weights=weights,
        per_frame=per_frame,
    )
