"""`jobs/spec.py`: YAML job specs, their defaults, and a clear error for each kind of mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mesoslite.errors import ValidationError
from mesoslite.jobs.model import (
    ConcurrencyPolicy,
    Constraint,
    ConstraintOp,
    JobType,
    RestartPolicy,
    RetryPolicy,
)
from mesoslite.jobs.spec import parse_job_spec, validate_job_spec
from mesoslite.model import HealthCheckSpec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "jobs"

BATCH = "name: report\ntype: batch\ncommand: ./report.sh\n"
SERVICE = "name: web\ntype: service\ncommand: ./serve\n"
CRON = 'name: nightly\ntype: cron\ncommand: ./clean\nschedule: "0 3 * * *"\n'


def parse(text: str) -> object:
    return parse_job_spec(textwrap.dedent(text))


def error(text: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_job_spec(textwrap.dedent(text), source="job.yaml")
    return info.value


def assert_error(text: str, field: str, says: str) -> None:
    e = error(text)
    assert e.field == field, str(e)
    assert says in str(e), str(e)


# ------------------------------------------------------------------------------- valid specs


def test_minimal_batch_job_gets_the_defaults() -> None:
    spec = parse_job_spec(BATCH)
    assert spec.name == "report"
    assert spec.type is JobType.BATCH
    assert spec.command.shell and spec.command.value == "./report.sh"
    assert spec.resources.scalar("cpus") == 0.1
    assert spec.resources.scalar("mem") == 32
    assert spec.resources.scalar("disk") == 0
    assert spec.instances == 1
    assert spec.role == "*"
    assert spec.env == {} and spec.labels == {}
    assert spec.retries == RetryPolicy()
    assert spec.active_deadline_s is None
    assert spec.constraints == ()
    assert spec.kill_grace_period_s == 3.0
    assert spec.service is None and spec.cron is None and spec.health_check is None


def test_full_batch_job() -> None:
    spec = parse_job_spec(
        BATCH
        + textwrap.dedent(
            """
            instances: 4
            role: eng/ml
            user: nobody
            resources: {cpus: 2, mem: 1024.5, disk: 100, gpus: 1}
            env: {A: x, N: 3, F: 1.5, B: true}
            retries: {limit: 5, backoff_s: 0.5, factor: 3, max_backoff_s: 10}
            active_deadline_s: 3600
            kill_grace_period_s: 0
            labels: {team: data, tier: 1}
            """
        )
    )
    assert spec.instances == 4
    assert spec.role == "eng/ml"
    assert spec.resources.scalar("cpus") == 2
    assert spec.resources.scalar("mem") == 1024.5
    assert spec.resources.scalar("disk") == 100
    assert spec.resources.scalar("gpus") == 1
    assert spec.env == {"A": "x", "N": "3", "F": "1.5", "B": "true"}
    assert spec.command.environment == spec.env
    assert spec.command.user == "nobody"
    assert spec.retries == RetryPolicy(limit=5, backoff_s=0.5, factor=3, max_backoff_s=10)
    assert spec.active_deadline_s == 3600
    assert spec.kill_grace_period_s == 0
    assert spec.labels == {"team": "data", "tier": "1"}


def test_omitted_resources_keep_their_defaults_one_by_one() -> None:
    spec = parse_job_spec(BATCH + "resources: {cpus: 1}\n")
    assert spec.resources.scalar("cpus") == 1
    assert spec.resources.scalar("mem") == 32


def test_command_may_be_an_argv_list_and_numbers_become_strings() -> None:
    spec = parse_job_spec("name: a\ntype: batch\ncommand: [sleep, 10]\n")
    assert not spec.command.shell
    assert spec.command.argv == ("sleep", "10")


def test_retries_may_be_a_bare_limit() -> None:
    assert parse_job_spec(BATCH + "retries: 3\n").retries == RetryPolicy(limit=3)


def test_max_backoff_defaults_to_at_least_the_backoff() -> None:
    spec = parse_job_spec(BATCH + "retries: {limit: 1, backoff_s: 120}\n")
    assert spec.retries.max_backoff_s == 120


def test_service_job() -> None:
    spec = parse_job_spec(
        SERVICE
        + textwrap.dedent(
            """
            instances: 3
            restart: on-failure
            max_unavailable: 2
            health_check: {kind: tcp, port: 8080, interval_s: 2}
            """
        )
    )
    assert spec.type is JobType.SERVICE
    assert spec.service is not None
    assert spec.service.restart is RestartPolicy.ON_FAILURE
    assert spec.service.max_unavailable == 2
    assert spec.health_check == HealthCheckSpec(kind="tcp", port=8080, interval_s=2)


def test_service_defaults() -> None:
    spec = parse_job_spec(SERVICE)
    assert spec.service is not None
    assert spec.service.restart is RestartPolicy.ALWAYS and spec.service.max_unavailable == 1
    assert spec.health_check is None


@pytest.mark.parametrize(
    ("check", "want"),
    [
        (
            "{kind: command, command: 'curl -f localhost'}",
            HealthCheckSpec("command", "curl -f localhost"),
        ),
        ("{kind: http, port: 80, path: /health}", HealthCheckSpec("http", port=80, path="/health")),
        (
            "{kind: http, port: 80, delay_s: 1, timeout_s: 3, grace_period_s: 0, "
            "consecutive_failures: 1}",
            HealthCheckSpec(
                "http", port=80, delay_s=1, timeout_s=3, grace_period_s=0, consecutive_failures=1
            ),
        ),
    ],
)
def test_health_check_kinds(check: str, want: HealthCheckSpec) -> None:
    assert parse_job_spec(SERVICE + f"health_check: {check}\n").health_check == want


def test_cron_job() -> None:
    spec = parse_job_spec(
        CRON
        + textwrap.dedent(
            """
            timezone: America/New_York
            concurrency: forbid
            starting_deadline_s: 300
            keep_runs: 3
            active_deadline_s: 60
            """
        )
    )
    assert spec.type is JobType.CRON
    assert spec.cron is not None
    assert spec.cron.schedule == "0 3 * * *"
    assert spec.cron.timezone == "America/New_York"
    assert spec.cron.concurrency is ConcurrencyPolicy.FORBID
    assert spec.cron.starting_deadline_s == 300
    assert spec.cron.keep_runs == 3
    assert spec.active_deadline_s == 60
    assert spec.instances == 1


def test_cron_defaults_and_macros() -> None:
    spec = parse_job_spec(CRON.replace('"0 3 * * *"', '"@daily"') + "starting_deadline_s: null\n")
    assert spec.cron is not None
    assert spec.cron.schedule == "@daily"
    assert spec.cron.timezone == "UTC"
    assert spec.cron.concurrency is ConcurrencyPolicy.ALLOW
    assert spec.cron.starting_deadline_s is None
    assert spec.cron.keep_runs == 10


@pytest.mark.parametrize(
    ("item", "want"),
    [
        ("[hostname, UNIQUE]", Constraint("hostname", ConstraintOp.UNIQUE)),
        ("[rack, CLUSTER, r1]", Constraint("rack", ConstraintOp.CLUSTER, "r1")),
        ("[rack, MAX_PER, 2]", Constraint("rack", ConstraintOp.MAX_PER, "2")),
        ("'rack GROUP_BY'", Constraint("rack", ConstraintOp.GROUP_BY)),
        ("'rack GROUP_BY 3'", Constraint("rack", ConstraintOp.GROUP_BY, "3")),
        ("'hostname LIKE web-[0-9]+'", Constraint("hostname", ConstraintOp.LIKE, "web-[0-9]+")),
        ("'zone:UNLIKE:us-east-.*'", Constraint("zone", ConstraintOp.UNLIKE, "us-east-.*")),
        ("'hostname:unique'", Constraint("hostname", ConstraintOp.UNIQUE)),
        ("{field: rack, op: CLUSTER, value: r2}", Constraint("rack", ConstraintOp.CLUSTER, "r2")),
        ("{field: rack, op: MAX_PER, value: 02}", Constraint("rack", ConstraintOp.MAX_PER, "2")),
    ],
)
def test_constraint_forms(item: str, want: Constraint) -> None:
    assert parse_job_spec(BATCH + f"constraints: [{item}]\n").constraints == (want,)


def test_instances_above_the_number_of_hosts_with_hostname_unique_parse() -> None:
    # Placement is checked at run time; the spec alone cannot know the agents.
    spec = parse_job_spec(BATCH + "instances: 50\nconstraints: [[hostname, UNIQUE]]\n")
    assert spec.instances == 50


@pytest.mark.parametrize("name", ["batch.yaml", "service.yaml", "cron.yaml"])
def test_examples_parse(name: str) -> None:
    path = EXAMPLES / name
    spec = parse_job_spec(path.read_text(), source=str(path))
    assert spec.type.value == name.removesuffix(".yaml")
    assert validate_job_spec(path.read_text()) == []


def test_examples_show_what_they_promise() -> None:
    batch = parse_job_spec((EXAMPLES / "batch.yaml").read_text())
    assert batch.retries.limit > 0
    assert Constraint("hostname", ConstraintOp.UNIQUE) in batch.constraints
    service = parse_job_spec((EXAMPLES / "service.yaml").read_text())
    assert service.health_check is not None and service.health_check.kind in ("http", "command")
    cron = parse_job_spec((EXAMPLES / "cron.yaml").read_text())
    assert cron.cron is not None and cron.cron.timezone != "UTC"
    assert cron.cron.concurrency is ConcurrencyPolicy.FORBID


# ------------------------------------------------------------------------------- the document


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_an_empty_file_is_an_error(text: str) -> None:
    assert_error(text, "", "job.yaml is empty; a job needs at least name, type and command")


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "a list"), ("hello\n", "'hello'")])
def test_a_document_that_is_not_a_mapping_is_an_error(text: str, kind: str) -> None:
    assert_error(
        text, "", f"job.yaml must be a mapping of keys like name, type and command, got {kind}"
    )


def test_yaml_syntax_errors_give_the_line() -> None:
    assert_error("name: a\ntype: [batch\n", "", "job.yaml is not valid YAML at line 3")
    assert_error("name: a\n  type: batch\n", "", "is not valid YAML at line 2")


def test_a_key_given_twice_is_an_error() -> None:
    assert_error(BATCH + "name: other\n", "", "at line 4, column 1: key 'name' is given twice")


def test_an_unquoted_schedule_gets_a_hint() -> None:
    e = error(CRON.replace('"0 3 * * *"', "*/5 * * * *"))
    assert "quote values starting with * or @" in str(e)
    e = error(CRON.replace('"0 3 * * *"', "@daily"))
    assert "quote values starting with * or @" in str(e)


def test_non_string_keys_are_errors() -> None:
    assert_error(BATCH + "1: x\n", "", "keys must be strings, got 1")
    assert_error(BATCH + "env: {on: x}\n", "env", "got True (YAML reads yes/no/on/off")


def test_a_yaml_boolean_as_a_constraint_value_gets_a_hint() -> None:
    assert_error(
        BATCH + "constraints: [[ssd, CLUSTER, yes]]\n",
        "constraints[0]",
        "got True (YAML reads yes/no/on/off as true/false: quote it)",
    )
    spec = parse_job_spec(BATCH + "constraints: [[ssd, CLUSTER, 'yes']]\n")
    assert spec.constraints == (Constraint("ssd", ConstraintOp.CLUSTER, "yes"),)


# ------------------------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        (
            "retires: 3",
            "retires",
            "unknown key 'retires' (did you mean 'retries'?); allowed: name,",
        ),
        ("retries: {limt: 3}", "retries.limt", "unknown key 'limt' (did you mean 'limit'?)"),
        ("resources: {cpu: 1}", "resources.cpu", "unknown resource 'cpu' (did you mean 'cpus'?)"),
        ("resources: {ports: 2}", "resources.ports", "allowed: cpus, mem, disk, gpus"),
        ("instances: three", "instances", "expected an integer from 1 to 10000, got 'three'"),
        ("instances: 0", "instances", "expected an integer from 1 to 10000, got 0"),
        ("instances: 1.5", "instances", "got 1.5"),
        ("instances: true", "instances", "got True"),
        ("instances: 10001", "instances", "got 10001"),
        ("resources: {cpus: 0}", "resources.cpus", "expected a number > 0, got 0"),
        ("resources: {cpus: -1}", "resources.cpus", "expected a number > 0, got -1"),
        ("resources: {cpus: '1'}", "resources.cpus", "expected a number > 0, got '1'"),
        ("resources: {cpus: .nan}", "resources.cpus", "got nan"),
        ("resources: {cpus: 1.0e+13}", "resources.cpus", "<= 1e+12, got 1e+13"),
        ("resources: {cpus: 1e3}", "resources.cpus", "got '1e3' (text, not a number"),
        ("resources: {mem: -1}", "resources.mem", "expected a number > 0, got -1"),
        ("resources: {cpus: 0.0001}", "resources.cpus", "expected at least 0.001, got 0.0001"),
        ("resources: {mem: 0}", "resources.mem", "expected a number > 0, got 0"),
        ("resources: {disk: -5}", "resources.disk", "expected a number >= 0, got -5"),
        ("resources: {gpus: 0.5}", "resources.gpus", "expected an integer from 0 to"),
        ("resources: 2", "resources", "expected a mapping, got 2"),
        ("resources:", "resources", "expected a mapping, got nothing (null)"),
        (
            "role: Eng",
            "role",
            "expected '*' or path segments of [a-z0-9_-] like 'eng/ml', got 'Eng'",
        ),
        ("role: eng//ml", "role", "got 'eng//ml'"),
        ("env: {A: [1]}", "env.A", "expected a string, got a list"),
        ("env: {A: null}", "env.A", "expected a string, got nothing (null)"),
        ("env: {1A: x}", "env.1A", "names are letters, digits and _"),
        ("env: [A]", "env", "expected a mapping, got a list"),
        ("labels: {a: {b: c}}", "labels.a", "expected a string, got a mapping"),
        ("user: ''", "user", "must not be empty"),
        ("user: 'a b'", "user", "expected a user name, got 'a b'"),
        ("retries: -1", "retries", "expected an integer from 0 to 1000, got -1"),
        ("retries: lots", "retries", "expected a retry limit (an integer from 0 to 1000) or"),
        ("retries: {factor: 0.5}", "retries.factor", "expected a number >= 1, got 0.5"),
        ("retries: {backoff_s: -1}", "retries.backoff_s", "expected a number >= 0, got -1"),
        (
            "retries: {backoff_s: 10, max_backoff_s: 5}",
            "retries.max_backoff_s",
            "must be >= backoff_s (10), got 5",
        ),
        ("active_deadline_s: 0", "active_deadline_s", "expected a number > 0, got 0"),
        ("kill_grace_period_s: -1", "kill_grace_period_s", "expected a number >= 0, got -1"),
        ("kill_grace_period_s: 1.0e+9", "kill_grace_period_s", "<= 3.1536e+07"),
        ("constraints: [hostname, UNIQUE]", "constraints[0]", 'expected ["FIELD", "OP"]'),
        ("constraints: {a: b}", "constraints", "expected a list of constraints, got a mapping"),
        ("constraints: [[rack]]", "constraints[0]", "got ['rack']"),
        (
            "constraints: [[rack, NEAR]]",
            "constraints[0]",
            "the operator must be one of UNIQUE, CLUSTER",
        ),
        ("constraints: [[rack, CLUSTER]]", "constraints[0]", "rack CLUSTER needs a value"),
        ("constraints: [[rack, LIKE]]", "constraints[0]", "rack LIKE needs a value"),
        ("constraints: [[rack, UNLIKE]]", "constraints[0]", "rack UNLIKE needs a value"),
        ("constraints: [[rack, MAX_PER]]", "constraints[0]", "rack MAX_PER needs a value"),
        (
            "constraints: [[rack, UNIQUE, x]]",
            "constraints[0]",
            "rack UNIQUE takes no value, got 'x'",
        ),
        ("constraints: ['rack LIKE (']", "constraints[0]", "LIKE needs a regular expression"),
        (
            "constraints: [[rack, MAX_PER, 0]]",
            "constraints[0]",
            "MAX_PER needs an integer >= 1, got '0'",
        ),
        ("constraints: [[rack, MAX_PER, x]]", "constraints[0]", "got 'x'"),
        ("constraints: ['rack:GROUP_BY:-1']", "constraints[0]", "GROUP_BY needs an integer >= 1"),
        ("constraints: [[1, UNIQUE]]", "constraints[0]", "the field must be 'hostname' or an"),
        ("constraints: [[rack, CLUSTER, [a]]]", "constraints[0]", "the value must be a string"),
        ("constraints: [{field: rack, op: UNIQUE, val: 1}]", "constraints[0].val", "unknown key"),
        ("constraints: [7]", "constraints[0]", "got 7"),
    ],
)
def test_bad_values_name_their_path_and_what_is_allowed(extra: str, field: str, says: str) -> None:
    assert_error(BATCH + extra + "\n", field, says)


def test_the_path_of_a_later_constraint() -> None:
    assert_error(
        BATCH + "constraints: [[hostname, UNIQUE], 'rack CLUSTER']\n",
        "constraints[1]",
        "rack CLUSTER needs a value",
    )


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("name: Report\ntype: batch\ncommand: x\n", "name", "expected a DNS label"),
        ("name: -a\ntype: batch\ncommand: x\n", "name", "got '-a'"),
        ("name: a-\ntype: batch\ncommand: x\n", "name", "got 'a-'"),
        ("name: a_b\ntype: batch\ncommand: x\n", "name", "got 'a_b'"),
        (f"name: {'a' * 64}\ntype: batch\ncommand: x\n", "name", "1-63 lowercase"),
        ("name: 12\ntype: batch\ncommand: x\n", "name", "expected a string, got 12"),
        (
            "name: a\ntype: daemon\ncommand: x\n",
            "type",
            "expected one of batch, service, cron, got 'daemon'",
        ),
        ("name: a\ntype: batch\ncommand: ''\n", "command", "must not be empty"),
        ("name: a\ntype: batch\ncommand: []\n", "command", "non-empty list of strings, got []"),
        (
            "name: a\ntype: batch\ncommand: [ls, [x]]\n",
            "command[1]",
            "expected a string, got a list",
        ),
        ("name: a\ntype: batch\ncommand: {a: b}\n", "command", "expected a shell string or a list"),
        ("type: batch\ncommand: x\n", "name", "is required: a DNS label"),
        ("name: a\ncommand: x\n", "type", "is required: one of batch, service, cron"),
        ("name: a\ntype: batch\n", "command", "is required: a shell string or a list"),
        ("name: a\ntype: cron\ncommand: x\n", "schedule", "is required for cron jobs"),
    ],
)
def test_required_fields_and_their_syntax(text: str, field: str, says: str) -> None:
    assert_error(text, field, says)


def test_a_name_of_63_characters_is_fine() -> None:
    assert parse_job_spec(f"name: {'a' * 63}\ntype: batch\ncommand: x\n").name == "a" * 63


@pytest.mark.parametrize(
    ("base", "extra", "field", "says"),
    [
        (BATCH, "schedule: '@daily'", "schedule", "applies to cron jobs only, not to batch jobs"),
        (BATCH, "timezone: UTC", "timezone", "applies to cron jobs only, not to batch jobs"),
        (
            BATCH,
            "health_check: {kind: tcp, port: 1}",
            "health_check",
            "applies to service jobs only",
        ),
        (BATCH, "restart: always", "restart", "applies to service jobs only, not to batch jobs"),
        (
            CRON,
            "max_unavailable: 1",
            "max_unavailable",
            "applies to service jobs only, not to cron",
        ),
        (
            SERVICE,
            "active_deadline_s: 5",
            "active_deadline_s",
            "applies to batch and cron jobs only",
        ),
        (
            SERVICE,
            "concurrency: forbid",
            "concurrency",
            "applies to cron jobs only, not to service",
        ),
    ],
)
def test_keys_of_another_job_type_say_which_type_they_belong_to(
    base: str, extra: str, field: str, says: str
) -> None:
    assert_error(base + extra + "\n", field, says)


def test_unknown_keys_list_only_what_this_type_allows() -> None:
    e = error(BATCH + "scheduel: x\n")
    assert "allowed: name, type, command" in str(e)
    assert "schedule" not in str(e).split("allowed:")[1]
    assert "active_deadline_s" in str(e)


@pytest.mark.parametrize(
    ("check", "field", "says"),
    [
        ("{port: 80}", "health_check.kind", "is required: one of command, http, tcp"),
        ("{kind: grpc}", "health_check.kind", "expected one of command, http, tcp, got 'grpc'"),
        ("{kind: http}", "health_check.port", "is required for http checks"),
        ("{kind: tcp}", "health_check.port", "is required for tcp checks"),
        ("{kind: command}", "health_check.command", "is required for command checks"),
        ("{kind: command, command: ''}", "health_check.command", "must not be empty"),
        ("{kind: tcp, port: 70000}", "health_check.port", "expected an integer from 1 to 65535"),
        (
            "{kind: tcp, port: 1, path: /x}",
            "health_check.path",
            "applies to http checks only, not tcp",
        ),
        ("{kind: http, port: 1, command: x}", "health_check.command", "applies to command checks"),
        ("{kind: command, command: x, port: 1}", "health_check.port", "applies to http and tcp"),
        ("{kind: http, port: 1, path: health}", "health_check.path", "must start with '/'"),
        ("{kind: tcp, port: 1, interval_s: 0}", "health_check.interval_s", "a number > 0, got 0"),
        ("{kind: tcp, port: 1, timeout_s: -1}", "health_check.timeout_s", "a number > 0"),
        ("{kind: tcp, port: 1, consecutive_failures: 0}", "health_check.consecutive_failures", "1"),
        ("{kind: tcp, prot: 1}", "health_check.prot", "unknown key 'prot' (did you mean 'port'?)"),
        ("tcp", "health_check", "expected a mapping, got 'tcp'"),
    ],
)
def test_bad_health_checks(check: str, field: str, says: str) -> None:
    assert_error(SERVICE + f"health_check: {check}\n", field, says)


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        (
            "restart: sometimes",
            "restart",
            "expected one of always, on-failure, never, got 'sometimes'",
        ),
        ("max_unavailable: 0", "max_unavailable", "expected an integer from 1 to 10000, got 0"),
    ],
)
def test_bad_service_keys(extra: str, field: str, says: str) -> None:
    assert_error(SERVICE + extra + "\n", field, says)


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ('"0 25 * * *"', "schedule: hour: 25 is out of range 0-23"),
        ('"0 0 30 2 *"', "schedule: day-of-month: no month in '2' has day '30'"),
        ('"@sometimes"', "schedule: unknown macro '@sometimes'"),
        ('"* * *"', "schedule: expected 5 fields"),
        ("5", "schedule: expected a string, got 5"),
    ],
)
def test_bad_schedules_name_the_schedule(schedule: str, says: str) -> None:
    assert_error(CRON.replace('"0 3 * * *"', schedule), "schedule", says)


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        (
            "timezone: Mars/Olympus",
            "timezone",
            "unknown time zone 'Mars/Olympus'; expected an IANA",
        ),
        ("timezone: Europe", "timezone", "unknown time zone 'Europe'"),
        ("timezone: ../../etc/passwd", "timezone", "unknown time zone"),
        (
            "concurrency: never",
            "concurrency",
            "expected one of allow, forbid, replace, got 'never'",
        ),
        ("starting_deadline_s: 0", "starting_deadline_s", "expected a number > 0, got 0"),
        ("keep_runs: -1", "keep_runs", "expected an integer from 0 to 1000, got -1"),
    ],
)
def test_bad_cron_keys(extra: str, field: str, says: str) -> None:
    assert_error(CRON + extra + "\n", field, says)


# ------------------------------------------------------------------------------- all at once


def test_every_problem_is_reported_and_the_field_is_the_first_in_the_document() -> None:
    text = textwrap.dedent(
        """
        name: Bad_Name
        type: batch
        command: ./x
        retires: 3
        resources: {cpus: 0, mem: 64}
        constraints: [[hostname, UNIQUE], [rack, CLUSTER]]
        schedule: "@daily"
        """
    )
    e = error(text)
    assert e.field == "name"
    msg = str(e)
    for part in [
        "name: expected a DNS label",
        "retires: unknown key 'retires'",
        "resources.cpus: expected a number > 0, got 0",
        "constraints[1]: rack CLUSTER needs a value",
        "schedule: applies to cron jobs only",
    ]:
        assert part in msg
    problems = validate_job_spec(text)
    assert [f for f, _ in problems] == [
        "name",
        "retires",
        "resources.cpus",
        "constraints[1]",
        "schedule",
    ]


def test_validate_returns_nothing_for_a_good_spec_and_the_yaml_error_for_a_broken_one() -> None:
    assert validate_job_spec(BATCH) == []
    assert validate_job_spec("", source="x.yaml") == [
        ("", "x.yaml is empty; a job needs at least name, type and command")
    ]


def test_a_command_yaml_read_as_a_boolean_says_to_quote_it() -> None:
    with pytest.raises(ValidationError) as e:
        parse_job_spec("name: t\ntype: batch\ncommand: true\n")
    assert e.value.field == "command" and "quote it" in e.value.message
