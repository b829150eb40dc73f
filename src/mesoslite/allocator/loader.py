"""`load_allocator`: find an allocator by entry point name or `package.module:Class` path.

# after Mesos `Allocator::create`, dramatiq `import_object`
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, cast

from mesoslite.allocator.base import Allocator, Policy
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.errors import ConfigError

ENTRY_POINT_GROUP = "mesoslite.allocators"


def available_allocators() -> list[str]:
    """The names registered in the `mesoslite.allocators` entry point group, sorted."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def parse_allocator_options(text: str, field: str = "allocator_options") -> dict[str, object]:
    """`KEY=VALUE[,KEY=VALUE...]` (e.g. `resource=mem` for `fair`) into keyword options.

    Values stay strings. Raises `ConfigError` naming `field` for a malformed entry.
    """
    options: dict[str, object] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ConfigError(f"{field}: expected KEY=VALUE, got {part!r}")
        options[key] = value.strip()
    return options


def load_allocator(spec: str, options: Mapping[str, object] | None = None) -> Allocator:
    """Build the allocator that `spec` names.

    Args:
        spec: an entry point name in the group `mesoslite.allocators` (`drf`), or a path
            `package.module:Attribute`. The attribute may be a class or factory of a `Policy`
            (something with `order_roles`), which is wrapped in `HierarchicalAllocator`, or of
            an `Allocator` (something with `allocate`), used as it is; or such an object itself.
        options: keyword arguments for the class or factory; none are allowed for an object.

    Returns:
        An `Allocator`.

    Raises:
        ConfigError: the name is unknown (the message lists the available ones), the path
            cannot be imported, the options are not accepted, or the object is neither a
            `Policy` nor an `Allocator`.
    """
    opts = dict(options or {})
    target = _resolve(spec)
    obj = _instantiate(spec, target, opts)
    if callable(getattr(obj, "order_roles", None)):
        return HierarchicalAllocator(cast(Policy, obj))
    if callable(getattr(obj, "allocate", None)):
        return cast(Allocator, obj)
    raise ConfigError(
        f"allocator {spec!r}: {obj!r} is neither a Policy (order_roles, order_frameworks)"
        " nor an Allocator (allocate)"
    )


def _resolve(spec: str) -> Any:
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ConfigError(f"allocator {spec!r}: expected NAME or package.module:Class")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"allocator {spec!r}: cannot import {module_name!r}: {exc}") from exc
        except Exception as exc:  # a plug-in's module may fail in any way while importing
            raise ConfigError(
                f"allocator {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        target: Any = module
        for part in attr.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise ConfigError(
                    f"allocator {spec!r}: module {module_name!r} has no attribute {attr!r}"
                ) from None
        return target
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
    if not matches:
        names = ", ".join(available_allocators()) or "(none)"
        hint = " (a path is written package.module:Class)" if "." in spec else ""
        raise ConfigError(f"unknown allocator {spec!r}; available: {names}{hint}")
    try:
        return matches[0].load()
    except Exception as exc:  # a broken distribution: say which entry point, and why
        raise ConfigError(
            f"allocator {spec!r}: cannot load entry point {matches[0].value!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _instantiate(spec: str, target: Any, options: dict[str, object]) -> Any:
    is_plugin_object = callable(getattr(target, "order_roles", None)) or callable(
        getattr(target, "allocate", None)
    )
    if not isinstance(target, type) and (is_plugin_object or not callable(target)):
        if options:
            raise ConfigError(
                f"allocator {spec!r} is an object and takes no options,"
                f" got {', '.join(sorted(options))}"
            )
        return target
    _check_options(spec, target, options)
    try:
        return target(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"allocator {spec!r}: bad options: {exc}") from exc


def _check_options(spec: str, factory: Any, options: Mapping[str, object]) -> None:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return  # no signature to check against (a builtin); the call will tell
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        allowed = ", ".join(sorted(accepted)) or "none"
        raise ConfigError(
            f"allocator {spec!r}: unknown option {', '.join(unknown)}; allowed: {allowed}"
        )
