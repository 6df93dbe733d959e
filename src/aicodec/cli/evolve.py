"""The search: ``adopt`` (a candidate as the best codec) and ``evolve`` (the loop)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aicodec.cli.common import (
    err,
    executor_overrides,
    fmt,
    guarded,
    make_settings,
    model_overrides,
    opened_store,
    out,
    print_json,
    shown,
    warn,
)
from aicodec.cli.options import (
    BaseUrlOption,
    DbOption,
    ExecutorOption,
    FpsOption,
    FramesOption,
    GitRepoOption,
    JobsOption,
    JsonOption,
    ModelOption,
    PricesOption,
    ProviderOption,
    QualitiesOption,
    RayAddressOption,
    StartOption,
    ThresholdOption,
)
from aicodec.cli.progress import Bar, progress_bar, progress_line
from aicodec.errors import ConfigError
from aicodec.safe_text import printable

if TYPE_CHECKING:
    from aicodec.adoption import Decision
    from aicodec.evolution import EvolveEvent, EvolveSummary
    from aicodec.evolution.command import EvolveOptions
    from aicodec.settings import Settings

CandidateArgument = Annotated[int, typer.Argument(help="The candidate's id in the store.")]
EvaluationVideosOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--video",
        help="An evaluation clip, file or builtin:NAME (repeatable); default: the held-out "
        "built-in clips, builtin:still, builtin:shake and builtin:bikes (its frames 140..149 "
        "unless --start/--frames give a window).",
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Adopt even when the policy says no (recorded).")
]
IterationsOption = Annotated[int, typer.Option("--iterations", "-n", help="Iterations to run.")]
TrainingVideosOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--video",
        help="A training clip, file or builtin:NAME (repeatable); default: builtin:default.",
    ),
]
HoldoutOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--holdout",
        help="A holdout clip (repeatable): never shown to the model; adoption is decided "
        "on it. Default: builtin:still, builtin:shake and builtin:bikes (its frames "
        "140..149 unless --start/--frames give a window), less any training clip; "
        "none: no holdout clip, adoption on the training clips.",
    ),
]
VideoSetOption = Annotated[
    str | None,
    typer.Option(
        "--video-set",
        help="Train on a test set's clips (a shipped set's name or a TOML file, each clip "
        "at its own window) instead of --video.",
    ),
]
HoldoutSetOption = Annotated[
    str | None,
    typer.Option(
        "--holdout-set",
        help="Decide adoption on a test set's clips (a shipped set's name or a TOML file) "
        "instead of --holdout.",
    ),
]
EvolveEncodersOption = Annotated[
    str | None,
    typer.Option(
        "--encoders",
        help="Ladder encoders to score against "
        "\\[env AICODEC_EVOLVE_ENCODERS; default x264,x265,vvenc].",
    ),
]
StartingCodecOption = Annotated[
    str | None,
    typer.Option(
        "--parent",
        help="Starting codec: candidate id or file (default: the "
        "adopted best, else the best scored, else the hybrid seed).",
    ),
]
RunMaxCostOption = Annotated[
    float | None, typer.Option("--max-cost", help="Stop once the run has spent this many USD.")
]
MaxMinutesOption = Annotated[
    float | None,
    typer.Option("--max-minutes", help="Stop once the run has worked this many minutes."),
]
SearchSeedOption = Annotated[
    int, typer.Option("--seed", help="Seed of parent choice and the offline search.")
]
ParallelOption = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        help="Iterations in flight: the next are generated while one is scored "
        "\\[env AICODEC_EVOLVE_PARALLEL; default 1].",
    ),
]
TuneTrialsOption = Annotated[
    int | None,
    typer.Option(
        "--tune-trials",
        help="Iterations that tune the PARAMS of each new structure a model writes, with the "
        "offline tuner, before the loop goes on (0: none) "
        "\\[env AICODEC_EVOLVE_TUNE_TRIALS; default 3].",
    ),
]
ResumeOption = Annotated[
    bool,
    typer.Option("--resume", help="Continue the last unfinished run to its planned count."),
]
AllowProcessSandboxOption = Annotated[
    bool,
    typer.Option(
        "--allow-process-sandbox",
        help="Run code a model writes even where kernel isolation (namespaces, seccomp) "
        "is unavailable, with process isolation only.",
    ),
]


AdoptSetOption = Annotated[
    str | None,
    typer.Option(
        "--set",
        help="Evaluate on a test set's clips (a shipped set's name or a TOML file, each clip "
        "at its own window) instead of --video.",
    ),
]


@guarded
def adopt_command(
    candidate: CandidateArgument,
    video: EvaluationVideosOption = None,
    test_set: AdoptSetOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    qualities: QualitiesOption = None,
    force: ForceOption = False,
    git_repo: GitRepoOption = None,
    threshold: ThresholdOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Adopt a candidate as the best codec when it beats the current best; commit and tag it."""
    from aicodec.adoption.evaluation import evaluate_and_adopt
    from aicodec.scoring.candidate import parse_qualities

    levels = parse_qualities(qualities)
    if len(levels) < 4:
        raise ConfigError("--qualities needs at least 4 values: BD-rate needs 4 rate points")
    if test_set is not None and video:
        raise ConfigError("give --video or --set, not both")
    settings = make_settings(db=db, codec_repo=git_repo, adopt_threshold_percent=threshold)
    with (
        opened_store(settings) as store,
        progress_line(settings, f"adopting candidate {candidate}") as update,
    ):
        evaluation = evaluate_and_adopt(
            store,
            settings,
            candidate,
            levels,
            video or (),
            start=start,
            frames=frames,
            test_set=test_set,
            force=force,
            progress=update,
        )
    for warning in evaluation.warnings:
        warn(warning)
    if as_json:
        print_json(evaluation.decision.to_dict())
    else:
        _render_decision(evaluation.decision)
    if not evaluation.decision.adopted:
        raise typer.Exit(1)


