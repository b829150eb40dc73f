"""`DriverCalls`: the framework's calls to the master (ACCEPT, DECLINE, REVIVE, ...), each a
unary RPC that returns once the master applied it; the base of `SchedulerDriver`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import grpc

from mesoslite._proto.v1 import scheduler_pb2, scheduler_pb2_grpc
from mesoslite.errors import ConflictError
from mesoslite.ids import AgentId, FrameworkId, OfferId, TaskId
from mesoslite.model import FrameworkInfo, TaskSpec, TaskStatus
from mesoslite.resources import Resources
from mesoslite.rpc import error_from_rpc
from mesoslite.scheduler_api import calls
from mesoslite.scheduler_api.types import Demand
from mesoslite.security.retry_after import rate_limited


class DriverCalls:
    """The calls of `SchedulerDriver`, which sets these attributes and `stop()`."""

    _info: FrameworkInfo
    _stub: scheduler_pb2_grpc.SchedulerStub | None
    call_timeout_s: float

    async def stop(self, *, failover: bool = False) -> None:
        raise NotImplementedError

    async def accept(
        self,
        offer_ids: Sequence[OfferId],
        tasks: Sequence[TaskSpec],
        *,
        refuse_seconds: float = 5.0,
        reserve: Resources | None = None,
        unreserve: Resources | None = None,
    ) -> None:
        """Launch `tasks` on offers of one agent; what the tasks leave unused is declined.

        Args:
            reserve: part of the offers to reserve for their allocation role on their agent
                from now on (RESERVE, kept by the master); only that role is offered it.
            unreserve: part of the role's dynamic reservation there to give back.

        Raises:
            NotFoundError: an offer was rescinded, used already or never made.
            ConflictError: an offer is not this framework's.
            ValidationError: the tasks are malformed or need more than the offers hold.
        """
        request = calls.accept_request(
            self._require_id(),
            offer_ids,
            tasks,
            refuse_seconds=refuse_seconds,
            reserve=reserve,
            unreserve=unreserve,
        )
        await self._unary("Accept", request)

    async def decline(self, offer_ids: Sequence[OfferId], *, refuse_seconds: float = 5.0) -> None:
        """Give offers back; their agents are not offered again for `refuse_seconds`."""
        request = calls.decline_request(
            self._require_id(), offer_ids, refuse_seconds=refuse_seconds
        )
        await self._unary("Decline", request)

    async def revive(self, *, roles: Sequence[str] | None = None) -> None:
        """Clear filters and ask for offers again (undoes `suppress`).

        Args:
            roles: the roles to revive, each one of the framework's; None or empty: all.
        """
        request = scheduler_pb2.ReviveRequest(
            framework_id=self._require_id(), roles=list(roles or ())
        )
        await self._unary("Revive", request)

    async def suppress(self, *, roles: Sequence[str] | None = None) -> None:
        """Stop receiving offers (in `roles`) until `revive`.

        Args:
            roles: the roles to suppress, each one of the framework's; None or empty: all.
                Offers in its other roles keep coming.
        """
        await self._unary(
            "Suppress",
            scheduler_pb2.SuppressRequest(framework_id=self._require_id(), roles=list(roles or ())),
        )

    async def kill(
        self, task_id: TaskId | str, *, agent_id: AgentId | str = "", grace_period_s: float = 0.0
    ) -> None:
        """Kill a task: SIGTERM, then SIGKILL after the grace period (the task's if 0)."""
        request = calls.kill_request(self._require_id(), task_id, agent_id, grace_period_s)
        await self._unary("Kill", request)

    async def acknowledge(self, *statuses: TaskStatus) -> None:
        """Acknowledge updates (those without a uuid need none and are skipped), in one call."""
        if not any(s.uuid for s in statuses):
            return
        request = calls.acknowledge_request(self._require_id(), statuses)
        await self._unary("Acknowledge", request)

    async def reconcile(self, tasks: Iterable[tuple[TaskId | str, AgentId | str]] = ()) -> None:
        """Ask for the latest state of `(task_id, agent_id)` pairs, or of every task if empty.

        The answers arrive as `on_update` calls with reason `RECONCILIATION`.
        """
        await self._unary("Reconcile", calls.reconcile_request(self._require_id(), tasks))

    async def request(self, demands: Sequence[Demand]) -> None:
        """Tell the master what the framework still needs (task shapes and counts)."""
        await self._unary("Request", calls.demand_request(self._require_id(), demands))

    async def teardown(self) -> None:
        """Remove the framework and kill all its tasks, then stop the driver."""
        await self._unary(
            "Teardown", scheduler_pb2.TeardownRequest(framework_id=self._require_id())
        )
        self._info = replace(self._info, id=FrameworkId(""))
        await self.stop(failover=True)

    # ------------------------------------------------------------------ internals

    def _require_id(self) -> FrameworkId:
        if not self._info.id:
            raise ConflictError("the framework is not subscribed yet: wait for on_subscribed")
        return self._info.id

    async def _unary(self, method: str, request: Any) -> Any:
        if self._stub is None:
            raise ConflictError("the driver is not started")
        retries = 0
        while True:
            try:
                return await getattr(self._stub, method)(request, timeout=self.call_timeout_s)
            except grpc.aio.AioRpcError as e:
                err = error_from_rpc(e)
                wait_s = rate_limited(err, retries)  # over the master's rate limit: wait
                if wait_s is None:
                    raise err from None
            except grpc.aio.UsageError:
                raise ConflictError(f"the driver is stopped: cannot {method.lower()}") from None
            retries += 1
            await asyncio.sleep(wait_s)
