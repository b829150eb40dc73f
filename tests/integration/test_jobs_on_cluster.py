"""The built-in jobs framework on real daemons: placement, retries, services kept up, jobs
carried across a master restart, and ended jobs removed (by `job remove` and after
--job-retention-s, which the framework's tick on the system clock does), for good.

Cron times are tested in virtual time (tests/unit/jobs/test_cron_virtual.py): cron's unit is
the minute, so no real-time cron check here could be short."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from mesoslite.errors import ConflictError, NotFoundError, UnavailableError
from mesoslite.jobs.model import InstanceState, JobState, JobView
from mesoslite.testing import LocalCluster, assert_eventually

# Short liveness timeouts: an agent SIGKILLed is unreachable in about a second. The
# re-registration window after a master restart is longer: on a loaded machine agents took
# up to ~3 s to come back, and a task replaced for that would run twice by design.
FAST = ("--agent-ping-interval-s", "0.2", "--agent-ping-timeout-s", "0.3",
        "--max-agent-ping-timeouts", "3", "--agent-reregister-timeout-s", "10",
        "--allocation-interval-s", "0.2")


@pytest.fixture
def three_hosts(tmp_path: Path):  # type: ignore[no-untyped-def]
    cluster = LocalCluster(
        tmp_path / "cluster", agents=3, agent_resources="cpus:4;mem:2048",
        agent_hostnames=("host-a", "host-b", "host-c"), master_args=FAST,
        agent_recover="reconnect",
    )
    with cluster:
        yield cluster


def status(cluster: LocalCluster, name: str) -> JobView:
    with cluster.client() as c:
        return c.job_status(name)


def submit(cluster: LocalCluster, text: str) -> JobView:
    with cluster.client() as c:
        return c.submit_job(text)


def wait_state(cluster: LocalCluster, name: str, state: JobState, timeout_s: float = 30) -> JobView:
    def check() -> JobView:
        view = status(cluster, name)
        assert view.state == state, (view.state, view.message)
        return view

    return assert_eventually(check, timeout_s=timeout_s)


def test_hostname_unique_runs_one_instance_per_agent_and_says_why_a_fourth_cannot_run(
    three_hosts: LocalCluster,
) -> None:
    spec = """
name: spread
type: batch
command: sleep 1
resources: {cpus: 0.5, mem: 32}
instances: 3
constraints: [[hostname, UNIQUE]]
"""
    submit(three_hosts, spec)
    view = wait_state(three_hosts, "spread", JobState.SUCCEEDED)
    assert sorted(i.hostname for i in view.instances) == ["host-a", "host-b", "host-c"]

    submit(three_hosts, spec.replace("spread", "spread4").replace("instances: 3", "instances: 4")
           .replace("sleep 1", "sleep 30"))

    def fourth_waits() -> JobView:
        v = status(three_hosts, "spread4")
        states = sorted(i.state.value for i in v.instances)
        assert states == ["RUNNING", "RUNNING", "RUNNING", "WAITING"], states
        assert "hostname UNIQUE: all 3 agents already run an instance" in v.message, v.message
        return v

    v = assert_eventually(fourth_waits, timeout_s=20)
    assert len({i.hostname for i in v.instances if i.hostname}) == 3
    with three_hosts.client() as c:
        assert c.kill_job("spread4").state == JobState.KILLED


def test_a_job_failing_twice_then_succeeding_ends_succeeded_after_three_attempts_with_backoff(
    three_hosts: LocalCluster, tmp_path: Path,
) -> None:
    counter = tmp_path / "count"
    spec = f"""
name: flaky
type: batch
command: 'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]'
resources: {{cpus: 0.1, mem: 16}}
retries: {{limit: 2, backoff_s: 1, factor: 2}}
"""
    submit(three_hosts, spec)
    view = wait_state(three_hosts, "flaky", JobState.SUCCEEDED)
    assert view.instances[0].attempt == 3
    with three_hosts.client() as c:
        history = c.job_history("flaky")
    assert [h.exit_code for h in history] == [1, 1, 0]
    # The backoff: 1 s before the second attempt, 2 s before the third.
    gaps = [b.started_at - a.finished_at for a, b in zip(history, history[1:], strict=False)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps


def running_pids(pid_dir: Path) -> dict[str, int]:
    """instance.attempt -> pid, of the service processes alive now."""
    out = {}
    for f in pid_dir.glob("pid-*"):
        pid = int(f.read_text() or 0)
        if pid and psutil.pid_exists(pid):
            out[f.name.removeprefix("pid-")] = pid
    return out


def test_a_service_gets_instances_back_after_a_kill_and_after_its_agent_dies(
    three_hosts: LocalCluster, tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    submit(three_hosts, f"""
