"""Acceptance scenarios of issue #4 at the allocator level: DRF's paper example, fair on cpus,
weights, hierarchical roles, quota, reservations, demands and `ssf`'s locality."""

from __future__ import annotations

import pytest

from mesoslite.allocator.base import Quota
from mesoslite.allocator.fair import FairPolicy
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.loader import load_allocator
from mesoslite.errors import ConfigError
from mesoslite.ids import FrameworkId
from mesoslite.resources import Resources, parse_resources

from .harness import AllocatorHarness

R = parse_resources
A_TASK = "cpus:1;mem:4096"
B_TASK = "cpus:3;mem:1024"


def drf_paper(policy: str) -> AllocatorHarness:
    # DRF, Ghodsi et al. NSDI'11, section 4: 9 cpus, 18 GB; A <1 cpu, 4 GB>, B <3 cpus, 1 GB>,
    # both with more tasks than fit.
    return AllocatorHarness(
        """
        a1  cpus:9;mem:18432
        """,
        f"""
        A  alpha  -  demand={A_TASK}*100
        B  beta   -  demand={B_TASK}*100
        """,
        allocator=load_allocator(policy),
    )


def test_drf_settles_the_paper_example_at_three_a_tasks_and_two_b_tasks() -> None:
    h = drf_paper("drf")
    h.settle()
    # A: 3 cpus, 12 GB -> dominant share 12/18 = 2/3; B: 6 cpus, 2 GB -> 6/9 = 2/3.
    assert h.tasks("A", A_TASK) == 3
    assert h.tasks("B", B_TASK) == 2
    assert h.share("A") == pytest.approx(2 / 3)
    assert h.share("B") == pytest.approx(2 / 3)


def test_drf_offers_the_paper_example_task_by_task_in_one_pass() -> None:
    h = drf_paper("drf")
    result = h.allocate()
    # One pass does the whole progressive filling: one grant per framework on the agent.
    assert {g.framework_id: g.tasks for g in result.grants} == {"A": 3, "B": 2}
    assert h.reason("A") == "offered 1 agent (3 tasks' worth of its demands)"


def test_fair_on_cpus_settles_the_paper_example_differently() -> None:
    h = drf_paper("fair")
    h.settle()
    # Max-min on cpus alone: A 1, B 3, A 2, A 3 (tie at 3 cpus goes to A by name), A 4
    # (B needs 3 cpus and only 2 are left), then nothing fits: A's 5th task would need
    # 20 GB. Split: A = 4 tasks (4 cpus, 16 GB), B = 1 task (3 cpus, 1 GB).
    assert h.tasks("A", A_TASK) == 4
    assert h.tasks("B", B_TASK) == 1


def test_weights_two_to_one_settle_at_shares_two_to_one() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:12;mem:12288
        a2  cpus:12;mem:12288
        """,
        """
        g  gold    -  demand=cpus:1;mem:1024*100
        s  silver  -  demand=cpus:1;mem:1024*100
        """,
        weights={"gold": 2.0, "silver": 1.0},
    )
    h.settle()
    # 24 cpus: gold 16, silver 8.
    assert h.tasks("g", "cpus:1;mem:1024") == 16
    assert h.tasks("s", "cpus:1;mem:1024") == 8
    assert h.share("g") == pytest.approx(2 * h.share("s"))


def test_weights_apply_level_by_level_in_hierarchical_roles() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:12;mem:12288
        """,
        """
        ml   eng/ml   -  demand=cpus:1;mem:1024*100
        web  eng/web  -  demand=cpus:1;mem:1024*100
        ops  ops      -  demand=cpus:1;mem:1024*100
        """,
        weights={"eng": 2.0},
    )
    h.settle()
    # eng (weight 2) gets 8 cpus against ops's 4; inside eng, ml and web split 4:4.
    assert h.tasks("ops", "cpus:1;mem:1024") == 4
    assert h.tasks("ml", "cpus:1;mem:1024") == 4
    assert h.tasks("web", "cpus:1;mem:1024") == 4


def test_a_role_with_frameworks_and_sub_roles_competes_with_them() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:9;mem:9216
        """,
        """
        top  eng     -  demand=cpus:1;mem:1024*100
        ml   eng/ml  -  demand=cpus:1;mem:1024*100
        ops  ops     -  demand=cpus:1;mem:1024*100
        """,
    )
    h.settle()
    assert h.tasks("ops", "cpus:1;mem:1024") == pytest.approx(4.5, abs=0.5)
    assert h.tasks("top", "cpus:1;mem:1024") + h.tasks("ml", "cpus:1;mem:1024") in (4, 5)


def test_without_demands_offers_carry_the_whole_agent() -> None:
    h = AllocatorHarness("a1  cpus:4;mem:4096", "f  r  -")
    result = h.allocate()
    assert [(g.resources, g.tasks) for g in result.grants] == [(R("cpus:4;mem:4096"), 0)]


def test_a_framework_whose_demands_are_met_gets_no_offers() -> None:
    h = AllocatorHarness("a1  cpus:4;mem:4096", "f  r  -  demand=cpus:1;mem:512*0")
    assert h.allocate().grants == ()
    assert h.reason("f") == "no outstanding demand"


def test_a_quota_guarantee_is_met_before_others_fair_share() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:10;mem:10240
        """,
        """
        big    prod  -  demand=cpus:1;mem:1024*100
        other  dev   -  demand=cpus:1;mem:1024*100
        """,
        quotas={"prod": Quota(guarantee=R("cpus:7"))},
    )
    h.settle()
    # Fair share would be 5:5; the guarantee of 7 cpus comes first, the rest is shared.
    assert h.tasks("big", "cpus:1;mem:1024") == 7
    assert h.tasks("other", "cpus:1;mem:1024") == 3


