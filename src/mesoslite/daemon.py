"""What both daemons' `main()` do around their `serve(config)`: load the layered config,
print it if asked, set up logging, run one event loop, and turn errors into exit codes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import click

from mesoslite.config import describe, load_config
from mesoslite.errors import ConfigError, MesosliteError

C = TypeVar("C")


def run_daemon(
    cls: type[C],
    daemon: str,
    serve: Callable[[C], Coroutine[Any, Any, None]],
    *,
    flags: Mapping[str, Any],
    config_path: str | None,
    print_config: bool,
    exit_codes: Mapping[type[MesosliteError], int] | None = None,
) -> None:
    """Run `serve(config)` for `mesoslite-<daemon>`.

    Exits 2 on a bad configuration or a `MesosliteError` from `serve`, unless `exit_codes`
    names the error's class (checked in order, first match wins).
    """
    prog = f"mesoslite-{daemon}"
    try:
        config, sources = load_config(cls, daemon, flags=flags, config_path=config_path)
    except ConfigError as e:
        click.echo(f"{prog}: {e}", err=True)
        sys.exit(2)
    if print_config:
        click.echo(describe(config, sources))
        return
    from mesoslite.logging import setup_logging

    setup_logging(getattr(config, "log_level"), getattr(config, "log_format"))  # noqa: B009
    try:
        asyncio.run(serve(config))
    except MesosliteError as e:
        click.echo(f"{prog}: {e}", err=True)
        code = next((c for t, c in (exit_codes or {}).items() if isinstance(e, t)), 2)
        sys.exit(code)
