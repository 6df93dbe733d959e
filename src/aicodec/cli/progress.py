"""Progress on stderr for the long commands, one helper for all of them.

On a terminal: Rich's transient status line (``progress_line``) or a bar (``progress_bar``),
redrawn in place. Anywhere else (a CI log, ``2> log``), where Rich draws nothing until the
end: a plain line such as ``aicodec: 0:00:42 scoring hybrid.py on builtin:default: quality
40: encoding``, at most every ``progress_interval_s`` seconds, only when there is something
new, and none before that long has passed since the start, so a command that fails at once
still writes exactly one line, its error (0: no such lines).

    with progress_line(settings, "scoring x.py on builtin:default") as update:
        update("quality 40: encoding")

    with progress_bar(settings, "suite", total=12, unit=" codecs") as bar:
        bar("x.py on builtin:bikes", completed=3)
        bar.print("x.py: -4.2 %")  # a line kept above the bar
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TimeElapsedColumn
from rich.text import Text

from aicodec.cli.common import err, shown
from aicodec.safe_text import printable

if TYPE_CHECKING:
    from aicodec.settings import Settings

BAR_WIDTH = 10
MIN_DESCRIPTION = 12  # the description's least width, whatever the console's


def redrawn(console: Console) -> bool:
    """Whether Rich redraws a live display on this console (a terminal, not a dumb one)."""
    return console.is_terminal and not console.is_dumb_terminal


def elapsed_text(seconds: float) -> str:
    """Elapsed time as H:MM:SS, as Rich's bar shows it."""
    whole = int(max(seconds, 0.0))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class PlainLines:
    """The plain progress lines of one command on a console that is not a terminal: the
    latest text is written by a watcher thread once ``interval_s`` has passed since the
    start and since the last line, when it differs from the last line's (see the module)."""

    def __init__(
        self,
        console: Console,
        title: str,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console, self.title, self.interval_s, self.clock = console, title, interval_s, clock
        self.started = clock()
        self._text = ""  # the latest; at first the title alone
        self._written: str | None = None  # the last line's
        self._written_at: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watcher: threading.Thread | None = None

    def update(self, text: str) -> None:
        """What the command does now (written when due)."""
        with self._lock:
            self._text = printable(text)

    def start(self) -> None:
        """Start the watcher (none with an interval of 0)."""
        if self.interval_s > 0:
            self._watcher = threading.Thread(
                target=self._watch, name="aicodec-progress", daemon=True
            )
            self._watcher.start()

    def stop(self) -> None:
        """Stop the watcher; nothing is written after this returns."""
        self._done.set()
        if self._watcher is not None:
            self._watcher.join()

    def _watch(self) -> None:
        tick = min(self.interval_s / 4, 1.0)
        while not self._done.wait(tick):
            self.write_if_due()

    def write_if_due(self) -> bool:
        """Write the latest text if it is new and the interval has passed; whether it did."""
        now = self.clock()
        with self._lock:
            text, last = self._text, self._written_at
            if text == self._written or now - self.started < self.interval_s:
                return False
            if last is not None and now - last < self.interval_s:
                return False
            self._written, self._written_at = text, now
        doing = f"{self.title}: {text}" if text else self.title
        line = f"aicodec: {elapsed_text(now - self.started)} {doing}"
        self.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        return True


@contextmanager
def _plain(console: Console, title: str, settings: Settings) -> Iterator[PlainLines]:
    lines = PlainLines(console, printable(title), settings.progress_interval_s)
    lines.start()
    try:
        yield lines
    finally:
        lines.stop()


@contextmanager
def progress_line(
    settings: Settings, title: str, prefix: str = "", console: Console | None = None
) -> Iterator[Callable[[str], None]]:
    """A progress callback for a long command: on a terminal a transient status line showing
    ``title``, then each text after ``prefix``; elsewhere plain ``title: text`` lines."""
    console = console or err
    if redrawn(console):
        with console.status(shown(title), spinner="dots") as line:
            yield lambda text: line.update(shown(f"{prefix}{text}"))
        return
    with _plain(console, title, settings) as lines:
        yield lines.update


class _Fitted(ProgressColumn):
    """The bar's description or figures, cut to the room the console leaves them."""

    def __init__(self, room: Callable[[Task], int], field: str | None = None) -> None:
        super().__init__()
        self.room, self.field = room, field

    def render(self, task: Task) -> Text:
        text = task.description if self.field is None else str(task.fields.get(self.field, ""))
        room = self.room(task)
        if room < 4:  # less than a word and its ellipsis: nothing
            return Text("")
        line = Text(text, no_wrap=True, overflow="ellipsis")
        line.truncate(room, overflow="ellipsis")
        return line


class Bar:
    """A progress bar with a description, ``completed`` of ``total`` and figures; see
    ``progress_bar``. Call it with what the command does now."""

    def __init__(
        self,
        settings: Settings,
        title: str,
        *,
        total: float | None,
        unit: str,
        count: bool,
        transient: bool,
        console: Console | None = None,
    ) -> None:
        self.console = console or err
        self.title, self.unit, self.count = title, unit, count
        self.total: float | None = total
        self.completed = 0.0
        self.text, self.figures = "", ""
        self.live = redrawn(self.console)
        columns: list[ProgressColumn] = [
            _Fitted(self._description_room),
            BarColumn(bar_width=BAR_WIDTH),
            *([_Fitted(self._count_room, "count")] if count else []),
            TimeElapsedColumn(),
            _Fitted(self._figures_room, "figures"),
        ]
        self.gaps = len(columns) - 1
        self.progress = Progress(*columns, console=self.console, transient=transient)
        self.task = self.progress.add_task("", total=total, count="", figures="")
        self.lines = PlainLines(self.console, printable(title), settings.progress_interval_s)
        self.started = False

    def __call__(
        self,
        text: str,
        *,
        completed: float | None = None,
        total: float | None = None,
        advance: float = 0,
        figures: str | None = None,
    ) -> None:
        """Show ``text``; set ``completed`` or ``advance`` it, and the ``total``; ``figures``
        (a short summary after the bar) are kept until given again."""
        if total is not None:
            self.total = total
        if completed is not None:
            self.completed = completed
        self.completed += advance
        if figures is not None:
            self.figures = figures
        self.text = printable(text)
        shown_count = self.count and self.total is not None
        count = f"{self.completed:g}/{self.total:g}{self.unit}" if shown_count else ""
        if not self.live:
            parts = [self.text, *([f"[{count}]"] if count else [])]
            parts += [f"({self.figures})"] if self.figures else []
            self.lines.update(" ".join(parts))
            return
        self.progress.update(
            self.task,
            description=self.text,
            total=self.total,
            completed=self.completed,
            count=count,
            figures=printable(self.figures),
        )
        if not self.started:  # shown from the first call: a refused start stays one line
            self.progress.start()
            self.started = True

    def print(self, line: str) -> None:
        """A line (Rich markup) kept above the bar, or written as it is off a terminal."""
        self.console.print(line, soft_wrap=True)

    # --- the columns' room: the description first, then the count, then the figures -----

    def _fixed(self, task: Task) -> int:
        count = len(str(task.fields.get("count", "")))
        elapsed = len(elapsed_text(task.elapsed or 0.0))
        return BAR_WIDTH + elapsed + count + self.gaps

    def _description_room(self, task: Task) -> int:
        return max(MIN_DESCRIPTION, self.console.width - self._fixed(task))

    def _count_room(self, task: Task) -> int:
        return len(str(task.fields.get("count", "")))

    def _figures_room(self, task: Task) -> int:
        used = self._fixed(task) + min(len(task.description), self._description_room(task))
        return self.console.width - used

    # --- start and stop -----------------------------------------------------------------

    def start(self) -> None:
        if not self.live:
            self.lines.start()

    def stop(self, failed: bool) -> None:
        """Stop the display; after an error leave no bar above its line."""
        self.lines.stop()
        if self.started:
            if failed:
                self.progress.live.transient = True
            self.progress.stop()


@contextmanager
def progress_bar(
    settings: Settings,
    title: str,
    *,
    total: float | None = None,
    unit: str = "",
    count: bool = True,
    transient: bool = True,
    console: Console | None = None,
) -> Iterator[Bar]:
    """A progress bar for a long command: on a terminal a Rich bar (description first, so a
    narrow terminal still shows it; kept at the end unless ``transient``), elsewhere plain
    ``title: text [completed/total unit] (figures)`` lines (no count without ``count``). It
    appears at the first call."""
    bar = Bar(
        settings,
        title,
        total=total,
        unit=unit,
        count=count,
        transient=transient,
        console=console,
    )
    bar.start()
    failed = False
    try:
        yield bar
    except BaseException:
        failed = True
        raise
    finally:
        bar.stop(failed)
