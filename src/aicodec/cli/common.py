"""What every command shares: the consoles, JSON and text output, the error guard, the
settings, and the store, executor and status line a command works under."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec

import typer
from rich.console import Console
from rich.markup import escape

from aicodec.errors import AicodecError, ConfigError
from aicodec.safe_text import printable
from aicodec.settings import Settings, load_settings

if TYPE_CHECKING:
    from aicodec.store import Store

# no emoji codes: "builtin:bike: no such clip" is printed as typed, not with a bicycle
out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)

P = ParamSpec("P")


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (non-finite numbers become null)."""
    from aicodec.scoring.metrics import json_safe

    sys.stdout.write(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def shown(text: object, limit: int | None = None) -> str:
    """Text for a Rich line or cell, its control characters escaped, then its markup;
    ``limit`` cuts the escaped text (never a markup escape) to that many characters."""
    visible = printable(str(text))
    return escape(visible if limit is None else visible[:limit])


def warn(text: object) -> None:
    """A yellow warning line on stderr."""
    err.print(f"[yellow]warning:[/yellow] {shown(text)}", soft_wrap=True)


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell: fixed digits, 'inf' or '-'."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """A command whose lab errors become one red line on stderr and a non-zero exit."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except typer.Exit:
            raise
        except AicodecError as exc:
            err.print(f"[red]error:[/red] {shown(str(exc))}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]; everything finished so far is in the store")
            raise typer.Exit(130) from None
        except Exception as exc:  # last line of defence: never a traceback for the user
            if os.environ.get("AICODEC_DEBUG"):
                raise
            err.print(
                f"[red]internal error:[/red] {type(exc).__name__}: {shown(str(exc))} "
                "(set AICODEC_DEBUG=1 to see the traceback)",
                soft_wrap=True,
            )
            raise typer.Exit(70) from None

    return run


def make_settings(**overrides: object) -> Settings:
    """Settings from defaults, environment and CLI options; a bad value is a ConfigError."""
    from pydantic import ValidationError

    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"setting {where}: {first['msg']}") from None


def model_overrides(
    provider: str | None, model: str | None, base_url: str | None
) -> dict[str, Any]:
    """The settings --provider, --model and --base-url give: a server's address implies the
    openai provider, and then --model names the model on that server."""
    overrides: dict[str, Any] = {"provider": provider}
    if base_url:
        overrides.update(openai_base_url=base_url, provider=provider or "openai")
        if model:
            overrides["openai_model"] = model
    elif model:
        overrides["model"] = model
    return overrides


def executor_overrides(
    jobs: int | None, executor: str | None, ray_address: str | None
) -> dict[str, Any]:
    """The settings --jobs, --executor and --ray-address give (where the jobs run)."""
    return {"jobs": jobs, "executor": executor, "ray_address": ray_address}


def names_list(text: str | None) -> list[str] | None:
    """A comma list of names (``x264,vvenc``); None when none is given."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return names or None


def clip_window(
    start: int,
    frames: int | None,
    size: str | None = None,
    fps: str | None = None,
    convert: bool = False,
) -> dict[str, Any]:
    """The clip-window options as ``load_clip``'s keywords."""
    return {"start": start, "count": frames, "size": size, "fps": fps, "convert": convert}


@contextmanager
def opened_store(
    settings: Settings, *, runs_jobs: bool = False, read_only: bool = False
) -> Iterator[Store]:
    """The store the settings name, closed afterwards; with ``runs_jobs`` the executor is
    made ready first; ``read_only`` neither migrates nor writes."""
    from aicodec.store import Store

    with executor_ready(settings, runs_jobs):
        store = Store(settings.db, read_only=read_only)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def executor_ready(settings: Settings, runs_jobs: bool = True) -> Iterator[None]:
    """With ``--executor ray``: connect before any work (an unreachable cluster is one
    line), and afterwards say how many jobs were sent again because a worker died."""
    if not runs_jobs or settings.executor == "local":
        yield
        return
    from aicodec.pools.local import retried_jobs, start_executor

    err.print(f"executor: {shown(start_executor(settings))}", soft_wrap=True)
    try:
        yield
    finally:
        retried = retried_jobs(settings)
        if retried:
            err.print(
                f"[yellow]ray:[/yellow] {retried} job(s) sent again after the worker "
                "running them died",
                soft_wrap=True,
            )
