"""Reading a security file's YAML (`--credentials`, `--acls`): one error shape for both."""

from __future__ import annotations

from typing import Any

from mesoslite.errors import ConfigError


def load_yaml(text: str, source: str) -> Any:
    """The document in `text`. Raises `ConfigError` naming `source` and the line, never
    quoting the text (a credentials file holds secrets' hashes)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: not valid YAML{where}") from None
