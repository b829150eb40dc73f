"""Regressions for the simulator bugs of issues #15 and #16: reproducible runs, utilization
averaged up to `until_s`, and no reference cycle per allocation pass."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path
from typing import Any

from mesoslite.sim.engine import Simulation
from mesoslite.sim.trace import load_cluster, parse_cluster, parse_workload

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "sim"

# Two equal frameworks and room for one task at a time: DRF breaks their tie by id, so
# with random ids two runs disagree on which one waits.
TIE_CLUSTER = "agents:\n  - count: 1\n    resources: 'cpus:1;mem:1024'\n"
TIE_WORKLOAD = """
frameworks:
  - {name: A, role: r, demands: true,
     tasks: [{count: 4, resources: 'cpus:1;mem:1024', duration_s: 10}]}
  - {name: B, role: r, demands: true,
     tasks: [{count: 4, resources: 'cpus:1;mem:1024', duration_s: 10}]}
"""


def _result(sim: Simulation) -> dict[str, Any]:
    doc = sim.run().to_json()
    for wall in ("wall_s", "launches_per_wall_s"):
        doc.pop(wall)
    return doc


def test_issue16_two_runs_of_one_seed_give_the_same_ids_and_results() -> None:
    import yaml

    cluster = parse_cluster(yaml.safe_load(TIE_CLUSTER))
    workload = parse_workload(yaml.safe_load(TIE_WORKLOAD))
    first, second = Simulation(cluster, workload, seed=7), Simulation(cluster, workload, seed=7)
    assert _result(first) == _result(second)
    assert [f.id for f in first.frameworks] == [f.id for f in second.frameworks]
    # Ids follow arrival (the trace's order), so A, the first to subscribe, wins the tie.
    waits = {f.spec.name: f.waits for f in first.frameworks}
    assert waits["A"][0] < 1 < waits["B"][0]


def test_issue16_simulate_prints_the_same_report_twice_byte_for_byte(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(TIE_CLUSTER)
    (tmp_path / "w.yaml").write_text(TIE_WORKLOAD)
    argv = [
        sys.executable,
        "-m",
        "mesoslite.cli",
        "simulate",
        "--cluster",
        str(tmp_path / "c.yaml"),
        "--workload",
        str(tmp_path / "w.yaml"),
        "--allocator",
        "drf,fair",
        "--seed",
        "3",
    ]
    runs = [subprocess.run(argv, capture_output=True, timeout=60) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert b"wall time: drf" in runs[0].stderr  # still told, apart from the report


def test_issue16_utilization_is_averaged_up_to_until_s() -> None:
    # The DRF paper example: A 3 tasks and B 2 tasks hold all 9 cpus from the first pass
    # (2 ms) until they end at 60 s; the run stops at 60 s, before any event after 0.
    cluster = load_cluster(EXAMPLES / "drf-paper-cluster.yaml")
    workload = parse_workload(
        {
            "until_s": 60,
            "frameworks": [
                {
                    "name": n,
                    "role": n.lower(),
                    "demands": True,
                    "tasks": [{"count": 30, "resources": r, "duration_s": 60}],
                }
                for n, r in (("A", "cpus:1;mem:4096"), ("B", "cpus:3;mem:1024"))
            ],
        }
    )
    sim = Simulation(cluster, workload)
    result = sim.run()
    assert result.launched == 5
    assert 0.99 < result.utilization["cpus"] <= 1.0
    assert sim.now == 60.0


def test_issue16_a_run_that_ends_before_until_s_is_averaged_over_until_s() -> None:
    # One task of all 9 cpus for 10 s in a 20 s window: half the window busy.
    cluster = load_cluster(EXAMPLES / "drf-paper-cluster.yaml")
    workload = parse_workload(
        {
            "until_s": 20,
            "frameworks": [{"name": "A", "tasks": [{"resources": "cpus:9", "duration_s": 10}]}],
        }
    )
    result = Simulation(cluster, workload).run()
    assert abs(result.utilization["cpus"] - 0.5) < 0.01


def test_issue15_a_simulation_with_the_collector_off_leaves_no_cycles() -> None:
    # The engine turns the cyclic GC off; every allocation pass used to leave a cycle (the
    # pass and everything it built), so memory grew with every pass.
    import yaml

    cluster = parse_cluster(
        yaml.safe_load(
            "agents:\n  - {count: 20, resources: 'cpus:4;mem:4096', attributes: {rack: r1}}\n"
        )
    )
    workload = parse_workload(
        yaml.safe_load("""
frameworks:
  - {name: whole, role: a, tasks: [{count: 60, resources: 'cpus:1;mem:512', duration_s: 3}]}
  - {name: sized, role: b, demands: true,
     tasks: [{count: 60, resources: 'cpus:2;mem:256', duration_s: 2, interval_s: 0.5}]}
""")
    )
    for allocator in ("drf", "ssf"):
        sim = Simulation(cluster, workload, allocator)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            result = sim.run()  # turns the collector off while it runs
            gc.collect()
            kinds = {type(o).__name__ for o in gc.garbage}
            count = len(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert result.passes > 50 and result.finished == 120
        assert "AllocationPass" not in kinds and "AgentView" not in kinds
        assert count == 0, f"{allocator}: {count} objects in cycles: {sorted(kinds)}"
