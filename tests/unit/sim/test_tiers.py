"""Priority tiers and preemption in the simulator (#16), on the example in examples/sim/:
the urgent tier's wait falls from minutes to seconds with preemption on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mesoslite.errors import ValidationError
from mesoslite.sim.engine import Simulation
from mesoslite.sim.report import format_text
from mesoslite.sim.trace import load_cluster, load_workload, parse_cluster

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sim"


def _run(grace_s: float):  # type: ignore[no-untyped-def]
    cluster = load_cluster(EXAMPLES / "tiers-cluster.yaml")
    workload = load_workload(EXAMPLES / "tiers-workload.yaml")
    return Simulation(replace(cluster, preemption_grace_s=grace_s), workload).run()


def test_preemption_cuts_the_high_tiers_wait_from_minutes_to_seconds() -> None:
    with_preemption, without = _run(5.0), _run(0.0)
    urgent, batch = with_preemption.tiers
    assert (urgent.priority, batch.priority) == (10, 0)
    assert urgent.wait_max_s < 10 and urgent.preempted == 0
    assert batch.preempted == 16  # 8 tasks of 2 cpus: 16 one-cpu batch tasks
    assert without.tiers[0].wait_max_s > 300 and without.tiers[1].preempted == 0
    # Every batch task still ran to its end.
    assert with_preemption.frameworks[0].finished == 64
    text = format_text([with_preemption])
    assert "TIER" in text and "preempted" in text


@pytest.mark.parametrize(
    ("role", "field"),
    [({"priority": 5000}, "roles.a.priority"), ({"preemptible": "yes"}, "roles.a.preemptible")],
)
def test_bad_tiers_in_cluster_files_name_the_field(role: dict[str, object], field: str) -> None:
    data = {"agents": [{"resources": "cpus:1;mem:1"}], "roles": {"a": role}}
    with pytest.raises(ValidationError) as e:
        parse_cluster(data)
    assert field in e.value.field
