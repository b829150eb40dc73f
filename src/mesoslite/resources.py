"""Resources: scalars, ranges and sets with exact arithmetic, parsed from `cpus:4;ports:[1-2]`.

Scalars are kept as integer thousandths (as Mesos does with its fixed-point `Value::Scalar`),
so that adding and subtracting thousands of 0.1-cpu tasks never drifts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from mesoslite.errors import ValidationError

SCALE = 1000
# Anything beyond this is a typo or an attack, not a machine: 10^12 cpus or MB.
MAX_SCALAR = 1e12
MAX_RANGE_VALUE = 2**64 - 1
NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

Range = tuple[int, int]


def _merge(ranges: Iterable[Range]) -> tuple[Range, ...]:
    out: list[list[int]] = []
    for begin, end in sorted(ranges):
        if out and begin <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([begin, end])
    return tuple((b, e) for b, e in out)


def _subtract_ranges(have: tuple[Range, ...], take: tuple[Range, ...]) -> tuple[Range, ...]:
    out: list[Range] = []
    for begin, end in have:
        pieces = [(begin, end)]
        for tb, te in take:
            nxt: list[Range] = []
            for pb, pe in pieces:
                if te < pb or tb > pe:
                    nxt.append((pb, pe))
                    continue
                if pb < tb:
                    nxt.append((pb, tb - 1))
                if te < pe:
                    nxt.append((te + 1, pe))
            pieces = nxt
        out.extend(pieces)
    return _merge(out)


def _ranges_contain(have: tuple[Range, ...], want: tuple[Range, ...]) -> bool:
    return all(any(hb <= wb and we <= he for hb, he in have) for wb, we in want)


def _range_count(ranges: tuple[Range, ...]) -> int:
    return sum(e - b + 1 for b, e in ranges)


@dataclass(frozen=True, slots=True)
class Resources:
    """An immutable bundle of named resources.

    `scalars` maps a name to thousandths (use `scalar(name)` for the float), `ranges` to merged
    inclusive ranges, `sets` to frozensets. Empty entries are never stored, so equal bundles
    compare equal.
    """

    scalars: Mapping[str, int]
    ranges: Mapping[str, tuple[Range, ...]]
    sets: Mapping[str, frozenset[str]]

    @staticmethod
    def empty() -> Resources:
        return _EMPTY

    @staticmethod
    def of(
        scalars: Mapping[str, float] | None = None,
        ranges: Mapping[str, Iterable[Range]] | None = None,
        sets: Mapping[str, Iterable[str]] | None = None,
    ) -> Resources:
        """Build from plain values, validating each; raises `ValidationError`."""
        sc: dict[str, int] = {}
        for name, value in (scalars or {}).items():
            _check_name(name)
            milli = to_milli(value, name)
            if milli:
                sc[name] = milli
        rg: dict[str, tuple[Range, ...]] = {}
        for name, items in (ranges or {}).items():
            _check_name(name)
            checked = []
            for begin, end in items:
                if not (0 <= begin <= end <= MAX_RANGE_VALUE):
                    raise ValidationError(name, f"range [{begin}-{end}] is not a valid range")
                checked.append((int(begin), int(end)))
            merged = _merge(checked)
            if merged:
                rg[name] = merged
        st: dict[str, frozenset[str]] = {}
        for name, members in (sets or {}).items():
            _check_name(name)
            fs = frozenset(members)
            if fs:
                st[name] = fs
        return Resources(sc, rg, st)

    # -- reading

    def scalar(self, name: str) -> float:
        return self.scalars.get(name, 0) / SCALE

    def names(self) -> set[str]:
        return set(self.scalars) | set(self.ranges) | set(self.sets)

    def is_empty(self) -> bool:
        return not (self.scalars or self.ranges or self.sets)

    def __bool__(self) -> bool:
        return not self.is_empty()

    # -- arithmetic

    def __add__(self, other: Resources) -> Resources:
        if not other.ranges and not other.sets:
            # The common case (cpus, mem): share the immutable range and set maps.
            osc = other.scalars
            if not osc:
                return self
            sc = dict(self.scalars)
            get = sc.get
            for name, v in osc.items():
                sc[name] = get(name, 0) + v
            return _make(sc, self.ranges, self.sets)
        if self.is_empty():
            return other
        sc = dict(self.scalars)
        for name, v in other.scalars.items():
            sc[name] = sc.get(name, 0) + v
        rg = dict(self.ranges)
        for name, r in other.ranges.items():
            rg[name] = _merge(rg.get(name, ()) + r)
        st = dict(self.sets)
        for name, s in other.sets.items():
            st[name] = st.get(name, frozenset()) | s
        return Resources(sc, rg, st)

    def __sub__(self, other: Resources) -> Resources:
        """`self` less `other`, which `self` must contain.

        Raises:
            ValueError: `other` holds more of some resource than `self` (a scalar would go
                negative, or a range value or set item is missing), naming each one; use
                `minus_clamped` where that may legitimately happen.
        """
        return self._subtract(other, clamp=False)

    def minus_clamped(self, other: Resources) -> Resources:
        """`self` less `other`, clamped: a scalar stops at zero, and the range values and
        set items of `other` that `self` lacks are ignored. Never raises."""
        return self._subtract(other, clamp=True)

    def _subtract(self, other: Resources, *, clamp: bool) -> Resources:
        if not other.ranges and not other.sets:
            # The common case (cpus, mem): share the immutable range and set maps.
            if not other.scalars:
                return self
            return _make(self._minus_scalars(other, clamp), self.ranges, self.sets)
        sc = self._minus_scalars(other, clamp)
        rg = dict(self.ranges)
        for name, r in other.ranges.items():
            if not clamp and not _ranges_contain(rg.get(name, ()), r):
                raise self._overdrawn(other)
            if name in rg:
                left_r = _subtract_ranges(rg[name], r)
                if left_r:
                    rg[name] = left_r
                else:
                    del rg[name]
        st = dict(self.sets)
        for name, s in other.sets.items():
            if not clamp and not s <= st.get(name, frozenset()):
                raise self._overdrawn(other)
            if name in st:
                left_s = st[name] - s
                if left_s:
                    st[name] = left_s
                else:
                    del st[name]
        return Resources(sc, rg, st)

    def _minus_scalars(self, other: Resources, clamp: bool) -> dict[str, int]:
        sc = dict(self.scalars)
        get = sc.get
        for name, v in other.scalars.items():
            left = get(name, 0) - v
            if left > 0:
                sc[name] = left
            elif left == 0 or clamp:
                sc.pop(name, None)
            else:
                raise self._overdrawn(other)
        return sc

    def _overdrawn(self, other: Resources) -> ValueError:
        parts = []
        for name, v in sorted(other.scalars.items()):
            have = self.scalars.get(name, 0)
            if have < v:
                parts.append(f"{name}: {format_scalar(have)} - {format_scalar(v)}")
        parts += self.shortfall(Resources({}, other.ranges, other.sets))
        return ValueError(
            f"resources subtraction would go negative: {'; '.join(parts)} "
            "(use minus_clamped() to stop at zero)"
        )

    def __le__(self, other: Resources) -> bool:
        """`a <= b` is `b.contains(a)` (a partial order: neither may hold)."""
        return other.contains(self)

    def __ge__(self, other: Resources) -> bool:
        """`a >= b` is `a.contains(b)`."""
        return self.contains(other)

    def contains(self, other: Resources) -> bool:
        """True when every part of `other` is available in `self`."""
        get = self.scalars.get
        for name, v in other.scalars.items():
            if get(name, 0) < v:
                return False
        if not other.ranges and not other.sets:
            return True
        for name, r in other.ranges.items():
            if not _ranges_contain(self.ranges.get(name, ()), r):
                return False
        for name, s in other.sets.items():
            if not s <= self.sets.get(name, frozenset()):
                return False
        return True

    def shortfall(self, wanted: Resources) -> list[str]:
        """What `wanted` asks for beyond `self`, e.g. `["cpus: wants 4, has 2"]`."""
        out = []
        for name, v in sorted(wanted.scalars.items()):
            have = self.scalars.get(name, 0)
            if have < v:
                out.append(f"{name}: wants {format_scalar(v)}, has {format_scalar(have)}")
        for name, r in sorted(wanted.ranges.items()):
            if not _ranges_contain(self.ranges.get(name, ()), r):
                held = format_ranges(self.ranges.get(name, ()))
                out.append(f"{name}: wants {format_ranges(r)}, has {held}")
        for name, s in sorted(wanted.sets.items()):
            missing = s - self.sets.get(name, frozenset())
            if missing:
                out.append(f"{name}: missing {{{','.join(sorted(missing))}}}")
        return out

    # -- shares (for DRF)

    def quantity(self, name: str) -> float:
        """A number for any kind: the scalar value, the count of range values or set items."""
        if name in self.scalars:
            return self.scalars[name] / SCALE
        if name in self.ranges:
            return float(_range_count(self.ranges[name]))
        if name in self.sets:
            return float(len(self.sets[name]))
        return 0.0

    # -- text

    def __str__(self) -> str:
        return format_resources(self)

    def __repr__(self) -> str:
        return f"Resources({format_resources(self)!r})"

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.names()))


_EMPTY = Resources({}, {}, {})

# What the dataclass's frozen `__init__` does, without its per-field `object.__setattr__`
# lookups: the arithmetic's fast paths build many bundles per task (#15). Callers pass
# maps they own and never change again, as `__init__`'s callers do.
_new = object.__new__
_set_scalars = Resources.__dict__["scalars"].__set__
_set_ranges = Resources.__dict__["ranges"].__set__
_set_sets = Resources.__dict__["sets"].__set__


def _make(
    scalars: Mapping[str, int],
    ranges: Mapping[str, tuple[Range, ...]],
    sets: Mapping[str, frozenset[str]],
) -> Resources:
    res: Resources = _new(Resources)
    _set_scalars(res, scalars)
    _set_ranges(res, ranges)
    _set_sets(res, sets)
    return res


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError(
            "resources", f"name {name!r} is not valid (lowercase letters, digits, _ . -)"
        )


def to_milli(value: float, field: str = "value") -> int:
    """Validate a scalar and convert it to thousandths; raises `ValidationError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ValidationError(field, f"must be a finite number, got {value}")
    if value < 0:
        raise ValidationError(field, f"must be >= 0, got {value:g}")
    if value > MAX_SCALAR:
        raise ValidationError(field, f"must be at most {MAX_SCALAR:g}, got {value:g}")
    return round(value * SCALE)


def format_scalar(milli: int) -> str:
    """Thousandths as exact decimal text: 1048576000 -> "1048576", 1500 -> "1.5"."""
    whole, frac = divmod(milli, SCALE)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(whole)


def format_ranges(ranges: Iterable[Range]) -> str:
    return "[" + ",".join(f"{b}-{e}" for b, e in ranges) + "]"


def format_resources(res: Resources) -> str:
    """The inverse of `parse_resources`: `cpus:0.5;mem:64;ports:[31000-31009]`."""
    parts = [f"{n}:{format_scalar(v)}" for n, v in sorted(res.scalars.items())]
    parts += [f"{n}:{format_ranges(r)}" for n, r in sorted(res.ranges.items())]
    parts += [f"{n}:{{{','.join(sorted(s))}}}" for n, s in sorted(res.sets.items())]
    return ";".join(parts)


def parse_name_values(text: str, field: str) -> list[tuple[str, str]]:
    """Split `NAME:VALUE;NAME:VALUE;...` (blank parts skipped, spaces around each stripped).

    Shared by resources and the agent's attributes, which check names and values their way.

    Raises:
        ValidationError: a part without a name, a colon or a value.
    """
    out: list[tuple[str, str]] = []
    for raw in text.split(";"):
        part = raw.strip()
        if not part:
            continue
        name, sep, value = part.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValidationError(field, f"expected NAME:VALUE, got {part!r}")
        out.append((name, value))
    return out


def parse_resources(text: str, field: str = "resources") -> Resources:
    """Parse `cpus:4;mem:1024;ports:[31000-32000];gpus_ids:{a,b}` into `Resources`.

    Raises:
        ValidationError: naming the part that is wrong.
    """
    scalars: dict[str, float] = {}
    ranges: dict[str, list[Range]] = {}
    sets: dict[str, list[str]] = {}
    for name, value in parse_name_values(text, field):
        _check_name(name)
        if name in scalars or name in ranges or name in sets:
            raise ValidationError(field, f"{name} is given twice")
        if value.startswith("["):
            if not value.endswith("]"):
                raise ValidationError(field, f"{name}: unclosed range list {value!r}")
            items: list[Range] = []
            for item in value[1:-1].split(","):
                item = item.strip()
                if not item:
                    continue
                b, dash, e = item.partition("-")
                try:
                    begin, end = int(b), int(e if dash else b)
                except ValueError:
                    raise ValidationError(field, f"{name}: bad range {item!r}") from None
                if begin > end or begin < 0:
                    raise ValidationError(field, f"{name}: bad range {item!r}")
                items.append((begin, end))
            ranges[name] = items
        elif value.startswith("{"):
            if not value.endswith("}"):
                raise ValidationError(field, f"{name}: unclosed set {value!r}")
            sets[name] = [s.strip() for s in value[1:-1].split(",") if s.strip()]
        else:
            try:
                number = float(value)
            except ValueError:
                raise ValidationError(field, f"{name}: {value!r} is not a number") from None
            to_milli(number, f"{field}.{name}")
            scalars[name] = number
    return Resources.of(scalars, ranges, sets)


_ROLE_PART = re.compile(r"^([a-z][a-z0-9_.-]{0,63})\(([^()]*)\)$")
_ROLE = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*)$")


def parse_reserved_resources(
    text: str, field: str = "resources"
) -> tuple[Resources, dict[str, Resources]]:
    """Parse an agent's `--resources` with static reservations, Mesos style:
    `cpus(ml):4;mem(ml):4096;cpus:2` reserves 4 cpus and 4 GB for role `ml`.

    Returns:
        The total (reserved parts included) and the reserved parts by role. `NAME(*)` is
        the same as `NAME`: unreserved.

    Raises:
        ValidationError: naming the part that is wrong.
    """
    by_role: dict[str, list[str]] = {}
    for raw in text.split(";"):
        part = raw.strip()
        if not part:
            continue
        name, sep, value = part.partition(":")
        role = "*"
        match = _ROLE_PART.match(name.strip())
        if match:
            name, role = match.group(1), match.group(2).strip()
            if not _ROLE.match(role):
                raise ValidationError(
                    field, f"{name}: role must be '*' or like 'eng/ml', got {role!r}"
                )
        elif "(" in name or ")" in name:
            raise ValidationError(field, f"expected NAME(ROLE):VALUE, got {part!r}")
        by_role.setdefault(role, []).append(f"{name}{sep}{value}")
    total = Resources.empty()
    reserved: dict[str, Resources] = {}
    counted = 0.0
    for role, parts in by_role.items():
        res = parse_resources(";".join(parts), field)
        total = total + res
        counted += sum(res.quantity(n) for n in res.ranges)
        if role != "*" and not res.is_empty():
            reserved[role] = res
    if counted != sum(total.quantity(n) for n in total.ranges):
        # Ranges given both reserved and not (or for two roles) must not overlap, or the
        # total would hide the double booking. Scalars simply add up.
        raise ValidationError(field, "ranges reserved for different roles overlap")
    return total, reserved
