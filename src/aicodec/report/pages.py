"""HTML pages of the store: a run's report (one self-contained file, or a live page), the list
of runs, one candidate, and the page for what is not there. Jinja2 lays them out; the charts
are matplotlib's SVG, inlined, so a page needs nothing from the network."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from aicodec.errors import ReportError
from aicodec.report.charts import (
    BarChart,
    CalibrationPoint,
    Curve,
    IterationPoint,
    bar_chart_svg,
    calibration_chart_svg,
    iterations_chart_svg,
    pareto_chart_svg,
    rd_chart_svg,
)
from aicodec.report.data import (
    CandidatePage,
    ClipView,
    RunView,
    run_view,
    source_edits,
)
from aicodec.safe_text import printable
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.queries.runs import RunListing, may_be_best

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["j2", "html"]),
    trim_blocks=False,
    keep_trailing_newline=True,
)
RD_METRICS = {"psnr": ("psnr_y", "PSNR-Y (dB)"), "ssim": ("ssim_y", "SSIM-Y")}


@dataclass(frozen=True)
class WrittenReport:
    """A report file written: where, its size (bytes) and the time to build it (seconds)."""

    run_id: int
    path: Path
    bytes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "run": self.run_id,
            "path": str(self.path),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


def clip_curves(clip: ClipView, key: str) -> list[Curve]:
    """A clip's ladder and codec curves on one quality figure (``psnr_y``, ``ssim_y``...)."""
    curves = [
        Curve(name, [p["kbps"] for p in points], [p[key] for p in points])
        for name, points in clip.ladder.items()
    ]
    for codec in clip.codecs:
        shown = [(p.kbps, getattr(p, key)) for p in codec.points]
        drawn = [(kbps, value) for kbps, value in shown if kbps is not None and value is not None]
        curves.append(Curve(codec.label, [k for k, _ in drawn], [v for _, v in drawn], codec.role))
    return curves


def run_charts(view: RunView) -> dict[str, str]:
    """Every chart of a run's report, as inline SVG, by name."""
    charts: dict[str, str] = {}
    for index, clip in enumerate(view.clips):
        if clip.clip_id is None:
            continue
        for name, (key, label) in RD_METRICS.items():
            charts[f"clip-{index}-{name}"] = rd_chart_svg(
                clip_curves(clip, key), label, f"{clip.name} ({clip.role}): {label}"
            )
    if view.times:
        charts["time"] = pareto_chart_svg(
            view.times, f"BD-rate vs {view.anchor} against encode time, training clips"
        )
    points = [
        IterationPoint(
            e["iteration"],
            e["bd_rate"] if e["status"] == "scored" else None,
            e["outcome"],
            e["tag"],
            eligible=may_be_best(e),
        )
        for e in view.iterations
        if e["outcome"] != "running"
    ]
    charts["iterations"] = iterations_chart_svg(
        points, view.summary.start_bd_rate_vs_x264, "mean BD-rate vs x264, training clips"
    )
    if view.calibration is not None:
        charts["calibration"] = calibration_chart_svg(
            [CalibrationPoint(*p) for p in view.predictions], view.config.threshold
        )
    if view.summary.failures:
        charts["failures"] = bar_chart_svg(
            BarChart("failures by kind", "iterations", dict(view.summary.failures))
        )
    seconds = {stage.stage: stage.seconds for stage in view.stages if stage.seconds > 0}
    if seconds:
        charts["stages"] = bar_chart_svg(BarChart("time per stage", "seconds", seconds))
    return charts


def page_text(text: str) -> str:
    """Text for a page: every control character escaped as ``printable`` does, except the
    newlines and tabs that lay out code in a ``<pre>`` (HTML escaping is left to Jinja)."""
    return "\t".join(printable(part, keep_newlines=True) for part in text.split("\t"))


def _code_data(view: RunView) -> str:
    """Each candidate's code for the report's script: the lines of a codec whose parent is
    not in the run, else edits of its parent's lines (JSON safe inside a script element;
    control characters escaped, as the script puts the lines into the page as they are)."""
    sources = {candidate.id: page_text(candidate.source) for candidate in view.candidates}
    data: dict[int, Any] = {}
    for candidate in view.candidates:
        parent = candidate.parent_id
        if candidate.parent_in_run and parent is not None and parent != candidate.id:
            data[candidate.id] = {
                "parent": parent,
                "edits": source_edits(sources[parent], sources[candidate.id]),
            }
        else:
            data[candidate.id] = {"lines": sources[candidate.id].splitlines()}
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render(template: str, **context: Any) -> str:
    """A page; whatever text of a candidate or a model it quotes shows its control
    characters escaped (the templates' own text has none)."""
    return page_text(_ENVIRONMENT.get_template(template).render(**context))


def render_report(view: RunView) -> str:
    """A run's report as one self-contained HTML page (no link leaves the file)."""
    return _render(
        "run.html.j2",
        title=f"aicodec evolve run {view.run_id}",
        view=view,
        charts=run_charts(view),
        standalone=True,
        code_data=_code_data(view),
        refresh=None,
        nav=[(f"aicodec · evolve run {view.run_id}", "#")],
        report_href=None,
        candidate_href=lambda candidate: f"#candidate-{candidate}",
    )


def render_run_page(view: RunView, refresh: int | None) -> str:
    """A run's live page for ``serve``: reloads itself every ``refresh`` seconds while the
    run goes on, and links to each candidate's page."""
    return _render(
        "run.html.j2",
        title=f"run {view.run_id} · aicodec",
        view=view,
        charts=run_charts(view),
        standalone=False,
        code_data="",
        refresh=refresh if view.live else None,
        nav=_nav(),
        report_href=f"/runs/{view.run_id}/report.html",
        candidate_href=_candidate_href,
    )


def render_index(runs: list[RunListing], store: str, refresh: int | None) -> str:
    """The list of the store's runs for ``serve``."""
    live = any(run.status == "running" for run in runs)
    return _render(
        "index.html.j2",
        title="aicodec runs",
        runs=runs,
        store=store,
        refresh=refresh if live else None,
        nav=_nav(),
    )


def render_candidate(page: CandidatePage) -> str:
    """One candidate's page for ``serve``."""
    return _render(
        "candidate.html.j2",
        title=f"candidate {page.id} · aicodec",
        page=page,
        refresh=None,
        nav=_nav(),
    )


def render_not_found(message: str) -> str:
    """The page for a run, candidate or address that is not there."""
    return _render(
        "not_found.html.j2", title="not found · aicodec", message=message, refresh=None, nav=_nav()
    )


def _nav() -> list[tuple[str, str]]:
    return [("aicodec", "/"), ("runs", "/")]


def _candidate_href(candidate: int) -> str:
    return f"/candidates/{candidate}"


def write_report(store: Store, settings: Settings, run_id: int | None, path: Path) -> WrittenReport:
    """Build a run's report (default: the newest run) and write it to ``path``."""
    started = time.perf_counter()
    if not path.parent.is_dir():
        raise ReportError(f"cannot write the report {path}: folder {path.parent} does not exist")
    view = run_view(store, settings, run_id)
    html = render_report(view)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report {path}: {exc.strerror or exc}") from exc
    return WrittenReport(
        view.run_id, path, len(html.encode("utf-8")), time.perf_counter() - started
    )
