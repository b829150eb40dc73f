"""Job specs fuzzed against a running master's Jobs service (Submit, Update, Plan): YAML
text at random, random YAML documents, spec-shaped mappings with hostile values, and known
YAML attacks (alias bombs, deep nesting, tags, over-size). Same properties as every RPC: a
clear answer, no crash, no hang, and a refused spec changes nothing."""

from __future__ import annotations

from typing import Any

import grpc
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mesoslite._proto.v1 import jobs_pb2
from tests.fuzz.conftest import FuzzTarget
from tests.fuzz.harness import METHODS, call, check_answer, fingerprint, still_answers
from tests.fuzz.strategies import PATHISH, hostile_text
from tests.fuzz.test_fuzz_rpcs import FUZZ_SETTINGS

SPEC_METHODS = [m for m in METHODS if m.path.endswith(("Jobs/Submit", "Jobs/Update", "Jobs/Plan"))]
KEYS = [
    "name", "type", "command", "resources", "instances", "role", "env", "user", "retries",
    "constraints", "kill_grace_period_s", "labels", "priority", "max_runtime_s",
    "active_deadline_s", "schedule", "timezone", "health_check", "restart", "max_unavailable",
]


def _alias_bomb(levels: int = 9) -> str:
    lines = ["name: bomb", "type: batch", "command: sleep 60", 'l0: &l0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    lines.append(f"labels: {{x: *l{levels - 1}}}")
    return "\n".join(lines)


ATTACKS = [
    _alias_bomb(),
    "a: " + "[" * 5000 + "]" * 5000,  # nesting far past the 64 levels allowed
    "name: x\ntype: batch\ncommand: !!python/object/apply:os.system ['true']",
    "!!binary AAAA",
    "name: x\ntype: batch\ncommand: " + "y" * 2_000_000,  # over the 1 MB spec limit
    "\x00", "---\n---\n---", "? [a, b]\n: c", "name: &x x\ntype: *x\ncommand: *x",
    "%YAML 9.9\n---\nname: x", "\ufeffname: x", "'" * 10_000,
    # Every unknown key is named in the error: a 750 KB message lost in a too-large trailer.
    "name: x\ntype: batch\ncommand: a\n" + "".join(f"k{i}{'y' * 30}: 1\n" for i in range(3000)),
    "name: x\ntype: batch\ncommand: a\nrole: " + "é" * 100_000,
]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), hostile_text(huge=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(hostile_text(huge=False), inner, max_size=4),
    max_leaves=12,
)
# Commands a spec that happens to be valid may run on the agent: harmless ones only.
commands = st.sampled_from(["sleep 60", ["sleep", "60"], *PATHISH, [], [""], ["/", ".."]])
spec_shaped = st.fixed_dictionaries(
    {
        "name": st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
                          hostile_text(huge=False)),
        "type": st.sampled_from(["batch", "service", "cron", "", "BATCH", 1]),
        "command": commands,
    },
    optional={k: values for k in KEYS[3:]},
)


def _dump(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return str(doc)


spec_texts = st.one_of(
    st.text(max_size=300),
    values.map(_dump),
    spec_shaped.map(_dump),
    spec_shaped.map(lambda d: _dump({**d, "command": "sleep 60", "instances": 1})),
    st.sampled_from(ATTACKS),
)


@FUZZ_SETTINGS
@given(method=st.sampled_from(SPEC_METHODS), spec=spec_texts, source=hostile_text())
def test_fuzzed_job_specs_get_ok_or_a_clear_status_and_refusals_change_nothing(
    fuzz_target: FuzzTarget, method: Any, spec: str, source: str
) -> None:
    before = fingerprint(fuzz_target.client)
    request = jobs_pb2.SubmitJobRequest(spec_yaml=spec, source=source)
    outcome = call(fuzz_target.channel, method, request)
    check_answer(method, outcome)
    still_answers(fuzz_target.client)
    if outcome.code != grpc.StatusCode.OK or method.path.endswith("/Plan"):
        assert fingerprint(fuzz_target.client) == before, f"{method} changed state"


def test_known_yaml_attacks_are_refused_clearly(fuzz_target: FuzzTarget) -> None:
    submit = next(m for m in SPEC_METHODS if m.path.endswith("/Submit"))
    for spec in ATTACKS:
        before = fingerprint(fuzz_target.client)
        outcome = call(fuzz_target.channel, submit, jobs_pb2.SubmitJobRequest(spec_yaml=spec))
        check_answer(submit, outcome)
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (spec[:60], outcome)
        assert fingerprint(fuzz_target.client) == before
    still_answers(fuzz_target.client)
