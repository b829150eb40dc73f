"""`GET /tasks/{task_id}/{stdout|stderr}`: a task's sandbox file over HTTP.

Without `follow=1` the file is read once (`MasterActor.read_file`, up to 1 MB from
`offset`). With it the response streams, relaying the agent's follow as `Operator.FollowFile`
does (`master/follow.py: FollowRelays`), until the task has ended and its file is sent.
"""

from __future__ import annotations

from contextlib import aclosing

from aiohttp import web

from mesoslite.errors import ValidationError
from mesoslite.ids import FrameworkId, TaskId
from mesoslite.limits import check_id
from mesoslite.master.actor import MasterActor
from mesoslite.master.constants import MAX_READ_LENGTH
from mesoslite.master.follow import FollowData

FILE_NAMES = ("stdout", "stderr")


def _int_param(request: web.Request, name: str) -> int:
    text = request.query.get(name, "0")
    if not text.isdigit():
        raise ValidationError(name, f"must be a whole number >= 0, got {text!r}")
    return int(text)


async def task_file(request: web.Request, actor: MasterActor) -> web.StreamResponse:
    """Raises `MesosliteError`s: the server turns them into status codes (404 for an
    unknown task or file name)."""
    name = request.match_info["name"]
    task_id = request.match_info["task_id"]
    if name not in FILE_NAMES:
        raise web.HTTPNotFound(text=f"no file {name!r}: a task has {' and '.join(FILE_NAMES)}\n")
    check_id("task_id", task_id)
    fid = request.query.get("framework_id", "")
    check_id("framework_id", fid, allow_empty=True)
    offset = _int_param(request, "offset")
    if request.query.get("follow", "0") not in ("1", "true"):
        chunk = await actor.read_file(
            TaskId(task_id), FrameworkId(fid) or None, name, offset, MAX_READ_LENGTH
        )
        return web.Response(body=chunk.data, content_type="text/plain", charset="utf-8")
    follow = actor.follows.follow(actor, TaskId(task_id), FrameworkId(fid) or None, name, offset)
    response: web.StreamResponse | None = None
    # `aclosing`: a reader that goes away stops the agent's side of the follow now.
    async with aclosing(follow):
        async for item in follow:
            if response is None:
                response = web.StreamResponse(headers={"X-Content-Type-Options": "nosniff"})
                response.content_type = "text/plain"
                response.charset = "utf-8"
                await response.prepare(request)
            if isinstance(item, FollowData):
                await response.write(item.data)
            else:
                await response.write_eof()
                return response
    assert response is not None  # a follow yields its end at least
    return response