def _render_decision(decision: Decision) -> None:
    """Whether the candidate was adopted (as which tag and commit), and why."""
    if decision.adopted:
        forced = " [yellow](forced)[/yellow]" if decision.forced else ""
        out.print(
            f"[green]adopted[/green]{forced} candidate {decision.candidate_id} as "
            f"{decision.tag} (commit {decision.commit})",
            soft_wrap=True,
        )
    else:
        out.print(f"[yellow]not adopted[/yellow]: candidate {decision.candidate_id}")
    out.print(shown(decision.reason), soft_wrap=True)


@guarded
def evolve_command(
    ctx: typer.Context,
    iterations: IterationsOption = 20,
    provider: ProviderOption = None,
    video: TrainingVideosOption = None,
    holdout: HoldoutOption = None,
    video_set: VideoSetOption = None,
    holdout_set: HoldoutSetOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    fps: FpsOption = None,
    qualities: QualitiesOption = None,
    encoders: EvolveEncodersOption = None,
    parent: StartingCodecOption = None,
    max_cost: RunMaxCostOption = None,
    max_minutes: MaxMinutesOption = None,
    seed: SearchSeedOption = 0,
    parallel: ParallelOption = None,
    tune_trials: TuneTrialsOption = None,
    git_repo: GitRepoOption = None,
    threshold: ThresholdOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    resume: ResumeOption = False,
    allow_process_sandbox: AllowProcessSandboxOption = False,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    prices: PricesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The main job: evolve codecs (plan, parent, generate, score, adopt) for N iterations."""
    from aicodec.evolution.command import evolve

    options = _run_options(ctx.params)  # the options a run stores with itself, as given
    settings = make_settings(
        db=db,
        adopt_threshold_percent=threshold,
        prices_file=prices,
        sandbox_allow_process=allow_process_sandbox or None,
        **executor_overrides(jobs, executor, ray_address),
        **model_overrides(provider, model, base_url),
    )
    with _run_errors(_resume_command(ctx.params)), opened_store(settings, runs_jobs=True) as store:
        with _evolve_progress(settings, iterations) as on_event:
            summary = evolve(store, settings, options, on_event, resume=resume)
    if as_json:
        print_json(summary.to_dict())
    else:
        _render_summary(summary)
    if summary.status == "failed":  # stopped by failures in a row: a failure for scripts
        raise typer.Exit(1)


def _run_options(given: Mapping[str, Any]) -> EvolveOptions:
    """The evolve run's own options (those it stores) from the parsed command line (Click's
    values: text for a path, a tuple for a repeated option)."""
    from aicodec.evolution.command import EvolveOptions

    return EvolveOptions(
        iterations=given["iterations"],
        videos=[str(path) for path in given["video"] or []],
        holdout=[str(path) for path in given["holdout"] or []],
        video_set=given["video_set"],
        holdout_set=given["holdout_set"],
        parent=given["parent"],
        qualities=given["qualities"],
        encoders=given["encoders"],
        provider=given["provider"],
        git_repo=None if given["git_repo"] is None else str(given["git_repo"]),
        threshold=given["threshold"],
        fps=given["fps"],
        frames=given["frames"],
        start=given["start"],
        parallel=given["parallel"],
        tune_trials=given["tune_trials"],
        seed=given["seed"],
        max_cost=given["max_cost"],
        max_minutes=given["max_minutes"],
    )


# The options a run does not store, which the command that resumes it repeats.
UNSTORED = ("db", "executor", "ray_address", "model", "base_url", "prices")


def _resume_command(given: Mapping[str, Any]) -> str:
    """The command that resumes a run, with the options it was given that the run does not
    store (its store, executor, model address, prices, sandbox opt-in)."""
    words = ["aicodec", "evolve", "--resume"]
    for name in UNSTORED:
        if given[name] is not None:
            words += ["--" + name.replace("_", "-"), str(given[name])]
    if given["allow_process_sandbox"]:
        words.append("--allow-process-sandbox")
    return shlex.join(words)


@contextmanager
def _run_errors(resume_command: str) -> Iterator[None]:
    """An interrupted or crashed run is one line saying how to resume it, and exit 130 or
    70 (with AICODEC_DEBUG set, a crash shows its traceback)."""
    from aicodec.evolution import EvolveInterrupted
    from aicodec.evolution.events import EvolveCrashed

    try:
        yield
    except EvolveInterrupted as exc:
        err.print(
            f"[yellow]{shown(str(exc))}[/yellow]; completed iterations are stored. "
            f"Resume with: {shown(resume_command)}",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    except EvolveCrashed as exc:
        if os.environ.get("AICODEC_DEBUG"):
            raise exc.error from exc
        err.print(
            f"[red]internal error:[/red] {shown(str(exc))} (set AICODEC_DEBUG=1 to "
            "see the traceback); finished work is stored and the run is resumable. "
            f"Resume with: {shown(resume_command)}",
            soft_wrap=True,
        )
        raise typer.Exit(70) from None


class _EvolveDisplay:
    """The evolve run's progress (see ``progress_bar``): the iteration and its stage first,
    or the set-up (the ladders and the starting codec's scores, before iteration 1) and
    what it does; the bar over the iterations; the best BD-rate, adoptions and cost."""

    def __init__(self, bar: Bar) -> None:
        self.bar = bar

    def __call__(self, event: EvolveEvent) -> None:
        message = printable(event.message)
        if event.iteration == 0:
            self.bar(f"set-up: {message}", total=event.total)
        else:
            best = "-" if event.best_bd_rate is None else f"{event.best_bd_rate:+.2f} %"
            doing = event.stage if message == event.stage else f"{event.stage}: {message}"
            self.bar(
                f"#{event.iteration}/{event.total} {doing}",
                total=event.total,
                advance=1 if event.row is not None else 0,
                figures=f"best vs x264 {best} | adopted {event.adoptions} | ${event.cost_usd:.3f}",
            )
        if event.row is not None:
            self.bar.print(_iteration_line(event.row))


def _iteration_line(row: dict[str, Any]) -> str:
    """One finished iteration as a line: outcome, BD-rates, adoption, time per stage."""
    seconds = ", ".join(f"{stage} {value:.1f}s" for stage, value in row["stage_seconds"].items())
    if row["status"] == "scored":
        outcome = (
            f"candidate {row['candidate']} BD-rate vs parent "
            f"{fmt(row['bd_rate_vs_parent'])} %, "
            f"vs x264 {fmt(row['bd_rate'])} %"
        )
    else:
        outcome = f"[red]{row['status']}[/red] ({shown(row['failure_kind'])})"
    adopted = " [green]adopted[/green]" if row["adopted"] else ""
    return (
        f"#{row['iteration']} parent {row['parent']}: {outcome}{adopted}; "
        f"{shown(row['reason'] or '', 160)} [dim]({seconds})[/dim]"
    )


@contextmanager
def _evolve_progress(settings: Settings, total: int) -> Iterator[Callable[[EvolveEvent], None]]:
    """The evolve display's callback (SIGTERM and SIGHUP act as Ctrl-C: see main); the bar
    stays at the end, and goes with an error (one line)."""
    with progress_bar(settings, "evolve", total=total, count=False, transient=False) as bar:
        yield _EvolveDisplay(bar)


def clip_list(clips: list[dict[str, Any]]) -> str:
    """Clips on one line: name, store id and the start of the content hash of each."""
    return ", ".join(
        f"{clip['name']} (clip {clip['id']}, {(clip['hash'] or '-')[:12]})" for clip in clips
    )


def _render_summary(summary: EvolveSummary) -> None:
    """The end-of-run summary: counts, failures by kind, adoptions, best codec, cost."""
    table = Table(title=f"evolve run {summary.run_id}: {summary.status}")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    for name, value in _summary_rows(summary):
        table.add_row(name, shown(str(value)))
    out.print(table)
    out.print("BD-rates: PSNR-Y, pchip, mean over the training clips; negative = fewer bits.")
    if summary.cost_per_gain is not None:
        from aicodec.cli.cost import render_cost_per_gain

        render_cost_per_gain(summary.cost_per_gain)


def duration(seconds: float | None) -> str:
    """Seconds as ``4m 10s`` (``1h 2m 3s``; under a minute ``12.3s``); '-' for None."""
    if seconds is None:
        return "-"
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, minutes, rest = whole // 3600, whole // 60 % 60, whole % 60
    return f"{hours}h {minutes}m {rest}s" if hours else f"{minutes}m {rest}s"


def _time_figures(summary: EvolveSummary) -> str:
    """The run's time: its set-up, its iterations, in all."""
    return (
        f"set-up {duration(summary.setup_seconds)}, iterations {duration(summary.seconds)}, "
        f"total {duration(summary.total_seconds)}"
    )


def _summary_rows(summary: EvolveSummary) -> list[tuple[str, str]]:
    """The summary's figures as (name, value) rows."""
    failures = ", ".join(f"{kind} {count}" for kind, count in summary.failures.items()) or "none"
    adoptions = (
        ", ".join(
            f"candidate {item['candidate']} (iteration {item['iteration']})"
            for item in summary.adoptions
        )
        or "none"
    )
    rows = [
        ("provider", summary.provider),
        ("training clips", clip_list(summary.training_clips)),
        (
            "holdout clips",
            clip_list(summary.holdout_clips)
            if summary.holdout_clips
            else "none: adoption is decided on the training clips",
        ),
        ("iterations", f"{summary.completed} of {summary.planned} done, {summary.scored} scored"),
        ("failures by kind", failures),
        ("adoptions", adoptions),
        (
            "starting codec",
            f"candidate {summary.start_candidate}, BD-rate vs x264 "
            f"{fmt(summary.start_bd_rate_vs_x264)} %",
        ),
        (
            "best codec",
            f"candidate {summary.best_candidate}, BD-rate vs x264 "
            f"{fmt(summary.best_bd_rate_vs_x264)} %, vs the start "
            f"{fmt(summary.best_vs_start)} %",
        ),
        (
            "adopted best",
            "none"
            if summary.adopted_best is None
            else f"candidate {summary.adopted_best}, "
            f"vs the start {fmt(summary.adopted_vs_start)} %",
        ),
        ("model cost", f"{summary.cost_usd:.4f} USD"),
        ("time", _time_figures(summary)),
    ]
    if summary.stop_reason:
        rows.append(("stopped", summary.stop_reason))
    return rows
