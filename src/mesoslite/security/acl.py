"""The ACL engine: principal + action + object -> allow or deny, and the rule that decided.

Pure: no I/O, no clock. Rules are tried in order and the first that matches decides (like
a firewall); when none matches, the defaults below decide. What the object of each action
is:

- `register_framework`, `submit_job`: the role; `set_weight`, `set_quota`, `set_priority`:
  the role; `run_as`: the user a task runs as (`""`: the agent's own user).
- `kill_task`, `teardown_framework`, `kill_job`, `read_files`: the principal that owns the
  framework, task or job (so `objects: [bob]` is "bob's", `"*"` is anyone's).
- `drain_agent`, `mark_agent_gone`, `register_agent`: the agent's hostname.
- `read_state`: `""` (the whole state).

Defaults when a principal is known (authentication on) and no rule matches: a principal may
do everything to its own frameworks, tasks and jobs and nothing to others'; operator
actions (weights, quota, priorities, drain, gone) need a rule; running as root needs a rule;
the rest (registering in a role, submitting, reading state, registering an agent) is
allowed. Without a principal (authentication off) only rules can deny.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

ANY = "*"
OWNED_ACTIONS = frozenset({"kill_task", "teardown_framework", "kill_job", "read_files"})
OPERATOR_ACTIONS = frozenset(
    {"set_weight", "set_quota", "set_priority", "drain_agent", "mark_agent_gone"}
)
ACTIONS = OWNED_ACTIONS | OPERATOR_ACTIONS | frozenset(
    {"register_framework", "run_as", "submit_job", "read_state", "register_agent"}
)
ROOT_USERS = frozenset({"root", "0"})

DEFAULT_OWN = "default: a principal may act only on its own frameworks, tasks and jobs"
DEFAULT_OPERATOR = "default: operator actions need an explicit rule"
DEFAULT_ROOT = "default: running as root needs an explicit rule"
DEFAULT_ALLOW = "default: allowed"
DEFAULT_OFF = "default: allowed (no authenticated principal)"


@dataclass(frozen=True, slots=True)
class Rule:
    """One ACL rule. Patterns are shell globs (`eng/*`); `"*"` matches anything, and in
    `principals` also a caller without a principal."""

    name: str
    allow: bool
    principals: tuple[str, ...] = (ANY,)
    actions: tuple[str, ...] = (ANY,)
    objects: tuple[str, ...] = (ANY,)

    def matches(self, principal: str | None, action: str, obj: str) -> bool:
        return (
            _any_match(self.actions, action)
            and _principal_match(self.principals, principal)
            and _any_match(self.objects, obj)
        )


def _any_match(patterns: tuple[str, ...], value: str) -> bool:
    return any(p == ANY or p == value or fnmatch.fnmatchcase(value, p) for p in patterns)


def _principal_match(patterns: tuple[str, ...], principal: str | None) -> bool:
    if principal is None:
        return ANY in patterns
    return _any_match(patterns, principal)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str  # "rule 'NAME'" or "default: ..."

    def reason(self, principal: str | None, action: str, obj: str) -> str:
        """Why a refusal happened, for PERMISSION_DENIED: who, what, on what, which rule."""
        who = f"principal {principal!r}" if principal is not None else "an unauthenticated caller"
        what = f" {obj[:128]!r}" if obj else ""
        return f"{who} may not {action}{what}: {self.rule}"


@dataclass(frozen=True, slots=True)
class Acls:
    rules: tuple[Rule, ...] = ()

    def decide(self, principal: str | None, action: str, obj: str) -> Decision:
        """Allow or deny `principal` doing `action` to `obj` (see the module docstring)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        for rule in self.rules:
            if rule.matches(principal, action, obj):
                return Decision(rule.allow, f"rule {rule.name!r}")
        return default_decision(principal, action, obj)


def default_decision(principal: str | None, action: str, obj: str) -> Decision:
    """What happens when no rule matches."""
    if principal is None:
        return Decision(True, DEFAULT_OFF)
    if action in OWNED_ACTIONS:  # the object is the owner
        return Decision(obj == principal, DEFAULT_OWN)
    if action in OPERATOR_ACTIONS:
        return Decision(False, DEFAULT_OPERATOR)
    if action == "run_as" and obj in ROOT_USERS:
        return Decision(False, DEFAULT_ROOT)
    return Decision(True, DEFAULT_ALLOW)
