"""Helpers for the agent's integration tests: polling, daemons by pid, a raw-gRPC framework."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psutil

from mesoslite._proto.v1 import (
    common_pb2,
    operator_pb2,
    operator_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

BIN = Path(sys.executable).parent
Ev = scheduler_pb2.Event


async def assert_eventually(
    pred: Callable[[], Any], *, timeout_s: float = 10.0, interval_s: float = 0.02, what: str = ""
) -> Any:
    """Await until `pred()` (plain or async) returns a true value, and return it.

    `pred` may also raise AssertionError to mean "not yet"; the last one is reported.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        error: AssertionError | None = None
        value: Any = None
        try:
            value = pred()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
        except AssertionError as e:
            error = e
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"not true within {timeout_s:g}s: {what or getattr(pred, '__name__', pred)}"
                f" (last value {value!r}{f', {error}' if error else ''})"
            )
        await asyncio.sleep(interval_s)


# ---------------------------------------------------------------------- processes


def alive(pid: int) -> bool:
    """True if `pid` runs (a zombie waiting for its reaper does not count)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid`."""
    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return out


def work_dir_processes(work_dir: Path, supervisor: bool = True) -> list[psutil.Process]:
    """Live processes an agent in `work_dir` started that are not its descendants: its task
    supervisor (`WORK/bin/mesoslite-supervisor-*`, in its own session; not with
    `supervisor=False`), the supervisor's tasks, and tasks orphaned by a supervisor that died
    (a task's environment names its sandbox, under `WORK/sandboxes`; its cwd is there unless
    it moved)."""
    root = str(work_dir.resolve())
    inside = (root + os.sep + "bin" + os.sep, root + os.sep + "sandboxes" + os.sep)
    tag = f"MESOSLITE_SANDBOX={root}{os.sep}".encode()
    out: list[psutil.Process] = []
    for p in psutil.process_iter():
        try:
            if p.pid == os.getpid() or p.status() == psutil.STATUS_ZOMBIE:
                continue
            if p.exe().startswith(inside[0]):
                if supervisor or "mesoslite-supervisor-" not in p.exe():
                    out.append(p)
                continue
            if (p.cwd() + os.sep).startswith(inside[1]):
                out.append(p)
                continue
            with open(f"/proc/{p.pid}/environ", "rb") as f:
                if any(e.startswith(tag) for e in f.read().split(b"\0")):
                    out.append(p)
        except (psutil.Error, OSError):
            pass  # gone meanwhile, or a kernel thread
    return out


