"""The master's authorizer: the ACLs in force (`--acls`, reloaded on SIGHUP) and the check
every service calls before it changes or shows anything.

A refusal raises `PermissionDeniedError` whose message names the principal, the action, the
object and the rule that decided (or `default: ...`); services call the check before
touching state, so a refused call changes nothing.
"""

from __future__ import annotations

import logging

from mesoslite.errors import ConfigError, PermissionDeniedError
from mesoslite.security.acl import Acls, Decision
from mesoslite.security.acl_file import parse_acls

logger = logging.getLogger(__name__)


class Authorizer:
    """Args:
    acls_path: the `--acls` file; "" for no rules (the defaults of `security/acl.py` only).
    """

    def __init__(self, acls_path: str = "") -> None:
        self.path = acls_path
        self.acls = load_acls(acls_path) if acls_path else Acls()

    def decide(self, principal: str | None, action: str, obj: str) -> Decision:
        if principal is None and not self.acls.rules:
            return _OPEN  # authentication off, no rules: nothing to check (the common case)
        return self.acls.decide(principal, action, obj)

    def check(self, principal: str | None, action: str, obj: str = "") -> None:
        """Raise `PermissionDeniedError` unless `principal` may do `action` to `obj`."""
        decision = self.decide(principal, action, obj)
        if not decision.allowed:
            reason = decision.reason(principal, action, obj)
            logger.info("permission denied %s", reason)
            raise PermissionDeniedError(reason)

    def reload(self) -> bool:
        """Read the `--acls` file again. A bad or unreadable file keeps the rules in force and
        logs why; returns whether the new rules are in force."""
        if not self.path:
            logger.info("acls reload asked, but the master runs without --acls")
            return False
        try:
            acls = load_acls(self.path)
        except ConfigError as e:
            logger.error("acls reload failed, keeping the %d rule(s) in force: %s",
                         len(self.acls.rules), e.message)
            return False
        self.acls = acls
        logger.info("acls reloaded path=%s rules=%d", self.path, len(acls.rules))
        return True


_OPEN = Decision(True, "default: allowed (no authenticated principal)")


def load_acls(path: str) -> Acls:
    """Read and parse `--acls`; `ConfigError` naming the file and every problem."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"--acls: cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--acls: {path} is not UTF-8 text") from None
    return parse_acls(text, path)
