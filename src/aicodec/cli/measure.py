"""Measuring video: ``clip``, ``compare``, ``bdrate`` and ``baselines`` (the ladder)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aicodec.cli.common import (
    clip_window,
    executor_overrides,
    fmt,
    guarded,
    make_settings,
    names_list,
    opened_store,
    out,
    print_json,
    warn,
)
from aicodec.cli.options import (
    ConvertOption,
    DbOption,
    EncodersOption,
    ExecutorOption,
    FpsOption,
    FramesOption,
    JobsOption,
    JsonOption,
    RayAddressOption,
    SizeOption,
    StartOption,
    VideoOption,
    VmafOption,
)
from aicodec.cli.progress import progress_bar
from aicodec.errors import ConfigError

if TYPE_CHECKING:
    from aicodec.ladder.runner import LadderResult
    from aicodec.scoring.metrics import QualityReport
    from aicodec.settings import Settings

ReferenceArgument = Annotated[Path, typer.Argument(help="The original video.")]
DistortedArgument = Annotated[Path, typer.Argument(help="The decoded (distorted) video.")]
WeightsOption = Annotated[
    str | None, typer.Option("--weights", help="PSNR-YUV weights Y,U,V \\[default 6,1,1].")
]
PerFrameOption = Annotated[
    bool, typer.Option("--per-frame", help="Also print the per-frame table.")
]
AnchorArgument = Annotated[Path, typer.Argument(help="Anchor curve: CSV with kbps,psnr or JSON.")]
TestArgument = Annotated[Path, typer.Argument(help="Test curve: CSV with kbps,psnr or JSON.")]
MethodOption = Annotated[
    str | None,
    typer.Option("--method", help="Interpolation: pchip (JCT-VC/JVET), akima or cubic."),
]
MinOverlapOption = Annotated[
    float | None,
    typer.Option("--min-overlap", help="Warn below this overlap fraction \\[default 0.75]."),
]
LadderOption = Annotated[
    Path | None,
    typer.Option(
        "--ladder",
        help="Ladder TOML file \\[env AICODEC_LADDER_FILE; default baselines/ladder.toml].",
    ),
]


@guarded
def clip_command(
    video: VideoOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    as_json: JsonOption = False,
) -> None:
    """Load a clip and show its size, frame count, frame rate and content hash."""
    from aicodec.clips import load_clip

    clip = load_clip(video, make_settings(), **clip_window(start, frames, size, fps, convert))
    info = clip.describe()
    if as_json:
        print_json(info)
        return
    table = Table(title=f"clip {clip.name}", show_header=False)
    for key, value in info.items():
        table.add_row(key, str(value))
    out.print(table)


@guarded
def compare_command(
    reference: ReferenceArgument,
    distorted: DistortedArgument,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    vmaf: VmafOption = False,
    weights: WeightsOption = None,
    per_frame: PerFrameOption = False,
    as_json: JsonOption = False,
) -> None:
    """Measure PSNR (Y, U, V, YUV), SSIM-Y and optionally VMAF of DISTORTED against REFERENCE."""
    from aicodec.clips import load_clip
    from aicodec.scoring.metrics import compare

    settings = make_settings(
        psnr_yuv_weights=_parse_weights(weights) if weights is not None else None
    )
    window = clip_window(start, frames, size, fps, convert)
    ref = load_clip(reference, settings, **window)
    dist = load_clip(distorted, settings, **window)
    report = compare(ref.frames, dist.frames, settings=settings, with_vmaf=vmaf)
    if as_json:
        print_json(report.to_dict())
        return
    _render_quality(report, ref.name, dist.name, per_frame)


def _parse_weights(text: str) -> tuple[int, int, int]:
    """Parse ``6,1,1`` into PSNR-YUV weights."""
    parts = text.split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise ConfigError(f"--weights {text!r} must be three integers like 6,1,1") from None
    if len(values) != 3 or min(values) < 0 or sum(values) == 0:
        raise ConfigError(f"--weights {text!r} must be three non-negative integers, not all 0")
    return values


def _render_quality(report: QualityReport, ref_name: str, dist_name: str, per_frame: bool) -> None:
    """Print the summary (and optionally per-frame) quality tables."""
    weights = ":".join(str(w) for w in report.weights)
    table = Table(title=f"{dist_name} against {ref_name}, {report.frames} frames")
    columns = ["PSNR-Y dB", "PSNR-U dB", "PSNR-V dB", f"PSNR-YUV {weights} dB", "SSIM-Y"]
    values = [report.psnr_y, report.psnr_u, report.psnr_v, report.psnr_yuv]
    cells = [fmt(value, 3) for value in values] + [fmt(report.ssim_y, 5)]
    if report.vmaf is not None:
        columns.append("VMAF")
        cells.append(fmt(report.vmaf, 3))
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*cells)
    out.print(table)
    out.print(
        "PSNR per plane is 10*log10(255^2 / MSE) with MSE averaged over all frames; "
        f"PSNR-YUV weights Y:U:V = {weights}; SSIM-Y is the mean over frames "
        "(11x11 Gaussian window, sigma 1.5)."
    )
    if per_frame:
        _render_per_frame(report)


def _render_per_frame(report: QualityReport) -> None:
    """Print the per-frame quality table."""
    frames_table = Table(title="per frame")
    for column in ["frame", "PSNR-Y", "PSNR-U", "PSNR-V", "PSNR-YUV", "SSIM-Y"]:
        frames_table.add_column(column, justify="right")
    for row in report.per_frame:
        frames_table.add_row(
            str(row.index),
            *(fmt(value, 3) for value in (row.psnr_y, row.psnr_u, row.psnr_v, row.psnr_yuv)),
            fmt(row.ssim_y, 5),
        )
    out.print(frames_table)


@guarded
def bdrate_command(
    anchor: AnchorArgument,
    test: TestArgument,
    method: MethodOption = None,
    min_overlap: MinOverlapOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bjontegaard delta rate (percent) and delta PSNR (dB) of TEST against ANCHOR."""
    from aicodec.scoring.bdrate import bd_compare, load_curve

    settings = make_settings(bd_method=method, bd_min_overlap=min_overlap)
    result = bd_compare(
        load_curve(anchor),
        load_curve(test),
        method=settings.bd_method,
        min_overlap=settings.bd_min_overlap,
    )
    for warning in result.warnings:
        warn(warning)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title=f"{test.name} against {anchor.name} ({result.method})")
    for column in ["BD-rate %", "BD-PSNR dB", "PSNR overlap", "rate overlap"]:
        table.add_column(column, justify="right")
    table.add_row(
        fmt(result.bd_rate_percent, 3),
        fmt(result.bd_psnr_db, 3),
        f"{result.overlap_psnr:.0%}",
        f"{result.overlap_rate:.0%}",
    )
    out.print(table)
    out.print("Negative BD-rate: the test needs fewer bits than the anchor for equal PSNR.")


