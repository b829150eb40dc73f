"""The JSON text of an active instance in a job's document, memoised (issue 15).

A job's document is rewritten whole on every registry write of it, and a write holds a
batch of changes: of a 1,000-instance job's instances, a write typically changes a few
dozen. Encoding the other ones again was most of the master's CPU per instance. The text
is a pure function of the instance's fields, so it is memoised by those fields: a stale
entry can never be returned, only one equal in every field read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mesoslite.jobs.records import Instance

# Bounded: cleared when full (a few MB), then refilled by the next writes.
MAX_ENTRIES = 50_000

_texts: dict[tuple[Any, ...], str] = {}


def _key(i: Instance) -> tuple[Any, ...]:
    """Every field `documents._instance_doc` reads. Within a position the types do not
    vary (an exit code is an int or None, `healthy` a bool or None), so equal keys give
    equal text."""
    a = i.current
    attempt = None if a is None else (
        a.task_id, a.number, a.agent_id, a.hostname, tuple(a.attributes.items()), a.state,
        a.launched_at, a.finished_at, a.exit_code, a.healthy, a.message,
    )
    return (i.index, i.state, i.version, i.attempts, i.failures, attempt, i.next_attempt_at,
            i.message, i.killing_for)


def instance_text(i: Instance, doc: Callable[[Instance], dict[str, Any]]) -> str:
    """`json.dumps(doc(i))` in the document's separators, from the memo when it has it."""
    key = _key(i)
    text = _texts.get(key)
    if text is None:
        if len(_texts) >= MAX_ENTRIES:
            _texts.clear()
        text = _texts[key] = json.dumps(doc(i), separators=(",", ":"))
    return text
