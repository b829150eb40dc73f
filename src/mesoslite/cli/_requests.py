"""The Operator requests both CLI clients send: each builder returns a `_Call` (method name,
request message, and how to convert the reply to a `_views` value). Split from `_client`,
which holds the channels, the leader following and the error mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mesoslite._proto.v1 import operator_pb2
from mesoslite.cli._convert import (
    agent_view,
    explain_view,
    file_chunk,
    framework_view,
    role_view,
    task_view,
)
from mesoslite.cli._views import (
    AgentView,
    ExplainView,
    FileChunk,
    FrameworkView,
    RoleView,
    TaskView,
)
from mesoslite.resources import Resources

T = TypeVar("T")


class _Call(Generic[T]):
    """One Operator RPC: the method name, its request, and how to convert the reply."""

    __slots__ = ("method", "request", "convert")

    def __init__(self, method: str, request: Any, convert: Callable[[Any], T]) -> None:
        self.method, self.request, self.convert = method, request, convert


class Requests:
    """The request builders, as static methods so either client can call `self._agents()`."""


    @staticmethod
    def _master_address() -> _Call[str]:
        return _Call("GetMaster", operator_pb2.GetMasterRequest(),
                     lambda r: str(r.master_info.address))

    @staticmethod
    def _master_http_address() -> _Call[str]:
        """The leading master's HTTP host:port ('' without HTTP, or from an older master)."""
        return _Call("GetMaster", operator_pb2.GetMasterRequest(),
                     lambda r: str(r.http_address))

    @staticmethod
    def _agents() -> _Call[list[AgentView]]:
        return _Call("GetAgents", operator_pb2.GetAgentsRequest(),
                     lambda r: [agent_view(a) for a in r.agents])

    @staticmethod
    def _frameworks(include_completed: bool) -> _Call[list[FrameworkView]]:
        req = operator_pb2.GetFrameworksRequest(include_completed=include_completed)
        return _Call("GetFrameworks", req, lambda r: [framework_view(f) for f in r.frameworks])

    @staticmethod
    def _tasks(framework_id: str, include_completed: bool) -> _Call[list[TaskView]]:
        req = operator_pb2.GetTasksRequest(
            framework_id=framework_id, include_completed=include_completed
        )
        return _Call("GetTasks", req, lambda r: [task_view(t) for t in r.tasks])

    @staticmethod
    def _read_file(
        task_id: str, name: str, offset: int, length: int, framework_id: str
    ) -> _Call[FileChunk]:
        req = operator_pb2.ReadFileRequest(
            task_id=task_id, framework_id=framework_id, name=name, offset=offset, length=length
        )
        return _Call("ReadFile", req, file_chunk)

    @staticmethod
    def _kill_task(task_id: str, framework_id: str) -> _Call[tuple[str, str]]:
        req = operator_pb2.KillTaskRequest(task_id=task_id, framework_id=framework_id)
        return _Call("KillTask", req, lambda r: (str(r.framework_id), str(r.ended_state)))

    @staticmethod
    def _drain_agent(agent_id: str) -> _Call[None]:
        req = operator_pb2.DrainAgentRequest(agent_id=agent_id)
        return _Call("DrainAgent", req, lambda r: None)

    @staticmethod
    def _mark_agent_gone(agent_id: str) -> _Call[None]:
        req = operator_pb2.MarkAgentGoneRequest(agent_id=agent_id)
        return _Call("MarkAgentGone", req, lambda r: None)

    @staticmethod
    def _roles() -> _Call[list[RoleView]]:
        return _Call("GetRoles", operator_pb2.GetRolesRequest(),
                     lambda r: [role_view(x) for x in r.roles])

    @staticmethod
    def _set_role_weight(role: str, weight: float) -> _Call[None]:
        req = operator_pb2.SetRoleWeightRequest(role=role, weight=weight)
        return _Call("SetRoleWeight", req, lambda r: None)

    @staticmethod
    def _set_role_priority(role: str, priority: int, preemptible: bool | None) -> _Call[None]:
        req = operator_pb2.SetRolePriorityRequest(
            role=role, priority=priority, preemptible=bool(preemptible),
            has_preemptible=preemptible is not None,
        )
        return _Call("SetRolePriority", req, lambda r: None)

    @staticmethod
    def _set_quota(role: str, guarantee: Resources, limit: Resources | None) -> _Call[None]:
        from mesoslite.convert import resources_to_pb

        req = operator_pb2.SetQuotaRequest(
            role=role,
            guarantee=resources_to_pb(guarantee),
            limit=resources_to_pb(limit) if limit is not None else [],
            has_limit=limit is not None,
        )
        return _Call("SetQuota", req, lambda r: None)

    @staticmethod
    def _explain_framework(framework_id: str) -> _Call[ExplainView]:
        req = operator_pb2.ExplainFrameworkRequest(framework_id=framework_id)
        return _Call("ExplainFramework", req, explain_view)
