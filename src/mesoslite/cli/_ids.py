"""Unique id prefixes: `mesoslite task kill 3f2a` for the task whose id starts with `3f2a`.

Resolved here, on the client, from the list RPCs, so that the master's API keeps exact ids.
An exact id always wins; a prefix of exactly one id means that id; a prefix of several is an
error listing them; a prefix of none is passed on unchanged, so the master answers with its
usual not-found error. Job names are names, not ids: they are not resolved.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mesoslite.errors import ValidationError

if TYPE_CHECKING:
    from mesoslite.cli._client import BlockingOperatorClient

# The ambiguity error shows at most this many candidates.
MAX_SHOWN = 10


class AmbiguousIdError(ValidationError):
    """Raised when an id prefix typed on the command line matches several ids."""


def unique_match(kind: str, prefix: str, ids: Iterable[str]) -> str:
    """The id `prefix` names among `ids` (see the module docstring).

    Raises:
        AmbiguousIdError: `prefix` is not an id but starts several.
    """
    known = set(ids)
    if not prefix or prefix in known:
        return prefix
    matches = sorted(i for i in known if i.startswith(prefix))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        return prefix
    shown = ", ".join(matches[:MAX_SHOWN])
    more = f" and {len(matches) - MAX_SHOWN} more" if len(matches) > MAX_SHOWN else ""
    raise AmbiguousIdError(
        kind, f"{prefix!r} is the start of {len(matches)} ids: {shown}{more}; give more of it"
    )


def resolve_agent(client: BlockingOperatorClient, prefix: str) -> str:
    return unique_match("agent id", prefix, (a.id for a in client.agents()))


def resolve_framework(client: BlockingOperatorClient, prefix: str) -> str:
    if not prefix:
        return prefix
    frameworks = client.frameworks(include_completed=True)
    return unique_match("framework id", prefix, (f.id for f in frameworks))


def resolve_task(
    client: BlockingOperatorClient, prefix: str, framework_id: str = ""
) -> tuple[str, str]:
    """The task id and framework id that `prefix` and `framework_id` (both may be prefixes,
    the framework id may be empty) name; completed tasks count, so their output can be read."""
    framework_id = resolve_framework(client, framework_id)
    tasks = client.tasks(framework_id=framework_id, include_completed=True)
    return unique_match("task id", prefix, (t.id for t in tasks)), framework_id


def resolve_task_at(master: str, prefix: str, framework_id: str = "") -> tuple[str, str]:
    """`resolve_task` with a client of its own, for commands that run asynchronously."""
    from mesoslite.cli._client import BlockingOperatorClient

    with BlockingOperatorClient(master) as client:
        return resolve_task(client, prefix, framework_id)
