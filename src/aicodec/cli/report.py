"""Seeing the store: ``report`` (one HTML file of a run) and ``serve`` (live pages)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aicodec.cli.common import (
    err,
    guarded,
    make_settings,
    opened_store,
    out,
    print_json,
    shown,
    warn,
)
from aicodec.cli.options import DbOption, JsonOption, RunOption
from aicodec.cli.progress import progress_line

ReportOutputOption = Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")]
PortOption = Annotated[
    int | None,
    typer.Option(
        "--port",
        help="Port on 127.0.0.1 \\[env AICODEC_SERVE_PORT; default 8765; 0: any free port].",
    ),
]
RefreshOption = Annotated[
    int | None,
    typer.Option(
        "--refresh",
        help="Seconds between reloads of a page while its run goes on \\[default 5].",
    ),
]


@guarded
def report_command(
    run: RunOption = None,
    output: ReportOutputOption = Path("report.html"),
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One self-contained HTML report of an evolve run; it works offline, the store is only read.

    RD curves per clip, BD-rate over iterations, lineage, planner calibration, failures, cost,
    time, and every candidate's code and diff."""
    settings = make_settings(db=db)
    with opened_store(settings, read_only=True) as store:
        from aicodec.report import write_report  # after the store opened: bad input is quick

        with progress_line(settings, "building the report"):
            written = write_report(store, settings, run, output)
    limit = settings.report_max_bytes
    if written.bytes > limit:
        warn(f"the report is over {limit / 1e6:g} MB, heavy to mail")
    if as_json:
        print_json(written.to_dict())
        return
    out.print(
        f"report of evolve run {written.run_id}: {shown(str(written.path))} "
        f"({written.bytes / 1e6:.2f} MB, built in {written.seconds:.1f} s)",
        soft_wrap=True,
    )


@guarded
def serve_command(
    port: PortOption = None,
    refresh: RefreshOption = None,
    db: DbOption = None,
) -> None:
    """Serve the store's runs, candidates and reports as live, read-only pages on 127.0.0.1.

    The pages follow evolve while it runs; Ctrl-C stops the server."""
    settings = make_settings(db=db, serve_port=port, serve_refresh_s=refresh)
    with opened_store(settings, read_only=True) as store:
        from aicodec.report.serving import serve_pages
        from aicodec.store.db import shown_url

        def ready(url: str) -> None:
            out.print(
                f"serving {url} (read-only pages of {shown(shown_url(store.url))}); Ctrl-C stops",
                soft_wrap=True,
            )

        serve_pages(
            store, settings, log=lambda line: err.print(shown(line), soft_wrap=True), ready=ready
        )
    out.print("stopped")
