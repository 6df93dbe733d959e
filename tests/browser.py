"""A real headless Chromium (Debian's, at /usr/bin/chromium) driven by Playwright, for tests
that look at pages as a person would: console errors, rendered charts, links, screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium executable: AICODEC_CHROMIUM, else chromium on the PATH."""
    return os.environ.get("AICODEC_CHROMIUM") or shutil.which("chromium")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if chromium_path() is None:
        return (
            "no browser: chromium is not installed (apt-get install chromium; .ci/run "
            "installs it when run as root), so the pages were not checked in a browser"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no browser driver: playwright is not installed (pip install -e '.[dev]')"
    return None


def screenshot_dir(default: Path) -> Path:
    """Where screenshots go: AICODEC_SCREENSHOT_DIR when set (kept), else ``default``."""
    folder = Path(os.environ.get("AICODEC_SCREENSHOT_DIR") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class PageLog:
    """What a page reported: console errors, uncaught exceptions, failed requests."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"exception: {error}"))
        page.on(
            "requestfailed",
            lambda request: self.errors.append(
                f"request failed: {request.url} ({request.failure})"
            ),
        )


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[tuple[Any, PageLog]]:
    """A fresh page in headless Chromium, with the log of what went wrong on it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            log = PageLog()
            log.attach(page)
            yield page, log
        finally:
            browser.close()


CHART_SIZES_JS = """() => Array.from(document.querySelectorAll("figure.chart svg")).map(svg => {
  const box = svg.getBoundingClientRect();
  return {width: box.width, height: box.height,
          marks: svg.querySelectorAll("path, use, rect, text").length};
})"""


def chart_sizes(page: Any) -> list[dict[str, float]]:
    """Each chart's rendered size (CSS px) and how many drawn elements it holds."""
    return list(page.evaluate(CHART_SIZES_JS))
