"""``suite``: a codec scored on a test set, per clip and per class, against the anchors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aicodec.cli.common import (
    executor_overrides,
    fmt,
    guarded,
    make_settings,
    names_list,
    opened_store,
    out,
    print_json,
    shown,
    warn,
)
from aicodec.cli.options import (
    CodecArgument,
    DbOption,
    DeviceOption,
    EncodersOption,
    ExecutorOption,
    JobsOption,
    JsonOption,
    QualitiesOption,
    RayAddressOption,
    VmafOption,
)
from aicodec.cli.progress import progress_line
from aicodec.errors import ConfigError

if TYPE_CHECKING:
    from aicodec.suites import SuiteResult
    from aicodec.suites.figures import AnchorFigures

SetOption = Annotated[
    str | None,
    typer.Option(
        "--set",
        help="Test set: a shipped set's name or a TOML file \\[env AICODEC_SUITE_SET; "
        "default builtin].",
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Folder for the files (summary and points CSV, JSON, CompressAI JSON, charts) "
        "\\[default suite-results/SET-CODEC].",
    ),
]
CsvOption = Annotated[
    bool, typer.Option("--csv", help="Print the per-clip and per-class figures as CSV.")
]


@guarded
def suite_command(
    codec: CodecArgument,
    test_set: SetOption = None,
    qualities: QualitiesOption = None,
    encoders: EncodersOption = None,
    vmaf: VmafOption = False,
    out_dir: OutOption = None,
    as_csv: CsvOption = False,
    device: DeviceOption = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score a codec on a test set: BD-rate per clip and class on PSNR-Y, PSNR-YUV and SSIM-Y
    (VMAF with --vmaf) against each anchor, with times relative to the anchor's."""
    from aicodec.candidates import read_candidate
    from aicodec.ladder import load_ladder
    from aicodec.scoring.bdrate import MIN_POINTS
    from aicodec.scoring.candidate import parse_qualities
    from aicodec.scoring.rate_metrics import rate_metrics
    from aicodec.suites import load_set, run_suite
    from aicodec.suites.exports import default_folder, make_folder, summary_csv, write_exports

    source = read_candidate(codec)
    settings = make_settings(
        db=db, device=device, suite_set=test_set, **executor_overrides(jobs, executor, ray_address)
    )
    chosen = load_set(settings.suite_set)
    if qualities is None and chosen.qualities:
        qualities = ",".join(str(level) for level in chosen.qualities)
    levels = parse_qualities(qualities)
    if len(levels) < MIN_POINTS:
        raise ConfigError(
            f"--qualities needs at least {MIN_POINTS} values: a BD-rate needs {MIN_POINTS} "
            "rate points"
        )
    ladder = load_ladder(settings.ladder_file)
    anchors = names_list(encoders) or list(chosen.anchors or ladder.compared)
    ladder.select(anchors)  # fail on an unknown name before any work
    folder = out_dir or default_folder(chosen.name, codec)
    make_folder(folder)
    title = f"suite {chosen.name}: {codec.name}"
    with opened_store(settings, runs_jobs=True) as store:
        with progress_line(settings, title) as update:
            result = run_suite(
                source,
                codec.name,
                chosen,
                store,
                settings,
                ladder,
                levels,
                rate_metrics(vmaf),
                encoders=anchors,
                with_vmaf=vmaf,
                progress=update,
            )
    written = write_exports(result, folder)
    for warning in result.warnings:
        warn(warning)
    if as_json:
        print_json({**result.to_dict(), "files": [str(path) for path in written]})
        return
    if as_csv:
        out.file.write(summary_csv(result))
        return
    _render_suite(result, written)


def _render_suite(result: SuiteResult, written: list[Path]) -> None:
    """One table per anchor: each clip's figures, each class's mean, the whole set's."""
    metrics = result.metrics
    for anchor in result.anchors:
        table = Table(
            title=f"{shown(result.codec)} on set {shown(result.test_set.name)} against {anchor}: "
            "BD-rate %, time ratio"
        )
        for column in ["class", "clip", *(metric.label for metric in metrics), "EncT", "DecT"]:
            table.add_column(column, justify="left" if column in ("class", "clip") else "right")
        for klass in result.classes:
            members = [clip for clip in result.clips if clip.entry.klass == klass.name]
            for index, clip in enumerate(members):
                label = shown(klass.name) if index == 0 else ""
                table.add_row(label, shown(clip.entry.name), *_cells(clip.versus[anchor], result))
            table.add_row(
                "", "[bold]mean[/bold]", *_cells(klass.versus[anchor], result), end_section=True
            )
        table.add_row("[bold]all[/bold]", "", *_cells(result.overall.versus[anchor], result))
        out.print(table)
    out.print(
        "BD-rate < 0: the codec needs fewer bits than the anchor at equal quality (pchip; "
        "SSIM-Y in dB, -10*log10(1-SSIM)); a class's figure is the mean of its clips'. EncT, "
        "DecT: the codec's mean seconds per rate point over the anchor's (below 1: faster; "
        "geometric mean over clips)."
    )
    _render_speed(result)
    out.print(
        f"{len(result.clips)} clips in {len(result.classes)} classes, "
        f"{result.seconds:.0f} s; files: {shown(str(written[0].parent))}",
        soft_wrap=True,
    )


def _render_speed(result: SuiteResult) -> None:
    """The codec and the anchors by encode time, those on the Pareto front marked."""
    from aicodec.suites.exports import on_front
    from aicodec.suites.run import speed_points

    front = on_front(result)
    anchor = result.ladder_anchor
    table = Table(title=f"rate against encode time, relative to {anchor} (PSNR-Y)")
    for column in ["codec", "BD-rate %", "EncT", "Pareto front"]:
        table.add_column(column, justify="left" if column == "codec" else "right")
    points = sorted(speed_points(result), key=lambda p: (p.encode_time is None, p.encode_time))
    for point in points:
        mark = "yes" if point.name in front else ""
        table.add_row(shown(point.name), _percent(point.bd_rate), _ratio(point.encode_time), mark)
    out.print(table)
    out.print(
        "On the front: no other codec is both faster and better; a faster codec at the same "
        "BD-rate moves the front."
    )


def _cells(figures: AnchorFigures, result: SuiteResult) -> list[str]:
    """A row's BD-rates (one per metric) and its two time ratios."""
    rates = [_percent(figures.bd_rate.get(metric.name)) for metric in result.metrics]
    return rates + [_ratio(figures.encode_time), _ratio(figures.decode_time)]


def _percent(value: float | None) -> str:
    """A BD-rate cell: signed percent, or n/a."""
    return "n/a" if value is None else f"{value:+.2f}"


def _ratio(value: float | None) -> str:
    """A time-ratio cell."""
    return "n/a" if value is None else fmt(value, 2)
