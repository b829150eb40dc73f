"""The CLI's one door to gRPC: find the master, call its Operator service, map errors.

Commands import this module inside their function, never at the top, so that `mesoslite
--help` does not pay for grpc and protobuf. Two clients share every request and conversion:
`OperatorClient` (`grpc.aio`, for code on an event loop such as `mesoslite run`) and
`BlockingOperatorClient` (for plain commands and `mesoslite.testing.LocalCluster`). Both
return `_views` dataclasses (converted from the wire in `_convert`) or plain values; a failed
call raises the `MesosliteError` subclass of its status (`mesoslite.rpc.error_from_rpc`), and
a master that cannot be reached raises `UnavailableError` saying what to do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any, TypeVar

import grpc

from mesoslite._proto.v1 import jobs_pb2, jobs_pb2_grpc, operator_pb2, operator_pb2_grpc
from mesoslite.cli._convert import (
    followed_chunk,
    job_view,
    resources,  # noqa: F401 (re-exported: `_client.resources`)
    task_view,  # noqa: F401 (re-exported: `_client.task_view`)
)
from mesoslite.cli._requests import Requests, _Call
from mesoslite.cli._views import (
    AgentView,
    ExplainView,
    FileChunk,
    FollowedChunk,
    FrameworkView,
    RoleView,
    TaskView,
)
from mesoslite.errors import DeadlineExceededError, MesosliteError, NotLeaderError, UnavailableError
from mesoslite.jobs.convert import attempt_from_pb, job_from_pb, plan_from_pb
from mesoslite.jobs.model import AttemptView, JobPlan, JobView
from mesoslite.resources import Resources
from mesoslite.rpc import error_from_rpc, parse_address
from mesoslite.security.retry_after import rate_limited
from mesoslite.transport import Security, open_channel

DEFAULT_TIMEOUT_S = 10.0
# How many standby masters' redirects (or other masters of a list) to try before giving up.
MAX_REDIRECTS = 5
# With zk://, the longest wait before asking ZooKeeper again for a leader that answers (cut
# short when ZooKeeper reports a change), and for how long to keep asking (covers a
# failover with the default 10 s session timeout); ZK_LOOKUPS bounds the count as well.
ZK_LOOKUP_INTERVAL_S = 0.5
ZK_FOLLOW_S = 15.0
ZK_LOOKUPS = 200
ZK_TIMEOUT_S = 5.0
# What grpc says when no connection could be made, as opposed to an UNAVAILABLE that the
# master itself sent (e.g. its registry is down).
_UNREACHABLE_MARKERS = (
    "failed to connect", "connection refused", "dns resolution failed", "name resolution",
    "socket closed", "connection reset", "no route to host", "network is unreachable",
    "endpoint closed", "connections to all backends failing",
)

T = TypeVar("T")


def resolve_master(text: str) -> str:
    """`host`, `host:port` or `grpc://host:port` → `host:port` (port 5050 by default); a
    list `host:port,host:port` → its first; `zk://hosts/path` → the leader in ZooKeeper.

    Raises:
        ValidationError: the address is empty or its port is not a port.
        UnavailableError: (`zk://`) ZooKeeper cannot be reached or names no leader.
    """
    return resolve_masters(text)[0]


def resolve_masters(text: str) -> list[str]:
    """Every master to try, in order (see `resolve_master`)."""
    from mesoslite.discovery import is_zk_url, lookup_leader, parse_masters

    if is_zk_url(text):
        return [lookup_leader(text)]
    return [parse_address(t) for t in parse_masters(text)]


def unreachable_message(address: str) -> str:
    return (
        f"cannot reach the master at {address}: is it running? "
        "(set --master or MESOSLITE_MASTER)"
    )


def _map_error(exc: grpc.RpcError, address: str, timeout_s: float) -> MesosliteError:
    err = error_from_rpc(exc)
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else "") or ""
    if code == grpc.StatusCode.UNAVAILABLE and not isinstance(err, NotLeaderError):
        if any(marker in details.lower() for marker in _UNREACHABLE_MARKERS):
            return UnavailableError(unreachable_message(address))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and details == "Deadline Exceeded":
        return DeadlineExceededError(f"the master at {address} did not answer in {timeout_s:g}s")
    return err


def _stub(channel: Any) -> Any:
    stub: Any = operator_pb2_grpc.OperatorStub(channel)
    # The Jobs service on the same channel: a `_Call` for it names `jobs.Submit` etc.
    stub.jobs = jobs_pb2_grpc.JobsStub(channel)
    return stub


def _method(stub: Any, name: str) -> Any:
    for part in name.split("."):
        stub = getattr(stub, part)
    return stub


class _Base(Requests):
    """What both clients share: which master to call (`leader.LeaderFollower`, the same
    way the agent and the SDK find it) and how to follow a standby or ZooKeeper to the
    leader when a call fails."""

    def __init__(
        self, address: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
        security: Security | None = None,
    ) -> None:
        from mesoslite.leader import LeaderFollower
        from mesoslite.tls_settings import client_security

        # TLS: as given, else the CLI's --tls-* ($MESOSLITE_TLS_*), plain text if unset.
        self.security = security if security is not None else client_security()
        self._leader = LeaderFollower(
            address, backoff_max_s=ZK_LOOKUP_INTERVAL_S, backoff_min_s=0.05,
            zk_timeout_s=min(timeout_s, ZK_TIMEOUT_S),
        )
        self._zk = self._leader.locator.zk is not None
        self._candidates = [parse_address(a) for a in self._leader.locator.addresses]
        try:
            self.address = self._leader.current_blocking() if self._zk else self._candidates[0]
        except BaseException:
            self._leader.close_blocking()
            raise
        self.timeout_s = timeout_s
        self._lookups = 0
        self._follow_until = 0.0  # with zk://: stop asking ZooKeeper again after this
        # Ask ZooKeeper again before the next attempt, after a wait (a leader that ZooKeeper
        # still names just after it died: its znode lasts until its session expires).
        self._relookup = False
        self._channel: Any = None
        self._stub: Any = None

    def _lookup_again(self) -> None:
        """After `_leader.pause*()`: the leader ZooKeeper names now (kept if none)."""
        self._relookup = False
        try:
            self.address = self._leader.current_blocking()
        except UnavailableError:
            pass

    def _redirect(self, err: MesosliteError) -> bool:
        """Follow a standby master to the leader it names, as Mesos's CLI does."""
        self._relookup = False
        if isinstance(err, NotLeaderError) and err.leader_address:
            self.address = parse_address(err.leader_address)
            return True
        if (
            self._zk
            and isinstance(err, UnavailableError | NotLeaderError)
            and self._lookups < ZK_LOOKUPS
            and (not self._lookups or time.monotonic() < self._follow_until)
        ):
            # The leader ZooKeeper named is gone or not leading: ask ZooKeeper again soon.
            if not self._lookups:
                self._follow_until = time.monotonic() + ZK_FOLLOW_S
            self._lookups += 1
            self._relookup = True
            return True
        if isinstance(err, NotLeaderError) or (
            isinstance(err, UnavailableError) and err.message == unreachable_message(self.address)
        ):
            # Given a list: this one is down or does not know the leader; try the next.
            i = self._candidates.index(self.address) if self.address in self._candidates else -1
            if i + 1 < len(self._candidates):
                self.address = self._candidates[i + 1]
                return True
        return False


