"""Why each framework was (or was not) offered something in a pass, as the operator reads
it (`mesoslite framework explain`): one reason per framework, and per role for frameworks
in several roles."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mesoslite.ids import FrameworkId

# A framework in one of its roles: the allocator's client.
Client = tuple[FrameworkId, str]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def client_reasons(
    agents: Mapping[Client, int],
    tasks: Mapping[Client, int],
    candidates: Mapping[str, list[FrameworkId]],
    why: Mapping[Client, str],
    otherwise: Callable[[Client], str],
) -> dict[Client, str]:
    """A reason for every candidate: what it was offered (`agents`: how many agents each
    client was granted from; `tasks`: the tasks' worth in them, absent for none), else why
    not (`why`), else `otherwise(client)`."""
    out: dict[Client, str] = {}
    for role, members in candidates.items():
        for fid in members:
            key = (fid, role)
            if key in agents:
                text = f"offered {plural(agents[key], 'agent')}"
                if tasks.get(key):
                    text += f" ({plural(tasks[key], 'task')}' worth of its demands)"
                out[key] = text
            elif why.get(key):
                out[key] = why[key]
            else:
                out[key] = otherwise(key)
    return out


def by_framework(
    reasons: Mapping[Client, str],
) -> tuple[dict[FrameworkId, str], dict[FrameworkId, dict[str, str]]]:
    """(one reason per framework, and per role for frameworks in several roles); a
    framework in several roles gets its roles' reasons joined: `a: ...; b: ...`."""
    by_fw: dict[FrameworkId, dict[str, str]] = {}
    for (fid, role), text in reasons.items():
        by_fw.setdefault(fid, {})[role] = text
    out: dict[FrameworkId, str] = {}
    role_reasons: dict[FrameworkId, dict[str, str]] = {}
    for fid, per_role in by_fw.items():
        if len(per_role) == 1:
            out[fid] = next(iter(per_role.values()))
            continue
        ordered = dict(sorted(per_role.items()))
        role_reasons[fid] = ordered
        out[fid] = "; ".join(f"{role}: {text}" for role, text in ordered.items())
    return out, role_reasons