@guarded
def baselines_command(
    video: VideoOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    encoders: EncodersOption = None,
    vmaf: VmafOption = False,
    ladder_file: LadderOption = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Encode a clip with the standard encoders at matched quality and print their RD curves."""
    from aicodec.clips import load_clip
    from aicodec.ladder import load_ladder, run_ladder

    settings = make_settings(
        db=db, ladder_file=ladder_file, **executor_overrides(jobs, executor, ray_address)
    )
    ladder = load_ladder(settings.ladder_file)
    names = names_list(encoders)
    ladder.select(names)  # fail on an unknown name before any work
    clip = load_clip(video, settings, **clip_window(start, frames, size, fps, convert))
    with (
        opened_store(settings, runs_jobs=True) as store,
        _ladder_progress(settings, clip.name) as progress,
    ):
        result = run_ladder(
            clip, store, settings, ladder, encoders=names, with_vmaf=vmaf, progress=progress
        )
    for curve in result.encoders.values():
        for warning in curve.warnings:
            warn(f"{curve.name}: {warning}")
    if as_json:
        print_json(result.to_dict())
        return
    _render_ladder(result, vmaf)


@contextmanager
def _ladder_progress(settings: Settings, clip: str) -> Iterator[Callable[[Any], None]]:
    """A progress bar over the encoders, fed by the ladder's progress events."""
    with progress_bar(settings, f"baselines on {clip}", unit=" encoders") as bar:

        def on_event(event: Any) -> None:
            state = "cached" if event.cached else "encoding"
            rate = "" if event.rate_value is None else f" {event.rate_option} {event.rate_value}"
            bar(
                f"{event.encoder}{rate} ({'done' if event.finished else state})",
                total=event.encoder_total,
                completed=event.encoder_index + (1 if event.finished else 0),
            )

        yield on_event


def _render_ladder(result: LadderResult, with_vmaf: bool) -> None:
    """Print the RD points of every encoder and their BD-rates against the anchor."""
    clip = result.clip.frames
    title = (
        f"{result.clip.name}: {clip.width}x{clip.height}, {clip.count} frames at "
        f"{float(clip.fps):.3f} fps ({result.fresh_encodes} encoded, "
        f"{result.cached_encodes} from the store)"
    )
    table = Table(title=title)
    columns = ["encoder", "rate", "kbps", "PSNR-Y", "PSNR-YUV", "SSIM-Y"]
    columns += ["VMAF"] if with_vmaf else []
    columns += ["enc fps"]
    for column in columns:
        table.add_column(column, justify="left" if column == "encoder" else "right")
    for curve in result.encoders.values():
        for index, point in enumerate(curve.points):
            cells = [
                curve.name if index == 0 else "",
                f"{curve.rate_option} {point.rate_value}",
                fmt(point.kbps, 1),
                fmt(point.psnr_y, 2),
                fmt(point.psnr_yuv, 2),
                fmt(point.ssim_y, 4),
            ]
            cells += [fmt(point.vmaf, 2)] if with_vmaf else []
            cells += [fmt(point.encode_fps, 1)]
            table.add_row(*cells, end_section=index == len(curve.points) - 1)
    out.print(table)
    _render_ladder_summary(result)


def _render_ladder_summary(result: LadderResult) -> None:
    """Print each encoder's BD-rate against the ladder's anchor."""
    summary = Table(title=f"BD-rate against {result.anchor} (PSNR-Y, pchip)")
    summary.add_column("encoder")
    summary.add_column(f"BD-rate vs {result.anchor}", justify="right")
    for curve in result.encoders.values():
        value = curve.bd_rate_vs.get(result.anchor)
        summary.add_row(curve.name, "undefined" if value is None else f"{value:+.2f} %")
    out.print(summary)
    out.print(
        "kbps counts the raw elementary stream (no container, encoder-banner SEI removed); "
        "PSNR in dB; BD-rate < 0 means fewer bits than the anchor at equal PSNR-Y."
    )
