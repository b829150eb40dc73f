"""Layered daemon configuration: defaults, then YAML (`--config`), then env, then flags.

A daemon's options are the fields of one frozen dataclass; each field's metadata (made by
`option`) holds its help, bounds and choices. The click options, the YAML keys and the
`MESOSLITE_<DAEMON>_<NAME>` environment names are all derived from it, so they never drift.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mesoslite.errors import ConfigError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def option(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A config field; `check(value)` returns an error text or None."""
    return dataclasses.field(
        default=default,
        metadata={"help": help, "min": min, "max": max, "choices": choices, "check": check},
    )


def env_name(daemon: str, field: str) -> str:
    return f"MESOSLITE_{daemon.upper()}_{field.upper()}"


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _field_type(f: dataclasses.Field[Any]) -> type:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    for name, py in (("bool", bool), ("int", int), ("float", float)):
        if t == name:
            return py
    return str


def _coerce(f: dataclasses.Field[Any], raw: Any, source: str) -> tuple[Any, str | None]:
    kind = _field_type(f)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                value: Any = raw
            elif str(raw).lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError
        elif kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        elif kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
            if math.isnan(value) or math.isinf(value):
                raise ValueError
        else:
            value = "" if raw is None else str(raw)
    except (TypeError, ValueError):
        return None, f"{source}: must be {kind.__name__}, got {raw!r}"
    meta = f.metadata
    if meta.get("min") is not None and value < meta["min"]:
        return None, f"{source}: must be >= {meta['min']:g}, got {value!r}"
    if meta.get("max") is not None and value > meta["max"]:
        return None, f"{source}: must be <= {meta['max']:g}, got {value!r}"
    if meta.get("choices") and value not in meta["choices"]:
        return None, f"{source}: must be one of {', '.join(meta['choices'])}, got {value!r}"
    if meta.get("check"):
        problem = meta["check"](value)
        if problem:
            return None, f"{source}: {problem}"
    return value, None


def load_config(
    cls: type[T],
    daemon: str,
    *,
    flags: Mapping[str, Any],
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[T, dict[str, str]]:
    """Build `cls` from the layers; returns the config and where each value came from.

    Raises:
        ConfigError: listing every problem at once, each naming its source.
    """
    environ = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    sources = {name: "default" for name in fields}
    problems: list[str] = []

    def put(name: str, raw: Any, source: str) -> None:
        value, problem = _coerce(fields[name], raw, source)
        if problem:
            problems.append(problem)
        else:
            values[name] = value
            sources[name] = source

    if config_path:
        import yaml

        path = Path(config_path)
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read config: {e}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: must be a mapping of option names to values")
        for key, raw in doc.items():
            name = str(key).replace("-", "_")
            if name not in fields:
                problems.append(f"{path.name}: {key}: unknown option")
                continue
            put(name, raw, f"{path.name}: {key}")
    for name in fields:
        env = env_name(daemon, name)
        if env in environ:
            put(name, environ[env], f"${env}")
    for name, raw in flags.items():
        if raw is not None and name in fields:
            put(name, raw, flag_name(name))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return cls(**values), sources


def click_options(cls: type[Any], daemon: str) -> Callable[[F], F]:
    """Add one click option per field of `cls`; values arrive as None when not given."""
    import click

    def decorate(fn: F) -> F:
        for f in reversed(dataclasses.fields(cls)):
            kind = _field_type(f)
            help_text = (
                f"{f.metadata['help']} [default: {f.default!r}; env {env_name(daemon, f.name)}]"
            )
            if kind is bool:
                name = f.name.replace("_", "-")
                fn = click.option(f"--{name}/--no-{name}", f.name, default=None, help=help_text)(fn)
            else:
                click_type: Any = {int: int, float: float}.get(kind, str)
                if f.metadata.get("choices"):
                    click_type = click.Choice(f.metadata["choices"])
                fn = click.option(
                    flag_name(f.name), f.name, type=click_type, default=None, help=help_text
                )(fn)
        return fn

    return decorate


def describe(config: Any, sources: Mapping[str, str]) -> str:
    """The effective values and their sources, for `--print-config`."""
    lines = []
    for f in dataclasses.fields(config):
        lines.append(f"{f.name}: {getattr(config, f.name)!r}  # {sources.get(f.name, 'default')}")
    return "\n".join(lines)
