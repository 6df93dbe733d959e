"""Reading an evolve run back: ``history`` (its iterations, or its planners' calibration)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from aicodec.cli.common import fmt, guarded, make_settings, opened_store, out, print_json, shown
from aicodec.cli.evolve import clip_list
from aicodec.cli.options import DbOption, JsonOption, RunOption
from aicodec.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from aicodec.evolution.calibration import PlannerCalibration
    from aicodec.evolution.command import RunHistory

PlansOption = Annotated[
    bool, typer.Option("--plans", help="Show plans, predictions and stage times too.")
]
CalibrationOption = Annotated[
    bool,
    typer.Option(
        "--calibration",
        help="Per planner: predicted against measured BD-rate vs the parent (error, "
        "correlation, predicted wins that came true) instead of the iterations.",
    ),
]
AllRunsOption = Annotated[
    bool, typer.Option("--all-runs", help="With --calibration: pool every run in the store.")
]
BRIEF_KEYS = ("iteration", "parent", "origin", "status", "bd_rate", "adopted", "reason")
# (header, justify) of the short columns, before the long text (reason, hypothesis): few and
# narrow, so that at 80 columns the text keeps some room and no header word is cut
COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("#", "right"),
    ("parent", "right"),
    ("codec", "right"),
    ("origin", "left"),
    ("status", "left"),
    ("BD-rate", "right"),
    ("vs parent", "right"),
)
PLAN_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("#", "right"),
    ("planner", "left"),
    ("predicted", "right"),
    ("confidence", "right"),
    ("seconds", "right"),
)


@guarded
def history_command(
    run: RunOption = None,
    plans: PlansOption = False,
    calibration: CalibrationOption = False,
    all_runs: AllRunsOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The iterations of an evolve run: parent, origin, status, BD-rate, adoption, reason.

    With --calibration, how well its planners predicted the BD-rate vs the parent."""
    if all_runs and not calibration:
        raise ConfigError("--all-runs goes with --calibration")
    if calibration:
        _history_calibration(db, run, all_runs, as_json)
        return
    from aicodec.evolution.command import run_history

    settings = make_settings(db=db)
    with opened_store(settings) as store:
        found = run_history(store, run, None if as_json else settings)
    if as_json:
        print_json(
            [{**entry, "clips": found.clips} for entry in found.entries]
            if plans
            else [{key: entry[key] for key in BRIEF_KEYS} for entry in found.entries]
        )
        return
    _render_history(found, plans)
    if found.cost_per_gain is not None:
        from aicodec.cli.cost import render_cost_per_gain

        render_cost_per_gain(found.cost_per_gain)


def _render_history(found: RunHistory, plans: bool) -> None:
    """The run's clips, then a table of its iterations, and one of their plans where asked."""
    # wrapped to the terminal like the tables (a path longer than a line is folded)
    out.print(f"training clips: {shown(clip_list(found.clips['training']))}", overflow="fold")
    holdout = clip_list(found.clips["holdout"]) or "none"
    out.print(f"holdout clips: {shown(holdout)}", overflow="fold")
    table = _table(
        "evolve history (codec: the candidate made; BD-rate: mean vs x264 on the training "
        "clips, %)",
        COLUMNS,
        "reason",
    )
    for entry in found.entries:
        table.add_row(*_history_cells(entry))
    out.print(table)
    if plans:
        table = _table(
            "plans (predicted: BD-rate vs the parent, %; seconds: the iteration's time)",
            PLAN_COLUMNS,
            "hypothesis",
        )
        for entry in found.entries:
            table.add_row(*_plan_cells(entry))
        out.print(table)


def _table(title: str, columns: tuple[tuple[str, JustifyMethod], ...], text: str) -> Table:
    """A light table of short columns, then ``text``, which takes the rest of the width and
    wraps; every column is at least as wide as its header's longest word, so a narrow
    terminal wraps a header between words, never inside one."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    text_column: tuple[str, JustifyMethod] = (text, "left")
    for header, justify in (*columns, text_column):
        longest = max(len(word) for word in header.split())
        table.add_column(header, justify=justify, min_width=longest, overflow="fold")
    table.columns[-1].ratio = 1
    return table


def _history_cells(entry: dict[str, Any]) -> list[str]:
    """One iteration's cells in the history table."""
    failure = f" ({entry['failure_kind']})" if entry["failure_kind"] else ""
    status = "adopted" if entry["adopted"] else entry["status"] + failure
    return [
        str(entry["iteration"]),
        str(entry["parent"] or "-"),
        str(entry["candidate"] or "-"),
        shown(entry["origin"] or "-"),
        shown(status),
        fmt(entry["bd_rate"]),
        fmt(entry["bd_rate_vs_parent"]),
        shown(entry["reason"] or ""),
    ]


def _plan_cells(entry: dict[str, Any]) -> list[str]:
    """One iteration's cells in the plans table."""
    return [
        str(entry["iteration"]),
        shown(entry["planner"] or "-"),
        fmt(entry["predicted_bd_rate"]),
        fmt(entry["confidence"]),
        f"{sum(entry['stage_seconds'].values()):.1f}",
        shown(entry["hypothesis"] or ""),
    ]


def _hits(hits: int, total: int, share: float | None) -> str:
    """``hits/total`` with the share in percent where there is one."""
    return f"{hits}/{total}" + ("" if share is None else f" ({100 * share:.0f} %)")


def _history_calibration(db: str | None, run: int | None, all_runs: bool, as_json: bool) -> None:
    """``history --calibration``: a table per planner, or the figures as JSON."""
    if all_runs and run is not None:
        raise ConfigError("--all-runs pools every run; give it or --run, not both")
    from aicodec.evolution.calibration import planner_calibration

    with opened_store(make_settings(db=db)) as store:
        result = planner_calibration(store, run, all_runs=all_runs)
    if as_json:
        print_json(result.to_dict())
        return
    runs = ", ".join(
        f"{pooled.run_id} ({pooled.pairs} pairs, threshold {pooled.threshold:g} %)"
        for pooled in result.runs
    )
    out.print(f"planner calibration over evolve run{'s' if len(result.runs) > 1 else ''} {runs}")
    for planner in result.planners:
        table = Table(title=f"planner: {shown(planner.planner)}", show_header=False)
        table.add_column("figure")
        table.add_column("value", justify="right")
        for name, value in _calibration_rows(planner):
            table.add_row(name, value)
        out.print(table)
    out.print(
        "BD-rate vs the parent on the training clips, %; signed error = predicted - measured; "
        "beating the threshold = below -threshold."
    )


def _calibration_rows(planner: PlannerCalibration) -> list[tuple[str, str]]:
    """One planner's calibration figures as (name, value) rows."""
    outcomes = planner.outcomes
    return [
        ("pairs (predicted and measured)", str(planner.pairs)),
        ("mean absolute error (points)", fmt(planner.mean_absolute_error)),
        ("mean signed error (points)", fmt(planner.mean_signed_error)),
        (
            "correlation (Pearson)",
            "n/a" if planner.correlation is None else fmt(planner.correlation, 3),
        ),
        (
            "predicted to beat the threshold, did",
            _hits(outcomes.came_true, outcomes.predicted_to_beat, outcomes.came_true_share),
        ),
        (
            "predicted not to, beat it anyway",
            _hits(outcomes.beat_anyway, outcomes.predicted_not_to_beat, outcomes.beat_anyway_share),
        ),
    ]
