"""The command reference, ``docs/commands.md``, rendered from the CLI's own ``--help``.

Every registered command's help page is produced by the real command line (the Typer app,
its Rich help formatter) at 80 columns without colour, the way a reader on a plain
terminal sees it, and written as Markdown. ``make docs`` writes the file;
``tests/test_cli_help.py`` fails when the checked-in file and the CLI differ.

    python -m aicodec.cli_reference [FILE]       # write FILE (default docs/commands.md)
    python -m aicodec.cli_reference --check FILE # exit 1 when FILE is out of date
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from typer import rich_utils
from typer.testing import CliRunner

from aicodec.cli import app

COLUMNS = 80
PROGRAM = "aicodec"
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "docs" / "commands.md"
# A plain terminal of 80 columns; the variables that would force colour or another width
# are unset for the help's run.
HELP_ENV: dict[str, str | None] = {
    "COLUMNS": str(COLUMNS),
    "LINES": "200",
    "TERM": "dumb",
    "NO_COLOR": "1",
    "FORCE_COLOR": None,
    "PY_COLORS": None,
    "TERMINAL_WIDTH": None,
    "GITHUB_ACTIONS": None,
}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def command_names() -> list[str]:
    """The registered commands, in the order the top-level help lists them."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return [name for name, command in group.commands.items() if not command.hidden]


@contextmanager
def _plain_terminal() -> Iterator[None]:
    """Typer reads its console's width and colour forcing from the environment once, at
    import; fix them to a plain 80-column terminal for as long as the help is rendered."""
    saved = rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM
    rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM = COLUMNS, False, None
    try:
        yield
    finally:
        rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM = saved


def help_page(command: str | None = None) -> str:
    """``aicodec [COMMAND] --help`` as a reader sees it at 80 columns: trailing blanks and
    the blank lines around the page removed. A help that does not exit 0 is an error."""
    args = ["--help"] if command is None else [command, "--help"]
    with _plain_terminal():
        result = CliRunner().invoke(app, args, env=HELP_ENV, prog_name=PROGRAM)
    shown = " ".join([PROGRAM, *args])
    if result.exit_code != 0:
        raise RuntimeError(f"{shown} exited {result.exit_code}: {result.output}")
    lines = [line.rstrip() for line in ANSI.sub("", result.output).splitlines()]
    return "\n".join(lines).strip("\n")


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading of ``title`` (lower case, spaces as dashes)."""
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def render() -> str:
    """The whole reference as Markdown: an index, then each help page in a text block."""
    titles = [PROGRAM] + [f"{PROGRAM} {name}" for name in command_names()]
    pages = [help_page()] + [help_page(name) for name in command_names()]
    parts = [
        "# Command reference",
        "",
        "Every command's `--help`, as printed at 80 columns. Generated from the command line",
        "itself by `make docs` (`python -m aicodec.cli_reference`); do not edit it by hand:",
        "`tests/test_cli_help.py` fails when this file and the CLI's help differ.",
        "",
        *[f"- [`{title}`](#{_anchor(title)})" for title in titles],
    ]
    for title, page in zip(titles, pages, strict=True):
        parts += ["", f"## `{title}`", "", "```text", page, "```"]
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    """Write the reference, or with ``--check`` say whether the file is up to date."""
    check = "--check" in argv
    paths = [arg for arg in argv if arg != "--check"]
    path = Path(paths[0]) if paths else DEFAULT_PATH
    text = render()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} differs from the CLI's help: run `make docs`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
