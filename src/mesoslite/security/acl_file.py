"""The `--acls` YAML file, parsed into `Acls` (pure: text in, rules out).

    rules:                                  # tried in order; the first that matches decides
      - name: ml-team-roles                 # optional; default rules[INDEX]
        principals: [alice, bob]            # a list or one string; "*" is anyone
        actions: [register_framework, submit_job]
        objects: ["eng/ml", "eng/ml/*"]     # optional, default "*"; see `security/acl.py`
        effect: allow                       # allow | deny

Every problem is reported at once, each with its path (`acls.yaml: rules[2].actions[0]`).
"""

from __future__ import annotations

from typing import Any

from mesoslite.errors import ConfigError
from mesoslite.security.acl import ACTIONS, ANY, Acls, Rule
from mesoslite.security.yaml_doc import load_yaml

RULE_KEYS = ("name", "principals", "actions", "objects", "effect")
MAX_RULES = 10_000


def _patterns(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        problems.append(f"{where}: must be a string or a non-empty list of strings")
        return ()
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str | int) or isinstance(item, bool) or str(item) == "":
            problems.append(f"{where}[{i}]: must be a non-empty string, got {item!r}")
            continue
        out.append(str(item))
    return tuple(out)


def _rule(i: int, doc: Any, source: str, problems: list[str]) -> Rule | None:
    where = f"{source}: rules[{i}]"
    if not isinstance(doc, dict):
        problems.append(f"{where}: must be a mapping with keys {', '.join(RULE_KEYS)}")
        return None
    before = len(problems)
    unknown = sorted(str(k) for k in doc if k not in RULE_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
                        f"{', '.join(RULE_KEYS)}")
    effect = doc.get("effect")
    if effect not in ("allow", "deny"):
        problems.append(f"{where}.effect: must be allow or deny, got {effect!r}")
    name = doc.get("name", f"rules[{i}]")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}.name: must be a non-empty string, got {name!r}")
    for key in ("principals", "actions"):
        if key not in doc:
            problems.append(f"{where}.{key}: missing")
    principals = _patterns(doc.get("principals", ANY), f"{where}.principals", problems)
    actions = _patterns(doc.get("actions", ANY), f"{where}.actions", problems)
    for j, action in enumerate(actions):
        if action != ANY and action not in ACTIONS:
            problems.append(f"{where}.actions[{j}]: unknown action {action!r}; allowed: "
                            f"{', '.join(sorted(ACTIONS))} or *")
    objects = _patterns(doc.get("objects", ANY), f"{where}.objects", problems)
    if len(problems) > before:
        return None
    return Rule(str(name), effect == "allow", principals, actions, objects)


def parse_acls(text: str, source: str) -> Acls:
    """The rules in `text` (YAML). Raises `ConfigError` listing every problem, by path."""
    doc = load_yaml(text, source)
    if doc is None:
        return Acls()
    if not isinstance(doc, dict) or set(doc) - {"rules"}:
        raise ConfigError(f"{source}: must be a mapping with one key, rules (a list of rules)")
    rules_doc = doc.get("rules") or []
    if not isinstance(rules_doc, list):
        raise ConfigError(f"{source}: rules must be a list")
    if len(rules_doc) > MAX_RULES:
        raise ConfigError(f"{source}: at most {MAX_RULES} rules, got {len(rules_doc)}")
    problems: list[str] = []
    rules = [_rule(i, r, source, problems) for i, r in enumerate(rules_doc)]
    if problems:
        raise ConfigError("; ".join(problems))
    return Acls(tuple(r for r in rules if r is not None))
