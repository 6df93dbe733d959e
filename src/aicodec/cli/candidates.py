"""Working with codec files: ``contract``, ``validate``, ``run``, ``score``, ``decode``,
``generate`` and ``logs`` (the model-call log)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aicodec.cli.common import (
    clip_window,
    err,
    executor_overrides,
    fmt,
    guarded,
    make_settings,
    model_overrides,
    names_list,
    opened_store,
    out,
    print_json,
    shown,
    warn,
)
from aicodec.cli.options import (
    BaseUrlOption,
    CodecArgument,
    ConvertOption,
    DbOption,
    DeviceOption,
    EncodersOption,
    ExecutorOption,
    FpsOption,
    FramesOption,
    JobsOption,
    JsonOption,
    KeepOption,
    ModelOption,
    PricesOption,
    ProviderOption,
    QualitiesOption,
    RayAddressOption,
    SizeOption,
    StartOption,
    VideoOption,
    VmafOption,
)
from aicodec.cli.progress import progress_line

if TYPE_CHECKING:
    from aicodec.generation.generate import GenerationOutcome
    from aicodec.scoring.candidate import RunOutcome, ScoreOutcome
    from aicodec.settings import Settings
    from aicodec.store import Store
    from aicodec.store.queries.calls import CallLog

PlotOption = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        help="Also draw the RD chart (PSNR-Y against log rate, the codec "
        "and the encoders) to this .svg or .png file.",
    ),
]
BitstreamArgument = Annotated[Path, typer.Argument(help="A bitstream the codec's encoder wrote.")]
DecodedOutputOption = Annotated[
    Path, typer.Option("-o", "--output", help="The decoded .y4m to write.")
]
DecodeFpsOption = Annotated[
    str | None, typer.Option("--fps", help="Frame rate when the codec does not return one.")
]
ParentOption = Annotated[
    str | None,
    typer.Option(
        "--parent",
        help="Candidate id or codec file (default: best so far, else the hybrid seed).",
    ),
]
CountOption = Annotated[int, typer.Option("--n", help="How many candidates to make.")]
RepairsOption = Annotated[
    int | None,
    typer.Option(
        "--repairs",
        help="Times to ask the model to fix a validation error "
        "\\[env AICODEC_GENERATE_REPAIRS; default 2].",
    ),
]
MaxCostOption = Annotated[
    float | None, typer.Option("--max-cost", help="Stop once this many USD are spent.")
]
MaxTokensOption = Annotated[
    int | None, typer.Option("--max-tokens", help="Stop once this many tokens are used.")
]
MutationSeedOption = Annotated[
    int, typer.Option("--seed", help="Seed of the offline provider (tuner or mutation).")
]
LastOption = Annotated[int, typer.Option("-n", "--last", help="How many calls to list.")]
QueryOption = Annotated[
    str | None,
    typer.Option("-q", "--query", help="Only calls whose prompt, answer or error contains TEXT."),
]


@guarded
def contract_command(as_json: JsonOption = False) -> None:
    """Print the codec contract (markdown) exactly as every prompt carries it."""
    from aicodec.generation.prompts import contract_text

    text = contract_text(make_settings())
    if as_json:
        print_json({"contract": text})
    else:
        print(text)


@guarded
def validate_command(codec: CodecArgument, as_json: JsonOption = False) -> None:
    """Check a codec file statically (contract, imports, forbidden names); exit 1 if invalid."""
    from aicodec.validation import validate_file

    report = validate_file(codec)
    if as_json:
        print_json(report.to_dict())
    elif report.valid:
        out.print(f"[green]valid[/green] {shown(codec)} (code hash {report.code_hash[:16]})")
    else:
        table = Table(title=f"{shown(codec)}: {len(report.violations)} problem(s)")
        for column in ("line", "rule", "problem"):
            table.add_column(column)
        for violation in report.violations:
            table.add_row(str(violation.line), violation.rule, shown(violation.message))
        out.print(table)
    if not report.valid:
        raise typer.Exit(1)


@guarded
def run_command(
    codec: CodecArgument,
    video: VideoOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    qualities: QualitiesOption = None,
    keep: KeepOption = None,
    device: DeviceOption = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a codec in the sandbox: encode per quality, decode each bitstream twice apart."""
    from aicodec.candidates import read_candidate
    from aicodec.clips import load_clip
    from aicodec.scoring.candidate import parse_qualities, run_and_measure

    source = read_candidate(codec)
    levels = parse_qualities(qualities)
    settings = make_settings(
        db=db, device=device, **executor_overrides(jobs, executor, ray_address)
    )
    with opened_store(settings, runs_jobs=True) as store:
        clip = load_clip(video, settings, **clip_window(start, frames, size, fps, convert))
        title = f"running {codec.name} on {clip.name}"
        with progress_line(settings, title, f"{codec.name}: ") as update:
            outcome = run_and_measure(
                source,
                codec.name,
                clip,
                store,
                settings,
                levels,
                keep_dir=keep,
                reuse=False,
                progress=update,
            )
    if as_json:
        print_json(outcome.to_dict())
        return
    _render_points(outcome, with_vmaf=False, title="sandbox run")


