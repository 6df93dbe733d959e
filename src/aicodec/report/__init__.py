"""Seeing the lab: a run's report as one HTML file, live pages of the store, RD plots."""

from aicodec.report.charts import Curve, write_rd_plot
from aicodec.report.data import candidate_page, list_runs, run_view
from aicodec.report.pages import WrittenReport, render_report, write_report
from aicodec.report.server import PageServer

__all__ = [
    "Curve",
    "PageServer",
    "WrittenReport",
    "candidate_page",
    "list_runs",
    "render_report",
    "run_view",
    "write_report",
    "write_rd_plot",
]
