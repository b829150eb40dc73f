"""`POST /run` and `POST /run/{task_id}/kill`: `mesoslite run`'s fast path over HTTP.

A light client (`mesoslite/fastrun.py`, no grpc, no asyncio) posts the task as JSON and reads
the answer as it comes, one chunked response of frames: a kind byte (`o` stdout, `e` stderr,
`m` a message for stderr, `h` a heartbeat, `x` the exit code, last), a 4-byte big-endian
length, the payload. The work is `master/run_now.py`'s. The client's Ctrl-C comes as
`POST /run/{task_id}/kill` on a second connection; a client that goes away is noticed at the
next heartbeat at the latest, and its task is killed with its framework.

`grpc_port` in the request is the port the client was told (`MESOSLITE_MASTER`): a master
whose gRPC port differs answers 421 and runs nothing, so that a stale cached HTTP address
never runs work on the wrong master.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from aiohttp import web

from mesoslite.errors import ValidationError
from mesoslite.ids import TaskId
from mesoslite.limits import check_id
from mesoslite.master.http.state_json import StateSource
from mesoslite.master.run_now import Frame, RunNow
from mesoslite.master.validation import check_role_value, check_tasks
from mesoslite.model import CommandSpec, TaskSpec
from mesoslite.resources import Resources

HEARTBEAT_S = 1.0
KINDS = {"stdout": b"o", "stderr": b"e", "message": b"m", "exit": b"x", "heartbeat": b"h"}
MAX_BODY_BYTES = 1 << 20


# Set on the app when authentication is on: /run refuses, so that every task of an
# authenticated principal passes the scheduler API's ACL checks (role, run_as).
FAST_RUN_OFF = "mesoslite.fast_run_off"


def add_run_routes(app: web.Application, src: StateSource) -> None:
    """Route the fast path's two calls to a `RunNow` of the master's actor."""
    runs = RunNow(src.actor)

    async def run(request: web.Request) -> web.StreamResponse:
        _check_allowed(request)
        return await _run(request, src, runs)

    async def kill(request: web.Request) -> web.StreamResponse:
        _check_allowed(request)
        _check_leading(src)
        task_id = request.match_info["task_id"]
        check_id("task_id", task_id)
        if not await runs.kill(TaskId(task_id)):
            raise web.HTTPNotFound(text=f"no run of task {task_id!r} on this master\n")
        return web.Response(text="killing\n")

    app.router.add_post("/run", run)
    app.router.add_post("/run/{task_id}/kill", kill)


def _check_allowed(request: web.Request) -> None:
    if request.app.get(FAST_RUN_OFF):
        raise web.HTTPForbidden(
            text="POST /run is off while authentication is on: use the gRPC API "
            "(mesoslite run falls back to it by itself)\n"
        )


def _check_leading(src: StateSource) -> None:
    if not src.leadership.leading:
        raise src.leadership.error()  # 503, naming the leader


def frame(kind: str, data: bytes) -> bytes:
    return KINDS[kind] + struct.pack(">I", len(data)) + data


async def json_body(request: web.Request, src: StateSource) -> dict[str, Any]:
    """A fast-path request's JSON object, refused (421) when it names a gRPC port that is not
    this master's: the client guessed the HTTP endpoint of another master on the host."""
    try:
        doc = json.loads(await request.read())
    except ValueError as e:
        raise ValidationError("body", f"must be a JSON object: {e}") from None
    if not isinstance(doc, dict):
        raise ValidationError("body", "must be a JSON object")
    port = src.info.address.rsplit(":", 1)[1]
    if str(doc.get("grpc_port", "")) != port:
        raise web.HTTPMisdirectedRequest(text=f"this master's gRPC port is {port}\n")
    return doc


async def _run(request: web.Request, src: StateSource, runs: RunNow) -> web.StreamResponse:
    _check_leading(src)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ValidationError("body", f"at most {MAX_BODY_BYTES} bytes")
    doc = await json_body(request, src)
    task, role, timeout_s = task_of(doc)
    run = await runs.start(task, role, timeout_s)
    response = web.StreamResponse(headers={"Content-Type": "application/x-mesoslite-run"})
    try:
        await response.prepare(request)
        await response.write(frame("message", b""))  # headers out now: the run has started
        while True:
            try:
                item = await asyncio.wait_for(run.frames.get(), HEARTBEAT_S)
            except TimeoutError:
                item = Frame("heartbeat", b"")
            await response.write(frame(item.kind, item.data))
            if item.kind == "exit":
                break
        await response.write_eof()
    except ConnectionError:
        pass  # the client went away: `finish` kills its task with its framework
    finally:
        await runs.finish(run)

    return response


def _get(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = doc.get(key, default)
    if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float):
        raise ValidationError(key, f"must be of type {getattr(kind, '__name__', kind)}")
    return value


def task_of(doc: dict[str, Any]) -> tuple[TaskSpec, str, float]:
    """The task, its role and its placement timeout, from the request.

    Raises:
        ValidationError: naming the field that is wrong.
    """
    number = (int, float)
    argv = _get(doc, "argv", list, [])
    env = _get(doc, "env", dict, {})
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValidationError("argv", "must be a non-empty list of strings")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValidationError("env", "must map strings to strings")
    scalars = {k: float(_get(doc, k, number, 0)) for k in ("cpus", "mem", "disk")}
    if not scalars["disk"]:
        del scalars["disk"]
    for key, value in scalars.items():
        if not 0 < value <= 1e9:
            raise ValidationError(key, f"must be > 0 and <= 1e9, got {value:g}")
    command = (
        CommandSpec.of_shell(" ".join(argv), environment=env)
        if _get(doc, "shell", bool, False)
        else CommandSpec.of_argv(argv, environment=env)
    )
    timeout_s = float(_get(doc, "placement_timeout_s", number, 30.0))
    grace_s = float(_get(doc, "kill_grace_s", number, 3.0))
    if not 0 < timeout_s <= 86400 * 365 or not 0 <= grace_s <= 86400:
        raise ValidationError("placement_timeout_s", "must be > 0 (and kill_grace_s >= 0)")
    task_id = _get(doc, "task_id", str, "")
    check_id("task_id", task_id)
    role = _get(doc, "role", str, "*")
    check_role_value("role", role)
    task = TaskSpec(
        task_id=TaskId(task_id), command=command, resources=Resources.of(scalars),
        name=_get(doc, "name", str, "") or " ".join(argv)[:200], kill_grace_period_s=grace_s,
    )
    check_tasks([task])
    return task, role, timeout_s
