"""The report's charts, drawn by matplotlib: RD curves, BD-rate over iterations, BD-rate
against encode time (with its Pareto front), planner calibration and bar charts, each as SVG
text (to inline in a page) or as an SVG/PNG file.

Every legend sits under its chart, outside the axes, in the body's font size: it never
covers a point or a line, and the figure grows by its height so the plot keeps its size."""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # no screen: charts are files and page text only

from matplotlib import rc_context  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from aicodec.errors import ReportError  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

PLOT_FORMATS = ("svg", "png")
# SVG text stays text (small files, searchable pages); a fixed salt makes the ids, and so
# the bytes of a chart, the same every time it is drawn from the same figures.
_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "aicodec",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_DRAWING = threading.Lock()  # matplotlib's settings are global; pages render in threads
# the ladder's encoders: colours none of the codecs' use, then other dashes once they run out
LADDER_COLOURS = (
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#8c564b",
    "#9467bd",
    "#ff7f0e",
    "#e377c2",
    "#000000",
)
LADDER_DASHES = ("--", "-.", ":")
CODEC_COLOURS = {"start": "#1f77b4", "adopted": "#2ca02c", "best": "#d62728"}
OUTCOME_COLOURS = {
    "adopted": "#2ca02c",
    "not adopted": "#1f77b4",
    "failed": "#d62728",
}
CHART_WIDTH_IN = 6.0
CHART_HEIGHT_IN = 3.6
LEGEND_FONT_SIZE = 9  # the body's size: a legend is read, not guessed
_LEGEND_ROW_IN = 0.2  # one row of legend entries at that size, with its spacing
# the codecs of one role told apart by their marker on the time chart
# a figure is saved whole: a legend wider than it (long labels) is not cut off
_WHOLE: dict[str, Any] = {"bbox_inches": "tight", "pad_inches": 0.04}
CODEC_MARKERS = ("o", "^", "v", "D", "P", "X", "*", "h")
LADDER_MARKERS = ("s", "p", "d")  # one per ladder dash


@dataclass(frozen=True)
class Curve:
    """One RD curve: a label, its rate points (kbit/s) and one quality figure per point."""

    label: str
    kbps: Sequence[float]
    quality: Sequence[float]
    role: str = "ladder"  # ladder, start, adopted or best


@dataclass(frozen=True)
class IterationPoint:
    """One iteration on the BD-rate chart: its BD-rate vs x264 (percent) or None if failed."""

    number: int
    bd_rate: float | None
    outcome: str  # adopted, not adopted, failed
    tag: str | None = None
    eligible: bool = True  # whether it may be the run's best (its PSNR-YUV did not get worse)


@dataclass(frozen=True)
class CalibrationPoint:
    """One prediction beside its measurement: BD-rate vs the parent, percent."""

    planner: str
    predicted: float
    measured: float


@dataclass(frozen=True)
class TimePoint:
    """A codec or an encoder on the time chart: its encode time (the x axis, log scale) and
    its BD-rate against the anchor (percent, the y axis; lower is better)."""

    label: str
    seconds: float  # encode time, seconds; or relative to the anchor
    bd_rate: float  # BD-rate against the anchor, percent
    role: str = "ladder"  # ladder, start, adopted, best or codec


@dataclass
class BarChart:
    """Named values for a horizontal bar chart, with the unit shown on the axis."""

    title: str
    unit: str
    values: dict[str, float] = field(default_factory=dict)


@contextmanager
def _figure(width: float = CHART_WIDTH_IN, height: float = CHART_HEIGHT_IN) -> Iterator[Figure]:
    """A figure drawn under the lab's style, one at a time."""
    with _DRAWING, rc_context(_STYLE):
        yield Figure(figsize=(width, height), layout="constrained")


