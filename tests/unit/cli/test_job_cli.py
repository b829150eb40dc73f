"""`mesoslite job ...` against a real `grpc.aio` server running `JobsServicer` over an
in-memory `JobsApi` (the jobs framework itself is tested with real daemons elsewhere).

The CLI is blocking, so it runs in a worker thread while the server runs on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import pytest
import yaml
from click.testing import CliRunner, Result

from mesoslite._proto.v1 import jobs_pb2_grpc
from mesoslite.cli import cli, job_wait
from mesoslite.cli import job as job_cli
from mesoslite.cli.exit_codes import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_TEMPFAIL,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from mesoslite.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from mesoslite.jobs.api import JobsApi
from mesoslite.jobs.model import (
    AttemptView,
    InstanceState,
    InstanceView,
    JobState,
    JobType,
    JobView,
    RunState,
    RunView,
)
from mesoslite.jobs.summary import JobSummary
from mesoslite.master.jobs_service import JobsServicer
from mesoslite.rpc import SERVER_OPTIONS

NOW = 1_800_000_000.0


@dataclass
class FakeJobs:
    """A `JobsApi` in memory. A spec is YAML with `name` and `type`; the label `x_states`
    lists the states `status` reports, one per call, the last one repeated, and the label
    `x_reject` makes it refuse the spec as a master refuses resources no agent has."""

    jobs: dict[str, JobView] = field(default_factory=dict)
    script: dict[str, list[JobState]] = field(default_factory=dict)
    submitted: list[str] = field(default_factory=list)

    def _parse(self, spec_yaml: str) -> tuple[dict[str, object], JobView]:
        doc = yaml.safe_load(spec_yaml)
        if not isinstance(doc, dict) or "name" not in doc:
            raise ValidationError("name", "is required")
        if "x_reject" in doc.get("labels", {}):
            raise ValidationError("resources", "no agent has cpus:64 in all")
        kind = JobType(doc.get("type", "batch"))
        n = int(doc.get("instances", 1))  # type: ignore[call-overload]
        view = JobView(
            name=str(doc["name"]), type=kind, state=JobState.PENDING, spec_yaml=spec_yaml,
            instances_wanted=n, submitted_at=NOW, updated_at=NOW,
            instances=tuple(InstanceView(index=i, state=InstanceState.WAITING) for i in range(n)),
        )
        return doc, view

    async def submit(self, spec_yaml: str) -> JobView:
        doc, view = self._parse(spec_yaml)
        old = self.jobs.get(view.name)
        if old is not None and not old.state.terminal:
            raise AlreadyExistsError(f"job {view.name!r} exists and has not ended")
        self.jobs[view.name] = view
        states = str(doc.get("labels", {}).get("x_states", ""))  # type: ignore[attr-defined]
        self.script[view.name] = [JobState(s) for s in states.split(",") if s]
        self.submitted.append(spec_yaml)
        return view

    async def update(self, spec_yaml: str) -> JobView:
        _, new = self._parse(spec_yaml)
        old = self.status(new.name)
        if old.type is not new.type:
            raise ConflictError(f"job {new.name!r} is a {old.type.value} job")
        view = replace(old, spec_yaml=spec_yaml, version=old.version + 1)
        self.jobs[new.name] = view
        return view

    async def kill(self, name: str) -> JobView:
        view = self.status(name)
        if not view.state.terminal:
            view = self.jobs[name] = replace(view, state=JobState.KILLED)
        return view

    def list(self) -> list[JobView]:
        return list(self.jobs.values())

    def status(self, name: str) -> JobView:
        if name not in self.jobs:
            raise NotFoundError(f"job {name!r} is not known")
        script = self.script.get(name)
        if script:
            state = script.pop(0) if len(script) > 1 else script[0]
            view = self.jobs[name]
            running = {JobState.RUNNING: 1, JobState.DEPLOYING: 2}.get(state, 0)
            instances = tuple(
                replace(i, state=InstanceState.RUNNING if i.index < running
                        else InstanceState.WAITING)
                for i in view.instances
            )
            message = "hostname UNIQUE: all agents already run an instance" if running else ""
            self.jobs[name] = replace(view, state=state, instances=instances, message=message)
        return self.jobs[name]

    def history(self, name: str) -> list[AttemptView]:
        self.status(name)
        return [
            AttemptView(run_id="r1", instance=0, attempt=1, task_id=f"{name}-0-1",
                        state="TASK_FAILED", hostname="h1", started_at=NOW, finished_at=NOW + 1,
                        exit_code=3, message="exited 3"),
            AttemptView(run_id="r1", instance=0, attempt=2, task_id=f"{name}-0-2",
                        state="TASK_RUNNING", hostname="h2", started_at=NOW + 2),
        ]


@dataclass
class Master:
    address: str
    jobs: FakeJobs
    enabled: list[bool]

    async def run(self, *args: str, stdin: str | None = None) -> Result:
        runner = CliRunner()
        argv = ["--master", self.address, "job", *args]
        return await asyncio.to_thread(runner.invoke, cli, argv, input=stdin)


@dataclass
class WatchingJobs(FakeJobs):
    """`FakeJobs` with `watch` (a master that streams summaries): one summary per scripted
    state, as `status` would report them; `status` calls are counted."""

    status_calls: int = 0
    intervals: list[float] = field(default_factory=list)

    def status(self, name: str) -> JobView:
        self.status_calls += 1
        return super().status(name)

    async def watch(self, name: str, min_interval_s: float) -> AsyncIterator[JobSummary]:
        self.intervals.append(min_interval_s)
        while True:
            view = FakeJobs.status(self, name)
            counts: dict[InstanceState, int] = {}
            for i in view.instances:
                counts[i.state] = counts.get(i.state, 0) + 1
            yield JobSummary(name=view.name, type=view.type, state=view.state,
                             message=view.message, instances_wanted=view.instances_wanted,
                             counts=counts)
            if view.state.terminal:
                return
            await asyncio.sleep(0.01)


@pytest.fixture(params=[FakeJobs, WatchingJobs], ids=["polls-status", "watches"])
async def master(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Master]:
    monkeypatch.setattr(job_cli, "WAIT_INTERVAL_S", 0.01)
    jobs = request.param()
    enabled = [True]
    api: Callable[[], JobsApi | None] = lambda: jobs if enabled[0] else None  # noqa: E731
    server = grpc.aio.server(options=SERVER_OPTIONS)
    jobs_pb2_grpc.add_JobsServicer_to_server(JobsServicer(api), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Master(f"127.0.0.1:{port}", jobs, enabled)
    finally:
        await server.stop(None)


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def spec(name: str, kind: str = "batch", states: Sequence[str] = (), instances: int = 3) -> str:
    doc: dict[str, object] = {
        "name": name, "type": kind, "instances": instances, "command": "true",
        "labels": {"x_states": ",".join(states)},
    }
    if kind == "cron":
        doc["schedule"] = "@daily"
    return yaml.safe_dump(doc)


async def test_submit_prints_the_jobs_name_and_sends_the_spec(
    master: Master, tmp_path: Path
) -> None:
    text = spec("web")
    result = await master.run("submit", write(tmp_path, text))
    assert (result.exit_code, result.stdout) == (EXIT_OK, "web\n")
    assert master.jobs.submitted == [text]


async def test_submit_reads_the_spec_from_stdin_given_a_dash(master: Master) -> None:
    result = await master.run("submit", "-", stdin=spec("from-stdin"))
    assert (result.exit_code, result.stdout) == (EXIT_OK, "from-stdin\n")


@pytest.mark.parametrize(
    ("kind", "states", "code", "last_line"),
    [
        ("batch", ["PENDING", "RUNNING", "SUCCEEDED"], EXIT_OK, "b: SUCCEEDED"),
        ("batch", ["RUNNING", "FAILED"], EXIT_FAILURE, "b: FAILED"),
        ("batch", ["RUNNING", "KILLED"], EXIT_FAILURE, "b: KILLED"),
        ("service", ["DEPLOYING", "HEALTHY"], EXIT_OK, "b: HEALTHY"),
        ("service", ["DEPLOYING", "FAILED"], EXIT_FAILURE, "b: FAILED"),
        ("cron", ["PENDING", "SCHEDULED"], EXIT_OK, "b: SCHEDULED"),
    ],
)
async def test_submit_wait_follows_the_job_and_exits_with_its_outcome(
    master: Master, tmp_path: Path, kind: str, states: list[str], code: int, last_line: str
) -> None:
    result = await master.run("submit", "--wait", write(tmp_path, spec("b", kind, states)))
    assert result.exit_code == code, result.output
    assert result.stdout == "b\n"
    progress = result.stderr.splitlines()
    assert progress[-1] == last_line
    assert len(progress) == len(progress_lines := set(progress))  # one line per change
    if "RUNNING" in states:
        assert "b: 1/3 running, 2 waiting: hostname UNIQUE: all agents already run an instance" \
            in progress_lines
    if isinstance(master.jobs, WatchingJobs):  # followed on the stream, never polled
        assert master.jobs.status_calls == 0
        assert master.jobs.intervals == [job_wait.SUMMARY_INTERVAL_S]


async def test_submit_wait_gives_up_after_its_timeout(master: Master, tmp_path: Path) -> None:
    path = write(tmp_path, spec("slow", states=["RUNNING"]))
    result = await master.run("submit", "--wait", "--timeout", "0.1", path)
    assert result.exit_code == EXIT_TEMPFAIL
    assert "mesoslite: job slow is still RUNNING after 0.1s" in result.stderr


async def test_a_name_in_use_is_rejected_with_its_exit_code(
    master: Master, tmp_path: Path
) -> None:
    path = write(tmp_path, spec("dup"))
    assert (await master.run("submit", path)).exit_code == EXIT_OK
    result = await master.run("submit", path)
    assert result.exit_code == EXIT_REJECTED
    assert result.stderr == "mesoslite: job 'dup' exists and has not ended\n"


async def test_a_spec_the_master_rejects_exits_2_naming_the_field(
    master: Master, tmp_path: Path
) -> None:
    rejected = "name: r\ntype: batch\ncommand: 'true'\nlabels: {x_reject: 'yes'}\n"
    result = await master.run("submit", write(tmp_path, rejected))
    assert result.exit_code == EXIT_USAGE
    assert result.stderr == "mesoslite: resources: no agent has cpus:64 in all\n"


async def test_a_bad_spec_is_refused_before_the_master_with_every_problem_on_its_line(
    master: Master, tmp_path: Path
) -> None:
    path = write(tmp_path, "type: batchy\ncommand: 'true'\n")
    result = await master.run("submit", path)
    assert result.exit_code == EXIT_USAGE
    assert sorted(result.stderr.splitlines()) == [
        f"mesoslite: {path}: name: is required: a DNS label like 'nightly-report'",
        f"mesoslite: {path}: type: expected one of batch, service, cron, got 'batchy'",
    ]
    assert master.jobs.submitted == []


async def test_update_bumps_the_version_and_refuses_a_change_of_type(
    master: Master, tmp_path: Path
) -> None:
    await master.run("submit", write(tmp_path, spec("svc", "service")))
    result = await master.run("update", write(tmp_path, spec("svc", "service", instances=5)))
    assert (result.exit_code, result.stdout) == (EXIT_OK, "svc\n")
    assert master.jobs.jobs["svc"].version == 2
    result = await master.run("update", write(tmp_path, spec("svc", "batch")))
    assert result.exit_code == EXIT_REJECTED
    assert "is a service job" in result.stderr


async def test_an_unknown_job_exits_66_with_the_masters_message(master: Master) -> None:
    for args in (("status", "nope"), ("history", "nope"), ("kill", "nope")):
        result = await master.run(*args)
        assert result.exit_code == EXIT_NOT_FOUND, args
        assert result.stderr == "mesoslite: job 'nope' is not known\n"


async def test_with_the_jobs_framework_off_every_command_says_so(
    master: Master, tmp_path: Path
) -> None:
    master.enabled[0] = False
    for args in (("list",), ("status", "x"), ("submit", write(tmp_path, spec("x")))):
        result = await master.run(*args)
        assert result.exit_code == EXIT_UNAVAILABLE, args
        assert result.stderr == (
            "mesoslite: the jobs framework is not running on this master "
            "(started with --no-jobs?)\n"
        )


async def test_list_and_status_json_parse_and_carry_the_views_fields(
    master: Master, tmp_path: Path
) -> None:
    await master.run("submit", write(tmp_path, spec("a", states=["RUNNING"])))
    await master.run("submit", write(tmp_path, spec("c", "cron", instances=1)))
    master.jobs.jobs["c"] = replace(
        master.jobs.jobs["c"], state=JobState.SCHEDULED, next_run_at=NOW + 3600,
        runs=(RunView(run_id="c-1", state=RunState.FAILED, scheduled_at=NOW - 60,
                      exit_codes=(2,), attempts=1),),
    )
    listed = json.loads((await master.run("list", "--json")).stdout)
    assert [j["name"] for j in listed] == ["a", "c"]
    result = await master.run("status", "c", "--json")
    doc = json.loads(result.stdout)
    assert (doc["type"], doc["state"], doc["next_run_at"]) == ("cron", "SCHEDULED", NOW + 3600)
    assert doc["runs"] == [{
        "run_id": "c-1", "state": "FAILED", "scheduled_at": NOW - 60, "started_at": None,
        "finished_at": None, "exit_codes": [2], "attempts": 1, "message": "",
    }]
    status = json.loads((await master.run("status", "a", "--json")).stdout)
    assert [i["state"] for i in status["instances"]] == ["RUNNING", "WAITING", "WAITING"]
    assert status["instances"][0]["exit_code"] is None
    history = json.loads((await master.run("history", "a", "--json")).stdout)
    assert [(h["attempt"], h["exit_code"]) for h in history] == [(1, 3), (2, None)]


async def test_status_shows_instances_next_run_and_runs_with_exit_codes(
    master: Master, tmp_path: Path
) -> None:
    await master.run("submit", write(tmp_path, spec("c", "cron", instances=1)))
    master.jobs.jobs["c"] = replace(
        master.jobs.jobs["c"], state=JobState.SCHEDULED, next_run_at=NOW + 3600,
        message="next run in an hour",
        runs=(RunView(run_id="c-1", state=RunState.FAILED, exit_codes=(2, None), attempts=3),),
    )
    out = (await master.run("status", "c")).stdout
    assert "name:       c (cron, version 1)" in out
    assert "state:      SCHEDULED" in out
    assert "message:    next run in an hour" in out
    assert "next run:   " in out
    assert "c-1  FAILED" in out and "2,-" in out
    assert "INSTANCE  STATE" in out


async def test_list_history_and_kill_print_tables_and_lines(
    master: Master, tmp_path: Path
) -> None:
    await master.run("submit", write(tmp_path, spec("k")))
    table = (await master.run("list")).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "TYPE", "STATE"]
    assert table[1].split()[:5] == ["k", "batch", "PENDING", "0/3", "1"]
    history = (await master.run("history", "k")).stdout.splitlines()
    assert history[0].startswith("RUN  INSTANCE  ATTEMPT  TASK")
    assert "k-0-1" in history[1] and "exited 3" in history[1]
    assert (await master.run("kill", "k")).stdout == "killing job k\n"
    master.jobs.jobs["k"] = replace(master.jobs.jobs["k"], state=JobState.SUCCEEDED)
    assert (await master.run("kill", "k")).stdout == "job k has already ended: SUCCEEDED\n"


# ---------------------------------------------------------------------------- validate


def test_validate_prints_the_name_and_type_of_a_good_spec(tmp_path: Path) -> None:
    path = write(tmp_path, "name: hello\ntype: batch\ncommand: echo hi\n"
                 "resources: {cpus: 0.1, mem: 32}\n")
    result = CliRunner().invoke(cli, ["--master", "127.0.0.1:1", "job", "validate", path])
    assert (result.exit_code, result.stdout) == (EXIT_OK, "ok: hello (batch)\n"), result.output


def test_validate_names_the_bad_field_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "name: hello\ntype: batch\ncommand: echo hi\n"
                 "resources: {cpus: 0.1, mem: 32}\nretries: {limit: 2, bakoff_s: 1}\n")
    result = CliRunner().invoke(cli, ["job", "validate", path])
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("mesoslite: ")
    assert "retries.bakoff_s" in result.stderr


def test_validate_lists_every_problem_one_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: Bad_Name\ntype: batch\ncommand: echo\nschedule: '@daily'\n")
    result = CliRunner().invoke(cli, ["job", "validate", path])
    assert result.exit_code == EXIT_USAGE
    lines = result.stderr.splitlines()
    assert [line.split(": ")[2] for line in lines] == ["name", "schedule"]
    assert all(line.startswith(f"mesoslite: {path}: ") for line in lines)


def test_validate_says_where_the_yaml_is_broken(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["job", "validate", write(tmp_path, "name: [x\n")])
    assert result.exit_code == EXIT_USAGE
    assert "job.yaml is not valid YAML at line 2" in result.stderr


def test_every_example_job_is_valid() -> None:
    examples = sorted((Path(__file__).parents[3] / "examples" / "jobs").glob("*.yaml"))
    assert examples
    for path in examples:
        result = CliRunner().invoke(cli, ["job", "validate", str(path)])
        assert result.exit_code == EXIT_OK, result.stderr


def test_validate_reads_stdin_given_a_dash() -> None:
    result = CliRunner().invoke(cli, ["job", "validate", "-"], input="name: x\n")
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.startswith("mesoslite: <stdin>")


# ---------------------------------------------------------------------------- progress line


def test_the_progress_line_counts_instances_and_says_why_they_wait() -> None:
    view = JobView(
        name="web", type=JobType.SERVICE, state=JobState.DEPLOYING, spec_yaml="",
        instances_wanted=3, submitted_at=NOW, updated_at=NOW,
        message="hostname UNIQUE: all 3 agents already run an instance",
        instances=(
            InstanceView(index=0, state=InstanceState.RUNNING, healthy=True),
            InstanceView(index=1, state=InstanceState.RUNNING, healthy=False),
            InstanceView(index=2, state=InstanceState.WAITING),
        ),
    )
    assert job_cli.progress_line(view, NOW) == (
        "web: 2/3 running (1 unhealthy), 1 waiting: "
        "hostname UNIQUE: all 3 agents already run an instance"
    )
    done = replace(view, state=JobState.HEALTHY, message="")
    assert job_cli.progress_line(done, NOW) == "web: HEALTHY"


def test_relative_times_read_naturally() -> None:
    assert job_cli.format_relative(NOW + 240, NOW) == "in 4m"
    assert job_cli.format_relative(NOW + 5, NOW) == "in 5s"
    assert job_cli.format_relative(NOW - 300, NOW) == "5m ago"
    assert job_cli.format_relative(NOW, NOW) == "now"