def test_a_guarantee_is_held_back_for_a_role_with_nobody_asking_yet() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:10;mem:10240
        """,
        """
        other  dev  -  demand=cpus:1;mem:1024*100
        """,
        quotas={"prod": Quota(guarantee=R("cpus:6"))},
    )
    h.settle()
    # prod has no framework yet; its 6 cpus stay unallocated for when one comes.
    assert h.tasks("other", "cpus:1;mem:1024") == 4
    h.allocate()
    assert h.reason("other") == "what is left is held for unmet quota guarantees"
    h.frameworks["late"] = type(h.frameworks["other"])(  # a prod framework arrives
        FrameworkId("late"), "prod", Resources.empty()
    )
    h.settle()
    assert h.frameworks[FrameworkId("late")].allocated.scalar("cpus") == 6


def test_whole_agent_offers_are_cut_to_leave_a_guarantee_free() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:4;mem:4096
        a2  cpus:4;mem:4096
        """,
        "f  dev  -",
        quotas={"prod": Quota(guarantee=R("cpus:3"))},
    )
    result = h.allocate()
    assert sum(g.resources.scalar("cpus") for g in result.grants) == 5


def test_a_quota_limit_is_never_exceeded_even_with_nobody_else_asking() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:8;mem:8192
        a2  cpus:8;mem:8192
        """,
        """
        capped  batch  -
        tasks   etl    -  demand=cpus:1;mem:1024*100
        """,
        quotas={"batch": Quota(limit=R("cpus:5")), "etl": Quota(limit=R("cpus:3"))},
    )
    h.settle()
    assert h.frameworks["capped"].allocated.scalar("cpus") == 5  # type: ignore[index]
    assert h.tasks("tasks", "cpus:1;mem:1024") == 3
    h.allocate()
    assert h.reason("tasks") == "role etl is at its quota limit"


def test_reserved_resources_are_offered_only_to_their_role() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:6;mem:6144  reserved.ml=cpus:4;mem:4096
        """,
        """
        web  web  -
        ml   ml   -
        """,
    )
    result = h.allocate()
    by_fw = {g.framework_id: g for g in result.grants}
    # web's offer never includes the reservation; ml gets it (and may get unreserved too).
    assert "web" not in by_fw or not by_fw["web"].reserved
    assert by_fw["ml"].reserved == {"ml": R("cpus:4;mem:4096")}
    h.accept(result)
    h.frameworks["web"].allocated = R("cpus:0")  # type: ignore[index]
    # Nothing reserved is ever offered to web, however often we ask.
    for _ in range(3):
        for grant in h.allocate().grants:
            assert grant.framework_id == "ml" or not grant.reserved


def test_reservations_of_a_role_are_offered_to_its_sub_roles() -> None:
    h = AllocatorHarness(
        "a1  cpus:4;mem:4096  cpus:0  reserved.eng=cpus:4;mem:4096", "f  eng/ml  -"
    )
    result = h.allocate()
    assert [g.reserved for g in result.grants] == [{"eng": R("cpus:4;mem:4096")}]


def test_ssf_offers_the_preferred_rack_first_while_it_has_room() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:4;mem:4096  rack=r1  zone=z1
        a2  cpus:4;mem:4096  rack=r1  zone=z1
        b1  cpus:4;mem:4096  rack=r2  zone=z1
        c1  cpus:4;mem:4096  rack=r3  zone=z2
        """,
        """
        f  r  -  demand=cpus:2;mem:2048*5  hint=rack:r2
        """,
        allocator=load_allocator("ssf"),
    )
    result = h.allocate()
    # 5 tasks of 2 cpus: 2 fit on b1 (rack r2), the rest go elsewhere, best fit.
    tasks = {g.agent_id: g.tasks for g in result.grants}
    assert tasks["b1"] == 2
    assert sum(tasks.values()) == 5


def test_ssf_ranks_same_zone_before_elsewhere_and_uses_where_tasks_run() -> None:
    h = AllocatorHarness(
        """
        a1  cpus:4;mem:4096  rack=r1  zone=z1
        a2  cpus:4;mem:4096  rack=r2  zone=z1
        c1  cpus:4;mem:4096  rack=r3  zone=z2
        c2  cpus:4;mem:4096  rack=r4  zone=z2
        """,
        """
        f  r  -  demand=cpus:2;mem:2048*4  hint=zone:z2
        """,
        allocator=load_allocator("ssf"),
    )
    result = h.allocate()
    assert sorted(g.agent_id for g in result.grants) == ["c1", "c2"]


def test_drf_does_not_prefer_a_rack() -> None:
    h = AllocatorHarness(
        "\n".join(f"a{i}  cpus:4;mem:4096  rack=r{i % 2}" for i in range(8)),
        "f  r  -  demand=cpus:4;mem:4096*2  hint=rack:r1",
        seed=3,
    )
    racks = {h.agents[g.agent_id].attributes["rack"] for g in h.allocate().grants}
    assert racks  # any rack; drf ignores hints


def test_fair_takes_its_resource_as_an_option() -> None:
    allocator = load_allocator("fair", {"resource": "mem"})
    assert isinstance(allocator, HierarchicalAllocator)
    assert isinstance(allocator.policy, FairPolicy) and allocator.policy.resource == "mem"
    with pytest.raises(ConfigError, match="resource"):
        load_allocator("fair", {"resource": "Not A Name"})
