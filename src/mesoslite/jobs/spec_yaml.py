"""Strict YAML loading of job specs: the size limit, duplicate keys and deep nesting refused,
and YAML errors told with their line, column and a hint."""

from __future__ import annotations

import re
from typing import Any

import yaml

from mesoslite.errors import ValidationError
from mesoslite.jobs.spec_values import kind_of
from mesoslite.limits import MAX_SPEC_BYTES, MAX_SPEC_DEPTH, utf8_size


class _StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that rejects a key given twice (plain YAML keeps the last) and
    collections nested deeper than `MAX_SPEC_DEPTH` (PyYAML composes them by recursion, so a
    deep document would otherwise end in RecursionError)."""

    _depth = 0

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # Refuse deep `[[[...` while scanning: PyYAML's scanner costs O(depth^2) per token
        # in flow collections, so 1000 levels took ~1 s before the composer's check ran.
        if self.flow_level >= MAX_SPEC_DEPTH:
            raise yaml.scanner.ScannerError(
                None, None, f"nested more than {MAX_SPEC_DEPTH} levels deep", self.get_mark()
            )
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_SPEC_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_SPEC_DEPTH} levels deep",
                    self.get_mark(),
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable; construct_mapping says so
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_spec_yaml(text: str, source: str) -> dict[str, Any]:
    """The spec's top-level mapping; raises `ValidationError` (field "") if it is not one."""
    where = source or "the job spec"
    size = len(text) if len(text) * 4 <= MAX_SPEC_BYTES else utf8_size(text)
    if size > MAX_SPEC_BYTES:
        raise ValidationError(
            "", f"{where} is {size} bytes, over the limit of 1 MB ({MAX_SPEC_BYTES} bytes)"
        )
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "invalid YAML"
        hint = ""
        if mark is not None and mark.buffer:
            line = (
                mark.buffer.splitlines()[mark.line]
                if mark.line < len(mark.buffer.splitlines())
                else ""
            )
            if re.search(r":\s*[*@]", line):
                hint = ' (quote values starting with * or @, e.g. schedule: "*/5 * * * *")'
        raise ValidationError("", f"{where} is not valid YAML{at}: {problem}{hint}") from None
    except yaml.YAMLError as e:
        raise ValidationError("", f"{where} is not valid YAML: {e}") from None
    if doc is None:
        raise ValidationError("", f"{where} is empty; a job needs at least name, type and command")
    if not isinstance(doc, dict):
        raise ValidationError(
            "", f"{where} must be a mapping of keys like name, type and command, got {kind_of(doc)}"
        )
    return doc
