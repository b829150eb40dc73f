"""The JSON text of an active instance in a job's document, kept with the instance (issue 15).

A job's document is rewritten whole on every registry write of it, and a write holds a
batch of changes: of a 1,000-instance job's instances, a write typically changes a few
dozen. Encoding the other ones again was most of the master's CPU per instance, and so
was a memo keyed by every field (a key of ~20 values per instance per write). The text is
kept on the instance instead (`Instance.doc_memo`), which any assignment to one of its
fields drops; with it the attempt's change count (`Attempt.changes`, which any assignment
to one of its fields raises) and a copy of the attempt's attributes (a dict, which could be
changed in place). A kept text is used only if all three still match: never a stale one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from mesoslite.jobs.records import Instance

# One encoder for all: `json.dumps` with separators builds one per call. Same text.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def instance_text(i: Instance, doc: Callable[[Instance], Any]) -> str:
    """`json.dumps(doc(i))` in the document's separators, kept while `i` is unchanged."""
    a = i.current
    memo = i.doc_memo  # always set: the dataclass's `__init__` assigns fields
    if memo is not None and memo[1] is a and (
        a is None or (a.changes == memo[2] and a.attributes == memo[3])
    ):
        return memo[0]
    text = _ENCODER.encode(doc(i))
    i.doc_memo = (text, a, a.changes if a else 0, dict(a.attributes) if a else None)
    return text


def instance_texts(insts: Iterable[Instance], doc: Callable[[Instance], Any]) -> list[str]:
    """`instance_text` of each, with the check of a kept text inline: this runs for every
    instance of a live run at every write of its job, and most are unchanged."""
    out = []
    for i in insts:
        a, memo = i.current, i.doc_memo
        if memo is not None and memo[1] is a and (
            a is None or (a.changes == memo[2] and a.attributes == memo[3])
        ):
            out.append(memo[0])
        else:
            out.append(instance_text(i, doc))
    return out