@guarded
def score_command(
    codec: CodecArgument,
    video: VideoOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    qualities: QualitiesOption = None,
    keep: KeepOption = None,
    vmaf: VmafOption = False,
    encoders: EncodersOption = None,
    plot: PlotOption = None,
    device: DeviceOption = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score a codec: RD points measured by the lab and BD-rate against every encoder."""
    from aicodec.candidates import read_candidate
    from aicodec.clips import load_clip
    from aicodec.ladder import load_ladder
    from aicodec.scoring.candidate import parse_qualities, score_candidate

    source = read_candidate(codec)
    levels, names = parse_qualities(qualities), names_list(encoders)
    _check_plot(plot)
    settings = make_settings(
        db=db, device=device, **executor_overrides(jobs, executor, ray_address)
    )
    with opened_store(settings, runs_jobs=True) as store:
        ladder = load_ladder(settings.ladder_file)
        ladder.select(names)
        clip = load_clip(video, settings, **clip_window(start, frames, size, fps, convert))
        title = f"scoring {codec.name} on {clip.name}"
        with progress_line(settings, title, f"{codec.name}: ") as update:
            outcome = score_candidate(
                source,
                codec.name,
                clip,
                store,
                settings,
                ladder,
                levels,
                encoders=names,
                keep_dir=keep,
                with_vmaf=vmaf,
                progress=update,
            )
        _write_plot(store, settings, outcome, plot)
    for warning in outcome.warnings:
        warn(warning)
    if as_json:
        print_json({**outcome.to_dict(), **({"plot": str(plot)} if plot else {})})
        return
    _render_score(outcome, vmaf, plot)


def _check_plot(plot: Path | None) -> None:
    """Refuse a --plot file name that cannot be drawn, before any work."""
    if plot is not None:
        from aicodec.report.charts import plot_format

        plot_format(plot)


def _write_plot(store: Store, settings: Settings, outcome: ScoreOutcome, plot: Path | None) -> None:
    """Draw the RD chart of a scored codec to ``plot``, where one was asked for."""
    if plot is not None:
        from aicodec.report.score_plot import write_score_plot

        write_score_plot(store, settings, outcome, plot)


def _render_score(outcome: ScoreOutcome, with_vmaf: bool, plot: Path | None) -> None:
    """Print a scored codec's points and its BD-rate against each encoder."""
    _render_points(outcome, with_vmaf=with_vmaf, title="score")
    summary = Table(title="BD-rate of the codec against each encoder (PSNR-Y)")
    summary.add_column("encoder")
    summary.add_column("BD-rate", justify="right")
    for name, value in outcome.bd_rate_vs.items():
        summary.add_row(name, "undefined" if value is None else f"{value:+.2f} %")
    out.print(summary)
    out.print("BD-rate < 0: the codec needs fewer bits than that encoder at equal PSNR-Y.")
    if plot is not None:
        out.print(f"RD chart: {shown(str(plot))}", soft_wrap=True)


def _render_points(outcome: RunOutcome, *, with_vmaf: bool, title: str) -> None:
    """Print a candidate's measured rate points and the isolation in force."""
    clip = outcome.clip.frames
    reused = " (stored run reused)" if outcome.reused else ""
    table = Table(
        title=f"{title} of {shown(outcome.name)} on {shown(outcome.clip.name)}: "
        f"{clip.width}x{clip.height}, {clip.count} frames{reused}"
    )
    columns = ["quality", "bytes", "kbps", "PSNR-Y", "PSNR-YUV", "SSIM-Y"]
    columns += ["VMAF"] if with_vmaf else []
    columns += ["enc fps", "dec fps"]
    for column in columns:
        table.add_column(column, justify="right")
    for point in outcome.points:
        cells = [
            str(point.quality),
            str(point.bytes),
            fmt(point.kbps, 1),
            fmt(point.psnr_y),
            fmt(point.psnr_yuv),
            fmt(point.ssim_y, 4),
        ]
        cells += [fmt(point.vmaf)] if with_vmaf else []
        cells += [fmt(point.encode_fps, 1), fmt(point.decode_fps, 1)]
        table.add_row(*cells)
    out.print(table)
    out.print(f"isolation: {shown(outcome.isolation)}")
    out.print(
        "bytes = the whole bitstream the decoder received; kbps = 8*bytes/(frames/fps)/1000; "
        "every bitstream was decoded twice in separate processes with identical results."
    )


@guarded
def decode_command(
    codec: CodecArgument,
    bitstream: BitstreamArgument,
    output: DecodedOutputOption,
    fps: DecodeFpsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Decode one bitstream with one codec in the sandbox, to a y4m file."""
    from aicodec.candidates import read_candidate
    from aicodec.candidates.decoding import decode_to_file
    from aicodec.clips import parse_fps

    source = read_candidate(codec)
    rate = parse_fps(fps) if fps is not None else None
    settings = make_settings()
    with progress_line(settings, f"decoding {bitstream.name} with {codec.name}"):
        decoded = decode_to_file(source, bitstream, output, settings, fps=rate)
    if as_json:
        print_json(decoded.to_dict())
        return
    out.print(
        f"wrote {output}: {decoded.frames} frames of {decoded.width}x{decoded.height} at "
        f"{decoded.fps:.3f} fps from {decoded.bytes} bytes"
    )


@guarded
def generate_command(
    parent: ParentOption = None,
    provider: ProviderOption = None,
    n: CountOption = 1,
    repairs: RepairsOption = None,
    max_cost: MaxCostOption = None,
    max_tokens: MaxTokensOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    seed: MutationSeedOption = 0,
    prices: PricesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make new candidates from a parent with a model (or an offline search)."""
    from aicodec.generation.batch import generate_batch

    overrides = model_overrides(provider, model, base_url)
    settings = make_settings(db=db, prices_file=prices, **overrides)
    with opened_store(settings) as store, progress_line(settings, "generating") as update:
        outcome = generate_batch(
            store,
            settings,
            provider=provider,
            parent=parent,
            count=n,
            seed=seed,
            repairs=repairs,
            max_cost=max_cost,
            max_tokens=max_tokens,
            progress=update,
        )
    err.print(f"provider: {shown(outcome.provider)} ({shown(outcome.provider_reason)})")
    if outcome.stopped:
        err.print(f"[yellow]stopped:[/yellow] {shown(outcome.stopped)}", soft_wrap=True)
    if as_json:
        print_json(outcome.to_dict())
    else:
        _render_generation(outcome)
    if not any(candidate.status == "new" for candidate in outcome.candidates):
        raise typer.Exit(1)


def _render_generation(outcome: GenerationOutcome) -> None:
    """Print each generated candidate's id, validity and fate."""
    table = Table(
        title=f"{len(outcome.candidates)} candidate(s) from {shown(outcome.parent.name)} by "
        f"{shown(outcome.provider)} ({shown(outcome.model)})"
    )
    for column in ("id", "status", "valid", "origin", "code hash", "repairs", "reason"):
        table.add_column(column)
    for item in outcome.candidates:
        table.add_row(
            str(item.candidate_id or "-"),
            item.status,
            "yes" if item.valid else "no",
            shown(item.origin),
            (item.code_hash or "-")[:12],
            str(item.repairs),
            shown(item.reason or ""),
        )
    out.print(table)
    out.print(
        f"{outcome.calls} model call(s), {outcome.input_tokens} input and "
        f"{outcome.output_tokens} output tokens, {outcome.cost_usd:.4f} USD"
    )


@guarded
def logs_command(
    last: LastOption = 20,
    query: QueryOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List and search the model-call log, with token and cost totals per run."""
    from aicodec.store.queries.calls import call_log

    with opened_store(make_settings(db=db)) as store:
        log = call_log(store, last, query)
    if as_json:
        print_json(log.to_dict())
        return
    _render_calls(log)


CALL_COLUMNS = ("id", "when", "provider", "model", "purpose", "in", "out", "cached", "USD", "s")


def _render_calls(log: CallLog) -> None:
    """Print the calls (newest first) and the totals per run."""
    table = Table(title=f"model calls ({len(log.calls)} shown, newest first)")
    for column in (*CALL_COLUMNS, "retries", "error"):
        table.add_column(column)
    for call in log.calls:
        table.add_row(
            str(call["id"]),
            str(call["created_at"])[:19],
            shown(call["provider"]),
            shown(call["model"]),
            shown(call["purpose"]),
            str(call["input_tokens"]),
            str(call["output_tokens"]),
            str(call["cache_read_tokens"]),
            f"{call['cost_usd']:.4f}",
            f"{call['latency_s']:.1f}",
            str(call["retries"]),
            shown(call["error"] or ""),
        )
    out.print(table)
    runs = Table(title="totals per run")
    for column in ("run", "calls", "input", "output", "cached", "USD"):
        runs.add_column(column)
    for total in log.runs:
        runs.add_row(
            str(total["batch"])[:12],
            str(total["calls"]),
            str(total["input_tokens"]),
            str(total["output_tokens"]),
            str(total["cache_read_tokens"]),
            f"{total['cost_usd'] or 0:.4f}",
        )
    out.print(runs)