name: web
type: service
command: 'echo $$ > {pids}/pid-$MESOSLITE_JOB_INSTANCE.$MESOSLITE_JOB_ATTEMPT; exec sleep 600'
resources: {{cpus: 0.2, mem: 16}}
instances: 3
retries: {{backoff_s: 0.5}}
""")
    wait_state(three_hosts, "web", JobState.HEALTHY)
    assert_eventually(lambda: len(running_pids(pids)) == 3)
    first = running_pids(pids)
    os.kill(first["1.1"], signal.SIGKILL)
    start = time.monotonic()
    assert_eventually(lambda: "1.2" in running_pids(pids), timeout_s=10)
    view = wait_state(three_hosts, "web", JobState.HEALTHY, timeout_s=10)
    assert time.monotonic() - start < 10
    # A host dies: its agent and its tasks.
    victim = next(i for i in view.instances if i.index == 0)
    idx = three_hosts.agent_ids.index(victim.agent_id)
    alive = running_pids(pids)
    doomed = [alive[f"{i.index}.{i.attempt}"] for i in view.instances
              if i.agent_id == victim.agent_id]
    three_hosts.kill_agent(idx)
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    start = time.monotonic()

    def replaced() -> JobView:
        v = status(three_hosts, "web")
        zero = next(i for i in v.instances if i.index == 0)
        assert zero.state == InstanceState.RUNNING and zero.agent_id != victim.agent_id, zero
        return v

    assert_eventually(replaced, timeout_s=15)
    assert time.monotonic() - start < 15
    wait_state(three_hosts, "web", JobState.HEALTHY)
    with three_hosts.client() as c:
        c.kill_job("web")
    assert_eventually(lambda: running_pids(pids) == {}, timeout_s=15)


def test_jobs_carry_on_across_a_master_restart_without_running_anything_twice(
    three_hosts: LocalCluster, tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    submit(three_hosts, f"""
name: long
type: batch
command: 'echo $MESOSLITE_JOB_INSTANCE.$MESOSLITE_JOB_ATTEMPT >> {ledger}; sleep 4'
resources: {{cpus: 0.1, mem: 16}}
instances: 2
""")
    submit(three_hosts, """
name: svc
type: service
command: sleep 600
resources: {cpus: 0.1, mem: 16}
instances: 2
""")
    wait_state(three_hosts, "svc", JobState.HEALTHY)
    wait_state(three_hosts, "long", JobState.RUNNING)
    before = {i.task_id for i in status(three_hosts, "svc").instances}
    three_hosts.restart_master()
    view = wait_state(three_hosts, "long", JobState.SUCCEEDED, timeout_s=40)
    assert sorted(ledger.read_text().split()) == ["0.1", "1.1"]
    assert all(i.attempt == 1 for i in view.instances)
    svc = wait_state(three_hosts, "svc", JobState.HEALTHY)
    assert {i.task_id for i in svc.instances} == before  # the same tasks, adopted again


def test_a_job_in_another_role_runs_there_and_the_jobs_framework_takes_the_role_on(
    three_hosts: LocalCluster,
) -> None:
    submit(three_hosts, """
name: eng-batch
type: batch
command: sleep 3
resources: {cpus: 0.5, mem: 32}
role: eng/ml
instances: 2
""")
    wait_state(three_hosts, "eng-batch", JobState.RUNNING)

    def held_by_the_role() -> bool:
        with three_hosts.client() as c:
            roles = {r.role: r for r in c.roles()}
        return "eng/ml" in roles and roles["eng/ml"].allocated.scalar("cpus") == 1.0

    # Both instances' resources are counted against eng/ml while they run.
    assert_eventually(held_by_the_role, timeout_s=10)
    wait_state(three_hosts, "eng-batch", JobState.SUCCEEDED)
    with three_hosts.client() as c:
        jobs = [f for f in c.frameworks(include_completed=True) if f.name == "mesoslite-jobs"]
    # One framework (it re-subscribed with its id, it did not register anew), in both roles.
    assert len(jobs) == 1 and sorted(jobs[0].roles) == ["*", "eng/ml"]


def test_ended_jobs_are_removed_on_request_and_after_the_retention_time_for_good(
    tmp_path: Path,
) -> None:
    with LocalCluster(tmp_path / "cluster", agents=1,
                      master_args=(*FAST, "--job-retention-s", "3")) as cluster:
        submit(cluster, "name: long\ntype: batch\ncommand: sleep 600\n")
        wait_state(cluster, "long", JobState.RUNNING)
        with cluster.client() as c:
            with pytest.raises(ConflictError, match="kill it first"):
                c.remove_job("long")
            with pytest.raises(NotFoundError):
                c.remove_job("nope")
            c.kill_job("long")

        def removed() -> bool:
            with cluster.client() as c:
                c.remove_job("long")  # refused while its task is still being killed
            return True

        assert_eventually(removed, timeout_s=15, retry_on=(ConflictError,))
        submit(cluster, 'name: quick\ntype: batch\ncommand: "true"\n')
        wait_state(cluster, "quick", JobState.SUCCEEDED)

        def expired() -> bool:
            try:
                status(cluster, "quick")
            except NotFoundError:
                return True
            return False

        assert_eventually(expired, timeout_s=15)
        cluster.restart_master()  # both went from the registry, not only from memory

        def none_left() -> bool:
            submit(cluster, 'name: after\ntype: batch\ncommand: "true"\n')
            with cluster.client() as c:
                return [j.name for j in c.jobs()] == ["after"]

        assert assert_eventually(none_left, timeout_s=15, retry_on=(UnavailableError,))
