"""The ACL engine (`security/acl.py`), its file (`acl_file.py`) and the authorizer's reload."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mesoslite.errors import ConfigError, PermissionDeniedError
from mesoslite.security.acl import (
    ACTIONS,
    DEFAULT_ALLOW,
    DEFAULT_OFF,
    DEFAULT_OPERATOR,
    DEFAULT_OWN,
    DEFAULT_ROOT,
    OPERATOR_ACTIONS,
    Acls,
    Rule,
)
from mesoslite.security.acl_file import parse_acls
from mesoslite.security.authz import Authorizer
from mesoslite.security.authz_master import OWNER_PREFIX, job_owner, with_owner

NONE = Acls()


@pytest.mark.parametrize("action", ["kill_task", "teardown_framework", "kill_job", "read_files"])
def test_by_default_a_principal_acts_on_its_own_things_only(action: str) -> None:
    own = NONE.decide("alice", action, "alice")
    others = NONE.decide("alice", action, "bob")
    assert (own.allowed, own.rule) == (True, DEFAULT_OWN)
    assert (others.allowed, others.rule) == (False, DEFAULT_OWN)


@pytest.mark.parametrize("action", sorted(OPERATOR_ACTIONS))
def test_by_default_operator_actions_need_a_rule(action: str) -> None:
    decision = NONE.decide("alice", action, "eng")
    assert (decision.allowed, decision.rule) == (False, DEFAULT_OPERATOR)


@pytest.mark.parametrize("user", ["root", "0"])
def test_by_default_running_as_root_is_denied(user: str) -> None:
    assert NONE.decide("alice", "run_as", user).rule == DEFAULT_ROOT
    assert not NONE.decide("alice", "run_as", user).allowed
    assert NONE.decide("alice", "run_as", "nobody").allowed


@pytest.mark.parametrize(
    ("action", "obj"),
    [("register_framework", "eng"), ("submit_job", "*"), ("read_state", ""),
     ("register_agent", "host1"), ("run_as", "")],
)
def test_by_default_the_rest_is_allowed(action: str, obj: str) -> None:
    assert NONE.decide("alice", action, obj) == NONE.decide("bob", action, obj)
    assert NONE.decide("alice", action, obj).rule == DEFAULT_ALLOW


def test_without_a_principal_only_rules_can_deny() -> None:
    for action in ACTIONS:
        assert NONE.decide(None, action, "root").rule == DEFAULT_OFF
    deny_root = Acls((Rule("no-root", False, actions=("run_as",), objects=("root",)),))
    assert not deny_root.decide(None, "run_as", "root").allowed
    named = Acls((Rule("alice-only", False, principals=("alice",)),))
    assert named.decide(None, "run_as", "root").allowed  # a named rule needs a principal


def test_the_first_matching_rule_decides() -> None:
    acls = Acls((
        Rule("ml-yes", True, ("alice",), ("register_framework",), ("eng/ml",)),
        Rule("eng-no", False, ("*",), ("register_framework",), ("eng/*",)),
    ))
    assert acls.decide("alice", "register_framework", "eng/ml").rule == "rule 'ml-yes'"
    refused = acls.decide("alice", "register_framework", "eng/web")
    assert (refused.allowed, refused.rule) == (False, "rule 'eng-no'")
    assert acls.decide("alice", "register_framework", "ops").rule == DEFAULT_ALLOW


def test_a_rule_can_allow_others_things_and_operator_actions() -> None:
    acls = Acls((Rule("ops", True, ("ops",), ("kill_task", "set_quota"), ("*",)),))
    assert acls.decide("ops", "kill_task", "bob").allowed
    assert acls.decide("ops", "set_quota", "eng").allowed
    assert not acls.decide("bob", "kill_task", "alice").allowed


def test_a_refusal_names_who_what_and_the_rule() -> None:
    decision = NONE.decide("bob", "kill_job", "alice")
    assert decision.reason("bob", "kill_job", "alice") == (
        "principal 'bob' may not kill_job 'alice': " + DEFAULT_OWN
    )
    assert decision.reason(None, "read_state", "") == (
        "an unauthenticated caller may not read_state: " + DEFAULT_OWN
    )


def test_an_unknown_action_is_a_bug_not_a_denial() -> None:
    with pytest.raises(ValueError, match="unknown action 'fly'"):
        NONE.decide("alice", "fly", "")


# ---------------------------------------------------------------------------- the file

GOOD = """\
rules:
  - name: no-prod
    principals: alice
    actions: [register_framework, submit_job]
    objects: [prod, "prod/*"]
    effect: deny
  - principals: ["*"]
    actions: "*"
    effect: allow
