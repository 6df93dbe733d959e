"""The ``aicodec`` command line: parses options, calls the library, renders with Rich.

Each command lives with its group (``measure``, ``candidates``, ``evolve``, ``history``,
``report``); the options several commands share are declared once in ``options``, and what
every command uses (output, the error guard, settings, the store) is in ``common``. This
module makes the Typer app, registers the commands in the order the help lists them, and is
the console script's entry point (``main``).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Annotated, Any, TextIO, cast

import typer

from aicodec import __version__
from aicodec.cli import candidates, evolve, history, measure, report, suite
from aicodec.cli.common import out

app = typer.Typer(
    help="aicodec: a lab for autonomous video-codec research with honest measurements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("clip", measure.clip_command),
    ("compare", measure.compare_command),
    ("bdrate", measure.bdrate_command),
    ("baselines", measure.baselines_command),
    ("contract", candidates.contract_command),
    ("validate", candidates.validate_command),
    ("run", candidates.run_command),
    ("score", candidates.score_command),
    ("suite", suite.suite_command),
    ("decode", candidates.decode_command),
    ("generate", candidates.generate_command),
    ("logs", candidates.logs_command),
    ("adopt", evolve.adopt_command),
    ("evolve", evolve.evolve_command),
    ("history", history.history_command),
    ("report", report.report_command),
    ("serve", report.serve_command),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)


def _version_callback(value: bool) -> None:
    """``--version``: print the version and stop."""
    if value:
        out.print(f"aicodec {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """aicodec: a lab for autonomous video-codec research with honest measurements."""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop_signal_to_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM and SIGHUP end any command the way Ctrl-C does: sandbox children and their
    process trees are killed, work folders removed, the store left consistent (an evolve
    run resumable). Later ones are ignored, so the clean-up itself runs to its end."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.SIG_IGN)
    raise KeyboardInterrupt


class _ReaderMayLeave:
    """stdout or stderr of the console script, whose reader may leave early (``aicodec ... |
    head``): from the first write to the closed pipe on, the output goes to /dev/null, so the
    command ends as it would have, with its own exit status and no BrokenPipeError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_left()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_left()

    def _reader_left(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # what is still buffered goes there too
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    """Entry point of the ``aicodec`` console script."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, _stop_signal_to_interrupt)
    sys.stdout = cast(TextIO, _ReaderMayLeave(sys.stdout))
    sys.stderr = cast(TextIO, _ReaderMayLeave(sys.stderr))
    app()
