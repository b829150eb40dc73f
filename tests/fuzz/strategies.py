"""Hypothesis strategies for any protobuf message, built from its descriptor.

`messages(descriptor)` draws a message of that type with random values by field type,
recursively (bounded depth and sizes), so a new RPC or field is fuzzed without a line here.
Strings mix random text with hostile content: path traversal ("../"), absolute paths, NUL,
control and non-ASCII characters, and a few huge values. `KNOWN_IDS` lets a test seed real
ids (a real framework's, agent's) so that calls reach past the first lookup.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor as d
from google.protobuf import message_factory
from hypothesis import strategies as st

MAX_DEPTH = 4
MAX_REPEATED = 3
HUGE = 300_000  # characters: over every string limit, far under the 16 MB request limit

PATHISH = [
    "", ".", "..", "../", "../../../../etc/passwd", "/", "/etc/passwd", "a/../../b",
    "..\\..\\x", "/dev/zero", "/proc/self/environ", "stdout", "../stdout", "%2e%2e%2f",
    "\x00", "a\x00b", "task\x00/../x", "~", "*", " ", "\n", "\u202e", "é", "😀", "ｆｏｏ",
    "CON", "a" * 256, "-rf", "$(id)", "`id`", "${HOME}",
]

# Real ids of the cluster under test, filled in by the test's fixture before drawing.
KNOWN_IDS: list[str] = []

_INT_RANGES: dict[int, tuple[int, int]] = {
    d.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    d.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    d.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    d.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


@st.composite
def _known_id(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(KNOWN_IDS)) if KNOWN_IDS else ""


def hostile_text(huge: bool = True) -> st.SearchStrategy[str]:
    """Text for any string field: mostly short, often path-ish, sometimes (`huge`) huge."""
    texts = [
        st.sampled_from(PATHISH),
        st.text(max_size=40),
        st.text(alphabet="./\\\x00abc-_:*", max_size=30),
        _known_id(),
        st.builds(lambda a, b: a + b, st.sampled_from(PATHISH), st.sampled_from(PATHISH)),
        st.sampled_from(["x" * 5000, "é" * 3000, "\x00" * 1000]),
    ]
    if huge:
        texts.append(st.sampled_from(["x" * HUGE, "../" * (HUGE // 3)]))
    return st.one_of(texts)


def _numbers(kind: int) -> st.SearchStrategy[Any]:
    if kind in _INT_RANGES:
        lo, hi = _INT_RANGES[kind]
        edges = [lo, hi, 0, 1, -1] if lo < 0 else [lo, hi, 0, 1]
        return st.one_of(st.sampled_from(edges), st.integers(lo, hi))
    if kind in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        edges = [0.0, -0.0, -1.0, 1e-300, 1e300, float("inf"), float("-inf"), float("nan")]
        width = 32 if kind == d.FieldDescriptor.TYPE_FLOAT else 64
        return st.one_of(st.sampled_from(edges), st.floats(width=width))
    raise AssertionError(f"not a number type: {kind}")


def _scalar(field: d.FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == d.FieldDescriptor.TYPE_STRING:
        return hostile_text()
    if kind == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == d.FieldDescriptor.TYPE_ENUM:
        # Known values, and unknown ones: proto3 enums are open, any int32 arrives.
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    return _numbers(kind)


def _field(field: d.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    msg = field.message_type
    if msg is not None and msg.GetOptions().map_entry:
        key, value = msg.fields_by_name["key"], msg.fields_by_name["value"]
        return st.dictionaries(_single(key, depth), _single(value, depth), max_size=MAX_REPEATED)
    one = _single(field, depth)
    if field.is_repeated:
        return st.lists(one, max_size=MAX_REPEATED)
    return one


def _single(field: d.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        return messages(field.message_type, depth + 1)
    return _scalar(field)


def _build(cls: Any, values: dict[str, Any]) -> Any:
    msg = cls()
    for name, value in values.items():
        field = msg.DESCRIPTOR.fields_by_name[name]
        target = getattr(msg, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for k, v in value.items():
                if field.message_type.fields_by_name["value"].message_type is not None:
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif field.is_repeated:
            if field.message_type is not None:
                for v in value:
                    target.add().CopyFrom(v)
            else:
                target.extend(value)
        elif field.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


def messages(descriptor: d.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of type `descriptor`: any subset of fields set, each to a random value."""
    cls = message_factory.GetMessageClass(descriptor)
    if depth >= MAX_DEPTH:
        return st.just(cls())
    optional = {f.name: _field(f, depth) for f in descriptor.fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda v: _build(cls, v))
