"""`maker`: build a frozen slotted dataclass from every field, positionally, without its
`__init__`.

A frozen dataclass's `__init__` sets each field through `object.__setattr__` looked up by
name, and handles defaults; per task the master and the simulator build a `TaskSpec`
twice, a `TaskStatus` and an `Offer`, and that was a tenth of a simulated task (#15).
`maker(cls)` returns a function of exactly the class's fields, in order, that sets its
slots directly: the same object, for a fraction of the cost. Every field must be given
(no defaults), so a field added to the class makes every caller fail loudly, never
silently leave it unset. Classes with `__post_init__` are refused (it would be skipped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def maker(cls: type[T]) -> Callable[..., T]:
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which a maker would skip")
    names = [f.name for f in dataclasses.fields(cls)]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make_{cls.__name__}({', '.join(names)}):", "    self = _new(_cls)"]
    for name in names:
        scope[f"_set_{name}"] = cls.__dict__[name].__set__
        lines.append(f"    _set_{name}(self, {name})")
    lines.append("    return self")
    exec("\n".join(lines), scope)  # noqa: S102 - the code is made from field names alone
    made: Callable[..., T] = scope[f"make_{cls.__name__}"]
    return made
