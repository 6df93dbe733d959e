"""The report's charts, drawn by matplotlib: RD curves, BD-rate over iterations, planner
calibration and bar charts, each as SVG text (to inline in a page) or as an SVG/PNG file."""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
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


def _svg_text(figure: Figure) -> str:
    """The figure as SVG markup to inline in a page (no XML prolog or DOCTYPE)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
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
    if axes.lines:
        axes.legend(fontsize=7, loc="lower right", frameon=False)


def rd_chart_svg(curves: Sequence[Curve], metric_label: str, title: str) -> str:
    """RD curves (quality against log rate) as inline SVG markup."""
    with _figure() as figure:
        _draw_rd(figure.add_subplot(), curves, metric_label, title)
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
    """Write one RD chart per clip (title to curves) side by side, as SVG or PNG by the
    file's suffix; ReportError for another suffix or a file that cannot be written."""
    kind = plot_format(path)
    count = max(len(charts), 1)
    with _figure(CHART_WIDTH_IN * count, CHART_HEIGHT_IN + 0.4) as figure:
        for axes, (title, curves) in zip(
            figure.subplots(1, count, squeeze=False)[0], charts.items(), strict=False
        ):
            _draw_rd(axes, curves, metric_label, title)
        try:
            figure.savefig(path, format=kind, dpi=150, metadata=_file_metadata(kind))
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
        axes.legend(fontsize=7, loc="upper right", frameon=False)
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
    with _figure(CHART_WIDTH_IN * 0.75, CHART_HEIGHT_IN) as figure:
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
        axes.legend(fontsize=7, loc="upper left", frameon=False)
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
