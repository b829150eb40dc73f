"""Who a task runs as: the user it names, resolved on this host to uid, gid and groups.

A task names its user in `CommandInfo.user` (the master fills in `FrameworkInfo.user` when it
is empty). An agent running as root switches to that user (`--switch-user`, the default);
one that does not (`--no-switch-user`, or an agent that is not root) runs every task as
itself. A task that would run as root is refused unless the agent allows it
(`--allow-root-tasks`): on a root agent that is a task naming `root` (or any uid 0 name) and
a task naming no user at all.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass
from typing import Any

# POSIX portable user names (plus a trailing `$`, as Samba machine accounts use), no
# leading `-` (it would read as an option): what `useradd` accepts by default.
USER_NAME_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$")
MAX_USER_NAME = 32  # as `useradd` and the master (`CommandInfo.user`) allow
# The environment variable through which the launcher asks the wrapper to switch the command
# to a user: "UID GID G1,G2,...". The wrapper removes it before it runs the command.
RUN_AS_ENV = "MESOSLITE_RUN_AS"


def check_user_name(name: str) -> str | None:
    """Why `name` is not a valid user name, or None if it is."""
    if len(name) > MAX_USER_NAME or not USER_NAME_RE.match(name):
        return (
            f"expected a user name, got {name!r} (letters, digits, _ . -, not starting "
            f"with -, at most {MAX_USER_NAME})"
        )
    return None


class UserRefused(Exception):
    """Raised when a task cannot run as the user it names on this agent; `message` says
    why, naming the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class TaskUser:
    """A user a task is switched to: what `setgroups`/`setgid`/`setuid` take."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    def wrapper_env(self) -> str:
        """The value of `RUN_AS_ENV` for the wrapper."""
        return f"{self.uid} {self.gid} {','.join(map(str, self.groups))}"

    def popen_kwargs(self) -> dict[str, Any]:
        """`subprocess.Popen` arguments that switch the child to this user."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}


@dataclass(frozen=True, slots=True)
class RunAsPolicy:
    """How the agent treats the user a task names.

    The defaults are the daemon's: root is allowed here, and decided by the master's run_as
    ACL (which refuses root by default once authentication is on).
    """

    switch_user: bool = True
    allow_root_tasks: bool = True
    agent_uid: int = -1  # -1: this process's effective uid

    def resolve(self, name: str) -> TaskUser | None:
        """The user to switch a task naming `name` to; None: it runs as the agent.

        Raises:
            UserRefused: the task cannot run here as `name` (unknown user, root refused, a
                non-root agent asked for another user); nothing was started.
        """
        agent_uid = os.geteuid() if self.agent_uid < 0 else self.agent_uid
        if not self.switch_user:
            return None
        if agent_uid != 0:
            if not name or _uid_of(name) == agent_uid:
                return None
            raise UserRefused(
                f"cannot run the task as user {name!r}: the agent runs as uid {agent_uid}, "
                "not root, so it cannot switch users (run it as root, or with "
                "--no-switch-user to run every task as the agent's user)"
            )
        if not name:
            if self.allow_root_tasks:
                return None
            raise UserRefused(
                "the task names no user (neither CommandInfo.user nor FrameworkInfo.user) "
                "and would run as root: name a user, or start the agent with "
                "--allow-root-tasks"
            )
        problem = check_user_name(name)
        if problem is not None:
            raise UserRefused(f"user: {problem}")
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise UserRefused(f"user {name!r} does not exist on this agent") from None
        if pw.pw_uid == 0:
            if self.allow_root_tasks:
                return None
            raise UserRefused(
                f"the task would run as root (user {name!r}, uid 0) and this agent refuses "
                "root tasks: start it with --allow-root-tasks to allow them"
            )
        groups = tuple(os.getgrouplist(pw.pw_name, pw.pw_gid))
        return TaskUser(pw.pw_name, pw.pw_uid, pw.pw_gid, groups, pw.pw_dir)


def _uid_of(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None
