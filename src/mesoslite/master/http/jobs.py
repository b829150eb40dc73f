"""`POST /jobs/submit` and `POST /jobs/watch`: `mesoslite job submit|update|wait`'s fast path.

The light client (`mesoslite/fastjob.py`: no grpc, click, YAML or asyncio) sends the spec's
text as it is; the master checks it with the code `mesoslite job validate` uses
(`jobs_service.spec_problems`), submits it through the jobs framework's API as the Jobs
service does, and with `wait` streams the job's summaries from the same `watch` as
`Jobs.Watch`. The answer is one chunked response of frames as `POST /run`'s (a kind byte,
a 4-byte big-endian length, the payload); text fields are separated by NUL:

- `p` a problem of the spec: `field NUL message`; `x` then ends the answer with exit 2;
- `r` an error of the call: `STATUS NUL message` (its gRPC status name, as the click path
  would get it), last;
- `n` the job's name, once it is submitted;
- `s` a summary: `name type state message wanted next_run_at unhealthy counts`, counts
  as `STATE=N,...`, next_run_at empty if none; `h` a heartbeat (each second without one);
- `x` an exit code, last.

The rules are `/run`'s: a master that is not leading answers 503 (the client then takes
the click path, which finds the leader); with authentication or ACLs on, 403 (the click
path makes the Jobs service's checks); a request naming a gRPC port that is not this
master's, 421, and nothing is submitted.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import Any

from aiohttp import web

from mesoslite.errors import MesosliteError, UnavailableError, ValidationError
from mesoslite.limits import MAX_JOB_NAME, MAX_SPEC_BYTES, check_length
from mesoslite.master.http.run import frame as _frame_of
from mesoslite.master.http.run import json_body
from mesoslite.master.http.state_json import StateSource
from mesoslite.master.jobs_service import NOT_RUNNING, WATCH_DEFAULT_INTERVAL_S, spec_problems
from mesoslite.security.authz_master import with_owner

logger = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
# A spec is at most MAX_SPEC_BYTES (checked with the rest of it); JSON may escape each byte.
MAX_BODY_BYTES = 8 * MAX_SPEC_BYTES
# On the app: a function, true while authentication or ACLs are on (403: the client falls
# back to gRPC, whose Jobs service makes the checks).
FAST_JOBS_OFF = "mesoslite.fast_jobs_off"
KINDS = {"problem": b"p", "error": b"r", "name": b"n", "summary": b"s", "exit": b"x"}


def frame(kind: str, data: bytes) -> bytes:
    if kind in KINDS:
        return KINDS[kind] + len(data).to_bytes(4, "big") + data
    return _frame_of(kind, data)  # "heartbeat", as /run's


def fields(*parts: object) -> bytes:
    return "\0".join(str(p).replace("\0", " ") for p in parts).encode()


def add_job_routes(app: web.Application, src: StateSource) -> None:
    """Route the fast path's two calls to the jobs framework of the master's `src.jobs`."""

    async def submit(request: web.Request) -> web.StreamResponse:
        doc = await _request_doc(request, src)
        spec_yaml = _get(doc, "spec_yaml", str, "")
        source = _get(doc, "source", str, "")
        update, wait = _get(doc, "update", bool, False), _get(doc, "wait", bool, False)
        check_length("source", source, 4096)
        response = await _start(request)
        try:
            code = await _submit(response, src, spec_yaml, source, update=update, wait=wait)
            if code is not None:
                await response.write(frame("exit", str(code).encode()))
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away (Ctrl-C): the job keeps running
        return response

    async def watch(request: web.Request) -> web.StreamResponse:
        doc = await _request_doc(request, src)
        name = _get(doc, "name", str, "")
        response = await _start(request)
        try:
            await _watch(response, src, name)
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    app.router.add_post("/jobs/submit", submit)
    app.router.add_post("/jobs/watch", watch)


async def _request_doc(request: web.Request, src: StateSource) -> dict[str, Any]:
    """The request's JSON object, once this master may answer it (else the HTTP error)."""
    off = request.app.get(FAST_JOBS_OFF)
    if off is not None and off():
        raise web.HTTPForbidden(
            text="POST /jobs/* is off while authentication or ACLs are on: use the gRPC API "
            "(mesoslite job falls back to it by itself)\n"
        )
    if not src.leadership.leading:
        raise src.leadership.error()  # 503, naming the leader
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)
    return await json_body(request, src)


def _get(doc: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = doc.get(key, default)
    if not isinstance(value, kind):
        raise ValidationError(key, f"must be of type {kind.__name__}")
    return value


async def _start(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-mesoslite-job"})
    await response.prepare(request)
    return response


def _api(src: StateSource) -> Any:
    api = src.jobs.jobs
    if api is None:
        raise UnavailableError(NOT_RUNNING)
    return api


def _error(e: MesosliteError) -> bytes:
    return frame("error", fields(e.status, e.message))


async def _submit(
    response: web.StreamResponse, src: StateSource, spec_yaml: str, source: str, *,
    update: bool, wait: bool,
) -> int | None:
    """Check, submit and (with `wait`) watch; the exit code to end with, or None where the
    last frame says it (an error, or the watch's end)."""
    try:
        problems = spec_problems(spec_yaml, source or "<stdin>")
        if problems:
            for field, message in problems:
                await response.write(frame("problem", fields(field, message)))
            return 2
        api = _api(src)
        spec = with_owner(spec_yaml, None)  # no principal: authentication is off here
        view = await (api.update(spec) if update else api.submit(spec))
    except MesosliteError as e:
        await response.write(_error(e))
        return None
    except Exception:
        logger.exception("internal error in http submit")
        call = "Update" if update else "Submit"
        await response.write(frame("error", fields("INTERNAL", f"internal error in {call}")))
        return None
    if update:
        logger.info("job updated name=%s version=%d source=%s (http)",
                    view.name, view.version, source or "-")
    else:
        logger.info("job submitted name=%s source=%s (http)", view.name, source or "-")
    await response.write(frame("name", view.name.encode()))
    if not wait:
        return 0
    await _watch(response, src, view.name)
    return None


async def _watch(response: web.StreamResponse, src: StateSource, name: str) -> None:
    """The job's summaries as `Jobs.Watch` sends them, with a heartbeat each second without
    one (a client that went away is noticed at the next write); an error frame ends it."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def pump() -> None:
        try:
            if not name:
                raise ValidationError("name", "must name a job, got ''")
            check_length("name", name, MAX_JOB_NAME)
            async with aclosing(_api(src).watch(name, WATCH_DEFAULT_INTERVAL_S)) as summaries:
                async for s in summaries:
                    await queue.put(frame("summary", summary_fields(s)))
            await queue.put(b"")  # the watch ended (a terminal state, durable)
        except MesosliteError as e:
            await queue.put(_error(e))
        except Exception:
            logger.exception("internal error in http watch")
            await queue.put(frame("error", fields("INTERNAL", "internal error in Watch")))

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                item = frame("heartbeat", b"")
            if not item:
                return
            await response.write(item)
            if item[:1] == KINDS["error"]:
                return
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def summary_fields(s: Any) -> bytes:
    """A `jobs.summary.JobSummary` as an `s` frame's payload (read by attribute: the master
    meets the jobs package only in its port and the Jobs service)."""
    counts = ",".join(f"{k.value}={n}" for k, n in s.counts.items() if n)
    next_run = "" if s.next_run_at is None else repr(float(s.next_run_at))
    return fields(s.name, s.type.value, s.state.value, s.message, s.instances_wanted,
                  next_run, s.unhealthy, counts)
