"""The report of an evolve run: its size and the time to build it, and screenshots of it and
of the served pages in headless Chromium.

Run as ``python benchmarks/bench_report.py --db STORE [--run ID] [--shots DIR] [--json]``
(``make bench`` runs it on ``benchmarks/.bench-evolve.db`` when that store exists). For the
figure the issue asks for, make a 20-iteration run first:

    aicodec evolve --iterations 20 --db benchmarks/.bench-evolve.db --git-repo /tmp/codecs

- size: the bytes of the HTML file ``aicodec report`` writes, against the 2 MB budget;
- build time: ``write_report`` (store read to file written), best and worst of 3 builds,
  and whether the builds were byte-identical;
- with ``--shots DIR``: full-page and per-section screenshots of the report file, and the
  served index, run and candidate pages (``aicodec serve`` on a free port), with any console
  error, uncaught exception or failed request the pages logged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from aicodec.report import write_report
from aicodec.settings import Settings
from aicodec.store import Store

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = ROOT / "benchmarks" / ".bench-evolve.db"
SECTIONS = ("iterations-chart", "lineage", "calibration", "costs", "iterations")
ROUNDS = 3


def build_figures(db: Path, run: int | None) -> dict[str, Any]:
    """Size (bytes) and build time (seconds) of the run's report over ``ROUNDS`` builds."""
    store = Store(str(db), read_only=True)
    seconds, digests = [], set()
    try:
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(ROUNDS):
                written = write_report(store, Settings(), run, Path(folder) / "report.html")
                seconds.append(written.seconds)
                digests.add(hashlib.sha256(written.path.read_bytes()).hexdigest())
    finally:
        store.close()
    return {
        "run": written.run_id,
        "bytes": written.bytes,
        "budget_bytes": 2_000_000,
        "build_seconds_best": min(seconds),
        "build_seconds_worst": max(seconds),
        "identical_builds": len(digests) == 1,
    }


def take_shots(db: Path, run: int, shots: Path) -> list[str]:
    """Screenshots of the report and the served pages; what the pages logged as errors."""
    sys.path.insert(0, str(ROOT))
    from tests.browser import chromium_page

    shots.mkdir(parents=True, exist_ok=True)
    report = shots / "report.html"
    store = Store(str(db), read_only=True)
    try:
        write_report(store, Settings(), run, report)
    finally:
        store.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "aicodec", "serve", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        found = re.search(r"(http://\S+/)", server.stdout.readline())  # type: ignore[union-attr]
        assert found, "aicodec serve did not start"
        url = found[1]
        with chromium_page() as (page, log):
            page.goto(report.as_uri())
            page.screenshot(path=shots / "report-full.png", full_page=True)
            page.screenshot(path=shots / "report-top.png")
            for section in SECTIONS:
                page.evaluate(f"document.getElementById('{section}').scrollIntoView()")
                page.screenshot(path=shots / f"report-{section}.png")
            page.goto(url)
            page.screenshot(path=shots / "serve-index.png")
            page.click(f'a[href="/runs/{run}"]')
            page.screenshot(path=shots / "serve-run.png")
            candidate = page.locator("#lineage ~ .lineage a").last.get_attribute("href")
            page.goto(url + (candidate or "/").lstrip("/"))
            page.screenshot(path=shots / "serve-candidate.png")
            return list(log.errors)
    finally:
        server.terminate()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="the store of the run")
    parser.add_argument("--run", type=int, default=None, help="the run (default: the last)")
    parser.add_argument("--shots", type=Path, default=None, help="folder for screenshots")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not args.db.is_file():
        print(
            f"bench_report: no store at {args.db}; make one with aicodec evolve --iterations "
            f"20 --db {args.db}, then run this again (skipped)",
            file=sys.stderr,
        )
        return 0
    figures = build_figures(args.db, args.run)
    if args.shots is not None:
        figures["shots"] = str(args.shots)
        figures["page_errors"] = take_shots(args.db, figures["run"], args.shots)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"report of evolve run {figures['run']} in {args.db}")
    print(f"  size: {figures['bytes']:,} bytes ({figures['bytes'] / 1e6:.2f} MB; budget 2 MB)")
    same = "byte-identical" if figures["identical_builds"] else "DIFFERENT"
    print(
        f"  build time: {figures['build_seconds_best']:.2f} s best, "
        f"{figures['build_seconds_worst']:.2f} s worst of {ROUNDS} ({same} builds)"
    )
    if args.shots is not None:
        print(f"  screenshots in {args.shots}; page errors: {figures['page_errors'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
