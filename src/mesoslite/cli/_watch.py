"""`--watch` for the list commands: draw the list again every `--interval` until Ctrl-C.

On a terminal the screen is cleared before each drawing; on a pipe the drawings follow each
other, separated by a blank line, so that a log keeps them all. A failed drawing (the master
failing over, say) prints its error on stderr and the watch goes on, as `kubectl get -w`
does. Ctrl-C ends the watch with exit 0. The hidden `--watch-count N` stops after N
drawings (tests, scripts).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_INTERVAL_S = 2.0
MIN_INTERVAL_S = 0.1


def _options() -> list[click.Option]:
    return [
        click.Option(["-w", "--watch"], is_flag=True, help="draw the list again until Ctrl-C"),
        click.Option(
            ["--interval"], type=click.FloatRange(min=MIN_INTERVAL_S), default=None,
            metavar="SECONDS",
            help=f"with --watch, seconds between drawings [default: {DEFAULT_INTERVAL_S:g}]",
        ),
        click.Option(["--watch-count"], type=click.IntRange(min=1), default=None, hidden=True),
    ]


def _wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def command(
        *args: Any, watch: bool, interval: float | None, watch_count: int | None, **kwargs: Any
    ) -> Any:
        if not watch:
            if interval is not None or watch_count is not None:
                raise click.UsageError("--interval and --watch-count need --watch")
            return fn(*args, **kwargs)
        every = DEFAULT_INTERVAL_S if interval is None else interval
        watch_loop(lambda: fn(*args, **kwargs), every, watch_count)
        return None

    return command


def watchable(fn: F) -> F:
    """Give a list command `--watch`, `--interval` and the hidden `--watch-count`.

    Put it right under `@group.command(...)`; the command's body draws the list once.
    """
    command = _wrap(fn)
    params = command.__dict__.setdefault("__click_params__", [])
    # click reverses the decorators' list: these come out in the order `_options` gives.
    params.extend(reversed(_options()))
    return command  # type: ignore[return-value]


def add_watch(command: click.Command) -> None:
    """`watchable` for a command already built (one whose module another change owns)."""
    assert command.callback is not None, command.name
    command.params.extend(_options())
    command.callback = _wrap(command.callback)


def watch_loop(
    draw: Callable[[], object],
    interval_s: float,
    count: int | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Call `draw` every `interval_s` until Ctrl-C or `count` drawings; returns the drawings."""
    from mesoslite.errors import MesosliteError

    terminal = sys.stdout.isatty()
    drawn = 0
    try:
        while count is None or drawn < count:
            if terminal:
                click.clear()
            elif drawn:
                click.echo()
            try:
                draw()
            except MesosliteError as e:
                click.echo(f"mesoslite: {e.message}", err=True)
            drawn += 1
            sys.stdout.flush()
            if count is None or drawn < count:
                sleep(interval_s)
    except KeyboardInterrupt:
        pass
    return drawn
