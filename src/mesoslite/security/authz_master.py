"""The authorization hooks of the master's services: who owns what, and which ACL action a
call is. Each hook raises `PermissionDeniedError` before the call touches state.

Ownership: a framework is owned by the principal that subscribed it (recorded in
`FrameworkInfo.principal`, which the registry keeps); its tasks are its owner's. A job is
owned by the principal that submitted it, recorded as the first line of its stored spec,
`# mesoslite-owner: NAME` (a YAML comment, so the jobs framework and the registry carry it
with the spec unchanged; a line of that form sent by a client is dropped).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mesoslite.errors import PermissionDeniedError
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.model import FrameworkInfo, TaskSpec
from mesoslite.security.authz import Authorizer

OWNER_PREFIX = "# mesoslite-owner: "
_OWNER_LINE = re.compile(r"^[ \t]*#[ \t]*mesoslite-owner:.*(\r?\n|$)", re.MULTILINE)
OWN_FRAMEWORK = "a framework's calls come from the principal that subscribed it"


def _owner_of(frameworks: Mapping[FrameworkId, Any], fid: FrameworkId) -> str | None:
    fw = frameworks.get(fid)
    return None if fw is None else str(fw.info.principal)


def framework_owner(state: Any, fid: FrameworkId) -> str | None:
    """The principal owning framework `fid` (live or completed); None if unknown."""
    owner = _owner_of(state.frameworks, fid)
    return owner if owner is not None else _owner_of(state.completed_frameworks, fid)


def check_own_framework(principal: str | None, state: Any, fid: FrameworkId) -> None:
    """A scheduler call (accept, decline, ...) on `fid` must come from its owner."""
    if principal is None:
        return
    owner = framework_owner(state, fid)
    if owner is not None and owner != principal:
        raise PermissionDeniedError(
            f"principal {principal!r} may not use framework {fid} of principal "
            f"{owner!r}: {OWN_FRAMEWORK}"
        )


def authorize_subscribe(
    authz: Authorizer, principal: str | None, info: FrameworkInfo, state: Any
) -> FrameworkInfo:
    """Check a SUBSCRIBE; returns `info` owned by the authenticated principal."""
    if principal is not None:
        if info.principal and info.principal != principal:
            raise PermissionDeniedError(
                f"framework_info.principal {info.principal[:128]!r} is not the authenticated "
                f"principal {principal!r}"
            )
        info = dataclasses.replace(info, principal=principal)
    if info.id:
        check_own_framework(principal, state, info.id)
    for role in info.all_roles:
        authz.check(principal, "register_framework", role)
    authz.check(principal, "run_as", info.user)
    return info


def authorize_launch(
    authz: Authorizer, principal: str | None, state: Any, fid: FrameworkId,
    tasks: Iterable[TaskSpec],
) -> None:
    """An ACCEPT: the framework is the caller's, and each task's user is allowed."""
    check_own_framework(principal, state, fid)
    fw = state.frameworks.get(fid)
    default_user = fw.info.user if fw is not None else ""
    for user in sorted({t.command.user or default_user for t in tasks}):
        authz.check(principal, "run_as", user)


def agent_hostname(state: Any, agent_id: AgentId) -> str:
    """What `drain_agent`/`mark_agent_gone` rules match: the hostname, else the id."""
    agent = state.agents.get(agent_id)
    return str(agent.info.hostname) if agent is not None else str(agent_id)


# ---------------------------------------------------------------------------- jobs


def job_owner(spec_yaml: str) -> str:
    """The owner recorded in a stored spec; "" for a job submitted without authentication."""
    first = spec_yaml.split("\n", 1)[0]
    return first[len(OWNER_PREFIX):].strip() if first.startswith(OWNER_PREFIX) else ""


def with_owner(spec_yaml: str, principal: str | None) -> str:
    """The spec to store: any owner line a client sent dropped, the caller's put first."""
    clean = _OWNER_LINE.sub("", spec_yaml)
    return clean if principal is None else f"{OWNER_PREFIX}{principal}\n{clean}"


def authorize_job_submit(
    authz: Authorizer, principal: str | None, role: str, user: str
) -> None:
    authz.check(principal, "submit_job", role)
    authz.check(principal, "run_as", user)
