"""`FileFollows`: the agent's side of `Operator.FollowFile`, pushing a sandbox file's new bytes.

Design:
- The master sends `FollowFile` (follow id, task, `stdout`/`stderr`, offset) on the agent's
  stream; each follow runs as one task on the agent's loop and answers with `FileDataOut`
  messages on the same stream: chunks in order, then one with `eof` once the task has ended
  (or the agent does not hold it) and everything the file holds was sent.
- Read on change: every `POLL_S`, on the agent's clock, the follow looks at the size of the
  open file (`fstat` of its descriptor: no disk I/O, so it stays on the loop) and reads only
  when it grew (`pread` in a worker thread). A credit or a stop wakes it at once.
- Flow control: chunks are at most `CHUNK_BYTES`, and at most `WINDOW_BYTES` may be sent and
  not yet credited (`FollowCredit`, sent by the master once it passed them on). A slow
  reader therefore stalls its own follow only: the agent never waits for it, and never holds
  more than a window per follow in its queue to the master.
- Ending: whether the task is live is asked *before* the file's size, so when the task has
  ended, reading up to that size has read all it will ever write. A task's end does not
  wait for the next poll (`tasks_ended`, called as its terminal update is sent): a follow
  that has sent the whole file sends its eof at once, ahead of the update, so that the
  master ends the output with the update rather than read the files again (`mesoslite run`,
  issue 15); one with bytes left is woken to read them. A `StopFollow` (the CLI went
  away), a lost master stream (`stop_all`) or a failed send end the follow early.
- The follow needs no agent state but "is this task still live" (`task_live`): it works for
  tasks the agent has forgotten too (their sandboxes stay on disk).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from mesoslite.agent.constants import SANDBOX_FILES
from mesoslite.agent.messages import FileDataOut
from mesoslite.agent.sandbox import sandbox_path
from mesoslite.clock import Clock, SystemClock

logger = logging.getLogger(__name__)

POLL_S = 0.02
CHUNK_BYTES = 256 * 1024
WINDOW_BYTES = 1024 * 1024
# A sandbox may be its task user's: never follow a symlink it planted, nor block on a FIFO.
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK

TaskLive = Callable[[str, str], bool]
Send = Callable[[FileDataOut], bool]


class _Follow:
    """One followed file: where it is, what was sent and credited, and what wakes it."""

    def __init__(self, follow_id: int, framework_id: str, task_id: str, path: Path | None,
                 offset: int) -> None:
        self.follow_id = follow_id
        self.framework_id = framework_id
        self.task_id = task_id
        self.path = path
        self.sent = offset  # the next byte to send
        self.credited = offset  # the master passed everything before this on
        self.fd: int | None = None
        self.wake = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None


class FileFollows:
    """The agent's live follows, by follow id. See the module docstring.

    Args:
        work_dir: the agent's work dir (sandboxes are under it).
        task_live: `(framework_id, task_id) -> bool`, True while the agent holds the task
            and it has not ended.
        send: queues a message to the master; False when there is no stream to the master.
        clock: the agent's clock, for the polling interval.
    """

    def __init__(self, work_dir: Path, task_live: TaskLive, send: Send,
                 clock: Clock | None = None) -> None:
        self.work_dir = work_dir
        self.task_live = task_live
        self.send = send
        self.clock: Clock = clock or SystemClock()
        self._follows: dict[int, _Follow] = {}

    def __len__(self) -> int:
        """How many follows run now."""
        return len(self._follows)

    def outstanding_bytes(self) -> int:
        """Bytes sent to the master and not yet credited, over all follows."""
        return sum(f.sent - f.credited for f in self._follows.values())

    def start(self, follow_id: int, framework_id: str, task_id: str, name: str,
              offset: int) -> None:
        """Follow `name` of the task from `offset` (a repeated id restarts that follow)."""
        self.stop(follow_id)
        sandbox = sandbox_path(self.work_dir, framework_id, task_id)
        # A bad name or unsafe ids: nothing to read, so the follow ends at once with eof.
        path = sandbox / name if sandbox is not None and name in SANDBOX_FILES else None
        follow = _Follow(follow_id, framework_id, task_id, path, offset)
        self._follows[follow_id] = follow
        follow.runner = asyncio.get_running_loop().create_task(
            self._run(follow), name=f"follow-{follow_id}"
        )

    def credit(self, follow_id: int, offset: int) -> None:
        """The master passed the bytes before `offset` on: the follow may send more."""
        follow = self._follows.get(follow_id)
        if follow is not None and offset > follow.credited:
            follow.credited = min(offset, follow.sent)
            follow.wake.set()

    def stop(self, follow_id: int) -> None:
        """Stop a follow (its reader went away); unknown ids are ignored."""
        follow = self._follows.pop(follow_id, None)
        if follow is not None and follow.runner is not None:
            follow.runner.cancel()

    def tasks_ended(self, ended: set[tuple[str, str]]) -> None:
        """These `(framework_id, task_id)` have ended: finish their follows now, not at the
        next poll. Sent before the task's terminal update when nothing is left to read."""
        for follow in list(self._follows.values()):
            if (follow.framework_id, follow.task_id) not in ended:
                continue
            if follow.fd is not None and os.fstat(follow.fd).st_size <= follow.sent:
                self.send(FileDataOut(follow.follow_id, follow.sent, eof=True))
                self.stop(follow.follow_id)
            else:
                follow.wake.set()

    def stop_all(self) -> None:
        """Stop every follow: the stream they answer on is gone."""
        for follow_id in list(self._follows):
            self.stop(follow_id)

    async def _run(self, f: _Follow) -> None:
        try:
            while await self._step(f):
                await self._wait(f)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("follow failed follow_id=%d task_id=%s", f.follow_id, f.task_id)
        finally:
            if f.fd is not None:
                os.close(f.fd)
            if self._follows.get(f.follow_id) is f:
                del self._follows[f.follow_id]

    async def _step(self, f: _Follow) -> bool:
        """Send what is new (within the window); False once the follow is over."""
        ended = not self.task_live(f.framework_id, f.task_id)  # asked first: see the docstring
        size = await self._size(f)
        while f.sent < size and f.sent - f.credited < WINDOW_BYTES:
            length = min(CHUNK_BYTES, size - f.sent, WINDOW_BYTES - (f.sent - f.credited))
            assert f.fd is not None  # a size > 0 means the file is open
            data = await asyncio.to_thread(os.pread, f.fd, length, f.sent)
            if not data:
                break  # truncated under us: wait for it to grow again
            if not self.send(FileDataOut(f.follow_id, f.sent, data)):
                return False
            f.sent += len(data)
        if ended and f.sent >= size:
            self.send(FileDataOut(f.follow_id, f.sent, eof=True))
            return False
        return True

    async def _size(self, f: _Follow) -> int:
        """The file's size now; 0 while it does not exist (the task is still staging)."""
        if f.fd is None:
            if f.path is None:
                return 0
            try:
                f.fd = await asyncio.to_thread(os.open, f.path, _READ_FLAGS)
            except OSError:
                return 0
        return os.fstat(f.fd).st_size

    async def _wait(self, f: _Follow) -> None:
        """Until a credit or stop, or `POLL_S` on the clock."""
        cancel = self.clock.call_later(POLL_S, f.wake.set)
        try:
            await f.wake.wait()
        finally:
            cancel()
            f.wake.clear()
