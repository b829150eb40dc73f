"""The Jobs gRPC service: `mesoslite job ...` calls answered by the in-process jobs framework."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from mesoslite._proto.v1 import jobs_pb2, jobs_pb2_grpc
from mesoslite.errors import UnavailableError, ValidationError
from mesoslite.jobs import convert
from mesoslite.jobs.api import JobsApi
from mesoslite.limits import MAX_JOB_NAME, check_length
from mesoslite.rpc import handle_errors

logger = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext[Any, Any]
NOT_RUNNING = "the jobs framework is not running on this master (started with --no-jobs?)"


class JobsServicer(jobs_pb2_grpc.JobsServicer):
    """Args:
    api_of: returns the jobs framework's `JobsApi`, or None while it is off (`--no-jobs`)
        or not running (not elected yet, starting, stopped); asked on every call.
    """

    def __init__(self, api_of: Callable[[], JobsApi | None]) -> None:
        self.api_of = api_of

    def _api(self) -> JobsApi:
        api = self.api_of()
        if api is None:
            raise UnavailableError(NOT_RUNNING)
        return api

    @handle_errors
    async def Submit(self, request: jobs_pb2.SubmitJobRequest, context: Ctx) -> Any:  # noqa: N802
        view = await self._api().submit(request.spec_yaml)
        logger.info("job submitted name=%s source=%s", view.name, request.source or "-")
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def Update(self, request: jobs_pb2.SubmitJobRequest, context: Ctx) -> Any:  # noqa: N802
        view = await self._api().update(request.spec_yaml)
        logger.info("job updated name=%s version=%d source=%s",
                    view.name, view.version, request.source or "-")
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def Kill(self, request: jobs_pb2.KillJobRequest, context: Ctx) -> Any:  # noqa: N802
        view = await self._api().kill(_name(request.name))
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def Remove(self, request: jobs_pb2.RemoveJobRequest, context: Ctx) -> Any:  # noqa: N802
        await self._api().remove(_name(request.name))
        return jobs_pb2.RemoveJobResponse()

    @handle_errors
    async def List(self, request: jobs_pb2.ListJobsRequest, context: Ctx) -> Any:  # noqa: N802
        views = self._api().list()
        return jobs_pb2.ListJobsResponse(jobs=[convert.job_to_pb(v) for v in views])

    @handle_errors
    async def Status(self, request: jobs_pb2.JobStatusRequest, context: Ctx) -> Any:  # noqa: N802
        view = self._api().status(_name(request.name))
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def History(self, request: jobs_pb2.JobHistoryRequest, context: Ctx) -> Any:  # noqa: N802
        attempts = self._api().history(_name(request.name))
        return jobs_pb2.JobHistoryResponse(attempts=[convert.attempt_to_pb(a) for a in attempts])

    @handle_errors
    async def Plan(self, request: jobs_pb2.SubmitJobRequest, context: Ctx) -> Any:  # noqa: N802
        plan = self._api().plan(request.spec_yaml)
        return jobs_pb2.PlanJobResponse(plan=convert.plan_to_pb(plan))

    @handle_errors
    async def Suspend(self, request: jobs_pb2.SuspendJobRequest, context: Ctx) -> Any:  # noqa: N802
        view = await self._api().suspend(_name(request.name))
        logger.info("job suspended name=%s", view.name)
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def Resume(self, request: jobs_pb2.ResumeJobRequest, context: Ctx) -> Any:  # noqa: N802
        view = await self._api().resume(_name(request.name))
        logger.info("job resumed name=%s", view.name)
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def RunNow(self, request: jobs_pb2.RunJobNowRequest, context: Ctx) -> Any:  # noqa: N802
        view = await self._api().run_now(_name(request.name))
        logger.info("job run now name=%s", view.name)
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))


def _name(name: str) -> str:
    if not name:
        raise ValidationError("name", "must name a job, got ''")
    check_length("name", name, MAX_JOB_NAME)
    return name
