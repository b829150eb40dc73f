"""Issue #4 acceptance through the simulator (real allocator + `MasterState`, virtual time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.errors import ValidationError
from mesoslite.resources import parse_resources
from mesoslite.sim.engine import Simulation
from mesoslite.sim.trace import (
    load_cluster,
    load_workload,
    parse_cluster,
    parse_workload,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sim"


def running(sim: Simulation) -> dict[str, int]:
    return {fw.spec.name: fw.running for fw in sim.frameworks}


def drf_paper(allocator: str) -> Simulation:
    cluster = load_cluster(EXAMPLES / "drf-paper-cluster.yaml")
    workload = load_workload(EXAMPLES / "drf-paper-workload.yaml")
    # Stop before the first tasks end (60 s): the settled allocation.
    workload = parse_workload(
        {
            "until_s": 30,
            "frameworks": [
                {"name": f.name, "role": f.role, "demands": True,
                 "tasks": [{"count": 30, "resources": str(f.tasks[0].resources),
                            "duration_s": 60}]}
                for f in workload.frameworks
            ],
        }
    )
    sim = Simulation(cluster, workload, allocator)
    sim.run()
    return sim


def test_drf_settles_the_paper_example_at_a3_b2_in_the_simulator() -> None:
    sim = drf_paper("drf")
    assert running(sim) == {"A": 3, "B": 2}


def test_fair_on_cpus_settles_the_paper_example_at_a4_b1_in_the_simulator() -> None:
    # Max-min on cpus alone (see test_policies): A 4 tasks (4 cpus), B 1 task (3 cpus).
    sim = drf_paper("fair")
    assert running(sim) == {"A": 4, "B": 1}


def test_the_example_files_run_to_the_end_under_every_policy() -> None:
    cluster = load_cluster(EXAMPLES / "drf-paper-cluster.yaml")
    workload = load_workload(EXAMPLES / "drf-paper-workload.yaml")
    for allocator in ("drf", "fair", "ssf"):
        result = Simulation(cluster, workload, allocator).run()
        assert result.launched == result.finished == 60
        assert 0 < result.jain_index <= 1
        assert result.makespan_s > 0 and 0 < result.utilization["cpus"] <= 1
        wait = {f.name: (f.wait_p50_s, f.wait_p99_s) for f in result.frameworks}
        assert all(0 <= p50 <= p99 for p50, p99 in wait.values())


def test_weights_two_to_one_settle_at_shares_two_to_one_in_the_simulator() -> None:
    cluster = parse_cluster(
        {
            "agents": [{"count": 4, "resources": "cpus:6;mem:6144"}],
            "roles": {"gold": {"weight": 2}, "silver": {"weight": 1}},
        }
    )
    task = {"count": 100, "resources": "cpus:1;mem:1024", "duration_s": 100}
    workload = parse_workload(
        {
            "until_s": 50,
            "frameworks": [
                {"name": "g", "role": "gold", "demands": True, "tasks": [task]},
                {"name": "s", "role": "silver", "demands": True, "tasks": [task]},
            ],
        }
    )
    sim = Simulation(cluster, workload, "drf")
    sim.run()
    assert running(sim) == {"g": 16, "s": 8}


def test_a_quota_limit_holds_in_the_simulator_with_nobody_else_asking() -> None:
    cluster = parse_cluster(
        {
            "agents": [{"count": 2, "resources": "cpus:8;mem:8192"}],
            "roles": {"batch": {"quota": {"limit": "cpus:5"}}},
        }
    )
    workload = parse_workload(
        {
            "until_s": 10,
            "frameworks": [
                {"name": "b", "role": "batch", "demands": True,
                 "tasks": [{"count": 50, "resources": "cpus:1;mem:512", "duration_s": 60}]},
            ],
        }
    )
    sim = Simulation(cluster, workload, "drf")
    sim.run()
    assert running(sim) == {"b": 5}


def test_a_framework_with_two_roles_is_offered_in_both_in_the_simulator() -> None:
    # Role a is limited to 2 cpus; `multi` holds roles a and b and runs past a's limit in b.
    # Role b's share comes only from what `multi` runs in b.
    cluster = parse_cluster(
        {
            "agents": [{"count": 2, "resources": "cpus:4;mem:4096"}],
            "roles": {"a": {"quota": {"limit": "cpus:2"}}},
        }
    )
    workload = parse_workload(
        {
            "until_s": 10,
            "frameworks": [
                {"name": "multi", "roles": ["a", "b"], "demands": True,
                 "tasks": [{"count": 6, "resources": "cpus:1;mem:128", "duration_s": 60}]},
            ],
        }
    )
    assert workload.frameworks[0].all_roles == ("a", "b")
    sim = Simulation(cluster, workload, "drf")
    result = sim.run()
    assert running(sim) == {"multi": 6}
    record = sim.state.frameworks[sim.frameworks[0].id]
    assert record.used_by_role["a"].scalar("cpus") == 2  # a's limit holds
    assert record.used_by_role["b"].scalar("cpus") == 4
    assert [g.role for g in result.roles] == ["a", "b"]
    assert [g.name for g in result.frameworks] == ["multi"]


def test_ssf_places_a_rack_preferring_framework_on_its_rack_in_the_simulator() -> None:
    cluster = parse_cluster(
        {
            "agents": [
                {"count": 3, "resources": "cpus:4;mem:4096", "attributes": {"rack": "r1"}},
                {"count": 3, "resources": "cpus:4;mem:4096", "attributes": {"rack": "r2"}},
            ]
        }
    )
    workload = parse_workload(
        {
            "until_s": 5,
            "frameworks": [
                {"name": "f", "demands": True, "locality": ["rack:r2"],
                 "tasks": [{"count": 3, "resources": "cpus:4;mem:4096", "duration_s": 60}]},
            ],
        }
    )
    sim = Simulation(cluster, workload, "ssf")
    sim.run()
    racks = {
        sim.state.agents[t.agent_id].info.attributes["rack"]
        for fw in sim.state.frameworks.values()
        for t in fw.tasks.values()
    }
    assert racks == {"r2"}


def test_a_simulation_is_deterministic() -> None:
    cluster = load_cluster(EXAMPLES / "drf-paper-cluster.yaml")
    workload = load_workload(EXAMPLES / "drf-paper-workload.yaml")
    first = Simulation(cluster, workload, "drf", seed=7).run()
    second = Simulation(cluster, workload, "drf", seed=7).run()
    assert first.shares == second.shares and first.frameworks == second.frameworks


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "cluster.yaml: agents"),
        ({"agents": []}, "cluster.yaml: agents"),
        ({"agents": [{"count": 1}]}, "cluster.yaml: agents[0].resources"),
        ({"agents": [{"resources": "cpus:x"}]}, "cluster.yaml: agents[0].resources"),
        ({"agents": [{"resources": "cpus:1", "colour": "red"}]}, "cluster.yaml: agents[0].colour"),
        ({"agents": [{"resources": "cpus:1", "count": 0}]}, "cluster.yaml: agents[0].count"),
        (
            {"agents": [{"resources": "cpus:1"}], "roles": {"a": {"weight": -1}}},
            "cluster.yaml: roles.a.weight",
        ),
        (
            {"agents": [{"resources": "cpus:1"}],
             "roles": {"a": {"quota": {"guarantee": "cpus:3", "limit": "cpus:2"}}}},
            "cluster.yaml: roles.a.quota.guarantee",
        ),
        ({"agents": [{"resources": "cpus:1"}], "roles": {"Bad Role": {}}}, "cluster.yaml: roles"),
    ],
)
def test_bad_cluster_files_name_the_field(data: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_cluster(data)
    assert info.value.field.startswith(field), info.value


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"frameworks": [{"name": "a"}]}, "workload.yaml: frameworks[0].tasks"),
        (
            {"frameworks": [{"tasks": [{"resources": "cpus:1"}]}]},
            "workload.yaml: frameworks[0].tasks[0].duration_s",
        ),
        (
            {"frameworks": [{"tasks": [{"resources": "cpus:1", "duration_s": "long"}]}]},
            "workload.yaml: frameworks[0].tasks[0].duration_s",
        ),
        (
            {"frameworks": [{"demands": "yes",
                             "tasks": [{"resources": "cpus:1", "duration_s": 1}]}]},
            "workload.yaml: frameworks[0].demands",
        ),
        (
            {"frameworks": [{"tasks": [{"resources": "cpus:1", "duration_s": 1}], "x": 1}]},
            "workload.yaml: frameworks[0].x",
        ),
        (
            {"frameworks": [{"role": "Eng!", "tasks": [{"resources": "cpus:1", "duration_s": 1}]}]},
            "workload.yaml: frameworks[0].role",
        ),
        (
            {"frameworks": [{"roles": ["a", "a"],
                             "tasks": [{"resources": "cpus:1", "duration_s": 1}]}]},
            "workload.yaml: frameworks[0].roles[1]",
        ),
        (
            {"frameworks": [{"role": "a", "roles": ["a", "b"],
                             "tasks": [{"resources": "cpus:1", "duration_s": 1}]}]},
            "workload.yaml: frameworks[0].role",
        ),
        (
            {"frameworks": [{"roles": [], "tasks": [{"resources": "cpus:1", "duration_s": 1}]}]},
            "workload.yaml: frameworks[0].roles",
        ),
    ],
)
def test_bad_workload_files_name_the_field(data: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_workload(data)
    assert info.value.field.startswith(field), info.value


def test_resources_in_files_are_parsed_as_on_the_command_line() -> None:
    cluster = parse_cluster({"agents": [{"count": 2, "resources": "cpus:2;mem:512"}]})
    assert cluster.agents[0].resources == parse_resources("cpus:2;mem:512")


def test_reserved_resources_go_only_to_their_role_in_the_simulator() -> None:
    cluster = parse_cluster(
        {"agents": [{"count": 2, "resources": "cpus(ml):3;mem(ml):3072;cpus:1;mem:1024"}]}
    )
    task = {"count": 20, "resources": "cpus:1;mem:1024", "duration_s": 60}
    workload = parse_workload(
        {
            "until_s": 10,
            "frameworks": [
                {"name": "web", "role": "web", "demands": True, "tasks": [task]},
                {"name": "ml", "role": "ml", "demands": True, "tasks": [task]},
            ],
        }
    )
    sim = Simulation(cluster, workload, "drf")
    sim.run()
    # web gets only the unreserved cpu of each agent; ml its reservations (and no more,
    # since web holds the rest).
    assert running(sim)["web"] <= 2
    assert running(sim)["ml"] >= 6
    assert sum(running(sim).values()) == 8
