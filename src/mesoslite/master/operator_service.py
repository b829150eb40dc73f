"""The Operator gRPC service: views for the CLI, plus kill, sandbox reads and follows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import grpc

from mesoslite._proto.v1 import operator_pb2, operator_pb2_grpc
from mesoslite.convert import (
    limit_from_pb,
    master_info_to_pb,
    resources_from_pb,
    status_to_pb,
)
from mesoslite.errors import MesosliteError, ValidationError
from mesoslite.ids import AgentId, FrameworkId, TaskId
from mesoslite.limits import check_id, check_role
from mesoslite.master import convert as mc
from mesoslite.master.actor import MasterActor
from mesoslite.master.constants import MAX_READ_LENGTH
from mesoslite.master.follow import FollowData
from mesoslite.model import MasterInfo
from mesoslite.rpc import handle_errors, status_code
from mesoslite.security import authz_master as az
from mesoslite.security.authz import Authorizer
from mesoslite.security.identity import caller_of

Ctx = grpc.aio.ServicerContext[Any, Any]
FILE_NAMES = ("stdout", "stderr")


class OperatorServicer(operator_pb2_grpc.OperatorServicer):
    def __init__(
        self, actor: MasterActor, master_info: MasterInfo, authz: Authorizer | None = None
    ) -> None:
        self.actor = actor
        self.master_info = master_info
        self.authz = authz or Authorizer()

    def _check(self, context: Ctx, action: str, obj: str = "") -> None:
        """Authorization (#14): raises `PermissionDeniedError` before anything is done."""
        self.authz.check(caller_of(context).principal, action, obj)

    def _check_task(self, context: Ctx, action: str, fid: FrameworkId) -> None:
        self._check(context, action, az.framework_owner(self.actor.state, fid) or "")

    def _check_files(self, context: Ctx, task_id: str, framework_id: str) -> None:
        if caller_of(context).principal is None and not self.authz.acls.rules:
            return  # nothing to check: leave the lookup (and its errors) to the read
        record = self.actor.state.locate_task(TaskId(task_id), FrameworkId(framework_id) or None)
        self._check_task(context, "read_files", record.framework_id)

    @handle_errors
    async def GetMaster(self, request: Any, context: Ctx) -> Any:  # noqa: N802
        return operator_pb2.GetMasterResponse(
            master_info=master_info_to_pb(self.master_info), leading=True,
            http_address=self.actor.http_address,
        )

    @handle_errors
    async def GetAgents(self, request: Any, context: Ctx) -> Any:  # noqa: N802
        self._check(context, "read_state")
        agents = sorted(self.actor.state.agents.values(), key=lambda a: a.info.hostname + a.id)
        return operator_pb2.GetAgentsResponse(agents=[mc.agent_summary(a) for a in agents])

    @handle_errors
    async def GetFrameworks(  # noqa: N802
        self, request: operator_pb2.GetFrameworksRequest, context: Ctx
    ) -> Any:
        state = self.actor.state
        frameworks = list(state.frameworks.values())
        if request.include_completed:
            frameworks += list(state.completed_frameworks.values())
        return operator_pb2.GetFrameworksResponse(
            frameworks=[mc.framework_summary(f) for f in frameworks]
        )

    @handle_errors
    async def GetTasks(self, request: operator_pb2.GetTasksRequest, context: Ctx) -> Any:  # noqa: N802
        self._check(context, "read_state")
        self._check(context, "read_state")
        state = self.actor.state
        check_id("framework_id", request.framework_id, allow_empty=True)
        fid = FrameworkId(request.framework_id)
        if fid and fid not in state.completed_frameworks:
            state.framework(fid)  # raises for an unknown framework id
        tasks = [
            t for fw in state.frameworks.values() if not fid or fw.id == fid
            for t in fw.tasks.values()
        ]
        if request.include_completed:
            tasks += [t for t in state.completed_tasks.values() if not fid or t.framework_id == fid]
        return operator_pb2.GetTasksResponse(tasks=[mc.task_summary(t) for t in tasks])

    @handle_errors
    async def KillTask(self, request: operator_pb2.KillTaskRequest, context: Ctx) -> Any:  # noqa: N802
        check_id("task_id", request.task_id)
        check_id("framework_id", request.framework_id, allow_empty=True)
        state = self.actor.state
        record = state.locate_task(
            TaskId(request.task_id), FrameworkId(request.framework_id) or None
        )
        fid, tid = record.framework_id, record.spec.task_id
        self._check_task(context, "kill_task", fid)
        if record.state.terminal:
            # Kills race with exits: killing a task that already ended does nothing, even
            # after its framework is gone.
            return operator_pb2.KillTaskResponse(
                framework_id=fid, ended_state=record.state.label
            )
        await self.actor.run(lambda _now: state.kill_task(fid, tid, 0.0))
        return operator_pb2.KillTaskResponse(framework_id=fid)

    @handle_errors
    async def DrainAgent(  # noqa: N802
        self, request: operator_pb2.DrainAgentRequest, context: Ctx
    ) -> Any:
        check_id("agent_id", request.agent_id)
        agent_id = AgentId(request.agent_id)
        self._check(context, "drain_agent", az.agent_hostname(self.actor.state, agent_id))
        await self.actor.run(lambda now: self.actor.state.drain_agent(agent_id, now))
        return operator_pb2.DrainAgentResponse()

    @handle_errors
    async def GetRoles(self, request: Any, context: Ctx) -> Any:  # noqa: N802
        self._check(context, "read_state")
        roles = self.actor.state.role_statuses()
        return operator_pb2.GetRolesResponse(roles=[mc.role_info(r) for r in roles])

    @handle_errors
    async def SetRoleWeight(  # noqa: N802
        self, request: operator_pb2.SetRoleWeightRequest, context: Ctx
    ) -> Any:
        role, weight = request.role, request.weight
        # Checked here too, so that a 1 MB role is refused before it reaches the registry.
        check_role("role", role, allow_star=False)
        self._check(context, "set_weight", role)
        await self.actor.run(lambda now: self.actor.state.set_role_weight(role, weight))
        return operator_pb2.SetRoleWeightResponse()

    @handle_errors
    async def SetRolePriority(  # noqa: N802
        self, request: operator_pb2.SetRolePriorityRequest, context: Ctx
    ) -> Any:
        role, priority = request.role, request.priority
        check_role("role", role, allow_star=False)
        self._check(context, "set_priority", role)
        preemptible = request.preemptible if request.has_preemptible else None
        await self.actor.run(
            lambda now: self.actor.state.set_role_tier(role, priority, preemptible)
        )
        return operator_pb2.SetRolePriorityResponse()

    @handle_errors
    async def SetQuota(self, request: operator_pb2.SetQuotaRequest, context: Ctx) -> Any:  # noqa: N802
        role = request.role
        check_role("role", role, allow_star=False)
        self._check(context, "set_quota", role)
        guarantee = resources_from_pb(request.guarantee, "guarantee")
        limit = limit_from_pb(request.limit, "limit") if request.has_limit else None
        await self.actor.run(lambda now: self.actor.state.set_quota(role, guarantee, limit))
        return operator_pb2.SetQuotaResponse()

    @handle_errors
    async def ExplainFramework(  # noqa: N802
        self, request: operator_pb2.ExplainFrameworkRequest, context: Ctx
    ) -> Any:
        if not request.framework_id:
            raise ValidationError("framework_id", "must not be empty")
        check_id("framework_id", request.framework_id)
        fid = FrameworkId(request.framework_id)
        return mc.explanation(self.actor.state.explain(fid, self.actor.clock.now()))

    @handle_errors
    async def MarkAgentGone(  # noqa: N802
        self, request: operator_pb2.MarkAgentGoneRequest, context: Ctx
    ) -> Any:
        check_id("agent_id", request.agent_id)
        agent_id = AgentId(request.agent_id)
        self._check(context, "mark_agent_gone", az.agent_hostname(self.actor.state, agent_id))
        await self.actor.run(lambda now: self.actor.state.mark_agent_gone(agent_id, now))
        return operator_pb2.MarkAgentGoneResponse()

    @handle_errors
    async def ReadFile(self, request: operator_pb2.ReadFileRequest, context: Ctx) -> Any:  # noqa: N802
        self._check(context, "read_state")
        name = request.name or "stdout"
        if name not in FILE_NAMES:
            raise ValidationError("name", f"must be one of {', '.join(FILE_NAMES)}, got {name!r}")
        check_id("task_id", request.task_id)
        check_id("framework_id", request.framework_id, allow_empty=True)
        length = min(request.length or 64 * 1024, MAX_READ_LENGTH)
        self._check_files(context, request.task_id, request.framework_id)
        chunk = await self.actor.read_file(
            TaskId(request.task_id),
            FrameworkId(request.framework_id) or None,
            name,
            request.offset,
            length,
        )
        return operator_pb2.ReadFileResponse(
            data=chunk.data, size=chunk.size, state=int(chunk.state)  # type: ignore[arg-type]
        )

    async def FollowFile(  # noqa: N802
        self, request: operator_pb2.FollowFileRequest, context: Ctx
    ) -> AsyncIterator[operator_pb2.FollowFileResponse]:
        """Stream a sandbox file until the task has ended (see `master/follow.py`)."""
        name = request.name or "stdout"
        try:
            if name not in FILE_NAMES:
                raise ValidationError(
                    "name", f"must be one of {', '.join(FILE_NAMES)}, got {name!r}"
                )
            self._check_files(context, request.task_id, request.framework_id)
            follow = self.actor.follows.follow(
                self.actor,
                TaskId(request.task_id),
                FrameworkId(request.framework_id) or None,
                name,
                request.offset,
            )
            # `aclosing`: a cancelled call must run the follow's cleanup now (it stops the
            # agent's side), not whenever the generator is collected.
            async with aclosing(follow):
                async for item in follow:
                    if isinstance(item, FollowData):
                        yield operator_pb2.FollowFileResponse(
                            data=item.data, offset=item.offset
                        )
                    else:
                        yield operator_pb2.FollowFileResponse(
                            offset=item.offset, end=True, status=status_to_pb(item.status)
                        )
        except MesosliteError as e:
            await context.abort(status_code(e), e.message)
