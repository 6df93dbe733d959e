"""``aicodec serve``: the report's pages, live from the store, on 127.0.0.1 only.

Every request reads the store afresh through a read-only connection, so the pages follow an
evolve run as it writes; nothing a request does can change the store. Addresses:
``/`` (the runs), ``/runs/N`` (a run), ``/runs/N/report.html`` (that run as one file),
``/candidates/N`` (a candidate). Anything else is a 404 page."""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aicodec.errors import AicodecError, ReportError, StoreError
from aicodec.report.data import candidate_page, list_runs, run_view
from aicodec.report.pages import (
    render_candidate,
    render_index,
    render_not_found,
    render_report,
    render_run_page,
)
from aicodec.safe_text import printable
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.db import shown_url

HOST = "127.0.0.1"
ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/"), "index"),
    (re.compile(r"/runs/(\d+)/?"), "run"),
    (re.compile(r"/runs/(\d+)/report\.html"), "report"),
    (re.compile(r"/candidates/(\d+)/?"), "candidate"),
]


class PageServer(ThreadingHTTPServer):
    """An HTTP server of the store's pages; one thread per request, none outliving it."""

    daemon_threads = True
    allow_reuse_address = False  # a second server on a port in use must fail, not share it

    def __init__(
        self,
        store: Store,
        settings: Settings,
        port: int,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.log = log
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ReportError(
                    f"port {port} on {HOST} is in use; choose another with --port"
                ) from None
            if exc.errno == errno.EACCES:
                raise ReportError(
                    f"port {port} on {HOST} needs privileges; use one above 1023"
                ) from None
            raise ReportError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None

    @property
    def url(self) -> str:
        """Where the pages are."""
        return f"http://{HOST}:{self.server_address[1]}/"

    def page(self, path: str) -> tuple[HTTPStatus, str]:
        """The status and HTML of the page at ``path``."""
        route, number = _route(path)
        refresh = self.settings.serve_refresh_s
        try:
            if route == "index":
                return HTTPStatus.OK, render_index(
                    list_runs(self.store), shown_url(self.store.url), refresh
                )
            if route == "run":
                return HTTPStatus.OK, render_run_page(
                    run_view(self.store, self.settings, number), refresh
                )
            if route == "report":
                return HTTPStatus.OK, render_report(run_view(self.store, self.settings, number))
            if route == "candidate" and number is not None:
                return HTTPStatus.OK, render_candidate(candidate_page(self.store, number))
        except ReportError as exc:
            return HTTPStatus.NOT_FOUND, render_not_found(str(exc))
        except StoreError as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, render_not_found(f"the store: {exc}")
        except AicodecError as exc:
            return HTTPStatus.INTERNAL_SERVER_ERROR, render_not_found(str(exc))
        return HTTPStatus.NOT_FOUND, render_not_found(
            f"there is no page at {path}; the pages are / (the runs), /runs/N (a run) and "
            "/candidates/N (a candidate)"
        )


def _route(path: str) -> tuple[str | None, int | None]:
    """The route a request path names and its number (run or candidate id), if any."""
    bare = path.split("?", 1)[0].split("#", 1)[0]
    for pattern, name in ROUTES:
        found = pattern.fullmatch(bare)
        if found:
            return name, int(found.group(1)) if found.groups() else None
    return None, None


class _Handler(BaseHTTPRequestHandler):
    """GET and HEAD only: the pages are read-only."""

    server: PageServer
    server_version = "aicodec"

    def _send(
        self, status: HTTPStatus, html: str, *, body: bool = True, allow: str | None = None
    ) -> None:
        data = html.encode("utf-8")
        self.send_response(status)
        if allow:
            self.send_header("Allow", allow)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        status, html = self.server.page(self.path)
        self._send(status, html)

    def do_HEAD(self) -> None:  # noqa: N802
        status, html = self.server.page(self.path)
        self._send(status, html, body=False)

    def _refuse(self) -> None:
        html = render_not_found("these pages are read-only: only GET and HEAD are answered")
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, html, allow="GET, HEAD")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base signature)
        if self.server.log is not None:
            self.server.log(printable(format % args))  # the request line is anyone's text
