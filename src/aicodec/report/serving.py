"""``aicodec serve``'s one call: the store's pages on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable

from aicodec.report.data import list_runs
from aicodec.report.server import PageServer
from aicodec.settings import Settings
from aicodec.store import Store


def serve_pages(
    store: Store,
    settings: Settings,
    *,
    log: Callable[[str], None] | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the store's pages on the settings' port until Ctrl-C (KeyboardInterrupt, then
    this returns); ``ready`` gets the pages' address once they are up, ``log`` each request.
    ReportError when the store holds no run yet or the port cannot be had."""
    list_runs(store)  # a store with no run yet is one line, not an empty site
    server = PageServer(store, settings, settings.serve_port, log=log)
    if ready is not None:
        ready(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