class BlockingOperatorClient(_Base):
    """A blocking client of the master's Operator service; use it as a context manager.

    Args:
        address: the master, as `host:port` (see `resolve_master`).
        timeout_s: the deadline of each call.
    """

    def _run(self, call: _Call[T]) -> T:
        waits = 0  # over the master's rate limit: wait as it says, a few times
        for _ in range(MAX_REDIRECTS + ZK_LOOKUPS + 1):
            if self._relookup:
                self._leader.pause_blocking()
                self._lookup_again()
            if self._stub is None:
                self._channel = open_channel(self.address, self.security, aio=False)
                self._stub = _stub(self._channel)
            try:
                reply = _method(self._stub, call.method)(call.request, timeout=self.timeout_s)
            except grpc.RpcError as exc:
                err = _map_error(exc, self.address, self.timeout_s)
                if (wait_s := rate_limited(err, waits)) is not None:
                    waits += 1
                    time.sleep(wait_s)
                    continue
                if self._redirect(err):
                    self._drop_channel()
                    continue
                raise err from None
            return call.convert(reply)
        raise UnavailableError(f"gave up after {MAX_REDIRECTS} redirects to another master")

    def _drop_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = self._stub = None

    def close(self) -> None:
        self._drop_channel()
        self._leader.close_blocking()

    def __enter__(self) -> BlockingOperatorClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def master_address(self) -> str:
        """The address the leading master advertises."""
        return self._run(self._master_address())

    def agents(self) -> list[AgentView]:
        return self._run(self._agents())

    def frameworks(self, *, include_completed: bool = False) -> list[FrameworkView]:
        return self._run(self._frameworks(include_completed))

    def tasks(self, *, framework_id: str = "", include_completed: bool = False) -> list[TaskView]:
        return self._run(self._tasks(framework_id, include_completed))

    def read_file(
        self, task_id: str, name: str = "stdout", offset: int = 0, length: int = 0, *,
        framework_id: str = "",
    ) -> FileChunk:
        """Read up to `length` bytes (0: the master's default) of a task's sandbox file."""
        return self._run(self._read_file(task_id, name, offset, length, framework_id))

    def kill_task(self, task_id: str, *, framework_id: str = "") -> tuple[str, str]:
        """Ask the master to kill a task; returns the id of the task's framework and, if the
        task had already ended (nothing was done), its state (`TASK_FINISHED`...), else ""."""
        return self._run(self._kill_task(task_id, framework_id))

    def drain_agent(self, agent_id: str) -> None:
        """Stop offering the agent and kill its tasks."""
        self._run(self._drain_agent(agent_id))

    def mark_agent_gone(self, agent_id: str) -> None:
        """Remove the agent for good; its tasks become TASK_GONE."""
        self._run(self._mark_agent_gone(agent_id))

    def roles(self) -> list[RoleView]:
        return self._run(self._roles())

    def set_role_weight(self, role: str, weight: float) -> None:
        self._run(self._set_role_weight(role, weight))

    def set_role_priority(self, role: str, priority: int, preemptible: bool | None) -> None:
        self._run(self._set_role_priority(role, priority, preemptible))

    def set_quota(self, role: str, guarantee: Resources, limit: Resources | None) -> None:
        self._run(self._set_quota(role, guarantee, limit))

    def explain_framework(self, framework_id: str) -> ExplainView:
        return self._run(self._explain_framework(framework_id))

    # -- the Jobs service (`mesoslite job ...`); views from `mesoslite.jobs.model`

    def submit_job(self, spec_yaml: str, source: str = "", *, update: bool = False) -> JobView:
        """Submit a job spec (or with `update`, replace a job's spec); returns the job."""
        req = jobs_pb2.SubmitJobRequest(spec_yaml=spec_yaml, source=source)
        return self._run(_Call("jobs.Update" if update else "jobs.Submit", req, job_view))

    def kill_job(self, name: str) -> JobView:
        return self._run(_Call("jobs.Kill", jobs_pb2.KillJobRequest(name=name), job_view))

    def remove_job(self, name: str) -> None:
        self._run(_Call("jobs.Remove", jobs_pb2.RemoveJobRequest(name=name), lambda r: None))

    def jobs(self) -> list[JobView]:
        return self._run(_Call("jobs.List", jobs_pb2.ListJobsRequest(),
                               lambda r: [job_from_pb(j) for j in r.jobs]))

    def job_status(self, name: str) -> JobView:
        return self._run(_Call("jobs.Status", jobs_pb2.JobStatusRequest(name=name), job_view))

    def plan_job(self, spec_yaml: str, source: str = "") -> JobPlan:
        """What submitting (or updating) the spec would do now; changes nothing."""
        req = jobs_pb2.SubmitJobRequest(spec_yaml=spec_yaml, source=source)
        return self._run(_Call("jobs.Plan", req, lambda r: plan_from_pb(r.plan)))

    def steer_job(self, verb: str, name: str) -> JobView:
        """`verb` a cron job: "Suspend", "Resume" or "RunNow"."""
        requests = {"Suspend": jobs_pb2.SuspendJobRequest, "Resume": jobs_pb2.ResumeJobRequest,
                    "RunNow": jobs_pb2.RunJobNowRequest}
        return self._run(_Call(f"jobs.{verb}", requests[verb](name=name), job_view))

    def job_history(self, name: str) -> list[AttemptView]:
        return self._run(_Call("jobs.History", jobs_pb2.JobHistoryRequest(name=name),
                               lambda r: [attempt_from_pb(a) for a in r.attempts]))


