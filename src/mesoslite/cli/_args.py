"""Checks of ids, names and roles typed on the command line, before any call is made.

An id the master would refuse anyway is refused here with a plain message and exit 2 (a
20 KB task id used to fail inside gRPC, on its header size limit, with exit 70).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import click

from mesoslite.limits import (
    ID_CHARS,
    ID_RE,
    JOB_NAME_RE,
    MAX_ID,
    MAX_JOB_NAME,
    MAX_ROLE,
    ROLE_RE,
    shown,
)

_FORMS: dict[str, tuple[int, re.Pattern[str], str]] = {
    "id": (MAX_ID, ID_RE, f"1-{MAX_ID} characters of {ID_CHARS}"),
    "job name": (MAX_JOB_NAME, JOB_NAME_RE, "a DNS label: lowercase letters, digits and '-'"),
    "role": (MAX_ROLE, ROLE_RE, "path segments of [a-z0-9_-] like 'eng/ml'"),
}


Callback = Callable[[click.Context, click.Parameter, "str | None"], "str | None"]


def checked(what: str, form: str = "id") -> Callback:
    """A click callback refusing a `what` (e.g. "task id") that is too long or ill-formed;
    an empty value (an option's default) passes."""
    limit, pattern, text = _FORMS[form]

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if not value:
            return value
        if len(value) > limit:
            raise click.BadParameter(
                f"{what} too long: {len(value)} characters, at most {limit}", ctx, param
            )
        if not pattern.match(value):
            raise click.BadParameter(f"{what} must be {text}, got {shown(value)}", ctx, param)
        return value

    return check
