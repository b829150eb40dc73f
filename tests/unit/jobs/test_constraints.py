"""`jobs/constraints.py`: Marathon's operators, agents lacking attributes, and the explanations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mesoslite.jobs.constraints import agent_fields, explain_unplaceable, violations
from mesoslite.jobs.model import Constraint, ConstraintOp

Op = ConstraintOp
AGENTS: list[tuple[str, dict[str, str]]] = [
    ("host-a", {"rack": "r1", "zone": "z1"}),
    ("host-b", {"rack": "r1", "zone": "z2"}),
    ("host-c", {"rack": "r2", "zone": "z2"}),
    ("host-d", {"zone": "z3"}),  # no rack
]


def on(*hosts: str) -> list[dict[str, str]]:
    """The placed-instances list for instances on these hosts (repeats allowed)."""
    attrs = dict(AGENTS)
    return [agent_fields(h, attrs[h]) for h in hosts]


def allowed(
    constraints: Sequence[Constraint],
    placed: Sequence[Mapping[str, str]],
    all_values: Mapping[str, set[str]] | None = None,
) -> list[str]:
    return [
        host
        for host, attrs in AGENTS
        if violations(constraints, host, attrs, placed, all_values=all_values) is None
    ]


def test_no_constraints_allow_every_agent() -> None:
    assert allowed([], on("host-a", "host-a")) == ["host-a", "host-b", "host-c", "host-d"]


def test_hostname_unique_allows_one_instance_per_host() -> None:
    c = [Constraint("hostname", Op.UNIQUE)]
    assert allowed(c, on("host-a", "host-c")) == ["host-b", "host-d"]
    assert violations(c, "host-a", {}, on("host-a")) == (
        "hostname UNIQUE: an instance already runs on host-a"
    )


def test_attribute_unique_allows_one_instance_per_value() -> None:
    c = [Constraint("rack", Op.UNIQUE)]
    assert allowed(c, on("host-a")) == ["host-c"]  # host-d has no rack
    assert violations(c, "host-b", {"rack": "r1"}, on("host-a")) == (
        "rack UNIQUE: an instance already runs on rack r1"
    )


def test_cluster_pins_to_one_value() -> None:
    c = [Constraint("zone", Op.CLUSTER, "z2")]
    assert allowed(c, []) == ["host-b", "host-c"]
    assert violations(c, "host-a", {"zone": "z1"}, []) == "zone CLUSTER z2: zone is 'z1'"
    assert allowed([Constraint("hostname", Op.CLUSTER, "host-c")], []) == ["host-c"]


def test_like_and_unlike_match_the_whole_value() -> None:
    assert allowed([Constraint("hostname", Op.LIKE, "host-[ab]")], []) == ["host-a", "host-b"]
    # A partial match is not a match.
    assert allowed([Constraint("hostname", Op.LIKE, "host")], []) == []
    assert allowed([Constraint("zone", Op.UNLIKE, "z[12]")], []) == ["host-d"]
    assert violations([Constraint("rack", Op.LIKE, "r2")], "host-a", {"rack": "r1"}, []) == (
        "rack LIKE r2: rack 'r1' does not match"
    )


def test_an_agent_lacking_the_attribute_qualifies_only_for_unlike() -> None:
    for op, value in [
        (Op.UNIQUE, ""),
        (Op.CLUSTER, "r1"),
        (Op.LIKE, ".*"),
        (Op.MAX_PER, "5"),
        (Op.GROUP_BY, ""),
    ]:
        reason = violations([Constraint("rack", op, value)], "host-d", {"zone": "z3"}, [])
        assert reason is not None and "agent host-d has no attribute 'rack'" in reason, op
    assert violations([Constraint("rack", Op.UNLIKE, "r1")], "host-d", {}, []) is None


def test_max_per_limits_instances_per_value() -> None:
    c = [Constraint("rack", Op.MAX_PER, "2")]
    assert allowed(c, on("host-a")) == ["host-a", "host-b", "host-c"]
    assert allowed(c, on("host-a", "host-b")) == ["host-c"]
    assert violations(c, "host-a", {"rack": "r1"}, on("host-a", "host-b")) == (
        "rack MAX_PER 2: rack r1 already has 2"
    )


def test_group_by_spreads_over_the_groups_seen() -> None:
    c = [Constraint("rack", Op.GROUP_BY)]
    assert allowed(c, []) == ["host-a", "host-b", "host-c"]
    assert allowed(c, on("host-a", "host-c")) == ["host-a", "host-b", "host-c"]
    assert allowed(c, on("host-a", "host-c", "host-b")) == ["host-c"]


def test_group_by_without_all_values_places_in_a_used_group_once_n_is_unknown() -> None:
    # Marathon: with only the placed instances known, one group is the emptiest.
    c = [Constraint("rack", Op.GROUP_BY)]
    assert allowed(c, on("host-a")) == ["host-a", "host-b", "host-c"]


def test_group_by_with_all_values_spreads_to_groups_without_instances() -> None:
    c = [Constraint("rack", Op.GROUP_BY)]
    racks = {"rack": {"r1", "r2"}}
    assert allowed(c, on("host-a"), racks) == ["host-c"]
    reason = violations(c, "host-b", {"rack": "r1"}, on("host-a"), all_values=racks)
    assert reason == "rack GROUP_BY: rack r1 has 1, r2 has 0"


def test_group_by_n_waits_for_n_groups() -> None:
    c = [Constraint("rack", Op.GROUP_BY, "3")]
    assert allowed(c, on("host-a", "host-c")) == []
    reason = violations(c, "host-a", {"rack": "r1"}, on("host-a", "host-c"))
    assert reason == "rack GROUP_BY 3: only 2 of 3 rack groups known and rack r1 already has 1"
    assert allowed([Constraint("zone", Op.GROUP_BY, "3")], on("host-a", "host-c", "host-d")) == [
        "host-a",
        "host-b",
        "host-c",
        "host-d",
    ]


def test_every_constraint_must_hold_and_the_first_failure_is_named() -> None:
    c = [Constraint("zone", Op.CLUSTER, "z2"), Constraint("hostname", Op.UNIQUE)]
    assert allowed(c, on("host-b")) == ["host-c"]
    assert violations(c, "host-a", {"zone": "z1"}, on("host-a")) == (
        "zone CLUSTER z2: zone is 'z1'"
    )


def test_placed_instances_without_the_attribute_do_not_count() -> None:
    c = [Constraint("rack", Op.UNIQUE)]
    assert allowed(c, on("host-d", "host-d")) == ["host-a", "host-b", "host-c"]


# ------------------------------------------------------------------------------- explain


def test_explains_the_fourth_instance_of_a_unique_job_on_three_agents() -> None:
    three = AGENTS[:3]
    c = [Constraint("hostname", Op.UNIQUE)]
    assert explain_unplaceable(c, three, on("host-a", "host-b", "host-c")) == (
        "hostname UNIQUE: all 3 agents already run an instance"
    )


def test_explain_is_empty_when_an_agent_qualifies() -> None:
    c = [Constraint("hostname", Op.UNIQUE)]
    assert explain_unplaceable(c, AGENTS, on("host-a")) == ""


def test_explain_with_no_agents() -> None:
    assert explain_unplaceable([], [], []) == "no agents are registered"


def test_explain_mixed_reasons_per_constraint() -> None:
    c = [Constraint("rack", Op.CLUSTER, "r1"), Constraint("hostname", Op.UNIQUE)]
    assert explain_unplaceable(c, AGENTS, on("host-a", "host-b")) == (
        "no agent qualifies (4 agents): rack CLUSTER r1: 1 agent has another rack, "
        "1 agent lacks the attribute 'rack'; hostname UNIQUE: 2 agents already run an instance"
    )


def test_explain_attribute_unique_and_cluster() -> None:
    assert explain_unplaceable([Constraint("zone", Op.CLUSTER, "z9")], AGENTS, []) == (
        "zone CLUSTER z9: all 4 agents have another zone"
    )
    three = AGENTS[:3]
    assert explain_unplaceable([Constraint("rack", Op.UNIQUE)], three, on("host-a", "host-c")) == (
        "rack UNIQUE: all 3 agents are in a rack that already has an instance"
    )
    assert (
        explain_unplaceable([Constraint("rack", Op.MAX_PER, "1")], AGENTS[3:], [])
        == "rack MAX_PER 1: the only agent lacks the attribute 'rack'"
    )


def test_explain_group_by() -> None:
    c = [Constraint("rack", Op.GROUP_BY)]
    racks = {"rack": {"r1", "r2"}}
    # host-a and host-c run one (host-a two): host-b is the only agent UNIQUE allows, and r1
    # already has more than r2.
    both = [Constraint("hostname", Op.UNIQUE), *c]
    assert explain_unplaceable(
        both, AGENTS[:3], on("host-a", "host-c", "host-a"), all_values=racks
    ) == (
        "no agent qualifies (3 agents): hostname UNIQUE: 2 agents already run an instance; "
        "rack GROUP_BY: 1 agent is in fuller rack groups"
    )
    assert explain_unplaceable(
        [Constraint("rack", Op.GROUP_BY, "3")], AGENTS[:3], on("host-a", "host-c")
    ) == (
        "rack GROUP_BY 3: all 3 agents are in rack groups already used and fewer groups are "
        "known than wanted; waiting for an agent with a new rack"
    )
