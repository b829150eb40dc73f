"""`jobs/plan.py`: where a spec's instances would go on a given cluster, why the others
would wait, the diff of an update, and why pending instances wait in `job status`."""

from __future__ import annotations

from mesoslite.jobs.core import JobsCore
from mesoslite.jobs.model import JobPlan, JobType
from mesoslite.jobs.plan import diff_specs, pending_reasons, plan_job, with_pending_reasons
from mesoslite.jobs.port import AgentRoom, ClusterRoom
from mesoslite.jobs.spec import parse_job_spec
from mesoslite.model import TaskState
from mesoslite.resources import parse_resources
from tests.unit.jobs.test_core import CRON, T0, launch_all, offer, status, submit


def agent(n: int, free: str, total: str = "cpus:4;mem:4096", **attrs: str) -> AgentRoom:
    return AgentRoom(f"a{n}", f"host-{n}", attrs, parse_resources(total), parse_resources(free))


def spec_text(instances: int = 3, cpus: float = 1, extra: str = "") -> str:
    return (f"name: crunch\ntype: batch\ncommand: ./crunch\ninstances: {instances}\n"
            f"resources: {{cpus: {cpus}, mem: 64}}\n{extra}")


def plan(text: str, room: ClusterRoom, core: JobsCore | None = None) -> JobPlan:
    spec = parse_job_spec(text)
    old = core.jobs.get(spec.name) if core else None
    return plan_job(spec, old, room, T0)


def test_instances_go_to_the_first_agents_with_room_and_the_rest_say_why_they_wait() -> None:
    room = ClusterRoom(agents=(agent(1, "cpus:2;mem:512"), agent(2, "cpus:1;mem:512")))
    p = plan(spec_text(instances=4), room)
    assert p.action == "create" and p.version == 1 and p.type == JobType.BATCH
    assert [(i.action, i.hostname) for i in p.instances] == [
        ("launch", "host-1"), ("launch", "host-1"), ("launch", "host-2"), ("wait", "")]
    assert "no agent has cpus:1;mem:64 free for role * now" in p.instances[3].reason
    assert p.message == "3 would start now, 1 would wait"


def test_a_task_bigger_than_every_agent_says_so() -> None:
    room = ClusterRoom(agents=(agent(1, "cpus:4;mem:4096"),))
    [i] = plan(spec_text(instances=1, cpus=8), room).instances
    assert i.action == "wait" and "no agent has cpus:8;mem:64 in all" in i.reason


def test_the_role_quota_limit_holds_instances_back_before_anything_else() -> None:
    room = ClusterRoom(
        agents=(agent(1, "cpus:4;mem:4096"),),
        quota={"batch": (parse_resources("cpus:2"), parse_resources("cpus:1;mem:64"))},
    )
    p = plan(spec_text(instances=2, extra="role: batch\n"), room)
    assert [i.action for i in p.instances] == ["launch", "wait"]
    assert p.instances[1].reason.startswith("quota of role batch: limit cpus:2")


def test_constraints_explain_why_an_instance_would_wait() -> None:
    room = ClusterRoom(agents=(agent(1, "cpus:4;mem:4096"), agent(2, "cpus:4;mem:4096")))
    p = plan(spec_text(extra="constraints: [[hostname, UNIQUE]]\n"), room)
    assert [i.hostname for i in p.instances] == ["host-1", "host-2", ""]
    assert "hostname UNIQUE" in p.instances[2].reason


def test_a_waiting_instance_carries_the_allocators_explanation() -> None:
    room = ClusterRoom(agents=(agent(1, "cpus:0.5;mem:4096"),),
                       reasons={"*": "lower share than others: dominant share 0.90"})
    [i] = plan(spec_text(instances=1), room).instances
    assert i.reason.endswith("; allocator: lower share than others: dominant share 0.90")


def test_resources_reserved_for_the_role_count_only_for_that_role() -> None:
    reserved = AgentRoom("a1", "host-1", {}, parse_resources("cpus:4;mem:4096"),
                         parse_resources("cpus:0;mem:4000"), {"batch": parse_resources("cpus:2")})
    room = ClusterRoom(agents=(reserved,))
    assert plan(spec_text(instances=1), room).instances[0].action == "wait"
    p = plan(spec_text(instances=1, extra="role: batch\n"), room)
    assert p.instances[0].action == "launch"


SERVICE = """
name: web
type: service
command: ./serve --v1
instances: 2
resources: {cpus: 1, mem: 128}
"""


def running_service(text: str = SERVICE) -> JobsCore:
    core = JobsCore()
    submit(core, text)
    for t in launch_all(core, [offer(1)], T0):
        core.on_update(status(t, TaskState.RUNNING), T0 + 1)
    return core


