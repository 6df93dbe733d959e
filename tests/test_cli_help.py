"""Every command's help, through the real command line at 80 columns, and the command
reference generated from it (docs/commands.md); a reader who leaves a pipe early."""

from __future__ import annotations

import difflib
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from aicodec.cli import app
from aicodec.cli_reference import DEFAULT_PATH, command_names, help_page, render

COMMANDS = command_names()
EXECUTOR_COMMANDS = ("baselines", "run", "score", "evolve")
PRICED_COMMANDS = ("generate", "evolve")


def command(name: str | None) -> Any:
    """The registered command (Typer's own click objects), or the group itself."""
    group: Any = typer.main.get_command(app)
    return group if name is None else group.commands[name]


def words(text: str) -> set[str]:
    """The words of a help page, its box edges left out."""
    return set(text.replace("│", " ").split())


def written(help_text: str) -> list[str]:
    """The words a help string means to show: Rich's escaped brackets as brackets."""
    return help_text.replace("\\[", "[").split()


def test_the_reference_equals_the_cli_help() -> None:
    expected = render()
    current = DEFAULT_PATH.read_text(encoding="utf-8") if DEFAULT_PATH.exists() else ""
    if current != expected:
        diff = "".join(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                "docs/commands.md",
                "the CLI's help now",
                n=1,
            )
        )
        pytest.fail(f"docs/commands.md is out of date: run `make docs`\n{diff[:4000]}")


def test_every_registered_command_is_in_the_reference() -> None:
    assert COMMANDS == list(command(None).commands)
    assert len(COMMANDS) >= 16
    reference = DEFAULT_PATH.read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"## `aicodec {name}`" in reference, name


@pytest.mark.parametrize("name", [None, *COMMANDS], ids=lambda name: name or "aicodec")
def test_help_loses_no_text(name: str | None) -> None:
    page = help_page(name)  # raises unless the help exits 0
    lines = [line.rstrip("│ ").rstrip() for line in page.splitlines()]
    assert all(len(line) <= 80 for line in page.splitlines()), page
    for line in lines:
        assert not line.endswith(" ."), f"a default meant to be shown is missing: {line!r}"
        assert not re.search(r"\(\s", line.lstrip("│ ")), f"a bracketed word was eaten: {line!r}"
        assert "\x1b" not in line
    shown = words(page)
    target = command(name)
    for word in written(target.help or ""):
        assert word in shown, f"{word!r} of the command's help is missing"
    for param in target.params:
        names = param.opts if param.param_type_name == "option" else [param.name]
        for option in names:
            assert option in page, f"{option} is missing from the help"
        for word in written(getattr(param, "help", None) or ""):
            assert word in shown, f"{word!r} of {names[0]}'s help is missing"


@pytest.mark.parametrize("name", EXECUTOR_COMMANDS)
def test_the_ray_extra_is_named(name: str) -> None:
    assert "'aicodec[ray]')" in words(help_page(name))  # pip install 'aicodec[ray]'


@pytest.mark.parametrize("name", PRICED_COMMANDS)
def test_the_price_table_format_is_named(name: str) -> None:
    assert "([models.NAME]" in words(help_page(name))


@pytest.mark.parametrize(
    "line", ["aicodec --help | head -1", "aicodec contract | head -1", "aicodec contract | true"]
)
def test_a_reader_that_leaves_early_is_a_quiet_end(line: str, tmp_path: Path) -> None:
    """The real console script through a real pipe: exit 0, nothing on stderr."""
    script = shlex.join([sys.executable, "-m", "aicodec"])
    command_line = line.replace("aicodec", script, 1)
    result = subprocess.run(
        ["bash", "-c", f'{command_line}; exit "${{PIPESTATUS[0]}}"'],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert "BrokenPipeError" not in result.stdout


def test_a_full_pipe_still_gets_everything(tmp_path: Path) -> None:
    script = shlex.join([sys.executable, "-m", "aicodec"])
    result = subprocess.run(
        ["bash", "-c", f'{script} contract | cat; exit "${{PIPESTATUS[0]}}"'],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("#") and len(result.stdout) > 5000