def _legend_below(axes: Axes, width_in: float) -> float:
    """Put the axes' legend (if it has entries) under its figure or subfigure, outside the
    axes and their labels, in as many columns as its widest label lets ``width_in`` inches
    hold; the height (inches) it takes, which the caller adds to the figure's."""
    handles, labels = axes.get_legend_handles_labels()
    container = axes.get_figure(root=False)
    if not handles or container is None:
        return 0.0
    widest = max(len(label) for label in labels)
    column_in = 0.55 + 0.075 * widest  # the handle and its padding, then the label
    columns = max(1, min(len(labels), int(width_in // column_in), 4))
    container.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=columns,
        fontsize=LEGEND_FONT_SIZE,
        frameon=False,
    )
    return _LEGEND_ROW_IN * math.ceil(len(labels) / columns) + 0.1


def _svg_text(figure: Figure) -> str:
    """The figure as SVG markup to inline in a page (no XML prolog or DOCTYPE)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, **_WHOLE)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def ladder_style(index: int) -> tuple[str, str]:
    """Colour and dash of the ``index``-th ladder encoder on a chart: no two of the first
    len(LADDER_COLOURS) * len(LADDER_DASHES) encoders look alike."""
    colour = LADDER_COLOURS[index % len(LADDER_COLOURS)]
    dash = LADDER_DASHES[(index // len(LADDER_COLOURS)) % len(LADDER_DASHES)]
    return colour, dash


def _draw_rd(axes: Axes, curves: Sequence[Curve], metric_label: str, title: str) -> None:
    """RD curves on a log-rate axis: ladder encoders dashed, codecs solid."""
    ladder_index = 0
    style: dict[str, Any]
    for curve in curves:
        if not curve.kbps:
            continue
        if curve.role == "ladder":
            colour, dash = ladder_style(ladder_index)
            ladder_index += 1
            style = {"linestyle": dash, "marker": "s", "markersize": 3, "linewidth": 1}
        else:
            colour = CODEC_COLOURS.get(curve.role, "#1f77b4")
            style = {"linestyle": "-", "marker": "o", "markersize": 4, "linewidth": 1.6}
        order = sorted(range(len(curve.kbps)), key=lambda i: curve.kbps[i])
        axes.plot(
            [curve.kbps[i] for i in order],
            [curve.quality[i] for i in order],
            color=colour,
            label=curve.label,
            **style,
        )
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("rate (kbit/s, log scale)")
    axes.set_ylabel(metric_label)
    axes.set_title(title, fontsize=10, loc="left")


def rd_chart_svg(curves: Sequence[Curve], metric_label: str, title: str) -> str:
    """RD curves (quality against log rate) as inline SVG markup, the legend underneath."""
    with _figure() as figure:
        axes = figure.add_subplot()
        _draw_rd(axes, curves, metric_label, title)
        figure.set_figheight(CHART_HEIGHT_IN + _legend_below(axes, CHART_WIDTH_IN))
        return _svg_text(figure)


def plot_format(path: Path) -> str:
    """The image format a plot file's suffix asks for (svg or png); ReportError for another
    suffix or a folder that does not exist, so a bad name fails before any work."""
    kind = path.suffix.lower().lstrip(".")
    if kind not in PLOT_FORMATS:
        raise ReportError(f"cannot plot to {path}: the file must end in .svg or .png")
    if not path.parent.is_dir():
        raise ReportError(f"cannot plot to {path}: folder {path.parent} does not exist")
    return kind


def write_rd_plot(
    path: Path, charts: Mapping[str, Sequence[Curve]], metric_label: str = "PSNR-Y (dB)"
) -> None:
    """Write one RD chart per clip (title to curves) side by side, each with its legend
    underneath, as SVG or PNG by the file's suffix; ReportError for another suffix or a
    file that cannot be written."""
    kind = plot_format(path)

    def draw(axes: Axes, title: str) -> None:
        _draw_rd(axes, charts[title], metric_label, title)

    _write_panels(path, kind, list(charts), draw)


def _write_panels(
    path: Path, kind: str, titles: Sequence[str], draw: Callable[[Axes, str], None]
) -> None:
    """Draw one panel per title side by side (``draw`` fills each one's axes), each its own
    subfigure with its legend underneath, and write them to ``path`` as ``kind``."""
    count = max(len(titles), 1)
    with _figure(CHART_WIDTH_IN * count, CHART_HEIGHT_IN + 0.4) as figure:
        legend_in = 0.0
        for panel, title in zip(
            figure.subfigures(1, count, squeeze=False)[0], titles, strict=False
        ):
            axes = panel.add_subplot()
            draw(axes, title)
            legend_in = max(legend_in, _legend_below(axes, CHART_WIDTH_IN))
        figure.set_figheight(CHART_HEIGHT_IN + 0.4 + legend_in)
        try:
            figure.savefig(path, format=kind, dpi=150, metadata=_file_metadata(kind), **_WHOLE)
        except OSError as exc:
            raise ReportError(f"cannot write the plot {path}: {exc.strerror or exc}") from exc


def _file_metadata(kind: str) -> dict[str, str | None]:
    """Metadata that keeps a plot file the same for the same figures (no creation date)."""
    return {"Date": None} if kind == "svg" else {"Software": "aicodec"}


def iterations_chart_svg(
    points: Sequence[IterationPoint], start_bd_rate: float | None, title: str
) -> str:
    """BD-rate vs x264 per iteration, coloured by outcome, with the best-so-far line and the
    adoptions' tags; failed iterations sit on the top edge as crosses."""
    with _figure() as figure:
        axes = figure.add_subplot()
        bottom, top = _bd_rate_range(points, start_bd_rate)
        span = max(top - bottom, 1.0)
        fail_y = top + 0.08 * span
        _scatter_outcomes(axes, points, fail_y)
        steps, best = _best_so_far(points, start_bd_rate)
        if steps:
            axes.step(
                [n for n, _ in steps],
                [v for _, v in steps],
                where="post",
                color="#444444",
                linewidth=1.2,
                label="best so far",
            )
        _tag_points(axes, points)
        axes.set_ylim(bottom - 0.1 * span, fail_y + 0.1 * span)
        axes.set_xlim(-0.5, max([p.number for p in points], default=1) + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("iteration (0: the starting codec)")
        axes.set_ylabel("BD-rate vs x264 (%), lower is better")
        axes.set_title(
            title + ("" if best is None else f"; best {best:+.2f} %"), fontsize=10, loc="left"
        )
        figure.set_figheight(CHART_HEIGHT_IN + _legend_below(axes, CHART_WIDTH_IN))
        return _svg_text(figure)


def _bd_rate_range(
    points: Sequence[IterationPoint], start_bd_rate: float | None
) -> tuple[float, float]:
    """The lowest and highest finite BD-rate (percent) of the points and the start; 0.0
    for both when there is none."""
    measured = [p.bd_rate for p in points if p.bd_rate is not None and math.isfinite(p.bd_rate)]
    if start_bd_rate is not None:
        measured.append(start_bd_rate)
    top = max(measured) if measured else 0.0
    bottom = min(measured) if measured else 0.0
    return bottom, top


def _scatter_outcomes(axes: Axes, points: Sequence[IterationPoint], fail_y: float) -> None:
    """One scatter per outcome in its colour: BD-rates (percent) as dots, failed iterations
    as crosses at height ``fail_y``."""
    for outcome, colour in OUTCOME_COLOURS.items():
        chosen = [p for p in points if p.outcome == outcome]
        if not chosen:
            continue
        if outcome == "failed":
            axes.scatter(
                [p.number for p in chosen],
                [fail_y] * len(chosen),
                marker="x",
                color=colour,
                label="failed (no BD-rate)",
                zorder=3,
            )
        else:
            shown = [(p.number, p.bd_rate) for p in chosen if p.bd_rate is not None]
            axes.scatter(
                [number for number, _ in shown],
                [rate for _, rate in shown],
                s=24,
                color=colour,
                label=outcome,
                zorder=3,
            )


def _tag_points(axes: Axes, points: Sequence[IterationPoint]) -> None:
    """Write each tagged point's tag (an adoption's) beside it."""
    for point in points:
        if point.tag and point.bd_rate is not None:
            axes.annotate(
                point.tag,
                (point.number, point.bd_rate),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=8,
                color="#2ca02c",
            )


def _best_so_far(
    points: Sequence[IterationPoint], start: float | None
) -> tuple[list[tuple[int, float]], float | None]:
    """The running minimum BD-rate (percent) of the start and the eligible points from
    iteration 0 on, and its final value."""
    best = start
    steps: list[tuple[int, float]] = [] if start is None else [(0, start)]
    for point in sorted(points, key=lambda p: p.number):
        if point.eligible and point.bd_rate is not None and math.isfinite(point.bd_rate):
            if best is None or point.bd_rate < best:
                best = point.bd_rate
        if best is not None:
            steps.append((point.number, best))
    return steps, best


def calibration_chart_svg(points: Sequence[CalibrationPoint], threshold: float) -> str:
    """Predicted against measured BD-rate vs the parent (percent), per planner, with the
    line of perfect prediction and the adoption threshold on both axes."""
    width = CHART_WIDTH_IN * 0.75
    with _figure(width, CHART_HEIGHT_IN) as figure:
        axes = figure.add_subplot()
        values = [v for p in points for v in (p.predicted, p.measured)] + [-threshold, 0.0]
        low, high = min(values), max(values)
        pad = max(high - low, 1.0) * 0.08
        low, high = low - pad, high + pad
        axes.plot(
            [low, high], [low, high], color="#999999", linewidth=1, label="prediction = measurement"
        )
        axes.axvline(-threshold, color="#2ca02c", linewidth=0.8, linestyle=":")
        axes.axhline(
            -threshold,
            color="#2ca02c",
            linewidth=0.8,
            linestyle=":",
            label=f"threshold (-{threshold:g} %)",
        )
        for index, planner in enumerate(sorted({p.planner for p in points})):
            chosen = [p for p in points if p.planner == planner]
            axes.scatter(
                [p.predicted for p in chosen],
                [p.measured for p in chosen],
                s=22,
                color=LADDER_COLOURS[index % len(LADDER_COLOURS)] if index else "#1f77b4",
                label=f"planner: {planner}",
                zorder=3,
            )
        axes.set_xlim(low, high)
        axes.set_ylim(low, high)
        axes.set_xlabel("predicted BD-rate vs parent (%)")
        axes.set_ylabel("measured BD-rate vs parent (%)")
        axes.set_title("planner calibration", fontsize=10, loc="left")
        figure.set_figheight(CHART_HEIGHT_IN + _legend_below(axes, width))
        return _svg_text(figure)


def bar_chart_svg(chart: BarChart) -> str:
    """A horizontal bar chart of named values, largest first."""
    items = sorted(chart.values.items(), key=lambda item: item[1])
    height = 1.0 + 0.32 * max(len(items), 1)
    with _figure(CHART_WIDTH_IN * 0.75, height) as figure:
        axes = figure.add_subplot()
        axes.barh([name for name, _ in items], [value for _, value in items], color="#1f77b4")
        for index, (_, value) in enumerate(items):
            axes.annotate(
                f"{value:.4g}",
                (value, index),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        if all(float(value).is_integer() for _, value in items):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel(chart.unit)
        axes.set_title(chart.title, fontsize=10, loc="left")
        axes.grid(axis="y", visible=False)
        return _svg_text(figure)


def _dominates(one: TimePoint, other: TimePoint) -> bool:
    """Whether ``one`` is at least as fast and as good as ``other``, and better in one."""
    return (
        one.seconds <= other.seconds
        and one.bd_rate <= other.bd_rate
        and (one.seconds < other.seconds or one.bd_rate < other.bd_rate)
    )


def pareto_front(points: Sequence[TimePoint]) -> list[TimePoint]:
    """The points no other point dominates (faster or as fast, and a lower or equal BD-rate,
    strictly better in one), by encode time then BD-rate; equal points all stay. Points with
    a time or a BD-rate that is not a finite number are left out."""
    finite = [p for p in points if math.isfinite(p.seconds) and math.isfinite(p.bd_rate)]
    front = [p for p in finite if not any(_dominates(other, p) for other in finite)]
    return sorted(front, key=lambda p: (p.seconds, p.bd_rate))


def _time_styles(points: Sequence[TimePoint]) -> list[tuple[str, str]]:
    """Colour and marker of each point: the ladder's encoders in the RD charts' colours
    (squares), the codecs in their role's colour, each of a role its own marker."""
    styles: list[tuple[str, str]] = []
    ladder_index = 0
    by_role: dict[str, int] = {}
    for point in points:
        if point.role == "ladder":
            colour, dash = ladder_style(ladder_index)
            styles.append((colour, LADDER_MARKERS[LADDER_DASHES.index(dash)]))
            ladder_index += 1
        else:
            seen = by_role.get(point.role, 0)
            by_role[point.role] = seen + 1
            marker = CODEC_MARKERS[seen % len(CODEC_MARKERS)]
            styles.append((CODEC_COLOURS.get(point.role, "#1f77b4"), marker))
    return styles


def _draw_time(axes: Axes, points: Sequence[TimePoint], title: str, x_label: str) -> None:
    """BD-rate against log encode time: one marker per point (named in the legend) and the
    Pareto front as a step line; points that cannot sit on a log axis are left out."""
    shown = [
        p for p in points if math.isfinite(p.bd_rate) and math.isfinite(p.seconds) and p.seconds > 0
    ]
    front = pareto_front(shown)
    right = max((p.seconds for p in shown), default=1.0) * 1.5
    if front:  # on to the right edge: what the slowest point of the front reaches holds on
        axes.step(
            [p.seconds for p in front] + [right],
            [p.bd_rate for p in front] + [front[-1].bd_rate],
            where="post",
            color="#444444",
            linewidth=1.2,
            zorder=2,
            label="Pareto front",
        )
    for point, (colour, marker) in zip(shown, _time_styles(shown), strict=True):
        axes.plot(
            [point.seconds],
            [point.bd_rate],
            linestyle="none",
            marker=marker,
            markersize=7 if point.role != "ladder" else 6,
            color=colour,
            markeredgecolor="#222222" if point in front else colour,
            zorder=3,
            label=point.label,
        )
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    if shown:  # a point on the edge is still seen whole
        axes.set_xlim(min(p.seconds for p in shown) / 1.5, right)
    axes.margins(y=0.12)
    axes.set_xlabel(x_label)
    axes.set_ylabel("BD-rate (%), lower is better")
    axes.set_title(title, fontsize=10, loc="left")


def pareto_chart_svg(
    points: Sequence[TimePoint], title: str, x_label: str = "encode time (s, log scale)"
) -> str:
    """BD-rate against encode time (log scale) as inline SVG markup: each point a marker
    named in the legend underneath, the Pareto front a step line through the points no
    other is both faster than and better than."""
    with _figure() as figure:
        axes = figure.add_subplot()
        _draw_time(axes, points, title, x_label)
        figure.set_figheight(CHART_HEIGHT_IN + _legend_below(axes, CHART_WIDTH_IN))
        return _svg_text(figure)


def write_pareto_plot(
    path: Path,
    charts: Mapping[str, Sequence[TimePoint]],
    x_label: str = "encode time (s, log scale)",
) -> None:
    """Write one time chart per title (title to points) side by side, as SVG or PNG by the
    file's suffix; ReportError for another suffix or a file that cannot be written."""
    kind = plot_format(path)

    def draw(axes: Axes, title: str) -> None:
        _draw_time(axes, charts[title], title, x_label)

    _write_panels(path, kind, list(charts), draw)
