"""A suite's files for papers and tools: the table as CSV, every RD point as CSV, the whole
result as JSON, CompressAI's results JSON for the codec and each anchor, and RD charts.

CompressAI's layout (its ``results/video/*.json``): ``{"name", "description", "results":
{"psnr-y": [...], "bitrate": [...], ...}}`` with one value per rate point, averaged over the
set's sequences; here ``bitrate`` is in kbit/s, ``bpp`` is bits per luma pixel, the times
are seconds per sequence, and ``sequences`` adds the same lists per clip.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

from aicodec.errors import SuiteError
from aicodec.report.charts import Curve, TimePoint, pareto_front, write_pareto_plot, write_rd_plot
from aicodec.scoring.candidate import STORED_FIELDS
from aicodec.scoring.metrics import EncodedQuality, json_safe
from aicodec.suites.figures import AnchorFigures, mean_or_none
from aicodec.suites.run import ClipResult, SuiteResult, speed_points

RESULTS_FOLDER = "suite-results"
CLIP_COLUMNS = ("class", "clip", "codec", "role", "rate", "frames", "width", "height", "fps")
POINT_COLUMNS = (*CLIP_COLUMNS, *STORED_FIELDS, "decode_seconds")  # the figures as stored


def default_folder(set_name: str, codec: Path) -> Path:
    """Where a suite's files go unless told: suite-results/SET-CODEC (a safe file name)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{set_name}-{codec.stem}")
    return Path(RESULTS_FOLDER) / stem


def _csv_text(header: Sequence[str], rows: list[list[object]]) -> str:
    """Rows as CSV text with a header line (None as an empty cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
    return buffer.getvalue()


def summary_csv(result: SuiteResult) -> str:
    """The table as CSV, one row per (scope, class, clip, anchor) with every metric's
    BD-rate (percent) and the encode and decode time ratios."""
    metrics = [metric.name for metric in result.metrics]
    header = ["scope", "class", "clip", "anchor"]
    header += [f"bd_rate_{name}" for name in metrics] + ["encode_time", "decode_time"]
    rows: list[list[object]] = []

    def add(scope: str, klass: str, clip: str, versus: dict[str, AnchorFigures]) -> None:
        for anchor in result.anchors:
            figures = versus[anchor]
            rates = [figures.bd_rate.get(name) for name in metrics]
            rows.append(
                [scope, klass, clip, anchor, *rates, figures.encode_time, figures.decode_time]
            )

    for clip in result.clips:
        add("clip", clip.entry.klass, clip.entry.name, clip.versus)
    for klass in result.classes:
        add("class", klass.name, "", klass.versus)
    add("set", "", "", result.overall.versus)
    return _csv_text(header, rows)


def _point_row(
    clip: ClipResult, codec: str, role: str, rate: str, point: EncodedQuality, decode: float | None
) -> list[object]:
    """One RD point as a CSV row."""
    frames = clip.clip.frames
    values = [getattr(point, name) for name in STORED_FIELDS]
    return [
        clip.entry.klass,
        clip.entry.name,
        codec,
        role,
        rate,
        frames.count,
        frames.width,
        frames.height,
        float(frames.fps),
        *values,
        decode,
    ]


def points_csv(result: SuiteResult) -> str:
    """Every RD point of the codec and the anchors on every clip, with its metrics (dB,
    SSIM 0..1, VMAF), kbit/s, bytes and encode and decode seconds."""
    rows = []
    for clip in result.clips:
        for point in clip.outcome.points:
            quality = f"quality {point.quality}"
            rows.append(
                _point_row(clip, result.codec, "codec", quality, point, point.decode_seconds)
            )
        for name, curve in clip.ladder.encoders.items():
            for anchor_point in curve.points:
                rate = f"{curve.rate_option} {anchor_point.rate_value}"
                decode = anchor_point.decode_seconds
                rows.append(_point_row(clip, name, "anchor", rate, anchor_point, decode))
    return _csv_text(POINT_COLUMNS, rows)


def _per_point(
    clip: ClipResult, points: Sequence[EncodedQuality], decode: list[float | None]
) -> dict[str, list[float | None]]:
    """CompressAI's per-point lists for one clip (points sorted by rate)."""
    frames = clip.clip.frames
    pixels_per_second = frames.width * frames.height * float(frames.fps)
    lists: dict[str, list[float | None]] = {
        "psnr-y": [p.psnr_y for p in points],
        "psnr-u": [p.psnr_u for p in points],
        "psnr-v": [p.psnr_v for p in points],
        "psnr-yuv": [p.psnr_yuv for p in points],
        "ssim-y": [p.ssim_y for p in points],
        "bitrate": [p.kbps for p in points],
        "bpp": [p.kbps * 1000.0 / pixels_per_second for p in points],
        "encoding_time": [p.encode_seconds for p in points],
        "decoding_time": decode,
    }
    if all(p.vmaf is not None for p in points):
        lists["vmaf"] = [p.vmaf for p in points]
    return lists