class Daemon:
    """A mesoslite daemon subprocess, always ended by its pid (with what it started)."""

    def __init__(
        self,
        argv: list[str],
        log: Path,
        agent_work_dir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = argv
        self.log = log
        self.env = env  # None: ours
        self.proc: subprocess.Popen[bytes] | None = None
        self.descendants: set[int] = set()
        # The same processes, kept to end them at teardown: psutil refuses to signal a
        # process whose pid was reused meanwhile (it compares start times).
        self._remembered: dict[int, psutil.Process] = {}
        # An agent's: its cgroup directories are removed once it and its tasks are gone.
        self.agent_work_dir = agent_work_dir

    def start(self) -> Daemon:
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(
                self.argv, stdout=f, stderr=subprocess.STDOUT, env=self.env
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def remember_descendants(self) -> set[int]:
        """Note the daemon's process tree now, so that teardown can end what it leaves; for an
        agent, also its task supervisor and every task of its work dir (`work_dir_processes`)."""
        found: list[psutil.Process] = []
        with contextlib.suppress(psutil.NoSuchProcess):
            found += psutil.Process(self.pid).children(recursive=True)
        if self.agent_work_dir is not None:
            found += work_dir_processes(self.agent_work_dir)
        for p in found:
            self._remembered.setdefault(p.pid, p)
        self.descendants |= {p.pid for p in found}
        return self.descendants

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout_s: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; then SIGKILL any process it left behind."""
        if self.proc is None:
            return
        self.remember_descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Again now that it is gone: a task launched after the first look, a new supervisor.
        self.remember_descendants()
        procs = list(self._remembered.values())
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if self.agent_work_dir is not None:
            from mesoslite.testing.local_cluster import remove_agent_cgroups_of

            psutil.wait_procs(procs, timeout=2)
            remove_agent_cgroups_of([self.agent_work_dir])

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def start_master(work_dir: Path, port: int = 0, *extra: str) -> tuple[Daemon, str]:
    """Start `mesoslite-master` and wait for `master.json`; returns it and its address."""
    work_dir.mkdir(parents=True, exist_ok=True)
    info = work_dir / "master.json"
    info.unlink(missing_ok=True)
    master = Daemon(
        [
            str(BIN / "mesoslite-master"),
            "--port",
            str(port),
            "--work-dir",
            str(work_dir),
            "--agent-ping-interval-s",
            "0.5",
            "--log-level",
            "debug",
            *extra,
        ],
        work_dir.parent / f"{work_dir.name}.log",
    ).start()
    deadline = time.monotonic() + 15
    while not info.exists():
        if master.proc is not None and master.proc.poll() is not None:
            raise AssertionError(f"master exited at start:\n{master.log_tail()}")
        if time.monotonic() > deadline:
            master.stop()
            raise AssertionError(f"master did not start:\n{master.log_tail()}")
        time.sleep(0.02)
    address = json.loads(info.read_text())["address"]
    _wait_leading(master, address, deadline)
    return master, address


def _wait_leading(master: Daemon, address: str, deadline: float) -> None:
    """master.json is written when the master listens, a moment before it leads (standalone
    too): wait until it answers GetMaster, so that the first call of a test is not refused."""
    with grpc.insecure_channel(address) as channel:
        stub = operator_pb2_grpc.OperatorStub(channel)
        while True:
            try:
                if stub.GetMaster(operator_pb2.GetMasterRequest(), timeout=2).leading:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                master.stop()
                raise AssertionError(f"master did not lead:\n{master.log_tail()}")
            time.sleep(0.02)


AGENT_RESOURCES = "cpus:4;mem:1024;disk:1000;ports:[31000-31010]"


def agent_argv(master: str, work_dir: Path, *extra: str) -> list[str]:
    return [
        str(BIN / "mesoslite-agent"),
        "--master",
        master,
        "--work-dir",
        str(work_dir),
        "--resources",
        AGENT_RESOURCES,
        "--attributes",
        "rack:r1;zone:z1",
        "--status-update-retry-s",
        "0.5",
        "--reconnect-backoff-max-s",
        "0.3",
        "--kill-grace-period-s",
        "1",
        "--log-level",
        "debug",
        *extra,
    ]


def start_agent(
    master: str, work_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> Daemon:
    work_dir.mkdir(parents=True, exist_ok=True)
    return Daemon(
        agent_argv(master, work_dir, *extra), work_dir.parent / f"{work_dir.name}.log",
        agent_work_dir=work_dir, env=env,
    ).start()


# ---------------------------------------------------------------------- a framework by hand


def shell_task(task_id: str, command: str, resources: str = "cpus:0.1;mem:16", **kw: Any) -> Any:
    return common_pb2.TaskInfo(
        task_id=task_id,
        name=task_id,
        resources=scalar_resources(resources),
        command=common_pb2.CommandInfo(shell=True, value=command),
        **kw,
    )


def scalar_resources(text: str) -> list[Any]:
    out = []
    for part in text.split(";"):
        name, _, value = part.partition(":")
        out.append(
            common_pb2.Resource(name=name, kind=common_pb2.Resource.SCALAR, scalar=float(value))
        )
    return out


class Framework:
    """A framework speaking raw gRPC to the master: records every event, acks only on demand."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.channel = grpc.aio.insecure_channel(address)
        self.scheduler = scheduler_pb2_grpc.SchedulerStub(self.channel)
        self.operator = operator_pb2_grpc.OperatorStub(self.channel)
        self.id = ""
        self.offers: dict[str, Any] = {}
        self.updates: list[Any] = []
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def subscribe(
        self, name: str = "test", failover_timeout_s: float = 0.0, partition_aware: bool = False
    ) -> Framework:
        info = common_pb2.FrameworkInfo(
            id=self.id, name=name, user="", failover_timeout_s=failover_timeout_s,
            partition_aware=partition_aware,
        )
        call = self.scheduler.Subscribe(scheduler_pb2.SubscribeRequest(framework_info=info))
        self._subscribed.clear()
        self._reader = asyncio.create_task(self._read(call))
        await asyncio.wait_for(self._subscribed.wait(), 10)
        return self

    async def _read(self, call: Any) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for ev in call:
                if ev.type == Ev.SUBSCRIBED:
                    self.id = ev.subscribed.framework_id
                    self._subscribed.set()
                elif ev.type == Ev.OFFERS:
                    for o in ev.offers.offers:
                        self.offers[o.id] = o
                elif ev.type == Ev.RESCIND:
                    self.offers.pop(ev.rescind.offer_id, None)
                elif ev.type == Ev.UPDATE:
                    self.updates.extend(ev.update.statuses)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.channel.close()

    async def launch(self, *tasks: Any) -> None:
        """Launch `tasks` on the next offer (retrying if the offer went away meanwhile)."""
        for _ in range(50):
            await assert_eventually(lambda: self.offers, what="an offer")
            offer_id = next(iter(self.offers))
            offer = self.offers.pop(offer_id)
            op = scheduler_pb2.Operation(
                type=scheduler_pb2.Operation.LAUNCH,
                launch=scheduler_pb2.Operation.Launch(task_infos=list(tasks)),
            )
            try:
                await self.scheduler.Accept(
                    scheduler_pb2.AcceptRequest(
                        framework_id=self.id, offer_ids=[offer.id], operations=[op]
                    )
                )
                return
            except grpc.aio.AioRpcError as e:
                if e.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                    raise
        raise AssertionError("no usable offer")

    def updates_of(self, task_id: str) -> list[Any]:
        return [u for u in self.updates if u.task_id == task_id]

    async def wait_state(self, task_id: str, state: int, timeout_s: float = 10.0) -> Any:
        def find() -> Any:
            return next((u for u in self.updates_of(task_id) if u.state == state), None)

        name = common_pb2.TaskState.Name(state)
        return await assert_eventually(find, timeout_s=timeout_s, what=f"{task_id} {name}")

    async def ack(self, *statuses: Any) -> None:
        await self.scheduler.Acknowledge(
            scheduler_pb2.AcknowledgeRequest(
                framework_id=self.id,
                acknowledgements=[
                    scheduler_pb2.Acknowledgement(
                        agent_id=s.agent_id, task_id=s.task_id, uuid=s.uuid
                    )
                    for s in statuses
                ],
            )
        )

    async def kill(self, task_id: str, grace_s: float = 0.0) -> None:
        await self.scheduler.Kill(
            scheduler_pb2.KillRequest(
                framework_id=self.id, task_id=task_id, kill_grace_period_s=grace_s
            )
        )

    async def agents(self) -> list[Any]:
        return list((await self.operator.GetAgents(operator_pb2.GetAgentsRequest())).agents)

    async def tasks(self) -> list[Any]:
        return list((await self.operator.GetTasks(operator_pb2.GetTasksRequest())).tasks)

    async def read_file(self, task_id: str, name: str = "stdout") -> Any:
        return await self.operator.ReadFile(
            operator_pb2.ReadFileRequest(task_id=task_id, framework_id=self.id, name=name)
        )
