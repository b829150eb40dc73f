"""The Jobs gRPC service: `mesoslite job ...` calls answered by the in-process jobs framework."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import grpc

from mesoslite._proto.v1 import jobs_pb2, jobs_pb2_grpc
from mesoslite.errors import MesosliteError, UnavailableError, ValidationError
from mesoslite.jobs import convert
from mesoslite.jobs.api import JobsApi
from mesoslite.limits import MAX_JOB_NAME, check_length
from mesoslite.rpc import handle_errors, status_code
from mesoslite.security import authz_master as az
from mesoslite.security.authz import Authorizer
from mesoslite.security.identity import caller_of

logger = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext[Any, Any]
WATCH_DEFAULT_INTERVAL_S = 0.5
NOT_RUNNING = "the jobs framework is not running on this master (started with --no-jobs?)"


class JobsServicer(jobs_pb2_grpc.JobsServicer):
    """Args:
    api_of: returns the jobs framework's `JobsApi`, or None while it is off (`--no-jobs`)
        or not running (not elected yet, starting, stopped); asked on every call.
    """

    def __init__(
        self, api_of: Callable[[], JobsApi | None], authz: Authorizer | None = None
    ) -> None:
        self.api_of = api_of
        self.authz = authz or Authorizer()

    def _owned_spec(self, context: Ctx, spec_yaml: str, keep_owner: str = "") -> str:
        """Authorization (#14) of a submit or update: the spec to store, owner line first."""
        from mesoslite.jobs.spec import parse_job_spec

        principal = caller_of(context).principal
        if principal is not None or self.authz.acls.rules:
            spec = parse_job_spec(spec_yaml)
            az.authorize_job_submit(self.authz, principal, spec.role, spec.command.user)
        return az.with_owner(spec_yaml, keep_owner or principal)

    def _check_owner(self, context: Ctx, name: str, action: str = "kill_job") -> str:
        """Authorization (#14) of a call on job `name`; returns its owner."""
        if caller_of(context).principal is None and not self.authz.acls.rules:
            return ""  # nothing to check: leave unknown names to the call itself
        owner = az.job_owner(self._api().status(name).spec_yaml)
        self.authz.check(caller_of(context).principal, action, owner)
        return owner

    def _check(self, context: Ctx, action: str) -> None:
        self.authz.check(caller_of(context).principal, action, "")

    def _api(self) -> JobsApi:
        api = self.api_of()
        if api is None:
            raise UnavailableError(NOT_RUNNING)
        return api

    @handle_errors
    async def Submit(self, request: jobs_pb2.SubmitJobRequest, context: Ctx) -> Any:  # noqa: N802
        view = await self._api().submit(self._owned_spec(context, request.spec_yaml))
        logger.info("job submitted name=%s source=%s", view.name, request.source or "-")
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def Update(self, request: jobs_pb2.SubmitJobRequest, context: Ctx) -> Any:  # noqa: N802
        owner = self._check_owner(context, _spec_name(request.spec_yaml, self.authz, context))
        view = await self._api().update(self._owned_spec(context, request.spec_yaml, owner))
        logger.info("job updated name=%s version=%d source=%s",
                    view.name, view.version, request.source or "-")
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def Kill(self, request: jobs_pb2.KillJobRequest, context: Ctx) -> Any:  # noqa: N802
        self._check_owner(context, _name(request.name))
        view = await self._api().kill(_name(request.name))
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def Remove(self, request: jobs_pb2.RemoveJobRequest, context: Ctx) -> Any:  # noqa: N802
        self._check_owner(context, _name(request.name))
        await self._api().remove(_name(request.name))
        return jobs_pb2.RemoveJobResponse()

    @handle_errors
    async def List(self, request: jobs_pb2.ListJobsRequest, context: Ctx) -> Any:  # noqa: N802
        self._check(context, "read_state")
        views = self._api().list()
        return jobs_pb2.ListJobsResponse(jobs=[convert.job_to_pb(v) for v in views])

    @handle_errors
    async def Status(self, request: jobs_pb2.JobStatusRequest, context: Ctx) -> Any:  # noqa: N802
        self._check(context, "read_state")
        view = self._api().status(_name(request.name))
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def History(self, request: jobs_pb2.JobHistoryRequest, context: Ctx) -> Any:  # noqa: N802
        self._check(context, "read_state")
        attempts = self._api().history(_name(request.name))
        return jobs_pb2.JobHistoryResponse(attempts=[convert.attempt_to_pb(a) for a in attempts])

    @handle_errors
    async def Plan(self, request: jobs_pb2.SubmitJobRequest, context: Ctx) -> Any:  # noqa: N802
        self._check(context, "read_state")
        plan = self._api().plan(request.spec_yaml)
        return jobs_pb2.PlanJobResponse(plan=convert.plan_to_pb(plan))

    @handle_errors
    async def Suspend(self, request: jobs_pb2.SuspendJobRequest, context: Ctx) -> Any:  # noqa: N802
        self._check_owner(context, _name(request.name))
        view = await self._api().suspend(_name(request.name))
        logger.info("job suspended name=%s", view.name)
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def Resume(self, request: jobs_pb2.ResumeJobRequest, context: Ctx) -> Any:  # noqa: N802
        self._check_owner(context, _name(request.name))
        view = await self._api().resume(_name(request.name))
        logger.info("job resumed name=%s", view.name)
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    @handle_errors
    async def RunNow(self, request: jobs_pb2.RunJobNowRequest, context: Ctx) -> Any:  # noqa: N802
        self._check_owner(context, _name(request.name))
        view = await self._api().run_now(_name(request.name))
        logger.info("job run now name=%s", view.name)
        return jobs_pb2.JobResponse(job=convert.job_to_pb(view))

    async def Watch(  # noqa: N802
        self, request: jobs_pb2.WatchJobRequest, context: Ctx
    ) -> AsyncIterator[jobs_pb2.JobSummary]:
        """The job's summaries as they change (`JobsFramework.watch`), for `--wait`."""
        try:
            self._check(context, "read_state")
            name, interval = _name(request.name), _interval(request.min_interval_s)
            watch = getattr(self._api(), "watch", None)
            if watch is None:
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, "no watch: poll Status")
            # `aclosing`: a cancelled call (the client has what it waited for) ends the
            # watch now, not whenever the generator is collected.
            async with aclosing(watch(name, interval)) as summaries:
                async for summary in summaries:
                    yield convert.summary_to_pb(summary)
        except MesosliteError as e:
            await context.abort(status_code(e), e.message)


def spec_problems(spec_yaml: str, source: str) -> list[tuple[str, str]]:
    """Every problem of a spec as `mesoslite job validate` lists them, (field, message):
    the HTTP submit's check (`master/http/jobs.py`), which may not import jobs/ itself."""
    from mesoslite.jobs.spec import validate_job_spec

    return validate_job_spec(spec_yaml, source=source)


def _interval(value: float) -> float:
    """`min_interval_s`: 0 means the default; at most an hour."""
    if not 0 <= value <= 3600:  # also refuses NaN
        raise ValidationError("min_interval_s", f"must be in [0, 3600], got {value:g}")
    return value or WATCH_DEFAULT_INTERVAL_S


def _name(name: str) -> str:
    if not name:
        raise ValidationError("name", "must name a job, got ''")
    check_length("name", name, MAX_JOB_NAME)
    return name


def _spec_name(spec_yaml: str, authz: Authorizer, context: Ctx) -> str:
    if caller_of(context).principal is None and not authz.acls.rules:
        return ""  # not needed: no check to make
    from mesoslite.jobs.spec import parse_job_spec

    return parse_job_spec(spec_yaml).name