def _average(sequences: list[dict[str, list[float | None]]]) -> dict[str, list[float | None]]:
    """Point-by-point means over sequences of the lists they all have (None if any is)."""
    keys = [key for key in sequences[0] if all(key in entry for entry in sequences)]
    averaged: dict[str, list[float | None]] = {}
    for key in keys:
        columns = zip(*(entry[key] for entry in sequences), strict=False)
        averaged[key] = [mean_or_none(column) for column in columns]
    return averaged


def compressai_results(result: SuiteResult) -> dict[str, dict[str, object]]:
    """CompressAI results JSON per codec (the suite's codec and each anchor), by name."""
    documents: dict[str, dict[str, object]] = {}
    per_codec: dict[str, dict[str, dict[str, list[float | None]]]] = {result.codec: {}}
    for clip in result.clips:
        codec_points = sorted(clip.outcome.points, key=lambda point: point.kbps)
        decode: list[float | None] = [point.decode_seconds for point in codec_points]
        per_codec[result.codec][clip.entry.name] = _per_point(clip, codec_points, decode)
        for name, curve in clip.ladder.encoders.items():
            anchor_points = sorted(curve.points, key=lambda point: point.kbps)
            decode = [point.decode_seconds for point in anchor_points]
            per_codec.setdefault(name, {})[clip.entry.name] = _per_point(
                clip, anchor_points, decode
            )
    for name, sequences in per_codec.items():
        role = "the codec scored" if name == result.codec else "an anchor of the ladder"
        documents[name] = {
            "name": name,
            "description": f"aicodec suite on set {result.test_set.name}: {role}",
            "results": _average(list(sequences.values())),
            "sequences": sequences,
        }
    return documents


def _safe_name(text: str) -> str:
    """A file name from a codec or class name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "unnamed"


def rd_charts(result: SuiteResult) -> dict[str, dict[str, list[Curve]]]:
    """Per class, one RD chart (PSNR-Y against log rate) per clip: the codec and anchors."""
    charts: dict[str, dict[str, list[Curve]]] = {}
    for clip in result.clips:
        frames = clip.clip.frames
        title = f"{clip.entry.name}: {frames.width}x{frames.height}, {frames.count} frames"
        curves = [
            Curve(name, [p.kbps for p in curve.points], [p.psnr_y for p in curve.points])
            for name, curve in clip.ladder.encoders.items()
        ]
        codec = sorted(clip.outcome.points, key=lambda point: point.kbps)
        curves.append(
            Curve(result.codec, [p.kbps for p in codec], [p.psnr_y for p in codec], "best")
        )
        charts.setdefault(clip.entry.klass, {})[title] = curves
    return charts


def time_points(result: SuiteResult) -> list[TimePoint]:
    """The codec and the anchors on the rate/encode-time plane (time as a ratio of the
    ladder anchor's, BD-rate in percent against it); those with an unknown figure are left
    out."""
    return [
        TimePoint(
            point.name,
            point.encode_time,
            point.bd_rate,
            "best" if point.role == "codec" else "ladder",
        )
        for point in speed_points(result)
        if point.encode_time is not None and point.bd_rate is not None
    ]


def on_front(result: SuiteResult) -> set[str]:
    """Names of the codecs on the Pareto front of BD-rate against encode time (none faster
    and better at once)."""
    return {point.label for point in pareto_front(time_points(result))}


def make_folder(folder: Path) -> None:
    """Make the files' folder (before any work, so a bad --out fails at once); SuiteError
    when it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "compressai").mkdir(exist_ok=True)
    except OSError as exc:
        raise SuiteError(
            f"cannot write the suite's files to {folder}: {exc.strerror or exc}"
        ) from None


def write_exports(result: SuiteResult, folder: Path) -> list[Path]:
    """Write the suite's files into ``folder`` (made if missing); the paths written.
    SuiteError when the folder cannot be written."""
    make_folder(folder)
    try:
        written = []

        def write(name: str, text: str) -> None:
            path = folder / name
            path.write_text(text)
            written.append(path)

        write("summary.csv", summary_csv(result))
        write("points.csv", points_csv(result))
        write("suite.json", json.dumps(json_safe(result.to_dict()), indent=2) + "\n")
        for name, document in compressai_results(result).items():
            write(
                f"compressai/{_safe_name(name)}.json",
                json.dumps(json_safe(document), indent=2) + "\n",
            )
        path = folder / "pareto.svg"
        title = f"set {result.test_set.name}: BD-rate (PSNR-Y) against encode time"
        x_label = f"encode time relative to {result.ladder_anchor} (log scale)"
        write_pareto_plot(path, {title: time_points(result)}, x_label=x_label)
        written.append(path)
        for klass, charts in rd_charts(result).items():
            path = folder / f"rd-{_safe_name(klass)}.svg"
            write_rd_plot(path, charts)
            written.append(path)
    except OSError as exc:
        raise SuiteError(
            f"cannot write the suite's files to {folder}: {exc.strerror or exc}"
        ) from None
    return written