class OperatorClient(_Base):
    """The same calls as `BlockingOperatorClient`, as coroutines on a `grpc.aio` channel.

    Create it on the event loop that uses it; `await close()` (or `async with`) at the end.
    """

    async def _run(self, call: _Call[T]) -> T:
        waits = 0
        for _ in range(MAX_REDIRECTS + ZK_LOOKUPS + 1):
            await self._prepare()
            try:
                reply = await _method(self._stub, call.method)(
                    call.request, timeout=self.timeout_s
                )
            except grpc.RpcError as exc:
                err = _map_error(exc, self.address, self.timeout_s)
                if (wait_s := rate_limited(err, waits)) is not None:
                    waits += 1
                    await asyncio.sleep(wait_s)
                    continue
                if self._redirect(err):
                    await self._drop_channel()
                    continue
                raise err from None
            return call.convert(reply)
        raise UnavailableError(f"gave up after {MAX_REDIRECTS} redirects to another master")

    async def _prepare(self) -> None:
        """Before an attempt: ask ZooKeeper again if a redirect said to, and open a channel."""
        if self._relookup:
            await self._leader.pause()
            await asyncio.to_thread(self._lookup_again)
        if self._stub is None:
            self._channel = open_channel(self.address, self.security)
            self._stub = _stub(self._channel)

    async def _drop_channel(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel = self._stub = None

    async def close(self) -> None:
        await self._drop_channel()
        await self._leader.close()

    async def __aenter__(self) -> OperatorClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def master_address(self) -> str:
        """The address the leading master advertises."""
        return await self._run(self._master_address())

    async def agents(self) -> list[AgentView]:
        return await self._run(self._agents())

    async def frameworks(self, *, include_completed: bool = False) -> list[FrameworkView]:
        return await self._run(self._frameworks(include_completed))

    async def tasks(
        self, *, framework_id: str = "", include_completed: bool = False
    ) -> list[TaskView]:
        return await self._run(self._tasks(framework_id, include_completed))

    async def read_file(
        self, task_id: str, name: str = "stdout", offset: int = 0, length: int = 0, *,
        framework_id: str = "",
    ) -> FileChunk:
        """Read up to `length` bytes (0: the master's default) of a task's sandbox file."""
        return await self._run(self._read_file(task_id, name, offset, length, framework_id))

    async def kill_task(self, task_id: str, *, framework_id: str = "") -> tuple[str, str]:
        """As `BlockingOperatorClient.kill_task`."""
        return await self._run(self._kill_task(task_id, framework_id))

    async def explain_framework(self, framework_id: str) -> ExplainView:
        return await self._run(self._explain_framework(framework_id))

    async def follow_file(
        self, task_id: str, name: str = "stdout", offset: int = 0, *, framework_id: str = "",
    ) -> AsyncGenerator[FollowedChunk, None]:
        """A task's sandbox file from `offset` as the task writes it, until the task has ended
        and the file was sent (`Operator.FollowFile`); the last chunk has `end` set.

        Closing the iterator early cancels the call (the agent stops following). A failed call
        raises its `MesosliteError`; a standby's redirect is followed before the first chunk.
        """
        req = operator_pb2.FollowFileRequest(
            task_id=task_id, framework_id=framework_id, name=name, offset=offset
        )
        for _ in range(MAX_REDIRECTS + ZK_LOOKUPS + 1):
            await self._prepare()
            call = self._stub.FollowFile(req)
            started = False
            try:
                async for reply in call:
                    started = True
                    yield followed_chunk(reply)
                return
            except grpc.RpcError as exc:
                err = _map_error(exc, self.address, self.timeout_s)
                if not started and self._redirect(err):
                    await self._drop_channel()
                    continue
                raise err from None
            finally:
                call.cancel()
        raise UnavailableError(f"gave up after {MAX_REDIRECTS} redirects to another master")