def test_an_update_of_a_service_lists_the_changed_fields_and_replaces_running_instances() -> None:
    core = running_service()
    # The agent is full but for what the two running instances hold: they free it.
    room = ClusterRoom(agents=(agent(1, "cpus:0;mem:0"),))
    new = SERVICE.replace("--v1", "--v2").replace("cpus: 1", "cpus: 0.5")
    p = plan(new, room, core)
    assert p.action == "update" and p.version == 2
    assert {c.field: (c.old, c.new) for c in p.changes} == {
        "command": ("./serve --v1", "./serve --v2"),
        "resources": ("cpus:1;mem:128", "cpus:0.5;mem:128"),
    }
    assert [(i.action, i.hostname) for i in p.instances] == [
        ("replace", "host-1"), ("replace", "host-1")]


def test_scaling_a_service_down_stops_the_instances_past_the_count() -> None:
    core = running_service()
    room = ClusterRoom(agents=(agent(1, "cpus:2;mem:2048"),))
    p = plan(SERVICE.replace("instances: 2", "instances: 1"), room, core)
    assert [(i.index, i.action) for i in p.instances] == [(0, "replace"), (1, "stop")]
    assert [c.field for c in p.changes] == ["instances"]


def test_an_update_of_a_running_batch_job_keeps_its_running_instances() -> None:
    core = JobsCore()
    submit(core, spec_text(instances=2))
    [t] = launch_all(core, [offer(1, "cpus:1;mem:64")], T0)
    core.on_update(status(t, TaskState.RUNNING), T0 + 1)
    room = ClusterRoom(agents=(agent(1, "cpus:4;mem:4096"),))
    p = plan(spec_text(instances=2).replace("./crunch", "./crunch2"), room, core)
    assert [(i.action, i.hostname) for i in p.instances] == [
        ("keep", "host-1"), ("launch", "host-1")]


def test_an_unchanged_spec_says_no_field_changes() -> None:
    core = running_service()
    p = plan(SERVICE, ClusterRoom(agents=(agent(1, "cpus:4;mem:4096"),)), core)
    assert p.changes == () and p.message.startswith("no field changes")


def test_a_cron_plan_names_its_next_run() -> None:
    p = plan(CRON, ClusterRoom(agents=(agent(1, "cpus:4;mem:4096"),)))
    assert p.next_run_at == T0 + 30 and p.instances[0].action == "launch"


def test_diff_specs_names_nested_fields_by_path() -> None:
    a = parse_job_spec(spec_text(extra="env: {A: '1'}\nretries: {limit: 1}\n"))
    b = parse_job_spec(spec_text(extra="env: {A: '2', B: x}\nretries: {limit: 3}\n"))
    assert [(c.field, c.old, c.new) for c in diff_specs(a, b)] == [
        ("env.A", "1", "2"), ("env.B", "-", "x"), ("retries.limit", "1", "3")]


def test_job_status_says_why_each_waiting_instance_waits() -> None:
    core = JobsCore()
    submit(core, spec_text(instances=2))
    job = core.jobs["crunch"]
    full = ClusterRoom(agents=(agent(1, "cpus:0.5;mem:4096"),),
                       reasons={"*": "no free resources"})
    view = with_pending_reasons(job.view(), pending_reasons(job, full))
    assert all("no agent has cpus:1;mem:64 free" in i.message for i in view.instances)
    assert view.message.startswith("instance 0: no agent has")
    room = ClusterRoom(agents=(agent(1, "cpus:1;mem:4096"),))
    reasons = pending_reasons(job, room)
    assert reasons[0] == "fits on host-1 now, waiting for an offer"
    assert reasons[1].startswith("no agent has")


def test_an_instance_message_that_says_more_than_waiting_is_kept() -> None:
    core = JobsCore()
    submit(core, spec_text(instances=1, extra="retries: {limit: 1, backoff_s: 0}\n"))
    [t] = launch_all(core, [offer(1)], T0)
    core.on_update(status(t, TaskState.FAILED, exit_code=3), T0 + 1)
    job = core.jobs["crunch"]
    view = with_pending_reasons(job.view(), pending_reasons(job, ClusterRoom()))
    assert "exit code 3" in view.instances[0].message


def test_an_allocator_reason_that_was_an_offer_is_not_given_as_why_an_instance_waits() -> None:
    room = ClusterRoom(agents=(agent(1, "cpus:0;mem:0"),), reasons={"*": "offered 1 agent"})
    [i] = plan(spec_text(instances=1), room).instances
    assert i.reason == ("no agent has cpus:1;mem:64 free for role * now "
                        "(most free: nothing on host-1)")


def test_a_message_about_the_last_offers_gives_way_to_the_reason_judged_now() -> None:
    core = JobsCore()
    submit(core, spec_text(instances=1))
    launch_all(core, [offer(1, "cpus:0.5;mem:4096")], T0)  # too small: says so
    job = core.jobs["crunch"]
    core.refresh()
    assert job.view().message.startswith("instance 0: cannot be placed: no offer has")
    room = ClusterRoom(agents=(agent(1, "cpus:0.25;mem:4096"),))
    view = with_pending_reasons(job.view(), pending_reasons(job, room))
    assert view.instances[0].message.startswith("no agent has cpus:1;mem:64 free for role *")
    assert view.message == f"instance 0: {view.instances[0].message}"