"""


def test_a_file_parses_into_ordered_rules() -> None:
    acls = parse_acls(GOOD, "acls.yaml")
    assert acls.rules == (
        Rule("no-prod", False, ("alice",), ("register_framework", "submit_job"),
             ("prod", "prod/*")),
        Rule("rules[1]", True, ("*",), ("*",), ("*",)),
    )
    assert not acls.decide("alice", "submit_job", "prod/batch").allowed
    assert acls.decide("alice", "set_quota", "eng").rule == "rule 'rules[1]'"


def test_an_empty_file_has_no_rules() -> None:
    assert parse_acls("", "acls.yaml") == Acls()
    assert parse_acls("rules: []\n", "acls.yaml") == Acls()


def test_every_problem_of_a_bad_file_is_named_with_its_path() -> None:
    bad = """\
rules:
  - principals: [alice]
    actions: [fly, read_state]
    effect: maybe
    colour: red
  - actions: [read_state]
    effect: deny
  - just a string
"""
    with pytest.raises(ConfigError) as info:
        parse_acls(bad, "acls.yaml")
    message = info.value.message
    for part in (
        "acls.yaml: rules[0]: unknown key(s) colour",
        "acls.yaml: rules[0].effect: must be allow or deny, got 'maybe'",
        "acls.yaml: rules[0].actions[0]: unknown action 'fly'",
        "acls.yaml: rules[1].principals: missing",
        "acls.yaml: rules[2]: must be a mapping",
    ):
        assert part in message


@pytest.mark.parametrize("text", ["rules: {a: 1}\n", "- a\n", "rules: [\n", "other: []\n"])
def test_a_file_of_the_wrong_shape_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^acls\.yaml: "):
        parse_acls(text, "acls.yaml")


# ---------------------------------------------------------------------------- the authorizer


def test_check_raises_permission_denied_with_the_reason() -> None:
    with pytest.raises(PermissionDeniedError) as info:
        Authorizer().check("alice", "set_weight", "eng")
    assert info.value.message == (
        "principal 'alice' may not set_weight 'eng': " + DEFAULT_OPERATOR
    )
    Authorizer().check(None, "set_weight", "eng")  # authentication off, no rules: allowed


def test_reload_takes_a_good_file_and_keeps_the_rules_on_a_bad_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "acls.yaml"
    path.write_text(GOOD)
    authz = Authorizer(str(path))
    assert len(authz.acls.rules) == 2
    path.write_text("rules:\n  - {name: ops, principals: [ops], actions: [set_quota], "
                    "effect: allow}\n")
    assert authz.reload() is True
    assert [r.name for r in authz.acls.rules] == ["ops"]
    kept = authz.acls
    path.write_text("rules:\n  - {principals: [ops], actions: [fly], effect: allow}\n")
    with caplog.at_level(logging.ERROR, logger="mesoslite.security.authz"):
        assert authz.reload() is False
    assert authz.acls is kept
    assert "keeping the 1 rule(s) in force" in caplog.text and "unknown action 'fly'" in caplog.text
    path.unlink()
    assert authz.reload() is False and authz.acls is kept


def test_a_bad_file_at_start_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--acls: cannot read"):
        Authorizer(str(tmp_path / "missing.yaml"))


# ---------------------------------------------------------------------------- job owners


def test_a_jobs_owner_rides_first_in_its_spec_and_cannot_be_forged() -> None:
    spec = "name: j\ntype: batch\ncommand: true\n"
    forged = f"{OWNER_PREFIX}ops\n{spec}  # mesoslite-owner: ops\n"
    stored = with_owner(forged, "alice")
    assert stored == f"{OWNER_PREFIX}alice\n{spec}"
    assert job_owner(stored) == "alice"
    assert job_owner(spec) == ""
    assert with_owner(forged, None) == spec  # authentication off: no owner, none forged
